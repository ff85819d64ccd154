package bridge

import (
	"strings"
	"testing"
)

// An agent who waits in a PBX service that hands it caller after caller
// (mod_fifo "fifo out wait", Asterisk's AgentLogin) takes each caller's
// call in turn; no caller's call is folded into another's, and each ends
// when its caller leaves, though the agent's own channel stays up.
func TestServedAgentTakesCallerAfterCaller(t *testing.T) {
	tr := newTestTracker()
	agent := Channel{ID: "a.1", Name: "PJSIP/201-000000a1", LinkedID: "a.1", CallerNum: "201", Context: "from-internal", Exten: "7000"}
	c1 := Channel{ID: "c.1", Name: "PJSIP/trunk-000000c1", LinkedID: "c.1", CallerNum: "+74954451120", Context: "from-trunk", Exten: "5000"}
	c2 := Channel{ID: "c.2", Name: "PJSIP/trunk-000000c2", LinkedID: "c.2", CallerNum: "+74954451121", Context: "from-trunk", Exten: "5000"}
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: agent},
		ChannelEvent{Kind: ChanAnswer, Channel: agent},
		ChannelEvent{Kind: ChanNew, Channel: c1},
		ChannelEvent{Kind: ChanAnswer, Channel: c1},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: c1, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: agent, Bridge: "b1"},
		ChannelEvent{Kind: ChanHangupRequest, Channel: c1},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: c1, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: agent, Bridge: "b1"},
		ChannelEvent{Kind: ChanHangup, Channel: c1, Cause: 16, HangupSource: HangupByEndpoint},
		ChannelEvent{Kind: ChanNew, Channel: c2},
		ChannelEvent{Kind: ChanAnswer, Channel: c2},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: c2, Bridge: "b2"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: agent, Bridge: "b2"},
		ChannelEvent{Kind: ChanHangupRequest, Channel: c2},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: c2, Bridge: "b2"},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: agent, Bridge: "b2"},
		ChannelEvent{Kind: ChanHangup, Channel: c2, Cause: 16, HangupSource: HangupByEndpoint},
	)
	var k StoryChecker
	var got []string
	for _, e := range evs {
		if err := k.Check(e); err != nil {
			t.Error(err)
		}
		agent := ""
		if e.Call.Agent != nil {
			agent = e.Call.Agent.Extension
		}
		got = append(got, e.Call.Caller.Number+" "+e.Type+" "+agent+" "+string(e.Call.Disposition)+" "+e.Call.HangupBy)
	}
	want := []string{
		"+74954451120 call.answered 201  ",
		"+74954451120 call.ended 201 answered caller",
		"+74954451121 call.answered 201  ",
		"+74954451121 call.ended 201 answered caller",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if evs[0].ConversationID == evs[2].ConversationID {
		t.Fatal("the second caller's call was folded into the first's")
	}
	if err := tr.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	// The agent's own channel is still up in the service, as before the
	// first caller came; no call for the CRM, so its hangup says nothing.
	if live := tr.Live(); len(live) != 1 || live[0].Caller.Number != "201" {
		t.Fatalf("live = %+v", live)
	}
	evs = run(tr, ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 16, HangupSource: HangupByEndpoint})
	if len(evs) != 0 || len(tr.Live()) != 0 {
		t.Fatalf("the agent's hangup after the service: %+v, %d live", evs, len(tr.Live()))
	}
	if err := tr.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}
