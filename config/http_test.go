package config

import (
	"strings"
	"testing"
)

// The HTTP section's access rules: what is accepted, and each refusal
// names its key.
func TestHTTPAccessRules(t *testing.T) {
	ok := []map[string]string{
		{},
		{"http.anonymous": "none"},
		{"http.anonymous": "read"},
		{"http.anonymous": "control", "http.listen": "localhost:8181"},
		{"http.anonymous": "read", "http.listen": "[::1]:8181"},
		{"http.anonymous": "none", "http.listen": "0.0.0.0:8080"},
		{"http.anonymous_loopback": "true"},
		{"http.allowed_origins": "https://crm.example.com,http://127.0.0.1:3000,https://[fd00::1]:8443"},
		{"http.allowed_hosts": "ctibridge.internal,10.0.0.5:8080,[fd00::1],pbx-1.lan:8181"},
		{"http.max_streams": "10", "http.max_streams_per_key": "10"},
	}
	for _, o := range ok {
		cfg, err := Load(write(t, minimal), nil, o)
		if err != nil {
			t.Errorf("%v: %v", o, err)
			continue
		}
		if len(o) == 0 && (cfg.HTTP.Anonymous != "" || cfg.HTTP.MaxStreams != 1000 || cfg.HTTP.MaxStreamsPerKey != 50 ||
			len(cfg.HTTP.AllowedOrigins) != 0 || len(cfg.HTTP.AllowedHosts) != 0) {
			t.Errorf("defaults: %+v", cfg.HTTP)
		}
	}
	bad := []struct {
		set       map[string]string
		key, says string
	}{
		{map[string]string{"http.anonymous": "admin"}, "http.anonymous", "cannot be admin"},
		{map[string]string{"http.anonymous": "write"}, "http.anonymous", "none, read or control"},
		{map[string]string{"http.anonymous": "control", "http.anonymous_loopback": "true"}, "http.anonymous_loopback", "set only http.anonymous"},
		{map[string]string{"http.anonymous": "read", "http.listen": "0.0.0.0:8080"}, "http.anonymous", "loopback"},
		{map[string]string{"http.anonymous": "control", "http.listen": ":8080"}, "http.anonymous", "loopback"},
		{map[string]string{"http.allowed_origins": "*"}, "http.allowed_origins[0]", "scheme://host"},
		{map[string]string{"http.allowed_origins": "null"}, "http.allowed_origins[0]", "scheme://host"},
		{map[string]string{"http.allowed_origins": "crm.example.com"}, "http.allowed_origins[0]", "scheme://host"},
		{map[string]string{"http.allowed_origins": "https://crm.example.com/"}, "http.allowed_origins[0]", `did you mean "https://crm.example.com"`},
		{map[string]string{"http.allowed_origins": "https://crm.example.com:443"}, "http.allowed_origins[0]", `did you mean "https://crm.example.com"`},
		{map[string]string{"http.allowed_origins": "https://CRM.example.com"}, "http.allowed_origins[0]", `did you mean "https://crm.example.com"`},
		{map[string]string{"http.allowed_origins": "https://crm.example.com/app"}, "http.allowed_origins[0]", "no path"},
		{map[string]string{"http.allowed_origins": "ftp://crm.example.com"}, "http.allowed_origins[0]", "scheme://host"},
		{map[string]string{"http.allowed_origins": "https://a.example,https://*.example"}, "http.allowed_origins[1]", "scheme://host"},
		{map[string]string{"http.allowed_hosts": "*.example.com"}, "http.allowed_hosts[0]", "host name"},
		{map[string]string{"http.allowed_hosts": "http://crm.example.com"}, "http.allowed_hosts[0]", "host name"},
		{map[string]string{"http.allowed_hosts": "Crm.Example"}, "http.allowed_hosts[0]", "host name"},
		{map[string]string{"http.allowed_hosts": "crm.example:99999"}, "http.allowed_hosts[0]", "host name"},
		{map[string]string{"http.allowed_hosts": "fd00::1"}, "http.allowed_hosts[0]", "host name"},
		{map[string]string{"http.max_streams": "0"}, "http.max_streams", "at least 1"},
		{map[string]string{"http.max_streams_per_key": "0"}, "http.max_streams_per_key", "from 1"},
		{map[string]string{"http.max_streams": "10", "http.max_streams_per_key": "11"}, "http.max_streams_per_key", "from 1 to"},
	}
	for _, b := range bad {
		_, err := Load(write(t, minimal), nil, b.set)
		if err == nil || !strings.Contains(err.Error(), b.key+":") || !strings.Contains(err.Error(), b.says) {
			t.Errorf("%v: %v, want %s: ...%s...", b.set, err, b.key, b.says)
		}
	}
	// Lists from the environment, comma-separated.
	cfg, err := Load(write(t, minimal), []string{"CTIBRIDGE_HTTP__ALLOWED_ORIGINS=https://a.example,https://b.example"}, nil)
	if err != nil || len(cfg.HTTP.AllowedOrigins) != 2 || cfg.HTTP.AllowedOrigins[1] != "https://b.example" {
		t.Fatalf("allowed_origins from the environment: %v %v", cfg.HTTP.AllowedOrigins, err)
	}
}
