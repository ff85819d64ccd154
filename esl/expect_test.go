package esl

import (
	"fmt"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// Describe renders a ChannelEvent compactly for comparisons: kind, channel
// name, peer name and the fields that matter for the kind.
func Describe(ev bridge.ChannelEvent) string {
	var b strings.Builder
	b.WriteString(kindName(ev.Kind))
	if ev.Channel.Name != "" {
		b.WriteString(" " + ev.Channel.Name)
	}
	if ev.Peer != nil {
		b.WriteString(">" + ev.Peer.Name)
	}
	switch ev.Kind {
	case bridge.ChanNew:
		// The user the switch named where its name says otherwise (named
		// fills the rest from the name).
		byName := bridge.Channel{Name: ev.Channel.Name}
		named(&byName)
		if ev.Channel.Endpoint != "" && ev.Channel.Endpoint != byName.Endpoint {
			b.WriteString(" user=" + ev.Channel.Endpoint)
		}
	case bridge.ChanDialEnd:
		b.WriteString(" " + ev.DialStatus)
	case bridge.ChanHangup, bridge.ChanOriginateFailed:
		fmt.Fprintf(&b, " %d %s", ev.Cause, ev.CauseText)
		if ev.HangupSource != "" {
			b.WriteString(" by " + ev.HangupSource)
		}
	case bridge.ChanPark, bridge.ChanUnpark:
		fmt.Fprintf(&b, " %s@%s", ev.Exten, ev.Context)
	case bridge.ChanTransfer:
		fmt.Fprintf(&b, " %s@%s", ev.Exten, ev.Context)
		if ev.Attended {
			b.WriteString(" attended")
		}
	case bridge.ChanRecordStart, bridge.ChanRecordStop:
		b.WriteString(" " + ev.File)
		if ev.Reason != "" {
			b.WriteString(" (" + ev.Reason + ")")
		}
	case bridge.ChanQueueJoin, bridge.ChanQueueLeave, bridge.ChanQueueAbandon:
		b.WriteString(" " + ev.Queue)
	case bridge.ChanAgentCalled, bridge.ChanAgentConnect:
		fmt.Fprintf(&b, " %s %s", ev.Queue, ev.Member)
	case bridge.ChanAgentState:
		fmt.Fprintf(&b, " %s %s", ev.Member, ev.Status)
	}
	return b.String()
}

// DescribeAll describes a list.
func DescribeAll(evs []bridge.ChannelEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = Describe(ev)
	}
	return out
}

const recording = "/srv/pbx1/freeswitch/var/lib/freeswitch/recordings/uuid_record_fe126013-e731-4599-a0d1-a72fb4790bf8.wav"

// basicCall is what basic-call-plain and basic-call-json produce: the
// caller's loopback pair dials 1000 (another pair), which answers, bridges,
// plays a tone and hangs up.
var basicCall = []string{
	"New loopback/2000-a",
	"Dial>loopback/2000-a",
	"New loopback/2000-b",
	"LocalPair loopback/2000-a>loopback/2000-b",
	"Update loopback/2000-a",
	"Update loopback/2000-b",
	"New loopback/1000-a",
	"Dial loopback/2000-b>loopback/1000-a",
	"New loopback/1000-b",
	"LocalPair loopback/1000-a>loopback/1000-b",
	"Answer loopback/1000-a",
	"Answer loopback/1000-b",
	"Answer loopback/2000-a",
	"DialEnd>loopback/2000-a ANSWER",
	"Answer loopback/2000-b",
	"DialEnd loopback/2000-b>loopback/1000-a ANSWER",
	"BridgeEnter loopback/2000-b",
	"BridgeEnter loopback/1000-a",
	"Hangup loopback/1000-b 16 NORMAL_CLEARING",
	"BridgeLeave loopback/2000-b",
	"BridgeLeave loopback/1000-a",
	"Hangup loopback/2000-b 16 NORMAL_CLEARING",
	"Hangup loopback/1000-a 16 NORMAL_CLEARING",
	"Hangup loopback/2000-a 16 NORMAL_CLEARING",
}

// bridged2100 is the start shared by the captures that call 2100, which
// bridges to loopback/1100 (answer, 60 s tone).
var bridged2100 = []string{
	"New loopback/2100-a",
	"Dial>loopback/2100-a",
	"New loopback/2100-b",
	"LocalPair loopback/2100-a>loopback/2100-b",
	"Update loopback/2100-a",
	"Update loopback/2100-b",
	"New loopback/1100-a",
	"Dial loopback/2100-b>loopback/1100-a",
	"New loopback/1100-b",
	"LocalPair loopback/1100-a>loopback/1100-b",
	"Answer loopback/1100-a",
	"Answer loopback/1100-b",
	"Answer loopback/2100-a",
	"DialEnd>loopback/2100-a ANSWER",
	"Answer loopback/2100-b",
	"DialEnd loopback/2100-b>loopback/1100-a ANSWER",
	"BridgeEnter loopback/2100-b",
	"BridgeEnter loopback/1100-a",
}

func with(head []string, tail ...string) []string {
	return append(append([]string(nil), head...), tail...)
}

// ExpectedCaptures is what each capture produces, in Event-Sequence order.
var ExpectedCaptures = map[string][]string{
	"basic-call-plain": basicCall,
	"basic-call-json":  basicCall,
	// uuid_transfer of the caller's leg to 3000: the agent's pair is hung
	// up first, then the transferred leg leaves the bridge with bl_xfer.
	"blind-transfer": with(bridged2100,
		"Hangup loopback/1100-a 16 NORMAL_CLEARING",
		"Hangup loopback/1100-b 16 NORMAL_CLEARING",
		"Transfer loopback/1100-a>loopback/2100-b 3000@default",
		"BridgeLeave loopback/2100-b",
		"Hangup loopback/2100-b 16 NORMAL_CLEARING",
		"Hangup loopback/2100-a 16 NORMAL_CLEARING"),
	"record": with(bridged2100,
		"RecordStart loopback/2100-b "+recording,
		"RecordStop loopback/2100-b "+recording,
		"Hangup loopback/1100-a 16 NORMAL_CLEARING",
		"Hangup loopback/1100-b 16 NORMAL_CLEARING",
		"Hangup loopback/2100-a 16 NORMAL_CLEARING",
		"BridgeLeave loopback/2100-b",
		"Hangup loopback/2100-b 16 NORMAL_CLEARING"),
	// uuid_hold gives CHANNEL_HOLD; "uuid_hold off" fails on loopback.
	"hold-loopback": with(bridged2100,
		"Hold loopback/2100-b",
		"Hangup loopback/2100-a 16 NORMAL_CLEARING",
		"BridgeLeave loopback/2100-b",
		"BridgeLeave loopback/1100-a",
		"Hangup loopback/2100-b 16 NORMAL_CLEARING",
		"Hangup loopback/1100-b 16 NORMAL_CLEARING",
		"Hangup loopback/1100-a 16 NORMAL_CLEARING"),
	"kill": with(bridged2100,
		"Hangup loopback/2100-a 16 NORMAL_CLEARING",
		"Hangup loopback/1100-a 16 NORMAL_CLEARING",
		"BridgeLeave loopback/2100-b",
		"Hangup loopback/1100-b 16 NORMAL_CLEARING",
		"Hangup loopback/2100-b 16 NORMAL_CLEARING"),
	// Three bgapi originates fail (the first after its loopback pair ran
	// into a missing extension), then a synchronous one, which the API
	// caller sees as -ERR: its channels still come and go.
	"originate-failure": {
		"New loopback/9999-a",
		"Dial>loopback/9999-a",
		"New loopback/9999-b",
		"LocalPair loopback/9999-a>loopback/9999-b",
		"Hangup loopback/9999-b 3 NO_ROUTE_DESTINATION",
		"DialEnd>loopback/9999-a CHANUNAVAIL",
		"Hangup loopback/9999-a 3 NO_ROUTE_DESTINATION",
		"OriginateFailed 3 NO_ROUTE_DESTINATION",
		"OriginateFailed 17 USER_BUSY",
		"OriginateFailed 66 CHAN_NOT_IMPLEMENTED",
		"New loopback/9999-a",
		"Dial>loopback/9999-a",
		"New loopback/9999-b",
		"LocalPair loopback/9999-a>loopback/9999-b",
		"Hangup loopback/9999-b 3 NO_ROUTE_DESTINATION",
		"DialEnd>loopback/9999-a CHANUNAVAIL",
		"Hangup loopback/9999-a 3 NO_ROUTE_DESTINATION",
	},
	// The agent's SIP leg is rung by mod_callcenter for the member
	// (AgentCalled, no dial: the queue connects it); its far end
	// (sofia/lo/5555000@...) is the same switch answering as the "phone":
	// one SIP Call-ID, so the two are paired like loopback halves.
	"callcenter": {
		"AgentState agent1000@default available",
		"New loopback/5000-a",
		"Dial>loopback/5000-a",
		"New loopback/5000-b",
		"LocalPair loopback/5000-a>loopback/5000-b",
		"Answer loopback/5000-a",
		"DialEnd>loopback/5000-a ANSWER",
		"Answer loopback/5000-b",
		"QueueJoin loopback/5000-b support@default",
		"AgentState agent1000@default busy",
		"New sofia/lo/1000@127.0.0.1:5090",
		"AgentCalled loopback/5000-b>sofia/lo/1000@127.0.0.1:5090 support@default agent1000@default",
		"New sofia/lo/5555000@127.0.0.1",
		"Answer sofia/lo/5555000@127.0.0.1",
		"LocalPair sofia/lo/1000@127.0.0.1:5090>sofia/lo/5555000@127.0.0.1",
		"Answer sofia/lo/1000@127.0.0.1:5090",
		"AgentConnect loopback/5000-b>sofia/lo/1000@127.0.0.1:5090 support@default agent1000@default",
		"BridgeEnter loopback/5000-b",
		"BridgeEnter sofia/lo/1000@127.0.0.1:5090",
		"AgentState agent1000@default busy",
		"Hangup sofia/lo/5555000@127.0.0.1 16 NORMAL_CLEARING by pbx",
		"HangupRequest sofia/lo/1000@127.0.0.1:5090",
		"Hangup sofia/lo/1000@127.0.0.1:5090 16 NORMAL_CLEARING by endpoint",
		"BridgeLeave loopback/5000-b",
		"Hangup loopback/5000-b 16 NORMAL_CLEARING",
		"Hangup loopback/5000-a 16 NORMAL_CLEARING",
		"QueueLeave loopback/5000-b support@default",
		"AgentState agent1000@default available",
	},
}
