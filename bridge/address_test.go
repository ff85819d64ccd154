package bridge_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

func TestAddressPolicyCheck(t *testing.T) {
	def := bridge.DefaultAddressPolicy()
	strict := bridge.AddressPolicy{}
	open := bridge.AddressPolicy{AllowLoopback: true, AllowPrivate: true, AllowLinkLocal: true}
	for _, tt := range []struct {
		p      bridge.AddressPolicy
		addr   string
		reason string // "" means allowed
	}{
		// Categories and their settings.
		{def, "93.184.216.34", ""},
		{def, "2606:2800:220:1::1", ""},
		{def, "127.0.0.1", ""},
		{def, "10.1.2.3", ""},
		{strict, "93.184.216.34", ""},
		{strict, "127.0.0.1", "127.0.0.1 is a loopback address: refused by delivery.allow_loopback"},
		{strict, "0.0.0.0", "loopback address"},
		{strict, "0.1.2.3", "loopback address"}, // "this network"
		{strict, "::", "loopback address"},
		{strict, "10.1.2.3", "10.1.2.3 is a private address: refused by delivery.allow_private"},
		{strict, "100.64.1.1", "private address"},
		{strict, "198.18.0.1", "private address"},
		{strict, "fd12::1", "private address"},
		{strict, "fec0::1", "private address"},
		{def, "169.254.1.1", "169.254.1.1 is a link-local address: refused by delivery.allow_link_local"},
		{def, "fe80::1%eth0", "link-local address"},
		{open, "169.254.1.1", ""},
		{open, "fe80::1", ""},
		{open, "224.0.0.1", "not a unicast address"},
		{open, "255.255.255.255", "not a unicast address"},
		{open, "240.0.0.1", "not a unicast address"},
		{open, "ff02::1", "not a unicast address"},

		// Cloud metadata: refused even where the category is allowed.
		{open, "169.254.169.254", "169.254.169.254 is a cloud metadata address: always refused"}, // AWS, GCP, Azure, Oracle, DO, OpenStack
		{open, "169.254.170.2", "cloud metadata"},                                                // AWS ECS
		{open, "169.254.170.23", "cloud metadata"},                                               // AWS EKS Pod Identity
		{open, "169.254.0.23", "cloud metadata"},                                                 // Tencent
		{open, "168.63.129.16", "cloud metadata"},                                                // Azure WireServer, a public address
		{open, "192.0.0.192", "cloud metadata"},                                                  // Oracle
		{open, "100.100.100.200", "cloud metadata"},                                              // Alibaba, inside CGNAT
		{open, "fd00:ec2::254", "cloud metadata"},                                                // AWS IPv6
		{open, "fd00:ec2::23", "cloud metadata"},                                                 // AWS EKS IPv6
		{open, "fd20:ce::254", "cloud metadata"},                                                 // GCP IPv6
		{open, "fd00:c1::a9fe:a9fe", "cloud metadata"},                                           // Oracle IPv6
		{open, "fe80::a9fe:a9fe", "cloud metadata"},                                              // OpenStack IPv6
		{open, "fe80::a9fe:a9fe%eth0", "cloud metadata"},                                         // a zone must not hide it
		{open, "168.63.129.17", ""},

		// Embedded IPv4 addresses are checked against the same rules.
		{def, "::ffff:169.254.169.254", "169.254.169.254 is a cloud metadata address"}, // IPv4-mapped: the IPv4 address itself
		{def, "::a9fe:a9fe", "(IPv4-compatible), a cloud metadata address"},
		{strict, "::ffff:127.0.0.1", "127.0.0.1 is a loopback address: refused by delivery.allow_loopback"},
		{bridge.AddressPolicy{AllowPrivate: true, Deny: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, "::ffff:10.9.1.1", "10.9.1.1 is in denied prefix 10.9.0.0/16"},
		{def, "::ffff:93.184.216.34", ""},
		{def, "64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64), a cloud metadata address"},
		{strict, "64:ff9b::a00:1", "embeds 10.0.0.1 (NAT64), a private address"},
		{def, "64:ff9b::5db8:d822", ""},
		// RFC 8215 local-use NAT64, each RFC 6052 layout of 169.254.169.254.
		{def, "64:ff9b:1::a9fe:a9fe", "embeds 169.254.169.254 (local-use NAT64), a cloud metadata"},       // /96
		{def, "64:ff9b:1:0:a9:fea9:fe00:0", "embeds 169.254.169.254 (local-use NAT64), a cloud metadata"}, // /64
		{def, "64:ff9b:1:a9:fe:a9fe::", "embeds 169.254.169.254 (local-use NAT64), a cloud metadata"},     // /56
		{def, "64:ff9b:1:a9fe:a9:fe00::", "embeds 169.254.169.254 (local-use NAT64), a cloud metadata"},   // /48
		{strict, "64:ff9b:1::a00:1", "embeds 10.0.0.1 (local-use NAT64), a private address"},
		{strict, "64:ff9b:1::5db8:d822", ""}, // its zero padding is not read as 0.0.0.0
		{def, "2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 embeds 169.254.169.254 (6to4), a cloud metadata address"},
		{strict, "2002:7f00:1::", "embeds 127.0.0.1 (6to4), a loopback address"},
		{def, "2002:5db8:d822::1", ""},
		// Teredo: server in bits 32-63, client in the last 32 bits, inverted.
		{def, "2001:0:a9fe:a9fe::1", "embeds 169.254.169.254 (Teredo server), a cloud metadata address"},
		{def, "2001:0:5db8:d822::5601:5601", "embeds 169.254.169.254 (Teredo client), a cloud metadata address"},
		{strict, "2001:0:5db8:d822::f5ff:fffe", "embeds 10.0.0.1 (Teredo client), a private address"},
		{def, "2001:0:5db8:d822::a247:27dd", ""},

		// Deny and Allow prefixes.
		{bridge.AddressPolicy{AllowPrivate: true, Deny: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, "10.9.1.1", "10.9.1.1 is in denied prefix 10.9.0.0/16"},
		{bridge.AddressPolicy{AllowPrivate: true, Deny: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, "64:ff9b::a09:101", "embeds 10.9.1.1 (NAT64), in denied prefix"},
		{bridge.AddressPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}, "169.254.169.254", ""},
	} {
		err := tt.p.Check(netip.MustParseAddr(tt.addr))
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%+v: Check(%s) = %v, want allowed", tt.p, tt.addr, err)
			}
			continue
		}
		var ae *bridge.AddressError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%+v: Check(%s) = %v, want refusal %q", tt.p, tt.addr, err, tt.reason)
		}
	}
}

func TestCheckWebhookAddress(t *testing.T) {
	def := bridge.DefaultAddressPolicy()
	for _, tt := range []struct {
		p      bridge.AddressPolicy
		url    string
		reason string
	}{
		{def, "https://crm.example.com/hook", ""},
		{def, "http://127.0.0.1:9000/hook", ""},
		{def, "http://169.254.169.254/x", "host 169.254.169.254 is a cloud metadata address: always refused"},
		{def, "http://[::ffff:169.254.169.254]/x", "cloud metadata"},
		{def, "http://[fe80::1%25eth0]:8080/x", "link-local address: refused by delivery.allow_link_local"},
		{bridge.AddressPolicy{AllowLinkLocal: true}, "http://169.254.169.254/latest/meta-data/", "always refused"},
		{bridge.AddressPolicy{AllowLinkLocal: true}, "http://169.254.1.1/", ""},
		{bridge.AddressPolicy{}, "http://10.0.0.5/", "refused by delivery.allow_private"},
		{def, "http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"},
		{def, "http://METADATA.google.internal./", "cloud metadata service"},
	} {
		err := bridge.CheckWebhookAddress("url", tt.url, tt.p)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tt.url, err)
			}
			continue
		}
		if err == nil || bridge.ErrorCode(err) != bridge.EINVALID || !strings.Contains(err.Error(), "url: ") || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: %v, want a url error with %q", tt.url, err, tt.reason)
		}
	}
}

func TestCheckWebhookURLNumericHosts(t *testing.T) {
	for _, u := range []string{"http://2852039166/", "http://0xa9fea9fe/", "http://0XA9FEA9FE/", "http://169.254.43518/", "http://010.0.0.1/", "http://0251.0376.0251.0376/", "http://1.2.3./"} {
		if err := bridge.CheckWebhookURL("url", u); err == nil || !strings.Contains(err.Error(), "dotted-quad") {
			t.Errorf("%s: %v, want refused as a numeric host", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1/", "http://[::1]:80/", "https://crm.example.com/", "https://8x8.com/", "https://a.b0x1/", "http://localhost:9000/"} {
		if err := bridge.CheckWebhookURL("url", u); err != nil {
			t.Errorf("%s: %v, want accepted", u, err)
		}
	}
}

func TestCheckPublishedWebhookSecret(t *testing.T) {
	if err := bridge.CheckPublishedWebhookSecret("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err == nil || !strings.Contains(err.Error(), "published") {
		t.Fatalf("the specification's example secret: %v", err)
	}
	if err := bridge.CheckPublishedWebhookSecret("secret", bridge.NewWebhookSecret()); err != nil {
		t.Fatal(err)
	}
}
