package ami

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// recordingSink runs a real Tracker on what the Mapper hands over.
type recordingSink struct {
	t      *bridge.Tracker
	events []bridge.Event
}

func (s *recordingSink) LinkUp(int)     {}
func (s *recordingSink) LinkDown(error) {}
func (s *recordingSink) ChannelEvents(evs []bridge.ChannelEvent) {
	for _, ev := range evs {
		s.t.Handle(ev)
	}
	out, _ := s.t.Drain()
	s.events = append(s.events, out...)
}
func (s *recordingSink) Snapshot(live []bridge.Channel, at time.Time) {
	s.t.Snapshot(live, at)
	out, _ := s.t.Drain()
	s.events = append(s.events, out...)
}

func testTracker() *bridge.Tracker {
	return bridge.NewTracker(bridge.TrackerConfig{
		PBX:             "pbx1",
		AgentPattern:    regexp.MustCompile(`^[0-9]{2,6}$`),
		InboundContexts: []string{"inbound", "from-trunk"},
	})
}

// replay feeds a capture's frames, as parsed by goami2, through a Mapper.
func replay(t *testing.T, name string) []bridge.Event {
	t.Helper()
	raw, err := os.ReadFile("amitest/captures/" + name + ".ami")
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{t: testTracker()}
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
	return sink.events
}

func types(evs []bridge.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type != bridge.EventAgentState {
			out = append(out, e.Type)
		}
	}
	return out
}

func TestMapperCaptures(t *testing.T) {
	cases := []struct {
		capture string
		want    []string
	}{
		{"inbound-call-basic", []string{"call.ringing", "call.answered", "call.ended"}},
		{"queue-call", []string{"call.queued", "call.ringing", "call.answered", "call.ended"}},
		{"blind-transfer", []string{"call.ringing", "call.answered", "call.transferred", "call.ended"}},
		{"mixmonitor", []string{"recording.started", "call.ringing", "call.answered", "recording.ready", "call.ended"}},
		{"mixmonitor-action", []string{"call.ringing", "call.answered", "recording.started", "recording.ready", "call.ended"}},
		{"musiconhold", []string{"call.ended"}},
		{"originate-busy", []string{"call.ended"}},
		{"hangup-action", []string{"call.ringing", "call.answered", "call.ended"}},
		{"coreshowchannels", []string{"call.ringing", "call.answered", "call.ended"}},
		{"originate-exten", []string{"call.ended"}},
	}
	for _, tc := range cases {
		t.Run(tc.capture, func(t *testing.T) {
			evs := replay(t, tc.capture)
			got := types(evs)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				for _, e := range evs {
					t.Logf("%s seq=%d conv=%s agent=%+v call=%+v", e.Type, e.Sequence, e.ConversationID, e.Agent, e.Call)
				}
				t.Fatalf("types = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDumpCaptures(t *testing.T) {
	for _, c := range []string{"inbound-call-basic", "queue-call", "blind-transfer", "mixmonitor", "originate-busy", "hangup-action"} {
		for _, e := range replay(t, c) {
			b, _ := json.Marshal(e)
			t.Logf("%s: %s", c, b)
		}
	}
}
