package bridge

import (
	"context"
	"slices"
	"testing"
	"time"
)

// answeredThenKeyHold plays an answered inbound call whose agent presses a
// transfer key: the PBX holds it (a Hold naming no music, the customer's
// music starting), then takes it off hold at off.
func answeredThenKeyHold(off time.Time) (caller, agent Channel, evs []ChannelEvent) {
	caller, agent = trunk(), ch("t.2", "PJSIP/201-00000002")
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	evs = []ChannelEvent{
		{Kind: ChanNew, Channel: caller, At: at(0)},
		{Kind: ChanDial, Channel: caller, Peer: &agent, At: at(1)},
		{Kind: ChanAnswer, Channel: agent, At: at(2)},
		{Kind: ChanBridgeEnter, Channel: caller, Bridge: "b1", At: at(2)},
		{Kind: ChanBridgeEnter, Channel: agent, Bridge: "b1", At: at(2)},
		{Kind: ChanHold, Channel: agent, FeatureHold: true, At: at(3)},
		{Kind: ChanHold, Channel: caller, Music: true, At: at(3)},
		{Kind: ChanUnhold, Channel: agent, At: off},
		{Kind: ChanUnhold, Channel: caller, Music: true, At: off.Add(2 * time.Millisecond)},
	}
	return caller, agent, evs
}

// The blind transfer key unholds the transferer and transfers within
// milliseconds: the CRM hears held, then transferred, never resumed.
func TestKeyHoldEndedByItsTransferIsNoResume(t *testing.T) {
	off := t0.Add(8 * time.Second)
	caller, agent, evs := answeredThenKeyHold(off)
	evs = append(evs, ChannelEvent{Kind: ChanTransfer, Channel: agent, Peer: &caller, Exten: "202", Context: "from-internal", At: off.Add(3 * time.Millisecond)})
	got := typesOf(run(newTestTracker(), evs...))
	if got != "call.ringing,call.answered,call.held,call.transferred" {
		t.Fatalf("events = %s", got)
	}
}

// The same hold ending with no transfer (an invalid extension keyed, the
// consultation's target hanging up) is a resume: told, at the moment the
// hold ended, by the call's next event once ResumeSettle has passed, or by
// SettleResumes.
func TestKeyHoldEndedAloneIsTheResumeOnceSettled(t *testing.T) {
	off := t0.Add(8 * time.Second)
	caller, agent, evs := answeredThenKeyHold(off)
	tr := newTestTracker()
	if got := typesOf(run(tr, evs...)); got != "call.ringing,call.answered,call.held" {
		t.Fatalf("events = %s: the resume must wait for what follows", got)
	}
	if !tr.Resuming() {
		t.Fatal("Resuming() = false with a resume waiting")
	}
	// An event of the call within ResumeSettle tells nothing yet.
	if got := typesOf(run(tr, ChannelEvent{Kind: ChanVar, Channel: caller, Name: "X", Value: "1", At: off.Add(ResumeSettle / 2)})); got != "" {
		t.Fatalf("events = %s within ResumeSettle", got)
	}
	end := off.Add(ResumeSettle + time.Second)
	got := run(tr, ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16, At: end}, ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 16, At: end})
	if typesOf(got) != "call.resumed,call.ended" {
		t.Fatalf("events = %s", typesOf(got))
	}
	// The hold ended as the customer's music stopped (the last to come off).
	if want := off.Add(2 * time.Millisecond).UTC(); !got[0].OccurredAt.Equal(want) || got[0].Call.State != "talking" {
		t.Fatalf("resumed at %v state %q, want %v talking", got[0].OccurredAt, got[0].Call.State, want)
	}

	_, _, evs = answeredThenKeyHold(off)
	tr = newTestTracker()
	run(tr, evs...)
	tr.SettleResumes()
	if got, _ := tr.Drain(); typesOf(got) != "call.resumed" {
		t.Fatalf("SettleResumes: events = %s", typesOf(got))
	}
	if tr.Resuming() {
		t.Fatal("Resuming() after SettleResumes")
	}
}

// A phone's own hold ends at once, even just before its REFER: the device
// did take the call back.
func TestPhoneHoldEndsAtOnce(t *testing.T) {
	off := t0.Add(8 * time.Second)
	caller, agent, evs := answeredThenKeyHold(off)
	evs[5].FeatureHold = false
	evs = append(evs, ChannelEvent{Kind: ChanTransfer, Channel: agent, Peer: &caller, Exten: "202", Context: "from-internal", At: off.Add(3 * time.Millisecond)})
	if got := typesOf(run(newTestTracker(), evs...)); got != "call.ringing,call.answered,call.held,call.resumed,call.transferred" {
		t.Fatalf("events = %s", got)
	}
}

// A resume still waiting is saved with its call and told after a restart.
func TestWaitingResumeSurvivesARestart(t *testing.T) {
	_, _, evs := answeredThenKeyHold(t0.Add(8 * time.Second))
	tr := newTestTracker()
	for _, ev := range evs {
		tr.Handle(adapt(ev))
	}
	_, recs := tr.Drain()
	again := newTestTracker()
	again.Restore(recs)
	if !again.Resuming() {
		t.Fatal("restored tracker has no resume waiting")
	}
	again.SettleResumes()
	if got, _ := again.Drain(); typesOf(got) != "call.resumed" {
		t.Fatalf("events = %s", typesOf(got))
	}
}

// The engine tells a waiting resume on its own when no more input comes.
func TestEngineTellsAWaitingResume(t *testing.T) {
	ob := &fakeOutbox{}
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{Endpoints: []Endpoint{{ID: "crm", Events: []string{"call.*"}}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	_, _, evs := answeredThenKeyHold(time.Now())
	for i := range evs {
		evs[i] = adapt(evs[i])
	}
	e.ChannelEvents(evs)
	committed := func() []string {
		var types []string
		for _, b := range ob.snapshot() {
			for _, ev := range b.Events {
				types = append(types, ev.Type)
			}
		}
		return types
	}
	waitFor(t, "call.resumed", func() bool { return slices.Contains(committed(), EventCallResumed) })
	if got := committed(); !slices.Equal(got, []string{EventCallRinging, EventCallAnswered, EventCallHeld, EventCallResumed}) {
		t.Fatalf("committed %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
