// Package webhooks delivers committed events to CRM endpoints as signed
// HTTP POSTs, at least once, in order per conversation.
//
// Signing follows the Standard Webhooks specification
// (https://www.standardwebhooks.com): every request carries webhook-id,
// webhook-timestamp and webhook-signature headers, so CRMs can verify
// requests with any of the spec's published libraries.
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, both ways, before Verify rejects it as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Header names defined by the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Errors returned by Verify and by secret parsing. None of them ever
// includes the secret.
var (
	ErrInvalidSecret  = bridge.ErrWebhookSecret
	ErrMissingHeaders = errors.New("webhooks: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrTimestamp      = errors.New("webhooks: webhook-timestamp outside tolerance")
	ErrSignature      = errors.New("webhooks: no matching signature")
)

// parseSecret returns the HMAC key of a whsec_ secret (bridge's rule).
func parseSecret(secret string) ([]byte, error) {
	key, err := bridge.WebhookSecretKey(secret)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one message:
// "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := parseSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

// SignAll returns the webhook-signature header value for an endpoint that
// holds several secrets, as during a rotation: one space-separated "v1,"
// signature per secret, in the order given. A receiver holding any one of
// them verifies the request (Verify, or any Standard Webhooks library).
func SignAll(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		key, err := parseSecret(s)
		if err != nil {
			return "", err
		}
		keys = append(keys, key)
	}
	return signatureHeader(keys, id, ts.Unix(), body), nil
}

// signingKeys decodes an endpoint's secret and, during a rotation, its
// previous one.
func signingKeys(secret, previous string) ([][]byte, error) {
	key, err := parseSecret(secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{key}
	if previous != "" {
		prev, err := parseSecret(previous)
		if err != nil {
			return nil, fmt.Errorf("previous secret: %w", err)
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

func signatureHeader(keys [][]byte, id string, ts int64, body []byte) string {
	var b strings.Builder
	for i, key := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, id, ts, body)))
	}
	return b.String()
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	writeSigned(h, nil, id, ts, body)
	return h.Sum(nil)
}

// writeSigned feeds h the signed content, "id.timestamp.body", with buf as
// scratch space for the prefix; it returns buf for reuse.
func writeSigned(h hash.Hash, buf []byte, id string, ts int64, body []byte) []byte {
	buf = append(buf[:0], id...)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, ts, 10)
	buf = append(buf, '.')
	h.Write(buf)
	h.Write(body)
	return buf
}

// signer makes an endpoint's webhook-signature headers. It keeps keyed
// HMAC states for reuse: a fresh hmac.New per request allocated two SHA-256
// states and their pads every time, a measurable share of a backlog drain.
type signer struct {
	keys  [][]byte
	pools []sync.Pool // of *keyedMAC, one pool per key
}

type keyedMAC struct {
	h   hash.Hash
	buf []byte
}

func newSigner(keys [][]byte) *signer {
	return &signer{keys: keys, pools: make([]sync.Pool, len(keys))}
}

// header is signatureHeader(s.keys, id, ts, body).
func (s *signer) header(id string, ts int64, body []byte) string {
	const sigLen = len("v1,") + 44 // base64 of a SHA-256 sum
	out := make([]byte, 0, len(s.keys)*(sigLen+1))
	for i, key := range s.keys {
		if i > 0 {
			out = append(out, ' ')
		}
		m, _ := s.pools[i].Get().(*keyedMAC)
		if m == nil {
			m = &keyedMAC{h: hmac.New(sha256.New, key)}
		} else {
			m.h.Reset() // back to the keyed initial state
		}
		m.buf = writeSigned(m.h, m.buf, id, ts, body)
		m.buf = m.h.Sum(m.buf[:0]) // the prefix is written: buf is free
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, m.buf)
		s.pools[i].Put(m)
	}
	return string(out)
}

// Verify checks a received webhook. h must carry the three webhook-*
// headers; the signature header may hold several space-separated
// signatures (one per secret while the sender rotates its secret) and any
// valid v1 one passes, so a receiver holding only the old secret and one
// holding only the new verify the same request.
// tolerance bounds the clock difference between sender and now: zero means
// DefaultTolerance, a negative value disables the check.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := parseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return ErrTimestamp
		}
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue // other schemes (e.g. v1a asymmetric) are not ours to check
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
