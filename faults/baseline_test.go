package faults

import (
	"github.com/ctibridge/ctibridge/bridge"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
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
	t.Logf("calls %d live sim %d", l.calls.Load(), len(sim.LiveChannels()))
	waitFor(10*time.Second, func() bool { return p.liveCalls() == 0 })
	waitFor(10*time.Second, func() bool { return p.metrics()["ctibridge_delivery_backlog"] == 0 })
	t.Logf("live %d", p.liveCalls())
	if err := p.term(); err != nil {
		t.Fatal(err)
	}
	evs, integ := readStore(t, db, "crm")
	v := analyse(evs, rcv.snapshot(), allChecks)
	t.Logf("integrity %s sent %d delivered %d", integ, v.Sent, v.Delivered)
	assertVerdict(t, "baseline", v)
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
	t.Logf("calls %d", l.calls.Load())
	waitFor(10*time.Second, func() bool { return p.liveCalls() == 0 })
	waitFor(10*time.Second, func() bool { return p.metrics()["ctibridge_delivery_backlog"] == 0 })
	t.Logf("live %d", p.liveCalls())
	if err := p.term(); err != nil {
		t.Fatal(err)
	}
	evs, integ := readStore(t, db, "crm")
	v := analyse(evs, rcv.snapshot(), allChecks)
	t.Logf("integrity %s sent %d delivered %d", integ, v.Sent, v.Delivered)
	assertVerdict(t, "baseline", v)
}
