package config

import (
	"errors"
	"strings"
	"testing"
)

const zammadToken = "Zq1w2e3r4-t5y6_u7"

// The Zammad connector: the endpoint URL from the environment (a secret),
// users and direction rules from the file, the defaults.
func TestZammadConfig(t *testing.T) {
	body := minimal + "connectors:\n  zammad:\n    users:\n      \"101\": Anna Agent\n    outbound: false\n"
	env := []string{"CTIBRIDGE_CONNECTORS__ZAMMAD__URL=https://help.example.com/api/v1/cti/" + zammadToken}
	cfg, err := Load(write(t, body), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	z := cfg.Connectors.Zammad
	if !z.Enabled() || z.Users["101"] != "Anna Agent" || !z.Inbound || z.Outbound || z.Burst != 20 || z.Rate != 10 {
		t.Errorf("zammad = %+v", z)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.Connectors.Zammad.Enabled() {
		t.Errorf("without a URL the connector is off: %+v, %v", cfg.Connectors.Zammad, err)
	}
}

// Bad values name the key; no error repeats the endpoint's token.
func TestZammadConfigErrors(t *testing.T) {
	url := "https://help.example.com/api/v1/cti/" + zammadToken
	for _, tc := range []struct{ yaml, key, reason string }{
		{"url: https://help.example.com/api/v1/" + zammadToken, "connectors.zammad.url", "/api/v1/cti/<token>"},
		{"url: " + url + "?x=" + zammadToken, "connectors.zammad.url", "no credentials, query"},
		{"url: ftp://help.example.com/api/v1/cti/" + zammadToken, "connectors.zammad.url", "CTI endpoint"},
		{"url: " + url + "\n    users: {\"1 01\": Anna}", "connectors.zammad.users", "not an extension"},
		{"url: " + url + "\n    users: {\"101\": \" \"}", "connectors.zammad.users.101", "agent's name"},
		{"url: " + url + "\n    inbound: false\n    outbound: false", "connectors.zammad", "nothing would be sent"},
		{"url: " + url + "\n    rate: 0", "connectors.zammad.rate", "above 0"},
		{"url: " + url + "\n    burst: 0", "connectors.zammad.burst", "1..10000"},
	} {
		_, err := Load(write(t, minimal+"connectors:\n  zammad:\n    "+tc.yaml+"\n"), nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want key %s with %q", tc.yaml, err, tc.key, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), zammadToken) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}
