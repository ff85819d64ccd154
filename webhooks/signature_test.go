package webhooks_test

import (
	"encoding/base64"
	"errors"
	"github.com/ctibridge/ctibridge/bridge"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/webhooks"
)

// The Standard Webhooks specification's published example.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	got, err := webhooks.Sign(specSecret, specID, time.Unix(specTS, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSig {
		t.Fatalf("Sign = %s, want %s", got, specSig)
	}
}

func specHeader(sig string, ts int64) http.Header {
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTS, 0)
	other := bridge.NewWebhookSecret()
	otherSig, _ := webhooks.Sign(other, specID, now, []byte(specBody))
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"spec vector", specSecret, specHeader(specSig, specTS), specBody, now, nil},
		{"several signatures, one valid", specSecret, specHeader("v1,Zm9v "+otherSig+" v1a,xyz "+specSig, specTS), specBody, now, nil},
		{"within tolerance", specSecret, specHeader(specSig, specTS), specBody, now.Add(4 * time.Minute), nil},
		{"wrong secret", other, specHeader(specSig, specTS), specBody, now, webhooks.ErrSignature},
		{"tampered body", specSecret, specHeader(specSig, specTS), `{"test": 2432232315}`, now, webhooks.ErrSignature},
		{"tampered timestamp", specSecret, specHeader(specSig, specTS+1), specBody, now, webhooks.ErrSignature},
		{"old timestamp", specSecret, specHeader(specSig, specTS), specBody, now.Add(6 * time.Minute), webhooks.ErrTimestamp},
		{"future timestamp", specSecret, specHeader(specSig, specTS), specBody, now.Add(-6 * time.Minute), webhooks.ErrTimestamp},
		{"non-numeric timestamp", specSecret, func() http.Header {
			h := specHeader(specSig, specTS)
			h.Set("webhook-timestamp", "yesterday")
			return h
		}(), specBody, now, webhooks.ErrTimestamp},
		{"only another scheme", specSecret, specHeader("v1a,"+strings.TrimPrefix(specSig, "v1,"), specTS), specBody, now, webhooks.ErrSignature},
		{"missing signature", specSecret, func() http.Header {
			h := specHeader(specSig, specTS)
			h.Del("webhook-signature")
			return h
		}(), specBody, now, webhooks.ErrMissingHeaders},
		{"bad secret format", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", specHeader(specSig, specTS), specBody, now, webhooks.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooks.Verify(tt.secret, tt.h, []byte(tt.body), 0, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	// A negative tolerance turns the timestamp check off.
	if err := webhooks.Verify(specSecret, specHeader(specSig, specTS), []byte(specBody), -1, now.Add(24*time.Hour)); err != nil {
		t.Fatalf("no tolerance: %v", err)
	}
}

func TestSecretErrors(t *testing.T) {
	for _, secret := range []string{
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",    // no prefix
		"whsec_MfKQ9r8G*KYqrTwjUPD8ILPZIo2La", // not base64
		"whsec_",                              // empty key
	} {
		_, err := webhooks.Sign(secret, "id", time.Now(), nil)
		if !errors.Is(err, webhooks.ErrInvalidSecret) {
			t.Fatalf("Sign(%q) error = %v, want ErrInvalidSecret", secret, err)
		}
		if key := strings.TrimPrefix(secret, "whsec_"); key != "" && strings.Contains(err.Error(), key) {
			t.Fatalf("error %q repeats the secret", err)
		}
	}
	_, err := webhooks.Sign("nope", "id", time.Now(), nil)
	if !strings.Contains(err.Error(), `must start with "whsec_"`) {
		t.Fatalf("error %q does not name the problem", err)
	}
	_, err = webhooks.Sign("whsec_!!!!", "id", time.Now(), nil)
	if !strings.Contains(err.Error(), "base64") {
		t.Fatalf("error %q does not name the problem", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := bridge.NewWebhookSecret(), bridge.NewWebhookSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", a, len(key), err)
	}
	sig, err := webhooks.Sign(a, "msg_1", time.Unix(1, 0), []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", "1")
	h.Set("webhook-signature", sig)
	if err := webhooks.Verify(a, h, []byte("{}"), 0, time.Unix(1, 0)); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// FuzzVerify: Verify never panics on hostile headers, a signature made by
// Sign always verifies, and changing the body or the id breaks it.
func FuzzVerify(f *testing.F) {
	f.Add(specID, int64(specTS), []byte(specBody), specSig, specSecret)
	f.Add("evt_1", int64(0), []byte{}, "v1,", "whsec_")
	f.Add("a,b", int64(-1), []byte("\x00\xff"), "v1,AAAA v1a,BBBB", "not-a-secret")
	f.Add("", int64(1<<40), []byte(`{"type":"call.ringing"}`), strings.Repeat("v1,x ", 100), specSecret)
	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte, sig, secret string) {
		now := time.Unix(ts, 0)
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
		_ = webhooks.Verify(secret, h, body, 5*time.Minute, now) // must not panic
		if id == "" {
			return // a missing id is refused, checked above not to panic
		}
		good, err := webhooks.Sign(specSecret, id, now, body)
		if err != nil {
			t.Fatalf("Sign with a valid secret: %v", err)
		}
		h.Set("webhook-signature", good)
		if err := webhooks.Verify(specSecret, h, body, 5*time.Minute, now); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if err := webhooks.Verify(specSecret, h, append(append([]byte(nil), body...), 'x'), 5*time.Minute, now); err == nil {
			t.Fatal("a changed body verified")
		}
		h.Set("webhook-id", id+"x")
		if err := webhooks.Verify(specSecret, h, body, 5*time.Minute, now); err == nil {
			t.Fatal("a changed id verified")
		}
	})
}

// SignAll is the header of an endpoint in rotation: one v1 signature per
// secret, and a receiver holding any one of the secrets verifies it.
func TestSignAllRotation(t *testing.T) {
	oldSecret, newSecret, other := bridge.NewWebhookSecret(), bridge.NewWebhookSecret(), bridge.NewWebhookSecret()
	ts := time.Unix(specTS, 0)
	h, err := webhooks.SignAll([]string{newSecret, oldSecret}, specID, ts, []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := webhooks.Sign(newSecret, specID, ts, []byte(specBody))
	two, _ := webhooks.Sign(oldSecret, specID, ts, []byte(specBody))
	if h != one+" "+two {
		t.Fatalf("SignAll = %q, want %q", h, one+" "+two)
	}
	for name, secret := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := webhooks.Verify(secret, specHeader(h, specTS), []byte(specBody), 0, ts); err != nil {
			t.Errorf("holding only the %s secret: %v", name, err)
		}
	}
	if err := webhooks.Verify(other, specHeader(h, specTS), []byte(specBody), 0, ts); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("a third secret: %v", err)
	}
	if _, err := webhooks.SignAll([]string{newSecret, "whsec_nope"}, specID, ts, []byte(specBody)); !errors.Is(err, webhooks.ErrInvalidSecret) {
		t.Errorf("a bad second secret: %v", err)
	}
}
