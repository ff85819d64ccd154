package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// APIKey is an API key as stored: its secret is kept only as a hash.
type APIKey struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Agent, when set, limits the key to one extension: its calls and its
	// state (the agent panel signs in with such a key). Never admin.
	Agent      string     `json:"agent,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Scopes an API key can hold, weakest first; each implies those before it.
const (
	ScopeRead    = "read"
	ScopeControl = "control"
	ScopeAdmin   = "admin"
)

// Scopes lists the scopes in rank order.
var Scopes = []string{ScopeRead, ScopeControl, ScopeAdmin}

// ScopeRank is 1, 2, 3 for read, control, admin and 0 for anything else.
func ScopeRank(s string) int {
	for i, x := range Scopes {
		if x == s {
			return i + 1
		}
	}
	return 0
}

// HasScope reports whether the key grants scope: admin implies control,
// control implies read.
func (k APIKey) HasScope(scope string) bool {
	want := ScopeRank(scope)
	if want == 0 {
		return false
	}
	for _, s := range k.Scopes {
		if ScopeRank(s) >= want {
			return true
		}
	}
	return false
}

// HistoryFilter selects calls from the history. Zero fields do not filter.
type HistoryFilter struct {
	From, To    time.Time // started_at in [From, To)
	Number      string    // the caller's or the callee's number, exactly as the PBX gave it
	Agent       string    // agent extension
	Direction   string    // inbound, outbound, internal, unknown
	Disposition string    // answered, no_answer, busy, failed, cancelled
	Limit       int       // page size: default 50, at most MaxHistoryLimit
	Cursor      string    // from the previous page; "" for the first
}

// MaxHistoryLimit bounds one page of history.
const MaxHistoryLimit = 500

// WebhookSecretPrefix starts every endpoint secret (Standard Webhooks);
// the rest is the standard base64 of the HMAC key.
const WebhookSecretPrefix = "whsec_"

// Bounds of a webhook key, in bytes, from the Standard Webhooks spec.
const (
	MinWebhookKey = 24
	MaxWebhookKey = 64
)

// ErrWebhookSecret is what every secret problem wraps.
var ErrWebhookSecret = errors.New("invalid webhook secret")

// NewWebhookSecret returns a fresh random secret: whsec_ and 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// WebhookSecretKey returns the HMAC key of a whsec_ secret. The one rule
// for config, the API and the store alike. Its errors never repeat the
// secret.
func WebhookSecretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, WebhookSecretPrefix)
	if !ok {
		return nil, secretError(`must start with "` + WebhookSecretPrefix + `"`)
	}
	// The decoder skips CR and LF; a secret must not carry them anywhere.
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, secretError(`text after "` + WebhookSecretPrefix + `" must be standard base64`)
		}
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, secretError(`text after "` + WebhookSecretPrefix + `" must be standard base64`)
	}
	if len(key) < MinWebhookKey || len(key) > MaxWebhookKey {
		return nil, secretError("the key must be 24 to 64 random bytes (ctibridge secret prints one)")
	}
	return key, nil
}

type secretError string

func (e secretError) Error() string        { return "invalid webhook secret: " + string(e) }
func (e secretError) Is(target error) bool { return target == ErrWebhookSecret }

// CheckWebhookURL is the one rule for an endpoint's URL, from the config,
// the API or the store. Its errors never repeat the URL: a CRM's URL often
// carries a token.
func CheckWebhookURL(field, raw string) error {
	if err := CheckValue(field, raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		return FieldError(field, "must be an absolute http(s) URL")
	case len(raw) > 2048:
		return FieldError(field, "must be at most 2048 bytes")
	case u.User != nil:
		return FieldError(field, "must not carry credentials (user:password@): the signature authenticates the sender")
	case u.Fragment != "":
		return FieldError(field, "must not have a #fragment")
	case numericHost(u.Hostname()):
		return FieldError(field, "host must be a name, a dotted-quad IPv4 address or a bracketed IPv6 address: "+
			"resolvers read hosts such as 2852039166, 0xa9fea9fe or 010.0.0.1 as IPv4 addresses of their own")
	}
	return nil
}

// numericHost reports a host that is not an IP literal Go reads but that
// some resolvers (inet_aton) read as an IPv4 address in decimal, octal or
// hex. A top-level domain is never all digits, so a name whose last label
// is a number is one of those.
func numericHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	last := strings.TrimSuffix(host, ".")
	last = last[strings.LastIndexByte(last, '.')+1:]
	digits := "0123456789"
	if len(last) > 2 && (last[:2] == "0x" || last[:2] == "0X") {
		last, digits = last[2:], "0123456789abcdefABCDEF"
	}
	return last != "" && strings.Trim(last, digits) == ""
}

// CheckWebhookAddress refuses a URL whose host is an IP literal the policy
// forbids, or the name of a metadata service, so that it fails when it is
// saved rather than at every delivery. A host name is checked again, on
// every address it resolves to, each time the dispatcher connects. Call it
// after CheckWebhookURL.
func CheckWebhookAddress(field, raw string, p AddressPolicy) error {
	u, err := url.Parse(raw)
	if err != nil {
		return FieldError(field, "must be an absolute http(s) URL")
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := p.Check(addr); err != nil {
			return FieldError(field, "host %v", err)
		}
		return nil
	}
	if slices.Contains(metadataHosts, strings.ToLower(strings.TrimSuffix(host, "."))) {
		return FieldError(field, "host %s is a cloud metadata service: always refused", host)
	}
	return nil
}

// publishedWebhookSecrets are secrets anyone can read: the Standard Webhooks
// specification's example, which ctibridge's own examples shipped until
// they stopped carrying secrets. A receiver that accepts them accepts
// forgeries.
var publishedWebhookSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}

// CheckPublishedWebhookSecret refuses a published example secret as an
// endpoint's secret. The config and the API apply it to the secret they are
// given, not to a previous secret: signing with a secret everyone knows
// gives nothing away, and it lets receivers move off it without a gap.
// Signing and verifying do not apply it (the specification's test vector
// uses it).
func CheckPublishedWebhookSecret(field, secret string) error {
	if slices.Contains(publishedWebhookSecrets, secret) {
		return FieldError(field, "is a published example secret (the Standard Webhooks specification's, once in ctibridge's examples): anyone can sign with it; "+
			"`ctibridge secret` prints a new one (to move receivers off it without a gap, keep it as previous_secret meanwhile)")
	}
	return nil
}

// ValidEventFilter reports whether an endpoint's event filter (call.*,
// recording.ready) can match some event type.
func ValidEventFilter(f string) bool {
	e := Endpoint{Events: []string{f}}
	return slices.ContainsFunc(EventTypes, e.Wants)
}
