package bridge

import (
	"net/netip"
	"strings"
)

// AddressPolicy says which IP addresses webhook requests may reach. It is
// the one rule for the config and the API (a URL whose host is an IP literal
// is refused when it is saved) and for the dispatcher (every address a host
// name resolves to, checked when it connects).
//
// Rules apply in order: Deny prefixes, Allow prefixes, cloud metadata
// services (always refused unless in Allow), then the categories below.
// Public unicast addresses are allowed; anything that is not unicast
// (multicast, broadcast, reserved 240.0.0.0/4) never is. IPv4-mapped IPv6
// addresses are their IPv4 address. An address that
// embeds an IPv4 address (IPv4-compatible, NAT64, 6to4, Teredo)
// is refused when that IPv4 address is.
type AddressPolicy struct {
	AllowLoopback  bool // 127.0.0.0/8, ::1, and "this host" 0.0.0.0/8 and ::
	AllowPrivate   bool // RFC 1918, fc00::/7, fec0::/10, CGNAT 100.64.0.0/10, 198.18.0.0/15
	AllowLinkLocal bool // 169.254.0.0/16, fe80::/10; never the metadata addresses in them
	// Deny and Allow are exact prefixes for programs that embed the
	// dispatcher (the config has no keys for them). Allow is the only way
	// to reach a metadata address.
	Deny  []netip.Prefix
	Allow []netip.Prefix
	// TenantsLikeOperator gives endpoints tenants make over the API this
	// same policy (delivery.tenant_endpoints_private); see For.
	TenantsLikeOperator bool
	tenant              bool // For made it for a tenant's endpoint: errors say so
}

// For is the policy ep's URL must pass: p itself, but for an endpoint a
// tenant made over the API, which gets public addresses only unless
// TenantsLikeOperator. A hosting provider's customer must not reach (or,
// through the attempt log, read) the provider's own network; an operator
// who wants such an endpoint puts it in the config file.
func (p AddressPolicy) For(ep Endpoint) AddressPolicy {
	if !ep.TenantMade() || p.TenantsLikeOperator {
		return p
	}
	return AddressPolicy{Deny: p.Deny, tenant: true}
}

// TenantMade reports whether an endpoint gets ForTenantEndpoint's policy:
// made over the API, for a tenant.
func (e Endpoint) TenantMade() bool { return e.Source == "api" && e.Tenant != "" }

// DefaultAddressPolicy allows loopback and private addresses, since CRMs
// often run on-premises next to the PBX, and refuses link-local ones.
func DefaultAddressPolicy() AddressPolicy {
	return AddressPolicy{AllowLoopback: true, AllowPrivate: true}
}

// metadataAddrs are cloud instance-metadata and platform services: they
// hand out credentials (or, for Azure's WireServer, VM extension settings)
// to whoever asks from inside the instance, so a webhook must never reach
// them. They stay refused with allow_link_local: that setting is for a CRM
// on a link-local network, and no CRM lives at these addresses.
var metadataAddrs = []netip.Prefix{
	netip.MustParsePrefix("169.254.169.254/32"),     // AWS, GCP (metadata.google.internal), Azure IMDS, Oracle, DigitalOcean, OpenStack, Hetzner
	netip.MustParsePrefix("169.254.170.2/32"),       // AWS ECS task credentials
	netip.MustParsePrefix("169.254.170.23/32"),      // AWS EKS Pod Identity agent
	netip.MustParsePrefix("169.254.0.23/32"),        // Tencent Cloud
	netip.MustParsePrefix("168.63.129.16/32"),       // Azure WireServer (a public address: no category covers it)
	netip.MustParsePrefix("192.0.0.192/32"),         // Oracle Cloud (legacy metadata)
	netip.MustParsePrefix("100.100.100.200/32"),     // Alibaba Cloud (inside CGNAT, which allow_private allows)
	netip.MustParsePrefix("fd00:ec2::254/128"),      // AWS IMDS over IPv6 (a ULA, which allow_private allows)
	netip.MustParsePrefix("fd00:ec2::23/128"),       // AWS EKS Pod Identity over IPv6
	netip.MustParsePrefix("fd20:ce::254/128"),       // GCP metadata over IPv6
	netip.MustParsePrefix("fd00:c1::a9fe:a9fe/128"), // Oracle Cloud IMDS over IPv6
	netip.MustParsePrefix("fe80::a9fe:a9fe/128"),    // OpenStack metadata over IPv6
}

// metadataHosts are names of metadata services, refused when a URL is saved
// (they resolve to a metadata address, which the dispatcher refuses anyway).
var metadataHosts = []string{"metadata.google.internal"}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	benchmark   = netip.MustParsePrefix("198.18.0.0/15")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal   = netip.MustParsePrefix("fec0::/10")
	compatible  = netip.MustParsePrefix("::/96")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052 well-known prefix: always /96
	nat64Local  = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215 local-use: the operator picks the length
	sixToFour   = netip.MustParsePrefix("2002::/16")
	teredo      = netip.MustParsePrefix("2001::/32")
)

// AddressError is an address the policy refuses, and why.
type AddressError struct {
	Addr netip.Addr // as given, without a zone
	// Inner is the IPv4 address Addr embeds when that is what was
	// refused (Via says how: NAT64, 6to4...); otherwise the zero Addr.
	Inner netip.Addr
	Via   string
	What  string // "a loopback address", "a cloud metadata address", "in denied prefix 10.0.0.0/8"...
	// Setting is the delivery.* key that would allow it; "" when none does.
	Setting string
}

func (e *AddressError) Error() string {
	var b strings.Builder
	b.WriteString(e.Addr.String())
	if e.Inner.IsValid() {
		b.WriteString(" embeds " + e.Inner.String() + " (" + e.Via + "),")
	} else {
		b.WriteString(" is")
	}
	b.WriteString(" " + e.What)
	switch {
	case e.Setting != "":
		b.WriteString(": refused by " + e.Setting + " (false)")
	case e.What == whatMetadata:
		b.WriteString(": always refused, whatever delivery.allow_link_local and allow_private say")
	}
	return b.String()
}

const whatMetadata = "a cloud metadata address"

// Check returns an *AddressError when the policy forbids connecting to addr.
func (p AddressPolicy) Check(addr netip.Addr) error {
	// A zone (fe80::1%eth0) makes every prefix test false: drop it first.
	// An IPv4-mapped address is the IPv4 address (resolvers return that
	// form too), so it is checked and named as one.
	addr = addr.WithZone("").Unmap()
	if addr.Is6() {
		for _, in := range embedded(addr) {
			if err := p.check(in.addr); err != nil {
				e := err.(*AddressError)
				e.Addr, e.Inner, e.Via = addr, in.addr, in.via
				return e
			}
		}
		if compatible.Contains(addr) && !addr.IsLoopback() && !addr.IsUnspecified() {
			return nil // the embedded IPv4 address is the destination, and it passed
		}
	}
	return p.check(addr)
}

type embeddedAddr struct {
	addr netip.Addr
	via  string
}

// embedded lists the IPv4 addresses an IPv6 address leads to.
func embedded(a netip.Addr) []embeddedAddr {
	b := a.As16()
	v4 := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	switch {
	case compatible.Contains(a) && !a.IsLoopback() && !a.IsUnspecified():
		// Deprecated, but some stacks still route ::a.b.c.d to a.b.c.d.
		return []embeddedAddr{{v4(12, 13, 14, 15), "IPv4-compatible"}}
	case nat64.Contains(a):
		return []embeddedAddr{{v4(12, 13, 14, 15), "NAT64"}}
	case nat64Local.Contains(a):
		// The translator's prefix may be /48, /56, /64 or /96 inside
		// 64:ff9b:1::/48 (RFC 6052 section 2.2 places the IPv4 address
		// differently for each, around the u octet, byte 8): every reading
		// is checked. A reading in 0.0.0.0/8 is the zero padding of a
		// longer prefix, and nothing a translator can reach.
		var out []embeddedAddr
		for _, c := range []netip.Addr{v4(6, 7, 9, 10), v4(7, 9, 10, 11), v4(9, 10, 11, 12), v4(12, 13, 14, 15)} {
			if !thisNetwork.Contains(c) {
				out = append(out, embeddedAddr{c, "local-use NAT64"})
			}
		}
		return out
	case sixToFour.Contains(a):
		return []embeddedAddr{{v4(2, 3, 4, 5), "6to4"}}
	case teredo.Contains(a):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []embeddedAddr{{v4(4, 5, 6, 7), "Teredo server"}, {client, "Teredo client"}}
	}
	return nil
}

// check applies the rules to one address, embedded forms already handled.
func (p AddressPolicy) check(addr netip.Addr) error {
	refuse := func(what, setting string) error {
		if p.tenant && setting != "" {
			// Only the operator may open these to a tenant's endpoints.
			setting = "delivery.tenant_endpoints_private (a tenant's endpoint made over the API must be at a public address)"
		}
		return &AddressError{Addr: addr, What: what, Setting: setting}
	}
	if !addr.IsValid() {
		return refuse("not a valid address", "")
	}
	for _, pf := range p.Deny {
		if pf.Contains(addr) {
			return refuse("in denied prefix "+pf.String(), "")
		}
	}
	for _, pf := range p.Allow {
		if pf.Contains(addr) {
			return nil
		}
	}
	for _, pf := range metadataAddrs {
		if pf.Contains(addr) {
			return refuse(whatMetadata, "")
		}
	}
	switch {
	case addr.IsLoopback() || addr.IsUnspecified() || thisNetwork.Contains(addr):
		if !p.AllowLoopback {
			return refuse("a loopback address", "delivery.allow_loopback")
		}
	case addr.IsPrivate() || cgnat.Contains(addr) || benchmark.Contains(addr) || siteLocal.Contains(addr):
		if !p.AllowPrivate {
			return refuse("a private address", "delivery.allow_private")
		}
	case addr.IsLinkLocalUnicast():
		if !p.AllowLinkLocal {
			return refuse("a link-local address", "delivery.allow_link_local")
		}
	case !addr.IsGlobalUnicast() || reserved4.Contains(addr):
		return refuse("not a unicast address (multicast, broadcast or reserved)", "")
	}
	return nil
}
