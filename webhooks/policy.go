package webhooks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/ctibridge/ctibridge/bridge"
)

// Policy says which addresses webhook requests may connect to: bridge's
// AddressPolicy, the same rule the config and the API apply to IP-literal
// URLs when they are saved.
//
// The dispatcher applies it twice. Before connecting it resolves the host
// and, when every address is refused, fails the delivery for good
// (AddressRefusedError: dead-lettered at once, not retried for the whole
// window). Then the dialer's Control hook checks the address actually being
// connected to, so a name that re-resolves to a forbidden address (DNS
// rebinding) is refused too; that refusal is retried like any connection
// error.
type Policy = bridge.AddressPolicy

// RefusedError is the error for an address the Policy forbids.
type RefusedError = bridge.AddressError

// DefaultPolicy allows loopback and private addresses, since CRMs often run
// on-premises next to the PBX, and refuses link-local and metadata ones.
func DefaultPolicy() Policy { return bridge.DefaultAddressPolicy() }

// AddressRefusedError is a delivery whose host resolves only to addresses
// the policy refuses. Retrying cannot help until someone changes the URL,
// the DNS or the policy, so the delivery is dead at once (replayable).
type AddressRefusedError struct {
	Host    string
	Refused []error // one *RefusedError per address
}

func (e *AddressRefusedError) Error() string {
	reasons := make([]string, len(e.Refused))
	for i, err := range e.Refused {
		reasons[i] = err.Error()
	}
	if _, err := netip.ParseAddr(e.Host); err == nil {
		return strings.Join(reasons, "; ")
	}
	return e.Host + " resolves only to refused addresses: " + strings.Join(reasons, "; ")
}

// control is a net.Dialer Control hook enforcing p.
func control(p Policy) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhooks: cannot check dial address %q: %w", address, err)
		}
		return p.Check(ap.Addr())
	}
}

// policyDialer resolves the host before dialing, to tell a host that is
// refused for good from one that is down.
type policyDialer struct {
	policy Policy
	dialer *net.Dialer // with control(policy)
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func (pd *policyDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ips, err := pd.lookup(ctx, "ip", host)
	if err != nil {
		return nil, err // a DNS failure is retried
	}
	var refused []error
	for _, ip := range ips {
		if err := pd.policy.Check(ip); err != nil {
			refused = append(refused, err)
			continue
		}
		// At least one address may be used: the dialer resolves again and
		// its Control hook refuses the others (and any rebinding).
		return pd.dialer.DialContext(ctx, network, address)
	}
	if len(refused) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return nil, &AddressRefusedError{Host: host, Refused: refused}
}
