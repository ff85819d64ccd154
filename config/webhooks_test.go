package config

import (
	"errors"
	"strings"
	"testing"
)

const testWebhookSecret = "whsec_PHZGjneBihxkwp4yob8KYtEnXhlCOi86FVOUKvpQNqo="

// Webhook endpoints the delivery policy would refuse, published secrets
// and bad previous secrets stop the start (exit 2) naming the key.
func TestWebhookSecurityNamesKey(t *testing.T) {
	url := "url: http://127.0.0.1:9000/hook"
	for _, tc := range []struct {
		old, edit, key, reason string
	}{
		{url, "url: http://169.254.169.254/latest/meta-data/", "webhooks[0].url", "169.254.169.254 is a cloud metadata address: always refused"},
		{url, "url: http://[::ffff:a9fe:a9fe]/x", "webhooks[0].url", "cloud metadata"},
		{url, "url: http://168.63.129.16/machine", "webhooks[0].url", "cloud metadata"},
		{url, "url: http://169.254.10.1/hook", "webhooks[0].url", "refused by delivery.allow_link_local"},
		{url, "url: http://metadata.google.internal/computeMetadata/v1/", "webhooks[0].url", "cloud metadata service"},
		{url, "url: http://2852039166/", "webhooks[0].url", "dotted-quad"},
		{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\ndelivery:\n  allow_loopback: false", "webhooks[0].url",
			"127.0.0.1 is a loopback address: refused by delivery.allow_loopback"},
		{"secret: " + testWebhookSecret, "secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "webhooks[0].secret", "published example secret"},
		{"secret: " + testWebhookSecret, "secret: " + testWebhookSecret + "\n    previous_secret: hunter2", "webhooks[0].previous_secret", "whsec_"},
		{"secret: " + testWebhookSecret, "secret: " + testWebhookSecret + "\n    previous_secret: " + testWebhookSecret, "webhooks[0].previous_secret", "same as secret"},
	} {
		body := strings.Replace(minimal, tc.old, tc.edit, 1)
		if body == minimal {
			t.Fatalf("%q not in the minimal config", tc.old)
		}
		_, err := Load(write(t, body), nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Reason, tc.reason) {
			t.Errorf("%s: err = %v, want key %s with %q", tc.edit, err, tc.key, tc.reason)
		}
	}

	// Allowed: a link-local CRM with allow_link_local; a rotation, even one
	// away from the published secret.
	for _, edit := range []struct{ old, new, extra string }{
		{url, "url: http://169.254.10.1/hook", "delivery:\n  allow_link_local: true\n"},
		{"secret: " + testWebhookSecret, "secret: " + testWebhookSecret + "\n    previous_secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
	} {
		cfg, err := Load(write(t, strings.Replace(minimal, edit.old, edit.new, 1)+edit.extra), nil, nil)
		if err != nil {
			t.Errorf("%s: %v", edit.new, err)
			continue
		}
		if strings.Contains(edit.new, "previous_secret") && cfg.Webhooks[0].PreviousSecret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
			t.Errorf("previous_secret not read: %+v", cfg.Webhooks[0])
		}
	}
}
