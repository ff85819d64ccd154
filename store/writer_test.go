package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// hold blocks the writer inside a request until release is called, so a
// test can queue requests behind it and know they will form one group.
func hold(t *testing.T, db *DB) (release func() error) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- db.write(ctx, 1, func(w *wtx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	return func() error {
		close(gate)
		return <-res
	}
}

// waitQueued waits (no timing involved) until n requests wait for the writer.
func waitQueued(db *DB, n int) {
	for len(db.reqs) < n {
		runtime.Gosched()
	}
}

func TestGroupCommitGroupsConcurrentCommits(t *testing.T) {
	db, _ := openTest(t)
	release := hold(t, db)
	tx0, req0 := db.Transactions.Load(), db.Requests.Load()

	const n = 200
	var wg sync.WaitGroup
	batches := make([]*bridge.Batch, n)
	errs := make([]error, n)
	for i := range n {
		batches[i] = &bridge.Batch{Events: []bridge.PendingEvent{newEvent(fmt.Sprintf("c%d", i), 1, "call.ringing", t0, "crm")}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Commit(ctx, batches[i])
		}()
	}
	waitQueued(db, n)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	txs, reqs := db.Transactions.Load()-tx0-1, db.Requests.Load()-req0 // the holder's commit counts, its request was counted before
	if reqs != n || txs > 2 {
		t.Fatalf("%d commits took %d transactions (%d requests counted): not grouped", n, txs, reqs)
	}
	// Every caller got its own, distinct Seq, in the order they were queued.
	seen := map[int64]bool{}
	for _, b := range batches {
		s := b.Events[0].Seq
		if s == 0 || seen[s] {
			t.Fatalf("seq %d missing or repeated", s)
		}
		seen[s] = true
	}
	if n, _ := db.Backlog(ctx); n != 200 || count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'pending'`) != 200 {
		t.Fatalf("backlog = %d", n)
	}
}

func TestGroupIsBoundedByMaxBatch(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "b.db"), Options{MaxBatch: 10})
	release := hold(t, db)
	tx0 := db.Transactions.Load()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 1 event + 1 delivery = 2 rows: 5 requests per group.
			if err := db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent(fmt.Sprint(i), 1, "call.ringing", t0, "crm")}}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitQueued(db, 40)
	release()
	wg.Wait()
	if txs := db.Transactions.Load() - tx0 - 1; txs != 8 {
		t.Fatalf("40 requests of 2 rows with MaxBatch 10 took %d transactions, want 8", txs)
	}
}

// One request failing must not fail the others of its group: they are
// retried alone and each caller gets its own outcome.
func TestFailedGroupRetriesEachRequestAlone(t *testing.T) {
	db, _ := openTest(t)
	release := hold(t, db)
	const n, bad = 30, 17
	var wg sync.WaitGroup
	errs := make([]error, n)
	batches := make([]*bridge.Batch, n)
	for i := range n {
		batches[i] = &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", int64(i), "call.ringing", t0, "crm")}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == bad {
				errs[i] = db.write(ctx, 1, func(w *wtx) error {
					_, err := w.exec(`INSERT INTO no_such_table VALUES (1)`)
					return err
				})
				return
			}
			errs[i] = db.Commit(ctx, batches[i])
		}()
	}
	waitQueued(db, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if (i == bad) != (err != nil) {
			t.Fatalf("request %d: err = %v", i, err)
		}
		if i != bad && batches[i].Events[0].Seq == 0 {
			t.Fatalf("request %d committed without a Seq", i)
		}
	}
	if !strings.Contains(errs[bad].Error(), "no_such_table") {
		t.Fatalf("the failing request got %v, not its own error", errs[bad])
	}
	if got := count(t, db, `SELECT count(*) FROM events`); got != n-1 {
		t.Fatalf("%d events stored, want %d", got, n-1)
	}
	if b, _ := db.Backlog(ctx); b != n-1 {
		t.Fatalf("backlog = %d, want %d (a rolled-back attempt counted?)", b, n-1)
	}
}

// A refused request (unknown id) does not cost the others a retry.
func TestRefusalDoesNotBreakTheGroup(t *testing.T) {
	db, _ := openTest(t)
	release := hold(t, db)
	tx0 := db.Transactions.Load()
	var wg sync.WaitGroup
	var missing error
	wg.Add(2)
	go func() {
		defer wg.Done()
		missing = db.DeleteEndpoint(ctx, "nope")
	}()
	waitQueued(db, 1)
	go func() {
		defer wg.Done()
		if err := db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm")}}); err != nil {
			t.Error(err)
		}
	}()
	waitQueued(db, 2)
	release()
	wg.Wait()
	wantCode(t, missing, bridge.ENOTFOUND, "nope")
	if txs := db.Transactions.Load() - tx0; txs != 2 { // the holder's and the group's
		t.Fatalf("%d transactions: the refusal forced a retry", txs)
	}
}

func TestCancelWhileQueuedWithdrawsTheRequest(t *testing.T) {
	db, _ := openTest(t)
	release := hold(t, db)
	cctx, cancel := context.WithCancel(ctx)
	var ran atomic.Bool
	res := make(chan error, 1)
	go func() {
		res <- db.write(cctx, 1, func(w *wtx) error {
			ran.Store(true)
			return nil
		})
	}()
	waitQueued(db, 1)
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	release()
	if err := db.Writable(ctx); err != nil { // queued after the withdrawn one
		t.Fatal(err)
	}
	if ran.Load() {
		t.Fatal("a withdrawn request ran")
	}
}

// Once a request is in a transaction, its caller learns the real outcome
// even if its ctx ends: nil means committed.
func TestCancelWhileCommittingReturnsTheOutcome(t *testing.T) {
	db, _ := openTest(t)
	cctx, cancel := context.WithCancel(ctx)
	entered, gate := make(chan struct{}), make(chan struct{})
	res := make(chan error, 1)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm")}}
	go func() {
		res <- db.write(cctx, 1, func(w *wtx) error {
			close(entered)
			<-gate
			_, err := w.exec(insertEventSQL, b.Events[0].ID, "call.ringing", "c", 1, 0, []byte("{}"))
			return err
		})
	}()
	<-entered
	cancel()
	close(gate)
	if err := <-res; err != nil {
		t.Fatalf("committed request returned %v", err)
	}
	if _, err := db.Event(ctx, b.Events[0].ID); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushesQueuedWrites(t *testing.T) {
	db, path := openTest(t)
	release := hold(t, db)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent(fmt.Sprint(i), 1, "call.ringing", t0)}}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitQueued(db, 10)
	closed := make(chan error)
	go func() { closed <- db.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	db = openAt(t, path, Options{})
	if n := count(t, db, `SELECT count(*) FROM events`); n != 10 {
		t.Fatalf("%d of 10 queued commits survived Close", n)
	}
}

// Many writers and readers at once, then the file must be intact and the
// backlog counter must agree with the table.
func TestConcurrentUseKeepsIntegrity(t *testing.T) {
	db, _ := openTest(t)
	var wg sync.WaitGroup
	var ids sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				conv := fmt.Sprintf("g%d-%d", g, i%5)
				b := &bridge.Batch{Events: []bridge.PendingEvent{
					newEvent(conv, int64(i), "call.ringing", t0, "crm", "erp"),
					newEvent(conv, int64(i)+1000, "call.ended", t0, "crm"),
				}, Conversations: []bridge.ConversationRecord{convRec(conv, t0, i%2 == 0, "5551234", "201", "")}}
				if err := db.Commit(ctx, b); err != nil {
					t.Error(err)
					return
				}
				ids.Store(b.Events[0].ID, true)
				switch i % 4 {
				case 0:
					err := db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[0].ID, EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered})
					if err != nil {
						t.Error(err)
					}
				case 1:
					if _, _, err := db.Replay(ctx, b.Events[1].ID, []string{"erp"}); err != nil {
						t.Error(err)
					}
				case 2:
					if _, err := db.PendingDeliveries(ctx, "crm", 0, 50); err != nil {
						t.Error(err)
					}
				case 3:
					if _, _, err := db.History(ctx, bridge.HistoryFilter{Number: "5551234", Limit: 10}); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := db.DisableEndpoint(ctx, "erp", "410 Gone"); err != nil {
				t.Error(err)
			}
			if _, err := db.Prune(ctx, t0.Add(-1)); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	var fk int
	rows, _ := db.r.Query(`PRAGMA foreign_key_check`)
	for rows.Next() {
		fk++
	}
	rows.Close()
	if fk != 0 {
		t.Fatalf("%d foreign key violations", fk)
	}
	if n, _ := db.Backlog(ctx); n != count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'pending'`) {
		t.Fatalf("backlog counter %d drifted from the table", n)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 8*60*2 {
		t.Fatalf("%d events", n)
	}
}
