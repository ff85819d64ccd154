package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const hubspotToken = "pat-na1-11112222-3333-4444-5555-666677778888"

// The HubSpot connector: the token from the environment (a secret), the
// owners and options from the file, the defaults.
func TestHubSpotConfig(t *testing.T) {
	body := minimal + "connectors:\n  hubspot:\n    owners:\n      \"101\": 12345678\n    associate_contacts: true\n"
	env := []string{"CTIBRIDGE_CONNECTORS__HUBSPOT__TOKEN=" + hubspotToken}
	cfg, err := Load(write(t, body), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Connectors.HubSpot
	if !h.Enabled() || h.Owners["101"] != "12345678" || !h.AssociateContacts || h.DefaultOwner != "" || h.Burst != 20 || h.Rate != 8 ||
		h.APIURL != "https://api.hubapi.com" || h.SearchLag != 10*time.Second {
		t.Errorf("hubspot = %+v", h)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.Connectors.HubSpot.Enabled() {
		t.Errorf("without a token the connector is off: %+v, %v", cfg.Connectors.HubSpot, err)
	}
}

// Bad values name the key; no error repeats the token.
func TestHubSpotConfigErrors(t *testing.T) {
	tok := "token: " + hubspotToken + "\n    "
	for _, tc := range []struct{ yaml, key, reason string }{
		{"token: \"pat na1 " + hubspotToken + "\"\n    owners: {\"101\": \"1\"}", "connectors.hubspot.token", "without spaces"},
		{tok + "owners: {}", "connectors.hubspot.owners", "owner id"},
		{tok + "owners: {\"1 01\": \"1\"}", "connectors.hubspot.owners", "not an extension"},
		{tok + "owners: {\"101\": \"anna@example.com\"}", "connectors.hubspot.owners.101", "HubSpot owner id"},
		{tok + "default_owner: x1", "connectors.hubspot.default_owner", "owner id"},
		{tok + "default_owner: \"1\"\n    api_url: ftp://api.hubapi.com", "connectors.hubspot.api_url", "http(s) URL"},
		{tok + "default_owner: \"1\"\n    burst: 500", "connectors.hubspot.burst", "1..190"},
		{tok + "default_owner: \"1\"\n    rate: 0", "connectors.hubspot.rate", "above 0"},
		{tok + "default_owner: \"1\"\n    search_lag: 10m", "connectors.hubspot.search_lag", "100ms..5m"},
	} {
		_, err := Load(write(t, minimal+"connectors:\n  hubspot:\n    "+tc.yaml+"\n"), nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want key %s with %q", tc.yaml, err, tc.key, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), hubspotToken) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}
