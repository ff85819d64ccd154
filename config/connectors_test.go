package config

import (
	"errors"
	"strings"
	"testing"
)

const b24Token = "q1w2e3r4t5y6u7i8"

// The Bitrix24 connector: the webhook URL from the environment (a secret),
// the users map from the file, the documented defaults.
func TestBitrix24Config(t *testing.T) {
	body := minimal + "connectors:\n  bitrix24:\n    users:\n      \"101\": 1\n      \"102\": 7\n    line_number: \"+74950000000\"\n"
	env := []string{"CTIBRIDGE_CONNECTORS__BITRIX24__WEBHOOK_URL=https://acme.bitrix24.com/rest/1/" + b24Token + "/"}
	cfg, err := Load(write(t, body), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Connectors.Bitrix24
	if !b.Enabled() || b.Users["101"] != 1 || b.Users["102"] != 7 || b.LineNumber != "+74950000000" ||
		!b.Show || !b.CRMCreate || b.Burst != 50 || b.Rate != 2 {
		t.Errorf("bitrix24 = %+v", b)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.Connectors.Bitrix24.Enabled() {
		t.Errorf("without a webhook URL the connector is off: %+v, %v", cfg.Connectors.Bitrix24, err)
	}
}

// Bad values name the key; no error repeats the webhook URL's token.
func TestBitrix24ConfigErrors(t *testing.T) {
	url := "https://acme.bitrix24.com/rest/1/" + b24Token + "/"
	for _, tc := range []struct{ yaml, key, reason string }{
		{"webhook_url: https://acme.bitrix24.com/rest/" + b24Token + "/\n    users: {\"101\": 1}", "connectors.bitrix24.webhook_url", "/rest/<user id>/<token>/"},
		{"webhook_url: " + url + "?x=" + b24Token + "\n    users: {\"101\": 1}", "connectors.bitrix24.webhook_url", "no credentials, query"},
		{"webhook_url: " + url, "connectors.bitrix24.users", "map each agent extension"},
		{"webhook_url: " + url + "\n    users: {\"101\": 0}", "connectors.bitrix24.users.101", "positive"},
		{"webhook_url: " + url + "\n    users: {\"101\": 1}\n    rate: 0", "connectors.bitrix24.rate", "above 0"},
		{"webhook_url: " + url + "\n    users: {\"101\": 1}\n    burst: 0", "connectors.bitrix24.burst", "1..10000"},
	} {
		_, err := Load(write(t, minimal+"connectors:\n  bitrix24:\n    "+tc.yaml+"\n"), nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want key %s with %q", tc.yaml, err, tc.key, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), b24Token) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}

// check lists every connector problem at once, each connector's and each
// map entry's, in the same order every time.
func TestConnectorsConfigEveryProblem(t *testing.T) {
	body := minimal + `connectors:
  bitrix24:
    webhook_url: https://acme.bitrix24.com/rest/x/` + b24Token + `/
    users: {"100": 0, "101": -3}
    burst: 0
  zammad:
    url: https://zammad.example/api/v1/cti/
  hubspot:
    token: "has a space"
    owners: {"100": "abc"}
    burst: 500
`
	var first string
	for i := range 3 {
		_, err := Load(write(t, body), nil, nil)
		if err == nil {
			t.Fatal("no error")
		}
		for _, key := range []string{"connectors.bitrix24.webhook_url", "connectors.bitrix24.users.100", "connectors.bitrix24.users.101",
			"connectors.bitrix24.burst", "connectors.zammad.url", "connectors.hubspot.token", "connectors.hubspot.owners.100", "connectors.hubspot.burst"} {
			if !strings.Contains(err.Error(), key+": ") {
				t.Errorf("%s not reported in %v", key, err)
			}
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("the problems came in another order:\n%s\n%s", first, err)
		}
	}
}
