package ami

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/bridge/bridgetest"
	"github.com/staskobzar/goami2"
)

// sipTracker is configured as a PBX admin would for the SIP captures: the
// default agent pattern and inbound contexts.
func sipTracker() *bridge.Tracker {
	return bridge.NewTracker(bridge.TrackerConfig{
		PBX:             "pbx1",
		AgentPattern:    regexp.MustCompile(`^[0-9]{2,6}$`),
		InboundContexts: []string{"from-trunk", "from-pstn", "inbound", "public"},
	})
}

// playSIP feeds a capture of testdata/sip through a Mapper into sink.
func playSIP(t *testing.T, sink *recordingSink, name string) {
	t.Helper()
	feed(t, sink, "testdata/sip/"+name+".ami")
}

// feed plays a capture file's frames, parsed by goami2, through a new
// Mapper into sink.
func feed(t *testing.T, sink *recordingSink, path string) {
	t.Helper()
	m := NewMapper(context.Background(), sink, nil, nil)
	for _, frame := range frames(t, strings.TrimSuffix(path, ".ami")) {
		msg, err := goami2.Parse(frame)
		if err != nil {
			t.Fatalf("%s: parse %q: %v", path, frame, err)
		}
		m.Message(msg)
	}
}

// sipStories are the stories a CRM must get from each real SIP capture
// (testdata/sip/README.txt states what was done and the EXPECT lines).
//
// One deliberate difference: sip-inbound-busy's EXPECT says hangup_by=callee;
// on an inbound call the callee who refused is the agent, and the
// FreeSWITCH folder's same flow says agent, so both PBXs say agent.
var sipStories = map[string][]string{
	"sip-inbound-answer-customer-hangs-up": {"inbound caller=5551234 callee=200: ringing(100) answered(100) ended(disposition=answered, hangup_by=caller)"},
	"sip-inbound-busy":                     {"inbound caller=5551234 callee=200: ringing(100) ring_ended(100) ended(disposition=busy, hangup_by=agent)"},
	"sip-inbound-no-answer":                {"inbound caller=5551234 callee=201: ringing(103) ring_ended(103) ended(disposition=no_answer, hangup_by=system)"},
	"sip-ring-group":                       {"inbound caller=5551234 callee=202: ringing(100) ringing(101) ring_ended(100) answered(101) ended(disposition=answered, hangup_by=caller)"},
	"sip-queue-ringall":                    {"inbound caller=5551234 callee=300: queued ringing(100) ringing(101) ring_ended(101) answered(100) ended(disposition=answered, hangup_by=caller)"},
	"sip-queue-abandon":                    {"inbound caller=5551234 callee=302: queued ringing(103) ring_ended(103) abandoned ended(disposition=cancelled, hangup_by=caller)"},
	"sip-blind-transfer-phone":             {"inbound caller=5551234 callee=200: ringing(100) answered(100) transferred(blind, from 100, to 101) ringing(101) answered(101) ended(disposition=answered, hangup_by=caller)"},
	"sip-attended-transfer-ami":            {"inbound caller=5551234 callee=200: ringing(100) answered(100) held ringing(101) answered(101) transferred(attended, from 100, to 101) ended(disposition=answered, hangup_by=caller)"},
	"sip-hold-phone":                       {"inbound caller=5551234 callee=200: ringing(100) answered(100) held resumed ended(disposition=answered, hangup_by=caller)"},
	"sip-park-retrieve":                    {"inbound caller=5551234 callee=200: ringing(100) answered(100) transferred(blind, from 100, to 700) held(parked 701) answered(101) ended(disposition=answered, hangup_by=caller)"},
	"sip-pickup":                           {"inbound caller=5551234 callee=200: ringing(100) ring_ended(100) answered(101) ended(disposition=answered, hangup_by=caller)"},
	"sip-outbound-trunk":                   {"outbound caller=100 callee=5551234: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)"},
	"sip-internal-call":                    {"internal caller=100 callee=101: ringing(101) answered(101) ended(disposition=answered, hangup_by=caller)"},
	"sip-click-to-call-originate":          {"outbound caller=100 callee=5551234: ringing(100) answered(100) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)"},
	"sip-mixmonitor-dialplan":              {"inbound caller=5551234 callee=204: recording_started ringing(100) answered(100) ended(disposition=answered, hangup_by=caller) recording_ready"},
	"sip-ivr-only":                         {"inbound caller=5551234 callee=205: ended(disposition=no_answer, hangup_by=caller)"},
	"sip-voicemail-record":                 {"inbound caller=5551234 callee=206: ringing(103) ring_ended(103) ended(disposition=no_answer, hangup_by=caller)"},
	"sip-ten-concurrent-calls": {"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=5551234 callee=210: ended(disposition=no_answer, hangup_by=system)"},
	"sip-pbx-restart-midcall-pre":  {"inbound caller=5551234 callee=200: ringing(100) answered(100) ended(disposition=answered, hangup_by=system)"},
	"sip-pbx-restart-midcall-post": nil,
}

func TestSIPStories(t *testing.T) {
	entries, err := os.ReadDir("testdata/sip")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".ami")
		if !ok || strings.HasSuffix(name, ".sent") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			sink := &recordingSink{t: sipTracker()}
			playSIP(t, sink, name)
			sink.checkInvariants(t, true)
			for _, bad := range bridgetest.AnsweredWithRingCause(sink.events) {
				t.Error(bad)
			}
			got := bridgetest.Stories(sink.events)
			for _, s := range got {
				t.Logf("GOT  %s", s)
			}
			want, ok := sipStories[name]
			if !ok {
				t.Fatalf("capture %s has no story in sipStories", name)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("want\n%s", strings.Join(want, "\n"))
			}
		})
	}
}
