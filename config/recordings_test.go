package config

import (
	"strings"
	"testing"
	"time"
)

const linkSecret = "s3cr3t-0123456789abcdef0123456789"

// Recording links: the public URL and TTL from the file, the secret from
// the environment; a public URL and a recordings directory without a
// secret is refused (links could not be signed), and no error repeats it.
func TestRecordingLinksConfig(t *testing.T) {
	dir := t.TempDir()
	pub, rdir := "CTIBRIDGE_HTTP__PUBLIC_URL=https://cti.example.com", "CTIBRIDGE_HTTP__RECORDINGS_DIR="+dir
	body := minimal + "recordings:\n  link_ttl: 2h\n"
	cfg, err := Load(write(t, body), []string{pub, rdir, "CTIBRIDGE_RECORDINGS__LINK_SECRET=" + linkSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.LinksEnabled() || cfg.Recordings.LinkTTL != 2*time.Hour || cfg.HTTP.PublicURL != "https://cti.example.com" {
		t.Fatalf("recordings %+v http %+v", cfg.Recordings, cfg.HTTP)
	}
	if cfg, err := Load(write(t, minimal), nil, nil); err != nil || cfg.Recordings.LinkTTL != 24*time.Hour || cfg.LinksEnabled() {
		t.Fatalf("defaults: %+v %v", cfg.Recordings, err)
	}
	for _, tc := range []struct {
		yaml        string
		env         []string
		key, reason string
	}{
		{"", []string{pub, rdir}, "recordings.link_secret", "is required"},
		{"", []string{"CTIBRIDGE_HTTP__PUBLIC_URL=https://u:p@cti.example.com"}, "http.public_url", "user or password"},
		{"", []string{"CTIBRIDGE_HTTP__PUBLIC_URL=https://cti.example.com/?x=1"}, "http.public_url", "no query"},
		{"", []string{"CTIBRIDGE_HTTP__PUBLIC_URL=cti.example.com"}, "http.public_url", "http or https"},
		{"recordings:\n  link_ttl: 10s", nil, "recordings.link_ttl", "from 1m"},
		{"", []string{"CTIBRIDGE_RECORDINGS__LINK_SECRET=short-" + "secret"}, "recordings.link_secret", "at least 32"},
		{"", []string{"CTIBRIDGE_RECORDINGS__LINK_SECRET=" + linkSecret + " x"}, "recordings.link_secret", "spaces"},
	} {
		_, err := Load(write(t, minimal+tc.yaml+"\n"), tc.env, nil)
		if err == nil || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%q %v: err = %v, want %s: …%s", tc.yaml, tc.env, err, tc.key, tc.reason)
		}
		if err != nil && (strings.Contains(err.Error(), linkSecret) || strings.Contains(err.Error(), "short-secret")) {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}

// The Bitrix24 application token (click-to-call) is checked without
// being repeated.
func TestBitrix24ApplicationTokenConfig(t *testing.T) {
	hook := "CTIBRIDGE_CONNECTORS__BITRIX24__WEBHOOK_URL=https://p.bitrix24.com/rest/1/abcdefgh12345678/"
	users := "connectors:\n  bitrix24:\n    users: {\"101\": 1}\n"
	cfg, err := Load(write(t, minimal+users), []string{hook, "CTIBRIDGE_CONNECTORS__BITRIX24__APPLICATION_TOKEN=0123456789abcdef0123456789abcdef"}, nil)
	if err != nil || cfg.Connectors.Bitrix24.ApplicationToken != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("%+v %v", cfg.Connectors.Bitrix24, err)
	}
	_, err = Load(write(t, minimal+users), []string{hook, "CTIBRIDGE_CONNECTORS__BITRIX24__APPLICATION_TOKEN=bad token!"}, nil)
	if err == nil || !strings.Contains(err.Error(), "connectors.bitrix24.application_token: ") || strings.Contains(err.Error(), "bad token") {
		t.Fatalf("err = %v", err)
	}
}
