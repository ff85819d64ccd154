package ami

import (
	"os"
	"strings"
	"testing"
)

// counterStories are the stories of testdata/counter: flows written to
// break the rules the derived flows of the sixth and seventh reviews and the
// FreePBX review brought in (testdata/counter/README.txt says how each was
// made): each must tell what a CRM should hear.
var counterStories = map[string][]string{
	// Queue 400 rings two Local members whose extensions both have Follow
	// Me: 100's mobile (FMGL dialled with FMPR-100) answers as 100, not as
	// the first FMPR leg of the call (101's).
	"freepbx-queue-two-followme-members-100s-mobile-answers": {"inbound caller=5551234 callee=2125551000: queued ringing(101) ringing(100) answered(100) ring_ended(101) ended(disposition=answered, hangup_by=callee)"},
	// 100's Follow Me list holds colleague 101 (FMGL-101): 101's phone
	// answers as 101; the FMGL leg's answer after it is no second answer.
	"freepbx-followme-list-includes-colleague-101-answers": {"inbound caller=5551234 callee=2125551000: ringing(100) ringing(101) answered(101) ring_ended(100) ended(disposition=answered, hangup_by=caller)"},
	// Guards (sound): the ;2's Dial published before the queue's
	// AgentCalled; a Local member ringing a mobile through the trunk.
	"queue-local-n-member-dials-before-agentcalled":   {"inbound caller=5551234 callee=301: queued ringing(100) answered(100) ended(disposition=answered, hangup_by=caller)"},
	"queue-local-n-member-rings-mobile-through-trunk": {"inbound caller=5551234 callee=301: queued ringing(100) answered(100) ended(disposition=answered, hangup_by=caller)"},
	// 100 refuses, the dialplan forwards to a mobile, the customer gives up
	// while it rings: the customer hung up (as before 929b09c).
	"busy-then-forward-to-mobile-caller-hangs-up": {"inbound caller=5551234 callee=200: ringing(100) ring_ended(100) ended(disposition=busy, hangup_by=caller)"},
}

func TestCounterFlows(t *testing.T) {
	entries, err := os.ReadDir("testdata/counter")
	if err != nil {
		t.Fatal(err)
	}
	played := 0
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".ami")
		if !ok {
			continue
		}
		played++
		t.Run(name, func(t *testing.T) {
			sink := &recordingSink{t: sipTracker()}
			feedSessions(t, sink, "testdata/counter/"+name+".ami")
			sink.checkInvariants(t, true)
			sameStories(t, sink.events, counterStories, name) // fails for a flow with no wanted story
		})
	}
	if played != len(counterStories) {
		t.Errorf("%d flows played, %d stories wanted", played, len(counterStories))
	}
}
