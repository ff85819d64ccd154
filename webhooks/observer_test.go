package webhooks_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

type fakeObserver struct {
	mu        sync.Mutex
	attempts  []bridge.Attempt
	delivered map[string][]time.Duration
	pops      []time.Duration
}

func (o *fakeObserver) Attempted(a bridge.Attempt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts = append(o.attempts, a)
}

func (o *fakeObserver) Delivered(endpointID string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered[endpointID] = append(o.delivered[endpointID], d)
}

func (o *fakeObserver) ScreenPop(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pops = append(o.pops, d)
}

// The observer sees every attempt, one latency per delivered record and
// endpoint (commit → 2xx, by the dispatcher's clock), and one screen pop per
// call.ringing event however many endpoints take it (its occurred_at → the
// first 2xx). Backlogs counts what each endpoint still has to deliver.
func TestObserver(t *testing.T) {
	t0 := time.Now()
	clock := webhookstest.NewClock(t0)
	obs := &fakeObserver{delivered: map[string][]time.Duration{}}
	store := newFakeStore()
	var rxs []*webhookstest.Receiver
	var eps []bridge.Endpoint
	for _, id := range []string{"a", "b"} {
		rx := webhookstest.NewReceiver(t, testSecret)
		rx.SetNow(clock.Now, 0)
		rx.Script(webhookstest.Response{Status: 500}, webhookstest.Response{Hang: true})
		rxs, eps = append(rxs, rx), append(eps, endpoint(id, rx.URL))
	}
	h := start(t, store, webhooks.Options{Clock: clock, Observer: obs, BackoffBase: time.Second, BackoffMax: time.Second}, eps...)

	ringing, err := bridge.NewRecord(bridge.Event{ID: "evt_ring", Type: bridge.EventCallRinging, Sequence: 1, PBX: "test",
		ConversationID: "conv1", OccurredAt: t0.Add(-2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	// Each endpoint's first read of the store is done: what is committed
	// now comes through Notify, as in a running bridge.
	waitUntil(t, "the endpoints' first store read", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.pages >= 2
	})
	h.d.Notify(store.commit([]bridge.Record{ringing, event("conv1", 2)}, "a", "b"))
	// Each endpoint fails once, then its retry hangs after the clock moved:
	// both deliveries of the ringing event answer at t0+3s.
	h.waitAttempts(2)
	// Both retries are scheduled (a timer armed after the clock moved would
	// wait past the test's clock), then the clock moves past them.
	waitUntil(t, "both retries scheduled", func() bool { return len(clock.Deadlines()) >= 2 })
	clock.Advance(3 * time.Second)
	for _, rx := range rxs {
		if !rx.WaitHanging(1, wait) {
			t.Fatal("the retry did not come")
		}
	}
	if b := h.d.Backlogs(); b["a"] != 2 || b["b"] != 2 {
		t.Errorf("Backlogs before the 2xx: %v, want 2 each", b)
	}
	for _, rx := range rxs {
		rx.Release()
	}
	done := func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.delivered["a"]) == 2 && len(obs.delivered["b"]) == 2
	}
	waitUntil(t, "four deliveries observed", done)
	h.stop()

	obs.mu.Lock()
	defer obs.mu.Unlock()
	for _, id := range []string{"a", "b"} {
		if want := []time.Duration{3 * time.Second, 3 * time.Second}; !slices.Equal(obs.delivered[id], want) {
			t.Errorf("delivery latencies of %s: %v, want %v", id, obs.delivered[id], want)
		}
	}
	if want := []time.Duration{5 * time.Second}; !slices.Equal(obs.pops, want) {
		t.Errorf("screen pops: %v, want %v (once, not per endpoint)", obs.pops, want)
	}
	failed := 0
	for _, a := range obs.attempts {
		if a.Outcome == bridge.DeliveryPending {
			failed++
		}
	}
	if len(obs.attempts) != 6 || failed != 2 {
		t.Errorf("%d attempts (%d failed), want 6 (2)", len(obs.attempts), failed)
	}
	if b := h.d.Backlogs(); len(b) != 2 || b["a"] != 0 || b["b"] != 0 {
		t.Errorf("Backlogs after: %v, want 0 each", b)
	}
}
