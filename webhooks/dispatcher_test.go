package webhooks_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// wait bounds every wait in these tests. Nothing is asserted about how long
// things take; it only keeps a broken test from hanging.
const wait = 30 * time.Second

var testSecret = bridge.NewWebhookSecret()

type harness struct {
	t      *testing.T
	store  *fakeStore
	d      *webhooks.Dispatcher
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	attempts []bridge.Attempt
	changed  chan struct{}
}

// start runs a dispatcher over store until the test ends.
func start(t *testing.T, store *fakeStore, opts webhooks.Options, eps ...bridge.Endpoint) *harness {
	t.Helper()
	h := &harness{t: t, store: store, done: make(chan error, 1), changed: make(chan struct{})}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hook := opts.OnAttempt
	opts.OnAttempt = func(a bridge.Attempt) {
		if hook != nil {
			hook(a)
		}
		h.mu.Lock()
		h.attempts = append(h.attempts, a)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
	h.d = webhooks.New(store.deliveryStore(), opts)
	h.d.SetEndpoints(eps)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.d.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends Run and waits for it; after it no request is under way.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.done <- nil // later stops return at once
	case <-time.After(wait):
		h.t.Fatal("Run did not return")
	}
}

// waitAttempts waits until n attempts were made and returns them all.
func (h *harness) waitAttempts(n int) []bridge.Attempt {
	h.t.Helper()
	deadline := time.After(wait)
	for {
		h.mu.Lock()
		as, ch := append([]bridge.Attempt(nil), h.attempts...), h.changed
		h.mu.Unlock()
		if len(as) >= n {
			return as
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("%d attempts, want %d", len(as), n)
		}
	}
}

// waitUntil polls cond. Used only where no event signals the condition.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func endpoint(id, url string) bridge.Endpoint {
	return bridge.Endpoint{ID: id, URL: url, Secret: testSecret}
}

func records(convs []string, n int) []bridge.Record {
	var rs []bridge.Record
	for seq := int64(1); seq <= int64(n); seq++ {
		for _, c := range convs {
			rs = append(rs, event(c, seq))
		}
	}
	return rs
}

func TestDeliver(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	h := start(t, store, webhooks.Options{UserAgent: "ctibridge/test"}, endpoint("ep", rx.URL))

	rec := event("conv1", 1)
	h.d.Notify(store.commit([]bridge.Record{rec}, "ep"))
	got := rx.WaitFor(1, wait)[0]

	if string(got.Raw) != string(rec.Payload) {
		t.Errorf("body %s, want the record's payload %s", got.Raw, rec.Payload)
	}
	if got.ID != rec.ID || got.ConversationID != "conv1" || got.Sequence != 1 || got.Type != bridge.EventCallAnswered {
		t.Errorf("delivery %+v", got)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "ctibridge/test", "Webhook-Id": rec.ID} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	a := h.waitAttempts(1)[0]
	if a.StatusCode != 200 || a.Outcome != bridge.DeliveryDelivered || a.Latency <= 0 || a.Error != "" || a.EventID != rec.ID {
		t.Errorf("attempt %+v", a)
	}
	h.stop()
	if s := store.status("ep", rec.ID); s != bridge.DeliveryDelivered {
		t.Errorf("store status %s", s)
	}
	if st := h.d.Stats(); st.Delivered != 1 || st.FailedAttempts != 0 || st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Under random 500s each conversation's events arrive in Sequence order:
// no request for event N+1 reaches the receiver before event N was
// acknowledged, and each event is acknowledged once.
func TestOrderingUnderRandomFailures(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(time.Now, -1) // the auto clock jumps; timestamps are not the point
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	rx.Respond(func(webhookstest.Delivery) webhookstest.Response {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(10) < 3 {
			return webhookstest.Response{Status: 500}
		}
		return webhookstest.Response{}
	})
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: webhookstest.NewAutoClock(time.Now()), MaxInFlightPerEndpoint: 8},
		endpoint("ep", rx.URL))

	convs := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	recs := records(convs, 30)
	for i := 1; i <= 20; i++ {
		recs = append(recs, event("", int64(i)))
	}
	for len(recs) > 0 { // commit in small batches, as the engine does
		n := min(len(recs), 7)
		h.d.Notify(store.commit(recs[:n], "ep"))
		recs = recs[n:]
	}
	total := len(convs)*30 + 20
	ok := rx.WaitFor(total, wait)
	h.stop()

	checkOrder(t, rx.Requests(), total)
	if fails := len(rx.Requests()) - len(ok); fails == 0 {
		t.Fatal("no request failed; the test proves nothing")
	}
	if c := store.counts("ep"); c[bridge.DeliveryDelivered] != total {
		t.Errorf("store statuses %v", c)
	}
}

// checkOrder asserts that every event was acknowledged exactly once and
// that no request for an event arrived before its predecessor in the
// conversation was acknowledged.
func checkOrder(t *testing.T, reqs []webhookstest.Delivery, total int) {
	t.Helper()
	acked := make(map[string]webhookstest.Delivery) // by event id
	for _, r := range reqs {
		if !r.OK() {
			continue
		}
		if _, dup := acked[r.ID]; dup {
			t.Errorf("event %s acknowledged twice", r.ID)
		}
		acked[r.ID] = r
	}
	if len(acked) != total {
		t.Errorf("%d events acknowledged, want %d", len(acked), total)
	}
	for _, r := range reqs {
		if r.ConversationID == "" || r.Sequence == 1 {
			continue
		}
		prev, ok := acked[fmt.Sprintf("evt_%s_%d", r.ConversationID, r.Sequence-1)]
		if !ok || prev.Answered > r.Arrived {
			t.Fatalf("%s arrived (#%d) before %s/%d was acknowledged (%v, #%d)",
				r.ID, r.Arrived, r.ConversationID, r.Sequence-1, ok, prev.Answered)
		}
	}
}

// A conversation stuck in retries does not hold up another conversation.
func TestNoHeadOfLineBlockingConversation(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	var failA sync.Mutex // held while conversation A fails
	aFails := true
	rx.Respond(func(d webhookstest.Delivery) webhookstest.Response {
		failA.Lock()
		defer failA.Unlock()
		if d.ConversationID == "A" && aFails {
			return webhookstest.Response{Status: 503}
		}
		return webhookstest.Response{}
	})
	clock := webhookstest.NewClock(time.Now())
	rx.SetNow(clock.Now, 0)
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock, MaxInFlightPerEndpoint: 1}, endpoint("ep", rx.URL))

	h.d.Notify(store.commit(records([]string{"A"}, 2), "ep"))
	h.d.Notify(store.commit(records([]string{"B"}, 20), "ep"))

	// The clock stands still, so A's retry cannot come; B must get through
	// regardless, even with a single request slot.
	ok := rx.WaitFor(20, wait)
	for i, d := range ok {
		if d.ConversationID != "B" || d.Sequence != int64(i+1) {
			t.Fatalf("delivery %d: %s", i, d.ID)
		}
	}
	reqs := rx.WaitForRequests(21, wait)
	if reqs[0].ID != "evt_A_1" {
		t.Errorf("first request %s, want evt_A_1", reqs[0].ID)
	}
	for _, r := range reqs {
		if r.ID == "evt_A_2" {
			t.Fatal("evt_A_2 sent while evt_A_1 is not delivered")
		}
	}

	// Once A's endpoint recovers, its retry goes through, then its next event.
	failA.Lock()
	aFails = false
	failA.Unlock()
	clock.AdvanceToNext(wait)
	ok = rx.WaitFor(22, wait)
	if ok[20].ID != "evt_A_1" || ok[21].ID != "evt_A_2" {
		t.Fatalf("after recovery: %s, %s", ok[20].ID, ok[21].ID)
	}
}

// Endpoints that hang every request do not starve a healthy one, even when
// they hold every shared request slot.
func TestNoHeadOfLineBlockingEndpoint(t *testing.T) {
	store := newFakeStore()
	var eps []bridge.Endpoint
	var hung []*webhookstest.Receiver
	for i := range 3 {
		rx := webhookstest.NewReceiver(t, testSecret)
		rx.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Hang: true} })
		hung = append(hung, rx)
		eps = append(eps, endpoint(fmt.Sprintf("hung%d", i), rx.URL))
	}
	good := webhookstest.NewReceiver(t, testSecret)
	eps = append(eps, endpoint("good", good.URL))
	h := start(t, store, webhooks.Options{
		MaxInFlightPerEndpoint: 4, MaxInFlight: 3, Timeout: time.Hour, ShutdownGrace: time.Millisecond,
	}, eps...)
	t.Cleanup(func() {
		for _, rx := range hung {
			rx.Release()
		}
	})

	// Independent events, so each hung endpoint would use all its slots.
	var free []bridge.Record
	for i := range 10 {
		free = append(free, event("", int64(i)))
	}
	h.d.Notify(store.commit(free, "hung0", "hung1", "hung2"))
	// Each hung endpoint holds its own slot; together they hold all three
	// shared ones.
	waitUntil(t, "hung requests", func() bool {
		n := 0
		for _, rx := range hung {
			n += rx.Hanging()
		}
		return n == 3+3
	})

	h.d.Notify(store.commit(records([]string{"x", "y"}, 10), "good"))
	if got := good.WaitFor(20, wait); len(got) != 20 {
		t.Fatalf("healthy endpoint got %d of 20", len(got))
	}
	if st := h.d.Stats(); st.InFlight < 6 {
		t.Errorf("in flight %d: hung requests were not all held", st.InFlight)
	}
}

// 410 Gone disables the endpoint: in the store, and here.
func TestGoneDisablesEndpoint(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.Respond(func(webhookstest.Delivery) webhookstest.Response {
		return webhookstest.Response{Status: http.StatusGone}
	})
	store := newFakeStore()
	var disabledID, reason string
	var mu sync.Mutex
	h := start(t, store, webhooks.Options{
		MaxInFlightPerEndpoint: 1,
		OnDisable: func(id, r string) {
			mu.Lock()
			disabledID, reason = id, r
			mu.Unlock()
		},
	}, endpoint("ep", rx.URL))

	h.d.Notify(store.commit([]bridge.Record{event("a", 1), event("b", 1), event("c", 1)}, "ep"))
	waitUntil(t, "the endpoint to stop", func() bool { st := h.d.Stats(); return st.Disabled == 1 && st.Queued == 0 })
	// Pushes to a disabled endpoint are dropped on the spot.
	h.d.Notify(store.commit([]bridge.Record{event("d", 1)}, "ep"))
	if q := h.d.Stats().Queued; q != 0 {
		t.Errorf("queued %d after pushing to a disabled endpoint", q)
	}
	h.stop()

	if n := len(rx.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if !strings.Contains(store.disabled["ep"], "410") {
		t.Errorf("store disable reason %q", store.disabled["ep"])
	}
	mu.Lock()
	if disabledID != "ep" || !strings.Contains(reason, "410") {
		t.Errorf("OnDisable(%q, %q)", disabledID, reason)
	}
	mu.Unlock()
	if c := store.counts("ep"); c[bridge.DeliveryDisabled] != 3 {
		t.Errorf("store statuses %v", c)
	}
	as := store.attemptsOf("evt_a_1")
	if len(as) != 1 || as[0].StatusCode != 410 || as[0].Outcome != bridge.DeliveryDisabled {
		t.Errorf("attempts %+v", as)
	}
}

func TestRetryAfter(t *testing.T) {
	start0 := time.Now().Truncate(time.Second)
	tests := []struct {
		name       string
		retryAfter func(now time.Time) string
		want       time.Duration
	}{
		{"seconds", func(time.Time) string { return "120" }, 120 * time.Second},
		{"http date", func(now time.Time) string { return now.Add(300 * time.Second).UTC().Format(http.TimeFormat) }, 300 * time.Second},
		{"capped", func(time.Time) string { return "999999" }, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := webhookstest.NewClock(start0)
			rx := webhookstest.NewReceiver(t, testSecret)
			rx.SetNow(clock.Now, 0)
			rx.Script(webhookstest.Response{Status: 429, RetryAfter: tt.retryAfter(start0)})
			store := newFakeStore()
			h := start(t, store, webhooks.Options{Clock: clock, MaxRetryAfter: 10 * time.Minute}, endpoint("ep", rx.URL))
			h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))

			a := h.waitAttempts(1)[0]
			if a.StatusCode != 429 || a.Outcome != bridge.DeliveryPending || !a.NextAttemptAt.Equal(a.At.Add(tt.want)) {
				t.Fatalf("attempt %+v, want next try at +%s", a, tt.want)
			}
			if at, _ := clock.WaitForTimer(wait); !at.Equal(a.NextAttemptAt) {
				t.Fatalf("retry timer at %s, want %s", at, a.NextAttemptAt)
			}
			clock.Advance(tt.want - time.Second)
			if ds := clock.Deadlines(); len(ds) != 1 {
				t.Fatalf("timer fired early: %v", ds)
			}
			clock.Advance(time.Second)
			rx.WaitFor(1, wait)
			if as := h.waitAttempts(2); as[1].Outcome != bridge.DeliveryDelivered || !as[1].At.Equal(a.NextAttemptAt) {
				t.Fatalf("second attempt %+v", as[1])
			}
		})
	}
}

// A 429 or 503 with Retry-After speaks for the whole endpoint (a rate
// limit, a maintenance window): no request starts before it ends, for any
// conversation, not only the one that got the answer. Other answers with
// Retry-After only delay their own delivery.
func TestRetryAfterPausesEndpoint(t *testing.T) {
	for _, tt := range []struct {
		status int
		pauses bool
	}{{429, true}, {503, true}, {500, false}} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			start0 := time.Now().Truncate(time.Second)
			clock := webhookstest.NewClock(start0)
			rx := webhookstest.NewReceiver(t, testSecret)
			rx.SetNow(clock.Now, 0)
			rx.Script(webhookstest.Response{Status: tt.status, RetryAfter: "60"})
			store := newFakeStore()
			// One request at a time: without the pause, B's event would go the
			// moment A's answer freed the slot.
			h := start(t, store, webhooks.Options{Clock: clock, MaxInFlightPerEndpoint: 1}, endpoint("ep", rx.URL))
			h.d.Notify(store.commit([]bridge.Record{event("A", 1), event("B", 1)}, "ep"))

			if !tt.pauses {
				// B goes the moment A's answer frees the slot; which of the
				// two is recorded first is the recorder's affair.
				as := h.waitAttempts(2)
				byID := map[string]bridge.Attempt{as[0].EventID: as[0], as[1].EventID: as[1]}
				if a := byID["evt_A_1"]; a.StatusCode != tt.status {
					t.Fatalf("attempts %+v: want A's answered %d", as, tt.status)
				}
				if b, ok := byID["evt_B_1"]; !ok || !b.At.Equal(start0) {
					t.Fatalf("attempts %+v: a %d must not hold B's conversation", as, tt.status)
				}
				return
			}
			first := h.waitAttempts(1)[0]
			if first.EventID != "evt_A_1" || first.StatusCode != tt.status {
				t.Fatalf("first attempt %+v", first)
			}
			if at, _ := clock.WaitForTimer(wait); !at.Equal(start0.Add(time.Minute)) {
				t.Fatalf("next timer at %s, want the pause's end %s", at, start0.Add(time.Minute))
			}
			// A's retry is armed only after its slot was freed and B could
			// have been started: B is in flight now, or its attempt was timed
			// before the clock moves (checked below).
			if st := h.d.Stats(); st.InFlight != 0 || st.Paused != 1 {
				t.Fatalf("stats during the endpoint's pause: %+v, want nothing in flight and 1 endpoint paused", st)
			}
			clock.Advance(time.Minute)
			rx.WaitFor(2, wait)
			if st := h.d.Stats(); st.Paused != 0 {
				t.Errorf("%d endpoints paused after the pause", st.Paused)
			}
			as := h.waitAttempts(3)
			for _, a := range as[1:] {
				if a.At.Before(start0.Add(time.Minute)) || a.Outcome != bridge.DeliveryDelivered {
					t.Fatalf("attempt %+v during the endpoint's pause (until %s)", a, start0.Add(time.Minute))
				}
			}
		})
	}
}

// The pause holds also when the scheduler waits for a shared request
// slot: the 429'd request gives its slot back to that very wait, after
// setting the pause, and the waiting delivery must not take it.
func TestRetryAfterPauseHoldsSharedSlotWait(t *testing.T) {
	start0 := time.Now().Truncate(time.Second)
	clock := webhookstest.NewClock(start0)
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	rx.Respond(func(d webhookstest.Delivery) webhookstest.Response {
		switch d.ConversationID {
		case "A":
			return webhookstest.Response{Hang: true} // holds the endpoint's own slot
		case "B":
			return webhookstest.Response{Status: 429, RetryAfter: "60"} // the one shared slot
		}
		return webhookstest.Response{}
	})
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock, MaxInFlight: 1, MaxInFlightPerEndpoint: 3, Timeout: time.Hour},
		endpoint("ep", rx.URL))
	defer rx.Release()
	// C waits for B's shared slot.
	h.d.Notify(store.commit([]bridge.Record{event("A", 1), event("B", 1), event("C", 1)}, "ep"))
	if a := h.waitAttempts(1)[0]; a.EventID != "evt_B_1" || a.StatusCode != 429 {
		t.Fatalf("first attempt %+v", a)
	}
	if at, _ := clock.WaitForTimer(wait); !at.Equal(start0.Add(time.Minute)) {
		t.Fatalf("next timer at %s, want the pause's end %s", at, start0.Add(time.Minute))
	}
	if st := h.d.Stats(); st.InFlight != 1 {
		t.Fatalf("%d requests in flight during the pause, want A's alone", st.InFlight)
	}
	clock.Advance(time.Minute)
	for _, a := range h.waitAttempts(3)[1:] {
		if a.At.Before(start0.Add(time.Minute)) {
			t.Fatalf("attempt %+v during the endpoint's pause", a)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		" 30 ":                          30 * time.Second,
		"Fri, 02 Jan 2026 03:05:05 GMT": time.Minute,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0, // past
	} {
		if got := webhooks.ParseRetryAfter(v, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestBackoffFullJitter(t *testing.T) {
	d := webhooks.New(newFakeStore(), webhooks.Options{BackoffBase: time.Second, BackoffMax: time.Minute})
	for n, ceil := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 100: time.Minute} {
		var lo, hi time.Duration = ceil, 0
		for range 2000 {
			b := d.Backoff(n)
			if b <= 0 || b > ceil {
				t.Fatalf("Backoff(%d) = %s, want (0, %s]", n, b, ceil)
			}
			lo, hi = min(lo, b), max(hi, b)
		}
		// Full jitter spreads over the whole range.
		if lo > ceil/10 || hi < ceil*9/10 {
			t.Errorf("Backoff(%d) spans [%s, %s] of (0, %s]", n, lo, hi, ceil)
		}
	}
}

// A delivery failing for longer than the retry window goes dead, after one
// last try at the window's end, and the conversation moves on.
func TestDeadAfterRetryWindow(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	rx.Respond(func(d webhookstest.Delivery) webhookstest.Response {
		if d.ID == "evt_a_1" {
			return webhookstest.Response{Status: 500}
		}
		return webhookstest.Response{}
	})
	store := newFakeStore()
	h := start(t, store, webhooks.Options{
		Clock: clock, RetryWindow: time.Hour, BackoffBase: time.Minute, BackoffMax: 10 * time.Minute,
	}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit(records([]string{"a"}, 2), "ep"))

	for store.status("ep", "evt_a_1") != bridge.DeliveryDead {
		waitUntil(t, "a retry or death", func() bool {
			return store.status("ep", "evt_a_1") == bridge.DeliveryDead || len(clock.Deadlines()) > 0
		})
		if ds := clock.Deadlines(); len(ds) > 0 {
			clock.AdvanceTo(ds[0])
		}
	}
	ok := rx.WaitFor(1, wait)
	h.stop()

	as := store.attemptsOf("evt_a_1")
	first, last := as[0], as[len(as)-1]
	if len(as) < 3 || last.Outcome != bridge.DeliveryDead || !last.At.Equal(first.At.Add(time.Hour)) {
		t.Fatalf("%d attempts, last %+v; want dead at first+1h (%s)", len(as), last, first.At.Add(time.Hour))
	}
	for _, a := range as[:len(as)-1] {
		if a.Outcome != bridge.DeliveryPending || a.NextAttemptAt.After(first.At.Add(time.Hour)) {
			t.Fatalf("attempt %+v: pending past the window", a)
		}
	}
	if len(ok) != 1 || ok[0].ID != "evt_a_2" {
		t.Fatalf("deliveries %v, want evt_a_2 after evt_a_1 died", ok)
	}
	if st := h.d.Stats(); st.Dead != 1 || st.Retried != int64(len(as)-1) || st.FailedAttempts != int64(len(as)) {
		t.Errorf("stats %+v with %d attempts", st, len(as))
	}
}

// A conversation's later events wait behind a failing one; their retry
// window counts from their commit all the same, so when the head dies at
// the window's end they follow after one attempt each, instead of a whole
// window each (the k-th event dead after k windows).
func TestRetryWindowCountsFromCommit(t *testing.T) {
	start0 := time.Now().Truncate(time.Second)
	clock := webhookstest.NewClock(start0)
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	rx.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Status: 500} })
	store := newFakeStore()
	for seq := int64(1); seq <= 3; seq++ {
		store.put(bridge.Delivery{Record: event("a", seq), EndpointID: "ep", Status: bridge.DeliveryPending, NextAttemptAt: start0})
	}
	h := start(t, store, webhooks.Options{Clock: clock, RetryWindow: time.Hour, BackoffBase: time.Minute, BackoffMax: 10 * time.Minute},
		endpoint("ep", rx.URL))
	dead := func() bool { return store.status("ep", "evt_a_3") == bridge.DeliveryDead }
	for !dead() {
		waitUntil(t, "a retry or the last death", func() bool { return dead() || len(clock.Deadlines()) > 0 })
		if ds := clock.Deadlines(); len(ds) > 0 {
			clock.AdvanceTo(ds[0])
		}
	}
	h.stop()
	end := start0.Add(time.Hour)
	for _, id := range []string{"evt_a_1", "evt_a_2", "evt_a_3"} {
		as := store.attemptsOf(id)
		last := as[len(as)-1]
		if last.Outcome != bridge.DeliveryDead || last.At.After(end) {
			t.Errorf("%s: last attempt %+v; want dead by the window's end %s", id, last, end)
		}
		if id != "evt_a_1" && len(as) != 1 {
			t.Errorf("%s: %d attempts, want 1: it waited out its window behind evt_a_1", id, len(as))
		}
	}
}

// A backlog far larger than the in-memory cap drains from the store in
// order, with memory held to the cap, while fresh events keep being
// committed and pushed: none is lost and none is sent twice.
func TestBacklogReload(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	convs := make([]string, 40)
	for i := range convs {
		convs[i] = fmt.Sprintf("c%02d", i)
	}
	backlog := records(convs, 30)
	for i := range 200 {
		backlog = append(backlog, event("", int64(i+1)))
	}
	store.commit(backlog, "ep")

	const maxQueued = 16
	var peak sync.Mutex
	var maxSeen int64
	var dp atomic.Pointer[webhooks.Dispatcher]
	h := start(t, store, webhooks.Options{
		MaxQueuedPerEndpoint: maxQueued, PageSize: 100, MaxInFlightPerEndpoint: 4,
		OnAttempt: func(bridge.Attempt) {
			if d := dp.Load(); d != nil {
				peak.Lock()
				maxSeen = max(maxSeen, d.Stats().Queued)
				peak.Unlock()
			}
		},
	}, endpoint("ep", rx.URL))
	d := h.d
	dp.Store(d)

	// Fresh events race the reload: the same conversations go on and new
	// ones start, committed and pushed all along the drain, so some land
	// while the endpoint switches from reading the store to taking pushes.
	var fresh []bridge.Record
	for seq := int64(31); seq <= 40; seq++ {
		for _, c := range convs[:20] {
			fresh = append(fresh, event(c, seq))
		}
	}
	fresh = append(fresh, records([]string{"new1", "new2"}, 50)...)
	total := len(backlog) + len(fresh)
	const batch = 5
	batches := (len(fresh) + batch - 1) / batch
	for i := range batches {
		n := min(len(fresh), batch)
		d.Notify(store.commit(fresh[:n], "ep"))
		fresh = fresh[n:]
		rx.WaitFor(len(backlog)*(i+1)/batches, wait) // let the drain go on
	}
	rx.WaitFor(total, 2*wait)

	// Now live: a burst larger than the cap overflows the inbox and sends
	// the endpoint back to the store.
	burst := records([]string{"burst1", "burst2", "burst3"}, 100)
	d.Notify(store.commit(burst, "ep"))
	total += len(burst)
	rx.WaitFor(total, 2*wait)
	h.stop()

	checkOrder(t, rx.Requests(), total)
	if store.resent != 0 {
		t.Errorf("%d deliveries sent again", store.resent)
	}
	if c := store.counts("ep"); c[bridge.DeliveryDelivered] != total {
		t.Errorf("store statuses %v", c)
	}
	if store.maxLimit > maxQueued {
		t.Errorf("store read %d at once, cap %d", store.maxLimit, maxQueued)
	}
	if maxSeen > maxQueued {
		t.Errorf("%d deliveries held in memory, cap %d", maxSeen, maxQueued)
	}
	if store.pages < total/maxQueued {
		t.Errorf("%d store reads for %d deliveries: the backlog did not come from the store", store.pages, total)
	}
}

// Notify never waits, and holds at most the cap in memory, even when the
// dispatcher is not running yet.
func TestNotifyBounded(t *testing.T) {
	store := newFakeStore()
	d := webhooks.New(store, webhooks.Options{MaxQueuedPerEndpoint: 100, Logger: slog.New(slog.DiscardHandler)})
	d.SetEndpoints([]bridge.Endpoint{endpoint("ep", "http://127.0.0.1:1/")})
	d.Notify(store.commit(records([]string{"a", "b"}, 5000), "ep"))
	if q := d.Stats().Queued; q != 100 {
		t.Fatalf("queued %d, want the cap of 100", q)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := webhookstest.NewReceiver(t, testSecret)
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.Script(webhookstest.Response{Status: http.StatusFound, Location: target.URL + "?token=T0KEN"})
	clock := webhookstest.NewClock(time.Now())
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))

	a := h.waitAttempts(1)[0]
	if a.StatusCode != http.StatusFound || a.Outcome != bridge.DeliveryPending || !strings.Contains(a.Error, "not followed") {
		t.Fatalf("attempt %+v", a)
	}
	if !strings.Contains(a.Error, target.URL) || strings.Contains(a.Error, "T0KEN") {
		t.Fatalf("the attempt log must name the target without its query: %q", a.Error)
	}
	clock.AdvanceToNext(wait)
	rx.WaitFor(1, wait)
	h.stop()
	if n := len(target.Requests()); n != 0 {
		t.Fatalf("redirect target got %d requests", n)
	}
}

// The address policy applies to the addresses connected to: the metadata
// service is refused with an error naming it, 127.0.0.1 is allowed by
// default, and a hostname is checked after it resolves. A host whose every
// address is refused cannot succeed by retrying: its deliveries are dead at
// once (replayable), each with the reason in the attempt log, and the
// next event of the conversation follows.
func TestAddressPolicy(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	port := rx.URL[strings.LastIndex(rx.URL, ":"):]
	clock := webhookstest.NewClock(time.Now())

	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock, DialTimeout: time.Second},
		endpoint("meta", "http://169.254.169.254/latest/meta-data/"), endpoint("local", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1), event("a", 2)}, "meta", "local"))
	rx.WaitFor(2, wait)
	as := h.waitAttempts(4)
	h.stop()
	for _, a := range as {
		if a.EndpointID == "meta" && (a.StatusCode != 0 || a.Outcome != bridge.DeliveryDead ||
			!strings.Contains(a.Error, "169.254.169.254 is a cloud metadata address: always refused")) {
			t.Errorf("metadata attempt %+v, want dead with the reason", a)
		}
		if a.EndpointID == "local" && a.Outcome != bridge.DeliveryDelivered {
			t.Errorf("loopback attempt %+v", a)
		}
	}
	if st := h.d.Stats(); st.Dead != 2 || st.Retried != 0 {
		t.Errorf("stats %+v, want both metadata deliveries dead, none retried", st)
	}

	// A name resolving to loopback only, with loopback forbidden.
	store = newFakeStore()
	h = start(t, store, webhooks.Options{Clock: clock, Policy: &webhooks.Policy{AllowPrivate: true}},
		endpoint("byname", "http://localhost"+port+"/webhook"))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "byname"))
	a := h.waitAttempts(1)[0]
	h.stop()
	if a.Outcome != bridge.DeliveryDead || !strings.Contains(a.Error, "localhost resolves only to refused addresses: ") ||
		!strings.Contains(a.Error, "is a loopback address: refused by delivery.allow_loopback") {
		t.Errorf("attempt %+v, want dead with the loopback refusal", a)
	}
	if n := len(rx.Requests()); n != 2 {
		t.Errorf("receiver got %d requests, want only the allowed ones", n)
	}

	// An endpoint a tenant made over the API gets public addresses only,
	// whatever the operator's policy allows its own; a name is checked
	// where it is dialled (the API refused the literal address already).
	store = newFakeStore()
	tenants := endpoint("tenant", "http://localhost"+port+"/webhook")
	tenants.Source, tenants.Tenant = "api", "acme"
	h = start(t, store, webhooks.Options{Clock: clock}, tenants, endpoint("operator", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "tenant", "operator"))
	for _, a := range h.waitAttempts(2) {
		if a.EndpointID == "tenant" && (a.Outcome != bridge.DeliveryDead || !strings.Contains(a.Error, "delivery.tenant_endpoints_private")) {
			t.Errorf("tenant's attempt %+v, want dead: loopback is not for tenants", a)
		}
		if a.EndpointID == "operator" && a.Outcome != bridge.DeliveryDelivered {
			t.Errorf("operator's attempt %+v", a)
		}
	}
	h.stop()
	if n := len(rx.Requests()); n != 3 {
		t.Errorf("receiver got %d requests, want the operator's one more", n)
	}
}

// During a rotation an endpoint holds two secrets and every request carries
// one signature per secret: a receiver that still holds only the old secret
// and one that already holds only the new both verify the same request (the
// Standard Webhooks rule: any one listed v1 signature that matches).
func TestSecretRotationSignsWithBoth(t *testing.T) {
	oldSecret, newSecret := bridge.NewWebhookSecret(), bridge.NewWebhookSecret()
	rx := webhookstest.NewReceiver(t, newSecret)
	store := newFakeStore()
	ep := bridge.Endpoint{ID: "ep", URL: rx.URL, Secret: newSecret, PreviousSecret: oldSecret}
	h := start(t, store, webhooks.Options{}, ep)
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))
	got := rx.WaitFor(1, wait)[0]
	if got.Err != nil {
		t.Fatalf("the new secret's holder: %v", got.Err)
	}
	sigs := strings.Fields(got.Header.Get("webhook-signature"))
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature %q, want two v1 signatures", got.Header.Get("webhook-signature"))
	}
	now := time.Now()
	for name, secret := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := webhooks.Verify(secret, got.Header, got.Raw, 0, now); err != nil {
			t.Errorf("a receiver holding only the %s secret: %v", name, err)
		}
	}
	if err := webhooks.Verify(bridge.NewWebhookSecret(), got.Header, got.Raw, 0, now); err == nil {
		t.Error("a third secret verified")
	}
	want, err := webhooks.SignAll([]string{newSecret, oldSecret}, got.ID, time.Unix(mustInt(t, got.Header.Get("webhook-timestamp")), 0), got.Raw)
	if err != nil || want != got.Header.Get("webhook-signature") {
		t.Errorf("SignAll = %q, %v; the dispatcher sent %q", want, err, got.Header.Get("webhook-signature"))
	}

	// The rotation ends: one signature, the old secret no longer verifies.
	ep.PreviousSecret = ""
	h.d.SetEndpoints([]bridge.Endpoint{ep})
	h.d.Notify(store.commit([]bridge.Record{event("a", 2)}, "ep"))
	got = rx.WaitFor(2, wait)[1]
	if got.Err != nil || len(strings.Fields(got.Header.Get("webhook-signature"))) != 1 {
		t.Fatalf("after the rotation: %v, %q", got.Err, got.Header.Get("webhook-signature"))
	}
	if err := webhooks.Verify(oldSecret, got.Header, got.Raw, 0, time.Now()); err == nil {
		t.Error("the retired secret still verifies")
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Other 4xx answers are retried: they are usually a misconfiguration a
// human fixes.
func TestClientErrorRetried(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.Script(webhookstest.Response{Status: 401}, webhookstest.Response{Status: 404})
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))
	h.waitAttempts(1)
	clock.AdvanceToNext(wait)
	h.waitAttempts(2)
	clock.AdvanceToNext(wait)
	rx.WaitFor(1, wait)
	as := h.waitAttempts(3)
	if as[0].StatusCode != 401 || as[1].StatusCode != 404 || as[2].Outcome != bridge.DeliveryDelivered {
		t.Fatalf("attempts %+v", as)
	}
	if !strings.HasPrefix(as[0].Error, "HTTP 401") {
		t.Errorf("error %q", as[0].Error)
	}
}

// A retry scheduled before a restart waits for its time.
func TestRestartKeepsSchedule(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	store := newFakeStore()
	next := clock.Now().Add(10 * time.Minute)
	store.put(bridge.Delivery{Record: event("a", 1), EndpointID: "ep", Status: bridge.DeliveryPending,
		Attempts: 3, NextAttemptAt: next, FirstTriedAt: clock.Now().Add(-time.Hour)})
	store.commit([]bridge.Record{event("a", 2), event("b", 1)}, "ep")
	start(t, store, webhooks.Options{Clock: clock}, endpoint("ep", rx.URL))

	if ok := rx.WaitFor(1, wait); ok[0].ID != "evt_b_1" {
		t.Fatalf("first delivery %s", ok[0].ID)
	}
	if at, _ := clock.WaitForTimer(wait); !at.Equal(next) {
		t.Fatalf("timer at %s, want %s", at, next)
	}
	if n := len(rx.Requests()); n != 1 {
		t.Fatalf("%d requests before the retry time", n)
	}
	clock.AdvanceTo(next)
	ok := rx.WaitFor(3, wait)
	if ok[1].ID != "evt_a_1" || ok[2].ID != "evt_a_2" {
		t.Fatalf("after the retry time: %s, %s", ok[1].ID, ok[2].ID)
	}
}

// Shutdown abandons a hung request after the grace period; its delivery
// stays pending for the next start.
func TestShutdownAbandonsHungRequests(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Hang: true} })
	store := newFakeStore()
	h := start(t, store, webhooks.Options{ShutdownGrace: 10 * time.Millisecond, Timeout: time.Hour}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))
	if !rx.WaitHanging(1, wait) {
		t.Fatal("request did not arrive")
	}
	h.stop()
	if s := store.status("ep", "evt_a_1"); s != bridge.DeliveryPending {
		t.Errorf("status %s, want pending", s)
	}
	if as := store.attemptsOf("evt_a_1"); len(as) != 0 {
		t.Errorf("abandoned request recorded: %+v", as)
	}
	if st := h.d.Stats(); st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("stats after shutdown %+v", st)
	}
}

// Endpoints come, change and go at run time.
func TestSetEndpoints(t *testing.T) {
	rx1 := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	store.commit(records([]string{"a"}, 5), "late")
	h := start(t, store, webhooks.Options{})

	// Added: reads what is pending for it.
	h.d.SetEndpoints([]bridge.Endpoint{endpoint("late", rx1.URL)})
	if ok := rx1.WaitFor(5, wait); ok[4].ID != "evt_a_5" {
		t.Fatalf("backlog %v", ok)
	}

	// Changed: a new URL and secret apply to the next attempt.
	secret2 := bridge.NewWebhookSecret()
	rx2 := webhookstest.NewReceiver(t, secret2)
	h.d.SetEndpoints([]bridge.Endpoint{{ID: "late", URL: rx2.URL, Secret: secret2}})
	h.d.Notify(store.commit([]bridge.Record{event("a", 6)}, "late"))
	if ok := rx2.WaitFor(1, wait); ok[0].ID != "evt_a_6" || ok[0].Err != nil {
		t.Fatalf("after change %+v", ok[0])
	}

	// Removed: pushes are ignored.
	h.d.SetEndpoints(nil)
	waitUntil(t, "the endpoint to stop", func() bool { return h.d.Stats().Queued == 0 })
	h.d.Notify(store.commit([]bridge.Record{event("a", 7)}, "late"))
	if q := h.d.Stats().Queued; q != 0 {
		t.Errorf("queued %d for a removed endpoint", q)
	}
	h.stop()
	if n := len(rx1.Requests()) + len(rx2.Requests()); n != 6 {
		t.Errorf("%d requests, want 6", n)
	}
}

// A read error from the store is retried later, not fatal.
func TestStoreReadErrorRetried(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	store := newFakeStore()
	store.commit([]bridge.Record{event("a", 1)}, "ep")
	store.failRead = fmt.Errorf("database is locked")
	start(t, store, webhooks.Options{Clock: clock}, endpoint("ep", rx.URL))

	clock.WaitForTimer(wait)
	store.mu.Lock()
	store.failRead = nil
	store.mu.Unlock()
	clock.AdvanceToNext(wait)
	rx.WaitFor(1, wait)
}

// When an endpoint answers again after failures, the conversations waiting
// out their backoff are sent at once, not when each one's backoff ends
// (after a long outage that can be a long wait).
func TestRecoveryReleasesWaitingRetries(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	rx.Script(webhookstest.Response{Status: 500}, webhookstest.Response{Status: 500})
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1), event("b", 1)}, "ep"))
	first := h.waitAttempts(2)
	if first[0].Outcome != bridge.DeliveryPending || first[1].Outcome != bridge.DeliveryPending {
		t.Fatalf("first attempts %+v", first)
	}
	// Wait until both retries wait and the endpoint's timer is armed for
	// them (Stats counts them then), then let only the earlier one fire.
	waitUntil(t, "both retries scheduled", func() bool { s := h.d.Stats(); return s.Waiting == 2 && s.InFlight == 0 })
	clock.AdvanceToNext(wait)
	as := h.waitAttempts(4)
	if as[2].Outcome != bridge.DeliveryDelivered || as[3].Outcome != bridge.DeliveryDelivered {
		t.Fatalf("retries %+v", as[2:])
	}
	if !as[3].At.Equal(as[2].At) {
		t.Fatalf("the second retry waited for its own backoff (%s) after the endpoint answered at %s", as[3].At, as[2].At)
	}
}

// A delivery whose outcome the store refused (a full disk) is recorded once
// the store takes writes again, without a restart and without a resend.
func TestOutcomeRecordedAfterStoreFailure(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	store.failRecord = fmt.Errorf("database or disk is full")
	h := start(t, store, webhooks.Options{}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit([]bridge.Record{event("a", 1)}, "ep"))
	h.waitAttempts(1)
	waitUntil(t, "the outcome kept", func() bool { return h.d.Unrecorded() == 1 })
	if st := store.status("ep", event("a", 1).ID); st != bridge.DeliveryPending {
		t.Fatalf("status %s while the store fails", st)
	}
	store.mu.Lock()
	store.failRecord = nil
	store.mu.Unlock()
	waitUntil(t, "the outcome recorded", func() bool { return store.status("ep", event("a", 1).ID) == bridge.DeliveryDelivered })
	if n := h.d.Unrecorded(); n != 0 || len(rx.Requests()) != 1 {
		t.Fatalf("unrecorded %d, %d requests", n, len(rx.Requests()))
	}
}

// workers counts the goroutines that run requests (endpoint.work).
func workers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "webhooks.(*endpoint).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Request goroutines are kept between requests, but none outlives its
// endpoint or the dispatcher.
func TestWorkersExit(t *testing.T) {
	waitUntil(t, "earlier tests' workers to exit", func() bool { return workers() == 0 })
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	h := start(t, store, webhooks.Options{}, endpoint("a", rx.URL))
	convs := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
	h.d.Notify(store.commit(records(convs, 10), "a"))
	h.waitAttempts(80)
	if n := workers(); n == 0 || n > webhooks.DefaultMaxInFlightPerEndpoint {
		t.Fatalf("%d workers waiting, want 1 to %d", n, webhooks.DefaultMaxInFlightPerEndpoint)
	}

	// Removed: its workers go; a new endpoint gets its own.
	h.d.SetEndpoints([]bridge.Endpoint{endpoint("b", rx.URL)})
	waitUntil(t, "a's workers to exit", func() bool { return workers() == 0 })
	h.d.Notify(store.commit(records(convs, 10), "b"))
	h.waitAttempts(160)
	if n := workers(); n == 0 {
		t.Fatal("no workers waiting for b")
	}

	h.stop()
	waitUntil(t, "the workers to exit after Run", func() bool { return workers() == 0 })
	if got := len(rx.Requests()); got != 160 {
		t.Errorf("%d requests, want 160", got)
	}
}

// The dispatcher records in batches when the store can (store.DB does, and
// so does fakeStore, which the other tests use), and attempt by attempt on
// the request's goroutine otherwise: the main tests again with a store that
// cannot.
func TestUnbatchedRecords(t *testing.T) {
	plainStores = true
	defer func() { plainStores = false }()
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"Deliver", TestDeliver}, {"Ordering", TestOrderingUnderRandomFailures}, {"Gone", TestGoneDisablesEndpoint},
		{"DeadAfterRetryWindow", TestDeadAfterRetryWindow}, {"StoreFailure", TestOutcomeRecordedAfterStoreFailure},
		{"Shutdown", TestShutdownAbandonsHungRequests}, {"Workers", TestWorkersExit},
	} {
		t.Run(tc.name, tc.test)
	}
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	h := start(t, store, webhooks.Options{}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit(records([]string{"a", "b"}, 5), "ep"))
	h.waitAttempts(10)
	h.stop()
	if store.batches != 0 {
		t.Errorf("%d batches recorded through a store without RecordAttempts", store.batches)
	}
}

// With a store that has RecordAttempts, every attempt goes through it.
func TestBatchedRecords(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	h := start(t, store, webhooks.Options{}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit(records([]string{"a", "b"}, 5), "ep"))
	h.waitAttempts(10)
	h.stop()
	if store.batches == 0 || store.batches > 10 {
		t.Errorf("%d batches for 10 attempts", store.batches)
	}
	if c := store.counts("ep"); c[bridge.DeliveryDelivered] != 10 {
		t.Errorf("store says %v", c)
	}
}

// When attempts come faster than they commit, the recorder takes them in
// large batches (and waits a little to gather more), without losing an
// attempt or the order within a conversation.
func TestRecordsGathered(t *testing.T) {
	rx := webhookstest.NewReceiver(t, testSecret)
	store := newFakeStore()
	convs := make([]string, 64)
	for i := range convs {
		convs[i] = fmt.Sprintf("c%d", i)
	}
	// The first batch waits until every conversation's first event was
	// answered: those answers queue up behind it.
	release := make(chan struct{})
	var once sync.Once
	store.onBatch = func([]bridge.Attempt) {
		once.Do(func() { <-release })
	}
	h := start(t, store, webhooks.Options{}, endpoint("ep", rx.URL))
	h.d.Notify(store.commit(records(convs, 3), "ep"))
	rx.WaitFor(len(convs), wait)
	close(release)
	h.waitAttempts(3 * len(convs))
	h.stop()
	checkOrder(t, rx.Requests(), 3*len(convs))
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.maxBatch < len(convs)/2 || len(store.attempts) != 3*len(convs) {
		t.Errorf("largest batch %d, %d attempts recorded", store.maxBatch, len(store.attempts))
	}
}

// recordingHandler keeps the log records a test reads.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level say msg, and the last one's
// turns_unlogged (-1 when it has none).
func (h *recordingHandler) count(level slog.Level, msg string) (n int, flaps int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	flaps = -1
	for _, r := range h.records {
		if r.Level == level && r.Message == msg {
			n++
			flaps = -1
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "turns_unlogged" {
					flaps = a.Value.Int64()
				}
				return true
			})
		}
	}
	return n, flaps
}

// An endpoint that fails every other request is logged failing once, not
// at every turn: later turns within a minute go to debug, and the next
// line at its level says how many there were.
func TestFlappingEndpointLoggedOnce(t *testing.T) {
	clock := webhookstest.NewClock(time.Now())
	rx := webhookstest.NewReceiver(t, testSecret)
	rx.SetNow(clock.Now, 0)
	var n atomic.Int32
	rx.Respond(func(d webhookstest.Delivery) webhookstest.Response {
		if d.ConversationID != "late" && n.Add(1)%2 == 1 {
			return webhookstest.Response{Status: 500}
		}
		return webhookstest.Response{}
	})
	logs := &recordingHandler{}
	store := newFakeStore()
	h := start(t, store, webhooks.Options{Clock: clock, MaxInFlightPerEndpoint: 1, Logger: slog.New(logs),
		BackoffBase: time.Hour, BackoffMax: time.Hour}, endpoint("ep", rx.URL))
	var convs []string
	for i := range 10 {
		convs = append(convs, fmt.Sprint("c", i))
	}
	// Every other request fails, with the clock standing still: each
	// success ends the others' backoffs, so the failed ones come round
	// again at once, all within the first minute.
	h.d.Notify(store.commit(records(convs, 1), "ep"))
	h.waitAttempts(10)
	if warn, _ := logs.count(slog.LevelWarn, "webhook endpoint failing; retrying"); warn != 1 {
		t.Errorf("%d failing lines at WARN, want 1", warn)
	}
	if info, _ := logs.count(slog.LevelInfo, "webhook endpoint recovered"); info != 0 {
		t.Errorf("%d recovered lines at INFO within a minute of the failing one, want 0", info)
	}
	// Past the quiet minute, an attempt that finds the endpoint well says
	// it recovered, with the count of turns not logged: the log does not go
	// on saying "failing".
	clock.Advance(2 * time.Hour)
	h.d.Notify(store.commit([]bridge.Record{event("late", 1)}, "ep"))
	for k := 11; !slices.ContainsFunc(h.waitAttempts(k), func(a bridge.Attempt) bool { return a.EventID == "evt_late_1" }); k++ {
	}
	warn, _ := logs.count(slog.LevelWarn, "webhook endpoint failing; retrying")
	info, turns := logs.count(slog.LevelInfo, "webhook endpoint recovered")
	// How many turns were kept back depends on the order two attempts
	// recorded at once are accounted in; TestLogTurnCountsWhatItKeepsBack
	// checks the count itself.
	if warn != 1 || info != 1 || turns < 0 {
		t.Fatalf("%d WARN and %d INFO lines (turns said unlogged: %d); want 1, 1 and the count of turns kept back", warn, info, turns)
	}
}
