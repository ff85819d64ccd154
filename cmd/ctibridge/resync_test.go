package main

import (
	"github.com/ctibridge/ctibridge/bridge"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// splitAfterAnswer cuts a capture's events right after the call is bridged.
func splitAfterAnswer(t *testing.T, name string) (before, after []amitest.Frame) {
	evs := amitest.EventsOf(amitest.Frames(name))
	for i, f := range evs {
		if f.Event() == "BridgeEnter" {
			return evs[:i+2], evs[i+2:]
		}
	}
	t.Fatalf("%s: no BridgeEnter", name)
	return nil, nil
}

// A link dropped mid-call: on reconnect CoreShowChannels still lists the
// call, so it is adopted without a second pop and ends normally later.
func TestLinkDropMidCallAdoptsLiveCall(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	before, after := splitAfterAnswer(t, "inbound-call-basic")
	if err := sim.PlayFrames(before, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(2, 5*time.Second)
	sim.DropMidFrame()
	h.waitLink(false)
	h.waitLink(true)
	if err := sim.PlayFrames(after, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := rcv.WaitFor(3, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	ds = rcv.Deliveries()
	if got := typesOf(ds); got != "call.ringing,call.answered,call.ended" {
		t.Fatalf("webhooks = %s", got)
	}
	if field(ds[2], "resynced") != nil || field(ds[2], "call.hangup_by") != "agent" || ds[2].ConversationID != ds[0].ConversationID {
		t.Fatalf("end: %s", ds[2].Raw)
	}
}

// The PBX restarted while the link was down: the call is gone from its
// channel list, so it is released with resynced=true, exactly once.
func TestPBXRestartReleasesLostCall(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	before, _ := splitAfterAnswer(t, "inbound-call-basic")
	if err := sim.PlayFrames(before, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(2, 5*time.Second)
	sim.Restart()
	ds := rcv.WaitFor(3, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	ds = rcv.Deliveries()
	if got := typesOf(ds); got != "call.ringing,call.answered,call.ended" {
		t.Fatalf("webhooks = %s", got)
	}
	if field(ds[2], "resynced") != true || field(ds[2], "call.hangup_by") != "system" || field(ds[2], "call.disposition") != "answered" {
		t.Fatalf("end: %s", ds[2].Raw)
	}
	if err := waitFor(t.Context(), 10*time.Second, func() bool { return len(h.run.Engine.Live()) == 0 }); err != nil {
		t.Fatalf("%d calls still live", len(h.run.Engine.Live()))
	}
}

// ctibridge restarts mid-call: the new process adopts the open call from
// the store (same conversation id, sequence goes on) without a second pop.
func TestRestartAdoptsOpenCallFromStore(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	before, after := splitAfterAnswer(t, "inbound-call-basic")
	if err := sim.PlayFrames(before, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(2, 5*time.Second)
	h.stop()

	h2 := startBridge(t, cfg, rcv)
	h2.waitLink(true)
	if err := waitFor(t.Context(), 5*time.Second, func() bool { return len(h2.run.Engine.Live()) == 1 }); err != nil {
		t.Fatal("open call not adopted after restart")
	}
	if err := sim.PlayFrames(after, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(3, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	ds := rcv.Deliveries()
	if got := typesOf(ds); got != "call.ringing,call.answered,call.ended" {
		t.Fatalf("webhooks = %s", got)
	}
	if ds[2].ConversationID != ds[0].ConversationID || ds[2].Sequence != 3 {
		t.Fatalf("after restart: conv %s seq %d", ds[2].ConversationID, ds[2].Sequence)
	}
}

// The model misses a call's Hangups while the link stays up (lost events,
// a flow it does not know): the periodic reconcile finds the call's
// channels gone from the PBX's list and releases it, once, as reconciled.
func TestReconcileReleasesACallWhoseHangupsWereLost(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.PBX.ReconcileInterval = 300 * time.Millisecond
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	lose := func(f amitest.Frame) bool { return f.Event() == "Hangup" }
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{Lose: lose}); err != nil {
		t.Fatal(err)
	}
	ds := rcv.WaitFor(3, 20*time.Second)
	if got := typesOf(ds); got != "call.ringing,call.answered,call.ended" {
		t.Fatalf("webhooks = %s", got)
	}
	if field(ds[2], "resynced") != true || field(ds[2], "resync_reason") != "reconciled" || ds[2].ConversationID != ds[0].ConversationID {
		t.Fatalf("end: %s", ds[2].Raw)
	}
	if h.run.Engine.Reconciled.Load() < 1 {
		t.Fatal("the reconcile was not counted")
	}
	// The live list is published after the commit that delivered the end.
	if err := waitFor(t.Context(), 10*time.Second, func() bool { return len(h.run.Engine.Live()) == 0 }); err != nil {
		t.Fatalf("%d calls still live", len(h.run.Engine.Live()))
	}
}
