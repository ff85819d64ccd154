package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// checkBacklog asserts the counter behind Backlog equals the table.
func checkBacklog(t *testing.T, db *DB, want int64) {
	t.Helper()
	n, err := db.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	table := count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'pending'`)
	if n != want || table != want {
		t.Fatalf("backlog counter %d, table %d, want %d", n, table, want)
	}
}

func TestDeliveryLifecycle(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm"), newEvent("c1", 2, "call.ended", t0, "crm")}}
	commit(t, db, b)
	checkBacklog(t, db, 2)
	id0, id1 := b.Events[0].ID, b.Events[1].ID
	ds, _ := db.PendingDeliveries(ctx, "crm", 0, 10)
	if len(ds) != 2 || ds[0].Attempts != 0 || !ds[0].FirstTriedAt.IsZero() || ds[0].NextAttemptAt.IsZero() || ds[0].Status != bridge.DeliveryPending {
		t.Fatalf("fresh = %+v", ds)
	}

	// 500, retry later: still pending, one attempt, first try recorded.
	retry := t0.Add(time.Second)
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: id0, EndpointID: "crm", At: t0, StatusCode: 500, Latency: 3 * time.Millisecond,
		Error: "HTTP 500", Outcome: bridge.DeliveryPending, NextAttemptAt: retry}); err != nil {
		t.Fatal(err)
	}
	ds, _ = db.PendingDeliveries(ctx, "crm", 0, 10)
	if ds[0].Attempts != 1 || !ds[0].FirstTriedAt.Equal(t0) || !ds[0].NextAttemptAt.Equal(retry) {
		t.Fatalf("after a failed try = %+v", ds[0])
	}
	checkBacklog(t, db, 2)
	// 200: delivered, first try kept.
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: id0, EndpointID: "crm", At: retry, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	// Window exhausted: dead.
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: id1, EndpointID: "crm", At: t0.Add(2 * time.Second), Error: "connection refused", Outcome: bridge.DeliveryDead}); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, db, 0)
	if ds, _ := db.PendingDeliveries(ctx, "crm", 0, 10); len(ds) != 0 {
		t.Fatalf("still pending: %+v", ds)
	}
	var attempts int
	var first int64
	db.r.QueryRow(`SELECT attempts, first_tried_at FROM deliveries WHERE event_seq = ?`, b.Events[0].Seq).Scan(&attempts, &first)
	if attempts != 2 || fromNanos(first) != t0 {
		t.Fatalf("delivered row: attempts %d first %v", attempts, fromNanos(first))
	}
	dead, _ := db.DeadLetters(ctx, "crm", 10)
	if len(dead) != 1 || dead[0].ID != id1 || dead[0].Attempts != 1 || dead[0].Status != bridge.DeliveryDead || string(dead[0].Payload) != string(b.Events[1].Payload) {
		t.Fatalf("dead = %+v", dead)
	}

	log, _ := db.Attempts(ctx, "crm", 10, time.Time{})
	if len(log) != 3 || log[0].Error != "connection refused" || log[2].StatusCode != 500 || log[2].Latency != 3*time.Millisecond ||
		!log[2].NextAttemptAt.Equal(retry) || log[1].Outcome != bridge.DeliveryDelivered {
		t.Fatalf("attempt log = %+v", log)
	}
	if older, _ := db.Attempts(ctx, "crm", 10, retry); len(older) != 1 || older[0].StatusCode != 500 {
		t.Fatalf("attempts before %v = %+v", retry, older)
	}
	if one, _ := db.Attempts(ctx, "crm", 1, time.Time{}); len(one) != 1 {
		t.Fatalf("limit 1 gave %d", len(one))
	}

	err := db.RecordAttempt(ctx, bridge.Attempt{EventID: id0, EndpointID: "nobody", Outcome: bridge.DeliveryDelivered})
	wantCode(t, err, bridge.ENOTFOUND, "nobody")
	err = db.RecordAttempt(ctx, bridge.Attempt{EventID: id0, EndpointID: "crm", Outcome: "lost"})
	wantCode(t, err, bridge.EINVALID, "outcome")
	if n := count(t, db, `SELECT count(*) FROM attempts`); n != 3 {
		t.Fatalf("refused attempts were logged: %d", n)
	}
}

// RecordAttempts records each attempt as RecordAttempt would, in one
// transaction; a refused one leaves the others recorded.
func TestRecordAttempts(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm"),
		newEvent("c1", 2, "call.ended", t0, "crm"), newEvent("c2", 1, "call.ringing", t0, "crm")}}
	commit(t, db, b)
	id0, id1, id2 := b.Events[0].ID, b.Events[1].ID, b.Events[2].ID
	// id2 is dead already: a later outcome takes the slower path that reads
	// the row's status.
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: id2, EndpointID: "crm", At: t0, Outcome: bridge.DeliveryDead}); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, db, 2)

	retry := t0.Add(time.Minute)
	errs := db.RecordAttempts(ctx, []bridge.Attempt{
		{EventID: id0, EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered},
		{EventID: id1, EndpointID: "nobody", At: t0, Outcome: bridge.DeliveryDelivered},
		{EventID: id1, EndpointID: "crm", At: t0, Outcome: "lost"},
		{EventID: id1, EndpointID: "crm", At: t0, StatusCode: 503, Outcome: bridge.DeliveryPending, NextAttemptAt: retry},
		{EventID: id2, EndpointID: "crm", At: t0, StatusCode: 500, Outcome: bridge.DeliveryPending, NextAttemptAt: retry},
	})
	if len(errs) != 5 || errs[0] != nil || errs[3] != nil || errs[4] != nil {
		t.Fatalf("errs = %v", errs)
	}
	wantCode(t, errs[1], bridge.ENOTFOUND, "nobody")
	wantCode(t, errs[2], bridge.EINVALID, "outcome")
	// id0 delivered, id1 still pending, id2 pending again.
	checkBacklog(t, db, 2)
	ds, _ := db.PendingDeliveries(ctx, "crm", 0, 10)
	if len(ds) != 2 || ds[0].ID != id1 || ds[0].Attempts != 1 || !ds[0].NextAttemptAt.Equal(retry) || !ds[0].FirstTriedAt.Equal(t0) ||
		ds[1].ID != id2 || ds[1].Attempts != 2 {
		t.Fatalf("pending = %+v", ds)
	}
	if n := count(t, db, `SELECT count(*) FROM attempts`); n != 4 {
		t.Fatalf("%d attempts logged, want 4 (1 before, 3 recorded now)", n)
	}
	if errs := db.RecordAttempts(ctx, nil); len(errs) != 0 {
		t.Fatalf("nothing to record: %v", errs)
	}
}

func TestReplay(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ended", t0, "crm")}}
	commit(t, db, b)
	id := b.Events[0].ID
	db.RecordAttempt(ctx, bridge.Attempt{EventID: id, EndpointID: "crm", At: t0, Outcome: bridge.DeliveryPending, NextAttemptAt: t0.Add(time.Hour)})
	db.RecordAttempt(ctx, bridge.Attempt{EventID: id, EndpointID: "crm", At: t0.Add(time.Hour), Outcome: bridge.DeliveryDead})
	checkBacklog(t, db, 0)

	before := time.Now()
	ds, pending, err := db.Replay(ctx, id, []string{"crm", "erp"})
	if err != nil || len(ds) != 2 || len(pending) != 0 {
		t.Fatalf("replay: %+v %v %v", ds, pending, err)
	}
	if ds[0].EndpointID != "crm" || ds[0].Attempts != 2 || ds[0].Status != bridge.DeliveryPending || ds[0].Seq != b.Events[0].Seq ||
		string(ds[0].Payload) != string(b.Events[0].Payload) || ds[0].NextAttemptAt.Before(before.Add(-time.Second)) {
		t.Fatalf("replayed = %+v", ds[0])
	}
	if ds[1].EndpointID != "erp" || ds[1].Attempts != 0 {
		t.Fatalf("new delivery = %+v", ds[1])
	}
	checkBacklog(t, db, 2)
	p, _ := db.PendingDeliveries(ctx, "crm", 0, 10)
	if len(p) != 1 || !p[0].FirstTriedAt.IsZero() || p[0].Attempts != 2 {
		t.Fatalf("after replay = %+v: a fresh retry window needs first_tried_at cleared", p)
	}
	// Replaying a pending delivery does not count it twice, and leaves it
	// as it is (it is on its way): the endpoints are said to be pending.
	if ds, pending, err := db.Replay(ctx, id, nil); err != nil || len(ds) != 0 || strings.Join(pending, ",") != "crm,erp" {
		t.Fatalf("replay of pending deliveries: %+v %v %v", ds, pending, err)
	}
	checkBacklog(t, db, 2)

	_, _, err = db.Replay(ctx, "evt_nope", []string{"crm"})
	wantCode(t, err, bridge.ENOTFOUND, "evt_nope")
	lonely := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("", 0, "agent.state", t0)}}
	commit(t, db, lonely)
	_, _, err = db.Replay(ctx, lonely.Events[0].ID, nil)
	wantCode(t, err, bridge.EINVALID, "endpoint_ids")
}

func TestReplayRange(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{}
	for i := range 1200 { // more than one chunk
		b.Events = append(b.Events, newEvent(fmt.Sprint(i%7), int64(i), "call.ringing", t0.Add(time.Duration(i)*time.Second), "crm", "erp"))
	}
	commit(t, db, b)
	for i, e := range b.Events {
		out := bridge.DeliveryDelivered
		switch {
		case i%10 == 0:
			continue // stays pending
		case i%10 == 1:
			out = bridge.DeliveryDead
		}
		if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: e.ID, EndpointID: "crm", At: t0, Outcome: out}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DisableEndpoint(ctx, "erp", "410 Gone"); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, db, 120)

	// [100s, 1150s): 1050 events, 105 of them still pending for crm.
	n, per, err := db.ReplayRange(ctx, t0.Add(100*time.Second), t0.Add(1150*time.Second), []string{"crm"}, nil)
	if err != nil || n != 1050-105 || per["crm"] != n || len(per) != 1 {
		t.Fatalf("replayed %d (%v), %v", n, per, err)
	}
	checkBacklog(t, db, 1050+15)
	if got := count(t, db, `SELECT count(*) FROM deliveries d JOIN events e ON e.seq = d.event_seq
		WHERE d.endpoint_id = 'crm' AND d.status = 'pending' AND e.occurred_at < ?`, t0.Add(100*time.Second).UnixNano()); got != 10 {
		t.Fatalf("replay reached before from: %d pending", got)
	}
	if got := count(t, db, `SELECT count(*) FROM deliveries WHERE endpoint_id = 'crm' AND status = 'pending' AND first_tried_at <> 0`); got != 0 {
		t.Fatalf("%d replayed deliveries kept their old retry window", got)
	}
	// The disabled endpoint's deliveries come back when it is named.
	if n, per, err := db.ReplayRange(ctx, t0, t0.Add(time.Hour), []string{"erp", "nobody"}, nil); err != nil || n != 1200 || len(per) != 1 || per["erp"] != 1200 {
		t.Fatalf("erp replayed %d (%v), %v", n, per, err)
	}
	checkBacklog(t, db, 1065+1200)
	_, _, err = db.ReplayRange(ctx, t0, t0.Add(time.Hour), nil, nil)
	wantCode(t, err, bridge.EINVALID, "endpoint_ids")
	_, _, err = db.ReplayRange(ctx, t0, t0, []string{"crm"}, nil)
	wantCode(t, err, bridge.EINVALID, "from")
}

// A range replay with missed creates the deliveries an endpoint never had
// where the predicate takes the event, replays those it had as before, and
// leaves a pending one alone; without missed it creates none.
func TestReplayRangeMissed(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{}
	for i := range 1100 { // more than one chunk
		typ := "call.ringing"
		if i%2 == 1 {
			typ = "agent.state"
		}
		var eps []string
		if i%5 == 0 { // a fifth went to crm (delivered below); the rest were missed
			eps = []string{"crm"}
		}
		b.Events = append(b.Events, newEvent(fmt.Sprint(i%7), int64(i), typ, t0.Add(time.Duration(i)*time.Second), eps...))
	}
	commit(t, db, b)
	for i, e := range b.Events {
		if i%5 == 0 && i%10 != 0 { // every tenth stays pending
			if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: e.ID, EndpointID: "crm", At: t0, Outcome: bridge.DeliveryDelivered}); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkBacklog(t, db, 110)
	if n, _, err := db.ReplayRange(ctx, t0, t0.Add(time.Hour), []string{"crm"}, nil); err != nil || n != 110 {
		t.Fatalf("without missed: replayed %d, %v; want only the 110 delivered", n, err)
	}
	checkBacklog(t, db, 220)
	var asked []string
	calls := func(ep string, rec bridge.Record) bool {
		asked = append(asked, ep)
		return rec.Type == "call.ringing"
	}
	// 550 call.ringing events, 110 of them with a (pending) delivery: 440
	// are created; no agent.state is (the 110 with a delivery are pending).
	n, per, err := db.ReplayRange(ctx, t0, t0.Add(time.Hour), []string{"crm"}, calls)
	if err != nil || n != 440 || per["crm"] != 440 {
		t.Fatalf("missed: replayed %d (%v), %v; want 440", n, per, err)
	}
	checkBacklog(t, db, 660)
	if got := count(t, db, `SELECT count(*) FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.endpoint_id = 'crm' AND e.type = 'agent.state'`); got != 110 {
		t.Fatalf("%d agent.state deliveries, want the 110 committed: none created against the predicate", got)
	}
	if len(asked) != 1100 || slices.ContainsFunc(asked, func(ep string) bool { return ep != "crm" }) {
		t.Fatalf("predicate asked %d times (%v...), want once an event for crm", len(asked), asked[:min(3, len(asked))])
	}
	// Again: everything it takes is pending now; nothing more is made.
	if n, _, err := db.ReplayRange(ctx, t0, t0.Add(time.Hour), []string{"crm"}, calls); err != nil || n != 0 {
		t.Fatalf("second missed replay: %d, %v", n, err)
	}
}

func TestPendingDeliveriesPagesInSeqOrder(t *testing.T) {
	db, _ := openTest(t)
	var b bridge.Batch
	for i := range 25 {
		eps := []string{"crm"}
		if i%5 == 0 {
			eps = append(eps, "other")
		}
		b.Events = append(b.Events, newEvent("c", int64(i+1), "call.ringing", t0, eps...))
	}
	commit(t, db, &b)
	// Delivered ones in the middle are skipped, not returned as holes.
	for _, i := range []int{3, 4, 11} {
		db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[i].ID, EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered})
	}
	var got []int64
	after := int64(0)
	for pages := 0; ; pages++ {
		page, err := db.PendingDeliveries(ctx, "crm", after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 10 || pages > 5 {
			t.Fatalf("page of %d", len(page))
		}
		for _, d := range page {
			if d.Seq <= after || d.EndpointID != "crm" {
				t.Fatalf("out of order: %d after %d", d.Seq, after)
			}
			got = append(got, d.Sequence)
			after = d.Seq
		}
	}
	if len(got) != 22 || got[0] != 1 || got[3] != 6 || got[21] != 25 {
		t.Fatalf("paged %v", got)
	}
	if other, _ := db.PendingDeliveries(ctx, "other", 0, 100); len(other) != 5 {
		t.Fatalf("other endpoint: %d", len(other))
	}
}

func TestDisableEndpoint(t *testing.T) {
	db, _ := openTest(t)
	ep := bridge.Endpoint{ID: "api1", URL: "https://crm.example.com/hook", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Events: []string{"call.*"}}
	if err := db.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "api1", "cfg-1"), newEvent("c", 2, "call.ended", t0, "api1", "cfg-1")}}
	commit(t, db, b)
	db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[0].ID, EndpointID: "api1", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered})
	checkBacklog(t, db, 3)

	if err := db.DisableEndpoint(ctx, "api1", "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := db.DisableEndpoint(ctx, "cfg-1", "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, db, 0)
	if n := count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'disabled'`); n != 3 {
		t.Fatalf("%d disabled deliveries, want 3 (the delivered one stays delivered)", n)
	}
	m, err := db.DisabledEndpoints(ctx)
	if err != nil || len(m) != 2 || m["api1"] == "" || m["cfg-1"] != "endpoint answered 410 Gone" {
		t.Fatalf("disabled = %v, %v", m, err)
	}
	got, _ := db.Endpoint(ctx, "api1")
	if !got.Disabled || got.DisabledReason != "endpoint answered 410 Gone" {
		t.Fatalf("runtime endpoint = %+v", got)
	}
	if err := db.EnableEndpoint(ctx, "cfg-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.EnableEndpoint(ctx, "api1"); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.DisabledEndpoints(ctx); len(m) != 0 {
		t.Fatalf("still disabled: %v", m)
	}
	wantCode(t, db.DisableEndpoint(ctx, "", "x"), bridge.EINVALID, "endpoint_id")
}

func TestPruneKeepsPendingAndOpen(t *testing.T) {
	db, _ := openTest(t)
	old := time.Now().Add(-100 * 24 * time.Hour)
	recent := time.Now().Add(-time.Hour)
	cut := time.Now().Add(-90 * 24 * time.Hour)
	ev := func(conv string, at time.Time) bridge.PendingEvent { return newEvent(conv, 1, "call.ended", at, "crm") }
	b := &bridge.Batch{
		Events: []bridge.PendingEvent{
			ev("done", old), ev("done", old), // 0,1: ended, delivered -> pruned
			ev("waiting", old), // 2: ended, still pending -> kept with its call
			ev("live", old),    // 3: open call -> kept
			ev("new", recent),  // 4: recent call -> kept
			ev("", old),        // 5: no conversation, delivered -> pruned
			ev("", old),        // 6: no conversation, pending -> kept
		},
		Conversations: []bridge.ConversationRecord{
			convRec("done", old, false, "1", "100", bridge.DispositionAnswered),
			convRec("waiting", old, false, "1", "100", bridge.DispositionAnswered),
			convRec("live", old, true, "1", "100", ""),
			convRec("new", recent, false, "1", "100", bridge.DispositionAnswered),
		},
	}
	commit(t, db, b)
	for _, i := range []int{0, 1, 3, 4, 5} {
		if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[i].ID, EndpointID: "crm", At: old, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	if _, created, _ := db.PutIdempotency(ctx, "k", "s", []byte("x")); !created {
		t.Fatal("idempotency key not created")
	}
	db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`UPDATE idempotency_keys SET created_at = ?`, old.UnixNano())
		return err
	})

	n, err := db.Prune(ctx, cut)
	if err != nil || n != 1+2+1 { // one conversation with two events, one lone event
		t.Fatalf("pruned %d, %v", n, err)
	}
	for i, keep := range []bool{false, false, true, true, true, false, true} {
		_, err := db.Event(ctx, b.Events[i].ID)
		if kept := err == nil; kept != keep {
			t.Errorf("event %d kept = %v, want %v", i, kept, keep)
		}
	}
	for id, keep := range map[string]bool{"done": false, "waiting": true, "live": true, "new": true} {
		_, err := db.Conversation(ctx, id)
		if kept := err == nil; kept != keep {
			t.Errorf("conversation %s kept = %v, want %v", id, kept, keep)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM attempts WHERE event_id IN (?, ?, ?)`, b.Events[0].ID, b.Events[1].ID, b.Events[5].ID); n != 0 {
		t.Fatalf("%d attempts of pruned events left", n)
	}
	if n := count(t, db, `SELECT count(*) FROM deliveries d LEFT JOIN events e ON e.seq = d.event_seq WHERE e.seq IS NULL`); n != 0 {
		t.Fatalf("%d orphan deliveries", n)
	}
	if n := count(t, db, `SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Fatal("old idempotency key kept")
	}
	checkBacklog(t, db, 2)
	if n, err := db.Prune(ctx, cut); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
}

func TestPruneWorksInChunks(t *testing.T) {
	db, _ := openTest(t)
	old := t0.Add(-24 * time.Hour)
	var b bridge.Batch
	for i := range 2*chunk + 10 {
		id := fmt.Sprintf("p%04d", i)
		b.Events = append(b.Events, newEvent(id, 1, "call.ended", old), newEvent("", 0, "agent.state", old))
		b.Conversations = append(b.Conversations, convRec(id, old, false, "1", "100", bridge.DispositionAnswered))
	}
	commit(t, db, &b)
	tx0 := db.Transactions.Load()
	n, err := db.Prune(ctx, t0)
	if err != nil || n != int64(3*(2*chunk+10)) {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if txs := db.Transactions.Load() - tx0; txs < 6 {
		t.Fatalf("%d transactions: prune did not work in chunks", txs)
	}
	if n := count(t, db, `SELECT count(*) FROM events`) + count(t, db, `SELECT count(*) FROM conversations`); n != 0 {
		t.Fatalf("%d rows left", n)
	}
}

// Events committed after an endpoint was disabled (the engine has not heard
// of the 410 yet) get disabled deliveries, not pending ones nobody would
// ever attempt.
func TestCommitAfterDisable(t *testing.T) {
	db, _ := openTest(t)
	if err := db.CreateEndpoint(ctx, bridge.Endpoint{ID: "api1", URL: "https://crm.example.com/hook", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"api1", "cfg-1"} {
		if err := db.DisableEndpoint(ctx, id, "endpoint answered 410 Gone"); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "api1", "cfg-1", "cfg-2")}})
	checkBacklog(t, db, 1)
	for id, want := range map[string]int64{"api1": 0, "cfg-1": 0, "cfg-2": 1} {
		if ds, _ := db.PendingDeliveries(ctx, id, 0, 10); int64(len(ds)) != want {
			t.Errorf("%s: %d pending, want %d", id, len(ds), want)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'disabled'`); n != 2 {
		t.Fatalf("%d disabled deliveries, want 2", n)
	}
	// Enabled again: new events are pending for it again.
	if err := db.EnableEndpoint(ctx, "cfg-1"); err != nil {
		t.Fatal(err)
	}
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 2, "call.ended", t0, "cfg-1")}})
	checkBacklog(t, db, 2)
}

// The readiness probe answers by its deadline while another process holds
// the database, and says why.
func TestWritableWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	// A busy timeout far beyond the test: only the probe's own deadline
	// can end the wait.
	db := openAt(t, path, Options{BusyTimeout: time.Hour})
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	probe, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- db.Writable(probe) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Writable still waiting 30 s after its 200 ms deadline")
	}
	if err == nil || !strings.Contains(err.Error(), "another process holds a lock") {
		t.Fatalf("Writable while locked: %v", err)
	}
	if probe.Err() == nil {
		t.Fatal("Writable returned before its deadline though the lock was held")
	}
}
