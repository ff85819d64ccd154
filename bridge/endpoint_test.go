package bridge_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

func TestWebhookSecretKey(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	good := []string{bridge.NewWebhookSecret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + b64(24), "whsec_" + b64(64)}
	for _, s := range good {
		if _, err := bridge.WebhookSecretKey(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := map[string]string{
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw": `must start with "whsec_"`,
		"whsec_":                           "24 to 64",
		"whsec_" + b64(23):                 "24 to 64",
		"whsec_" + b64(65):                 "24 to 64",
		"whsec_MfKQ9r8G\r\nKYqrTwjUPD8ILPZIo2LaLaSw": "standard base64", // the decoder alone would skip CR LF
		"whsec_MfKQ9r8G*KYqrTwjUPD8ILPZIo2LaLaSw":    "standard base64",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS":      "standard base64", // bad padding
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\x00": "standard base64",
	}
	for s, want := range bad {
		_, err := bridge.WebhookSecretKey(s)
		if !errors.Is(err, bridge.ErrWebhookSecret) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %q", s, err, want)
			continue
		}
		if key := strings.TrimPrefix(s, "whsec_"); len(key) > 4 && strings.Contains(err.Error(), key[:5]) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
}

func TestHasScope(t *testing.T) {
	k := bridge.APIKey{Scopes: []string{bridge.ScopeControl}}
	for scope, want := range map[string]bool{"read": true, "control": true, "admin": false, "": false, "root": false} {
		if got := k.HasScope(scope); got != want {
			t.Errorf("control key HasScope(%q) = %v", scope, got)
		}
	}
}
