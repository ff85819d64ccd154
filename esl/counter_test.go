package esl

import (
	"regexp"
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
