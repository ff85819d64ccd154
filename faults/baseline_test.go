package faults

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

func TestBaselineAMI(t *testing.T) {
	dir := t.TempDir()
	sim := amitest.NewTestServer(t, amitest.ServerOptions{})
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	db := filepath.Join(dir, "ctibridge.db")
	p := startProc(t, dir, conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: db,
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}, procOpts{})
	if !waitFor(10*time.Second, p.ready) {
		t.Fatalf("not ready\n%s", p.log.tail(3000))
	}
	l := amiLoad(t, sim, 3, 2*time.Millisecond)
	time.Sleep(3 * time.Second)
	l.Stop()
	if n := len(sim.LiveChannels()); n != 0 {
		t.Fatalf("%d channels live on the simulator after the load stopped", n)
	}
	settle(t, p, l.calls.Load())
	if err := p.term(); err != nil {
		t.Fatal(err)
	}
	evs, integ := readStore(t, db, "crm")
	if integ != "ok" {
		t.Errorf("integrity_check: %s", integ)
	}
	assertVerdict(t, "baseline", analyse(evs, rcv.snapshot(), allChecks))
}

func TestBaselineESL(t *testing.T) {
	dir := t.TempDir()
	sim := newESL(t, esltest.Options{})
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	db := filepath.Join(dir, "ctibridge.db")
	p := startProc(t, dir, conf{PBXType: "freeswitch", PBXAddr: sim.Addr(), PBXSecret: "ClueCon", DB: db,
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}, procOpts{})
	if !waitFor(10*time.Second, p.ready) {
		t.Fatalf("not ready\n%s", p.log.tail(3000))
	}
	l := eslLoad(t, sim, 2, 0.05)
	time.Sleep(3 * time.Second)
	l.Stop()
	settle(t, p, l.calls.Load())
	if err := p.term(); err != nil {
		t.Fatal(err)
	}
	evs, integ := readStore(t, db, "crm")
	if integ != "ok" {
		t.Errorf("integrity_check: %s", integ)
	}
	assertVerdict(t, "baseline", analyse(evs, rcv.snapshot(), allChecks))
}

// settle waits, with no fault, for every call to close in /v1/calls and
// the outbox to drain: both must happen.
func settle(t *testing.T, p *proc, calls int64) {
	t.Helper()
	if calls == 0 {
		t.Fatal("the load played no call")
	}
	if !waitFor(10*time.Second, func() bool { return p.liveCalls() == 0 }) {
		t.Errorf("%d calls still open in /v1/calls 10s after every call ended (%d played)", p.liveCalls(), calls)
	}
	if !waitFor(10*time.Second, func() bool {
		m := p.metrics()
		return m != nil && m["ctibridge_delivery_backlog"] == 0 && m["ctibridge_engine_queue_length"] == 0
	}) {
		t.Errorf("backlog not drained 10s after the load stopped")
	}
}
