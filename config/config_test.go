package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `pbx:
  name: pbx1
  type: asterisk
  address: 127.0.0.1:5038
  username: bridge
  secret: bridgepass
store:
  path: ./ctibridge.db
http:
  listen: 127.0.0.1:8080
webhooks:
  - url: http://127.0.0.1:9000/hook
    secret: whsec_PHZGjneBihxkwp4yob8KYtEnXhlCOi86FVOUKvpQNqo=
    events: ["call.*", "recording.*"]
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ctibridge.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMinimal(t *testing.T) {
	cfg, err := Load(write(t, minimal), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PBX.Secret != "bridgepass" || cfg.Webhooks[0].ID != "cfg-1" || cfg.Delivery.RetryWindow != 72*time.Hour {
		t.Fatalf("unexpected config: %+v", cfg)
	}
	if got := cfg.Webhooks[0].Events; len(got) != 2 || got[1] != "recording.*" {
		t.Fatalf("events = %v", got)
	}
}

func TestEnvAndOverridesWin(t *testing.T) {
	env := []string{"CTIBRIDGE_PBX__SECRET=fromenv", "CTIBRIDGE_DELIVERY__RETRY_WINDOW=1h", "PATH=/bin"}
	cfg, err := Load(write(t, minimal), env, map[string]string{"http.listen": "127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PBX.Secret != "fromenv" || cfg.Delivery.RetryWindow != time.Hour || cfg.HTTP.Listen != "127.0.0.1:9999" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestBadConfigNamesKey(t *testing.T) {
	cases := []struct{ edit, old, key string }{
		{"type: sip", "type: asterisk", "pbx.type"},
		{"address: nowhere", "address: 127.0.0.1:5038", "pbx.address"},
		{"secret: ''", "secret: bridgepass", "pbx.secret"},
		{"secret: nope", "secret: whsec_PHZGjneBihxkwp4yob8KYtEnXhlCOi86FVOUKvpQNqo=", "webhooks[0].secret"},
		{"url: ftp://x/", "url: http://127.0.0.1:9000/hook", "webhooks[0].url"},
		{`events: ["calls.*"]`, `events: ["call.*", "recording.*"]`, "webhooks[0].events"},
		{"listen: 8080", "listen: 127.0.0.1:8080", "http.listen"},
		{"pathh: x", "path: ./ctibridge.db", "store.pathh"},
		// A CRM URL's credentials and tokens are refused without being
		// repeated in the error.
		{"url: https://user:P4SSW0RD@crm.example.com/hook?token=T0KEN", "url: http://127.0.0.1:9000/hook", "webhooks[0].url"},
		{"url: ftp://user:P4SSW0RD@crm/hook?token=T0KEN", "url: http://127.0.0.1:9000/hook", "webhooks[0].url"},
	}
	for _, tc := range cases {
		_, err := Load(write(t, strings.Replace(minimal, tc.old, tc.edit, 1)), nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%s: err = %v, want key %s", tc.edit, err, tc.key)
		}
		if err != nil && (strings.Contains(err.Error(), "P4SSW0RD") || strings.Contains(err.Error(), "T0KEN")) {
			t.Errorf("%s: the error repeats a secret: %v", tc.edit, err)
		}
	}
	for key, val := range map[string]string{"commands.agent_dial": "PJSIP/100", "commands.context": "from internal",
		"commands.transfer_context": "a,b", "commands.queue_interface": "Local/{agent} x", "commands.record_dir": "rec",
		"commands.ring_timeout": "0s", "http.request_timeout": "-1s",
		"store.max_queued_events": "10", "commands.variable_prefix": "api_", "pbx.reorder_window": "-1ms",
		"delivery.max_in_flight_per_endpoint": "0"} {
		_, err := Load(write(t, minimal), nil, map[string]string{key: val})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != key {
			t.Errorf("%s=%q: err = %v, want it named", key, val, err)
		}
	}
	// Addresses that pass a host:port split yet could never be dialled or
	// listened on: caught by check, not at start or at the first connect.
	for _, c := range []struct{ key, val, why string }{
		{"http.listen", "127.0.0.1:70000", "port must be a number from 0 to 65535"},
		{"http.listen", "127.0.0.1:-1", "port must be a number"},
		{"http.listen", "127.0.0.1:http", "port must be a number"},
		{"http.listen", "not a host:80", `host "not a host" is neither`},
		{"pbx.address", "pbx.example.com:0", "port must be a number from 1 to 65535"},
		{"pbx.address", ":5038", "host is missing"},
		{"pbx.address", "pbx/1:5038", "neither an IP address nor a DNS name"},
	} {
		_, err := Load(write(t, minimal), nil, map[string]string{c.key: c.val})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s=%q: err = %v, want it named: %s", c.key, c.val, err, c.why)
		}
	}
	for _, kv := range [][2]string{{"http.listen", ":8080"}, {"pbx.address", "[::1]:5038"}, {"pbx.address", "pbx_1.local:5038"}} {
		if _, err := Load(write(t, minimal), nil, map[string]string{kv[0]: kv[1]}); err != nil {
			t.Errorf("%s=%q refused: %v", kv[0], kv[1], err)
		}
	}
	if _, err := Load(write(t, minimal), nil, map[string]string{"http.listen": "LocalHost:0", "pbx.address": "PBX.Example.com:5038"}); err != nil {
		t.Errorf("a free port and a host in capitals refused: %v", err)
	}
	cfg, err := Load(write(t, minimal), nil, map[string]string{"commands.agent_dial": "PJSIP/{agent}", "commands.context": "from-internal",
		"http.recordings_dir": "/var/spool/asterisk/monitor"})
	if err != nil || cfg.Commands.AgentDial != "PJSIP/{agent}" || cfg.Commands.RingTimeout != 30*time.Second || cfg.HTTP.RecordingsDir != "/var/spool/asterisk/monitor" ||
		cfg.Commands.VariablePrefix != "crm_" {
		t.Errorf("valid commands: %+v %v", cfg.Commands, err)
	}
	if _, err := Load(write(t, minimal), nil, map[string]string{"pbx.reorder_window": "2s"}); err == nil || !strings.Contains(err.Error(), "pbx.reorder_window") {
		t.Errorf("reorder window past 1s: err = %v", err)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.PBX.ReorderWindow != 5*time.Millisecond {
		t.Errorf("default reorder window: %v %v", cfg.PBX.ReorderWindow, err)
	}
	if cfg, err := Load(write(t, minimal), nil, map[string]string{"pbx.reorder_window": "0"}); err != nil || cfg.PBX.ReorderWindow != 0 {
		t.Errorf("reorder window off: %v %v", cfg.PBX.ReorderWindow, err)
	}
	_, err = Load(write(t, minimal), nil, map[string]string{"pbx.ping_interval": "soon"})
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "pbx.ping_interval" {
		t.Errorf("bad duration: err = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Load(write(t, "pbx: [\n"), nil, nil); err == nil || !strings.Contains(err.Error(), "YAML") {
		t.Errorf("bad yaml: err = %v", err)
	}
}

func TestSecretNeverInError(t *testing.T) {
	_, err := Load(write(t, strings.Replace(minimal, "type: asterisk", "type: bogus", 1)), nil, nil)
	if err == nil || strings.Contains(err.Error(), "bridgepass") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(minimal)
	f.Add("pbx: {type: freeswitch}\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, nil, nil)
		if err == nil && cfg.Validate() != nil {
			t.Fatalf("Load accepted a config Validate rejects")
		}
	})
}
