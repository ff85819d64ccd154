package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestTracker() *Tracker {
	return NewTracker(TrackerConfig{PBX: "pbx1", AgentPattern: regexp.MustCompile(`^[0-9]{3}$`),
		InboundContexts: []string{"from-trunk"}, DirectionVar: "CTI_DIRECTION",
		Agents: map[string]string{"201": "Alice", "202": "Bob"}})
}

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func ch(id, name string) Channel {
	return Channel{ID: id, Name: name, LinkedID: "t.1"}
}

// adapt names an event's channels as an adapter does (ami and esl read
// their PBX's channel names; the call model reads the fields): the test
// channels carry Asterisk-style names.
func adapt(ev ChannelEvent) ChannelEvent {
	ev.Channel = adaptName(ev.Channel)
	if ev.Peer != nil {
		p := adaptName(*ev.Peer)
		ev.Peer = &p
	}
	if ev.Agent == "" && ev.Interface != "" {
		_, rest, _ := strings.Cut(ev.Interface, "/")
		ev.Agent, _, _ = strings.Cut(rest, "@")
	}
	return ev
}

func adaptAll(chs ...Channel) []Channel {
	for i := range chs {
		chs[i] = adaptName(chs[i])
	}
	return chs
}

func adaptName(ch Channel) Channel {
	tech, rest, ok := strings.Cut(ch.Name, "/")
	if !ok {
		return ch
	}
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		rest = rest[:i]
	}
	if tech == "Local" {
		ch.Local = true
		ch.Endpoint, ch.Home, _ = strings.Cut(rest, "@")
		if base, half, ok := strings.Cut(ch.Name, ";"); ok {
			ch.Partner = base + ";" + map[string]string{"1": "2", "2": "1"}[half]
		}
		return ch
	}
	if ch.Endpoint == "" {
		ch.Endpoint = rest
	}
	return ch
}

// script is a compact way to write a call: each step is one ChannelEvent.
func run(tr *Tracker, evs ...ChannelEvent) []Event {
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = t0.Add(time.Duration(i) * time.Second)
		}
		tr.Handle(adapt(evs[i]))
	}
	out, _ := tr.Drain()
	return out
}

func typesOf(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type)
	}
	return strings.Join(s, ",")
}

func trunk() Channel {
	c := ch("t.1", "PJSIP/trunk-00000001")
	c.CallerNum, c.CallerName, c.Context, c.Exten = "+74954451120", "ACME", "from-trunk", "5000"
	return c
}

func TestRingAllQueuePopsEachAgentAndClosesTheLoser(t *testing.T) {
	tr := newTestTracker()
	a, b := ch("t.2", "PJSIP/201-00000002"), ch("t.3", "PJSIP/202-00000003")
	caller := trunk()
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanQueueJoin, Channel: caller, Queue: "support"},
		ChannelEvent{Kind: ChanNew, Channel: a},
		ChannelEvent{Kind: ChanNew, Channel: b},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &b},
		ChannelEvent{Kind: ChanAnswer, Channel: b},
		ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &b, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "CANCEL"},
		ChannelEvent{Kind: ChanHangup, Channel: a, Cause: 26},
		ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16, CauseText: "Normal Clearing"},
		ChannelEvent{Kind: ChanHangup, Channel: b, Cause: 16},
	)
	want := "call.queued,call.ringing,call.ringing,call.answered,call.ring_ended,call.ended"
	if got := typesOf(evs); got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	if evs[1].Agent.Extension != "201" || evs[2].Agent.Extension != "202" || evs[4].Agent.Extension != "201" {
		t.Fatalf("agents: %+v %+v %+v", evs[1].Agent, evs[2].Agent, evs[4].Agent)
	}
	end := evs[5].Call
	if end.Direction != DirectionInbound || end.Caller.Number != "+74954451120" || end.Callee.Number != "5000" {
		t.Fatalf("call = %+v", end)
	}
	if end.Agent == nil || end.Agent.Name != "Bob" || end.Disposition != DispositionAnswered || end.HangupBy != "caller" {
		t.Fatalf("end = %+v agent=%+v", end, end.Agent)
	}
	// Answered when the dialler took the answer (DialEnd ANSWER), not at
	// the device's own state change a second earlier.
	if *end.DurationS != 11 || *end.TalkS != 4 || *end.WaitS != 7 || end.Queue != "support" {
		t.Fatalf("durations: d=%d talk=%d wait=%d", *end.DurationS, *end.TalkS, *end.WaitS)
	}
	for i, e := range evs {
		if e.Sequence != int64(i+1) || e.ConversationID != evs[0].ConversationID || e.ID == "" {
			t.Fatalf("event %d: seq=%d conv=%s", i, e.Sequence, e.ConversationID)
		}
	}
}

// A number an agent dialled that the PBX could not reach is failed; a
// customer's call that reached no agent is no_answer.
func TestUnreachableNumberAnAgentDialledFailed(t *testing.T) {
	tr := newTestTracker()
	agent := Channel{ID: "o.1", LinkedID: "o.1", Name: "PJSIP/201-00000001", CallerNum: "201", Exten: "84954451120", Context: "internal"}
	out := ch("o.2", "PJSIP/trunk-00000002")
	out.LinkedID = "o.1"
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: agent},
		ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &out},
		ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &out, DialStatus: "CHANUNAVAIL"},
		ChannelEvent{Kind: ChanHangup, Channel: out, Cause: 20},
		ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 20},
	)
	last := evs[len(evs)-1]
	if last.Type != EventCallEnded || last.Call.Direction != DirectionOutbound || last.Call.Disposition != DispositionFailed {
		t.Fatalf("events = %s, last %s %s %s", typesOf(evs), last.Type, last.Call.Direction, last.Call.Disposition)
	}
}

func TestNoAnswerAndBusyDispositions(t *testing.T) {
	for _, tc := range []struct {
		status string
		cause  int
		want   Disposition
	}{{"NOANSWER", 16, DispositionNoAnswer}, {"BUSY", 17, DispositionBusy}, {"CHANUNAVAIL", 20, DispositionNoAnswer}, {"CANCEL", 16, DispositionCancelled}} {
		// (An inbound call that reached no agent is a missed call; see
		// TestUnreachableNumberAnAgentDialledFailed.)
		tr := newTestTracker()
		a := ch("t.2", "PJSIP/201-00000002")
		caller := trunk()
		evs := run(tr,
			ChannelEvent{Kind: ChanNew, Channel: caller},
			ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
			ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: tc.status},
			ChannelEvent{Kind: ChanHangup, Channel: a, Cause: tc.cause},
			ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: tc.cause},
		)
		if got := typesOf(evs); got != "call.ringing,call.ring_ended,call.ended" {
			t.Fatalf("%s: events = %s", tc.status, got)
		}
		if d := evs[2].Call.Disposition; d != tc.want {
			t.Errorf("%s: disposition = %s, want %s", tc.status, d, tc.want)
		}
		if evs[2].Call.AnsweredAt != nil || evs[2].Call.TalkS != nil {
			t.Errorf("%s: an unanswered call has talk time", tc.status)
		}
	}
}

func TestLocalPairIsOneLegAndNeverEndsTheCall(t *testing.T) {
	tr := newTestTracker()
	caller := trunk()
	one, two := ch("t.2", "Local/201@agents-00000001;1"), ch("t.3", "Local/201@agents-00000001;2")
	phone := ch("t.4", "PJSIP/201-00000004")
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanNew, Channel: one},
		ChannelEvent{Kind: ChanNew, Channel: two},
		ChannelEvent{Kind: ChanLocalPair, Channel: one, Peer: &two},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &one},
		ChannelEvent{Kind: ChanDial, Channel: two, Peer: &phone}, // the Local dials the real phone: same agent
		ChannelEvent{Kind: ChanAnswer, Channel: phone},
		ChannelEvent{Kind: ChanDialEnd, Channel: two, Peer: &phone, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanHangup, Channel: two, Cause: 16}, // half of the pair: not the end
		ChannelEvent{Kind: ChanHangup, Channel: phone, Cause: 16},
	)
	if got := typesOf(evs); got != "call.ringing,call.answered" {
		t.Fatalf("events = %s: one pop per agent, no end while a channel lives", got)
	}
	evs = run(tr, ChannelEvent{Kind: ChanHangup, Channel: one}, ChannelEvent{Kind: ChanHangup, Channel: caller})
	if got := typesOf(evs); got != "call.ended" {
		t.Fatalf("events = %s", got)
	}
	if len(tr.convs) != 0 || len(tr.legs) != 0 || len(tr.byLinked) != 0 || len(tr.byName) != 0 || len(tr.bridged) != 0 {
		t.Fatalf("tracker keeps state of an ended call: %d convs %d legs %d linked", len(tr.convs), len(tr.legs), len(tr.byLinked))
	}
}

func TestHoldOnlyWhileTalkingAndOnce(t *testing.T) {
	tr := newTestTracker()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanHold, Channel: caller}, // music in the IVR: not a hold
		ChannelEvent{Kind: ChanUnhold, Channel: caller},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
		ChannelEvent{Kind: ChanAnswer, Channel: a},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: caller, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: a, Bridge: "b1"},
		ChannelEvent{Kind: ChanHold, Channel: a},
		ChannelEvent{Kind: ChanHold, Channel: a}, // Hold and MusicOnHoldStart both fire
		ChannelEvent{Kind: ChanUnhold, Channel: a},
	)
	if got := typesOf(evs); got != "call.ringing,call.answered,call.held,call.resumed" {
		t.Fatalf("events = %s", got)
	}
	if evs[2].Call.State != "held" || evs[3].Call.State != "talking" {
		t.Fatalf("states %s %s", evs[2].Call.State, evs[3].Call.State)
	}
}

func TestDirectionRulesAndVariable(t *testing.T) {
	cases := []struct {
		caller, exten, ctx, varVal string
		want                       Direction
	}{
		{"201", "202", "internal", "", DirectionInternal},
		{"201", "84954451120", "internal", "", DirectionOutbound},
		{"+74954451120", "5000", "from-trunk", "", DirectionInbound},
		{"201", "202", "internal", "outbound", DirectionOutbound},
	}
	for _, tc := range cases {
		tr := newTestTracker()
		c := Channel{ID: "d.1", Name: "PJSIP/201-00000001", CallerNum: tc.caller, Exten: tc.exten, Context: tc.ctx}
		if tc.varVal != "" {
			c.Vars = map[string]string{"CTI_DIRECTION": tc.varVal}
		}
		a := ch("d.2", "PJSIP/202-00000002")
		if tc.want == DirectionOutbound && tc.varVal == "" {
			// An outside number is dialled on a trunk, never on an
			// agent's device (one that rings an agent stays internal).
			a = ch("d.2", "PJSIP/trunk-00000002")
		}
		evs := run(tr, ChannelEvent{Kind: ChanNew, Channel: c}, ChannelEvent{Kind: ChanDial, Channel: c, Peer: &a})
		if len(evs) != 1 || evs[0].Call.Direction != tc.want {
			t.Errorf("%+v: got %v", tc, evs)
		}
	}
}

func TestSnapshotEndsMissedCallsAndAdoptsLiveOnesWithoutPop(t *testing.T) {
	tr := newTestTracker()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
		ChannelEvent{Kind: ChanAnswer, Channel: a},
		ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "ANSWER"},
	)
	// Link lost; on reconnect the PBX lists another call, already talking.
	x1 := Channel{ID: "u.1", Name: "PJSIP/trunk-00000009", LinkedID: "u.1", CallerNum: "+12025550143", Context: "from-trunk", Exten: "5000", State: "Up"}
	x2 := Channel{ID: "u.2", Name: "PJSIP/202-0000000a", LinkedID: "u.1", State: "Up"}
	// The adapter lists channels in creation order (ami sorts by Uniqueid).
	tr.Snapshot(adaptAll(x1, x2), t0.Add(time.Minute))
	evs, recs := tr.Drain()
	if got := typesOf(evs); got != "call.ended,call.answered" || !evs[0].Resynced || evs[0].Call.HangupBy != "system" {
		t.Fatalf("events = %s resynced=%v", got, evs)
	}
	// The adopted call is told as answered (the CRM heard nothing of it),
	// with its agent and direction, and no pop.
	if a := evs[1]; a.Agent == nil || a.Agent.Extension != "202" || a.Call.Direction != DirectionInbound || a.Sequence != 1 {
		t.Fatalf("adopted call's answer = %+v", a)
	}
	if len(recs) != 2 {
		t.Fatalf("want the ended and the adopted conversation saved, got %d", len(recs))
	}
	live := tr.Live()
	if len(live) != 1 || live[0].Agent == nil || live[0].Agent.Extension != "202" || live[0].Caller.Number != "+12025550143" {
		t.Fatalf("adopted = %+v", live)
	}
	// The adopted call rings the same agent again (a re-INVITE, a late
	// DialBegin): no second pop; it ends normally.
	evs = run(tr,
		ChannelEvent{Kind: ChanDial, Channel: x1, Peer: &x2},
		ChannelEvent{Kind: ChanHangup, Channel: x2, Cause: 16},
		ChannelEvent{Kind: ChanHangup, Channel: x1, Cause: 16},
	)
	if got := typesOf(evs); got != "call.ended" {
		t.Fatalf("events = %s", got)
	}
}

func TestRestoreContinuesSequenceAfterRestart(t *testing.T) {
	tr := newTestTracker()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
	)
	tr.Handle(adapt(ChannelEvent{Kind: ChanAnswer, Channel: a, At: t0.Add(3 * time.Second)}))
	tr.Handle(adapt(ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "ANSWER", At: t0.Add(3 * time.Second)}))
	_, recs := tr.Drain()
	var open []ConversationRecord
	for _, r := range recs {
		if r.Open {
			open = append(open, r)
		}
	}
	if len(open) != 1 || open[0].LastSeq != 2 {
		t.Fatalf("records = %+v", recs)
	}
	// A new process restores the open conversation from the store.
	tr2 := newTestTracker()
	tr2.Restore(open)
	tr2.Snapshot(adaptAll(caller, a), t0.Add(time.Minute))
	evs := run(tr2, ChannelEvent{Kind: ChanHangup, Channel: a, Cause: 16}, ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16})
	if got := typesOf(evs); got != "call.ended" || evs[0].Sequence != 3 || evs[0].ConversationID != open[0].Call.ID {
		t.Fatalf("after restore: %s seq=%d", got, evs[0].Sequence)
	}
	if evs[0].Call.AnsweredAt == nil || !evs[0].Call.AnsweredAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("answered_at lost across restart: %v", evs[0].Call.AnsweredAt)
	}
}

// clickToCall is a tracker awaiting agent 201's click-to-call to
// +74954451120 (conversation conv) and the events of the agent's phone
// ringing and answering, after which the dialplan dials the customer.
func clickToCall(conv string) (tr *Tracker, agent Channel, answered []ChannelEvent) {
	tr = newTestTracker()
	tr.expectOriginate(&Originate{ConversationID: conv, ActionID: "o-" + conv, AgentChannelID: "c2c.1", Agent: "201", To: "+74954451120", RequestedAt: t0})
	agent = Channel{ID: "c2c.1", Name: "PJSIP/201-00000010", LinkedID: "c2c.1"}
	return tr, agent, []ChannelEvent{
		{Kind: ChanNew, Channel: agent},
		{Kind: ChanDial, Peer: &agent},
		{Kind: ChanAnswer, Channel: agent},
	}
}

func TestClickToCallIsOutboundFromTheStart(t *testing.T) {
	tr, agent, answered := clickToCall("conv_x")
	cust := Channel{ID: "c2c.2", Name: "PJSIP/trunk-00000011", LinkedID: "c2c.1"}
	evs := run(tr, append(answered,
		ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &cust},
		ChannelEvent{Kind: ChanAnswer, Channel: cust},
		ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &cust, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanHangup, Channel: cust, Cause: 16},
		ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 16},
	)...)
	// The agent's phone rings and answers, then the customer's does.
	if got := typesOf(evs); got != "call.ringing,call.answered,call.ringing,call.answered,call.ended" {
		t.Fatalf("events = %s", got)
	}
	if evs[2].Party != PartyCustomer || evs[3].Party != PartyCustomer || evs[1].Party != "" || evs[3].Agent == nil || evs[3].Agent.Extension != "201" {
		t.Fatalf("parties: %q %q %q", evs[1].Party, evs[2].Party, evs[3].Party)
	}
	if evs[0].ConversationID != "conv_x" || evs[0].Call.Direction != DirectionOutbound || evs[4].Call.Callee.Number != "+74954451120" {
		t.Fatalf("first = %+v", evs[0].Call)
	}
	if evs[0].Call.Caller.Number != "201" || evs[4].Call.Caller.Number != "201" || evs[4].Call.HangupBy != "callee" {
		t.Fatalf("the agent placing the call is not its caller: %+v / %+v", evs[0].Call.Caller, evs[4].Call)
	}

	tr.expectOriginate(&Originate{ConversationID: "conv_y", ActionID: "o-2", Agent: "201", To: "999", RequestedAt: t0})
	evs = run(tr, ChannelEvent{Kind: ChanOriginateFailed, ActionID: "o-2", Cause: 3})
	if got := typesOf(evs); got != "call.failed,call.ended" || evs[1].Call.Disposition != DispositionFailed || evs[1].Call.Caller.Number != "201" {
		t.Fatalf("failed originate: %s %+v", got, evs)
	}
}

func TestAttendedTransferMergesConsultation(t *testing.T) {
	tr := newTestTracker()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
		ChannelEvent{Kind: ChanAnswer, Channel: a},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: caller, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: a, Bridge: "b1"},
	)
	// Agent 201 consults 202 on a second channel: a new internal call.
	a2 := Channel{ID: "c.1", Name: "PJSIP/201-00000005", LinkedID: "c.1", CallerNum: "201", Exten: "202"}
	b := Channel{ID: "c.2", Name: "PJSIP/202-00000006", LinkedID: "c.1"}
	consult := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: a2},
		ChannelEvent{Kind: ChanDial, Channel: a2, Peer: &b},
		ChannelEvent{Kind: ChanAnswer, Channel: b},
		ChannelEvent{Kind: ChanDialEnd, Channel: a2, Peer: &b, DialStatus: "ANSWER"},
	)
	if typesOf(consult) != "call.ringing,call.answered" || consult[0].Call.Direction != DirectionInternal {
		t.Fatalf("consultation = %s", typesOf(consult))
	}
	evs := run(tr,
		ChannelEvent{Kind: ChanTransfer, Attended: true, Channel: a, Peer: &caller, Exten: "202"},
		ChannelEvent{Kind: ChanHangup, Channel: a, Cause: 16},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: b, Bridge: "b1"},
		ChannelEvent{Kind: ChanHangup, Channel: a2, Cause: 16},
		ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16},
		ChannelEvent{Kind: ChanHangup, Channel: b, Cause: 16},
	)
	var mainTypes, consultTypes []string
	for _, e := range evs {
		if e.ConversationID == consult[0].ConversationID {
			consultTypes = append(consultTypes, e.Type)
		} else {
			mainTypes = append(mainTypes, e.Type)
		}
	}
	if strings.Join(mainTypes, ",") != "call.transferred,call.ended" || strings.Join(consultTypes, ",") != "call.ended" {
		t.Fatalf("main %v consult %v", mainTypes, consultTypes)
	}
	if tf := evs[0].Transfer; tf.Mode != "attended" || tf.From.Extension != "201" || tf.To != "202" {
		t.Fatalf("transfer = %+v", tf)
	}
}

func TestEventsAfterHangupDoNotResurrect(t *testing.T) {
	tr := newTestTracker()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller},
		ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16},
		ChannelEvent{Kind: ChanBridgeLeave, Channel: caller, Bridge: "b"},
		ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16},
		ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "CANCEL"},
		// Late events that name the channel on their own (a state, an
		// answer, a queue) must not open a call it can never end.
		ChannelEvent{Kind: ChanUpdate, Channel: caller},
		ChannelEvent{Kind: ChanAnswer, Channel: caller},
		ChannelEvent{Kind: ChanQueueJoin, Channel: caller, Queue: "q"},
	)
	if got := typesOf(evs); got != "call.ended" {
		t.Fatalf("events = %s", got)
	}
	if live := tr.Live(); len(live) != 0 {
		t.Fatalf("live after the hangup: %+v", live)
	}
}

// A channel created with a hung-up one's id is a new channel when the PBX
// stamps its creation after that hangup (a client reusing its ids); a
// creation stamped before it is the old channel's, come late, and opens
// nothing.
func TestNewChannelWithAGoneID(t *testing.T) {
	tr := newTestTracker()
	caller := trunk()
	evs := run(tr,
		ChannelEvent{Kind: ChanNew, Channel: caller, At: t0},
		ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16, At: t0.Add(10 * time.Second)},
		ChannelEvent{Kind: ChanNew, Channel: caller, At: t0.Add(5 * time.Second)}, // late
	)
	if got := typesOf(evs); got != "call.ended" || len(tr.Live()) != 0 {
		t.Fatalf("a late creation: events %s, live %+v", got, tr.Live())
	}
	old := evs[0].ConversationID
	run(tr, ChannelEvent{Kind: ChanNew, Channel: caller, At: t0.Add(time.Minute)})
	live := tr.Live()
	if len(live) != 1 || live[0].ID == old {
		t.Fatalf("a new channel with the old id: live %+v", live)
	}
	evs = run(tr, ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16, At: t0.Add(2 * time.Minute)})
	if got := typesOf(evs); got != "call.ended" || len(tr.Live()) != 0 {
		t.Fatalf("the new channel's hangup: events %s, live %+v", got, tr.Live())
	}
}

// fakeOutbox fails the first n commits.
type fakeOutbox struct {
	mu      sync.Mutex
	fail    int
	batches []*Batch
}

func (o *fakeOutbox) Commit(_ context.Context, b *Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail > 0 {
		o.fail--
		return errors.New("disk full")
	}
	for i := range b.Events {
		b.Events[i].Seq = int64(len(o.batches)*1000 + i + 1)
	}
	o.batches = append(o.batches, b)
	return nil
}
func (o *fakeOutbox) OpenConversations(context.Context) ([]ConversationRecord, error) {
	return nil, nil
}
func (o *fakeOutbox) LatestAgentStates(context.Context) ([]Record, error) { return nil, nil }

type fakeNotifier struct {
	mu sync.Mutex
	ds []Delivery
	ob *fakeOutbox
}

func (n *fakeNotifier) Notify(ds []Delivery) {
	n.ob.mu.Lock()
	committed := len(n.ob.batches)
	n.ob.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range ds {
		if committed == 0 || d.Seq == 0 {
			panic("notified before commit")
		}
	}
	n.ds = append(n.ds, ds...)
}

func TestEngineCommitsBeforeNotifyAndRetriesFailedCommits(t *testing.T) {
	ob := &fakeOutbox{fail: 2}
	nt := &fakeNotifier{ob: ob}
	eps := []Endpoint{{ID: "crm", Events: []string{"call.*"}}, {ID: "rec", Events: []string{"recording.*"}}}
	e := NewEngine(newTestTracker(), ob, nt, EngineOptions{Endpoints: eps})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	e.LinkUp(1)
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: caller}), adapt(ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a})})
	if err := e.Do(ctx, func(*Tracker) {}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.CommitErrors.Load() != 2 || !e.StoreOK() {
		t.Fatalf("commit errors = %d, store ok = %v", e.CommitErrors.Load(), e.StoreOK())
	}
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if len(nt.ds) != 1 || nt.ds[0].EndpointID != "crm" || nt.ds[0].Type != EventCallRinging {
		t.Fatalf("deliveries = %+v", nt.ds)
	}
	if len(e.Live()) != 1 {
		t.Fatalf("live = %d", len(e.Live()))
	}
}

func TestOutboundCallFromAgentPhone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   bool
		first    string // who hangs up first
		want     string
		disp     Disposition
		hangupBy string
	}{
		{"answered, customer hangs up", true, "trunk", "call.ringing,call.answered,call.ended", DispositionAnswered, "callee"},
		{"answered, agent hangs up", true, "agent", "call.ringing,call.answered,call.ended", DispositionAnswered, "agent"},
		{"no answer", false, "agent", "call.ringing,call.ring_ended,call.ended", DispositionNoAnswer, "agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTracker()
			agent := Channel{ID: "o.1", Name: "PJSIP/201-00000001", LinkedID: "o.1", CallerNum: "201", Context: "from-internal", Exten: "84954451120"}
			trunk := Channel{ID: "o.2", Name: "PJSIP/trunk-00000002", LinkedID: "o.1"}
			evs := []ChannelEvent{
				{Kind: ChanNew, Channel: agent},
				{Kind: ChanNew, Channel: trunk},
				{Kind: ChanDial, Channel: agent, Peer: &trunk},
			}
			if tc.answer {
				evs = append(evs, ChannelEvent{Kind: ChanAnswer, Channel: trunk}, ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &trunk, DialStatus: "ANSWER"})
			} else {
				evs = append(evs, ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &trunk, DialStatus: "NOANSWER"})
			}
			first, second := trunk, agent
			if tc.first == "agent" {
				first, second = agent, trunk
			}
			evs = append(evs, ChannelEvent{Kind: ChanHangup, Channel: first, Cause: 16}, ChannelEvent{Kind: ChanHangup, Channel: second, Cause: 16})
			out := run(tr, evs...)
			if got := typesOf(out); got != tc.want {
				t.Fatalf("events = %s, want %s", got, tc.want)
			}
			end := out[len(out)-1].Call
			if end.Direction != DirectionOutbound || end.Agent == nil || end.Agent.Extension != "201" || end.Disposition != tc.disp || end.HangupBy != tc.hangupBy {
				t.Fatalf("end = %+v agent %+v", end, end.Agent)
			}
			if tc.answer && (out[0].Agent == nil || out[0].Agent.Extension != "201") {
				t.Fatalf("answered names agent %+v", out[0].Agent)
			}
		})
	}
}

// A local channel's half adopted alone at a resync is its own
// conversation until the PBX pairs it: folded then, that conversation is
// discarded (nothing was said of it), not left open in the store for the
// next start to restore.
func TestFoldedConversationIsDiscarded(t *testing.T) {
	tr := newTestTracker()
	// Loopback halves are paired by the switch's word only, not by name.
	one := Channel{ID: "v.1", Name: "loopback/201-a", LinkedID: "v.1", State: "Up"}
	two := Channel{ID: "v.2", Name: "loopback/201-b", LinkedID: "v.2", State: "Up"}
	tr.Snapshot(adaptAll(one, two), t0)
	_, recs := tr.Drain()
	var alone string
	for _, r := range recs {
		if r.Call.ID != tr.legs["v.1"].conv.ID {
			alone = r.Call.ID
		}
	}
	if len(recs) != 2 || alone == "" {
		t.Fatalf("want the halves adopted apart first: %+v", recs)
	}
	tr.Handle(adapt(ChannelEvent{Kind: ChanLocalPair, At: t0.Add(time.Second), Channel: one, Peer: &two}))
	evs, recs := tr.Drain()
	var folded *ConversationRecord
	for i := range recs {
		if recs[i].Call.ID == alone {
			folded = &recs[i]
		}
	}
	if folded == nil || folded.Open || !folded.Discard {
		t.Fatalf("folded conversation: %+v (of %+v)", folded, recs)
	}
	for _, e := range evs {
		if e.ConversationID == alone {
			t.Fatalf("the folded conversation issued %s", e.Type)
		}
	}
	for _, c := range tr.Live() {
		if c.ID == alone {
			t.Fatal("the folded conversation is still live")
		}
	}
}

// States restored from the store are not reported again by a resync that
// finds them unchanged; a change is.
func TestRestoredAgentStatesNotRepeated(t *testing.T) {
	tr := newTestTracker()
	rec, err := NewRecord(Event{ID: "evt_1", Type: EventAgentState, Agent: &Agent{Extension: "201"}, AgentState: &AgentStat{Queue: "support", State: "busy"}})
	if err != nil {
		t.Fatal(err)
	}
	tr.RestoreAgentStates([]Record{rec})
	member := func(status string) ChannelEvent {
		return ChannelEvent{Kind: ChanAgentState, Queue: "support", Member: "Alice", Interface: "PJSIP/201", Status: status}
	}
	if evs := run(tr, member("busy")); len(evs) != 0 {
		t.Fatalf("unchanged state reported: %s", typesOf(evs))
	}
	if evs := run(tr, member("available")); typesOf(evs) != "agent.state" || evs[0].AgentState.State != "available" {
		t.Fatalf("changed state: %s", typesOf(evs))
	}
}

// Killed between a fold and its commit, the store holds the folded copy
// beside the conversation that took its channel: a restart discards the
// copy (it issued no event) and restores the other.
func TestRestoreDiscardsStaleFoldedCopy(t *testing.T) {
	state := func(c *conversation) ConversationRecord {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return ConversationRecord{Call: Call{ID: c.ID}, Open: true, LastSeq: c.Seq, State: b}
	}
	kept := &conversation{ID: "conv_real", Seq: 2, Call: Call{ID: "conv_real", StartedAt: t0},
		Legs: []*leg{{Channels: []string{"c.1", "c.2"}, Names: channelNames{}}}, Linked: []string{"c.1"}, Rang: agentSet{}}
	stale := &conversation{ID: "conv_stale", Call: Call{ID: "conv_stale", StartedAt: t0},
		Legs: []*leg{{Channels: []string{"c.2"}, Names: channelNames{}}}, Linked: []string{"c.2"}, Rang: agentSet{}}
	alone := &conversation{ID: "conv_alone", Call: Call{ID: "conv_alone", StartedAt: t0},
		Legs: []*leg{{Channels: []string{"d.1"}, Names: channelNames{}}}, Linked: []string{"d.1"}, Rang: agentSet{}}
	for _, order := range [][]*conversation{{kept, stale, alone}, {stale, kept, alone}} {
		tr := newTestTracker()
		var recs []ConversationRecord
		for _, c := range order {
			recs = append(recs, state(c))
		}
		tr.Restore(recs)
		var live []string
		for _, c := range tr.Live() {
			live = append(live, c.ID)
		}
		slices.Sort(live)
		if strings.Join(live, ",") != "conv_alone,conv_real" || tr.legs["c.2"].conv.ID != "conv_real" {
			t.Fatalf("restored %v, c.2 in %s", live, tr.legs["c.2"].conv.ID)
		}
		_, saved := tr.Drain()
		if len(saved) != 1 || saved[0].Call.ID != "conv_stale" || !saved[0].Discard {
			t.Fatalf("saved %+v", saved)
		}
	}
}

// While the store refuses commits, PBX events wait, up to MaxQueued: past
// it they are dropped, not held without bound, and once the store takes
// writes again and the queue is empty the engine asks for a resync, once.
func TestEngineBoundsTheQueueAndResyncsAfterDropping(t *testing.T) {
	ob := &fakeOutbox{fail: 1 << 30}
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{MaxQueued: 10})
	resyncs := make(chan struct{}, 10)
	e.Follow(resyncFunc(func() { resyncs <- struct{}{} }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	newCall := func(i int) []ChannelEvent {
		return []ChannelEvent{{Kind: ChanNew, At: t0, Channel: Channel{ID: fmt.Sprintf("q.%d", i), Name: fmt.Sprintf("PJSIP/trunk-%08d", i)}}}
	}
	e.ChannelEvents(newCall(0)) // taken, and its commit fails
	for deadline := time.Now().Add(5 * time.Second); e.CommitErrors.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no commit attempted")
		}
	}
	for i := 1; i <= 100; i++ {
		e.ChannelEvents(newCall(i))
	}
	if d := e.Dropped.Load(); d != 90 {
		t.Fatalf("dropped %d events, want the 90 over the bound of 10", d)
	}
	select {
	case <-resyncs:
		t.Fatal("resync asked for while the store still fails")
	default:
	}
	ob.mu.Lock()
	ob.fail = 0
	ob.mu.Unlock()
	select {
	case <-resyncs:
	case <-time.After(10 * time.Second):
		t.Fatal("no resync after the store recovered")
	}
	if err := e.Do(ctx, func(*Tracker) {}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.Live()); n != 11 {
		t.Fatalf("%d calls tracked, want the 11 kept", n)
	}
	select {
	case <-resyncs:
		t.Fatal("a second resync")
	default:
	}
	cancel()
	<-done
}

// Commands act on the customer's leg whoever placed the call: the caller
// of an inbound call, the far party of a call the agent dialled from the
// phone, the other agent of an internal call.
func TestCallChannelsKnowTheCustomer(t *testing.T) {
	for _, tc := range []struct {
		name           string
		caller, callee Channel
		customer       string
		agent          string
	}{
		{"inbound", trunk(), ch("t.2", "PJSIP/201-00000002"), "t.1", "t.2"},
		{"outbound from the phone", Channel{ID: "o.1", Name: "PJSIP/201-00000001", LinkedID: "o.1", CallerNum: "201", Context: "from-internal", Exten: "84954451120"},
			Channel{ID: "o.2", Name: "PJSIP/trunk-00000002", LinkedID: "o.1"}, "o.2", "o.1"},
		{"internal", Channel{ID: "i.1", Name: "PJSIP/201-00000001", LinkedID: "i.1", CallerNum: "201", Context: "from-internal", Exten: "202"},
			Channel{ID: "i.2", Name: "PJSIP/202-00000002", LinkedID: "i.1"}, "i.2", "i.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTracker()
			evs := run(tr,
				ChannelEvent{Kind: ChanNew, Channel: tc.caller},
				ChannelEvent{Kind: ChanDial, Channel: tc.caller, Peer: &tc.callee},
				ChannelEvent{Kind: ChanAnswer, Channel: tc.callee},
				ChannelEvent{Kind: ChanDialEnd, Channel: tc.caller, Peer: &tc.callee, DialStatus: "ANSWER"},
			)
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			cc, ok := tr.CallChannels(evs[0].ConversationID)
			if !ok || cc.Customer == nil || cc.Agent == nil {
				t.Fatalf("channels = %+v", cc)
			}
			if cc.Customer.ID != tc.customer || cc.Agent.ID != tc.agent {
				t.Fatalf("customer %s agent %s, want %s and %s", cc.Customer.ID, cc.Agent.ID, tc.customer, tc.agent)
			}
		})
	}
}

// An attended transfer's consultation inside the call (Asterisk Atxfer, a
// FreeSWITCH att_xfer): the target's answer is reported, but the call stays
// the first agent's until the transfer completes; cancelled, it stays
// theirs; completed, it is the target's.
func TestConsultationKeepsTheAgentUntilTheTransferCompletes(t *testing.T) {
	for _, complete := range []bool{false, true} {
		tr := newTestTracker()
		caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
		one, two := ch("t.3", "Local/202@from-internal-00000001;1"), ch("t.4", "Local/202@from-internal-00000001;2")
		b := ch("t.5", "PJSIP/202-00000005")
		evs := run(tr,
			ChannelEvent{Kind: ChanNew, Channel: caller},
			ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a},
			ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "ANSWER"},
			ChannelEvent{Kind: ChanHold, Channel: a},
			ChannelEvent{Kind: ChanNew, Channel: one},
			ChannelEvent{Kind: ChanNew, Channel: two},
			ChannelEvent{Kind: ChanLocalPair, Channel: one, Peer: &two},
			ChannelEvent{Kind: ChanDial, Channel: two, Peer: &b},
			ChannelEvent{Kind: ChanDialEnd, Channel: two, Peer: &b, DialStatus: "ANSWER"},
		)
		if got := typesOf(evs); got != "call.ringing,call.answered,call.held,call.ringing,call.answered" {
			t.Fatalf("events = %s", got)
		}
		if evs[4].Agent.Extension != "202" || evs[4].Call.Agent.Extension != "201" {
			t.Fatalf("consultation answered: event agent %+v, call agent %+v", evs[4].Agent, evs[4].Call.Agent)
		}
		var tail []ChannelEvent
		if complete {
			tail = []ChannelEvent{{Kind: ChanTransfer, Attended: true, Channel: a, Peer: &caller}, {Kind: ChanHangup, Channel: a, Cause: 16}}
		} else {
			tail = []ChannelEvent{{Kind: ChanHangup, Channel: b, Cause: 16}, {Kind: ChanHangup, Channel: two}, {Kind: ChanHangup, Channel: one}, {Kind: ChanUnhold, Channel: a}}
		}
		evs = run(tr, tail...)
		last := evs[len(evs)-1]
		want := "201"
		if complete {
			want = "202"
			if last.Type != EventCallTransferred || last.Transfer.To != "202" || last.Transfer.From.Extension != "201" {
				t.Fatalf("transfer = %s %+v", last.Type, last.Transfer)
			}
		} else if last.Type != EventCallResumed {
			t.Fatalf("cancel: %s", typesOf(evs))
		}
		if last.Call.Agent == nil || last.Call.Agent.Extension != want {
			t.Fatalf("complete=%v: the call's agent is %+v, want %s", complete, last.Call.Agent, want)
		}
	}
}

// Asterisk raises QueueCallerAbandon for a queue timeout too: only a caller
// who hung up while waiting abandoned; a caller the queue gave up on and the
// dialplan then released was not answered.
func TestQueueTimeoutIsNotAnAbandon(t *testing.T) {
	for _, hungUp := range []bool{false, true} {
		tr := newTestTracker()
		caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
		evs := []ChannelEvent{
			{Kind: ChanNew, Channel: caller},
			{Kind: ChanQueueJoin, Channel: caller, Queue: "support"},
			{Kind: ChanAgentCalled, Channel: caller, Peer: &a, Queue: "support", Member: "Alice"},
		}
		if hungUp {
			evs = append(evs, ChannelEvent{Kind: ChanHangupRequest, Channel: caller})
		}
		evs = append(evs,
			ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "CANCEL"},
			ChannelEvent{Kind: ChanHangup, Channel: a, HangupSource: HangupByPBX},
			ChannelEvent{Kind: ChanQueueAbandon, Channel: caller, Queue: "support"},
			ChannelEvent{Kind: ChanQueueLeave, Channel: caller, Queue: "support"},
			ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16, HangupSource: map[bool]string{true: HangupByEndpoint, false: HangupByPBX}[hungUp]},
		)
		out := run(tr, evs...)
		want, disp, by := "call.queued,call.ringing,call.ring_ended,call.ended", DispositionNoAnswer, "system"
		if hungUp {
			want, disp, by = "call.queued,call.ringing,call.ring_ended,call.abandoned,call.ended", DispositionCancelled, "caller"
		}
		if got := typesOf(out); got != want {
			t.Fatalf("hung up %v: events = %s, want %s", hungUp, got, want)
		}
		if end := out[len(out)-1].Call; end.Disposition != disp || end.HangupBy != by {
			t.Fatalf("hung up %v: %s by %s", hungUp, end.Disposition, end.HangupBy)
		}
	}
}

// The periodic check spares a channel first seen just before the PBX made
// its list (it may be newer than the list) and releases it at the next
// check; a resync after a link loss releases at once, ending the call when
// the link was lost.
func TestReconcileMarginAndLinkLoss(t *testing.T) {
	tr := newTestTracker()
	caller := trunk()
	run(tr, ChannelEvent{Kind: ChanNew, Channel: caller, At: t0})
	tr.Reconcile(nil, t0.Add(time.Second))
	if evs, _ := tr.Drain(); len(evs) != 0 || len(tr.Live()) != 1 {
		t.Fatalf("released a channel seen after the list: %s", typesOf(evs))
	}
	tr.Reconcile(nil, t0.Add(time.Minute))
	evs, _ := tr.Drain()
	if typesOf(evs) != "call.ended" || evs[0].ResyncReason != ResyncReconciled || !evs[0].Resynced {
		t.Fatalf("periodic release: %s %+v", typesOf(evs), evs)
	}

	tr = newTestTracker()
	run(tr, ChannelEvent{Kind: ChanNew, Channel: caller, At: t0})
	tr.LinkLost(t0.Add(2 * time.Second))
	tr.Snapshot(nil, t0.Add(30*time.Second))
	evs, _ = tr.Drain()
	if typesOf(evs) != "call.ended" || evs[0].ResyncReason != ResyncLinkLost || !evs[0].Call.EndedAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after link loss: %s %+v", typesOf(evs), evs[0].Call.EndedAt)
	}
}

// A click-to-call the customer refuses: the agent's phone rang and
// answered, the customer is busy: call.failed, then the end as busy.
func TestClickToCallCustomerBusyFails(t *testing.T) {
	tr, agent, answered := clickToCall("conv_b")
	cust := Channel{ID: "c2c.2", Name: "PJSIP/trunk-00000011", LinkedID: "c2c.1"}
	evs := run(tr, append(answered,
		ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &cust},
		ChannelEvent{Kind: ChanHangupRequest, Channel: cust, Cause: 17},
		ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &cust, DialStatus: "BUSY"},
		ChannelEvent{Kind: ChanHangup, Channel: cust, Cause: 17, HangupSource: HangupByEndpoint},
		ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 17, HangupSource: HangupByPBX},
	)...)
	if got := typesOf(evs); got != "call.ringing,call.answered,call.ringing,call.ring_ended,call.failed,call.ended" {
		t.Fatalf("events = %s", got)
	}
	if evs[3].Party != PartyCustomer || evs[3].Agent == nil || evs[3].Agent.Extension != "201" {
		t.Fatalf("ring_ended = party %q agent %+v, want the customer's, for agent 201", evs[3].Party, evs[3].Agent)
	}
	if end := evs[5].Call; end.Disposition != DispositionBusy || end.HangupBy != "callee" || end.AnsweredAt != nil {
		t.Fatalf("end = %s by %s", end.Disposition, end.HangupBy)
	}
}

// A click-to-call whose first trunk refuses and whose dialplan then dials
// the customer through a second trunk (Asterisk's next Dial): no
// call.failed, which a CRM would take for the verdict, before the answer.
func TestClickToCallSecondTrunkAnswers(t *testing.T) {
	tr, agent, answered := clickToCall("conv_f")
	gw1 := Channel{ID: "c2c.2", Name: "PJSIP/trunk1-00000011", LinkedID: "c2c.1"}
	gw2 := Channel{ID: "c2c.3", Name: "PJSIP/trunk2-00000012", LinkedID: "c2c.1"}
	evs := run(tr, append(answered,
		ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &gw1},
		ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &gw1, DialStatus: "CONGESTION"},
		ChannelEvent{Kind: ChanHangup, Channel: gw1, Cause: 34, HangupSource: HangupByEndpoint},
		ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &gw2},
		ChannelEvent{Kind: ChanAnswer, Channel: gw2},
		ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &gw2, DialStatus: "ANSWER"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: agent, Bridge: "b1"},
		ChannelEvent{Kind: ChanBridgeEnter, Channel: gw2, Bridge: "b1"},
		ChannelEvent{Kind: ChanHangup, Channel: gw2, Cause: 16, HangupSource: HangupByEndpoint},
		ChannelEvent{Kind: ChanHangup, Channel: agent, Cause: 16},
	)...)
	if got := typesOf(evs); got != "call.ringing,call.answered,call.ringing,call.ring_ended,call.ringing,call.answered,call.ended" {
		t.Fatalf("events = %s", got)
	}
	if end := evs[6].Call; end.Disposition != DispositionAnswered {
		t.Fatalf("end = %s", end.Disposition)
	}
}

func TestEveryChannelEventKindHasAName(t *testing.T) {
	for k := ChanNew; k <= ChanPickup; k++ {
		if s := k.String(); strings.HasPrefix(s, "ChannelEventKind(") {
			t.Errorf("kind %d has no name", int(k))
		}
	}
}

// A call that began while the link was down hangs up before the snapshot
// that lists it is applied: the snapshot must not adopt a channel already
// gone (it would stay open until the next check).
func TestSnapshotNeverAdoptsAChannelSeenHangingUp(t *testing.T) {
	tr := newTestTracker()
	x := Channel{ID: "u.9", Name: "PJSIP/trunk-00000009", LinkedID: "u.9", CallerNum: "+12025550143", Context: "from-trunk", Exten: "5000", State: "Up"}
	run(tr, ChannelEvent{Kind: ChanHangup, Channel: Channel{ID: "u.9"}, Cause: 16})
	tr.Snapshot(adaptAll(x), t0.Add(time.Minute))
	if live := tr.Live(); len(live) != 0 {
		t.Fatalf("adopted a channel that had hung up: %+v", live)
	}
}

// resyncFunc is an adapter that only resyncs.
type resyncFunc func()

func (f resyncFunc) Resync() { f() }

// StoreErr says why the last commit failed while it fails (/readyz shows
// it when its own probe write still goes through), and nil once one
// succeeds.
func TestEngineStoreErr(t *testing.T) {
	ob := &fakeOutbox{fail: 1 << 30}
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{Endpoints: []Endpoint{{ID: "crm", Events: []string{"call.*"}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if e.StoreErr() != nil {
		t.Fatalf("StoreErr before any commit: %v", e.StoreErr())
	}
	caller, a := trunk(), ch("t.2", "PJSIP/201-00000002")
	e.LinkUp(1)
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: caller}), adapt(ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a})})
	waitFor(t, "a failed commit", func() bool { return e.CommitErrors.Load() > 0 })
	if err := e.StoreErr(); e.StoreOK() || err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("while commits fail: StoreOK %v, StoreErr %v", e.StoreOK(), err)
	}
	ob.mu.Lock()
	ob.fail = 0
	ob.mu.Unlock()
	waitFor(t, "the retried commit", func() bool { return e.StoreOK() })
	if err := e.StoreErr(); err != nil {
		t.Fatalf("after a commit succeeded: StoreErr %v", err)
	}
}

// waitFor polls cond; the deadline only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An agent's phone still ringing when the link comes up rings now: the
// screen pops once (a later dial of the same ring pops no more), and its
// answer establishes the call.
func TestSnapshotPopsADeviceRingingNow(t *testing.T) {
	tr := newTestTracker()
	x1 := Channel{ID: "u.1", Name: "PJSIP/trunk-00000009", LinkedID: "u.1", CallerNum: "+12025550143", Context: "from-trunk", Exten: "5000", State: "Ring"}
	x2 := Channel{ID: "u.2", Name: "PJSIP/202-0000000a", LinkedID: "u.1", State: "Ringing"}
	tr.Snapshot(adaptAll(x1, x2), t0)
	evs, _ := tr.Drain()
	if got := typesOf(evs); got != "call.ringing" || evs[0].Agent == nil || evs[0].Agent.Extension != "202" || evs[0].Call.Direction != DirectionInbound {
		t.Fatalf("events = %s %+v", got, evs)
	}
	evs = run(tr,
		ChannelEvent{Kind: ChanDial, Channel: x1, Peer: &x2},
		ChannelEvent{Kind: ChanAnswer, Channel: x2},
		ChannelEvent{Kind: ChanDialEnd, Channel: x1, Peer: &x2, DialStatus: "ANSWER"},
	)
	if got := typesOf(evs); got != "call.answered" || evs[0].Agent == nil || evs[0].Agent.Extension != "202" {
		t.Fatalf("events = %s", got)
	}
}

// A call the list shows on hold is held from the link on: its resume is
// told when it comes.
func TestSnapshotHeldCallResumes(t *testing.T) {
	tr := newTestTracker()
	x1 := Channel{ID: "u.1", Name: "PJSIP/trunk-00000009", LinkedID: "u.1", CallerNum: "+12025550143", Context: "from-trunk", Exten: "5000", State: "Up"}
	x2 := Channel{ID: "u.2", Name: "PJSIP/202-0000000a", LinkedID: "u.1", State: "Up", Listed: &Listed{Hold: HoldOn}}
	tr.Snapshot(adaptAll(x1, x2), t0)
	evs, _ := tr.Drain()
	if got := typesOf(evs); got != "call.answered,call.held" {
		t.Fatalf("events = %s", got)
	}
	evs = run(tr, ChannelEvent{Kind: ChanUnhold, Channel: x2})
	if got := typesOf(evs); got != "call.resumed" {
		t.Fatalf("events = %s", got)
	}
}

// A recording whose start came before the link stops with its file: the
// CRM hears of both, once.
func TestRecordingStopWithoutStart(t *testing.T) {
	tr := newTestTracker()
	x1 := Channel{ID: "u.1", Name: "PJSIP/trunk-00000009", LinkedID: "u.1", CallerNum: "+12025550143", Context: "from-trunk", Exten: "5000", State: "Up"}
	x2 := Channel{ID: "u.2", Name: "PJSIP/202-0000000a", LinkedID: "u.1", State: "Up"}
	tr.Snapshot(adaptAll(x1, x2), t0)
	tr.Drain()
	evs := run(tr,
		ChannelEvent{Kind: ChanRecordStop, Channel: x1, File: "/rec/a.wav"},
		ChannelEvent{Kind: ChanRecordStop, Channel: x1, File: "/rec/a.wav"},
	)
	if got := typesOf(evs); got != "recording.started,recording.ready" || evs[1].Recording == nil || evs[1].Recording.Path != "/rec/a.wav" {
		t.Fatalf("events = %s", got)
	}
}

// An agent's outbound call to a short number through a trunk the admin
// named (calls.trunk_pattern): the trunk leg's endpoint matches the agent
// pattern, yet it is the far party, not an agent's phone.
func TestTrunkPatternLegIsNoAgent(t *testing.T) {
	for _, pattern := range []string{"", "^PJSIP/sbc-"} {
		cfg := TrackerConfig{PBX: "pbx1", AgentPattern: regexp.MustCompile(`^[0-9]{3}$`)}
		if pattern != "" {
			cfg.TrunkPattern = regexp.MustCompile(pattern)
		}
		tr := NewTracker(cfg)
		agent := Channel{ID: "o.1", Name: "PJSIP/201-00000001", LinkedID: "o.1", CallerNum: "201", Context: "from-internal", Exten: "911", Endpoint: "201"}
		sbc := Channel{ID: "o.2", Name: "PJSIP/sbc-00000002", LinkedID: "o.1", Endpoint: "911"}
		evs := run(tr,
			ChannelEvent{Kind: ChanNew, Channel: agent},
			ChannelEvent{Kind: ChanDial, Channel: agent, Peer: &sbc},
			ChannelEvent{Kind: ChanAnswer, Channel: sbc},
			ChannelEvent{Kind: ChanDialEnd, Channel: agent, Peer: &sbc, DialStatus: "ANSWER"},
		)
		var rungAgent bool
		for _, e := range evs {
			rungAgent = rungAgent || e.Type == EventCallRinging && e.Party != PartyCustomer
		}
		if got := rungAgent; got != (pattern == "") {
			t.Errorf("trunk_pattern %q: an agent 911 rang = %v (%s)", pattern, got, typesOf(evs))
		}
	}
}
