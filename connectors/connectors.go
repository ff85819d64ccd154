// Package connectors holds what every CRM connector shares: the rate limiter
// per CRM account and the per-call state helpers. Each CRM has its own
// subpackage (bitrix24, …) implementing bridge.Connector; the webhook
// dispatcher schedules them like webhook endpoints.
package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ctibridge/ctibridge/bridge"
)

// Limiter is a token bucket shared by every request to one CRM account:
// Burst requests at once, then Rate per second. It mirrors the CRM's own
// bucket (Bitrix24: 50 burst, 2/s), so that a busy moment queues here
// instead of collecting 503s there.
type Limiter struct {
	burst float64
	rate  float64 // tokens per second

	// now and sleep are the clock, replaceable in tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64
	at     time.Time
}

// NewLimiter returns a full bucket of burst tokens refilled at rate per
// second.
func NewLimiter(burst int, rate float64) *Limiter {
	l := &Limiter{burst: float64(max(burst, 1)), rate: rate, now: time.Now, sleep: sleepCtx}
	l.tokens, l.at = l.burst, l.now()
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refill brings the bucket up to now. l.mu must be held.
func (l *Limiter) refill() {
	now := l.now()
	if el := now.Sub(l.at); el > 0 {
		l.tokens = min(l.burst, l.tokens+el.Seconds()*l.rate)
	}
	l.at = now
}

// Wait takes a token, waiting for one as long as ctx allows.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		l.refill()
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		if err := l.sleep(ctx, max(wait, time.Millisecond)); err != nil {
			return err
		}
	}
}

// Drain empties the bucket: the CRM said its own is empty (Bitrix24's 503
// QUERY_LIMIT_EXCEEDED), so the next requests wait for the refill.
func (l *Limiter) Drain() {
	l.mu.Lock()
	l.refill()
	l.tokens = 0
	l.mu.Unlock()
}

// SetClock replaces the limiter's clock (tests).
func (l *Limiter) SetClock(now func() time.Time, sleep func(context.Context, time.Duration) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now, l.sleep = now, sleep
	l.at = now()
}

// LoadState reads a connector's JSON state of a conversation into v; it
// leaves v as it is when none was saved.
func LoadState(ctx context.Context, s bridge.ConnectorStateStore, connector, conv string, v any) error {
	b, err := s.ConnectorState(ctx, connector, conv)
	if err != nil {
		return fmt.Errorf("%s: reading call state: %w", connector, err)
	}
	if b == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		// Nothing but this connector writes it: a bug, not a CRM problem.
		return bridge.PermanentError(fmt.Errorf("%s: call state unreadable: %v", connector, err))
	}
	return nil
}

// SaveState commits a connector's JSON state of a conversation.
func SaveState(ctx context.Context, s bridge.ConnectorStateStore, connector, conv string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return bridge.PermanentError(fmt.Errorf("%s: call state: %v", connector, err))
	}
	if err := s.SaveConnectorState(ctx, connector, conv, b); err != nil {
		return fmt.Errorf("%s: saving call state: %w", connector, err)
	}
	return nil
}

// RetryAfter reads a Retry-After header's seconds (at most an hour); 0 when
// absent or not a number of seconds.
func RetryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	return 0
}

// Snippet makes the start of a CRM's answer printable for the attempt log:
// at most 200 characters, the token (if any) replaced before the cut could
// split it, control characters blanked.
func Snippet(b []byte, token string) string {
	const n = 200
	s := string(b[:min(len(b), 4<<10)])
	if token != "" {
		s = strings.ReplaceAll(s, token, "***")
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s[:min(len(s), n)], ""))
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// NewClient is a connector's HTTP client when the dispatcher's is not
// given: it never follows a redirect, which could carry a token in the URL
// to another host.
func NewClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Scrub replaces every secret in s with ***, for text that may echo a
// request (an error, a CRM's answer).
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// TransportError is a request that got no answer, fit for the attempt log:
// url.Error's copy of the URL (which may hold a token) is dropped and the
// secrets scrubbed. Such an error is retried.
func TransportError(prefix string, err error, secrets ...string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: %s", prefix, Scrub(err.Error(), secrets...))
}
