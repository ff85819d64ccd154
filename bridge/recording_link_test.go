package bridge_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

const linkSecret = "0123456789abcdef0123456789abcdef"

func newLinks(t *testing.T, secret string, now time.Time) *bridge.RecordingLinks {
	t.Helper()
	l, err := bridge.NewRecordingLinks(secret, "https://cti.example.com/", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l.SetClock(func() time.Time { return now })
	return l
}

func TestRecordingLinkRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLinks(t, linkSecret, now)
	u, ok := l.URL("conv_abc")
	if !ok || !strings.HasPrefix(u, "https://cti.example.com/v1/recordings/") {
		t.Fatalf("URL %q %v", u, ok)
	}
	tok := strings.TrimPrefix(u, "https://cti.example.com/v1/recordings/")
	if strings.ContainsAny(tok, "/+=?") {
		t.Fatalf("token %q is not URL-path safe", tok)
	}
	if id, ok := l.Verify(tok); !ok || id != "conv_abc" {
		t.Fatalf("Verify = %q %v", id, ok)
	}
	// The same secret after a restart verifies it; another does not.
	if id, ok := newLinks(t, linkSecret, now).Verify(tok); !ok || id != "conv_abc" {
		t.Fatal("a link does not survive a restart with the same secret")
	}
	if _, ok := newLinks(t, strings.Repeat("x", 32), now).Verify(tok); ok {
		t.Fatal("a link verified under another secret")
	}
}

func TestRecordingLinkExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLinks(t, linkSecret, now)
	tok, err := l.Sign("conv_abc", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	l.SetClock(func() time.Time { return now.Add(59 * time.Second) })
	if _, ok := l.Verify(tok); !ok {
		t.Fatal("refused before its expiry")
	}
	l.SetClock(func() time.Time { return now.Add(time.Minute) })
	if _, ok := l.Verify(tok); ok {
		t.Fatal("accepted at its expiry")
	}
}

// Every byte of a token is sealed: flipping any bit of the expiry, the
// conversation id or the MAC refuses it, so neither the call nor the
// lifetime can be changed, and one call's token opens no other.
func TestRecordingLinkTampered(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLinks(t, linkSecret, now)
	tok, _ := l.Sign("conv_aaa", now.Add(time.Hour))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if id, ok := l.Verify(base64.RawURLEncoding.EncodeToString(b)); ok {
				t.Fatalf("byte %d bit %d flipped: verified as %q", i, bit, id)
			}
		}
	}
	// Another call's id spliced in with the first call's MAC.
	other, _ := l.Sign("conv_bbb", now.Add(time.Hour))
	rawOther, _ := base64.RawURLEncoding.DecodeString(other)
	spliced := append(append([]byte(nil), rawOther[:len(rawOther)-16]...), raw[len(raw)-16:]...)
	if _, ok := l.Verify(base64.RawURLEncoding.EncodeToString(spliced)); ok {
		t.Fatal("another call's id with this call's MAC verified")
	}
	for _, bad := range []string{"", "x", tok + "=", tok + "A", strings.Repeat("A", 500), "../../etc/passwd", tok[:len(tok)-1]} {
		if _, ok := l.Verify(bad); ok {
			t.Fatalf("%q verified", bad)
		}
	}
}

func TestRecordingLinkConfig(t *testing.T) {
	if _, err := bridge.NewRecordingLinks("short", "", time.Hour); err == nil {
		t.Fatal("a short secret accepted")
	}
	for _, base := range []string{"ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f", "x.example.com", "https://x?"} {
		if _, err := bridge.NewRecordingLinks(linkSecret, base, time.Hour); err == nil {
			t.Errorf("public URL %q accepted", base)
		}
	}
	l, err := bridge.NewRecordingLinks(linkSecret, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.URL("conv_a"); ok {
		t.Fatal("a URL without a public base")
	}
	if _, err := l.Sign(strings.Repeat("c", 65), time.Now()); err == nil {
		t.Fatal("an over-long id signed")
	}
}
