package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/store"
)

// preload commits n events due to endpoint straight into a fresh store, as
// the engine would have: conversations of five events (ringing, answered,
// held, resumed, ended), payloads of a realistic size.
func preload(t testing.TB, path, endpoint string, n int) {
	t.Helper()
	st, err := store.Open(path, store.Options{Synchronous: "NORMAL"}) // loading is not what is measured
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	types := []string{bridge.EventCallRinging, bridge.EventCallAnswered, bridge.EventCallHeld, bridge.EventCallResumed, bridge.EventCallEnded}
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	b := &bridge.Batch{}
	for i := range n {
		conv := fmt.Sprintf("conv_backlog%012d", i/len(types))
		at := t0.Add(time.Duration(i) * time.Millisecond)
		agent := &bridge.Agent{Extension: fmt.Sprint(100 + i/len(types)%50)}
		ev := bridge.Event{ID: fmt.Sprintf("evt_backlog%013d", i), Type: types[i%len(types)], OccurredAt: at,
			Sequence: int64(i%len(types) + 1), PBX: "faults", ConversationID: conv, Agent: agent,
			Call: &bridge.Call{ID: conv, Direction: bridge.DirectionInbound, State: "talking",
				Caller: bridge.Party{Number: "5551234", Name: "Backlog Caller", E164: "+15555551234"},
				Callee: bridge.Party{Number: "200"}, Agent: agent, StartedAt: t0}}
		rec, err := bridge.NewRecord(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Events = append(b.Events, bridge.PendingEvent{Record: rec, EndpointIDs: []string{endpoint}})
		if len(b.Events) == 5000 || i == n-1 {
			if err := st.Commit(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			b = &bridge.Batch{}
		}
	}
}

// TestBacklogDrain pre-loads pending deliveries into the SQLite outbox,
// starts serve on it and watches the drain: everything delivered, in order
// per conversation, with resident memory that does not grow with the
// backlog.
func TestBacklogDrain(t *testing.T) {
	t.Parallel()
	n := count("CTIBRIDGE_FAULTS_BACKLOG", 20000, 1000000)
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	loadStart := time.Now()
	preload(t, db, "crm", n)
	t.Logf("%d pending deliveries pre-loaded in %s", n, time.Since(loadStart).Round(time.Millisecond))

	sim := amitest.NewTestServer(t, amitest.ServerOptions{}) // idle
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	start := time.Now()
	p := startProc(t, dir, conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: db, LogLevel: "info",
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}, procOpts{})

	type sample struct {
		done int
		rss  int64
	}
	var samples []sample
	limit := time.Duration(n/500)*time.Second + 60*time.Second
	for rcv.acked() < n && time.Since(start) < limit && !p.exited() {
		rss, _ := p.mem()
		samples = append(samples, sample{rcv.acked(), rss})
		time.Sleep(50 * time.Millisecond) // often enough for a short drain to give a trend
	}
	elapsed := time.Since(start)
	_, peak := p.mem()
	if err := p.term(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if got := rcv.acked(); got < n {
		t.Errorf("%d of %d delivered within %s", got, n, limit)
	}
	events, integrity := readStore(t, db, "crm")
	if integrity != "ok" {
		t.Errorf("integrity_check: %s", integrity)
	}
	v := analyse(events, rcv.snapshot(), allChecks)
	assertVerdict(t, "backlog", v)

	// Flat: what the process holds once the drain is under way does not
	// grow as it goes on. Compare the first and last quarters of the
	// samples taken mid-drain.
	var mid []int64
	for _, s := range samples {
		if s.done > n/10 && s.done < n*95/100 {
			mid = append(mid, s.rss)
		}
	}
	growth := int64(0)
	if len(mid) < 8 {
		t.Errorf("only %d RSS samples mid-drain (of %d): too few to tell flat from growing", len(mid), len(samples))
	} else {
		q := len(mid) / 4
		first, last := maxOf(mid[:q]), maxOf(mid[len(mid)-q:])
		growth = last - first
		if growth > 24<<20 {
			t.Errorf("RSS grew by %d MB during the drain (%d → %d MB)", growth>>20, first>>20, last>>20)
		}
	}
	if peak > 400<<20 {
		t.Errorf("peak RSS %d MB draining %d deliveries", peak>>20, n)
	}
	rate := float64(n) / elapsed.Seconds()
	t.Logf("drained %d in %s (%.0f/s), peak RSS %d MB, mid-drain growth %d MB over %d samples", n, elapsed.Round(time.Millisecond),
		rate, peak>>20, growth>>20, len(mid))
	record(fmt.Sprintf("backlog drain (%d pre-loaded)", n), 1, v, elapsed,
		fmt.Sprintf("%.0f deliveries/s, peak RSS %d MB, RSS growth mid-drain %+d MB; recovery = start to all delivered",
			rate, peak>>20, growth>>20))
}

func maxOf(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}
