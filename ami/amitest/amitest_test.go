package amitest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/staskobzar/goami2"
)

// The embedded captures are the shared fixtures, byte for byte.
func TestCaptures_ByteExact(t *testing.T) {
	names := amitest.Names()
	if len(names) < 30 {
		t.Fatalf("only %d captures embedded", len(names))
	}
	for _, name := range names {
		disk, err := os.ReadFile("captures/" + name + ".ami")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(amitest.Capture(name), disk) {
			t.Errorf("%s: embedded copy differs from captures/", name)
		}
		if shared, err := os.ReadFile("/work/shared/fixtures/asterisk/" + name + ".ami"); err == nil && !bytes.Equal(shared, disk) {
			t.Errorf("%s: differs from the shared fixture", name)
		}
	}
	if amitest.Capture("no-such-capture") != nil || amitest.Frames("no-such-capture") != nil {
		t.Error("unknown capture returned data")
	}
}

// Every frame of every capture parses, joins back to the file exactly, and
// the Event (or Action) counts agree with a plain line count.
func TestCaptures_FramesParse(t *testing.T) {
	for _, name := range amitest.Names() {
		t.Run(name, func(t *testing.T) {
			raw := amitest.Capture(name)
			frames := amitest.Frames(name)
			var joined []byte
			for _, f := range frames {
				joined = append(joined, f.Raw...)
			}
			if !bytes.Equal(joined, raw) {
				t.Fatal("frames do not join back to the capture")
			}

			key := "Event"
			if strings.HasSuffix(name, ".sent") {
				key = "Action"
			}
			want := map[string]int{} // counted from lines, without a parser
			for line := range strings.SplitSeq(string(raw), "\r\n") {
				if v, ok := strings.CutPrefix(line, key+": "); ok {
					want[v]++
				}
			}
			got := map[string]int{}
			for i, f := range frames {
				if f.Banner() {
					if i != 0 || string(f.Raw) != "Asterisk Call Manager/11.0.0\r\n" {
						t.Fatalf("frame %d: unexpected banner %q", i, f.Raw)
					}
					continue
				}
				m, err := f.Message()
				if err != nil {
					t.Fatalf("frame %d: %v\n%s", i, err, f.Raw)
				}
				if lines := bytes.Count(f.Raw, []byte("\r\n")) - 1; m.Len() != lines {
					t.Fatalf("frame %d: %d headers for %d lines", i, m.Len(), lines)
				}
				if v := m.Field(key); v != "" {
					got[v]++
				}
			}
			if len(want) == 0 && !strings.HasPrefix(name, "login-failure") {
				t.Fatalf("no %s lines counted", key)
			}
			if !mapsEqual(got, want) {
				t.Fatalf("%s counts: parsed %v, counted %v", key, got, want)
			}
		})
	}
}

func TestEventsOf(t *testing.T) {
	evs := amitest.EventsOf(amitest.Frames("coreshowchannels"))
	seen := map[string]int{}
	for _, f := range evs {
		seen[f.Event()]++
		if f.IsResponse() || !f.IsEvent() {
			t.Fatalf("not an event: %s", f.Raw)
		}
	}
	for _, ev := range []string{"FullyBooted", "SuccessfulAuth", "CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete", "BridgeListItem", "BridgeListComplete"} {
		if seen[ev] > 0 {
			t.Errorf("%s played", ev)
		}
	}
	if seen["OriginateResponse"] != 1 || seen["Newchannel"] != 4 || seen["Hangup"] != 4 {
		t.Errorf("events: %v", seen)
	}
	// RequestBadFormat is an event of the session, not a list item.
	if evs := amitest.EventsOf(amitest.Frames("misc-actions")); len(evs) != 1 || evs[0].Event() != "RequestBadFormat" {
		t.Errorf("misc-actions events: %d", len(evs))
	}
}

// A raw client replaying a captured client session gets the captured server
// session back, byte for byte.
func TestServer_LoginExact(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	for _, name := range []string{"login-banner", "login-failure"} {
		conn := dial(t, s)
		if _, err := conn.Write(amitest.Capture(name + ".sent")); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn) // both end with the server closing
		if err != nil {
			t.Fatal(err)
		}
		if want := amitest.Capture(name); !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
		}
	}
	if n := len(s.Conns()); n != 2 {
		t.Fatalf("%d connections", n)
	}
	if got, want := s.Conns()[1].Received(), amitest.Capture("login-failure.sent"); !bytes.Equal(got, want) {
		// The Logoff after a refusal may or may not be read before the close.
		if !bytes.HasPrefix(want, got) || !bytes.Contains(got, []byte("Secret: wrong-secret")) {
			t.Errorf("received %q", got)
		}
	}
}

// The misc-actions client session, replayed: every response is the
// captured one (Ping's timestamp aside).
func TestServer_MiscActions(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn := dial(t, s)
	if _, err := conn.Write(amitest.Capture("misc-actions.sent")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(frames []amitest.Frame) map[string][]string {
		out := map[string][]string{}
		for _, f := range frames {
			if id := f.Header("ActionID"); id != "" {
				raw := regexp.MustCompile(`Timestamp: \S+`).ReplaceAllString(string(f.Raw), "Timestamp: X")
				out[id] = append(out[id], raw)
			}
		}
		return out
	}
	gotIDs, wantIDs := byID(amitest.SplitFrames(got)), byID(amitest.Frames("misc-actions"))
	if len(wantIDs) != 9 {
		t.Fatalf("capture has %d ActionIDs", len(wantIDs))
	}
	for id, want := range wantIDs {
		if !slices.Equal(gotIDs[id], want) {
			t.Errorf("%s: got %q\nwant %q", id, gotIDs[id], want)
		}
	}
}

// Played up to the moment the capture asked, the live table renders
// CoreShowChannels, Status and BridgeList as Asterisk did.
func TestServer_ListsFromLiveTable(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn, rd := login(t, s)
	frames := amitest.Frames("coreshowchannels")
	cut := slices.IndexFunc(frames, func(f amitest.Frame) bool { return f.Header("ActionID") == "csc-1" })
	if err := s.PlayFrames(frames[:cut], amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	played := amitest.EventsOf(frames[:cut])
	for i, want := range played {
		if got := readFrame(t, rd); !bytes.Equal(got, want.Raw) {
			t.Fatalf("event %d: got\n%s\nwant\n%s", i, got, want.Raw)
		}
	}
	if live := s.LiveChannels(); len(live) != 4 || live[0].Name != "Local/500@inbound-00000003;1" || live[0].Application != "Wait" {
		t.Fatalf("live channels: %+v", live)
	}

	ask := func(action, id string) [][]byte {
		if _, err := io.WriteString(conn, "Action: "+action+"\r\nActionID: "+id+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for {
			f := readFrame(t, rd)
			out = append(out, f)
			if bytes.Contains(f, []byte("EventList: Complete")) {
				return out
			}
		}
	}
	sameFrames := func(what string, got [][]byte, want []amitest.Frame, mask *regexp.Regexp) {
		t.Helper()
		var g, w []string
		for _, f := range got {
			g = append(g, mask.ReplaceAllString(string(f), ""))
		}
		for _, f := range want {
			w = append(w, mask.ReplaceAllString(string(f.Raw), ""))
		}
		// Asterisk lists channels in hash order: compare as sets, but the
		// response first and the Complete event last.
		if len(g) != len(w) || g[0] != w[0] || g[len(g)-1] != w[len(w)-1] {
			t.Fatalf("%s: got\n%s\nwant\n%s", what, strings.Join(g, ""), strings.Join(w, ""))
		}
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Fatalf("%s: got\n%s\nwant\n%s", what, strings.Join(g, ""), strings.Join(w, ""))
		}
	}
	none := regexp.MustCompile(`^$`)
	sameFrames("CoreShowChannels", ask("CoreShowChannels", "csc-1"), amitest.Frames("coreshowchannels-response-only"), none)
	// One channel writes gsm in the capture; the simulator does not model
	// codecs.
	sameFrames("Status", ask("Status", "status-1"), amitest.Frames("status-response-only"), regexp.MustCompile(`Write(format|trans): [^\r]*\r\n`))
	var bl []amitest.Frame
	for _, f := range frames {
		if f.Header("ActionID") == "bl-1" {
			bl = append(bl, f)
		}
	}
	sameFrames("BridgeList", ask("BridgeList", "bl-1"), bl, none)

	// Once the call is over, the lists are empty.
	if err := s.PlayFrames(frames[cut:], amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	for range amitest.EventsOf(frames[cut:]) {
		readFrame(t, rd)
	}
	var empty []amitest.Frame
	for _, f := range amitest.Frames("misc-actions") {
		if f.Header("ActionID") == "csc-empty" {
			empty = append(empty, f)
		}
	}
	sameFrames("CoreShowChannels after hangup", ask("CoreShowChannels", "csc-empty"), empty, none)
	if live := s.LiveChannels(); len(live) != 0 {
		t.Fatalf("live after hangup: %+v", live)
	}
}

// Rewrite changes ids and nothing else, consistently within a play and
// freshly for each play.
func TestServer_PlayRewrite(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	_, rd := login(t, s)
	orig := amitest.EventsOf(amitest.Frames("mixmonitor"))
	idLike := regexp.MustCompile(`\d+\.\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|-[0-9a-f]{8};`)
	var plays []map[string]string
	for range 2 {
		if err := s.Play("mixmonitor", amitest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
		fresh := map[string]string{} // new value -> old value
		changed := 0
		for i, o := range orig {
			got := readFrame(t, rd)
			gl, ol := strings.Split(string(got), "\r\n"), strings.Split(string(o.Raw), "\r\n")
			if len(gl) != len(ol) {
				t.Fatalf("frame %d: line count changed", i)
			}
			for j := range gl {
				if gl[j] == ol[j] {
					continue
				}
				changed++
				// The only differences are id-shaped tokens, mapped one to one.
				gt, ot := idLike.FindAllString(gl[j], -1), idLike.FindAllString(ol[j], -1)
				if len(gt) != len(ot) || idLike.ReplaceAllString(gl[j], "#") != idLike.ReplaceAllString(ol[j], "#") {
					t.Fatalf("frame %d: %q became %q", i, ol[j], gl[j])
				}
				for k := range gt {
					if prev, ok := fresh[gt[k]]; ok && prev != ot[k] {
						t.Fatalf("%s stands for both %s and %s", gt[k], prev, ot[k])
					}
					fresh[gt[k]] = ot[k]
				}
			}
		}
		if changed < 100 {
			t.Fatalf("only %d lines rewritten", changed)
		}
		for n, o := range fresh {
			if n == o {
				t.Errorf("%s kept", o)
			}
		}
		plays = append(plays, fresh)
	}
	for n := range plays[1] {
		if _, dup := plays[0][n]; dup && strings.Contains(n, ".") {
			t.Errorf("id %s reused across plays", n)
		}
	}
	// The recording file name carries the Uniqueid and follows it.
	if !slices.ContainsFunc(slices.Collect(mapsKeys(plays[0])), func(k string) bool { return plays[0][k] == "1795339072.23" }) {
		t.Error("Uniqueid 1795339072.23 not rewritten")
	}
}

func TestServer_ActionIDMapAndFilters(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn, rd := login(t, s)
	io.WriteString(conn, "Action: Filter\r\nOperation: Add\r\nFilter: !Event: (VarSet|Newexten)\r\nActionID: f1\r\n\r\n")
	if f := readFrame(t, rd); !bytes.Contains(f, []byte("Filter Added Successfully")) {
		t.Fatalf("filter: %s", f)
	}
	if err := s.Play("inbound-call-basic", amitest.PlayOptions{ActionIDMap: map[string]string{"orig-basic-1": "mine-7"}}); err != nil {
		t.Fatal(err)
	}
	var want int
	for _, f := range amitest.EventsOf(amitest.Frames("inbound-call-basic")) {
		if f.Event() != "VarSet" && f.Event() != "Newexten" {
			want++
		}
	}
	for range want {
		f := readFrame(t, rd)
		if bytes.Contains(f, []byte("Event: VarSet")) || bytes.Contains(f, []byte("Event: Newexten")) {
			t.Fatalf("filtered event sent: %s", f)
		}
		if bytes.HasPrefix(f, []byte("Event: OriginateResponse")) && !bytes.Contains(f, []byte("\r\nActionID: mine-7\r\n")) {
			t.Fatalf("ActionID not mapped: %s", f)
		}
	}
	// Nothing else is pending: the next frame is the Ping's answer.
	io.WriteString(conn, "Action: Ping\r\nActionID: p\r\n\r\n")
	if f := readFrame(t, rd); !bytes.HasPrefix(f, []byte("Response: Success\r\nActionID: p\r\nPing: Pong\r\n")) {
		t.Fatalf("after play: %s", f)
	}
}

func TestServer_RestartStopsPlay(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn, _ := login(t, s)
	done := make(chan error, 1)
	go func() { done <- s.Play("inbound-call-basic", amitest.PlayOptions{Pace: time.Hour}) }()
	ctx := context.Background()
	if err := s.Wait(ctx, func() bool { return len(s.LiveChannels()) > 0 }); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if err := <-done; !errors.Is(err, amitest.ErrRestarted) {
		t.Fatalf("Play: %v", err)
	}
	if len(s.LiveChannels()) != 0 {
		t.Fatal("live channels survived a restart")
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err) // the server closed it
	}
	// The next client is served as new.
	login(t, s)
}

func TestServer_OnActionAndReply(t *testing.T) {
	var s *amitest.Server
	s = newServer(t, amitest.ServerOptions{OnAction: func(a *goami2.Message) bool {
		if a.Field("Action") != "Originate" {
			return false
		}
		s.Reply(a, amitest.Response(a, "Error", "Message", "Originate failed"))
		return true
	}})
	conn, rd := login(t, s)
	io.WriteString(conn, "Action: Originate\r\nChannel: Local/999@inbound\r\nActionID: o1\r\n\r\n")
	if got, want := string(readFrame(t, rd)), "Response: Error\r\nActionID: o1\r\nMessage: Originate failed\r\n\r\n"; got != want {
		t.Fatalf("got %q", got)
	}
	io.WriteString(conn, "Action: Hangup\r\nChannel: Local/1@x-00000001;1\r\nActionID: h1\r\n\r\n")
	if got := string(readFrame(t, rd)); got != "Response: Error\r\nActionID: h1\r\nMessage: No such channel\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	io.WriteString(conn, "Action: Frobnicate\r\nActionID: u1\r\n\r\n")
	if got := string(readFrame(t, rd)); !strings.HasPrefix(got, "Response: Error\r\nActionID: u1\r\nMessage: Invalid/unknown command: Frobnicate.") {
		t.Fatalf("got %q", got)
	}
}

// A stalled server delays its answers; it does not lose them.
func TestServer_Stall(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn, rd := login(t, s)
	const d = 100 * time.Millisecond
	t0 := time.Now()
	s.Stall(d)
	io.WriteString(conn, "Action: Ping\r\nActionID: p1\r\n\r\n")
	if f := readFrame(t, rd); !bytes.Contains(f, []byte("ActionID: p1\r\nPing: Pong")) {
		t.Fatalf("got %s", f)
	}
	if elapsed := time.Since(t0); elapsed < d {
		t.Fatalf("answered after %v, during the stall", elapsed)
	}
}

func newServer(t testing.TB, opts amitest.ServerOptions) *amitest.Server {
	return amitest.NewTestServer(t, opts)
}

func dial(t testing.TB, s *amitest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// login logs a raw client in and consumes the login exchange.
func login(t testing.TB, s *amitest.Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn := dial(t, s)
	rd := bufio.NewReader(conn)
	if banner, err := rd.ReadString('\n'); err != nil || banner != "Asterisk Call Manager/11.0.0\r\n" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	io.WriteString(conn, "Action: Login\r\nUsername: bridge\r\nSecret: bridgepass\r\nActionID: login-1\r\n\r\n")
	for _, want := range []string{"Response: Success", "Event: FullyBooted", "Event: SuccessfulAuth"} {
		if f := readFrame(t, rd); !bytes.HasPrefix(f, []byte(want+"\r\n")) {
			t.Fatalf("login: %s", f)
		}
	}
	return conn, rd
}

func readFrame(t testing.TB, rd *bufio.Reader) []byte {
	t.Helper()
	var f []byte
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read: %v after %q", err, f)
		}
		f = append(f, line...)
		if string(line) == "\r\n" {
			return f
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// QueueStatus lists the members as the played events left them, in the
// captured answer's format: before any, the capture itself (in a call,
// Status 2); after inbound-call-basic, its last QueueMemberStatus (1).
func TestServer_QueueStatusFromPlayedEvents(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	conn, rd := login(t, s)
	ask := func(id string) []string {
		t.Helper()
		if _, err := io.WriteString(conn, "Action: QueueStatus\r\nActionID: "+id+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var out []string
		for {
			f := string(readFrame(t, rd))
			if strings.HasPrefix(f, "Event: ") || strings.HasPrefix(f, "Response: ") {
				out = append(out, f)
			}
			if strings.Contains(f, "EventList: Complete") {
				return out
			}
		}
	}
	captured := amitest.Frames("queue-status-response-only")
	before := ask("qs-during")
	if len(before) != len(captured) {
		t.Fatalf("before any event: %d frames, want the capture's %d", len(before), len(captured))
	}
	for i := range before {
		if before[i] != string(captured[i].Raw) {
			t.Fatalf("frame %d: got\n%s\nwant\n%s", i, before[i], captured[i].Raw)
		}
	}
	frames := amitest.Frames("inbound-call-basic")
	if err := s.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	for range amitest.EventsOf(frames) {
		readFrame(t, rd)
	}
	after := ask("qs-2")
	if len(after) != 4 || !strings.HasPrefix(after[2], "Event: QueueMember\r\n") {
		t.Fatalf("after the call: %q", after)
	}
	m := after[2]
	for _, want := range []string{"Queue: support\r\n", "Name: Agent100\r\n", "Location: Local/100@agents\r\n", "Status: 1\r\n",
		"InCall: 0\r\n", "Paused: 0\r\n", "ActionID: qs-2\r\n"} {
		if !strings.Contains(m, want) {
			t.Fatalf("member lacks %q:\n%s", want, m)
		}
	}
	// Same header names in the same order as the capture's QueueMember.
	names := func(f string) (out []string) {
		for _, l := range strings.Split(strings.TrimSpace(f), "\r\n") {
			n, _, _ := strings.Cut(l, ": ")
			out = append(out, n)
		}
		return out
	}
	if got, want := names(m), names(string(captured[2].Raw)); !slices.Equal(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
}
