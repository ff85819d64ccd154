package connectors

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// A transport error never repeats the URL (url.Error does) nor a secret.
func TestTransportErrorScrubs(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "https://crm.example/api/v1/cti/s3cr3tTok", Err: errors.New("dial s3cr3tTok: refused")}
	got := TransportError("crm: newCall", err, "s3cr3tTok").Error()
	if strings.Contains(got, "s3cr3tTok") || strings.Contains(got, "crm.example") || got != "crm: newCall: dial ***: refused" {
		t.Fatalf("got %q", got)
	}
	if s := Scrub("a tok b tok", "", "tok"); s != "a *** b ***" {
		t.Fatalf("Scrub: %q", s)
	}
}
