package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// tenants: from the file, rules in order, shorthands normalised; a
// webhook's tenant; dotted domains kept whole inside a rule's map.
func TestTenantsConfig(t *testing.T) {
	cfg, err := Load(write(t, strings.Replace(minimal, "type: asterisk", "type: freeswitch", 1)+`tenants:
  default: house
  agents: {"100": acme}
  connectors: {cfg-1: acme}
  rules:
    - source: accountcode
    - context_prefix: {"acme-": acme, "globex-": globex}
    - source: variable
      variable: CTI_TENANT
    - domain: {"globex.pbx.example": globex}
`), nil, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	ts := cfg.Tenants.Bridge()
	if ts.Default != "house" || ts.Agents["100"] != "acme" || len(ts.Rules) != 4 || cfg.Tenants.Connectors["cfg-1"] != "acme" {
		t.Fatalf("tenants = %+v", ts)
	}
	if r := ts.Rules[1]; r.Source != bridge.TenantByContextPrefix || r.Map["globex-"] != "globex" {
		t.Errorf("context_prefix shorthand = %+v", r)
	}
	if r := ts.Rules[3]; r.Source != bridge.TenantByDomain || r.Map["globex.pbx.example"] != "globex" {
		t.Errorf("domain shorthand = %+v", r)
	}
	if tn, ok := ts.Of(bridge.Channel{Domain: "globex.pbx.example"}); tn != "globex" || !ok {
		t.Errorf("domain rule: %q %v", tn, ok)
	}
	if v := ts.Variables(); len(v) != 1 || v[0] != "CTI_TENANT" {
		t.Errorf("variables = %v", v)
	}
	cfg, err = Load(write(t, strings.Replace(minimal, "    events:", "    tenant: acme\n    events:", 1)+"tenants:\n  agents: {\"100\": acme}\n"), nil, nil)
	if err != nil || cfg.Webhooks[0].Tenant != "acme" {
		t.Fatalf("webhook tenant: %v %+v", err, cfg.Webhooks)
	}
}

// Every bad tenant setting names its key.
func TestTenantsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"tenants:\n  default: Acme", "tenants.default"},
		{"tenants:\n  agents: {\"100\": \"a b\"}", "tenants.agents.100"},
		{"tenants:\n  connectors: {crm-x: \"-x\"}", "tenants.connectors.crm-x"},
		{"tenants:\n  rules:\n    - source: header", "tenants.rules[0].source"},
		{"tenants:\n  rules:\n    - source: variable", "tenants.rules[0].variable"},
		{"tenants:\n  rules:\n    - source: context_prefix", "tenants.rules[0].map"},
		{"tenants:\n  rules:\n    - context_prefix: {\"a-\": \"A\"}", "tenants.rules[0].map.a-"},
		{"tenants:\n  rules:\n    - accountcode: {\"1\": a}\n      domain: {\"x\": b}", "tenants.rules[0]"},
		{"tenants:\n  rules:\n    - source: domain\n      variable: X", "tenants.rules[0].variable"},
		// Names no call or agent can have: a typo would receive nothing.
		{"tenants:\n  connectors: {crm-x: acme}", "tenants.connectors.crm-x"},
		{"tenants:\n  agents: {\"100\": acme}\n  connectors: {cfg-1: acmee}", "tenants.connectors.cfg-1"},
		{"tenants:\n  agents: {\"100\": acme}\n  connectors: {crm-bitrix24: acme}", "tenants.connectors.crm-bitrix24"}, // not configured
		{"tenants:\n  rules:\n    - domain: {\"acme.example\": acme}", "tenants.rules[0]"},                             // the minimal config's PBX is an Asterisk
	} {
		_, err := Load(write(t, minimal+tc.yaml+"\n"), nil, nil)
		var es Errors
		if !errors.As(err, &es) || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%q: got %v, want an error naming %s", tc.yaml, err, tc.key)
		}
	}
	_, err := Load(write(t, strings.Replace(minimal, "    events:", "    tenant: \"no way\"\n    events:", 1)), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "webhooks[0].tenant") {
		t.Errorf("bad webhook tenant: %v", err)
	}
	// A webhook's tenant must be one a call or agent can have: none with
	// no tenants configured, one of the names with only mapped rules, any
	// with a rule that reads the name from the channel.
	webhook := strings.Replace(minimal, "    events:", "    tenant: acmee\n    events:", 1)
	for _, tc := range []struct{ tenants, want string }{
		{"", "no call or agent can be a tenant's"},
		{"tenants:\n  default: house\n  rules:\n    - context_prefix: {\"acme-\": acme, \"globex-\": globex}\n", "it names acme, globex, house"},
		{"tenants:\n  rules:\n    - source: accountcode\n", ""},
		{"tenants:\n  rules:\n    - accountcode: {\"7\": acme}\n    - source: variable\n      variable: T\n", ""},
	} {
		_, err := Load(write(t, webhook+tc.tenants), nil, nil)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v, want it taken (a rule reads names from the channel)", tc.tenants, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "webhooks[0].tenant: \"acmee\"") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want webhooks[0].tenant refused: %s", tc.tenants, err, tc.want)
		}
	}
}
