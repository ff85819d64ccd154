package main

import (
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/esl/esltest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

func freeswitchConfig(t *testing.T, simAddr, receiverURL, secret string) config.Config {
	cfg := asteriskConfig(t, simAddr, receiverURL, secret)
	cfg.PBX.Type, cfg.PBX.Username, cfg.PBX.Secret = "freeswitch", "", "ClueCon"
	cfg.Calls.InboundContexts = nil
	return cfg
}

func newFreeSWITCH(t *testing.T) *esltest.Server {
	sim, err := esltest.NewServer(esltest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// playCall runs one capture through a simulator, ctibridge and a receiver
// and returns the webhooks of call.* and recording.* type, in order.
func playCall(t *testing.T, pbx, capture string, opts any) []webhookstest.Delivery {
	t.Helper()
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	var h *harness
	switch pbx {
	case "asterisk":
		sim := newAsterisk(t)
		h = startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
		h.waitLink(true)
		o, _ := opts.(amitest.PlayOptions)
		if err := sim.Play(capture, o); err != nil {
			t.Fatal(err)
		}
	case "freeswitch":
		sim := newFreeSWITCH(t)
		h = startBridge(t, freeswitchConfig(t, sim.Addr(), rcv.URL, secret), rcv)
		h.waitLink(true)
		o, _ := opts.(esltest.PlayOptions)
		if err := sim.Play(capture, o); err != nil {
			t.Fatal(err)
		}
	}
	// Done when the call has ended and everything committed was delivered.
	err := waitFor(t.Context(), 10*time.Second, func() bool {
		calls := h.run.Engine.Emitted.Load() - agentStates(h)
		return calls > 0 && len(h.run.Engine.Live()) == 0 && h.run.Engine.QueueLen.Load() == 0 &&
			int64(len(rcv.Deliveries())) >= calls
	})
	if err != nil {
		t.Fatalf("%s %s: call did not end / deliver: live=%d, %s", pbx, capture, len(h.run.Engine.Live()), typesOf(rcv.Deliveries()))
	}
	time.Sleep(50 * time.Millisecond)
	ds := rcv.Deliveries()
	for i, d := range ds {
		if d.Err != nil {
			t.Errorf("%s: webhook %d bad signature: %v", capture, i, d.Err)
		}
	}
	return ds
}

// agentStates counts committed agent.state events (filtered out by the
// endpoint's call.*/recording.* subscription).
func agentStates(h *harness) int64 {
	var n int64
	for _, ev := range h.committed() {
		if ev == "agent.state" {
			n++
		}
	}
	return n
}

func (h *harness) committed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.types...)
}

// TestFreeSWITCHCapturesEndToEnd replays each real FreeSWITCH capture.
func TestFreeSWITCHCapturesEndToEnd(t *testing.T) {
	cases := []struct {
		capture string
		opts    esltest.PlayOptions
		types   string
	}{
		{"basic-call-plain", esltest.PlayOptions{}, "call.ringing,call.answered,call.ended"},
		{"basic-call-json", esltest.PlayOptions{Format: "json"}, "call.ringing,call.answered,call.ended"},
		{"blind-transfer", esltest.PlayOptions{}, "call.ringing,call.answered,call.transferred,call.ended"},
		{"record", esltest.PlayOptions{}, "call.ringing,call.answered,recording.started,recording.ready,call.ended"},
		{"kill", esltest.PlayOptions{}, "call.ringing,call.answered,call.ended"},
		{"hold-loopback", esltest.PlayOptions{}, "call.ringing,call.answered,call.held,call.ended"},
		{"callcenter", esltest.PlayOptions{}, "call.queued,call.ringing,call.answered,call.ended"},
		// Out of order on the wire: the same webhooks.
		{"basic-call-plain", esltest.PlayOptions{Shuffle: 6, Seed: 7}, "call.ringing,call.answered,call.ended"},
		{"record", esltest.PlayOptions{Shuffle: 5, Seed: 3}, "call.ringing,call.answered,recording.started,recording.ready,call.ended"},
		{"callcenter", esltest.PlayOptions{Shuffle: 4, Seed: 11}, "call.queued,call.ringing,call.answered,call.ended"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/shuffle%d", tc.capture, tc.opts.Shuffle), func(t *testing.T) {
			ds := playCall(t, "freeswitch", tc.capture, tc.opts)
			if got := typesOf(ds); got != tc.types {
				for _, d := range ds {
					t.Logf("%s", d.Raw)
				}
				t.Fatalf("webhooks = %s, want %s", got, tc.types)
			}
			for i, d := range ds {
				if d.Sequence != int64(i+1) || d.ConversationID != ds[0].ConversationID {
					t.Errorf("webhook %d: seq %d conv %s", i, d.Sequence, d.ConversationID)
				}
			}
			end := ds[len(ds)-1]
			if field(end, "call.direction") != "inbound" || field(end, "call.disposition") != "answered" || field(end, "call.hangup_cause.code") != 16.0 {
				t.Errorf("end: %s", end.Raw)
			}
		})
	}
}

// The same scenario on both PBXs gives the same webhook types and the same
// call fields: a CRM cannot tell which PBX is behind ctibridge.
func TestSameContractOnBothPBXs(t *testing.T) {
	pairs := []struct {
		asterisk, freeswitch string
		otherReleaser        bool // the two captures end the call from different sides
	}{
		{"inbound-call-basic", "basic-call-plain", false},
		{"blind-transfer", "blind-transfer", false},
		// Asterisk's caller leg ends its Wait(8); FreeSWITCH's capture
		// uuid_kills the agent leg.
		{"mixmonitor-action", "record", true},
		{"hangup-action", "kill", false},
		{"queue-call", "callcenter", false},
	}
	keys := []string{"call.direction", "call.state", "call.disposition", "call.hangup_cause.code", "call.hangup_by", "transfer.mode"}
	present := []string{"agent.extension", "call.agent.extension", "call.queue", "recording.path", "call.caller.number", "call.callee.number", "call.started_at", "call.answered_at", "call.ended_at", "call.talk_s"}
	for _, p := range pairs {
		t.Run(p.asterisk+"~"+p.freeswitch, func(t *testing.T) {
			a := playCall(t, "asterisk", p.asterisk, amitest.PlayOptions{})
			f := playCall(t, "freeswitch", p.freeswitch, esltest.PlayOptions{})
			if typesOf(a) != typesOf(f) {
				t.Fatalf("asterisk %s\nfreeswitch %s", typesOf(a), typesOf(f))
			}
			for i := range a {
				for _, k := range keys {
					if k == "call.hangup_by" && p.otherReleaser {
						continue
					}
					if va, vf := field(a[i], k), field(f[i], k); fmt.Sprint(va) != fmt.Sprint(vf) {
						t.Errorf("%s #%d %s: asterisk %v, freeswitch %v", a[i].Type, i+1, k, va, vf)
					}
				}
				for _, k := range present {
					if (field(a[i], k) == nil) != (field(f[i], k) == nil) {
						t.Errorf("%s #%d %s: asterisk %v, freeswitch %v", a[i].Type, i+1, k, field(a[i], k), field(f[i], k))
					}
				}
			}
			if strings.Count(typesOf(a), "call.ringing") == 0 {
				t.Error("no screen pop")
			}
		})
	}
}

// Concurrent FreeSWITCH calls through the same extension have channels of
// the same name (loopback/2000-a): they must stay separate conversations.
func TestFreeSWITCHConcurrentCallsSameExtension(t *testing.T) {
	sim := newFreeSWITCH(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, freeswitchConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	a, err := sim.Prepare("basic-call-plain", esltest.PlayOptions{Rewrite: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.Prepare("basic-call-plain", esltest.PlayOptions{Rewrite: true})
	if err != nil {
		t.Fatal(err)
	}
	// Both calls live at once: the first half of each, then the rest
	// (pauses longer than the reorder window so each part is released).
	for _, part := range [][]esltest.Frame{a[:len(a)/2], b[:len(b)/2], a[len(a)/2:], b[len(b)/2:]} {
		sim.Stream(part, 0)
		time.Sleep(150 * time.Millisecond)
	}
	ds := rcv.WaitFor(6, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	ds = rcv.Deliveries()
	convs := map[string][]string{}
	for _, d := range ds {
		convs[d.ConversationID] = append(convs[d.ConversationID], d.Type)
	}
	if len(convs) != 2 {
		t.Fatalf("%d conversations, want 2: %v", len(convs), convs)
	}
	for id, types := range convs {
		if strings.Join(types, ",") != "call.ringing,call.answered,call.ended" {
			t.Errorf("%s: %v", id, types)
		}
	}
}

// The ESL link dies mid-call (torn frame); on reconnect "show channels"
// still lists the call, which is adopted and ends normally: no second pop,
// exactly one release.
func TestFreeSWITCHLinkKilledMidCall(t *testing.T) {
	sim := newFreeSWITCH(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, freeswitchConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	frames, err := sim.Prepare("basic-call-plain", esltest.PlayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	half := len(frames) / 2
	sim.Stream(frames[:half], 0)
	// The pop at least; whether the answer is in the first half depends on
	// where the cut falls (the resync reports it otherwise).
	rcv.WaitFor(1, 5*time.Second)
	sim.DropAll(true)
	h.waitLink(false)
	if err := waitFor(t.Context(), 10*time.Second, func() bool {
		up, _ := h.run.Engine.LinkState()
		return up && h.run.Engine.QueueLen.Load() == 0
	}); err != nil {
		t.Fatal("no reconnect")
	}
	// The resync keeps the call (adopted, or still known): one live call,
	// waited for rather than slept for.
	if err := waitFor(t.Context(), 10*time.Second, func() bool { return len(h.run.Engine.Live()) == 1 }); err != nil {
		t.Fatalf("%d live calls after resync, want the one adopted", len(h.run.Engine.Live()))
	}
	sim.Stream(frames[half:], 0)
	rcv.WaitFor(3, 5*time.Second)
	time.Sleep(150 * time.Millisecond)
	ds := rcv.Deliveries()
	if got := typesOf(ds); got != "call.ringing,call.answered,call.ended" {
		t.Fatalf("webhooks = %s", got)
	}
	if ds[2].ConversationID != ds[0].ConversationID || field(ds[2], "resynced") != nil {
		t.Fatalf("end: %s", ds[2].Raw)
	}
}
