package esl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// recSink records what a Client tells it. With gate set, ChannelEvents
// blocks until the gate is closed.
type recSink struct {
	mu      sync.Mutex
	calls   []string // "up", "snapshot", "events", "down", in order
	evs     []bridge.ChannelEvent
	ups     []int
	downs   []error
	snaps   [][]bridge.Channel
	gate    chan struct{}
	entered atomic.Int64 // ChannelEvents calls begun
	changed chan struct{}
}

func newSink() *recSink { return &recSink{changed: make(chan struct{}, 1)} }

func (s *recSink) note(call string) {
	s.calls = append(s.calls, call)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *recSink) LinkUp(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ups = append(s.ups, n)
	s.note("up")
}

func (s *recSink) LinkDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downs = append(s.downs, err)
	s.note("down")
}

func (s *recSink) Snapshot(live []bridge.Channel, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snaps = append(s.snaps, live)
	s.note("snapshot")
}

func (s *recSink) ChannelEvents(evs []bridge.ChannelEvent) {
	s.entered.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	s.note("events")
}

// wait waits until cond holds (checked under the lock).
func (s *recSink) wait(t *testing.T, what string, cond func(s *recSink) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ok := cond(s)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("timed out waiting for %s; calls %v, downs %v", what, s.calls, s.downs)
		}
	}
}

func (s *recSink) events() []bridge.ChannelEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

type harness struct {
	sim    *esltest.Server
	client *esl.Client
	sink   *recSink
	cancel context.CancelFunc
	done   chan error
	logs   *bytes.Buffer
}

// start runs a simulator and a Client on it, and waits for the first
// resync.
func start(t *testing.T, cfg esl.Config, opts esltest.Options) *harness {
	t.Helper()
	sim, err := esltest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	h := &harness{sim: sim, sink: newSink(), done: make(chan error, 1), logs: &bytes.Buffer{}}
	cfg.Address = sim.Addr()
	if cfg.ReorderWindow == 0 {
		// Wider than the 30 ms default: a loaded test machine may stall
		// the reader between two frames of a burst.
		cfg.ReorderWindow = 100 * time.Millisecond
	}
	if cfg.Password == "" {
		cfg.Password = "ClueCon"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, nil))
	h.client = esl.New(cfg, h.sink)
	return h
}

func (h *harness) run(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})
	return h
}

func (h *harness) ready(t *testing.T, sessions int) {
	t.Helper()
	h.sink.wait(t, fmt.Sprintf("resync #%d", sessions), func(s *recSink) bool { return len(s.snaps) >= sessions })
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// marker sends a bgapi that fails and waits for its ChanOriginateFailed:
// the simulator fires the job's event after everything played before, with
// a higher sequence, so once it arrives every earlier event has too. It
// returns the events before it and drops them and it from the sink.
func (h *harness) marker(t *testing.T) []bridge.ChannelEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	job, err := h.client.BgAPI(ctx, "originate loopback/marker/default &park")
	if err != nil {
		t.Fatal(err)
	}
	var before []bridge.ChannelEvent
	h.sink.wait(t, "marker", func(s *recSink) bool {
		for i, ev := range s.evs {
			if ev.Kind == bridge.ChanOriginateFailed && ev.ActionID == job {
				before = slices.Clone(s.evs[:i])
				s.evs = slices.Clone(s.evs[i+1:])
				return true
			}
		}
		return false
	})
	return before
}

func diff(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g == w {
			fmt.Fprintf(&b, "  %s\n", g)
		} else {
			fmt.Fprintf(&b, "! %s\n  want %s\n", g, w)
		}
	}
	return b.String()
}

// TestCapturesThroughConnector replays each capture through the simulator,
// a Client and a recording Sink, as recorded and with its events shuffled.
func TestCapturesThroughConnector(t *testing.T) {
	for name, want := range esl.ExpectedCaptures {
		for _, shuffle := range []int{0, 8} {
			t.Run(fmt.Sprintf("%s/shuffle=%d", name, shuffle), func(t *testing.T) {
				cfg := esl.Config{}
				if strings.HasSuffix(name, "-json") {
					cfg.Format = "json"
				}
				h := start(t, cfg, esltest.Options{}).run(t)
				h.ready(t, 1)
				if err := h.sim.Play(name, esltest.PlayOptions{Format: cfg.Format, Shuffle: shuffle, Seed: 7}); err != nil {
					t.Fatal(err)
				}
				evs := h.marker(t)
				if got := esl.DescribeAll(evs); !slices.Equal(got, want) {
					t.Fatalf("got:\n%s", diff(got, want))
				}
				if strings.HasPrefix(name, "basic-call") {
					checkBasicCall(t, evs)
				}
				if st := h.client.Stats(); st.MalformedEvents != 0 || st.Sessions != 1 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

// checkBasicCall checks the numbers and ids of basic-call-plain/json: every
// channel carries the caller's number; 1000-a is linked to the leg that
// dialled it.
func checkBasicCall(t *testing.T, evs []bridge.ChannelEvent) {
	t.Helper()
	ids := map[string]string{}
	for _, ev := range evs {
		for _, ch := range []*bridge.Channel{&ev.Channel, ev.Peer} {
			if ch == nil || ch.ID == "" && ev.Kind == bridge.ChanDial || ch.ID == "" && ev.Kind == bridge.ChanDialEnd {
				continue // no dialling channel: the switch originated the leg
			}
			if ch.CallerNum != "5551000" || ch.CallerName != "Test_Caller" {
				t.Fatalf("%s: %s caller %q %q", esl.Describe(ev), ch.Name, ch.CallerNum, ch.CallerName)
			}
			ids[ch.Name] = ch.ID
		}
	}
	for _, ev := range evs {
		if ev.Channel.Name == "loopback/1000-a" && ev.Channel.LinkedID != ids["loopback/2000-b"] {
			t.Fatalf("1000-a linked to %q, want 2000-b's %q", ev.Channel.LinkedID, ids["loopback/2000-b"])
		}
		if ev.Kind == bridge.ChanBridgeEnter && ev.Bridge != ids["loopback/2000-b"] {
			t.Fatalf("bridge id %q", ev.Bridge)
		}
	}
}

// TestConnectBytes checks the bytes sent on connect: auth exactly as in
// basic-call-plain.sent; the subscription lists the model's events where
// the capture asked for ALL; then the resync.
func TestConnectBytes(t *testing.T) {
	h := start(t, esl.Config{}, esltest.Options{}).run(t)
	h.ready(t, 1)
	capture, err := esltest.Load("basic-call-plain")
	if err != nil {
		t.Fatal(err)
	}
	auth, _, _ := bytes.Cut(capture.Sent, []byte("event plain ALL"))
	if string(auth) != "auth ClueCon\n\n" {
		t.Fatalf("capture starts %q", auth)
	}
	want := string(auth) + "event plain " + strings.Join(esl.Subscription, " ") + "\n\n" +
		"api show channels as json\n\napi show calls as json\n\n"
	if got := string(h.sim.Received()[0]); got != want {
		t.Fatalf("sent %q\nwant %q", got, want)
	}
	// A clean stop says goodbye.
	h.cancel()
	h.sink.wait(t, "link down", func(s *recSink) bool { return len(s.downs) == 1 })
	if got := string(h.sim.Received()[0]); got != want+"exit\n\n" {
		t.Fatalf("sent %q", got)
	}
	if h.sink.downs[0] != nil {
		t.Fatalf("LinkDown(%v) on a clean stop", h.sink.downs[0])
	}
}

// TestAuthFailure: a wrong password is reported clearly, never logged, and
// retried with growing delays.
func TestAuthFailure(t *testing.T) {
	h := start(t, esl.Config{Password: "WrongPassword", BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}, esltest.Options{})
	var mu sync.Mutex
	var delays []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	esl.SetSleep(h.client, func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		delays = append(delays, d)
		if len(delays) == 6 {
			cancel()
			return context.Canceled
		}
		return nil
	})
	if err := h.client.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	failure, _ := esltest.Load("auth-failure")
	for i, got := range h.sim.Received() {
		if !bytes.Equal(got, failure.Sent) {
			t.Fatalf("connection %d sent %q, want %q", i, got, failure.Sent)
		}
	}
	if len(h.sink.ups) != 0 || len(h.sink.downs) != 6 {
		t.Fatalf("ups %v downs %v", h.sink.ups, h.sink.downs)
	}
	for _, err := range h.sink.downs {
		if !errors.Is(err, esl.ErrAuth) || !strings.Contains(err.Error(), h.sim.Addr()) {
			t.Fatalf("LinkDown(%v)", err)
		}
	}
	// Jittered doubling: attempt i waits within [d/2, d], d = 100ms·2^i up to 1s.
	for i, d := range delays {
		hi := min(100*time.Millisecond<<i, time.Second)
		if d < hi/2 || d > hi {
			t.Fatalf("delay #%d = %s, want within [%s, %s]", i, d, hi/2, hi)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "rejected the event socket password") || !strings.Contains(logs, h.sim.Addr()) || strings.Contains(logs, "WrongPassword") {
		t.Fatalf("logs:\n%s", logs)
	}
}

// basicCallTail is basic-call after its bridge.
func splitAtBridge(t *testing.T) (int, []string, []string) {
	t.Helper()
	capture, err := esltest.Load("basic-call-plain")
	if err != nil {
		t.Fatal(err)
	}
	cut := slices.IndexFunc(capture.Events(), func(f esltest.Frame) bool { return f.Event.Name() == "CHANNEL_BRIDGE" }) + 1
	want := esl.ExpectedCaptures["basic-call-plain"]
	at := slices.Index(want, "BridgeEnter loopback/1000-a") + 1
	return cut, want[:at], want[at:]
}

// TestReconnectMidCall drops the link in the middle of a call: the Sink
// sees LinkDown, then LinkUp and a Snapshot with the live channels, then
// the rest of the call.
func TestReconnectMidCall(t *testing.T) {
	h := start(t, esl.Config{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, esltest.Options{}).run(t)
	h.ready(t, 1)
	cut, head, tail := splitAtBridge(t)
	if err := h.sim.Play("basic-call-plain", esltest.PlayOptions{To: cut}); err != nil {
		t.Fatal(err)
	}
	if got := esl.DescribeAll(h.marker(t)); !slices.Equal(got, head) {
		t.Fatalf("before the drop:\n%s", diff(got, head))
	}
	h.sim.DropAll(true)
	h.ready(t, 2)
	h.sink.mu.Lock()
	calls, downs, live := slices.Clone(h.sink.calls), h.sink.downs, h.sink.snaps[1]
	h.sink.mu.Unlock()
	if len(downs) != 1 || downs[0] == nil {
		t.Fatalf("downs %v", downs)
	}
	// up, snapshot, events..., down, up, snapshot
	if n := len(calls); n < 6 || calls[0] != "up" || calls[1] != "snapshot" || !slices.Equal(calls[n-3:], []string{"down", "up", "snapshot"}) {
		t.Fatalf("calls %v", calls)
	}
	var names []string
	for _, ch := range live {
		names = append(names, ch.Name)
		if ch.State != "Up" || ch.LinkedID == "" || ch.List().CreatedAt.IsZero() {
			t.Errorf("snapshot channel %+v", ch)
		}
	}
	if want := []string{"loopback/2000-a", "loopback/2000-b", "loopback/1000-a", "loopback/1000-b"}; !slices.Equal(names, want) {
		t.Fatalf("snapshot %v, want %v", names, want)
	}
	if err := h.sim.Play("basic-call-plain", esltest.PlayOptions{From: cut}); err != nil {
		t.Fatal(err)
	}
	if got := esl.DescribeAll(h.marker(t)); !slices.Equal(got, tail) {
		t.Fatalf("after the reconnect:\n%s", diff(got, tail))
	}
}

// TestRestart: FreeSWITCH restarts mid-call; the snapshot after the
// reconnect is empty, so the model ends the call.
func TestRestart(t *testing.T) {
	h := start(t, esl.Config{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, esltest.Options{}).run(t)
	h.ready(t, 1)
	cut, _, _ := splitAtBridge(t)
	if err := h.sim.Play("basic-call-plain", esltest.PlayOptions{To: cut, Rewrite: true}); err != nil {
		t.Fatal(err)
	}
	h.marker(t)
	if n := len(h.sim.Channels()); n != 4 {
		t.Fatalf("%d live channels before the restart", n)
	}
	core := h.sim.CoreUUID()
	h.sim.Restart()
	h.ready(t, 2)
	if h.sim.CoreUUID() == core || len(h.sink.snaps[1]) != 0 {
		t.Fatalf("after restart: core %s, snapshot %v", h.sim.CoreUUID(), h.sink.snaps[1])
	}
}

// TestHalfOpen: the simulator stops writing but keeps the socket open;
// the probe goes unanswered and the Client reconnects.
func TestHalfOpen(t *testing.T) {
	h := start(t, esl.Config{HeartbeatTimeout: 100 * time.Millisecond, CommandTimeout: 300 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, esltest.Options{}).run(t)
	h.ready(t, 1)
	h.sim.HalfOpen()
	h.ready(t, 2)
	if err := h.sink.downs[0]; !errors.Is(err, esl.ErrLinkDead) {
		t.Fatalf("LinkDown(%v)", err)
	}
	if sent := string(h.sim.Received()[0]); !strings.HasSuffix(sent, "api status\n\n") {
		t.Fatalf("no probe sent: %q", sent)
	}
}

// TestOversizeFrame: a frame announcing 1 TiB resets the connection; it is
// never buffered.
func TestOversizeFrame(t *testing.T) {
	h := start(t, esl.Config{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, esltest.Options{}).run(t)
	h.ready(t, 1)
	h.sim.SendOversize(1 << 40)
	h.ready(t, 2)
	if err := h.sink.downs[0]; !errors.Is(err, esl.ErrFrameTooLarge) {
		t.Fatalf("LinkDown(%v)", err)
	}
}

// TestMalformedEventSkipped: a frame whose event does not parse is logged
// and skipped; the link stays up and the next events go through.
func TestMalformedEventSkipped(t *testing.T) {
	h := start(t, esl.Config{}, esltest.Options{}).run(t)
	h.ready(t, 1)
	body := "this is not a header\n\n"
	h.sim.Send(fmt.Appendf(nil, "Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body))
	if err := h.sim.Play("kill", esltest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := esl.DescribeAll(h.marker(t)), esl.ExpectedCaptures["kill"]; !slices.Equal(got, want) {
		t.Fatalf("got:\n%s", diff(got, want))
	}
	if st := h.client.Stats(); st.MalformedEvents != 1 || len(h.sink.downs) != 0 {
		t.Fatalf("stats %+v downs %v", st, h.sink.downs)
	}
	if !strings.Contains(h.logs.String(), "freeswitch event skipped") {
		t.Fatal("not logged")
	}
}

// TestBlockedSink: while the Sink is stuck, the Client keeps reading, so
// FreeSWITCH never queues; once it is free, nothing is lost or reordered.
func TestBlockedSink(t *testing.T) {
	const calls = 150
	h := start(t, esl.Config{}, esltest.Options{})
	h.sink.gate = make(chan struct{})
	h.run(t)
	h.ready(t, 1)
	framesBefore := h.client.Stats().Frames
	perCall := 0
	capture, _ := esltest.Load("basic-call-plain")
	for _, f := range capture.Events() {
		if slices.Contains(esl.Subscription, f.Event.Get("Event-Name")) {
			perCall++
		}
	}
	// A blocked reader would stall these writes: 150 calls are ~9 MB.
	for range calls {
		if err := h.sim.Play("basic-call-plain", esltest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
	}
	h.sink.wait(t, "every frame read while the sink is stuck", func(s *recSink) bool {
		return s.entered.Load() > 0 && h.client.Stats().Frames >= framesBefore+int64(calls*perCall)
	})
	if st := h.client.Stats(); st.Queued < calls*perCall/2 || len(h.sink.events()) != 0 {
		t.Fatalf("stats %+v, %d events delivered through a blocked sink", st, len(h.sink.events()))
	}
	close(h.sink.gate)
	got := esl.DescribeAll(h.marker(t))
	var want []string
	for range calls {
		want = append(want, esl.ExpectedCaptures["basic-call-plain"]...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d events, want %d:\n%s", len(got), len(want), diff(got, want)[:4000])
	}
}

func TestAPI(t *testing.T) {
	h := start(t, esl.Config{}, esltest.Options{}).run(t)
	h.ready(t, 1)
	ctx := context.Background()
	status, err := h.client.API(ctx, "status")
	if err != nil || !strings.HasPrefix(status, "UP 0 years") || !strings.Contains(status, "is ready") {
		t.Fatalf("status %q %v", status, err)
	}
	reply, err := h.client.API(ctx, "uuid_kill 00000000-0000-0000-0000-000000000000")
	if bridge.ErrorCode(err) != bridge.ENOTFOUND || reply != "-ERR No such channel!\n" {
		t.Fatalf("uuid_kill: %q %v", reply, err)
	}
	if _, err := h.client.API(ctx, "nosuchcommand"); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("unknown command: %v", err)
	}
	// A failed background originate comes back as ChanOriginateFailed.
	job, err := h.client.BgAPI(ctx, "originate loopback/9999/default &park")
	if err != nil {
		t.Fatal(err)
	}
	h.sink.wait(t, "originate failure", func(s *recSink) bool {
		return slices.ContainsFunc(s.evs, func(ev bridge.ChannelEvent) bool {
			return ev.Kind == bridge.ChanOriginateFailed && ev.ActionID == job && ev.Cause == 3 && ev.CauseText == "NO_ROUTE_DESTINATION"
		})
	})
	if !bytes.Contains(h.sim.Received()[0], []byte("bgapi originate loopback/9999/default &park\nJob-UUID: "+job+"\n\n")) {
		t.Fatalf("sent %q", h.sim.Received()[0])
	}
}

// TestAPIRefusesLineBreaks: an argument with CR, LF or NUL could smuggle a
// second command; nothing of it reaches the socket.
func TestAPIRefusesLineBreaks(t *testing.T) {
	h := start(t, esl.Config{}, esltest.Options{}).run(t)
	h.ready(t, 1)
	ctx := context.Background()
	before := len(h.sim.Received()[0])
	for _, cmd := range []string{"status\nexit", "uuid_kill x\r\n\r\napi hupall", "status\x00", "", "  "} {
		_, err := h.client.API(ctx, cmd)
		var e *bridge.Error
		if !errors.As(err, &e) || e.Code != bridge.EINVALID || e.Field != "command" {
			t.Fatalf("API(%q) = %v", cmd, err)
		}
		if _, err := h.client.BgAPI(ctx, cmd); bridge.ErrorCode(err) != bridge.EINVALID {
			t.Fatalf("BgAPI(%q) = %v", cmd, err)
		}
	}
	if err := h.client.BgAPIJob(ctx, "status", "x\nexit"); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("BgAPIJob = %v", err)
	}
	// Round trip: afterwards, the only new bytes are this command.
	if _, err := h.client.API(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	if got := string(h.sim.Received()[0][before:]); got != "api version\n\n" {
		t.Fatalf("sent %q", got)
	}
}

func TestAPILinkDownAndTimeout(t *testing.T) {
	h := start(t, esl.Config{CommandTimeout: 200 * time.Millisecond, HeartbeatTimeout: time.Hour, BackoffMin: time.Hour}, esltest.Options{})
	ctx := context.Background()
	if _, err := h.client.API(ctx, "status"); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("before Run: %v", err)
	}
	h.run(t)
	h.ready(t, 1)
	h.sim.HalfOpen()
	if _, err := h.client.API(ctx, "status"); bridge.ErrorCode(err) != bridge.ETIMEOUT {
		t.Fatalf("half-open: %v", err)
	}
	h.sim.DropAll(false)
	h.sink.wait(t, "link down", func(s *recSink) bool { return len(s.downs) == 1 })
	if _, err := h.client.BgAPI(ctx, "status"); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("link down: %v", err)
	}
}

// countSink counts ChannelEvents and says when a total is reached.
type countSink struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
	snap   chan struct{}
}

func (s *countSink) LinkUp(int)                           {}
func (s *countSink) LinkDown(error)                       {}
func (s *countSink) Snapshot([]bridge.Channel, time.Time) { close(s.snap) }
func (s *countSink) ChannelEvents(evs []bridge.ChannelEvent) {
	if s.n.Add(int64(len(evs))) == s.target.Load() {
		close(s.done)
	}
}

// BenchmarkIngest measures the Client end to end over loopback TCP: the
// simulator writes b.N rewritten replays of basic-call-plain's subscribed
// frames as one stream; the clock stops when the Sink has every
// ChannelEvent. The stream is built before the clock starts.
func BenchmarkIngest(b *testing.B) {
	sim, err := esltest.NewServer(esltest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	sink := &countSink{done: make(chan struct{}), snap: make(chan struct{})}
	c := esl.New(esl.Config{Address: sim.Addr(), Password: "ClueCon", Logger: slog.New(slog.DiscardHandler)}, sink)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	<-sink.snap
	var stream []byte
	for range b.N {
		frames, err := sim.Prepare("basic-call-plain", esltest.PlayOptions{Rewrite: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range frames {
			if slices.Contains(esl.Subscription, f.Event.Get("Event-Name")) {
				stream = append(stream, f.Raw...)
			}
		}
	}
	sink.target.Store(int64(b.N * len(esl.ExpectedCaptures["basic-call-plain"])))
	runtime.GC()
	b.SetBytes(int64(len(stream) / b.N))
	b.ResetTimer()
	sim.Send(stream)
	<-sink.done
	b.StopTimer()
	st := c.Stats()
	b.ReportMetric(float64(st.Events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.ChannelEvents)/b.Elapsed().Seconds(), "chanevents/s")
}

// Resync on a live session asks for the channels again and hands the
// snapshot to the Sink: what the engine needs after dropping events.
func TestResyncOnRequest(t *testing.T) {
	h := start(t, esl.Config{}, esltest.Options{}).run(t)
	h.ready(t, 1)
	h.client.Resync()
	h.ready(t, 2)
	if n := bytes.Count(h.sim.Received()[0], []byte("api show channels as json")); n != 2 {
		t.Fatalf("%d show channels on the session, want 2", n)
	}
	if st := h.client.Stats(); st.Sessions != 1 {
		t.Fatalf("the resync cost a session: %+v", st)
	}
}
