package webhooks

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Policy says which addresses webhook requests may connect to. It is checked
// in the dialer's Control hook, on the address actually being connected to
// after DNS resolution, so a hostname that resolves (or re-resolves, as in
// DNS rebinding) to a forbidden address is refused too.
//
// Rules apply in order: Deny prefixes, Allow prefixes, cloud metadata
// services (always refused unless in Allow), then the address categories.
// Public unicast addresses are allowed.
type Policy struct {
	AllowLoopback  bool // 127.0.0.0/8, ::1, and the unspecified 0.0.0.0 and ::
	AllowPrivate   bool // RFC 1918, fc00::/7, and CGNAT 100.64.0.0/10
	AllowLinkLocal bool // 169.254.0.0/16, fe80::/10
	Deny           []netip.Prefix
	Allow          []netip.Prefix
}

// DefaultPolicy allows loopback and private addresses, since CRMs often run
// on-premises next to the PBX, and refuses link-local and metadata ones.
func DefaultPolicy() Policy {
	return Policy{AllowLoopback: true, AllowPrivate: true}
}

// metadata are cloud instance-metadata services, which hand out credentials
// to whoever asks from inside the instance.
var metadata = []netip.Prefix{
	netip.MustParsePrefix("169.254.169.254/32"), // AWS, GCP, Azure, Oracle, DigitalOcean
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IPv6
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud
}

var (
	cgnat = netip.MustParsePrefix("100.64.0.0/10")
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// RefusedError is the dial error for an address the Policy forbids.
type RefusedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("webhooks: address %s refused by policy: %s", e.Addr, e.Reason)
}

// Check returns a *RefusedError when the policy forbids connecting to addr.
func (p Policy) Check(addr netip.Addr) error {
	// A zone (fe80::1%eth0) makes every prefix test false: drop it, and
	// the IPv4-in-IPv6 forms, before any rule.
	addr = addr.WithZone("").Unmap()
	if addr.Is6() {
		b := addr.As16()
		// IPv4-compatible ::a.b.c.d (deprecated, but routed by some stacks).
		if [12]byte(b[:12]) == ([12]byte{}) && !addr.IsLoopback() && !addr.IsUnspecified() {
			addr = netip.AddrFrom4([4]byte(b[12:]))
		}
	}
	// A NAT64 address reaches the IPv4 address embedded in its last 32 bits.
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		if err := p.Check(netip.AddrFrom4([4]byte(b[12:]))); err != nil {
			return err
		}
	}
	refuse := func(reason string) error { return &RefusedError{Addr: addr, Reason: reason} }
	for _, pf := range p.Deny {
		if pf.Contains(addr) {
			return refuse("in denied prefix " + pf.String())
		}
	}
	for _, pf := range p.Allow {
		if pf.Contains(addr) {
			return nil
		}
	}
	for _, pf := range metadata {
		if pf.Contains(addr) {
			return refuse("cloud metadata service")
		}
	}
	switch {
	case !addr.IsValid():
		return refuse("invalid address")
	case addr.IsLoopback() || addr.IsUnspecified():
		if !p.AllowLoopback {
			return refuse("loopback address")
		}
	case addr.IsPrivate() || cgnat.Contains(addr):
		if !p.AllowPrivate {
			return refuse("private address")
		}
	case addr.IsLinkLocalUnicast():
		if !p.AllowLinkLocal {
			return refuse("link-local address")
		}
	case addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refuse("multicast or broadcast address")
	}
	return nil
}

// control is a net.Dialer Control hook enforcing p.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhooks: cannot check dial address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}
