package bridge

import "testing"

// The agent who parked a call takes it back from the slot (a new channel
// of its own phone dialled the slot): the call is talking again, and the
// CRM that saw call.held with the slot hears the retrieval's answer.
func TestParkerRetrievesOwnCall(t *testing.T) {
	tr := newTestTracker()
	cust := Channel{ID: "c.1", Name: "PJSIP/trunk-00000001", LinkedID: "c.1", CallerNum: "5551234", Context: "from-trunk", Exten: "200"}
	a1 := Channel{ID: "a.1", Name: "PJSIP/100-00000002", LinkedID: "c.1", CallerNum: "100", Context: "from-internal", Exten: "s"}
	a2 := Channel{ID: "a.2", Name: "PJSIP/100-00000003", LinkedID: "a.2", CallerNum: "100", Context: "from-internal", Exten: "701"}
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: cust},
		ChannelEvent{Kind: ChanAnswer, Channel: cust},
		ChannelEvent{Kind: ChanNew, Channel: a1},
		ChannelEvent{Kind: ChanDial, Channel: cust, Peer: &a1},
		ChannelEvent{Kind: ChanAnswer, Channel: a1},
		ChannelEvent{Kind: ChanDialEnd, Channel: cust, Peer: &a1, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: cust, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: a1, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: cust, Bridge: "b1"},
		ChannelEvent{Kind: ChanPark, Channel: cust, Exten: "701", Context: "default"},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: a1, Bridge: "b1"},
		ChannelEvent{Kind: ChanHangup, Channel: a1, Cause: 16, HangupSource: HangupByEndpoint},
		ChannelEvent{Kind: ChanNew, Channel: a2},
		ChannelEvent{Kind: ChanAnswer, Channel: a2},
		ChannelEvent{Kind: ChanUnpark, Channel: cust, Peer: &a2},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: cust, Bridge: "b2"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: a2, Bridge: "b2"},
	)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	live := tr.Live()
	for _, c := range live {
		if c.Caller.Number == "5551234" && c.State != "talking" {
			t.Fatalf("the parker took its call back: state %q, want talking (events %v)", c.State, types)
		}
	}
	if types[len(types)-1] != EventCallAnswered {
		t.Fatalf("no answer for the retrieval: %v", types)
	}
}
