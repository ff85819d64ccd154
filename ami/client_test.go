package ami_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// A real client session against the simulator writes exactly the bytes the
// captured client wrote: Login, then Logoff on Close.
func TestClient_LoginBytes(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass"}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	info := h.calls()[0].info
	if info != (ami.ConnInfo{Banner: "Asterisk Call Manager/11.0.0", Session: 1, Address: s.Addr()}) {
		t.Fatalf("ConnInfo %+v", info)
	}
	if !c.Connected() {
		t.Fatal("not connected")
	}
	c.Close()
	if got, want := s.Received(), amitest.Capture("login-banner.sent"); !bytes.Equal(got, want) {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}
	// The handler saw the login's events and the Goodbye, then the end.
	calls := h.calls()
	var evs []string
	for _, cl := range calls[1 : len(calls)-1] {
		evs = append(evs, cl.msg.Field("Event")+cl.msg.Field("Response"))
	}
	if !slices.Equal(evs, []string{"FullyBooted", "SuccessfulAuth", "Goodbye"}) {
		t.Fatalf("messages %q", evs)
	}
	if last := calls[len(calls)-1]; last.kind != kindDisconnected || !errors.Is(last.err, context.Canceled) {
		t.Fatalf("last call %+v", last)
	}
	if c.Connected() {
		t.Fatal("connected after Close")
	}
}

// A wrong secret is a clear error, retried with backoff, never in a tight
// loop, and the secret shows up nowhere.
func TestClient_WrongSecret(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{Secret: "the-real-one"})
	var logs syncBuffer
	h := newRecorder()
	const backoff = 40 * time.Millisecond
	c := start(t, ami.Config{
		Address: s.Addr(), Username: "bridge", Secret: "s3cr3t-wrong",
		BackoffMin: backoff, BackoffMax: backoff,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, h)
	ctx := testContext(t)
	t0 := time.Now()
	if err := s.Wait(ctx, func() bool { return len(s.Conns()) >= 4 && s.Conns()[3].Closed() }); err != nil {
		t.Fatal(err)
	}
	// Three waits of at least backoff/2 each separate four attempts.
	if elapsed := time.Since(t0); elapsed < 3*backoff/2 {
		t.Fatalf("4 login attempts in %v: no backoff", elapsed)
	}
	err := c.Err()
	want := fmt.Sprintf("ami: login to %s as bridge refused: Authentication failed", s.Addr())
	if !errors.Is(err, ami.ErrLoginRefused) || err.Error() != want {
		t.Fatalf("Err() = %v", err)
	}
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("logs lack the refusal:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatal("secret leaked")
	}
	if !bytes.Contains(s.Received(), []byte("Secret: s3cr3t-wrong\r\n")) {
		t.Fatal("secret not sent") // so the check above means something
	}
	if h.count(kindConnected) != 0 || h.count(kindDisconnected) != 0 {
		t.Fatal("handler told about a session that never logged in")
	}
	if _, err := c.Send(ctx, goami2.NewAction("Ping")); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("Send while down: %v", err)
	}

	s.SetSecret("s3cr3t-wrong")
	h.waitFor(t, "Connected after fixing the secret", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	if c.Err() != nil {
		t.Fatalf("Err() = %v after login", c.Err())
	}
}

// Answers are matched to their actions by ActionID, whatever order they come
// back in.
func TestClient_SendCorrelation(t *testing.T) {
	const n = 24
	var (
		mu      sync.Mutex
		pending []*goami2.Message
		s       *amitest.Server
	)
	s = newServer(t, amitest.ServerOptions{OnAction: func(a *goami2.Message) bool {
		if a.Field("Action") != "Delay" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		pending = append(pending, a)
		if len(pending) == n { // all in: answer newest first
			for _, p := range slices.Backward(pending) {
				s.Reply(p, amitest.Response(p, "Success", "Message", p.Field("Seq")))
			}
		}
		return true
	}})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass"}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })

	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			a := goami2.NewAction("Delay")
			a.AddField("Seq", fmt.Sprint(i))
			resp, err := c.Send(ctx, a)
			if err != nil {
				errs <- err
			} else if resp.Field("Message") != fmt.Sprint(i) || resp.ActionID() != a.ActionID() {
				errs <- fmt.Errorf("action %d (%s) got %v", i, a.ActionID(), resp.Headers())
			}
		})
		wg.Go(func() { // built-in answers interleaved
			resp, err := c.Send(ctx, goami2.NewAction("Ping"))
			if err != nil || resp.Field("Ping") != "Pong" {
				errs <- fmt.Errorf("ping: %v %v", resp, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Generated ActionIDs are unique.
	ids := map[string]bool{}
	for _, a := range s.Actions()[1:] {
		if ids[a.ActionID()] || a.ActionID() == "" {
			t.Fatalf("ActionID %q reused", a.ActionID())
		}
		ids[a.ActionID()] = true
	}
	if len(ids) != 2*n {
		t.Fatalf("%d actions", len(ids))
	}
}

// Classification is by Event first: an OriginateResponse event carrying the
// action's ActionID and a Response header does not answer the action.
// Response: Follows and Error answers are answers.
func TestClient_ResponseShapes(t *testing.T) {
	var s *amitest.Server
	s = newServer(t, amitest.ServerOptions{OnAction: func(a *goami2.Message) bool {
		switch a.Field("Action") {
		case "Originate":
			s.Reply(a, []byte("Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: "+a.ActionID()+"\r\nResponse: Failure\r\nChannel: Local/999@inbound\r\nReason: 0\r\n\r\n"))
			s.Reply(a, amitest.Response(a, "Error", "Message", "Originate failed"))
		case "Command":
			if a.Field("Command") != "core show channels" {
				return false
			}
			s.Reply(a, []byte("Response: Follows\r\nPrivilege: Command\r\nActionID: "+a.ActionID()+"\r\nline one\n\nline: three\n--END COMMAND--\r\n\r\n"))
		case "Swallow":
		default:
			return false
		}
		return true
	}})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", ActionTimeout: 200 * time.Millisecond}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	ctx := testContext(t)

	o := goami2.NewAction("Originate")
	o.AddField("Channel", "Local/999@inbound")
	resp, err := c.Send(ctx, o)
	if err != nil || resp.Field("Event") != "" || resp.Field("Response") != "Error" || resp.Field("Message") != "Originate failed" {
		t.Fatalf("originate: %v %v", resp, err)
	}
	if !strings.HasPrefix(o.ActionID(), "ctib-") {
		t.Fatalf("ActionID %q not set on the action", o.ActionID())
	}
	// The handler got both, event first.
	h.waitFor(t, "originate frames", func(r *recorder) bool {
		return slices.ContainsFunc(r.calls(), func(cl call) bool { return cl.msg != nil && cl.msg.Field("Message") == "Originate failed" })
	})
	var got []string
	for _, cl := range h.calls() {
		if cl.msg != nil && cl.msg.ActionID() == o.ActionID() {
			got = append(got, cl.msg.Field("Event")+"/"+cl.msg.Field("Response"))
		}
	}
	if !slices.Equal(got, []string{"OriginateResponse/Failure", "/Error"}) {
		t.Fatalf("handler saw %q", got)
	}

	cmd := goami2.NewAction("Command")
	cmd.AddField("Command", "core show channels")
	resp, err = c.Send(ctx, cmd)
	if err != nil || !slices.Equal(resp.FieldValues("Output"), []string{"line one", "", "line: three"}) {
		t.Fatalf("command: %v %v", resp, err)
	}

	// Asterisk's own Command answer (22.x) and an unknown action.
	cmd = goami2.NewAction("Command")
	cmd.AddField("Command", "core show version")
	if resp, err = c.Send(ctx, cmd); err != nil || !strings.HasPrefix(resp.Field("Output"), "Asterisk 22.10.1") {
		t.Fatalf("command: %v %v", resp, err)
	}
	if resp, err = c.Send(ctx, goami2.NewAction("NoSuchAction")); err != nil || resp.Field("Response") != "Error" {
		t.Fatalf("unknown: %v %v", resp, err)
	}

	// No answer: a timeout, and the link stays up.
	if _, err := c.Send(ctx, goami2.NewAction("Swallow")); bridge.ErrorCode(err) != bridge.ETIMEOUT {
		t.Fatalf("swallowed: %v", err)
	}
	if _, err := c.Send(ctx, goami2.NewAction("Ping")); err != nil || !c.Connected() {
		t.Fatalf("after a timeout: %v", err)
	}
	// A cancelled context is the caller's business, not a timeout.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Send(cctx, goami2.NewAction("Swallow")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Two waits on one ActionID would be ambiguous.
	dup := goami2.NewAction("Swallow")
	dup.AddField("ActionID", "same")
	go c.Send(ctx, dup)
	s.Wait(ctx, func() bool {
		return slices.ContainsFunc(s.Actions(), func(a *goami2.Message) bool { return a.ActionID() == "same" })
	})
	dup2 := goami2.NewAction("Ping")
	dup2.AddField("ActionID", "same")
	if _, err := c.Send(ctx, dup2); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("duplicate ActionID: %v", err)
	}
}

// CoreShowChannels during a call lists the simulator's live channels, and
// the handler sees the list too.
func TestClient_SendListDuringCall(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass"}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	ctx := testContext(t)

	// One call, fresh ids, played in two halves around the Redirect.
	frames := s.Rewrite(amitest.Frames("blind-transfer"))
	cut := slices.IndexFunc(frames, func(f amitest.Frame) bool { return f.Header("ActionID") == "redirect-1" })
	if err := s.PlayFrames(frames[:cut], amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, items, err := c.SendList(ctx, goami2.NewAction("CoreShowChannels"))
	if err != nil || resp.Field("EventList") != "start" {
		t.Fatalf("%v %v", resp, err)
	}
	live := s.LiveChannels()
	if len(live) != 4 || len(items) != 5 {
		t.Fatalf("%d live, %d items", len(live), len(items))
	}
	for i, ch := range live {
		it := items[i]
		if it.Field("Event") != "CoreShowChannel" || it.Field("Channel") != ch.Name || it.Field("Uniqueid") != ch.Uniqueid || it.ActionID() != resp.ActionID() {
			t.Fatalf("item %d: %v, live %+v", i, it.Headers(), ch)
		}
	}
	if done := items[4]; done.Field("EventList") != "Complete" || done.Field("ListItems") != "4" {
		t.Fatalf("complete: %v", done.Headers())
	}
	h.waitFor(t, "list items in the stream", func(r *recorder) bool {
		n := 0
		for _, cl := range r.calls() {
			if cl.msg != nil && cl.msg.ActionID() == resp.ActionID() {
				n++
			}
		}
		return n == 6
	})

	// Redirect the caller's ;2 leg by the name the list gave.
	var leg string
	for _, it := range items[:4] {
		if strings.HasPrefix(it.Field("Channel"), "Local/500@inbound-") && strings.HasSuffix(it.Field("Channel"), ";2") {
			leg = it.Field("Channel")
		}
	}
	r := goami2.NewAction("Redirect")
	r.AddField("Channel", leg)
	r.AddField("Context", "inbound")
	r.AddField("Exten", "600")
	r.AddField("Priority", "1")
	if resp, err := c.Send(ctx, r); err != nil || resp.Field("Message") != "Redirect successful" {
		t.Fatalf("redirect %q: %v %v", leg, resp, err)
	}

	if err := s.PlayFrames(frames[cut:], amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	_, items, err = c.SendList(ctx, goami2.NewAction("CoreShowChannels"))
	if err != nil || len(items) != 1 || items[0].Field("ListItems") != "0" {
		t.Fatalf("after the call: %d items, %v", len(items), err)
	}
	// A refused list action: its response, no items.
	resp, items, err = c.SendList(ctx, goami2.NewAction("NoSuchList"))
	if err != nil || resp.Field("Response") != "Error" || items != nil {
		t.Fatalf("refused list: %v %v %v", resp, items, err)
	}
}

// An action that would inject headers is refused before the wire: the PBX
// receives nothing of it.
func TestClient_HeaderInjection(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass"}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	ctx := testContext(t)
	before := len(s.Received())

	bad := goami2.NewAction("Originate")
	bad.AddField("Channel", "Local/200@inbound")
	bad.AddField("CallerID", "\"Mallory\" <666>\r\n\r\nAction: Hangup\r\nChannel: Local/500@inbound-00000001;1")
	_, err := c.Send(ctx, bad)
	var e *bridge.Error
	if !errors.As(err, &e) || e.Code != bridge.EINVALID || e.Field != "CallerID" || !strings.Contains(e.Message, "line break") {
		t.Fatalf("injection: %v", err)
	}
	badName := goami2.NewAction("Originate")
	badName.AddField("Channel\r\nAction: Hangup\r\nChannel", "x")
	if _, err := c.Send(ctx, badName); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("name injection: %v", err)
	}
	ping := goami2.NewAction("Ping")
	ping.AddField("ActionID", "after")
	if _, err := c.Send(ctx, ping); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Received()[before:]); got != "Action: Ping\r\nActionID: after\r\n\r\n" {
		t.Fatalf("the PBX received %q", got)
	}
}

// The reader keeps draining the socket while the handler is stuck: the
// simulator, which like Asterisk drops a client that does not read within
// its write timeout, pushes megabytes without a timeout while the handler
// blocks throughout, and the handler then gets every frame, in order. A
// reader that waited on the handler would stall for good, so the timeout
// only needs to be finite: 1 s rather than Asterisk's 100 ms keeps a loaded
// CI machine (or -race on two CPUs) from failing a correct client.
func TestClient_SlowHandlerLosesNothing(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{WriteTimeout: 10 * time.Second, WriteBuffer: 64 << 10})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1}, h)
	h.waitFor(t, "login events", func(r *recorder) bool { return len(r.calls()) == 3 })

	var stream []byte
	for _, name := range amitest.Names() {
		if !strings.HasSuffix(name, ".sent") {
			for _, f := range amitest.EventsOf(amitest.Frames(name)) {
				stream = append(stream, f.Raw...)
			}
		}
	}
	perPass := len(amitest.SplitFrames(stream))
	passes := (16 << 20) / len(stream) // well past what socket buffers hold
	release := h.hold()
	t.Cleanup(release) // runs before start's cleanup, which waits for the handler
	for range passes {
		if err := s.SendRaw(stream); err != nil {
			t.Fatalf("the client stopped reading: %v", err)
		}
	}
	total := passes * perPass
	ctx := testContext(t)
	// Answers are matched by the reader, so actions work meanwhile.
	if resp, err := c.Send(ctx, goami2.NewAction("Ping")); err != nil || resp.Field("Ping") != "Pong" {
		t.Fatalf("Send while the handler is stuck: %v %v", resp, err)
	}
	total++ // the Pong goes to the handler too
	// Everything read is queued, none of it handled.
	for c.QueueLen() < total {
		if err := ctx.Err(); err != nil {
			t.Fatalf("queued %d of %d frames", c.QueueLen(), total)
		}
		time.Sleep(time.Millisecond)
	}
	if q, n := c.QueueLen(), c.Frames(); q != total || n != int64(2+total) {
		t.Fatalf("QueueLen %d, Frames %d, sent %d", q, n, total)
	}
	release()
	h.waitFor(t, "all frames", func(r *recorder) bool { return len(r.calls()) == 3+total })
	calls := h.calls()[3:]
	if last := calls[len(calls)-1].msg; last.Field("Ping") != "Pong" {
		t.Fatalf("last frame %v", last.Headers())
	}
	calls = calls[:len(calls)-1]
	want := amitest.SplitFrames(stream)
	for i, cl := range calls {
		m, _ := want[i%perPass].Message()
		if !slices.Equal(cl.msg.Headers(), m.Headers()) {
			t.Fatalf("frame %d: got %v, want %v", i, cl.msg.Headers(), m.Headers())
		}
	}
	if c.QueueLen() != 0 || c.Skipped() != 0 {
		t.Fatalf("queue %d, skipped %d", c.QueueLen(), c.Skipped())
	}
}

// An event frame the parser refuses is parsed, and refused, by the
// consumer now: it is counted and skipped, and the events around it reach
// the handler in order.
func TestClient_UnparsableEventSkippedInOrder(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1}, h)
	h.waitFor(t, "login events", func(r *recorder) bool { return len(r.calls()) == 3 })
	stream := "Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n" +
		"Event: Newstate\r\nthis line is no header\r\n\r\n" +
		"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n"
	if err := s.SendRaw([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the two good events", func(r *recorder) bool { return len(r.calls()) == 5 })
	var got []string
	for _, cl := range h.calls()[3:] {
		got = append(got, cl.msg.Field("Event"))
	}
	if !slices.Equal(got, []string{"Newchannel", "Hangup"}) {
		t.Fatalf("handler got %v", got)
	}
	if n := c.Skipped(); n != 1 {
		t.Fatalf("Skipped() = %d, want 1", n)
	}
}

// A line or frame over the limit is skipped with a clear count: what came
// before and after it is delivered on the same connection. Only a frame
// far past the limit (no Asterisk's) resets the connection.
func TestClient_OversizeSkipped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   string
		reset error // nil: skipped
	}{
		{"line", "Event: Big\r\nData: " + strings.Repeat("x", 4096) + "\r\n\r\n", nil},
		{"frame", "Event: Big\r\n" + strings.Repeat("Data: xxxxxxxxxxxxxxxxxxxxxxxx\r\n", 4096) + "\r\n", nil},
		{"endless frame", "Event: Big\r\n" + strings.Repeat("Data: xxxxxxxxxxxxxxxxxxxxxxxx\r\n", 40000) + "\r\n", ami.ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, amitest.ServerOptions{})
			h := newRecorder()
			c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", MaxLine: 1024, MaxFrame: 64 << 10, BackoffMin: time.Millisecond}, h)
			h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
			s.SendRaw([]byte("Event: Before\r\n\r\n" + tc.raw + "Event: After\r\n\r\n"))
			if tc.reset != nil {
				h.waitFor(t, "reconnect", func(r *recorder) bool { return r.count(kindConnected) == 2 })
			} else {
				h.waitFor(t, "After", func(r *recorder) bool {
					return slices.ContainsFunc(r.calls(), func(cl call) bool { return cl.msg != nil && cl.msg.Field("Event") == "After" })
				})
			}
			var seen []string
			var err error
			for _, cl := range h.calls() {
				if cl.kind == kindDisconnected {
					err = cl.err
					break
				}
				if cl.kind == kindMessage {
					seen = append(seen, cl.msg.Field("Event"))
				}
			}
			if tc.reset != nil {
				if !errors.Is(err, tc.reset) || !strings.Contains(err.Error(), s.Addr()) {
					t.Fatalf("Disconnected(%v)", err)
				}
				if !slices.Equal(seen, []string{"FullyBooted", "SuccessfulAuth", "Before"}) {
					t.Fatalf("delivered %q", seen)
				}
				return
			}
			if err != nil || h.count(kindConnected) != 1 {
				t.Fatalf("the connection was reset: %v", err)
			}
			if !slices.Equal(seen, []string{"FullyBooted", "SuccessfulAuth", "Before", "After"}) {
				t.Fatalf("delivered %q", seen)
			}
			if n := c.Skipped(); n != 1 {
				t.Fatalf("Skipped() = %d, want 1", n)
			}
		})
	}
}

// A half-open link (the peer neither answers nor closes) is found by the
// keepalive Ping, and the client reconnects.
func TestClient_HalfOpenLink(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	start(t, ami.Config{
		Address: s.Addr(), Username: "bridge", Secret: "bridgepass",
		PingInterval: 20 * time.Millisecond, ActionTimeout: 150 * time.Millisecond, BackoffMin: time.Millisecond,
	}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	// Pings are answered while the link is healthy.
	h.waitFor(t, "a Pong", func(r *recorder) bool {
		return slices.ContainsFunc(r.calls(), func(cl call) bool { return cl.msg != nil && cl.msg.Field("Ping") == "Pong" })
	})
	s.Blackhole()
	h.waitFor(t, "reconnect", func(r *recorder) bool { return r.count(kindConnected) == 2 })
	var err error
	for _, cl := range h.calls() {
		if cl.kind == kindDisconnected {
			err = cl.err
		}
	}
	if !errors.Is(err, ami.ErrPingTimeout) {
		t.Fatalf("Disconnected(%v)", err)
	}
	if !s.Conns()[0].Closed() {
		// The client hung up the dead link itself.
		if err := s.Wait(testContext(t), s.Conns()[0].Closed); err != nil {
			t.Fatal("old connection left open")
		}
	}
}

// Across drops, a torn frame and a PBX restart, the handler sees
// Connected, that session's messages, Disconnected, and so on, strictly
// alternating and numbered; a torn frame is never handed over.
func TestClient_ReconnectSequencing(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, h)
	nCall := len(amitest.EventsOf(amitest.Frames("originate-busy")))
	for i, fault := range []func(){s.DropConnections, s.DropMidFrame, s.Restart} {
		h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == i+1 })
		if err := s.Play("originate-busy", amitest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
		h.waitFor(t, "the call", func(r *recorder) bool { return r.count(kindMessage) >= (i+1)*(2+nCall) })
		fault()
	}
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 4 })
	s.SendRaw([]byte("Event: Marker\r\n\r\n")) // after session 4's login events
	h.waitFor(t, "marker", func(r *recorder) bool {
		return slices.ContainsFunc(r.calls(), func(cl call) bool { return cl.msg != nil && cl.msg.Field("Event") == "Marker" })
	})

	session, up := 0, false
	var errs []error
	for _, cl := range h.calls() {
		switch cl.kind {
		case kindConnected:
			if up || cl.info.Session <= session {
				t.Fatalf("Connected(%d) after session %d (up %v)", cl.info.Session, session, up)
			}
			session, up = cl.info.Session, true
		case kindDisconnected:
			if !up {
				t.Fatal("Disconnected twice")
			}
			up = false
			errs = append(errs, cl.err)
		case kindMessage:
			if !up {
				t.Fatal("message outside a session")
			}
			if cl.msg.Len() == 0 {
				t.Fatal("empty message")
			}
		}
	}
	if len(errs) != 3 || !errors.Is(errs[1], io.ErrUnexpectedEOF) {
		t.Fatalf("disconnect errors %v", errs)
	}
	if n := h.count(kindMessage); n != 3*(2+nCall)+2+1 {
		t.Fatalf("%d messages", n)
	}
}

// EventMask and EventFilters are sent after login, and the filter works.
func TestClient_EventFilters(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	h := newRecorder()
	start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", EventMask: "on", EventFilters: []string{"!Event: VarSet", "!Event: Newexten"}}, h)
	ctx := testContext(t)
	if err := s.Wait(ctx, func() bool { return len(s.Actions()) == 4 && s.LoggedIn() == 1 }); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "filter answers", func(r *recorder) bool {
		n := 0
		for _, cl := range r.calls() {
			if cl.msg != nil && cl.msg.Field("Message") == "Filter Added Successfully" {
				n++
			}
		}
		return n == 2
	})
	var got []string
	for _, a := range s.Actions() {
		got = append(got, a.Field("Action")+" "+a.Field("EventMask")+a.Field("Filter"))
	}
	if !slices.Equal(got, []string{"Login ", "Events on", "Filter !Event: VarSet", "Filter !Event: Newexten"}) {
		t.Fatalf("actions %q", got)
	}
	if err := s.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range amitest.EventsOf(amitest.Frames("inbound-call-basic")) {
		if f.Event() != "VarSet" && f.Event() != "Newexten" {
			want++
		}
	}
	s.SendRaw([]byte("Event: Marker\r\n\r\n")) // after every played event
	h.waitFor(t, "marker", func(r *recorder) bool {
		return slices.ContainsFunc(r.calls(), func(cl call) bool { return cl.msg != nil && cl.msg.Field("Event") == "Marker" })
	})
	n := 0
	for _, cl := range h.calls() {
		if cl.msg == nil {
			continue
		}
		switch cl.msg.Field("Event") {
		case "VarSet", "Newexten":
			t.Fatalf("filtered event delivered: %v", cl.msg.Headers())
		case "", "FullyBooted", "SuccessfulAuth", "Marker":
		default:
			n++
		}
	}
	if n != want {
		t.Fatalf("%d events, want %d", n, want)
	}
}

func TestClient_TLS(t *testing.T) {
	cert, pool := selfSigned(t)
	s := newServer(t, amitest.ServerOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	h := newRecorder()
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", TLS: &tls.Config{RootCAs: pool, ServerName: "pbx.test"}}, h)
	h.waitFor(t, "Connected", func(r *recorder) bool { return r.count(kindConnected) == 1 })
	if resp, err := c.Send(testContext(t), goami2.NewAction("Ping")); err != nil || resp.Field("Ping") != "Pong" {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestClient_NotRunning(t *testing.T) {
	c := ami.NewClient(ami.Config{Address: "127.0.0.1:1"}, newRecorder())
	if _, err := c.Send(context.Background(), goami2.NewAction("Ping")); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("Send: %v", err)
	}
	c.Close()
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run after Close")
	}
	if err := ami.NewClient(ami.Config{}, newRecorder()).Run(context.Background()); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("no address: %v", err)
	}
}

// --- helpers

type kind int

const (
	kindConnected kind = iota
	kindMessage
	kindDisconnected
)

type call struct {
	kind kind
	info ami.ConnInfo
	msg  *goami2.Message
	err  error
}

// recorder is a Handler that logs every call and lets tests wait on it.
type recorder struct {
	mu      sync.Mutex
	log     []call
	changed chan struct{}
	gate    chan struct{} // when set, Message waits for it to close
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(c call) {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil && (c.kind == kindMessage || c.kind == kindAdd) {
		<-gate
	}
	r.mu.Lock()
	r.log = append(r.log, c)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) Connected(info ami.ConnInfo) { r.add(call{kind: kindConnected, info: info}) }
func (r *recorder) Message(m *goami2.Message)   { r.add(call{kind: kindMessage, msg: m}) }
func (r *recorder) Disconnected(err error)      { r.add(call{kind: kindDisconnected, err: err}) }
func (r *recorder) calls() []call               { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.log) }

// hold makes Message block until release is called.
func (r *recorder) hold() (release func()) {
	g := make(chan struct{})
	r.mu.Lock()
	r.gate = g
	r.mu.Unlock()
	return sync.OnceFunc(func() { close(g) })
}

func (r *recorder) count(k kind) (n int) {
	for _, c := range r.calls() {
		if c.kind == k {
			n++
		}
	}
	return n
}

// waitFor waits until cond holds; the deadline only turns a hang into a
// failure.
func (r *recorder) waitFor(t testing.TB, what string, cond func(*recorder) bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; %d calls", what, len(r.calls()))
		}
	}
}

func newServer(t testing.TB, opts amitest.ServerOptions) *amitest.Server {
	t.Helper()
	s, err := amitest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// start runs a client until the test ends.
func start(t testing.TB, cfg ami.Config, h ami.Handler) *ami.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := ami.NewClient(cfg, h)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		c.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbx.test"},
		DNSNames: []string{"pbx.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// countHandler counts messages and says when a target is reached.
type countHandler struct {
	connected chan struct{}
	n, target atomic.Int64
	done      chan struct{}
}

func (h *countHandler) Connected(ami.ConnInfo) { h.connected <- struct{}{} }
func (h *countHandler) Disconnected(error)     {}
func (h *countHandler) Message(*goami2.Message) {
	if h.n.Add(1) == h.target.Load() {
		h.done <- struct{}{}
	}
}

// BenchmarkClientIngest measures the whole path, simulator to handler over
// loopback TCP: read, frame, parse, queue, hand over. Compare with
// BenchmarkReadParse for the client's own overhead.
func BenchmarkClientIngest(b *testing.B) {
	s := newServer(b, amitest.ServerOptions{})
	h := &countHandler{connected: make(chan struct{}, 1), done: make(chan struct{}, 1)}
	h.target.Store(-1)
	start(b, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1}, h)
	<-h.connected

	var chunk []byte
	var ends []int // frame boundaries in chunk
	for _, name := range amitest.Names() {
		if !strings.HasSuffix(name, ".sent") {
			for _, f := range amitest.EventsOf(amitest.Frames(name)) {
				chunk = append(chunk, f.Raw...)
				ends = append(ends, len(chunk))
			}
		}
	}
	b.SetBytes(int64(len(chunk) / len(ends)))
	// Let the login's own events through before counting.
	s.SendRaw([]byte("Event: Warmup\r\n\r\n"))
	for h.n.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	h.target.Store(h.n.Load() + int64(b.N))
	for sent := 0; sent < b.N; {
		k := min(len(ends), b.N-sent)
		if err := s.SendRaw(chunk[:ends[k-1]]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	<-h.done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// A PBX that drops every session right after its login is not hammered:
// only a session that lasted starts the backoff over.
func TestClient_ShortSessionsBackOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Write([]byte("Asterisk Call Manager/11.0.0\r\n"))
				rd := ami.NewReader(conn, 0, 0)
				frame, err := rd.ReadFrame()
				if err != nil {
					return
				}
				m, err := ami.Parse(frame)
				if err != nil {
					return
				}
				conn.Write([]byte("Response: Success\r\nActionID: " + m.Field("ActionID") + "\r\nMessage: Authentication accepted\r\n\r\n"))
			}()
		}
	}()
	var logs syncBuffer
	const min = 10 * time.Millisecond
	h := newRecorder()
	start(t, ami.Config{Address: ln.Addr().String(), Username: "bridge", Secret: "x", BackoffMin: min, BackoffMax: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, h)
	h.waitFor(t, "five sessions", func(r *recorder) bool { return r.count(kindDisconnected) >= 5 })
	var waits []time.Duration
	for _, m := range regexp.MustCompile(`msg="ami: reconnecting" .*in=(\S+)`).FindAllStringSubmatch(logs.String(), -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, d)
	}
	// Waits are drawn from [b/2, b], b doubling: the fourth is at least 4
	// times the first's bound. Reset after each login, it stayed under it.
	if len(waits) < 4 || waits[3] < 2*min {
		t.Fatalf("waits %v: the backoff starts over after sessions that lasted no time\n%s", waits, logs.String())
	}
}

type quietSink struct{}

func (quietSink) LinkUp(int)                           {}
func (quietSink) LinkDown(error)                       {}
func (quietSink) ChannelEvents([]bridge.ChannelEvent)  {}
func (quietSink) Snapshot([]bridge.Channel, time.Time) {}

// A skipped frame the model would have read (a Hangup, a wanted variable)
// may have changed a call: the PBX's channels are asked for again. One it
// never reads (a variable nobody asked for) asks nothing.
func TestLink_SkippedFrameResyncs(t *testing.T) {
	ami.StopSkipClock(t) // all four skips fall in one gap, however slow the machine
	s := newServer(t, amitest.ServerOptions{})
	var logs syncBuffer
	link := ami.New(ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", MaxLine: 1024, MaxFrame: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, quietSink{})
	done := make(chan error, 1)
	go func() { done <- link.Run(context.Background()) }()
	t.Cleanup(func() { link.Close(); <-done })
	ctx := testContext(t)
	lists := func() int { return strings.Count(string(s.Received()), "Action: CoreShowChannels\r\n") }
	if err := s.Wait(ctx, func() bool { return lists() == 1 }); err != nil { // the resync at connect
		t.Fatal(err)
	}
	big := strings.Repeat("j", 4096)
	s.SendRaw([]byte("Event: VarSet\r\nChannel: PJSIP/100-1\r\nVariable: CRM_LOOKUP_JSON\r\nValue: " + big + "\r\n\r\n" +
		"Event: Hangup\r\nChannel: PJSIP/100-1\r\nUniqueid: 1.1\r\nCause-txt: " + big + "\r\n\r\n"))
	if err := s.Wait(ctx, func() bool { return lists() == 2 }); err != nil {
		t.Fatalf("no resync after a skipped Hangup: %v\n%s", err, logs.String())
	}
	got := logs.String()
	if !strings.Contains(got, `msg="ami: oversize frame skipped" address=`+s.Addr()+` session=1 event=VarSet variable=CRM_LOOKUP_JSON`) || !strings.Contains(got, "resync=false") ||
		!strings.Contains(got, `event=Hangup variable=""`) || !strings.Contains(got, "resync=true") {
		t.Fatalf("log:\n%s", got)
	}
	if link.Skipped() != 2 || link.Connected() == false {
		t.Fatalf("skipped %d, connected %v", link.Skipped(), link.Connected())
	}
	// An action's answer over the limit (a list item) asks nothing: its
	// list is refused as short, and asking it again would loop. Another
	// wanted event right after waits for the next gap.
	s.SendRaw([]byte("Event: CoreShowChannel\r\nActionID: ctib-resync-9\r\nChannel: PJSIP/100-1\r\nApplicationData: " + big + "\r\n\r\n" +
		"Event: Hangup\r\nChannel: PJSIP/100-2\r\nUniqueid: 1.2\r\nCause-txt: " + big + "\r\n\r\nEvent: Marker\r\n\r\n"))
	// The client's own counter: no server state changes once it skips, so
	// the server's Wait would miss it.
	waitUntil(t, "4 skipped frames", func() bool { return link.Skipped() == 4 })
	got = logs.String()
	if n := strings.Count(got, "resync=true"); n != 1 {
		t.Fatalf("%d resyncs asked, want the first Hangup's only:\n%s", n, got)
	}
	// Logged: the first skip, and each that asked a resync; the others of
	// the same 10 s are counted into the next line (a chatty channel with
	// an oversize variable skips one frame an event).
	if n := strings.Count(got, "oversize frame skipped"); n != 2 {
		t.Fatalf("%d skips logged, want 2 of the 4:\n%s", n, got)
	}
}
