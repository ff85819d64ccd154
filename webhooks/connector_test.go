package webhooks_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks"
)

// scriptedConnector answers each Deliver with the next scripted error for
// that event (nil once the script is used up) and records the calls.
type scriptedConnector struct {
	mu      sync.Mutex
	script  map[string][]error
	calls   []string // event IDs, in call order
	busy    map[string]bool
	overlap bool // two events of one conversation were delivered at once
}

func (c *scriptedConnector) Name() string { return "scripted" }

func (c *scriptedConnector) Deliver(ctx context.Context, rec bridge.Record) error {
	c.mu.Lock()
	if c.busy[rec.ConversationID] {
		c.overlap = true
	}
	c.busy[rec.ConversationID] = true
	c.calls = append(c.calls, rec.ID)
	var err error
	if s := c.script[rec.ID]; len(s) > 0 {
		err, c.script[rec.ID] = s[0], s[1:]
	}
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // widen the window an overlap would need
	c.mu.Lock()
	c.busy[rec.ConversationID] = false
	c.mu.Unlock()
	return err
}

// A connector endpoint gets the dispatcher's scheduling: per-conversation
// order, retries of retryable errors (with the CRM's Retry-After), an
// immediate dead letter for a permanent error, the attempt log, and no
// 410-style disabling.
func TestConnectorEndpoint(t *testing.T) {
	conn := &scriptedConnector{busy: map[string]bool{}, script: map[string][]error{
		"evt_a_1": {&bridge.ConnectorError{StatusCode: 503, RetryAfter: time.Millisecond, Err: errors.New("QUERY_LIMIT_EXCEEDED")},
			errors.New("connection refused")},
		"evt_b_1": {bridge.PermanentError(errors.New("agent extension 101 has no CRM user"))},
		"evt_c_1": {&bridge.ConnectorError{StatusCode: http.StatusGone, Err: errors.New("gone")}},
	}}
	store := newFakeStore()
	logs := &recordingHandler{}
	h := start(t, store, webhooks.Options{BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		Connectors: map[string]bridge.Connector{"crm": conn}, Logger: slog.New(logs)},
		bridge.Endpoint{ID: "crm", URL: "connector:scripted"})

	h.d.Notify(store.commit(records([]string{"a", "b", "c"}, 3), "crm"))
	// a: 2 failures + 3 delivered; b: 1 dead + 2 delivered; c: 1 failure + 3.
	h.waitAttempts(12)
	h.stop()

	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.overlap {
		t.Error("two events of one conversation were delivered at once")
	}
	pos := map[string]int{}
	for i, id := range conn.calls {
		pos[id] = i // last call of each event
	}
	for _, c := range []string{"a", "b", "c"} {
		if !(pos["evt_"+c+"_1"] < pos["evt_"+c+"_2"] && pos["evt_"+c+"_2"] < pos["evt_"+c+"_3"]) {
			t.Errorf("conversation %s out of order: %v", c, conn.calls)
		}
	}
	if len(conn.calls) != 12 {
		t.Errorf("%d calls, want 12: %v", len(conn.calls), conn.calls)
	}
	as := store.attemptsOf("evt_a_1")
	if len(as) != 3 || as[0].StatusCode != 503 || as[0].Outcome != bridge.DeliveryPending ||
		!strings.Contains(as[0].Error, "QUERY_LIMIT_EXCEEDED") || as[2].Outcome != bridge.DeliveryDelivered {
		t.Errorf("evt_a_1 attempts %+v", as)
	}
	as = store.attemptsOf("evt_b_1")
	if len(as) != 1 || as[0].Outcome != bridge.DeliveryDead || !strings.Contains(as[0].Error, "no CRM user") {
		t.Errorf("evt_b_1 attempts %+v", as)
	}
	if s := store.status("crm", "evt_b_2"); s != bridge.DeliveryDelivered {
		t.Errorf("evt_b_2 %s: a dead letter must not block its conversation", s)
	}
	if st := h.d.Stats(); st.Disabled != 0 || st.Dead != 1 || st.Delivered != 8 {
		t.Errorf("stats %+v", st)
	}
	// The permanent refusal is said as such: not a closed retry window,
	// and never "retrying".
	if n, _ := logs.count(slog.LevelWarn, "webhook delivery dead: refused for good, not retried; fix what err says, then replay"); n != 1 {
		t.Errorf("%d refused-for-good lines, want 1", n)
	}
	if n, _ := logs.count(slog.LevelWarn, "webhook delivery dead: retry window exhausted"); n != 0 {
		t.Errorf("a permanent refusal logged as a closed retry window (%d)", n)
	}
}

// A connector whose link came back says so (Resume): a delivery waiting
// out an hour's backoff goes at once, while one the endpoint asked to wait
// for (Retry-After) still waits. (A 500's Retry-After holds only its own
// delivery; a 429's or 503's would hold the whole endpoint:
// TestRetryAfterPausesEndpoint.)
func TestResumeEndsBackoff(t *testing.T) {
	conn := &scriptedConnector{busy: map[string]bool{}, script: map[string][]error{
		"evt_a_1": {errors.New("nats: no servers available")},
		"evt_b_1": {&bridge.ConnectorError{StatusCode: 500, RetryAfter: time.Hour, Err: errors.New("try later")}},
	}}
	store := newFakeStore()
	h := start(t, store, webhooks.Options{BackoffBase: time.Hour, BackoffMax: time.Hour,
		Connectors: map[string]bridge.Connector{"sink": conn}},
		bridge.Endpoint{ID: "sink", URL: "connector:scripted"})
	h.d.Notify(store.commit(records([]string{"a", "b"}, 1), "sink"))
	h.waitAttempts(2) // both failed: one backs off an hour, one was asked to wait an hour
	h.d.Resume("sink")
	as := h.waitAttempts(3)
	h.stop()
	if got := as[2]; got.EventID != "evt_a_1" {
		t.Fatalf("after Resume, attempt of %s, want evt_a_1 (evt_b_1 was asked to wait): %+v", got.EventID, as)
	}
	h.mu.Lock()
	n := len(h.attempts)
	h.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d attempts, want 3: the Retry-After one must still wait", n)
	}
}
