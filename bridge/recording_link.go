package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"strings"
	"time"
)

// RecordingLinks signs and verifies recording links: URLs a CRM fetches a
// call's recording from without an API key, because the link itself is the
// credential. A token names one conversation and an expiry, sealed with an
// HMAC key: it opens that call's recording only, and only until it expires.
// It holds no file path: the server finds the recording from the
// conversation, under its recordings directory.
type RecordingLinks struct {
	key  []byte
	base string // the public URL, without a trailing slash
	ttl  time.Duration
	now  func() time.Time
}

// RecordingLinkPath is the path recording links are served at; the token
// follows it.
const RecordingLinkPath = "/v1/recordings/"

// MinRecordingLinkSecret is the shortest secret links are signed from.
const MinRecordingLinkSecret = 32

// Token layout: 8 bytes of expiry (Unix seconds, big-endian), the
// conversation id, then a 16-byte MAC over both. 128 bits of MAC are far
// beyond what guessing over HTTP can reach.
const (
	linkMACLen   = 16
	maxLinkConv  = 64 // PlaceCall and the store accept no longer id
	maxLinkToken = 4 * (8 + maxLinkConv + linkMACLen + 2) / 3
)

// NewRecordingLinks derives the signing key from secret (at least
// MinRecordingLinkSecret bytes): the same secret gives the same key, so
// links survive a restart, and changing it revokes every link given out.
// base is the public URL CRMs reach ctibridge at; ttl how long a link lasts.
func NewRecordingLinks(secret, base string, ttl time.Duration) (*RecordingLinks, error) {
	if len(secret) < MinRecordingLinkSecret {
		return nil, errors.New("the link secret must be at least 32 characters (e.g. `openssl rand -hex 32`)")
	}
	if ttl <= 0 {
		return nil, errors.New("the link lifetime must be positive")
	}
	if base != "" {
		if err := CheckPublicURL(base); err != nil {
			return nil, err
		}
	}
	// A key of its own: the secret, if reused elsewhere, is not the key.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ctibridge recording links v1"))
	return &RecordingLinks{key: m.Sum(nil), base: strings.TrimSuffix(base, "/"), ttl: ttl, now: time.Now}, nil
}

// CheckPublicURL checks a base URL CRMs reach ctibridge at: http or https,
// a host, no credentials, query or fragment.
func CheckPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("must be an http or https URL such as https://ctibridge.example.com")
	}
	if u.User != nil {
		return errors.New("must not hold a user or password")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return errors.New("must have no query or fragment")
	}
	return nil
}

// SetClock replaces the clock (tests).
func (l *RecordingLinks) SetClock(now func() time.Time) { l.now = now }

// TTL is how long a new link lasts.
func (l *RecordingLinks) TTL() time.Duration { return l.ttl }

// Sign returns a token for conversationID's recording, valid until expires.
func (l *RecordingLinks) Sign(conversationID string, expires time.Time) (string, error) {
	if conversationID == "" || len(conversationID) > maxLinkConv {
		return "", errors.New("recording link: the conversation id must be 1 to 64 bytes")
	}
	b := make([]byte, 8, 8+len(conversationID)+linkMACLen)
	binary.BigEndian.PutUint64(b, uint64(expires.Unix()))
	b = append(b, conversationID...)
	b = append(b, l.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// URL is a link to conversationID's recording valid for the TTL from now;
// ok is false when no public URL is set or the id cannot be signed.
func (l *RecordingLinks) URL(conversationID string) (string, bool) {
	if l == nil || l.base == "" {
		return "", false
	}
	tok, err := l.Sign(conversationID, l.now().Add(l.ttl))
	if err != nil {
		return "", false
	}
	return l.base + RecordingLinkPath + tok, true
}

// Verify returns the conversation a token opens. ok is false for anything
// malformed, tampered with, signed with another key or expired; the reason
// is not told (it would help guessing).
func (l *RecordingLinks) Verify(token string) (conversationID string, ok bool) {
	if l == nil || len(token) > maxLinkToken {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) < 8+1+linkMACLen {
		return "", false
	}
	body, mac := b[:len(b)-linkMACLen], b[len(b)-linkMACLen:]
	if !hmac.Equal(mac, l.mac(body)) {
		return "", false
	}
	if exp := int64(binary.BigEndian.Uint64(body[:8])); l.now().Unix() >= exp {
		return "", false
	}
	return string(body[8:]), true
}

func (l *RecordingLinks) mac(body []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write(body)
	return m.Sum(nil)[:linkMACLen]
}
