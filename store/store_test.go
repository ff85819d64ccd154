package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func event(conv string, seq int64, typ string) bridge.PendingEvent {
	e := bridge.Event{ID: bridge.NewID("evt_"), Type: typ, ConversationID: conv, Sequence: seq, OccurredAt: time.Now().UTC(), PBX: "pbx1"}
	rec, _ := bridge.NewRecord(e)
	return bridge.PendingEvent{Record: rec, EndpointIDs: []string{"crm"}}
}

func TestCommitAssignsSeqAndIsIdempotent(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	b := &bridge.Batch{Events: []bridge.PendingEvent{event("c1", 1, "call.ringing"), event("c1", 2, "call.answered")}}
	if err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.Events[0].Seq == 0 || b.Events[1].Seq <= b.Events[0].Seq {
		t.Fatalf("seqs %d %d", b.Events[0].Seq, b.Events[1].Seq)
	}
	first := b.Events[0].Seq
	// The same batch again (a retried commit) adds nothing.
	b.Events[0].Seq, b.Events[1].Seq = 0, 0
	if err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.Events[0].Seq != first {
		t.Fatalf("re-commit changed seq: %d != %d", b.Events[0].Seq, first)
	}
	ds, err := db.PendingDeliveries(ctx, "crm", 0, 10)
	if err != nil || len(ds) != 2 || ds[0].Type != "call.ringing" || string(ds[1].Payload) != string(b.Events[1].Payload) {
		t.Fatalf("pending = %+v, %v", ds, err)
	}
	if n, _ := db.Backlog(ctx); n != 2 {
		t.Fatalf("backlog = %d", n)
	}
}

func TestGroupCommitGroups(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{event(fmt.Sprintf("c%d", i), 1, "call.ringing")}})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if tx := db.Transactions.Load(); tx >= 200 {
		t.Fatalf("200 concurrent commits took %d transactions: no grouping", tx)
	}
	if n, _ := db.Backlog(ctx); n != 200 {
		t.Fatalf("backlog = %d", n)
	}
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOneBadRequestDoesNotFailItsGroup(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]error, 50)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 25 {
				results[i] = db.write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec("INSERT INTO nosuchtable VALUES (1)"); return err })
				return
			}
			results[i] = db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{event("c", int64(i), "call.ringing")}})
		}(i)
	}
	wg.Wait()
	for i, err := range results {
		if (i == 25) != (err != nil) {
			t.Fatalf("request %d: err = %v", i, err)
		}
	}
}

func TestDeliveryLifecycleAndReplay(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	b := &bridge.Batch{Events: []bridge.PendingEvent{event("c1", 1, "call.ringing"), event("c1", 2, "call.ended")}}
	if err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id0, id1 := b.Events[0].ID, b.Events[1].ID
	steps := []bridge.Attempt{
		{EventID: id0, EndpointID: "crm", At: now, StatusCode: 500, Latency: time.Millisecond, Error: "500", Outcome: bridge.DeliveryPending, NextAttemptAt: now.Add(time.Second)},
		{EventID: id0, EndpointID: "crm", At: now.Add(time.Second), StatusCode: 200, Latency: time.Millisecond, Outcome: bridge.DeliveryDelivered},
		{EventID: id1, EndpointID: "crm", At: now.Add(2 * time.Second), StatusCode: 0, Error: "connection refused", Outcome: bridge.DeliveryDead},
	}
	for _, a := range steps {
		if err := db.RecordAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if ds, _ := db.PendingDeliveries(ctx, "crm", 0, 10); len(ds) != 0 {
		t.Fatalf("still pending: %+v", ds)
	}
	dead, _ := db.DeadLetters(ctx, "crm", 10)
	if len(dead) != 1 || dead[0].ID != id1 || dead[0].Attempts != 1 || dead[0].FirstTriedAt.IsZero() {
		t.Fatalf("dead = %+v", dead)
	}
	log, _ := db.Attempts(ctx, "crm", 10, time.Time{})
	if len(log) != 3 || log[0].Error != "connection refused" || log[2].StatusCode != 500 {
		t.Fatalf("attempt log = %+v", log)
	}
	ds, err := db.Replay(ctx, id1, []string{"crm", "other"})
	if err != nil || len(ds) != 2 {
		t.Fatalf("replay: %v %+v", err, ds)
	}
	if p, _ := db.PendingDeliveries(ctx, "crm", 0, 10); len(p) != 1 || p[0].ID != id1 || !p[0].FirstTriedAt.IsZero() {
		t.Fatalf("after replay = %+v", p)
	}
	if p, _ := db.PendingDeliveries(ctx, "other", 0, 10); len(p) != 1 {
		t.Fatalf("replay to a new endpoint = %+v", p)
	}
	if _, err := db.Replay(ctx, "evt_nope", []string{"crm"}); bridge.ErrorCode(err) != bridge.ENOTFOUND {
		t.Fatalf("replay unknown: %v", err)
	}
	if err := db.DisableEndpoint(ctx, "crm", "410 Gone"); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.PendingDeliveries(ctx, "crm", 0, 10); len(p) != 0 {
		t.Fatalf("disabled endpoint still has pending: %+v", p)
	}
	if m, _ := db.DisabledEndpoints(ctx); m["crm"] != "410 Gone" {
		t.Fatalf("disabled = %v", m)
	}
}

func TestPendingPagesInOrder(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var b bridge.Batch
	for i := 0; i < 25; i++ {
		b.Events = append(b.Events, event("c", int64(i+1), "call.ringing"))
	}
	if err := db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	var got []int64
	after := int64(0)
	for {
		page, err := db.PendingDeliveries(ctx, "crm", after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			got = append(got, d.Sequence)
			after = d.Seq
		}
	}
	if len(got) != 25 || got[0] != 1 || got[24] != 25 {
		t.Fatalf("paged %v", got)
	}
}

func conv(id string, start time.Time, open bool, caller, agent string, disp bridge.Disposition) bridge.ConversationRecord {
	c := bridge.Call{ID: id, Direction: bridge.DirectionInbound, StartedAt: start, Caller: bridge.Party{Number: caller},
		Agent: &bridge.Agent{Extension: agent}, Disposition: disp}
	return bridge.ConversationRecord{Call: c, Open: open, LastSeq: 3, State: []byte(`{"id":"` + id + `"}`), UpdatedAt: start}
}

func TestConversationsHistoryAndReopen(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var b bridge.Batch
	for i := 0; i < 7; i++ {
		disp := bridge.DispositionAnswered
		if i%2 == 1 {
			disp = bridge.DispositionNoAnswer
		}
		b.Conversations = append(b.Conversations, conv(fmt.Sprintf("conv_%d", i), t0.Add(time.Duration(i)*time.Minute), i == 6, "5551234", fmt.Sprint(100+i%2), disp))
	}
	if err := db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	open, err := db.OpenConversations(ctx)
	if err != nil || len(open) != 1 || open[0].Call.ID != "conv_6" || string(open[0].State) != `{"id":"conv_6"}` {
		t.Fatalf("open = %+v %v", open, err)
	}
	var ids []string
	cursor := ""
	for {
		page, next, err := db.History(ctx, HistoryFilter{Number: "5551234", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			ids = append(ids, c.Call.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(ids, ",") != "conv_6,conv_5,conv_4,conv_3,conv_2,conv_1,conv_0" {
		t.Fatalf("history pages = %v", ids)
	}
	page, _, _ := db.History(ctx, HistoryFilter{Agent: "101", Disposition: "no_answer"})
	if len(page) != 3 {
		t.Fatalf("filtered = %d", len(page))
	}
	if _, _, err := db.History(ctx, HistoryFilter{Cursor: "garbage!"}); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := db.Conversation(ctx, "conv_nope"); bridge.ErrorCode(err) != bridge.ENOTFOUND {
		t.Fatalf("missing conversation: %v", err)
	}
	db.Close()
	db2, err := Open(path, Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if c, err := db2.Conversation(ctx, "conv_3"); err != nil || c.Call.Disposition != bridge.DispositionNoAnswer {
		t.Fatalf("after reopen: %+v %v", c, err)
	}
}

func TestPruneKeepsPendingAndOpen(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	old := time.Now().Add(-100 * 24 * time.Hour)
	mk := func(conv string) bridge.PendingEvent {
		e := event(conv, 1, "call.ended")
		e.OccurredAt = old
		return e
	}
	delivered, pending, open := mk("done"), mk("waiting"), mk("live")
	b := &bridge.Batch{Events: []bridge.PendingEvent{delivered, pending, open},
		Conversations: []bridge.ConversationRecord{conv("done", old, false, "1", "100", "answered"), conv("waiting", old, false, "1", "100", "answered"), conv("live", old, true, "1", "100", "")}}
	if err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[0].ID, EndpointID: "crm", At: old, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	b.Events[2].EndpointIDs = nil
	if _, err := db.Replay(ctx, b.Events[2].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[2].ID, EndpointID: "crm", At: old, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	n, err := db.Prune(ctx, time.Now().Add(-90*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if _, err := db.Event(ctx, b.Events[1].ID); err != nil {
		t.Fatal("an event with a pending delivery was pruned")
	}
	if _, err := db.Event(ctx, b.Events[2].ID); err != nil {
		t.Fatal("an event of an open call was pruned")
	}
	if _, err := db.Conversation(ctx, "done"); bridge.ErrorCode(err) != bridge.ENOTFOUND {
		t.Fatal("the ended, delivered call is still there")
	}
}

func TestAPIKeys(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	plain, k, err := db.CreateAPIKey(ctx, "crm", []string{"control"})
	if err != nil || !strings.HasPrefix(plain, "ctb_") {
		t.Fatal(err)
	}
	got, err := db.AuthenticateAPIKey(ctx, plain)
	if err != nil || got.ID != k.ID || !got.HasScope("read") || !got.HasScope("control") || got.HasScope("admin") {
		t.Fatalf("auth = %+v %v", got, err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, plain+"x"); bridge.ErrorCode(err) != bridge.EUNAUTHORIZED {
		t.Fatalf("wrong key: %v", err)
	}
	if _, _, err := db.CreateAPIKey(ctx, "x", []string{"root"}); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("bad scope: %v", err)
	}
	var stored []byte
	if err := db.r.QueryRow(`SELECT hash FROM api_keys`).Scan(&stored); err != nil || strings.Contains(string(stored), plain) {
		t.Fatal("the plaintext key is stored")
	}
	if existing, created, err := db.PutIdempotency(ctx, "k1", "calls", []byte(`{"id":"a"}`)); err != nil || !created || existing != nil {
		t.Fatal(err)
	}
	if existing, created, _ := db.PutIdempotency(ctx, "k1", "calls", []byte(`{"id":"b"}`)); created || string(existing) != `{"id":"a"}` {
		t.Fatalf("idempotency: %s %v", existing, created)
	}
}

func TestOpenErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "x.db"), Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing dir: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 100)), 0o600)
	if _, err := Open(junk, Options{}); err == nil || !strings.Contains(err.Error(), "junk.db") {
		t.Fatalf("junk file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "x.db"), Options{Synchronous: "OFF"}); err == nil {
		t.Fatal("synchronous=OFF accepted")
	}
}

func TestReadOnlyFileIsAClearError(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores file modes; use a read-only reopen of the writer instead.
		db, _ := openTest(t)
		db.w.Exec("PRAGMA query_only = ON")
		err := db.Commit(context.Background(), &bridge.Batch{Events: []bridge.PendingEvent{event("c", 1, "call.ringing")}})
		if bridge.ErrorCode(err) != bridge.EUNAVAILABLE || !strings.Contains(err.Error(), "test.db") {
			t.Fatalf("err = %v", err)
		}
		db.w.Exec("PRAGMA query_only = OFF")
		if err := db.Commit(context.Background(), &bridge.Batch{Events: []bridge.PendingEvent{event("c", 1, "call.ringing")}}); err != nil {
			t.Fatalf("store did not recover: %v", err)
		}
		return
	}
	t.Skip("non-root: covered by file modes elsewhere")
}

func TestClosedStoreRefuses(t *testing.T) {
	db, _ := openTest(t)
	db.Close()
	err := db.Commit(context.Background(), &bridge.Batch{})
	var ae *bridge.Error
	if !errors.As(err, &ae) || ae.Code != bridge.EUNAVAILABLE {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkCommit(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch%d/concurrent", sync, size), func(b *testing.B) {
				db, err := Open(filepath.Join(b.TempDir(), "b.db"), Options{Synchronous: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				payload, _ := json.Marshal(bridge.Event{Type: "call.ringing", Call: &bridge.Call{Caller: bridge.Party{Number: "5551234"}}})
				b.SetParallelism(8)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var batch bridge.Batch
						for i := 0; i < size; i++ {
							pe := event("c", 1, "call.ringing")
							pe.Payload = payload
							batch.Events = append(batch.Events, pe)
						}
						if err := db.Commit(context.Background(), &batch); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
