package esl

import (
	"slices"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// sofiaLeg returns the headers of a SIP leg as FreeSWITCH sends them with
// the channel's variables (variable_uuid marks an event that carries them).
func sofiaLeg(id, name, dir string, kv ...string) []string {
	return append([]string{"Unique-ID", id, "Channel-Name", name, "Call-Direction", dir, "variable_uuid", id,
		"Caller-Caller-ID-Number", "5550100", "Caller-Destination-Number", "2100", "Caller-Context", "default",
		"Channel-Call-UUID", id}, kv...)
}

// TestTranslateSwitchRules checks the rules the real captures do not all
// exercise, each from FreeSWITCH's own behaviour (see the comments in
// translate.go and translate_transfer.go).
func TestTranslateSwitchRules(t *testing.T) {
	const (
		cust  = "sofia/external/+4930123456@203.0.113.9"
		phone = "sofia/internal/1000-0xab@10.0.0.5:5062"
		other = "sofia/internal/1001-0xcd@10.0.0.6:5064"
	)
	var (
		in  = func(name string, kv ...string) *Event { return ev(name, sofiaLeg("C", cust, "inbound", kv...)...) }
		out = func(name, id, ch string, kv ...string) *Event {
			return ev(name, sofiaLeg(id, ch, "outbound", append([]string{"Other-Type", "originator", "Other-Leg-Unique-ID", "C",
				"variable_dialed_user", "1000"}, kv...)...)...)
		}
		br = func(name string, kv ...string) *Event {
			return in(name, append([]string{"Bridge-A-Unique-ID", "C", "Bridge-B-Unique-ID", "A"}, kv...)...)
		}
		hup = func(e *Event, cause, disp string) *Event {
			e.Headers["Hangup-Cause"], e.Headers["Answer-State"] = cause, "hangup"
			e.Headers["variable_sip_hangup_disposition"] = disp
			return e
		}
	)
	// The customer's call, bridged to 1000's phone, as far as both talk.
	talking := []*Event{
		in("CHANNEL_CREATE"),
		out("CHANNEL_CREATE", "A", phone),
		out("CHANNEL_ANSWER", "A", phone),
		in("CHANNEL_ANSWER"),
		br("CHANNEL_BRIDGE", "Event-Sequence", "10"),
	}
	talkingWant := []string{"New " + cust, "New " + phone + " user=1000", "Dial " + cust + ">" + phone,
		"Answer " + phone, "Answer " + cust, "DialEnd " + cust + ">" + phone + " ANSWER", "BridgeEnter " + cust, "BridgeEnter " + phone}
	tests := []struct {
		name  string
		in    []*Event
		want  []string
		check func(t *testing.T, out []bridge.ChannelEvent)
	}{{
		// The vanilla public context transfers every call to default before
		// anything answers: the transfer_source it leaves is routing, which
		// the bridge and its end must not report.
		name: "dialplan routing before any bridge is no transfer",
		in: append([]*Event{
			in("CHANNEL_CREATE", "Caller-Context", "public"),
			in("CHANNEL_EXECUTE", "Application", "transfer", "variable_transfer_source", "1:C:bl_xfer:2100/default/XML"),
			out("CHANNEL_CREATE", "A", phone),
			out("CHANNEL_ANSWER", "A", phone),
			in("CHANNEL_ANSWER", "variable_transfer_source", "1:C:bl_xfer:2100/default/XML"),
			br("CHANNEL_BRIDGE", "Event-Sequence", "10", "variable_transfer_source", "1:C:bl_xfer:2100/default/XML")},
			hup(br("CHANNEL_UNBRIDGE", "Event-Sequence", "20", "variable_transfer_source", "1:C:bl_xfer:2100/default/XML"), "NORMAL_CLEARING", "recv_bye")),
		want: append(slices.Clone(talkingWant), "HangupRequest "+cust, "BridgeLeave "+cust, "BridgeLeave "+phone),
	}, {
		// uuid_transfer of the bridge's B-leg: the A-leg's UNBRIDGE does not
		// carry the B-leg's variables, its next own event does.
		name: "a B-leg transferred out of its bridge says so with its next event",
		in: append(slices.Clone(talking),
			br("CHANNEL_UNBRIDGE", "Event-Sequence", "20"),
			ev("CHANNEL_STATE", "Unique-ID", "A", "Channel-Name", phone), // no variables: tells nothing
			out("CHANNEL_EXECUTE", "A", phone, "variable_transfer_source", "2:A:bl_xfer:1001/default/XML"),
			out("CHANNEL_EXECUTE", "A", phone, "variable_transfer_source", "2:A:bl_xfer:1001/default/XML")),
		want: append(slices.Clone(talkingWant), "BridgeLeave "+cust, "BridgeLeave "+phone,
			"Transfer "+cust+">"+phone+" 1001@default"),
	}, {
		// What the client subscribes to: the B-leg's next CALLSTATE, no
		// variables, but its caller profile's Transfer-Source.
		name: "a B-leg transferred out of its bridge says so with its call state",
		in: append(slices.Clone(talking),
			br("CHANNEL_UNBRIDGE", "Event-Sequence", "20"),
			ev("CHANNEL_CALLSTATE", "Unique-ID", "A", "Channel-Name", phone, "Caller-Unique-ID", "A", "Channel-Call-State", "RINGING",
				"Caller-Transfer-Source", "2:A:bl_xfer:1001/default/XML")),
		want: append(slices.Clone(talkingWant), "BridgeLeave "+cust, "BridgeLeave "+phone,
			"Transfer "+cust+">"+phone+" 1001@default"),
	}, {
		name: "a leg that left its bridge without a transfer is not transferred later",
		in: append(slices.Clone(talking),
			br("CHANNEL_UNBRIDGE", "Event-Sequence", "20"),
			out("CHANNEL_EXECUTE", "A", phone),
			out("CHANNEL_EXECUTE", "A", phone, "variable_transfer_source", "2:A:bl_xfer:1001/default/XML")),
		want: append(slices.Clone(talkingWant), "BridgeLeave "+cust, "BridgeLeave "+phone),
	}, {
		// att_xfer is what the transferring party runs: the leg moved into
		// it inline is a transferer starting a consultation.
		name: "a leg moved into an inline att_xfer is no transferee",
		in: append(slices.Clone(talking),
			br("CHANNEL_UNBRIDGE", "Event-Sequence", "20", "variable_transfer_source", "3:C:bl_xfer:att_xfer:user/1001@d/default/inline")),
		want: append(slices.Clone(talkingWant), "BridgeLeave "+cust, "BridgeLeave "+phone),
	}, {
		// The consultation ends with the agent still up: att_xfer bridges
		// the agent back to the customer, which is no transfer.
		name: "an att_xfer cancelled gives the customer back without a transfer",
		in: append(slices.Clone(talking),
			ev("CHANNEL_CREATE", sofiaLeg("K", other, "outbound", "Other-Type", "originator", "Other-Leg-Unique-ID", "A", "variable_dialed_user", "1001")...),
			ev("CHANNEL_ANSWER", sofiaLeg("K", other, "outbound", "Other-Type", "originator", "Other-Leg-Unique-ID", "A")...),
			ev("CHANNEL_BRIDGE", sofiaLeg("A", phone, "outbound", "Event-Sequence", "30", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "K")...),
			hup(ev("CHANNEL_HANGUP_COMPLETE", sofiaLeg("K", other, "outbound")...), "NORMAL_CLEARING", "recv_bye"),
			ev("CHANNEL_UNBRIDGE", sofiaLeg("A", phone, "outbound", "Event-Sequence", "40", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "K")...),
			br("CHANNEL_UNBRIDGE", "Event-Sequence", "50"),
			ev("CHANNEL_BRIDGE", sofiaLeg("A", phone, "outbound", "Event-Sequence", "60", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "C",
				"variable_transfer_source", "4:A:uuid_br:C")...)),
		want: append(slices.Clone(talkingWant),
			"New "+other+" user=1001", "Dial "+phone+">"+other, "Answer "+other, "DialEnd "+phone+">"+other+" ANSWER",
			"BridgeEnter "+phone, "BridgeEnter "+other,
			"HangupRequest "+other, "Hangup "+other+" 16 NORMAL_CLEARING by endpoint",
			"BridgeLeave "+phone, "BridgeLeave "+cust, "BridgeLeave "+phone,
			"BridgeEnter "+phone, "BridgeEnter "+cust),
	}, {
		name: "the directory user: dialled before the answer, authenticated, never chosen by the caller",
		in: []*Event{
			ev("CHANNEL_CREATE", sofiaLeg("C", cust, "inbound", "Caller-Username", "1000")...),                                      // unauthenticated From user
			ev("CHANNEL_ANSWER", sofiaLeg("C", cust, "inbound", "variable_user_name", "1000")...),                                   // a voicemail login
			ev("CHANNEL_CREATE", sofiaLeg("P", "sofia/internal/1001@10.0.0.6", "inbound", "variable_sip_auth_username", "1001")...), // a phone calling in
			out("CHANNEL_CREATE", "A", phone, "Caller-Caller-ID-Number", "1000-0xab", "Caller-Destination-Number", "1000-0xab"),
			out("CHANNEL_ANSWER", "A", phone, "variable_dialed_user", "1001"), // bridge user/1001 run by the leg
			ev("CHANNEL_CREATE", sofiaLeg("L", "loopback/1000-a", "outbound", "variable_dialed_user", "1000")...),
			ev("CHANNEL_CREATE", sofiaLeg("B", other, "outbound", "Answer-State", "answered", "variable_dialed_user", "1001")...), // first seen up
		},
		want: []string{"New " + cust, "Answer " + cust, "New sofia/internal/1001@10.0.0.6", "New " + phone + " user=1000",
			"Dial " + cust + ">" + phone, "Answer " + phone, "New loopback/1000-a", "Dial>loopback/1000-a", "New " + other},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if ch := out[1].Channel; ch.Endpoint != "+4930123456" { // its name's, not the later user_name
				t.Errorf("caller named by a later user_name: %+v", ch)
			}
			// The phone's contact names it: its number is its user's.
			if ch := out[3].Channel; ch.Endpoint != "1000" || ch.CallerNum != "1000" || ch.Exten != "1000" {
				t.Errorf("dialled leg: %+v", ch)
			}
			if ch := out[5].Channel; ch.Endpoint != "1000" {
				t.Errorf("answered leg: %+v", ch)
			}
		},
	}, {
		// CHANNEL_OUTGOING fires before the leg's variables exist.
		name: "an originated leg opens with its variables, or with its hangup",
		in: []*Event{
			ev("CHANNEL_OUTGOING", "Unique-ID", "A", "Channel-Name", phone, "Call-Direction", "outbound", "Other-Type", "originator", "Other-Leg-Unique-ID", "C"),
			out("CHANNEL_CREATE", "A", phone),
			ev("CHANNEL_OUTGOING", "Unique-ID", "B", "Channel-Name", other, "Call-Direction", "outbound", "Other-Type", "originator", "Other-Leg-Unique-ID", "C"),
			hup(ev("CHANNEL_HANGUP_COMPLETE", sofiaLeg("B", other, "outbound", "Other-Type", "originator", "Other-Leg-Unique-ID", "C", "variable_dialed_user", "1001")...),
				"USER_NOT_REGISTERED", ""),
		},
		want: []string{"New " + phone + " user=1000", "Dial>" + phone, "New " + other + " user=1001", "Dial>" + other,
			"DialEnd>" + other + " CHANUNAVAIL", "Hangup " + other + " 16 USER_NOT_REGISTERED"},
	}, {
		// sofia leaves recv_refuse on a live call whose re-INVITE the phone
		// refused; the switch's BYE later overwrites it.
		name: "a refused re-INVITE is no hangup request; a BYE is, as soon as an event shows it",
		in: append(slices.Clone(talking),
			hup(out("CHANNEL_EXECUTE", "A", phone), "NORMAL_CLEARING", "recv_refuse"),
			hup(out("CHANNEL_HANGUP_COMPLETE", "A", phone), "NORMAL_CLEARING", "send_bye"),
			hup(br("CHANNEL_UNBRIDGE", "Event-Sequence", "20"), "NORMAL_CLEARING", "recv_bye"),
			hup(in("CHANNEL_HANGUP_COMPLETE"), "NORMAL_CLEARING", "recv_bye")),
		want: append(slices.Clone(talkingWant), "Hangup "+phone+" 16 NORMAL_CLEARING by pbx",
			"HangupRequest "+cust, "BridgeLeave "+cust, "Hangup "+cust+" 16 NORMAL_CLEARING by endpoint"),
	}, {
		name: "a hold is said once, by CHANNEL_HOLD or the call state",
		in: append(slices.Clone(talking),
			out("CHANNEL_CALLSTATE", "A", phone, "Channel-Call-State", "HELD"),
			out("CHANNEL_HOLD", "A", phone, "Channel-Call-State", "HELD"),
			out("CHANNEL_CALLSTATE", "A", phone, "Channel-Call-State", "HELD"),
			out("CHANNEL_UNHOLD", "A", phone, "Channel-Call-State", "UNHELD"),
			out("CHANNEL_CALLSTATE", "A", phone, "Channel-Call-State", "UNHELD"),
			out("CHANNEL_CALLSTATE", "A", phone, "Channel-Call-State", "ACTIVE"),
			in("CHANNEL_HOLD"), in("CHANNEL_UNHOLD")),
		want: append(slices.Clone(talkingWant), "Hold "+phone, "Unhold "+phone, "Hold "+cust, "Unhold "+cust),
	}, {
		name: "a voicemail message is not a call recording",
		in: append(slices.Clone(talking),
			in("RECORD_START", "Event-Calling-File", "switch_ivr_play_say.c", "Record-File-Path", "/vm/msg.wav"),
			in("RECORD_STOP", "Event-Calling-File", "switch_ivr_play_say.c", "Record-File-Path", "/vm/msg.wav"),
			in("RECORD_START", "Event-Calling-File", "switch_ivr_async.c", "Record-File-Path", "/rec/call.wav")),
		want: append(slices.Clone(talkingWant), "RecordStart "+cust+" /rec/call.wav"),
	}, {
		// intercept unseen (another event socket filter, a pickup group):
		// the picked-off leg waits for its originator's next bridge.
		name: "a pickup whose intercept was not seen is said at the picker's bridge",
		in: []*Event{
			in("CHANNEL_CREATE"),
			out("CHANNEL_CREATE", "A", phone),
			hup(out("CHANNEL_HANGUP_COMPLETE", "A", phone), "PICKED_OFF", "send_cancel"),
			ev("CHANNEL_CREATE", sofiaLeg("P", "sofia/internal/1001@10.0.0.6", "inbound", "variable_sip_auth_username", "1001")...),
			ev("CHANNEL_BRIDGE", sofiaLeg("P", "sofia/internal/1001@10.0.0.6", "inbound", "Event-Sequence", "30",
				"Bridge-A-Unique-ID", "P", "Bridge-B-Unique-ID", "C")...),
		},
		want: []string{"New " + cust, "New " + phone + " user=1000", "Dial " + cust + ">" + phone,
			"DialEnd " + cust + ">" + phone + " CANCEL", "Hangup " + phone + " 16 PICKED_OFF by pbx",
			"New sofia/internal/1001@10.0.0.6", "Pickup sofia/internal/1001@10.0.0.6>" + cust,
			"BridgeEnter sofia/internal/1001@10.0.0.6", "BridgeEnter " + cust},
	}, {
		// mod_callcenter sends the member channel's state with
		// member-queue-end: a caller gone is an abandon, whatever the reason
		// (BREAK_OUT when the hangup broke the wait); a caller still there
		// left the queue.
		name: "a queue caller who hangs up abandons; one taken out or timed out leaves",
		in: []*Event{
			in("CHANNEL_CREATE"),
			ev("CHANNEL_CREATE", sofiaLeg("D", cust, "inbound")...),
			hup(in("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end", "CC-Queue", "q",
				"CC-Member-Session-UUID", "C", "CC-Cause", "Cancel", "CC-Cancel-Reason", "BREAK_OUT"), "NORMAL_CLEARING", "recv_bye"),
			ev("CUSTOM", sofiaLeg("D", cust, "inbound", "Answer-State", "answered", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end",
				"CC-Queue", "q", "CC-Member-Session-UUID", "D", "CC-Cause", "Cancel", "CC-Cancel-Reason", "BREAK_OUT")...),
			ev("CUSTOM", sofiaLeg("D", cust, "inbound", "Answer-State", "answered", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end",
				"CC-Queue", "q", "CC-Member-Session-UUID", "D", "CC-Cause", "Cancel", "CC-Cancel-Reason", "EXIT_WITH_KEY")...),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end", "CC-Queue", "q",
				"CC-Member-Session-UUID", "E", "CC-Cause", "Cancel", "CC-Cancel-Reason", "NO_AGENT_TIMEOUT"),
		},
		want: []string{"New " + cust, "New " + cust, "HangupRequest " + cust, "QueueAbandon " + cust + " q", "QueueLeave " + cust + " q", "QueueLeave " + cust + " q", "QueueLeave q"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			out = out[3:]
			if out[0].Reason != bridge.AbandonCallerHungUp || out[1].Reason != "BREAK_OUT" || out[2].Reason != "EXIT_WITH_KEY" || out[3].Reason != "NO_AGENT_TIMEOUT" {
				t.Errorf("reasons %q %q %q %q", out[0].Reason, out[1].Reason, out[2].Reason, out[3].Reason)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := translateAll(NewTranslator(""), tt.in)
			if got := DescribeAll(out); !slices.Equal(got, tt.want) {
				t.Fatalf("got:\n%s", diffLines(got, tt.want))
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}
