package ami

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/bridge/bridgetest"
	"github.com/staskobzar/goami2"
)

// recordingSink runs a real Tracker on what the Mapper hands over and
// checks the model's invariants after every event.
type recordingSink struct {
	t       *bridge.Tracker
	events  []bridge.Event
	stories bridge.StoryChecker
	live    bridgetest.LiveView
	broken  []error
	// saved is each conversation's last record, as the store keeps it.
	saved map[string]bridge.ConversationRecord
}

func (s *recordingSink) LinkUp(int)     {}
func (s *recordingSink) LinkDown(error) {}
func (s *recordingSink) ChannelEvents(evs []bridge.ChannelEvent) {
	for _, ev := range evs {
		s.t.Handle(ev)
		if err := s.t.CheckInvariants(); err != nil {
			s.broken = append(s.broken, err)
		}
		s.drain()
	}
}
func (s *recordingSink) Snapshot(live []bridge.Channel, at time.Time) {
	s.t.Snapshot(live, at)
	s.drain()
}

func (s *recordingSink) drain() {
	out, convs := s.t.Drain()
	s.live.Apply(convs)
	if s.saved == nil {
		s.saved = map[string]bridge.ConversationRecord{}
	}
	for _, r := range convs {
		s.saved[r.Call.ID] = r
	}
	if err := s.live.Diff(s.t.Live()); err != nil {
		s.broken = append(s.broken, err)
	}
	for _, e := range out {
		if err := s.stories.Check(e); err != nil {
			s.broken = append(s.broken, err)
		}
	}
	s.events = append(s.events, out...)
}

// checkInvariants fails t with what the played events broke, and with the
// conversations a complete capture left open.
func (s *recordingSink) checkInvariants(t *testing.T, complete bool) {
	t.Helper()
	for _, err := range s.broken {
		t.Error(err)
	}
	if !complete {
		return
	}
	if open := s.stories.Open(); len(open) > 0 {
		t.Errorf("conversations never ended: %v", open)
	}
	if live := s.t.Live(); len(live) > 0 {
		t.Errorf("%d calls still live after the capture", len(live))
	}
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
	sink := &recordingSink{t: testTracker()}
	feed(t, sink, "amitest/captures/"+name+".ami")
	sink.checkInvariants(t, true)
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
		{"mixmonitor", []string{"recording.started", "call.ringing", "call.answered", "call.ended", "recording.ready"}},
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

// listRecorder is a ListSender that notes the list actions sent.
type listRecorder struct {
	mu      sync.Mutex
	actions []string
	sentOne chan struct{} // a token after each action (buffered: never blocks the sender)
}

func (l *listRecorder) SendList(_ context.Context, a *goami2.Message) (*goami2.Message, []*goami2.Message, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.actions = append(l.actions, a.Field("Action")+" "+a.Field("ActionID"))
	if l.sentOne != nil {
		l.sentOne <- struct{}{}
	}
	return nil, nil, nil
}

func (l *listRecorder) sent() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.actions...)
}

// Resync on request (after the engine dropped events) asks for both lists
// again (and the parked calls) under fresh ids, and the channel list it
// gets back is the snapshot.
func TestMapperResyncOnRequest(t *testing.T) {
	rec := &listRecorder{sentOne: make(chan struct{}, 64)}
	sink := &snapshotSink{}
	m := NewMapper(context.Background(), sink, rec, nil)
	m.Connected(ConnInfo{Session: 1})
	m.Resync()
	want := strings.Split("CoreShowChannels ctib-resync-1,QueueStatus ctib-queues-1,ParkedCalls ctib-parked-1,CoreShowChannels ctib-resync-2,QueueStatus ctib-queues-2,ParkedCalls ctib-parked-2", ",")
	slices.Sort(want)
	// The lists go out from the mapper's own goroutines: wait for as many
	// actions as wanted (go test's -timeout bounds a hang), then compare.
	for range want {
		<-rec.sentOne
	}
	if got := rec.sent(); !slices.Equal(sorted(got), want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	// Only the latest resync's answer counts.
	for _, raw := range []string{
		"Event: CoreShowChannel\r\nActionID: ctib-resync-1\r\nChannel: PJSIP/old-1\r\nUniqueid: 1.1\r\n\r\n",
		"Event: CoreShowChannel\r\nActionID: ctib-resync-2\r\nChannel: PJSIP/100-1\r\nUniqueid: 2.1\r\n\r\n",
		"Event: CoreShowChannelsComplete\r\nActionID: ctib-resync-2\r\nEventList: Complete\r\nListItems: 1\r\n\r\n",
	} {
		msg, err := goami2.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		m.Message(msg)
	}
	if len(sink.snaps) != 1 || len(sink.snaps[0]) != 1 || sink.snaps[0][0].ID != "2.1" {
		t.Fatalf("snapshots %+v", sink.snaps)
	}
}

type snapshotSink struct{ snaps [][]bridge.Channel }

func (s *snapshotSink) LinkUp(int)                          {}
func (s *snapshotSink) LinkDown(error)                      {}
func (s *snapshotSink) ChannelEvents([]bridge.ChannelEvent) {}
func (s *snapshotSink) Snapshot(live []bridge.Channel, _ time.Time) {
	s.snaps = append(s.snaps, live)
}

// A BlindTransfer whose Result is not Success moved nothing (stasis_bridges.c
// reports Fail, Invalid and Not Permitted too): the model must not hear it.
func TestMapperDropsFailedBlindTransfers(t *testing.T) {
	for _, result := range []string{"Fail", "Invalid", "Not Permitted", "Success"} {
		m := &Mapper{}
		frame := "Event: BlindTransfer\r\nPrivilege: call,all\r\nTimestamp: 1796320054.195870\r\nResult: " + result +
			"\r\nTransfererChannel: PJSIP/100-00000001\r\nTransfererUniqueid: 1796320040.1\r\nTransfereeChannel: PJSIP/trunk-00000000\r\n" +
			"TransfereeUniqueid: 1796320040.0\r\nIsExternal: No\r\nContext: from-internal\r\nExtension: 101\r\n\r\n"
		msg, err := goami2.Parse(frame)
		if err != nil {
			t.Fatal(err)
		}
		ev, ok := m.translate("BlindTransfer", msg, time.Unix(1796320054, 0))
		if want := result == "Success"; ok != want {
			t.Errorf("Result %s: translated = %v, want %v", result, ok, want)
		}
		if ok && (ev.Kind != bridge.ChanTransfer || ev.Exten != "101") {
			t.Errorf("Result %s: %+v", result, ev)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// scriptedLists answers each list action with the next scripted response
// (nil: none) and tells done after each.
type scriptedLists struct {
	answers []string
	done    chan string
}

func (s *scriptedLists) SendList(_ context.Context, a *goami2.Message) (*goami2.Message, []*goami2.Message, error) {
	defer func() { s.done <- a.Field("Action") }()
	if a.Field("Action") != "CoreShowChannels" || len(s.answers) == 0 {
		return nil, nil, nil
	}
	raw := s.answers[0]
	s.answers = s.answers[1:]
	if raw == "" {
		return nil, nil, nil
	}
	msg, err := goami2.Parse(raw)
	return msg, nil, err
}

// A channel list the PBX refused, cut short, or never ended releases no
// call: the model would end live calls with resynced: true. A refusal is
// said, with the way out.
func TestMapperResyncListNotTrusted(t *testing.T) {
	feed := func(m *Mapper, frames ...string) {
		t.Helper()
		for _, raw := range frames {
			msg, err := goami2.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			m.Message(msg)
		}
	}
	item := func(n int) string {
		return fmt.Sprintf("Event: CoreShowChannel\r\nActionID: ctib-resync-1\r\nChannel: PJSIP/100-%d\r\nUniqueid: 2.%d\r\n\r\n", n, n)
	}
	complete := func(n int) string {
		return fmt.Sprintf("Event: CoreShowChannelsComplete\r\nActionID: ctib-resync-1\r\nEventList: Complete\r\nListItems: %d\r\n\r\n", n)
	}
	start := func(answer string) (*Mapper, *snapshotSink, *syncWriter) {
		logs := &syncWriter{w: &strings.Builder{}}
		sender := &scriptedLists{answers: []string{answer}, done: make(chan string, 8)}
		sink := &snapshotSink{}
		m := NewMapper(context.Background(), sink, sender, slog.New(slog.NewTextHandler(logs, nil)))
		m.Connected(ConnInfo{Session: 1})
		// CoreShowChannels, QueueStatus, ParkedCalls: the first one's
		// outcome is logged before the second goes.
		for range 3 {
			<-sender.done
		}
		return m, sink, logs
	}

	m, sink, logs := start("Response: Error\r\nActionID: ctib-resync-1\r\nMessage: Permission denied\r\n\r\n")
	feed(m, item(1), complete(1)) // what comes after a refusal is not ours
	if len(sink.snaps) != 0 {
		t.Fatalf("refused list taken: %+v", sink.snaps)
	}
	if !strings.Contains(logs.String(), "Permission denied") || !strings.Contains(logs.String(), "needs reporting") {
		t.Fatalf("the refusal was not said with the way out: %s", logs)
	}

	m, sink, logs = start("")
	feed(m, item(1), complete(2)) // Asterisk sent two; one arrived
	if len(sink.snaps) != 0 || !strings.Contains(logs.String(), "not trusted") {
		t.Fatalf("a list short of its ListItems taken: %+v; log %s", sink.snaps, logs)
	}

	m, sink, _ = start("")
	feed(m, item(1), item(2), complete(2))
	if len(sink.snaps) != 1 || len(sink.snaps[0]) != 2 {
		t.Fatalf("a whole list: %+v", sink.snaps)
	}

	defer func(n int) { maxListItems = n }(maxListItems)
	maxListItems = 3
	m, sink, logs = start("")
	feed(m, item(1), item(2), item(3), item(4), complete(4))
	if len(sink.snaps) != 0 || !strings.Contains(logs.String(), "over the limit") {
		t.Fatalf("a list over the limit taken: %+v; log %s", sink.snaps, logs)
	}
}

// syncWriter serialises writes: the mapper logs from its own goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
