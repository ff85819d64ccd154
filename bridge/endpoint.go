package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A webhook endpoint and the one set of rules for it (id, URL, secrets,
// event filters), shared by the config file, the API and the store.

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

func (e secretError) Error() string { return "invalid webhook secret: " + string(e) }

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

// Endpoint is a webhook subscriber.
type Endpoint struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"-"` // whsec_<base64>; never logged or returned after creation
	// PreviousSecret, during a rotation, is the secret being retired:
	// requests carry a signature for each, so receivers holding either
	// verify them. Empty outside a rotation.
	PreviousSecret string   `json:"-"`
	Events         []string `json:"events"`
	Source         string   `json:"source"` // "config" or "api"
	Disabled       bool     `json:"disabled"`
	// DisabledReason says why, e.g. "endpoint answered 410 Gone".
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// Tenant: the endpoint receives only this tenant's events; "" (an
	// operator's endpoint) receives every tenant's.
	Tenant string `json:"tenant,omitempty"`
}

// Wants reports whether the endpoint subscribes to an event type. Filters are
// exact types or path.Match-style patterns such as "call.*"; no filter means
// every type.
func (e Endpoint) Wants(eventType string) bool {
	return e.wantsType(eventType)
}

// WantsEvent reports whether the endpoint takes an event of this type
// and tenant: an operator endpoint every tenant's, a tenant's only its
// own.
func (e Endpoint) WantsEvent(eventType, tenant string) bool {
	return (e.Tenant == "" || e.Tenant == tenant) && e.wantsType(eventType)
}

func (e Endpoint) wantsType(eventType string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, f := range e.Events {
		if f == "*" || f == eventType {
			return true
		}
		if ok, _ := path.Match(f, eventType); ok {
			return true
		}
	}
	return false
}

var reEndpointID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// maxEventFilters bounds an endpoint's filters.
const maxEventFilters = 64

// Problems lists everything wrong with an endpoint, each naming its field
// (id, url, secret, previous_secret, events): the rules the config file,
// the API and the store share. What depends on the deployment (the
// delivery address policy, published secrets) is checked apart
// (CheckWebhookAddress, CheckPublishedWebhookSecret).
func (ep Endpoint) Problems() []*Error {
	var out []*Error
	if !reEndpointID.MatchString(ep.ID) {
		out = append(out, FieldError("id", "must be 1 to 64 of A-Z a-z 0-9 _ . -, got %q", ep.ID))
	}
	if err := CheckWebhookURL("url", ep.URL); err != nil {
		out = append(out, asError(err))
	}
	if _, err := WebhookSecretKey(ep.Secret); err != nil {
		out = append(out, FieldError("secret", "%v", err))
	}
	if ep.PreviousSecret != "" {
		if _, err := WebhookSecretKey(ep.PreviousSecret); err != nil {
			out = append(out, FieldError("previous_secret", "%v", err))
		} else if ep.PreviousSecret == ep.Secret {
			out = append(out, FieldError("previous_secret", "is the same as secret (remove it once the rotation is over)"))
		}
	}
	if err := CheckEventFilters("events", ep.Events); err != nil {
		out = append(out, asError(err))
	}
	return out
}

// Validate returns the first of Problems, nil when there is none.
func (ep Endpoint) Validate() error {
	if ps := ep.Problems(); len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// CheckEventFilters checks an endpoint's event filters.
func CheckEventFilters(field string, events []string) error {
	if len(events) > maxEventFilters {
		return FieldError(field, "must hold at most %d filters", maxEventFilters)
	}
	for _, f := range events {
		if err := CheckValue(field, f); err != nil {
			return err
		}
		if !ValidEventFilter(f) {
			return FieldError(field, "%q matches no event type (e.g. call.*, recording.ready, agent.state)", f)
		}
	}
	return nil
}

func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Code: EINVALID, Message: err.Error()}
}
