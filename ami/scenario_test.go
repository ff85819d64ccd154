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
	raw, err := os.ReadFile("testdata/sip/" + name + ".ami")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMapper(context.Background(), sink, nil, nil)
	body := string(raw)
	if i := strings.Index(body, "\r\n"); strings.HasPrefix(body, "Asterisk Call Manager/") {
		body = body[i+2:]
	}
	for _, frame := range strings.SplitAfter(body, "\r\n\r\n") {
		if strings.TrimSpace(frame) == "" {
			continue
		}
		msg, err := goami2.Parse(frame)
		if err != nil {
			t.Fatalf("%s: parse %q: %v", name, frame, err)
		}
		m.Message(msg)
	}
}

// sipStories are the stories a CRM must get from each real SIP capture
// (testdata/sip/README.txt states what was done and the EXPECT lines).
var sipStories = map[string][]string{
	"sip-inbound-answer-customer-hangs-up": {"inbound caller=5551234 callee=200: ringing(100) answered(100) ended(disposition=answered, hangup_by=caller)"},
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
			got := bridgetest.Stories(sink.events)
			for _, s := range got {
				t.Logf("GOT  %s", s)
			}
			want, ok := sipStories[name]
			if !ok {
				t.Skip("no story yet")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("want\n%s", strings.Join(want, "\n"))
			}
		})
	}
}
