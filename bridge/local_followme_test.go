package bridge

import (
	"strings"
	"testing"
)

func storyLine(evs []Event) string {
	var s []string
	for _, e := range evs {
		x := e.Type
		if e.Agent != nil {
			x += "(" + e.Agent.Extension + ")"
		}
		if e.Type == EventCallEnded {
			x += "(" + string(e.Call.Disposition) + "," + e.Call.HangupBy + ")"
		}
		s = append(s, x)
	}
	return strings.Join(s, " ")
}

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
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanNew, Channel: one},
		ChannelEvent{Kind: ChanNew, Channel: two},
		ChannelEvent{Kind: ChanLocalPair, Channel: one, Peer: &two},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &one},
		ChannelEvent{Kind: ChanNew, Channel: phone},
		ChannelEvent{Kind: ChanDial, Channel: two, Peer: &phone},
		ChannelEvent{Kind: ChanDialEnd, Channel: two, Peer: &phone, DialStatus: "NOANSWER"},
		ChannelEvent{Kind: ChanHangup, Channel: phone},
		ChannelEvent{Kind: ChanNew, Channel: m1},
		ChannelEvent{Kind: ChanNew, Channel: m2},
		ChannelEvent{Kind: ChanLocalPair, Channel: m1, Peer: &m2},
		ChannelEvent{Kind: ChanDial, Channel: two, Peer: &m1},
		ChannelEvent{Kind: ChanNew, Channel: mob},
		ChannelEvent{Kind: ChanDial, Channel: m2, Peer: &mob},
		ChannelEvent{Kind: ChanAnswer, Channel: mob},
		ChannelEvent{Kind: ChanDialEnd, Channel: m2, Peer: &mob, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanAnswer, Channel: m2},
		ChannelEvent{Kind: ChanAnswer, Channel: m1},
		ChannelEvent{Kind: ChanDialEnd, Channel: two, Peer: &m1, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanAnswer, Channel: two},
		ChannelEvent{Kind: ChanAnswer, Channel: one},
		ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &one, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanHangup, Channel: caller, HangupSource: HangupByEndpoint, Cause: 16},
		ChannelEvent{Kind: ChanHangup, Channel: one}, ChannelEvent{Kind: ChanHangup, Channel: two},
		ChannelEvent{Kind: ChanHangup, Channel: m1}, ChannelEvent{Kind: ChanHangup, Channel: m2},
		ChannelEvent{Kind: ChanHangup, Channel: mob},
	)
	got := storyLine(evs)
	t.Logf("GOT %s", got)
	if !strings.Contains(got, "call.answered(201)") || !strings.Contains(got, "ended(answered,") {
		t.Errorf("the mobile's answer is 201's (follow-me)")
	}
}

// a click-to-call placed by another tool (AMI Originate PJSIP/201,
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
	for _, e := range evs {
		if e.Type == EventCallEnded {
			t.Logf("callee %q", e.Call.Callee.Number)
			if e.Call.Callee.Number == "i" {
				t.Errorf("callee is the invalid-extension handler \"i\"")
			}
		}
	}
}
