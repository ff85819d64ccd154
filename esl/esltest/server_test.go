package esltest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

func newServer(t *testing.T) *esltest.Server {
	t.Helper()
	s, err := esltest.NewServer(esltest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a raw ESL client.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *esltest.Server) *client {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(cmd string) {
	if _, err := io.WriteString(c.c, cmd+"\n\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) frame() *esl.Frame {
	c.t.Helper()
	f, err := esl.ReadFrame(c.br, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// login authenticates and subscribes.
func (c *client) login(subscribe string) {
	c.t.Helper()
	c.frame() // auth/request
	c.send("auth ClueCon")
	if f := c.frame(); f.Get("Reply-Text") != "+OK accepted" {
		c.t.Fatalf("auth: %+v", f)
	}
	if subscribe != "" {
		c.send("event " + subscribe)
		if f := c.frame(); !strings.HasPrefix(f.Get("Reply-Text"), "+OK event listener enabled") {
			c.t.Fatalf("subscribe: %+v", f)
		}
	}
}

// TestAuthExchanges sends what the captured clients sent and expects
// byte for byte what FreeSWITCH answered, up to its closing the socket.
func TestAuthExchanges(t *testing.T) {
	for _, name := range []string{"auth-banner", "auth-failure"} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t)
			capture, err := esltest.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, s)
			if _, err := c.c.Write(capture.Sent); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c.c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, capture.Raw) {
				t.Fatalf("got %q\nwant %q", got, capture.Raw)
			}
			deadline := time.Now().Add(time.Minute) // a bound on a failure only
			for !bytes.Equal(s.Received()[0], capture.Sent) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if r := s.Received()[0]; !bytes.Equal(r, capture.Sent) {
				t.Fatalf("recorded %q", r)
			}
		})
	}
}

// TestPlayByteExact: a client subscribed to ALL gets the capture's event
// frames exactly; one subscribed to a list gets only those events.
func TestPlayByteExact(t *testing.T) {
	s := newServer(t)
	all, some := dial(t, s), dial(t, s)
	all.login("plain ALL")
	some.login("plain CHANNEL_ANSWER CUSTOM callcenter::info")
	capture, _ := esltest.Load("callcenter")
	if err := s.Play("callcenter", esltest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	var want []byte
	var names []string
	for _, f := range capture.Events() {
		want = append(want, f.Raw...)
		if n := f.Event.Get("Event-Name"); n == "CHANNEL_ANSWER" || f.Event.Get("Event-Subclass") == "callcenter::info" {
			names = append(names, f.Event.Name())
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(all.br, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ALL: %v, %d bytes differ", err, len(want))
	}
	var gotNames []string
	for range names {
		e, err := esl.ParsePlain(some.frame().Body)
		if err != nil {
			t.Fatal(err)
		}
		gotNames = append(gotNames, e.Name())
	}
	if !slices.Equal(gotNames, names) {
		t.Fatalf("filtered: %v, want %v", gotNames, names)
	}
}

// TestPlayRewrite replays a capture twice as new calls.
func TestPlayRewrite(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	c.login("plain ALL")
	capture, _ := esltest.Load("kill")
	n := len(capture.Events())
	var last uint64
	seen := map[string]string{} // channel name -> uuid, per replay
	for replay := range 2 {
		if err := s.Play("kill", esltest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			f := c.frame()
			e, err := esl.ParsePlain(f.Body) // Content-Length must still frame it
			if err != nil {
				t.Fatal(err)
			}
			if e.Get("Core-UUID") != s.CoreUUID() {
				t.Fatalf("core uuid %q", e.Get("Core-UUID"))
			}
			if replay == 1 && i == 0 && e.Seq() <= last {
				t.Fatalf("sequence went back: %d after %d", e.Seq(), last)
			}
			last = max(last, e.Seq())
			if name, id := e.Get("Channel-Name"), e.Get("Unique-ID"); e.Get("Event-Name") == "CHANNEL_CREATE" {
				if strings.Contains(string(capture.Raw), id) || seen[name] == id {
					t.Fatalf("%s kept uuid %s", name, id)
				}
				seen[name] = id
			}
		}
	}
}

// TestShowChannels plays the call that was live when show-channels was
// captured and compares the simulator's answers with FreeSWITCH's.
func TestShowChannels(t *testing.T) {
	s := newServer(t)
	control, _ := esltest.Load("show-channels-control")
	bridgeAt := slices.IndexFunc(control.Events(), func(f esltest.Frame) bool { return f.Event.Name() == "BACKGROUND_JOB" })
	if err := s.Play("show-channels-control", esltest.PlayOptions{To: bridgeAt + 1}); err != nil {
		t.Fatal(err)
	}
	captured, _ := esltest.Load("show-channels")
	var replies []string
	for _, f := range captured.Frames {
		if f.ContentType == "api/response" {
			replies = append(replies, string(f.Body))
		}
	}
	c := dial(t, s)
	c.login("")
	api := func(cmd string) string {
		c.send("api " + cmd)
		f := c.frame()
		if f.ContentType() != "api/response" {
			t.Fatalf("%s: %+v", cmd, f)
		}
		return string(f.Body)
	}
	for i, cmd := range []string{"show channels as json", "show calls as json", "show bridged_calls as json"} {
		got, want := rows(t, api(cmd)), rows(t, replies[i])
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", cmd, len(got), len(want))
		}
		for j := range want {
			if !slices.Equal(got[j].keys, want[j].keys) {
				t.Fatalf("%s row %d keys:\n%v\nwant\n%v", cmd, j, got[j].keys, want[j].keys)
			}
			for _, k := range []string{"uuid", "name", "direction", "created_epoch", "dest", "context", "b_uuid", "b_name", "initial_cid_num"} {
				if got[j].vals[k] != want[j].vals[k] {
					t.Errorf("%s row %d %s = %q, want %q", cmd, j, k, got[j].vals[k], want[j].vals[k])
				}
			}
		}
	}
	if got, want := api("show calls count"), replies[4]; got != want {
		t.Fatalf("calls count %q, want %q", got, want)
	}
	if got := api("status"); got != replies[5] {
		t.Fatalf("status %q", got)
	}
	if got := api("version"); got != replies[6] {
		t.Fatalf("version %q", got)
	}
	// The rest of the control capture hangs the call up.
	if err := s.Play("show-channels-control", esltest.PlayOptions{From: bridgeAt + 1}); err != nil {
		t.Fatal(err)
	}
	if got := api("show channels as json"); got != "{\"row_count\": 0}\n" {
		t.Fatalf("after hangup: %q", got)
	}
}

type row struct {
	keys []string
	vals map[string]string
}

// rows decodes a show ... as json reply keeping the key order. The calls
// rows of FreeSWITCH come in another order than the channels': sort by uuid.
func rows(t *testing.T, body string) []row {
	t.Helper()
	var doc struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var out []row
	for _, raw := range doc.Rows {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.Token()
		r := row{vals: map[string]string{}}
		for d.More() {
			k, _ := d.Token()
			v, _ := d.Token()
			r.keys = append(r.keys, k.(string))
			r.vals[k.(string)], _ = v.(string)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.vals["uuid"], b.vals["uuid"]) })
	return out
}

// TestJSONSubscriber gets a plain capture re-encoded as JSON with the same
// headers and body.
func TestJSONSubscriber(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	c.login("json ALL")
	if err := s.Play("originate-failure", esltest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	capture, _ := esltest.Load("originate-failure")
	for _, f := range capture.Events() {
		got := c.frame()
		if got.ContentType() != "text/event-json" {
			t.Fatalf("content type %q", got.ContentType())
		}
		j, err := esl.ParseJSON(got.Body)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := esl.ParsePlain(f.Body)
		delete(j.Headers, "Content-Length")
		delete(p.Headers, "Content-Length")
		if len(j.Headers) != len(p.Headers) || j.Body != p.Body {
			t.Fatalf("%s: %d headers, want %d; body %q want %q", p.Name(), len(j.Headers), len(p.Headers), j.Body, p.Body)
		}
		for k, v := range p.Headers {
			if j.Headers[k] != v {
				t.Fatalf("%s %s = %q, want %q", p.Name(), k, j.Headers[k], v)
			}
		}
	}
}

// TestBgapi: the reply comes at once with the Job-UUID asked for, the
// result later as BACKGROUND_JOB.
func TestBgapi(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	c.login("plain BACKGROUND_JOB")
	const job = "7f4db2a4-8f2b-4c4e-9d2e-1a0b3c4d5e6f"
	c.send("bgapi originate loopback/1/default &park\nJob-UUID: " + job)
	if f := c.frame(); f.Get("Reply-Text") != "+OK Job-UUID: "+job || f.Get("Job-UUID") != job {
		t.Fatalf("reply %+v", f)
	}
	e, err := esl.ParsePlain(c.frame().Body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Get("Job-UUID") != job || e.Get("Job-Command-Arg") != "loopback/1/default &park" || e.Body != "-ERR NO_ROUTE_DESTINATION\n" {
		t.Fatalf("job event %+v %q", e.Headers, e.Body)
	}
	if !bytes.HasSuffix(s.Received()[0], []byte("Job-UUID: "+job+"\n\n")) {
		t.Fatalf("recorded %q", s.Received()[0])
	}
}

// TestHeartbeatAndAPIOverride: HEARTBEAT events go to their subscribers
// with the server's Core-UUID and rising sequences; Options.API answers
// before the built-in handlers.
func TestHeartbeatAndAPIOverride(t *testing.T) {
	s, err := esltest.NewServer(esltest.Options{Heartbeat: 10 * time.Millisecond, Password: "secret",
		API: func(cmd, args string) (string, bool) { return "+OK " + args + "\n", cmd == "echo" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, s)
	c.frame()
	c.send("auth secret")
	c.frame()
	c.send("event json HEARTBEAT")
	c.frame()
	var last uint64
	for range 3 {
		f := c.frame()
		e, err := esl.ParseJSON(f.Body)
		if err != nil || e.Name() != "HEARTBEAT" || e.Get("Core-UUID") != s.CoreUUID() || e.Seq() <= last {
			t.Fatalf("%v %+v", err, f)
		}
		last = e.Seq()
	}
	c.send("api echo hi there")
	for {
		if f := c.frame(); f.ContentType() == "api/response" {
			if string(f.Body) != "+OK hi there\n" {
				t.Fatalf("echo: %q", f.Body)
			}
			break
		}
	}
}
