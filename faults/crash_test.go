package faults

import (
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
)

// TestCrash kills `ctibridge serve` with SIGKILL at random moments under a
// steady call load and restarts it on the same SQLite file. At the end every
// event the store committed must have been delivered, duplicates only under
// their original webhook-id, first deliveries in order per conversation, the
// file intact, and every call that was live at a crash resynced: none left
// open, none popped twice, each ended exactly once.
func TestCrash(t *testing.T) {
	t.Parallel()
	kills := count("CTIBRIDGE_FAULTS_KILLS", 3, 300)
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	sim := amitest.NewTestServer(t, amitest.ServerOptions{})
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	cfg := conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: db, LogLevel: "info",
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}
	work := amiLoad(t, sim, 3, 3*time.Millisecond)

	var maxRecovery time.Duration
	early := 0
	for i := range kills {
		// One kill in five lands before the API is up (store open,
		// migrations, restoring open calls); the others at a random moment
		// of normal work, most before the restart has even caught up.
		if rand.IntN(5) == 0 {
			p := startProc(t, dir, cfg, procOpts{NoAPI: true})
			time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
			p.kill()
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
		time.Sleep(time.Duration(rand.IntN(1200)) * time.Millisecond)
		p.kill()
	}

	// The last start runs to the end: the load stops, every call ends on
	// the PBX, and what the store holds must all come out.
	start := time.Now()
	p := startProc(t, dir, cfg, procOpts{})
	if !waitFor(15*time.Second, p.ready) {
		t.Fatalf("final start: not ready\n%s", p.log.tail(3000))
	}
	maxRecovery = max(maxRecovery, time.Since(start))
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
	v := analyse(events, rcv.snapshot(), allChecks)
	assertVerdict(t, "crash", v)
	record("crash (SIGKILL, AMI load)", kills, v, maxRecovery,
		fmt.Sprintf("%d calls played, %d kills before the API was up; recovery = restart to /readyz 200", work.calls.Load(), early))
}
