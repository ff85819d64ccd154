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
}

func TestCounterFlowsPlayed(t *testing.T) {
	for name, want := range counterStories {
		t.Run(name, func(t *testing.T) {
			for how, order := range playOrders() {
				got, broken := playDerived(t, "../counter/"+name, order)
				for _, b := range broken {
					t.Errorf("%s: %s", how, b)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got\n  %s\nwant\n  %s", how, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}
