package webhooks_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/webhooks"
)

func TestPolicyCheck(t *testing.T) {
	def := webhooks.DefaultPolicy()
	strict := webhooks.Policy{}
	custom := webhooks.Policy{
		AllowLoopback: true, AllowPrivate: true,
		Deny:  []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
		Allow: []netip.Prefix{netip.MustParsePrefix("169.254.10.0/24"), netip.MustParsePrefix("169.254.169.254/32")},
	}
	tests := []struct {
		p      webhooks.Policy
		addr   string
		reason string // "" means allowed
	}{
		{def, "127.0.0.1", ""},
		{def, "::1", ""},
		{def, "10.1.2.3", ""},
		{def, "192.168.1.10", ""},
		{def, "fd12::1", ""},
		{def, "93.184.216.34", ""},
		{def, "2606:2800:220:1::1", ""},
		{def, "169.254.169.254", "cloud metadata"},
		{def, "::ffff:169.254.169.254", "cloud metadata"},
		{def, "64:ff9b::a9fe:a9fe", "cloud metadata"}, // NAT64 of 169.254.169.254
		{def, "fd00:ec2::254", "cloud metadata"},
		{def, "fd00:ec2::254%eth0", "cloud metadata"}, // a zone must not hide it
		{def, "fe80::1%eth0", "link-local"},
		{def, "::a9fe:a9fe", "cloud metadata"}, // IPv4-compatible 169.254.169.254
		{def, "::ffff:a9fe:a9fe", "cloud metadata"},
		{custom, "::ffff:10.9.1.1", "denied prefix 10.9.0.0/16"},
		{def, "169.254.1.1", "link-local"},
		{def, "fe80::1", "link-local"},
		{def, "224.0.0.1", "multicast"},
		{strict, "127.0.0.1", "loopback"},
		{strict, "0.0.0.0", "loopback"},
		{strict, "10.1.2.3", "private"},
		{strict, "100.64.1.1", "private"},
		{strict, "93.184.216.34", ""},
		{webhooks.Policy{AllowLinkLocal: true}, "169.254.1.1", ""},
		{webhooks.Policy{AllowLinkLocal: true}, "169.254.169.254", "cloud metadata"},
		{custom, "10.9.1.1", "denied prefix 10.9.0.0/16"},
		{custom, "10.8.1.1", ""},
		{custom, "169.254.10.5", ""},
		{custom, "169.254.169.254", ""}, // explicitly allowed
	}
	for _, tt := range tests {
		err := tt.p.Check(netip.MustParseAddr(tt.addr))
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%+v: Check(%s) = %v, want allowed", tt.p, tt.addr, err)
			}
			continue
		}
		var re *webhooks.RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%+v: Check(%s) = %v, want refusal for %q", tt.p, tt.addr, err, tt.reason)
		}
	}
}
