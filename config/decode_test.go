package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A value that would silently mean something else is refused, naming
// the key, the value and the fix.
func TestValuesNeverMeanSomethingElse(t *testing.T) {
	cases := []struct{ old, edit, want string }{
		{"address: 127.0.0.1:5038", "address: 127.0.0.1:5038\n  ping_interval: 20", "pbx.ping_interval: 20 has no unit; write 20s"},
		{"address: 127.0.0.1:5038", "address: 127.0.0.1:5038\n  tls: yes", `pbx.tls: "yes" is not a boolean; write true or false`},
		{"path: ./ctibridge.db", "path: ./ctibridge.db\n  retention_days: 1.5", "store.retention_days: 1.5 is not a whole number; write 1 or 2"},
		{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\nlog:\n  level: [debug]", "log.level: is a list"},
		{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\ndelivery:\n  timeout: 2.5", "delivery.timeout: 2.5 has no unit; write 2.5s"},
	}
	for _, tc := range cases {
		_, err := Load(write(t, strings.Replace(minimal, tc.old, tc.edit, 1)), nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.edit, err, tc.want)
		}
	}
	// The same rules for the environment and --set, which give text.
	for key, val := range map[string]string{"delivery.timeout": "10", "pbx.tls": "yes", "store.retention_days": "1.5"} {
		_, err := Load(write(t, minimal), nil, map[string]string{key: val})
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != key || !strings.Contains(ce.Reason, val) {
			t.Errorf("--set %s=%s: err = %v", key, val, err)
		}
	}
	// Zero needs no unit, and units, booleans and whole numbers still load.
	cfg, err := Load(write(t, minimal), []string{"CTIBRIDGE_PBX__RECONCILE_INTERVAL=0", "CTIBRIDGE_PBX__TLS=TRUE"},
		map[string]string{"pbx.ping_interval": "1m30s", "store.retention_days": "7"})
	if err != nil || cfg.PBX.ReconcileInterval != 0 || !cfg.PBX.TLS || cfg.PBX.PingInterval != 90*time.Second || cfg.Store.RetentionDays != 7 {
		t.Errorf("valid values: %v %+v %+v", err, cfg.PBX, cfg.Store)
	}
}

// Every problem of a file is reported at once, each naming its key.
func TestAllProblemsAtOnce(t *testing.T) {
	body := strings.NewReplacer("type: asterisk", "type: sip", "listen: 127.0.0.1:8080", "listen: 8080\n  max_streams: 0",
		"address: 127.0.0.1:5038", "address: 127.0.0.1:5038\n  ping_interval: 20\n  tls: yes\n  colour: blue").Replace(minimal)
	_, err := Load(write(t, body), []string{"CTIBRIDGE_PBX_SECRET=x"}, nil)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	keys := map[string]bool{}
	for _, e := range es {
		keys[e.Key] = true
	}
	for _, k := range []string{"pbx.type", "http.listen", "http.max_streams", "pbx.ping_interval", "pbx.tls", "pbx.colour", "CTIBRIDGE_PBX_SECRET"} {
		if !keys[k] {
			t.Errorf("%s not reported in:\n%v", k, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "config: 8 problems:") {
		t.Errorf("message: %v", err)
	}
}

// Enumerated values are read case-insensitively, every one of them.
func TestEnumsIgnoreCase(t *testing.T) {
	cfg, err := Load(write(t, strings.Replace(minimal, "type: asterisk", "type: Asterisk", 1)), nil,
		map[string]string{"log.level": "DEBUG", "log.format": "JSON", "http.anonymous": "Read", "store.synchronous": "normal", "calls.default_region": "gb"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PBX.Type != "asterisk" || cfg.Log.Level != "debug" || cfg.Log.Format != "json" || cfg.HTTP.Anonymous != "read" ||
		cfg.Store.Synchronous != "NORMAL" || cfg.Calls.DefaultRegion != "GB" {
		t.Errorf("not canonical: %+v %+v %+v", cfg.PBX, cfg.Log, cfg.HTTP)
	}
}

// Every key has its variable; a misspelt one is named with the right
// spelling; the project's own test knobs never stop serve.
func TestEnvironmentMapping(t *testing.T) {
	vars := EnvVars()
	for name, key := range map[string]string{"CTIBRIDGE_PBX__SECRET": "pbx.secret", "CTIBRIDGE_STORE__PATH": "store.path",
		"CTIBRIDGE_DELIVERY__ALLOW_LINK_LOCAL": "delivery.allow_link_local", "CTIBRIDGE_CALLS__AGENTS__": "calls.agents."} {
		if vars[name] != key {
			t.Errorf("%s maps to %q, want %q", name, vars[name], key)
		}
	}
	if _, ok := vars["CTIBRIDGE_WEBHOOKS"]; ok {
		t.Error("webhooks (a list of sections) has a variable")
	}
	_, err := Load(write(t, minimal), []string{"CTIBRIDGE_PBX_SECRET=s3cr3t"}, nil)
	if err == nil || err.Error() != "config: CTIBRIDGE_PBX_SECRET: unknown setting; did you mean CTIBRIDGE_PBX__SECRET?" {
		t.Errorf("misspelt variable: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error repeats the value: %v", err)
	}
	_, err = Load(write(t, minimal), []string{"CTIBRIDGE_CALLS__AGENTS=101"}, nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean CTIBRIDGE_CALLS__AGENTS__<KEY>?") {
		t.Errorf("a map as one variable: %v", err)
	}
	env := []string{"CTIBRIDGE_FAULTS_LONG=1", "CTIBRIDGE_FAULTS_OUT=/tmp/x", "CTIBRIDGE_BENCH_CALLS=5",
		"CTIBRIDGE_CALLS__AGENTS__101=Alice", "CTIBRIDGE_CALLS__INBOUND_CONTEXTS=a,b", "CTIBRIDGE_HTTP__MAX_STREAMS=200"}
	cfg, err := Load(write(t, minimal), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Calls.Agents["101"] != "Alice" || len(cfg.Calls.InboundContexts) != 2 || cfg.Calls.InboundContexts[1] != "b" || cfg.HTTP.MaxStreams != 200 {
		t.Errorf("variables not applied: %+v %+v", cfg.Calls, cfg.HTTP)
	}
}

// A relative path in the file means next to the file, wherever the
// command runs from (apikey list --config run/ctibridge.yaml from
// elsewhere must open the same database).
func TestRelativePathsFollowTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "run", "ctibridge.yaml")
	body := strings.Replace(minimal, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\n  recordings_dir: rec", 1)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cfg, err := Load(filepath.Join("run", "ctibridge.yaml"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Path != filepath.Join(dir, "run", "ctibridge.db") || cfg.HTTP.RecordingsDir != filepath.Join(dir, "run", "rec") {
		t.Errorf("paths: store %s, recordings %s; want them in %s", cfg.Store.Path, cfg.HTTP.RecordingsDir, filepath.Join(dir, "run"))
	}
	// The default store.path too.
	cfg, err = Load(write(t, strings.Replace(minimal, "  path: ./ctibridge.db\n", "  synchronous: FULL\n", 1)), nil, nil)
	if err != nil || filepath.Base(cfg.Store.Path) != "ctibridge.db" || !filepath.IsAbs(cfg.Store.Path) || strings.HasPrefix(cfg.Store.Path, mustGetwd(t)) {
		t.Errorf("default store.path = %q (%v), want beside the file", cfg.Store.Path, err)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
