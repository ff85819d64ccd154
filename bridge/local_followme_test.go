package bridge

import (
	"slices"
	"testing"
)

// A Local pair for agent 201 (a follow-me: Local/201@followme/n) dials
// 201's phone, which does not answer; its dialplan then rings 201's mobile
// through a second Local pair (Dial(Local/5559876@from-internal), how
// FreePBX/dialparties reach an outside number), and the mobile answers.
// That answer is the agent's (follow-me), not the PBX's.
func TestFollowMeMobileThroughSecondLocal(t *testing.T) {
	tr := newTestTracker()
	caller := trunk()
	one, two := ch("t.2", "Local/201@followme-00000001;1"), ch("t.3", "Local/201@followme-00000001;2")
	phone := ch("t.4", "PJSIP/201-00000004")
	m1, m2 := ch("t.5", "Local/5559876@from-internal-00000002;1"), ch("t.6", "Local/5559876@from-internal-00000002;2")
	mob := ch("t.7", "PJSIP/trunk-00000007")
	mob.Context = "from-internal"
	evs := run(tr, slices.Concat([]ChannelEvent{{Kind: ChanNew, Channel: caller}}, localPair(one, two), []ChannelEvent{
		{Kind: ChanDial, Channel: caller, Peer: &one},
		{Kind: ChanNew, Channel: phone},
		{Kind: ChanDial, Channel: two, Peer: &phone},
		{Kind: ChanDialEnd, Channel: two, Peer: &phone, DialStatus: "NOANSWER"},
		{Kind: ChanHangup, Channel: phone},
	}, localPair(m1, m2), []ChannelEvent{
		{Kind: ChanDial, Channel: two, Peer: &m1},
		{Kind: ChanNew, Channel: mob},
		{Kind: ChanDial, Channel: m2, Peer: &mob},
		{Kind: ChanAnswer, Channel: mob},
		{Kind: ChanDialEnd, Channel: m2, Peer: &mob, DialStatus: "ANSWER"},
		{Kind: ChanAnswer, Channel: m2},
		{Kind: ChanAnswer, Channel: m1},
		{Kind: ChanDialEnd, Channel: two, Peer: &m1, DialStatus: "ANSWER"},
		{Kind: ChanAnswer, Channel: two},
		{Kind: ChanAnswer, Channel: one},
		{Kind: ChanDialEnd, Channel: caller, Peer: &one, DialStatus: "ANSWER"},
		{Kind: ChanHangup, Channel: caller, HangupSource: HangupByEndpoint, Cause: 16},
		{Kind: ChanHangup, Channel: one}, {Kind: ChanHangup, Channel: two},
		{Kind: ChanHangup, Channel: m1}, {Kind: ChanHangup, Channel: m2},
		{Kind: ChanHangup, Channel: mob},
	})...)
	var answered201 bool
	for _, e := range evs {
		answered201 = answered201 || e.Type == EventCallAnswered && e.Agent != nil && e.Agent.Extension == "201"
	}
	last := evs[len(evs)-1]
	if !answered201 || last.Type != EventCallEnded || last.Call.Disposition != DispositionAnswered {
		t.Errorf("the mobile's answer is 201's (follow-me): events %s, end %s", typesOf(evs), last.Call.Disposition)
	}
}

// localPair is what an adapter reports when a local pair appears: both
// halves, then the pair.
func localPair(one, two Channel) []ChannelEvent {
	return []ChannelEvent{
		{Kind: ChanNew, Channel: one},
		{Kind: ChanNew, Channel: two},
		{Kind: ChanLocalPair, Channel: one, Peer: &two},
	}
}

// A click-to-call placed by another tool (AMI Originate PJSIP/201,
// Context from-internal, Exten 5551234) to a number the context has no
// extension for: pbx.c __ast_pbx_run sends the answered agent to the
// context's "i" extension (Newexten i,1). "i" is not the number called.
func TestClickToCallInvalidExtenIsNoCallee(t *testing.T) {
	tr := newTestTracker()
	a := ch("t.1", "PJSIP/201-00000001")
	a.Context = "from-internal"
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: a},
		ChannelEvent{Kind: ChanDial, Peer: &a},
		ChannelEvent{Kind: ChanAnswer, Channel: a},
		ChannelEvent{Kind: ChanDialplan, Channel: a, Context: "from-internal", Exten: "i", Priority: 1},
		ChannelEvent{Kind: ChanHangup, Channel: a, Cause: 16},
	)
	last := evs[len(evs)-1]
	if last.Type != EventCallEnded || last.Call.Callee.Number == "i" {
		t.Errorf("events %s, callee %q: the invalid-extension handler \"i\" is no number called", typesOf(evs), last.Call.Callee.Number)
	}
}
