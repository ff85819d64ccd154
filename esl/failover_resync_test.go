package esl

import (
	"strings"
	"testing"
)

// The ESL link drops while a click-to-call's '|' carrier list
// fails over: gw1 refused (its failed dial held for the dialler's next
// event), gw2 already rings when the resync lists the channels, then
// answers. The held gw1 failure went out before the snapshot: call.failed
// and disposition=failed for a call the customer answered.
func TestFailoverLinkLostSecondRings(t *testing.T) {
	stories, broken := playDerived(t, "../counter/click-to-call-carrier-failover-link-lost-second-rings", func(e []*Event) []*Event { return e })
	for _, s := range stories {
		t.Logf("GOT %s", s)
	}
	for _, b := range broken {
		t.Logf("BROKEN %s", b)
	}
	// gw2's answer itself is not seen across the adoption (an older limit:
	// the story ends no_answer), but the call is one, it ends, and it did
	// not fail.
	if len(stories) != 1 || !strings.Contains(stories[0], "ended(") || strings.Contains(stories[0], "failed") {
		t.Errorf("gw2 answered: one call, ended, no call.failed, no disposition=failed; got %q", stories)
	}
}
