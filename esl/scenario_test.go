package esl

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/bridge/bridgetest"
)

// sipTracker is configured as an admin would for the SIP captures: agents
// are 1000-1003; 1010 is the customer's phone (a directory user too) and
// 2100-2190 are DIDs of the dialplan.
func sipTracker() *bridge.Tracker {
	return bridge.NewTracker(bridge.TrackerConfig{
		PBX:             "pbx1",
		AgentPattern:    regexp.MustCompile(`^100[0-9]$`),
		InboundContexts: []string{"public"},
	})
}

// sipFrames returns the frames of a capture in testdata/sip, in wire order.
func sipFrames(t testing.TB, name string) []*Frame {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "sip", name+".esl"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	var out []*Frame
	for {
		f, err := ReadFrame(br, 0)
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

// sipEvents returns a capture's events in wire order.
func sipEvents(t testing.TB, name string) []*Event {
	t.Helper()
	var evs []*Event
	for _, f := range sipFrames(t, name) {
		if f.ContentType() != typeEventPlain {
			continue
		}
		e, err := parsePlainWanted(f.Body, wantedHeaders)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

// sipFlow is what a CRM must be told about one capture: one story per
// conversation, in the order of their first event (bridgetest.Stories).
// Where the story differs from the README's EXPECT line by notation only,
// the notation is the story's:
//
//   - callee= is the number the caller dialled (the DID 2100, the queue's
//     2120); the README names the agent who took the call or the queue
//     (the queue is call.queue, the agent answered(...));
//   - the far party of a call an agent placed rings and answers as
//     "customer" (call.ringing/answered with party customer): the README's
//     answered(1000)/answered(1010) in sip-outbound and click-to-call;
//   - a parked call is held(parked <slot>) and its retrieval the
//     retriever's answered(...): the README's "held resumed answered(1001)";
//   - the switch answering (answered(system), a voicemail, an IVR) is no
//     event: only a person answers a call;
//   - hangup_by on an internal call is caller or callee (both ends are
//     agents): the README's "agent" for the consult's caller.
//
// gap, when set, is the story the call model tells today because of a
// tracker rule (why says which, and the rule suggested); the test accepts
// it and logs the gap, so a translation change still fails the test.
type sipFlow struct {
	captures []string // the connections played in turn (a restart: pre, then post)
	want     []string
	gap      []string
	why      string
}

var sipFlows = map[string]sipFlow{
	"sip-inbound-answer-customer-hangs-up": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)"}},
	// The agent's phone rejects (486, recv_refuse on its leg): the refusal
	// of the dialled leg ends the unanswered call.
	"sip-inbound-busy": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=busy, hangup_by=agent)"}},
	"sip-inbound-no-answer": {want: []string{
		"inbound caller=1010 callee=2101: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)"}},
	// 1000's leg is cancelled (LOSE_RACE) before the switch bridges 1001's:
	// the ring ends first.
	"sip-ring-group": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)"}},
	"sip-callcenter-ringall": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)"}},
	"sip-callcenter-abandon": {want: []string{
		"inbound caller=1010 callee=2120: queued abandoned ended(disposition=cancelled, hangup_by=caller)"}},
	"sip-blind-transfer-phone": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)"}},
	// uuid_transfer of the agent's leg into an inline att_xfer: the switch
	// drops the customer (send_bye), and the agent's leg, alone, calls 1001.
	"sip-attended-transfer-att_xfer": {
		want: []string{
			"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=system)",
			"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)"},
	},
	"sip-attended-transfer-att_xfer-broadcast": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)"}},
	"sip-hold-phone": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)"}},
	"sip-park-valet": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1001) ended(disposition=answered, hangup_by=caller)"}},
	"sip-pickup": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)"}},
	"sip-outbound": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)"}},
	"sip-internal-call": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)"}},
	"sip-click-to-call-originate": {
		want: []string{
			"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)"},
	},
	"sip-record-session-dialplan": {
		want: []string{
			"inbound caller=1010 callee=2130: recording_started ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller) recording_ready"},
	},
	// Each member of the room keeps its own conversation; the room is known
	// from conference::maintenance (add-member, del-member). An agent in
	// the room answers the customer's call, and the agents' own calls into
	// it are answered by the people they meet there: internal calls that
	// never left the PBX (the README's "2 internal calls ... answered").
	"sip-conference": {
		want: []string{
			"inbound caller=1010 callee=2180: answered(1000) ended(disposition=answered, hangup_by=caller)",
			"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
			"internal caller=1001 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)"},
	},
	"sip-ivr-only": {want: []string{
		"inbound caller=1010 callee=2140: ended(disposition=no_answer, hangup_by=system)"}},
	// The message recorded by voicemail is not a call recording (and was
	// discarded as too short): no recording events.
	"sip-voicemail": {want: []string{
		"inbound caller=1010 callee=2190: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)"}},
	// Stories in the order the calls ended.
	"sip-ten-concurrent-calls": {want: []string{
		"inbound caller=1010 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1000 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1002 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1001 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1003 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=1010 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1001 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1002 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1003 callee=2160: ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1000 callee=2160: ended(disposition=no_answer, hangup_by=system)"}},
	// The switch is killed mid-call (the stream just ends); the restarted
	// one's show channels lists nothing: the call ended while unseen.
	"sip-fs-restart-midcall": {
		captures: []string{"sip-fs-restart-midcall-pre", "sip-fs-restart-midcall-post"},
		want: []string{
			"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=system)"}},
	// Captured here on FreeSWITCH 1.10.12 built from source with the same
	// config and phones (testdata/sip/README-built-here.txt); notation as
	// above. Not as the EXPECT line: an API originate of an agent's phone
	// that is then uuid_bridged to a parked caller (sip-park-then-uuid-
	// bridge-api), and a supervisor's eavesdrop originate, are their own
	// outbound calls of that agent; a click-to-call's refused customer is
	// also call.failed.
	"sip-attended-transfer-consult-rejected": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-attended-transfer-consult-target-hangs-up": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-api": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-caller-hangs-up-while-target-rings": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-target-busy": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-blind-transfer-to-queue": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2120) queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-call-waiting-reject": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"inbound caller=+4930123456 callee=5551212: ringing(1000) ring_ended(1000) ended(disposition=busy, hangup_by=agent)",
	}},
	"sip-callcenter-agent-becomes-available": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-blind-transfers": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) transferred(blind, from 1000, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-hangs-up": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-callcenter-agent-rejects": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1000) ringing(1000) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-caller-cancels": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) abandoned ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-callcenter-tiers": {want: []string{
		"inbound caller=1010 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-callcenter-two-callers": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1003 callee=2120: queued ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-caller-cancels-while-ringing": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-click-to-call-customer-busy": {want: []string{
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) ring_ended(customer) failed ended(disposition=busy, hangup_by=callee)",
	}},
	"sip-conference-alone": {want: []string{
		"inbound caller=1010 callee=2180: ended(disposition=no_answer, hangup_by=caller)",
	}},
	"sip-conference-escalation-api": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2180) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1001 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-dtmf-during-call": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-fifo-in-out": {want: []string{
		"inbound caller=1010 callee=5900: queued answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-forward-no-answer": {want: []string{
		"inbound caller=1010 callee=2150: ringing(1000) ring_ended(1000) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-fs-kill-while-queued": {captures: []string{"sip-fs-kill-while-queued-pre", "sip-fs-kill-while-queued-post"}, want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1000) ring_ended(1001) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-fs-restart-while-ringing": {captures: []string{"sip-fs-restart-while-ringing-pre", "sip-fs-restart-while-ringing-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-hold-api-agent-leg": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-hold-api-uuid-hold-customer-leg": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-hold-customer-hangs-up-while-held": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-hold-then-blind-transfer-phone": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-inbound-agent-hangs-up": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-inbound-external-did": {want: []string{
		"inbound caller=+4930123456 callee=5551212: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-intercept-internal-call": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-intercept": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-internal-no-answer-caller-cancels": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) ring_ended(1001) ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-outbound-customer-busy": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) ring_ended(customer) ended(disposition=busy, hangup_by=callee)",
	}},
	"sip-park-then-uuid-bridge-api": {want: []string{
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=1010 callee=2170: answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-phone-consult-hold-second-call-resume": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-record-api": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started recording_ready ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-ring-group-caller-cancels": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-ring-group-one-rejects": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-midcall": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-supervisor-eavesdrop": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1003 callee=: ringing(1003) answered(1003) ended(disposition=no_answer, hangup_by=agent)",
	}},
	"sip-uuid-kill-api": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-voicemail-leaves-message": {want: []string{
		"inbound caller=1010 callee=2190: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=caller)",
	}},

	// Third batch, the same build, config and phones (testdata/sip/README-batch3.txt). Not as the EXPECT
	// line: callee= is the number dialled (as above); an agent giving up on the far party of its
	// outbound call is no_answer (the line says cancelled and calls it debatable).
	"sip-attended-transfer-att_xfer-customer-hangs-up-in-consult-target-ends": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-attended-transfer-att_xfer-customer-hangs-up-in-consult": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-attended-transfer-att_xfer-target-busy": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-tiers-nobody-answers": {want: []string{
		"inbound caller=1010 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) ringing(1000) ring_ended(1000) abandoned ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-forward-no-answer-nobody": {want: []string{
		"inbound caller=1010 callee=2150: ringing(1000) ring_ended(1000) ringing(1002) ring_ended(1002) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-internal-call-hold-resume": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) held resumed ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-outbound-agent-cancels": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) ring_ended(customer) ended(disposition=no_answer, hangup_by=agent)",
	}},
	"sip-ring-group-both-reject": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=busy, hangup_by=agent)",
	}},

	// Fourth batch (testdata/sip/README-batch4.txt). Not as the EXPECT line: callee= (as above); a
	// failed att_xfer completion (the switch drops the customer as the agent hangs up) is the agent's
	// hangup, where the line says system.
	"sip-att_xfer-completion-fails-customer-dropped-switch-drops-target": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-att_xfer-completion-fails-customer-dropped-target-hangs-up": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-blind-transfer-phone-to-ring-group": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2110) ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-att_xfer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1002) answered(1002) transferred(attended, from 1000, to 1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-inbound-no-answer-caller-gives-up-first": {want: []string{
		"inbound caller=1010 callee=2101: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-intercept-ring-group-hash": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}, gap: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1001) ring_ended(1000) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}, why: "both rings end at once (1001's leg PICKED_OFF, 1000's ORIGINATOR_CANCEL); without the intercept's " +
		"CHANNEL_EXECUTE, which the subscription leaves out, the picked leg's end comes first"},
	"sip-intercept-ring-group": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=cancelled, hangup_by=caller)",
		"internal caller=1002 callee=**1000: ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-internal-call-blind-transfer-phone": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-outbound-then-att_xfer": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-record-api-start-stop": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started recording_ready ended(disposition=answered, hangup_by=caller)",
	}},

	// Fifth batch (testdata/sip/README-batch5.txt). Not as the EXPECT line: callee= (as above); the
	// lot's parked call is held(parked 6001) where the line writes held resumed.
	"sip-callcenter-both-agents-reject": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1000) ring_ended(1001) ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) abandoned ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-forward-first-rejects-second-answers": {want: []string{
		"inbound caller=1010 callee=2150: ringing(1000) ring_ended(1000) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-hold-twice": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed held resumed ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-internal-call-att_xfer": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ringing(1002) answered(1002) transferred(attended, from 1000, to 1002) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-internal-call-callee-busy-then-caller-calls-again": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) ring_ended(1001) ended(disposition=busy, hangup_by=callee)",
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-outbound-blind-transfer-phone": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-park-valet-retrieve-by-parker": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-uuid-transfer-customer-to-ring-group": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2110) ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},

	// Sixth batch (testdata/sip/README-batch6.txt). Not as the EXPECT line: callee= and direction
	// (1010 is the customer's phone); another client's failed originate keeps callee= empty; a refused
	// caller who then hangs up on the switch's voicemail is hangup_by=caller (as the fixtures'
	// voicemail-record line), where the line says callee.
	"sip-att_xfer-agent-cancels-consult": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-att_xfer-target-no-answer": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1003) ring_ended(1003) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-call-to-unregistered-user": {want: []string{
		"inbound caller=1010 callee=1003: ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-callcenter-agent-holds-customer-hangs-up": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) held ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-click-to-call-agent-rejects": {want: []string{
		"outbound caller=1000 callee=: ringing(1000) ring_ended(1000) ended(disposition=busy, hangup_by=agent)",
	}},
	"sip-customer-calls-twice-quickly": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-record-session-then-blind-transfer": {want: []string{
		"inbound caller=1010 callee=2130: recording_started ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller) recording_ready",
	}},
	"sip-two-users-call-each-other-at-once": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) ring_ended(1001) ended(disposition=cancelled, hangup_by=caller)",
		"internal caller=1001 callee=1000: ringing(1000) ring_ended(1000) ended(disposition=busy, hangup_by=caller)",
	}},

	// Seventh batch (testdata/sip/README-batch7.txt). Not as the EXPECT line: callee= (as above); the
	// failed att_xfer completion from 2100 is the agent's hangup (as in the fourth batch).
	"sip-agent-hangs-up-while-customer-held": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-att_xfer-chain": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ringing(1002) answered(1002) transferred(attended, from 1001, to 1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-chain": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-blind-transfers-back-to-queue": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) transferred(blind, from 1000, to 2120) queued ringing(1001) ringing(1000) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-internal-call-callee-holds-caller-hangs-up": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) held ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-record-api-then-att_xfer-2100-customer-dropped": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent) recording_ready",
	}},
	"sip-record-api-then-att_xfer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) recording_started ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller) recording_ready",
	}},

	// Eighth batch (testdata/sip/README-batch8.txt). Not as the EXPECT line: callee= (as above); the
	// lot's call is held(parked 6001) (the line: held resumed); a click-to-call tells the customer's
	// ring (the line leaves it out).
	"sip-call-waiting-agent-switches-answer-holds": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
		"internal caller=1002 callee=1000: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-call-waiting-agent-switches": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
		"internal caller=1002 callee=1000: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-click-to-call-then-blind-transfer": {want: []string{
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) answered(customer) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-intercept-then-blind-transfer": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) answered(1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-outbound-customer-holds": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) held resumed ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-park-valet-retrieved-then-blind-transfer": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},

	// Ninth batch (testdata/sip/README-batch9.txt). Not as the EXPECT line: callee= (as above); the
	// callcenter's two offers may pop in either order; the lot's call is held(parked 6001).
	"sip-att_xfer-conference-key": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-att_xfer-hangup-key": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-call-parked-then-retrieved": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-intercept-of-callcenter-offer-hashset": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1000) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-intercept-of-callcenter-offer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1000) ring_ended(1001) abandoned ended(disposition=cancelled, hangup_by=caller)",
		"internal caller=1002 callee=**1000: ended(disposition=no_answer, hangup_by=system)",
	}},

	// Tenth batch (testdata/sip/README-batch10.txt). Not as the EXPECT line: callee= (as above); the
	// callcenter's two offers may pop in either order; "connect two parties" (an API originate of each
	// party to park, then uuid_bridge) is two outbound calls, as sip-park-then-uuid-bridge-api; an API
	// uuid_transfer of the agent's own leg into the queue (a CRM's mistake: the switch drops the
	// customer) is told as the customer's transfer, and the agent leg's queue call as an internal call.
	"sip-att_xfer-cancel-key": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-att_xfer-target-busy": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-att_xfer-target-no-answer-from-queue": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1002) ring_ended(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-phone-to-callcenter": {want: []string{
		"inbound caller=1010 callee=1000: ringing(1000) answered(1000) transferred(blind, from 1000, to 2120) queued ringing(1001) ringing(1000) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-hold-api-uuid_hold-toggle-agent-leg": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-originate-uuid_bridge-second-party-busy": {want: []string{
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		// 1010's leg is the party the switch dialled (README EXPECT: hangup_by=callee).
		"outbound caller=1000 callee=1010: ended(disposition=busy, hangup_by=callee)",
	}},
	"sip-originate-uuid_bridge-two-legs": {want: []string{
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1000 callee=1010: answered(1000) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-outbound-then-att_xfer-target-busy": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-phone-hold-then-att_xfer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) held resumed ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-uuid_transfer-agent-leg-to-queue": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2120) queued ended(disposition=answered, hangup_by=system)",
		"internal caller=1000 callee=1001: ringing(1001) ringing(1000) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-uuid_transfer-customer-leg-to-queue": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2120) queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},

	// Eleventh batch (testdata/sip/README-batch11.txt). Not as the EXPECT line: callee= (as above);
	// the callcenter's two offers may pop in either order; a consultation target that answers after
	// the customer hung up (the switch holds the customer's channel until the consultation ends) is
	// told as answered (the line leaves it out); an agent's phone calling a queue is the agent's
	// outbound call (the line plays it as a customer: inbound, hangup_by=caller).
	"sip-api-uuid_record-then-blind-transfer": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) recording_ready ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-att_xfer-agent-hangs-up-while-target-rings": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-att_xfer-agent-hangs-up-while-target-rings-from-2100": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-att_xfer-customer-hangs-up-while-target-rings": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-att_xfer-customer-hangs-up-while-target-rings-from-2100": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-phone-to-ring-group-transferrer-answers": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2110) ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-call-waiting-held-caller-hangs-up": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held ended(disposition=answered, hangup_by=caller)",
		"internal caller=1002 callee=1000: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-callcenter-blind-transfer-phone-to-busy-agent": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) transferred(blind, from 1000, to 1002) ringing(1002) ring_ended(1002) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-callcenter-caller-hangs-up-as-agent-answers": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-phone-hold-then-blind-transfer-refer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) held transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-two-callers-longest-idle": {want: []string{
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1003 callee=2121: queued ringing(1001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-caller-hangs-up-as-agent-answers": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-caller-hangs-up-as-agent-answers-cancel-wins": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-internal-call-callee-att_xfer": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ringing(1002) answered(1002) transferred(attended, from 1001, to 1002) ended(disposition=answered, hangup_by=caller)",
	}},

	// Twelfth batch (testdata/sip/README-batch12.txt). Not as the EXPECT line: callee= (as above);
	// the callcenter's two offers may pop in either order; the lot's call is held(parked 6001); a
	// consultation answered before the agent's leg was killed is told (the line counts it apart); an
	// API originate into intercept is the intercepting agent's own call, not answered (the line:
	// answered); the conference is written as the number dialled.
	"sip-att_xfer-then-target-blind-transfers": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-refer-into-conference": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2180) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1001 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-set-on-break-while-ringing": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-fifo-caller-hangs-up-while-waiting": {want: []string{
		"inbound caller=1010 callee=5900: queued abandoned ended(disposition=cancelled, hangup_by=caller)",
	}},
	"sip-intercept-of-att_xfer-consult-ring": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=system)",
		"outbound caller=1002 callee=: ringing(1002) answered(1002) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-originate-api-agent-then-att_xfer": {want: []string{
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) answered(customer) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-park-valet-customer-hangs-up-while-parked": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-uuid_kill-agent-leg-during-att_xfer-consult": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-uuid_kill-agent-leg-during-att_xfer-consult-from-2120": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},

	// Thirteenth batch (testdata/sip/README-batch13.txt). Not as the EXPECT line: callee= (as above);
	// the lot's call is held(parked 6001) and its retrieval answered(1000) (the line: held resumed
	// answered(1000)); an agent's phone calling a FIFO is its own outbound call (the line plays it as
	// a customer), and the consumer's API originate is its own call; a conference is written as the
	// number dialled, and an agent's call into it is hung up by its caller.
	"sip-callcenter-agent-holds-then-resumes-then-att_xfer": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) held resumed ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-conference-customer-leaves-first": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2180) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1001 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-fifo-caller-taken-then-blind-transferred": {want: []string{
		"inbound caller=1010 callee=5900: queued answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-fifo-consumer-out-wait-takes-two-callers": {want: []string{
		"inbound caller=1010 callee=5900: queued answered(1000) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1003 callee=5900: queued answered(1000) ended(disposition=answered, hangup_by=agent)",
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-valet-park-retrieved-by-parker-then-transferred": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},

	// Fourteenth batch (testdata/sip/README-batch14.txt). Not as the EXPECT line: callee= (as above);
	// the callcenter's two offers may pop in either order; a click-to-call whose agent gives up on the
	// ringing customer is no_answer (the line: cancelled, and calls it a judgement call).
	"sip-att_xfer-complete-then-target-holds-resumes": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) held resumed ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-blind-transfer-refer-to-callcenter-then-att_xfer": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2120) queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ringing(1002) answered(1002) transferred(attended, from 1001, to 1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-callcenter-agent-holds-customer-hangs-up-then-next-call": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) held ended(disposition=answered, hangup_by=caller)",
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-click-to-call-customer-no-answer-agent-hangs-up": {want: []string{
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) ring_ended(customer) ended(disposition=no_answer, hangup_by=agent)",
	}},
	"sip-internal-call-caller-holds-then-callee-hangs-up": {want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) held ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-ring-group-member-rejects-then-customer-cancels": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=cancelled, hangup_by=caller)",
	}},
	// Fifteenth batch (testdata/sip/README-batch15.txt): the connection
	// opens while calls are up (show channels / show calls), and two
	// lost-link pairs, every story as its EXPECT line in this folder's
	// notation (callee is the number dialled, a park held(parked N)).
	"sip-sidecar-connects-while-agent-rings": {want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-sidecar-connects-outbound-ringing": {want: []string{
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-sidecar-connects-two-calls": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1002 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-while-held": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-while-parked": {want: []string{
		"inbound caller=1010 callee=6001: held(parked 6001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-while-queued-no-agent": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-during-att_xfer-consult": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-while-callcenter-rings": {want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-transfer": {captures: []string{"sip-link-lost-transfer-pre", "sip-link-lost-transfer-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-call-ended": {captures: []string{"sip-link-lost-call-ended-pre", "sip-link-lost-call-ended-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=system)",
	}},
	// Sixteenth batch (testdata/sip/README-batch16.txt): links lost while
	// a phone or the callcenter rang, in an att_xfer consultation, during
	// a ring the caller cancelled; connections opened during a recording,
	// a consultation's ring, a ring group's ring.
	"sip-link-lost-while-ringing": {captures: []string{"sip-link-lost-while-ringing-pre", "sip-link-lost-while-ringing-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-while-callcenter-rings": {captures: []string{"sip-link-lost-while-callcenter-rings-pre", "sip-link-lost-while-callcenter-rings-post"}, want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-during-att_xfer-consult": {captures: []string{"sip-link-lost-during-att_xfer-consult-pre", "sip-link-lost-during-att_xfer-consult-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-ringing-then-cancelled": {captures: []string{"sip-link-lost-ringing-then-cancelled-pre", "sip-link-lost-ringing-then-cancelled-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-sidecar-connects-while-recording": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) recording_started ended(disposition=answered, hangup_by=caller) recording_ready",
	}},
	"sip-sidecar-connects-during-att_xfer-ringing": {want: []string{
		"inbound caller=1010 callee=2100: answered(1000) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-ring-group-ringing": {want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1001) answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	// Seventeenth batch (testdata/sip/README-batch17.txt): connections
	// opened during an outbound call, an IVR, a voicemail, a conference, a
	// blind transfer's ring; links lost during a hold, a park, a blind
	// transfer. Not as the EXPECT lines: what came before the connection
	// (the blind transfer's first agent), callee is the number dialled, a
	// conference's members told as live ones meeting in the room.
	"sip-sidecar-connects-outbound-talking": {want: []string{
		"outbound caller=1000 callee=1010: answered(customer) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-sidecar-connects-in-ivr": {want: []string{
		"inbound caller=1010 callee=2160: ended(disposition=no_answer, hangup_by=caller)",
	}},
	"sip-sidecar-connects-in-voicemail": {want: []string{
		"inbound caller=1010 callee=2190: ended(disposition=no_answer, hangup_by=caller)",
	}},
	"sip-sidecar-connects-in-conference": {want: []string{
		"inbound caller=1010 callee=2180: answered(1000) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-blind-transfer-ringing": {want: []string{
		"inbound caller=1010 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-held-then-resumed": {captures: []string{"sip-link-lost-held-then-resumed-pre", "sip-link-lost-held-then-resumed-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-parked-then-retrieved": {captures: []string{"sip-link-lost-parked-then-retrieved-pre", "sip-link-lost-parked-then-retrieved-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-blind-transfer-ringing": {captures: []string{"sip-link-lost-blind-transfer-ringing-pre", "sip-link-lost-blind-transfer-ringing-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	// Eighteenth batch (testdata/sip/README-batch18.txt): the switch shut
	// down or killed during a consultation, a park, a hold, a ring group.
	"sip-fs-shutdown-during-att_xfer-consult": {captures: []string{"sip-fs-shutdown-during-att_xfer-consult-pre", "sip-fs-shutdown-during-att_xfer-consult-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-fs-kill-while-parked": {captures: []string{"sip-fs-kill-while-parked-pre", "sip-fs-kill-while-parked-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) ended(disposition=answered, hangup_by=system)",
	}},
	"sip-fs-shutdown-while-held": {captures: []string{"sip-fs-shutdown-while-held-pre", "sip-fs-shutdown-while-held-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held ended(disposition=answered, hangup_by=system)",
	}},
	"sip-fs-kill-while-ring-group-rings": {captures: []string{"sip-fs-kill-while-ring-group-rings-pre", "sip-fs-kill-while-ring-group-rings-post"}, want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1001) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	}},
	// Nineteenth batch (testdata/sip/README-batch19.txt): links lost while a
	// ring was intercepted, a ring group answered, an internal call
	// talked; connections opened during a callcenter call and a fifo wait:
	// every story as its EXPECT line (what came before the connect untold).
	"sip-link-lost-ringing-intercepted": {captures: []string{"sip-link-lost-ringing-intercepted-pre", "sip-link-lost-ringing-intercepted-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-ring-group-answered": {captures: []string{"sip-link-lost-ring-group-answered-pre", "sip-link-lost-ring-group-answered-post"}, want: []string{
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-internal-call": {captures: []string{"sip-link-lost-internal-call-pre", "sip-link-lost-internal-call-post"}, want: []string{
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)",
	}},
	"sip-sidecar-connects-callcenter-talking": {want: []string{
		"inbound caller=1010 callee=2120: answered(1001) transferred(blind, from 1001, to 1002) ringing(1002) answered(1002) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-sidecar-connects-fifo-waiting": {want: []string{
		"inbound caller=1010 callee=5900: queued answered(1000) ended(disposition=answered, hangup_by=caller)",
	}},
	// Twentieth batch (testdata/sip/README-batch20.txt): a click-to-call's
	// agent ringing at the connect, a consultation ringing then completed
	// while the link was down, a callcenter caller abandoning (seen, and
	// unseen: the call that ended meanwhile ends at the link's loss, by the
	// system, as every call whose end no connection saw).
	"sip-link-lost-att_xfer-ringing-completed": {captures: []string{"sip-link-lost-att_xfer-ringing-completed-pre", "sip-link-lost-att_xfer-ringing-completed-post"}, want: []string{
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	}},
	"sip-link-lost-callcenter-abandoned": {captures: []string{"sip-link-lost-callcenter-abandoned-pre", "sip-link-lost-callcenter-abandoned-post"}, want: []string{
		"inbound caller=1010 callee=2120: queued ringing(1001) ringing(1000) ring_ended(1001) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	}},
	"sip-sidecar-connects-originate-ringing": {want: []string{
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	}},
	"sip-sidecar-connects-callcenter-caller-abandons": {want: []string{
		"inbound caller=1010 callee=2120: queued abandoned ended(disposition=cancelled, hangup_by=caller)",
	}},
}

// sipSession plays one captured connection through tr into tk as the client
// does: events in Event-Sequence order (what the reorder window yields),
// and the first "show channels" answer as a snapshot, in its place in the
// stream (the client passes on what came before it, then the snapshot).
func sipSession(t testing.TB, tr *Translator, tk *bridge.Tracker, ck *modelCheck, name string, order func([]*Event) []*Event) {
	t.Helper()
	var pending []*Event
	flush := func() {
		for _, ce := range translateAll(tr, order(pending)) {
			tk.Handle(ce)
			ck.after(tk)
		}
		pending = nil
	}
	frames := sipFrames(t, name)
	var last time.Time // when the snapshot was taken: the switch's clock around it
	for _, f := range frames {
		if f.ContentType() == typeEventPlain && last.IsZero() {
			if e, err := parsePlainWanted(f.Body, wantedHeaders); err == nil {
				last = e.Time()
			}
		}
	}
	snapshotted := false
	for i, f := range frames {
		switch f.ContentType() {
		case typeEventPlain:
			e, err := parsePlainWanted(f.Body, wantedHeaders)
			if err != nil {
				t.Fatal(err)
			}
			if at := e.Time(); !at.IsZero() {
				last = at
			}
			pending = append(pending, e)
		case typeAPIResponse:
			body := string(f.Body)
			if snapshotted || !strings.Contains(body, "row_count") || strings.Contains(body, "reg_user") {
				continue // a later poll, or show registrations
			}
			snapshotted = true
			flush()
			// The client asks show calls right after show channels and
			// reads both before it applies the list.
			calls := ""
			for _, g := range frames[i+1:] {
				if g.ContentType() == typeAPIResponse {
					if strings.Contains(string(g.Body), "row_count") {
						calls = string(g.Body)
					}
					break
				}
			}
			live, err := SnapshotChannels(body, calls)
			if err != nil {
				t.Fatal(err)
			}
			tr.Resync(live)
			tk.Snapshot(live, last)
			ck.after(tk)
		}
	}
	flush()
}

func playFlow(t testing.TB, name string, flow sipFlow, order func([]*Event) []*Event) []string {
	return playFlowRestarting(t, name, flow, order, false)
}

// playFlowRestarting is playFlow; with restart, a new process (translator
// and tracker) takes over between captures from what the store kept.
func playFlowRestarting(t testing.TB, name string, flow sipFlow, order func([]*Event) []*Event, restart bool) []string {
	t.Helper()
	captures := flow.captures
	if captures == nil {
		captures = []string{name}
	}
	tr, tk := NewTranslator(""), sipTracker()
	ck := &modelCheck{}
	for i, c := range captures {
		if i > 0 && restart {
			var open []bridge.ConversationRecord
			for _, r := range ck.saved {
				if r.Open {
					open = append(open, r)
				}
			}
			tr, tk = NewTranslator(""), sipTracker()
			tk.Restore(open)
		}
		sipSession(t, tr, tk, ck, c, order)
	}
	for _, err := range ck.broken {
		t.Errorf("%s: %v", name, err)
	}
	if open := ck.stories.Open(); len(open) > 0 || len(tk.Live()) > 0 {
		t.Errorf("%s: calls never ended: %v", name, open)
	}
	return bridgetest.Stories(ck.events)
}

// modelCheck checks the call model's invariants after every event and the
// stories as they are emitted.
type modelCheck struct {
	stories bridge.StoryChecker
	events  []bridge.Event
	live    bridgetest.LiveView
	broken  []error
	// saved is each conversation's last record, as the store keeps it.
	saved map[string]bridge.ConversationRecord
}

func (c *modelCheck) after(tk *bridge.Tracker) {
	if err := tk.CheckInvariants(); err != nil {
		c.broken = append(c.broken, err)
	}
	evs, convs := tk.Drain()
	c.live.Apply(convs)
	if c.saved == nil {
		c.saved = map[string]bridge.ConversationRecord{}
	}
	for _, r := range convs {
		c.saved[r.Call.ID] = r
	}
	if err := c.live.Diff(tk.Live()); err != nil {
		c.broken = append(c.broken, err)
	}
	for _, e := range evs {
		if err := c.stories.Check(e); err != nil {
			c.broken = append(c.broken, err)
		}
	}
	c.events = append(c.events, evs...)
}

// checkStories compares a flow's stories with the wanted ones, or with the
// known tracker gap.
func checkStories(t *testing.T, flow sipFlow, got []string) {
	t.Helper()
	if slices.Equal(got, flow.want) {
		if flow.gap != nil {
			t.Logf("the tracker gap is closed: %s", flow.why)
		}
		return
	}
	if flow.gap != nil && slices.Equal(got, flow.gap) {
		t.Logf("tracker gap: %s", flow.why)
		return
	}
	t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(flow.want, "\n  "))
}

// TestSIPStories plays every real SIP capture through the Translator and a
// Tracker and compares the CRM's stories with the README's EXPECT lines.
func TestSIPStories(t *testing.T) {
	covered := map[string]bool{}
	for name, flow := range sipFlows {
		covered[name] = true
		for _, c := range flow.captures {
			covered[c] = true
		}
		t.Run(name, func(t *testing.T) {
			checkStories(t, flow, playFlow(t, name, flow, bySeq))
			// The client subscribes to the events the model needs only
			// (Subscription): those alone tell the same story.
			checkStories(t, flow, playFlow(t, name, flow, func(evs []*Event) []*Event { return bySeq(subscribed(evs)) }))
		})
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "sip"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".esl"); ok && !covered[name] {
			t.Errorf("%s: no wanted story", name)
		}
	}
}

// TestSIPStoriesReordered: FreeSWITCH fires events from several threads,
// so they may reach the socket out of Event-Sequence order (one channel's
// events come from its own session thread in order; another channel's may
// overtake them). Through the client's reorder buffer, events permuted
// within windows, and the subscribed events with neighbours of different
// channels swapped, tell the same stories. Without any buffer, neighbours
// in the full stream swapped do too (most are unrelated); among the
// subscribed events alone such a swap may reorder what really happened at
// once (a ring-all's loser cancelled and the winner bridged), which is what
// the buffer is for.
func TestSIPStoriesReordered(t *testing.T) {
	for name, flow := range sipFlows {
		t.Run(name, func(t *testing.T) {
			want := playFlow(t, name, flow, bySeq)
			wantSubscribed := playFlow(t, name, flow, func(evs []*Event) []*Event { return bySeq(subscribed(evs)) })
			for seed := range uint64(8) {
				windowed := func(evs []*Event) []*Event { return viaReorder(shuffle(evs, 6, seed)) }
				if got := playFlow(t, name, flow, windowed); !slices.Equal(got, want) {
					t.Fatalf("seed %d, reorder buffer: got\n  %s\nwant\n  %s", seed, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				// What the client gets: the subscribed events, neighbours
				// of different channels swapped on the wire, through its
				// reorder buffer.
				wire := func(evs []*Event) []*Event { return viaReorder(swapChannels(bySeq(subscribed(evs)), seed)) }
				if got := playFlow(t, name, flow, wire); !slices.Equal(got, wantSubscribed) {
					t.Fatalf("seed %d, subscribed, swapped, reorder buffer: got\n  %s\nwant\n  %s", seed, strings.Join(got, "\n  "), strings.Join(wantSubscribed, "\n  "))
				}
				// No buffer at all: among all the events, most neighbours
				// are unrelated, and the translator takes them in any order.
				// Two devices offered at once (a ring-all queue's agents)
				// may then pop in either order.
				swapped := func(evs []*Event) []*Event { return swapChannels(bySeq(evs), seed) }
				if got := playFlow(t, name, flow, swapped); !slices.Equal(ringsSorted(got), ringsSorted(want)) {
					t.Fatalf("seed %d, channels swapped: got\n  %s\nwant\n  %s", seed, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}

// TestSIPStoriesAcrossRestart plays the captures of one switch across a
// lost link (or its restart) again as if ctibridge itself was killed with
// the first connection and started again from its store: the CRM hears the
// same stories.
func TestSIPStoriesAcrossRestart(t *testing.T) {
	for name, flow := range sipFlows {
		if len(flow.captures) < 2 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			want := playFlow(t, name, flow, bySeq)
			if got := playFlowRestarting(t, name, flow, bySeq, true); !slices.Equal(got, want) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// TestSIPStoriesWireOrder plays each capture's subscribed events in the
// order the switch put them on the wire, with no reorder buffer at all
// (pbx.reorder_window: 0). The late events of real captures (teardown of
// another leg, one agent's leg created before another's, up to 19 ms late
// in the fixtures' timelines) leave every story as it is, but for the pop
// order of two devices offered at once.
func TestSIPStoriesWireOrder(t *testing.T) {
	for name, flow := range sipFlows {
		t.Run(name, func(t *testing.T) {
			want := playFlow(t, name, flow, bySeq)
			if got := playFlow(t, name, flow, subscribed); !slices.Equal(ringsSorted(got), ringsSorted(want)) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// viaReorder passes events arriving 100 µs apart, in the given order,
// through the client's reorder buffer (a window of 66 arrivals).
func viaReorder(evs []*Event) []*Event {
	r := newReorder(66 * 100 * time.Microsecond)
	t0 := time.Unix(0, 0)
	var out []*Event
	for i, e := range evs {
		now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		out = r.due(now, out)
		out = r.push(e, now, out)
	}
	return r.flush(out)
}

// swapChannels swaps adjacent events of different channels (or of no
// channel), each such pair with probability one half, no event twice.
// Only events the switch created close together can change places (an
// event overtakes one created before it whose thread has not fired it yet;
// the real inversions are all within one tick of its clock): two events
// stamped seconds apart, as a caller's hangup and its agent's in an
// att_xfer consultation that went on, never do.
func swapChannels(evs []*Event, seed uint64) []*Event {
	s := slices.Clone(evs)
	r := rand.New(rand.NewPCG(seed, 7))
	const together = 20 * time.Millisecond
	for i := 0; i+1 < len(s); i++ {
		apart := s[i+1].Time().Sub(s[i].Time())
		if s[i].Get("Unique-ID") != s[i+1].Get("Unique-ID") && apart.Abs() <= together && r.IntN(2) == 0 {
			s[i], s[i+1] = s[i+1], s[i]
			i++
		}
	}
	return s
}

// TestSIPRoutingIsNoTransfer replays the plain inbound call as if it had
// come in through the vanilla public context, which transfers every call
// to default before anything answers (and as click-to-call's "originate
// ... XML default" does to the agent's leg): the customer's leg carries the
// bl_xfer transfer_source from then on, up to its UNBRIDGE and hangup. That
// routing is no transfer of the call (live runs reported it at the hangup).
func TestSIPRoutingIsNoTransfer(t *testing.T) {
	const name = "sip-inbound-answer-customer-hangs-up"
	want := playFlow(t, name, sipFlows[name], bySeq)
	routed := func(evs []*Event) []*Event {
		evs = bySeq(evs)
		caller := evs[0].Get("Unique-ID") // the customer's CHANNEL_CREATE comes first
		out := make([]*Event, len(evs))
		for i, e := range evs {
			c := &Event{Headers: maps.Clone(e.Headers), Body: e.Body}
			if c.Get("Unique-ID") == caller && hasVars(c) && c.Get("Event-Name") != "CHANNEL_CREATE" {
				c.Headers["variable_transfer_source"] = "1796234224:" + caller + ":bl_xfer:2100/default/XML"
			}
			out[i] = c
		}
		return out
	}
	if got := playFlow(t, name, sipFlows[name], routed); !slices.Equal(got, want) {
		t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// subscribed keeps the events the client subscribes to (Subscription).
func subscribed(evs []*Event) []*Event {
	return slices.DeleteFunc(slices.Clone(evs), func(e *Event) bool {
		name := e.Get("Event-Name")
		if name == "CUSTOM" {
			name = e.Get("Event-Subclass")
		}
		return !slices.Contains(Subscription, name)
	})
}

// TestSIPCallerCancels derives the caller's CANCEL from the no-answer
// capture as sofia handles one: the caller's leg hangs up at once
// (ORIGINATOR_CANCEL, recv_cancel already set: its CHANNEL_HANGUP tells),
// then the switch cancels the ringing leg (ORIGINATOR_CANCEL). The caller
// gave up while an agent rang: cancelled, by the caller.
func TestSIPCallerCancels(t *testing.T) {
	const name = "sip-inbound-no-answer"
	cancelled := func(evs []*Event) []*Event {
		evs = bySeq(evs)
		caller := evs[0].Get("Unique-ID")
		var out []*Event
		var hangup *Event
		for _, e := range evs {
			c := &Event{Headers: maps.Clone(e.Headers), Body: e.Body}
			if c.Get("Hangup-Cause") != "" {
				c.Headers["Hangup-Cause"], c.Headers["variable_hangup_cause_q850"] = "ORIGINATOR_CANCEL", "487"
			}
			if c.Get("Unique-ID") == caller && c.Get("Hangup-Cause") != "" {
				c.Headers["variable_sip_hangup_disposition"] = "recv_cancel"
				if c.Get("Event-Name") == "CHANNEL_HANGUP" {
					hangup = c // moved to where the CANCEL arrived: before the agent's leg is cancelled
					continue
				}
			}
			out = append(out, c)
		}
		for i, e := range out {
			if e.Get("Hangup-Cause") != "" && hangup != nil {
				return slices.Insert(out, i, hangup)
			}
		}
		t.Fatal("no hangup in the capture")
		return nil
	}
	want := []string{"inbound caller=1010 callee=2101: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)"}
	for _, order := range []func([]*Event) []*Event{cancelled, func(evs []*Event) []*Event { return subscribed(cancelled(evs)) }} {
		if got := playFlow(t, name, sipFlows[name], order); !slices.Equal(got, want) {
			t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}

// ringsSorted sorts each run of adjacent ringing(...) items of stories, and
// each run of adjacent ring_ended(...): rings offered or ended at once.
func ringsSorted(stories []string) []string {
	out := make([]string, len(stories))
	for i, st := range stories {
		items := strings.Split(st, " ")
		for j := 0; j < len(items); {
			k := j
			for k < len(items) && strings.HasPrefix(items[k], "ringing(") {
				k++
			}
			if k == j {
				for k < len(items) && strings.HasPrefix(items[k], "ring_ended(") {
					k++
				}
			}
			slices.Sort(items[j:k])
			j = max(k, j+1)
		}
		out[i] = strings.Join(items, " ")
	}
	return out
}
