package faults

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// TestCrash kills `ctibridge serve` with SIGKILL at random moments under a
// steady call load and restarts it on the same SQLite file. At the end every
// event the store committed must have been delivered, duplicates only under
// their original webhook-id, first deliveries in order per conversation, the
// file intact, and every call that was live at a crash resynced: none left
// open, none popped twice, each ended exactly once.
func TestCrash(t *testing.T) {
	t.Parallel()
	runCrash(t, "FULL", count("CTIBRIDGE_FAULTS_KILLS", 3, 300))
}

// TestCrashSyncNormal is the short crash run on synchronous=NORMAL: the OS
// keeps the WAL across a process crash, so nothing committed may be lost
// there either.
func TestCrashSyncNormal(t *testing.T) {
	t.Parallel()
	runCrash(t, "NORMAL", count("CTIBRIDGE_FAULTS_KILLS", 3, 30))
}

func runCrash(t *testing.T, sync string, kills int) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	sim := newAMISim(t)
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	cfg := conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: db, Sync: sync, LogLevel: "info",
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}
	work := trackedLoad(t, sim, 3, 3*time.Millisecond)
	convs := newConvMap()
	convs.watch(t, db)

	var (
		maxRecovery time.Duration
		faults      []fault
		held        []string // calls held still since a kill, until a process is back
		checked     int      // integrity checks run
		adopt       int      // held calls no process had committed
		v           verdict
	)
	// mark notes the calls live now (their end, if any, cannot reach a
	// dead process) and holds the first and about half of the others still.
	mark := func(name string, at time.Time) {
		f := fault{Name: name, At: at, Live: sim.liveCalls(), Held: map[string]bool{}}
		var hold []string
		for j, id := range f.Live {
			if j == 0 || rand.IntN(2) == 0 {
				hold = append(hold, id)
			}
		}
		for _, id := range sim.book.hold(hold) {
			f.Held[id] = true
			held = append(held, id)
		}
		faults = append(faults, f)
	}
	// afterKill marks the calls live at the kill, checks the file as the
	// crash left it, and, after a restart delay, marks the calls begun
	// meanwhile: no process saw them, so only the resync can adopt them.
	afterKill := func(i int) {
		killed := time.Now()
		mark(fmt.Sprintf("kill %d", i), killed)
		convs.read(db) // exact: nothing writes the file now
		// integrity_check on every kill in the short run, one in ten in the
		// long one (each reads the whole file).
		if !long() || i%10 == 0 {
			if res := integrity(t, db); res != "ok" {
				v.problem("integrity_check after kill %d: %s", i, res)
			}
			checked++
		}
		time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
		mark(fmt.Sprintf("down after kill %d", i), killed)
	}
	// release lets the held calls go on once a process has adopted them
	// (or restored them from the file): each must be filed under a
	// conversation first, or the bridge lost it.
	release := func(p *proc, i int) {
		if len(held) == 0 {
			return
		}
		if !waitFor(15*time.Second, p.ready) {
			t.Fatalf("restart %d: not ready within 15s\n%s", i, p.log.tail(3000))
		}
		for _, id := range held {
			if _, ok := convs.get(id); !ok {
				adopt++ // not in the file: only the resync can find it
			}
		}
		for _, id := range convs.adopted(db, held, 5*time.Second) {
			v.problem("VANISHED: call %s, held live since a kill, not adopted by restart %d within 5s", id, i)
		}
		ids := slices.Clone(held)
		held = held[:0]
		sim.book.releaseAll()
		// Their end happens with this process up: wait until it is
		// delivered, so the next kill cannot make it a resynced one.
		if !waitFor(15*time.Second, func() bool { return endedAll(rcv, convs, ids) }) {
			v.problem("restart %d: held calls released, but not all of their call.ended delivered within 15s", i)
		}
	}

	early := 0
	for i := range kills {
		// One kill in five lands before the API is up (store open,
		// migrations, restoring open calls); the others at a random moment
		// of normal work, most before the restart has even caught up.
		if rand.IntN(5) == 0 {
			p := startProc(t, dir, cfg, procOpts{NoAPI: true})
			time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
			p.kill()
			afterKill(i)
			early++
			continue
		}
		start := time.Now()
		p := startProc(t, dir, cfg, procOpts{})
		if i > 0 && rand.IntN(2) == 0 {
			if !waitFor(15*time.Second, p.ready) {
				t.Fatalf("restart %d: not ready within 15s\n%s", i, p.log.tail(3000))
			}
			maxRecovery = max(maxRecovery, time.Since(start))
		}
		release(p, i)
		time.Sleep(time.Duration(rand.IntN(1200)) * time.Millisecond)
		p.kill()
		afterKill(i)
	}

	// The last start runs to the end: the load stops, every call ends on
	// the PBX, and what the store holds must all come out.
	start := time.Now()
	p := startProc(t, dir, cfg, procOpts{})
	if !waitFor(15*time.Second, p.ready) {
		t.Fatalf("final start: not ready\n%s", p.log.tail(3000))
	}
	maxRecovery = max(maxRecovery, time.Since(start))
	release(p, kills)
	time.Sleep(500 * time.Millisecond) // some calls under way with this process
	work.Stop()
	if n := len(sim.LiveChannels()); n != 0 {
		t.Fatalf("%d channels still live on the PBX after the load stopped", n)
	}
	if !waitFor(15*time.Second, func() bool { return p.liveCalls() == 0 }) {
		t.Errorf("calls left open in /v1/calls after every call ended: %d", p.liveCalls())
	}
	drained := waitFor(30*time.Second, func() bool {
		m := p.metrics()
		return m != nil && m["ctibridge_delivery_backlog"] == 0 && m["ctibridge_engine_queue_length"] == 0
	})
	if err := p.term(); err != nil {
		t.Errorf("final stop: %v", err)
	}
	if !drained {
		t.Errorf("backlog not drained within 30s")
	}

	events, integrity := readStore(t, db, "crm")
	if integrity != "ok" {
		t.Errorf("integrity_check after %d SIGKILLs: %s", kills, integrity)
	}
	if n := rcv.badSignatures(); n > 0 {
		t.Errorf("%d webhooks with a bad signature", n)
	}
	hits := rcv.snapshot()
	final := analyse(events, hits, allChecks)
	final.Problems = append(v.Problems, final.Problems...)
	st := checkCalls(t, &final, sim, faults, convs, hits, nil)
	if st.Held == 0 {
		// Three workers keep about three calls live: none held at any
		// kill means the check above proved nothing.
		final.problem("no call was live at any of %d kills", kills)
	}
	name := "crash"
	if sync != "FULL" {
		name += " synchronous=" + sync
	}
	assertVerdict(t, name, final)
	record(fmt.Sprintf("crash (SIGKILL, AMI load, synchronous=%s)", sync), kills, final, maxRecovery,
		fmt.Sprintf("%d calls played, %d kills before the API was up; %d calls live at a kill (%d held through the restart, %d of them unknown to the file, %d filed, %d ended resynced); "+
			"integrity_check after %d kills; recovery = restart to /readyz 200",
			work.calls.Load(), early, st.Live, st.Held, adopt, st.Filed, st.Resynced, checked))
}

// integrity runs PRAGMA integrity_check on the file, read-only.
func integrity(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "ok" // killed before the store was created
	}
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return err.Error()
	}
	return res
}

// endedAll reports whether every call named has its conversation's
// call.ended acknowledged by the receiver.
func endedAll(rcv *ledger, convs *convMap, linked []string) bool {
	ended := map[string]bool{}
	for _, h := range rcv.snapshot() {
		if h.ok() && h.Type == "call.ended" {
			ended[h.Conv] = true
		}
	}
	for _, id := range linked {
		if conv, ok := convs.get(id); !ok || !ended[conv] {
			return false
		}
	}
	return true
}
