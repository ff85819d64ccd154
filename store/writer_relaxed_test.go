package store

import (
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

func synchronousOf(t *testing.T, db *DB) int {
	t.Helper()
	var v int
	if err := db.w.QueryRow(`PRAGMA synchronous`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// On FULL, a transaction of relaxed requests alone (a call's working
// state, an attempt record) commits with NORMAL; one holding an event, or
// grouped with one, commits FULL; the connection is FULL again after.
func TestRelaxedWritesSkipTheirOwnFsyncOnly(t *testing.T) {
	const full = 2 // PRAGMA synchronous reads FULL as 2
	db, path := openTest(t)
	if got := synchronousOf(t, db); got != full {
		t.Fatalf("synchronous = %d before any write, want FULL (2)", got)
	}
	conv := func(id string) *bridge.Batch {
		return &bridge.Batch{Conversations: []bridge.ConversationRecord{{Call: bridge.Call{ID: id, StartedAt: t0}, Open: true, State: []byte(`{}`), UpdatedAt: t0}}}
	}
	r0 := db.Relaxed.Load()
	if err := db.Commit(ctx, conv("c1")); err != nil {
		t.Fatal(err)
	}
	if got := db.Relaxed.Load() - r0; got != 1 {
		t.Fatalf("a conversation-only commit: %d relaxed transactions, want 1", got)
	}
	if err := db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm")}}); err != nil {
		t.Fatal(err)
	}
	if got := db.Relaxed.Load() - r0; got != 1 {
		t.Fatalf("a commit with an event was relaxed (%d relaxed)", got)
	}
	if got := synchronousOf(t, db); got != full {
		t.Fatalf("synchronous = %d after a commit with an event, want FULL (2)", got)
	}

	// Grouped with an event, a relaxed request commits FULL with it.
	release := hold(t, db)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = db.Commit(ctx, conv("c2")) }()
	waitQueued(db, 1)
	go func() {
		defer wg.Done()
		errs[1] = db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c2", 1, "call.ringing", t0, "crm")}})
	}()
	waitQueued(db, 2)
	tx0 := db.Transactions.Load()
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := db.Transactions.Load() - tx0; got != 2 {
		t.Fatalf("%d transactions for the held one and the group, want 2", got)
	}
	if got := db.Relaxed.Load() - r0; got != 1 {
		t.Fatalf("a group holding an event was relaxed (%d relaxed)", got)
	}
	if got := synchronousOf(t, db); got != full {
		t.Fatalf("synchronous = %d, want FULL (2)", got)
	}

	// Relaxed is not lost: both conversations are there after a reopen.
	db.Close()
	db = openAt(t, path, Options{})
	open, err := db.OpenConversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 {
		t.Fatalf("%d open conversations after reopening, want 2", len(open))
	}
}

// Relaxed commits with no durable commit after them are synced by the
// writer itself (a FULL commit of the heartbeat), not left to a power cut
// for as long as the PBX is quiet.
func TestRelaxedCommitsAreSyncedWhenNothingElseComes(t *testing.T) {
	db, _ := openTest(t)
	if err := db.Commit(ctx, &bridge.Batch{Conversations: []bridge.ConversationRecord{{Call: bridge.Call{ID: "c", StartedAt: t0}, Open: true, State: []byte(`{}`), UpdatedAt: t0}}}); err != nil {
		t.Fatal(err)
	}
	tx := db.Transactions.Load()
	// Waits for the writer's own commit; the deadline only ends a hang.
	for deadline := time.Now().Add(time.Minute); db.Transactions.Load() == tx; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no commit followed the relaxed one")
		}
	}
	if got := synchronousOf(t, db); got != 2 {
		t.Fatalf("the sync commit ran with synchronous = %d, want FULL (2)", got)
	}
	var at int64
	if err := db.r.QueryRow(`SELECT at FROM heartbeat WHERE id = 1`).Scan(&at); err != nil || at == 0 {
		t.Fatalf("heartbeat = %d, %v: the sync commit wrote nothing", at, err)
	}
}

// NORMAL stores count no relaxed transactions: they have no fsync to skip.
func TestRelaxedMeansNothingOnNormal(t *testing.T) {
	db := openAt(t, t.TempDir()+"/n.db", Options{Synchronous: "NORMAL"})
	if err := db.Commit(ctx, &bridge.Batch{Conversations: []bridge.ConversationRecord{{Call: bridge.Call{ID: "c", StartedAt: t0}, Open: true, State: []byte(`{}`), UpdatedAt: t0}}}); err != nil {
		t.Fatal(err)
	}
	if n := db.Relaxed.Load(); n != 0 {
		t.Fatalf("%d relaxed transactions on NORMAL", n)
	}
}

// Relaxed commits that keep coming do not put their sync off: the bound
// runs from the first of them.
func TestRelaxedSyncIsNotPutOffByMoreRelaxedCommits(t *testing.T) {
	db, _ := openTest(t)
	durable := func() int64 { return db.Transactions.Load() - db.Relaxed.Load() }
	d0 := durable()
	// Waits for the writer's own commit; the deadline only ends a hang.
	for i, deadline := 0, time.Now().Add(time.Minute); durable() == d0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("a stream of relaxed commits was never synced")
		}
		conv := bridge.ConversationRecord{Call: bridge.Call{ID: "c", StartedAt: t0}, Open: true, State: []byte(`{}`), UpdatedAt: t0.Add(time.Duration(i))}
		if err := db.Commit(ctx, &bridge.Batch{Conversations: []bridge.ConversationRecord{conv}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A durable write that changes nothing (SQLite then skips the fsync) still
// syncs the relaxed commits before it: it writes the heartbeat with them.
func TestNoOpDurableWriteStillSyncsRelaxedCommits(t *testing.T) {
	db, _ := openTest(t)
	heartbeat := func() int64 {
		var at int64
		if err := db.r.QueryRow(`SELECT coalesce((SELECT at FROM heartbeat WHERE id = 1), 0)`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	if err := db.Commit(ctx, &bridge.Batch{Conversations: []bridge.ConversationRecord{{Call: bridge.Call{ID: "c", StartedAt: t0}, Open: true, State: []byte(`{}`), UpdatedAt: t0}}}); err != nil {
		t.Fatal(err)
	}
	before := heartbeat()
	if err := db.EnableEndpoint(ctx, "no-such-endpoint"); err != nil { // changes no row
		t.Fatal(err)
	}
	if after := heartbeat(); after == before {
		t.Fatal("the durable write after a relaxed commit wrote nothing: its commit had no fsync to cover the relaxed one")
	}
}
