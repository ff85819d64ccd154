package hubspot_test

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connectors/connectorstest"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
	"github.com/ctibridge/ctibridge/connectors/hubspot"
	"github.com/ctibridge/ctibridge/connectors/hubspot/hubspottest"
)

// The connectors' shared test helpers.
type (
	memState = connectorstest.MemState
	logBuf   = connectorstest.LogBuffer
)

var ctx = context.Background()

func newFake(t *testing.T) *hubspottest.Server {
	f := hubspottest.New()
	t.Cleanup(f.Close)
	f.SetOwners("7", "8", "9")
	return f
}

func newConnector(t *testing.T, fake *hubspottest.Server, state *memState, logs *logBuf, edit func(*hubspot.Options)) *hubspot.Connector {
	t.Helper()
	opts := hubspot.Options{Token: fake.Token, APIURL: fake.URL, Owners: map[string]string{"100": "7", "101": "8"},
		State: state, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&opts)
	}
	c, err := hubspot.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var start = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func ev(conv string, seq int64, typ string, dir bridge.Direction, agent string, edit func(*bridge.Event)) bridge.Record {
	call := &bridge.Call{ID: conv, Direction: dir, StartedAt: start,
		Caller: bridge.Party{Number: "5551234", E164: "+15555551234"}, Callee: bridge.Party{Number: "200"}}
	if dir == bridge.DirectionOutbound {
		call.Caller, call.Callee = bridge.Party{Number: "100"}, bridge.Party{Number: "5559876", E164: "+15555559876"}
	}
	e := bridge.Event{ID: fmt.Sprintf("evt_%s_%d", conv, seq), Type: typ, Sequence: seq, ConversationID: conv, Call: call, OccurredAt: start}
	if agent != "" {
		e.Agent = &bridge.Agent{Extension: agent}
	}
	if edit != nil {
		edit(&e)
	}
	r, err := bridge.NewRecord(e)
	if err != nil {
		panic(err)
	}
	return r
}

func ended(disp bridge.Disposition, cause int, agent string) func(*bridge.Event) {
	return func(e *bridge.Event) {
		e.Call.Disposition = disp
		e.Call.HangupCause = &bridge.HangupCause{Code: cause, Text: "Cause " + fmt.Sprint(cause)}
		if agent != "" {
			e.Call.Agent = &bridge.Agent{Extension: agent}
		}
		if disp == bridge.DispositionAnswered {
			a, en := start.Add(2*time.Second), start.Add(7500*time.Millisecond)
			e.Call.AnsweredAt, e.Call.EndedAt = &a, &en
			talk := int64(5)
			e.Call.TalkS = &talk
		}
	}
}

func seq(rs []hubspottest.Request) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Short("dir", "status", "owner", "duration", "contact"))
	}
	return strings.Join(s, " ")
}

func deliver(t *testing.T, c *hubspot.Connector, recs ...bridge.Record) {
	t.Helper()
	for _, r := range recs {
		if err := c.Deliver(ctx, r); err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
	}
}

// An answered inbound call: created at the pop, IN_PROGRESS at the
// answer, COMPLETED with the talk time in ms at the end; ring-all moves
// the owner to the agent who answered.
func TestAnsweredRingAll(t *testing.T) {
	fake := newFake(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	in := bridge.DirectionInbound
	deliver(t, c,
		ev("conv_1", 1, bridge.EventCallRinging, in, "100", nil),
		ev("conv_1", 2, bridge.EventCallRinging, in, "101", nil),
		ev("conv_1", 3, bridge.EventCallAnswered, in, "101", nil),
		ev("conv_1", 4, bridge.EventCallEnded, in, "", ended(bridge.DispositionAnswered, 16, "101")))
	want := "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS,owner=8) update(status=COMPLETED,duration>0)"
	if got := seq(fake.Calls()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	es := fake.Engagements()
	if len(es) != 1 {
		t.Fatalf("%d engagements", len(es))
	}
	p := es[0].Properties
	if p["hs_call_duration"] != "5500" || p["hs_call_from_number"] != "+15555551234" || p["hs_call_to_number"] != "200" ||
		p["hs_timestamp"] != fmt.Sprint(start.UnixMilli()) || !strings.Contains(p["hs_call_title"], "conv_1") || p["hubspot_owner_id"] != "8" {
		t.Errorf("engagement %v", p)
	}
	for _, r := range fake.Requests() {
		if r.Status/100 != 2 {
			t.Errorf("refused %+v", r)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		disp  bridge.Disposition
		cause int
		want  string
	}{
		{bridge.DispositionAnswered, 16, "COMPLETED"}, {bridge.DispositionBusy, 17, "BUSY"},
		{bridge.DispositionCancelled, 16, "CANCELED"}, {bridge.DispositionNoAnswer, 19, "NO_ANSWER"},
		{bridge.DispositionFailed, 17, "BUSY"}, {bridge.DispositionFailed, 21, "BUSY"},
		{bridge.DispositionFailed, 18, "NO_ANSWER"}, {bridge.DispositionFailed, 34, "FAILED"},
		{bridge.DispositionFailed, 1, "FAILED"},
	} {
		call := &bridge.Call{Disposition: tc.disp, HangupCause: &bridge.HangupCause{Code: tc.cause}}
		if got := hubspot.Status(call); got != tc.want {
			t.Errorf("%s/%d: %s, want %s", tc.disp, tc.cause, got, tc.want)
		}
	}
}

// A call first seen at its end is created once with its final status.
func TestEndOnlyAndOutbound(t *testing.T) {
	fake := newFake(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	deliver(t, c, ev("conv_2", 1, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionNoAnswer, 19, "")))
	// Outbound: the agent's own phone rings and answers first (no number
	// of the customer yet in a click-to-call: nothing); the customer's
	// answer is the answer.
	out := bridge.DirectionOutbound
	deliver(t, c,
		ev("conv_3", 1, bridge.EventCallRinging, out, "100", func(e *bridge.Event) { e.Call.Callee = bridge.Party{} }),
		ev("conv_3", 2, bridge.EventCallAnswered, out, "100", func(e *bridge.Event) { e.Call.Callee = bridge.Party{} }),
		ev("conv_3", 3, bridge.EventCallRinging, out, "100", func(e *bridge.Event) { e.Party = bridge.PartyCustomer }),
		ev("conv_3", 4, bridge.EventCallAnswered, out, "100", func(e *bridge.Event) { e.Party = bridge.PartyCustomer }),
		ev("conv_3", 5, bridge.EventCallEnded, out, "", ended(bridge.DispositionAnswered, 16, "100")))
	want := "create(dir=INBOUND,status=NO_ANSWER,duration=0) create(dir=OUTBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED,duration>0)"
	if got := seq(fake.Calls()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if p := fake.Engagements()[1].Properties; p["hs_call_to_number"] != "+15555559876" {
		t.Errorf("outbound %v", p)
	}
}

// associate_contacts: the customer's number is looked up and the call is
// created associated with the contact found; no contact, no association.
func TestAssociateContacts(t *testing.T) {
	fake := newFake(t)
	contact := fake.AddContact("+15555551234")
	c := newConnector(t, fake, &memState{}, &logBuf{}, func(o *hubspot.Options) { o.AssociateContacts = true })
	deliver(t, c, ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
		ev("conv_2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", func(e *bridge.Event) {
			e.Call.Caller = bridge.Party{Number: "5550000", E164: "+15555550000"}
		}))
	want := "search-contacts() create(dir=INBOUND,status=RINGING,owner=7,contact=" + contact + ") search-contacts() create(dir=INBOUND,status=RINGING,owner=7)"
	if got := seq(fake.Calls()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if es := fake.Engagements(); len(es[0].Contacts) != 1 || es[0].Contacts[0] != contact || len(es[1].Contacts) != 0 {
		t.Errorf("engagements %+v", es)
	}
}

// An unmapped agent is a permanent error naming the extension and the
// keys; with a default owner the call is logged under it.
func TestUnmappedAgent(t *testing.T) {
	fake := newFake(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	err := c.Deliver(ctx, ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "102", nil))
	if _, _, perm := bridge.ConnectorOutcome(err); !perm || !strings.Contains(fmt.Sprint(err), "agent extension 102 has no HubSpot owner") ||
		!strings.Contains(fmt.Sprint(err), "connectors.hubspot.owners") {
		t.Fatalf("err %v", err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
	c = newConnector(t, fake, &memState{}, &logBuf{}, func(o *hubspot.Options) { o.DefaultOwner = "9" })
	deliver(t, c, ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "102", nil))
	if got := seq(fake.Calls()); got != "create(dir=INBOUND,status=RINGING,owner=9)" {
		t.Fatalf("got %s", got)
	}
}

// A create whose answer was lost (the work done, a 504 answered): the
// retry finds the call by its title and adopts it; nothing is doubled.
func TestLostCreateAnswerAdopted(t *testing.T) {
	fake := newFake(t)
	state := &memState{}
	c := newConnector(t, fake, state, &logBuf{}, nil)
	fake.LoseAnswer("create", 1)
	r := ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	if err := c.Deliver(ctx, r); err == nil || !strings.Contains(err.Error(), "HTTP 504") {
		t.Fatalf("err %v", err)
	}
	// A restart: a new connector on the same state.
	c = newConnector(t, fake, state, &logBuf{}, nil)
	deliver(t, c, r, ev("conv_1", 2, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionBusy, 17, "100")))
	want := "create(dir=INBOUND,status=RINGING,owner=7) search-calls() update(status=BUSY,duration=0)"
	if got := seq(fake.Calls()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if n := len(fake.Engagements()); n != 1 {
		t.Fatalf("%d engagements", n)
	}
}

// HubSpot's search lags behind a create: a retry whose search misses
// within the search lag waits (retryable, with a wait) instead of creating
// a second call; after the lag it searches again and finds it. A create
// refused with a 4xx is known not done: no search before the next try.
func TestLostCreateSearchLag(t *testing.T) {
	fake := newFake(t)
	now := start
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	fake.SetClock(clock)
	fake.SetSearchLag(5 * time.Second)
	state := &memState{}
	c := newConnector(t, fake, state, &logBuf{}, func(o *hubspot.Options) { o.Now, o.SearchLag = clock, 8*time.Second })
	fake.LoseAnswer("create", 1)
	r := ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	if err := c.Deliver(ctx, r); err == nil {
		t.Fatal("lost answer taken as success")
	}
	advance(2 * time.Second)
	err := c.Deliver(ctx, r)
	_, wait, perm := bridge.ConnectorOutcome(err)
	if err == nil || perm || wait != 6*time.Second || !strings.Contains(err.Error(), "search does not show it yet") {
		t.Fatalf("err %v wait %v", err, wait)
	}
	advance(6 * time.Second)
	deliver(t, c, r)
	if got, want := seq(fake.Calls()), "create(dir=INBOUND,status=RINGING,owner=7) search-calls() search-calls()"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if n := len(fake.Engagements()); n != 1 {
		t.Fatalf("%d engagements", n)
	}

	// Refused with a 4xx (an owner HubSpot does not know): not created, so
	// the retry creates without searching.
	fake.SetOwners("8")
	r2 := ev("conv_2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	if err := c.Deliver(ctx, r2); err == nil || !strings.Contains(err.Error(), "HTTP 400 VALIDATION_ERROR") {
		t.Fatalf("err %v", err)
	}
	fake.SetOwners("7", "8")
	deliver(t, c, r2)
	rs := fake.Requests()
	if got := seq(rs[len(rs)-2:]); got != "create(dir=INBOUND,status=RINGING,owner=7) create(dir=INBOUND,status=RINGING,owner=7)" {
		t.Fatalf("got %s", got)
	}
}

// 401 and 403 are dead letters that say what to fix, never holding the
// token; 429 waits as HubSpot says and empties our bucket; 5xx is retried.
func TestErrors(t *testing.T) {
	fake := newFake(t)
	logs := &logBuf{}
	c := newConnector(t, fake, &memState{}, logs, func(o *hubspot.Options) { o.Token = "pat-na1-wrong-token-123" })
	err := c.Deliver(ctx, ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	code, _, perm := bridge.ConnectorOutcome(err)
	if code != 401 || !perm || !strings.Contains(err.Error(), "INVALID_AUTHENTICATION") || !strings.Contains(err.Error(), "connectors.hubspot.token") ||
		strings.Contains(err.Error()+logs.String(), "wrong-token") {
		t.Fatalf("401: %v", err)
	}

	fake.SetBudget(1)
	c = newConnector(t, fake, &memState{}, logs, nil)
	deliver(t, c, ev("conv_2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	err = c.Deliver(ctx, ev("conv_3", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	code, wait, perm := bridge.ConnectorOutcome(err)
	if code != 429 || perm || wait != 10*time.Second || !strings.Contains(err.Error(), "ten_secondly_rolling") {
		t.Fatalf("429: %v %v", err, wait)
	}

	// The daily limit: no use asking again in a second.
	fake.SetBudget(100)
	fake.SetDailyBudget(1)
	deliver(t, c, ev("conv_4", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	err = c.Deliver(ctx, ev("conv_5", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	code, wait, perm = bridge.ConnectorOutcome(err)
	if code != 429 || perm || wait < time.Hour || !strings.Contains(err.Error(), "daily API limit") {
		t.Fatalf("daily 429: %v %v, want a wait of an hour that says why", err, wait)
	}
	fake.SetDailyBudget(0)

	fake.SetOutage(true)
	err = c.Deliver(ctx, ev("conv_3", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	if code, _, perm := bridge.ConnectorOutcome(err); code != 503 || perm {
		t.Fatalf("503: %v", err)
	}
}

func TestRateLimitWait(t *testing.T) {
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "190"}, time.Second},
		{map[string]string{"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "2"}, 5 * time.Second},
		{nil, time.Second},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := hubspot.RateLimitWait(h); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

// The token goes in the Authorization header only: a connection error's
// text never holds it, nor does New's error for a bad one.
func TestTokenNeverInErrors(t *testing.T) {
	const tok = "pat-na1-s3cr3t-abcdef"
	c, err := hubspot.New(hubspot.Options{Token: tok, APIURL: "http://127.0.0.1:1", State: &memState{},
		Limiter: connectors.NewLimiter(10, 10)})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Deliver(ctx, ev("conv_1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "", nil))
	if err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("err %v", err)
	}
	if _, err := hubspot.New(hubspot.Options{Token: "pat with spaces " + tok, State: &memState{}}); err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("err %v", err)
	}
}

// A recording URL, when ctibridge has one: ready before the end it goes
// with the end's update; ready after, in an update of its own.
func TestRecordingURL(t *testing.T) {
	fake := newFake(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, func(o *hubspot.Options) {
		o.RecordingURL = func(p string) (string, bool) {
			return "https://bridge.example/v1/recordings/" + p + ".sig", true
		}
	})
	in := bridge.DirectionInbound
	rec := func(conv string, seq int64) bridge.Record {
		return ev(conv, seq, bridge.EventRecordingReady, in, "", func(e *bridge.Event) { e.Recording = &bridge.Recording{Path: "/spool/" + conv + ".wav"} })
	}
	deliver(t, c,
		ev("conv_1", 1, bridge.EventCallRinging, in, "100", nil), rec("conv_1", 2),
		ev("conv_1", 3, bridge.EventCallEnded, in, "", ended(bridge.DispositionNoAnswer, 19, "100")),
		ev("conv_2", 1, bridge.EventCallRinging, in, "100", nil),
		ev("conv_2", 2, bridge.EventCallEnded, in, "", ended(bridge.DispositionNoAnswer, 19, "100")), rec("conv_2", 3), rec("conv_2", 3))
	var got []string
	for _, r := range fake.Calls() {
		got = append(got, r.Short("status", "recording"))
	}
	want := "create(status=RINGING) update(status=NO_ANSWER,recording=https://bridge.example/v1/recordings/conv_1.sig) " +
		"create(status=RINGING) update(status=NO_ANSWER) update(recording=https://bridge.example/v1/recordings/conv_2.sig)"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}

// The fake is linked into the product binary by demo --crm: it must not
// import package testing.
func TestFakeDoesNotImportTesting(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "hubspottest/fake.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "testing" || strings.HasSuffix(p, "/testing") {
			t.Errorf("hubspottest imports %s", p)
		}
	}
}
