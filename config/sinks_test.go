package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sinks.nats from the file and the environment, with its defaults; files
// named relative to the config file are found beside it.
func TestNATSSinkConfig(t *testing.T) {
	path := write(t, minimal+"sinks:\n  nats:\n    urls: [nats://n1:4222, tls://n2:4222]\n    user: bridge\n    create_stream: true\n    tls:\n      ca_file: ca.pem\n")
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"CTIBRIDGE_SINKS__NATS__PASSWORD=pw-from-env"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Sinks.NATS
	if !n.Enabled() || len(n.URLs) != 2 || n.User != "bridge" || n.Password != "pw-from-env" || n.Stream != "CTIBRIDGE" ||
		n.Subject != "ctibridge.<tenant>.<pbx>.<type>" || n.DuplicateWindow != 2*time.Hour || n.MaxAge != 7*24*time.Hour ||
		n.Replicas != 1 || n.PublishTimeout != 5*time.Second || n.TLS.CAFile != filepath.Join(filepath.Dir(path), "ca.pem") {
		t.Errorf("sinks.nats = %+v", n)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.Sinks.NATS.Enabled() {
		t.Errorf("without urls the sink is off: %v", err)
	}
	if cfg, err := Load(write(t, minimal), []string{"CTIBRIDGE_SINKS__NATS__URLS=nats://a:4222,nats://b:4222"}, nil); err != nil || len(cfg.Sinks.NATS.URLs) != 2 {
		t.Errorf("urls from the environment: %v %v", cfg.Sinks.NATS.URLs, err)
	}
}

// Bad values name the key and say what is wrong; credentials in a URL are
// refused without being repeated.
func TestNATSSinkConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, key, reason string }{
		{"urls: [http://n:4222]", "sinks.nats.urls[0]", "must be nats, tls, ws or wss"},
		{"urls: [nats://bridge:hunter22@n:4222]", "sinks.nats.urls[0]", "must not hold credentials"},
		{"urls: [\"nats://n:4222?x=1\"]", "sinks.nats.urls[0]", "no query"},
		{"create_stream: true", "sinks.nats.urls", "is required"},
		{"urls: [nats://n]\n    subject: ctibridge.*.<type>", "sinks.nats.subject", "no wildcards"},
		{"urls: [nats://n]\n    subject: ctibridge..<type>", "sinks.nats.subject", "no empty level"},
		{"urls: [nats://n]\n    subject: ctibridge.<account>", "sinks.nats.subject", "placeholders"},
		{"urls: [nats://n]\n    subject: \"a b.<type>\"", "sinks.nats.subject", "letters, digits"},
		{"urls: [nats://n]\n    user: u", "sinks.nats.password", "is required with user"},
		{"urls: [nats://n]\n    user: u\n    password: p\n    token: t", "sinks.nats", "not several"},
		{"urls: [nats://n]\n    credentials_file: /nonexistent/x.creds", "sinks.nats.credentials_file", "cannot read /nonexistent/x.creds"},
		{"urls: [nats://n]\n    tls: {cert_file: /etc/hostname}", "sinks.nats.tls", "go together"},
		{"urls: [nats://n]\n    stream: \"a.b\"", "sinks.nats.stream", "letters, digits"},
		{"urls: [nats://n]\n    create_stream: true\n    stream_subjects: [\"a.>.b\"]", "sinks.nats.stream_subjects[0]", "not a subject filter"},
		{"urls: [nats://n]\n    stream_subjects: [a.>]", "sinks.nats.stream_subjects", "only with create_stream"},
		{"urls: [nats://n]\n    create_stream: true\n    subject: mmx.<tenant>.<pbx>.<type>\n    stream_subjects: [\"mm.>\"]", "sinks.nats.stream_subjects", "capture none of the subjects events go to (mmx.*.*.*)"},
		{"urls: [nats://n]\n    duplicate_window: 48h\n    max_age: 24h", "sinks.nats.duplicate_window", "must not exceed max_age"},
		{"urls: [nats://n]\n    duplicate_window: 5s", "sinks.nats.duplicate_window", "must be at least 1m0s, got 5s"},
		{"urls: [nats://n]\n    replicas: 7", "sinks.nats.replicas", "1..5"},
		{"urls: [nats://n]\n    publish_timeout: 0s", "sinks.nats.publish_timeout", "positive duration"},
		{"urls: [nats://n]\n    publish_timeout: 40s", "sinks.nats.publish_timeout", "shorter than 3 × delivery.timeout"},
		{"urls: [nats://n]\n    frobnicate: 1", "sinks.nats.frobnicate", "unknown key"},
	} {
		_, err := Load(write(t, minimal+"sinks:\n  nats:\n    "+tc.yaml+"\n"), nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want key %s with %q", tc.yaml, err, tc.key, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), "hunter22") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
	body := strings.Replace(minimal, "  - url:", "  - id: sink-nats\n    url:", 1) + "sinks:\n  nats:\n    urls: [nats://n]\n"
	if _, err := Load(write(t, body), nil, nil); err == nil || !strings.Contains(err.Error(), `"sink-nats" is the NATS sink's`) {
		t.Errorf("webhook id sink-nats: %v", err)
	}
}

// The compose file's fleet setup is a valid configuration: its
// CTIBRIDGE_SINKS__ variables over deploy/ctibridge.yaml turn the sink on.
func TestComposeFleetSetupLoads(t *testing.T) {
	compose, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"CTIBRIDGE_PBX__SECRET=" + strings.Repeat("ab", 24)}
	for _, line := range strings.Split(string(compose), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok && strings.HasPrefix(k, "CTIBRIDGE_SINKS__") {
			env = append(env, k+"="+strings.Trim(v, `"`))
		}
	}
	cfg, err := Load("../deploy/ctibridge.yaml", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Sinks.NATS; !n.Enabled() || !n.CreateStream || n.URLs[0] != "nats://127.0.0.1:4222" {
		t.Errorf("compose's fleet setup: %+v (from %v)", n, env)
	}
}
