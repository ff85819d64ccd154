package esl

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/bridge/bridgetest"
)

// Counter-flows (testdata/counter) for the rules the sixth review brought
// in, played with the default agent pattern of config.go (^[0-9]{2,6}$).
func TestCounterFlows(t *testing.T) {
	flows := map[string]string{
		// 1000 dials 9123456, a 6-digit local number, through gw1: the
		// outside party is the customer, not an agent "123456".
		"outbound-gateway-short-number-answered": "outbound caller=1000 callee=9123456: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	}
	for name, want := range flows {
		t.Run(name, func(t *testing.T) {
			tr := NewTranslator("")
			tk := bridge.NewTracker(bridge.TrackerConfig{PBX: "pbx1", AgentPattern: regexp.MustCompile(`^[0-9]{2,6}$`), InboundContexts: []string{"public"}})
			var evs []bridge.Event
			for _, seg := range derivedSegments(t, "../counter/"+name) {
				for _, ce := range translateAll(tr, seg.events) {
					tk.Handle(ce)
					out, _ := tk.Drain()
					evs = append(evs, out...)
				}
			}
			got := strings.Join(bridgetest.Stories(evs), "\n")
			t.Logf("GOT  %s", got)
			if got != want {
				t.Errorf("want %s", want)
			}
		})
	}
}

// A click-to-call whose only carrier refuses while the agent's leg stays
// up: the same story whether or not the link drops while the carrier
// leg's end is held (failedDials) for the agent's next event.
func TestHeldFailedDialAcrossResync(t *testing.T) {
	id := func(evs []*Event) []*Event { return evs }
	want, broken := playDerived(t, "../counter/click-to-call-gateway-fails-agent-stays", id)
	if len(broken) > 0 || !strings.Contains(strings.Join(want, ""), "failed ended(disposition=failed") {
		t.Fatalf("no link loss: %q, broken %q", want, broken)
	}
	got, broken := playDerived(t, "../counter/click-to-call-gateway-fails-agent-stays-link-lost", id)
	if len(broken) > 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the link's loss changed the story: %q, broken %q; want %q", got, broken, want)
	}
}

// counterStories: counter-flows (testdata/counter) for the fifth review's
// rules, played as the derived flows are (playDerived, sipTracker: agents
// 1000-1009), in Event-Sequence order and with neighbouring events of
// different channels swapped through the reorder buffer.
var counterStories = map[string][]string{
	// The switch calls the customer first ({origination_caller_id_number=
	// +4930999000}sofia/gateway/gw1/+4930123456 &bridge(user/1000)) and the
	// carrier answers the INVITE with a final error: nobody answered, 1000
	// never rang.
	"callback-customer-first-refused-486": {
		// The customer's phone is busy: the callee refused.
		"outbound caller=+4930999000 callee=+4930123456: ended(disposition=busy, hangup_by=callee)",
	},
	"callback-customer-first-refused-404": {
		// The carrier has no such number: the network's refusal (README: a carrier
		// refusing a number is the network's = system), as click-to-call-xml-carrier-invalid-number.
		"outbound caller=+4930999000 callee=+4930123456: ended(disposition=failed, hangup_by=system)",
	},
	"callback-customer-first-refused-503": {
		// The carrier is unavailable: the network's, as outbound-gateway-503-no-failover.
		"outbound caller=+4930999000 callee=+4930123456: ended(disposition=failed, hangup_by=system)",
	},
	// Supervisor 1002 intercepts (intercept -bleg) the customer's call with 1000
	// while the ESL link is down: live this is a takeover, answered(1002), no
	// transfer (intercept-bleg-supervisor-takes-over); the link's loss must not
	// turn it into one (rule 4 invents no transfer for a party that took the call).
	"link-lost-intercept-supervisor-takes-over": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	// 1000 dials out through gw1; the customer's line rings (183) and nobody answers;
	// the carrier's own no-answer timer answers the INVITE 408 (RECOVERY_ON_TIMER_EXPIRE,
	// as sofia-sip's own 408): the customer was reached and did not answer, so no_answer
	// (as outbound-gateway-early-media-noanswer, where the switch's timer gave up), not
	// failed (outbound-gateway-no-response-timeout, where nothing answered the INVITE);
	// the network's timer ended it: system.
	"outbound-gateway-carrier-408-after-ringing": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=no_answer, hangup_by=system)",
	},
	// click-to-call-carrier-failover with gw1 refusing 404 (UNALLOCATED_NUMBER, a
	// network cause) instead of 503: gw2 is tried and the customer answers; the
	// first carrier's refusal must not make the answered call the network's.
	"click-to-call-carrier-404-failover-second-answers": {
		"outbound caller=1000 callee=+4930123456: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)",
	},
	// A predictive dialler: originate {origination_caller_id_number=+4930999000}
	// sofia/gateway/gw1/+4930123456 &park(); once the customer answers, originate
	// user/1000 &park() and uuid_bridge the two; the customer hangs up. The customer's
	// call is the switch's outbound call to +4930123456, its agent 1000 (as
	// conference-agent-bgdial-customer); 1000's own parked leg tells what
	// uuid-bridge-parked-customer-to-agent-customer-first tells of it.
	"dialler-customer-first-park-uuid-bridge-agent": {
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=+4930999000 callee=+4930123456: answered(1000) ended(disposition=answered, hangup_by=callee)",
	},
	// Never-ends review (testdata/counter/gen_neverend.py): identity changes and odd
	// orders. 1000 answers 1010's call to 2100 and hangs up: the b-leg's own thread ends
	// it (HANGUP_COMPLETE, DESTROY) before the customer's bridge loop fires
	// CHANNEL_UNBRIDGE and hangup_after_bridge hangs the customer up: the agent hung up.
	"agent-hangs-up-hangup-complete-before-unbridge": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	// The customer hangs up (CHANNEL_HANGUP seen) and the link is lost before any
	// HANGUP_COMPLETE; the resync finds no channel: the call ended, as the customer's
	// hangup said.
	"link-lost-after-customer-hangup-before-complete": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	// 1000 hangs up (CHANNEL_HANGUP seen), the link is lost; the resync lists the
	// customer's leg alone, which the switch then hangs up (hangup_after_bridge): the
	// agent hung up first.
	"link-lost-after-agent-hangup-customer-still-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	// ctibridge connects while 1010 talks to 1000 (show channels / show calls list
	// both legs bridged), then 1000 hangs up and the switch hangs the customer up.
	"sidecar-connects-answered-call-agent-hangs-up": {
		"inbound caller=1010 callee=2100: answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	// uuid_transfer of 1010's leg to the ring group 2110 while 1000 still rings:
	// switch_ivr_originate cancels 1000's leg (ORIGINATOR_CANCEL); 1001 and 1002 ring,
	// 1002 answers, the customer hangs up. Nobody had answered: no agent transferred
	// anything (as sofia-302-forward-local, a redirect while ringing).
	"uuid-transfer-customer-while-agent-rings-to-ring-group": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ringing(1001) ringing(1002) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	// The CRM joins two answered calls' customers (uuid_bridge 1010's leg 1011's leg):
	// both agents' legs are hung up by the switch (NORMAL_CLEARING, send_bye), the
	// customers talk, 1010 hangs up and the switch hangs 1011 up. Each call goes on
	// while its customer does and ends once: 1010's by its caller, 1011's by the switch
	// (nobody of 1011's call asked: the switch released 1001, then 1011).
	"uuid-bridge-two-answered-calls-customers-joined": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"inbound caller=1011 callee=2100: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=system)",
	},
	// 1000 answers and hangs up at once: its HANGUP_COMPLETE comes before the
	// customer's CHANNEL_ANSWER; nothing is bridged and the switch hangs the customer
	// up (hangup_after_bridge): the agent answered and hung up.
	"agent-answers-and-hangs-up-before-customer-answered": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	// uuid_transfer <1010's leg> -both 3000: both legs leave the bridge for the
	// dialplan and meet in the conference 3000; 1010 leaves (BYE), then 1000 (BYE).
	// 1000 went along with the customer: nobody handed the call on, no transfer.
	"uuid-transfer-both-legs-to-conference-customer-leaves-first": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	// 1010 cancels while 1000 rings (the capture sip-caller-cancels-while-ringing) and
	// the link is lost right after its CHANNEL_HANGUP; the resync finds nothing: the
	// caller cancelled, 1000's ring ended, no screen pop left open.
	"link-lost-customer-cancels-while-ringing": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	},
}

// counterGaps are counter-flows whose wanted story the model does not tell
// yet: the story it tells today and why (as derivedGaps).
var counterGaps = map[string]struct {
	story []string
	why   string
}{
	"uuid-transfer-both-legs-to-conference-customer-leaves-first": {
		story: []string{"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 3000) ended(disposition=answered, hangup_by=caller)"},
		why: "follow() emits the blind transfer on the customer's UNBRIDGE (bl_xfer:3000); that the agent's leg was moved " +
			"to the same place by the same uuid_transfer -both shows only on the agent's next event, so telling it needs " +
			"the transfer held until the partner's next event",
	},
}

func TestCounterFlowsPlayed(t *testing.T) {
	for name, want := range counterStories {
		t.Run(name, func(t *testing.T) {
			for how, order := range playOrders() {
				got, broken := playDerived(t, "../counter/"+name, order)
				for _, b := range broken {
					t.Errorf("%s: %s", how, b)
				}
				if gap, ok := counterGaps[name]; ok && slices.Equal(got, gap.story) {
					t.Logf("%s: known gap: %s", how, gap.why)
					continue
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got\n  %s\nwant\n  %s", how, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}
