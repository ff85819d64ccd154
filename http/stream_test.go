package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	nethttp "net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
)

type sseEvent struct {
	id, typ string
	ev      bridge.Event
}

type sseClient struct {
	t      *testing.T
	events chan sseEvent
	pings  chan struct{}
	status int
	ctype  string
	cancel context.CancelFunc
}

// openStream reads /v1/events/stream in the background.
func (r *rig) openStream(query, lastID string) *sseClient {
	r.t.Helper()
	return r.openStreamAs(r.keys["read"], query, lastID)
}

// openStreamAs opens the stream with key (an agent's, a tenant's...).
func (r *rig) openStreamAs(key, query, lastID string) *sseClient {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := nethttp.NewRequestWithContext(ctx, "GET", r.base+"/v1/events/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	c := &sseClient{t: r.t, events: make(chan sseEvent, 100), pings: make(chan struct{}, 100), status: res.StatusCode,
		ctype: res.Header.Get("Content-Type"), cancel: cancel}
	r.t.Cleanup(c.close)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": ping":
				select {
				case c.pings <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &cur.ev); err != nil {
					r.t.Errorf("data %q: %v", line, err)
				}
			case line == "" && cur.id != "":
				c.events <- cur
				cur = sseEvent{}
			}
		}
		close(c.events)
	}()
	return c
}

func (c *sseClient) close() { c.cancel() }

// next returns the next event, failing after 5 s.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	select {
	case e, ok := <-c.events:
		if !ok {
			c.t.Fatal("stream ended")
		}
		if e.id != e.ev.ID || e.typ != e.ev.Type {
			c.t.Fatalf("id/event lines %q %q do not match the data %+v", e.id, e.typ, e.ev)
		}
		return e
	case <-time.After(time.Minute): // a bound on a failure only
		c.t.Fatal("no event within a minute")
	}
	return sseEvent{}
}

func (c *sseClient) nextN(n int) []string {
	var out []string
	for range n {
		out = append(out, c.next().typ)
	}
	return out
}

func TestEventStreamResumes(t *testing.T) {
	r := newRig(t, rigOptions{})
	a := r.openStream("?types=call.*", "")
	if a.status != 200 || a.ctype != "text/event-stream" {
		t.Fatalf("stream: %d %s", a.status, a.ctype)
	}
	select { // heartbeats keep idle proxies from cutting the stream
	case <-a.pings:
	case <-time.After(time.Minute): // a bound on a failure only
		t.Fatal("no heartbeat")
	}
	if err := r.ast.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	first, second, third := a.next(), a.next(), a.next()
	if first.typ+","+second.typ+","+third.typ != "call.ringing,call.answered,call.ended" || first.ev.ConversationID != third.ev.ConversationID {
		t.Fatalf("stream: %s %s %s", first.typ, second.typ, third.typ)
	}
	a.close()

	// Resuming after the first: the other two from the store, then live,
	// nothing twice.
	b := r.openStream("?types=call.*", first.id)
	if got := b.next(); got.id != second.id {
		t.Fatalf("resumed with %s, want %s", got.typ, second.typ)
	}
	if got := b.next(); got.id != third.id {
		t.Fatalf("then %s, want %s", got.typ, third.typ)
	}
	if err := r.ast.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true}); err != nil {
		t.Fatal(err)
	}
	live := b.next()
	if live.typ != "call.ringing" || live.ev.ConversationID == first.ev.ConversationID {
		t.Fatalf("live after replay: %s of %s", live.typ, live.ev.ConversationID)
	}

	res := r.call("GET", "/v1/events/stream", "read", nil, "Last-Event-ID", "evt_unknown")
	res.problem(t, 404, "Last-Event-ID")
	r.call("GET", "/v1/events/stream?types=calls.*", "read", nil).problem(t, 400, "types")
	r.call("GET", "/v1/events/stream?agent=1%0A2", "read", nil).problem(t, 400, "agent")
	r.call("GET", "/v1/events/stream", "", nil).problem(t, 401, "")
}

// A stream filtered by agent sees that agent's calls and states only.
func TestEventStreamAgentFilter(t *testing.T) {
	r := newRig(t, rigOptions{})
	s101 := r.openStream("?agent=101", "")
	s100 := r.openStream("?agent=100&types=call.ringing,call.ended", "")
	for _, c := range []string{"inbound-call-basic", "blind-transfer"} { // agent 100, then 101
		if err := r.ast.Play(c, amitest.PlayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s100.nextN(2); strings.Join(got, ",") != "call.ringing,call.ended" {
		t.Fatalf("agent 100: %v", got)
	}
	e := s101.next()
	if e.typ != "call.ringing" || e.ev.Agent.Extension != "101" {
		t.Fatalf("agent 101's first event: %s %+v", e.typ, e.ev.Agent)
	}
}

// An agent key's stream resumed with Last-Event-ID tells the same story
// as the stream that never broke: the conversation the agent had before
// the break still counts as the agent's, so its later events (the call
// blind-transferred to 101, its end) follow though they name only 101.
func TestAgentStreamResumesWithItsConversations(t *testing.T) {
	r := newRig(t, rigOptions{})
	key := r.agentKey("100")
	whole := r.openStreamAs(key, "?types=call.*", "")
	capture, err := os.ReadFile("../ami/testdata/sip/sip-blind-transfer-phone.ami")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ast.PlayFrames(amitest.SplitFrames(capture), amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	var story []sseEvent
	for len(story) == 0 || story[len(story)-1].typ != "call.ended" {
		story = append(story, whole.next())
	}
	var names101 bool
	for _, e := range story[1:] {
		names101 = names101 || e.ev.Agent != nil && e.ev.Agent.Extension == "101"
	}
	if !names101 {
		t.Fatalf("the flow must hand the call to 101 for this test to mean anything: %v", story)
	}
	for cut := 0; cut < len(story)-1; cut++ {
		resumed := r.openStreamAs(key, "?types=call.*", story[cut].id)
		for _, want := range story[cut+1:] {
			if got := resumed.next(); got.id != want.id {
				t.Fatalf("resumed after %s (#%d): got %s %s, want %s %s", story[cut].typ, cut, got.typ, got.id, want.typ, want.id)
			}
		}
		resumed.close()
	}
}

// A stream is one request: revoking its key (the CLI deletes the row, from
// another process) ends it at the next heartbeat, and the reconnect is
// refused.
func TestEventStreamEndsWhenKeyRevoked(t *testing.T) {
	r := newRig(t, rigOptions{})
	a := r.openStream("", "")
	<-a.pings // the heartbeat runs (20 ms in the rig)
	<-a.pings // and the key was checked at least once while there
	if err := r.db.DeleteAPIKey(context.Background(), r.keyIDs["read"]); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		for range a.events { // until the server ends the stream
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(time.Minute): // a bound on a failure only
		t.Fatal("the revoked key's stream goes on")
	}
	if res := r.call("GET", "/v1/calls", "read", nil); res.status != 401 {
		t.Fatalf("revoked key: %d", res.status)
	}
}
