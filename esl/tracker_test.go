package esl

import (
	"slices"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// TestTrackerOutcome runs each capture's translation through the call
// model: the contract that matters is what a CRM would see.
func TestTrackerOutcome(t *testing.T) {
	want := map[string][]string{
		"basic-call-plain":  {"call.ringing 1000", "call.answered 1000", "call.ended"},
		"basic-call-json":   {"call.ringing 1000", "call.answered 1000", "call.ended"},
		"blind-transfer":    {"call.ringing 1100", "call.answered 1100", "call.transferred", "call.ended"},
		"record":            {"call.ringing 1100", "call.answered 1100", "recording.started", "recording.ready", "call.ended"},
		"hold-loopback":     {"call.ringing 1100", "call.answered 1100", "call.held", "call.ended"},
		"kill":              {"call.ringing 1100", "call.answered 1100", "call.ended"},
		"originate-failure": {"call.ended", "call.ended"}, // two calls to a missing extension
		"callcenter": {"agent.state", "call.queued", "agent.state", "call.ringing 1000", "call.answered 1000",
			"call.ended", "agent.state"},
	}
	for name, want := range want {
		t.Run(name, func(t *testing.T) {
			tr := bridge.NewTracker(bridge.TrackerConfig{PBX: "fs"})
			for _, ce := range translateAll(NewTranslator(""), bySeq(captureEvents(t, name))) {
				tr.Handle(ce)
			}
			evs, _ := tr.Drain()
			var got []string
			convs := map[string]bool{}
			for _, e := range evs {
				s := e.Type
				// How agent.state names a mod_callcenter agent is the model's
				// business; which extension rings is the translation's.
				if e.Agent != nil && (e.Type == "call.ringing" || e.Type == "call.answered") {
					s += " " + e.Agent.Extension
				}
				got = append(got, s)
				if e.ConversationID != "" {
					convs[e.ConversationID] = true
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
			if n := len(convs); n != 1 && name != "originate-failure" {
				t.Fatalf("%d conversations", n)
			}
		})
	}
}
