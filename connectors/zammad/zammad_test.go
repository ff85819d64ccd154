package zammad_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connectors/connectorstest"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors/zammad"
	"github.com/ctibridge/ctibridge/connectors/zammad/zammadtest"
)

// The connectors' shared test helpers.
type (
	memState = connectorstest.MemState
	logBuf   = connectorstest.LogBuffer
)

var ctx = context.Background()

func newConnector(t *testing.T, fake *zammadtest.Server, state *memState, logs *logBuf, edit func(*zammad.Options)) *zammad.Connector {
	t.Helper()
	opts := zammad.Options{URL: fake.URL, Users: map[string]string{"100": "Anna", "101": "Ben"}, Inbound: true, Outbound: true,
		State: state, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&opts)
	}
	c, err := zammad.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var start = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func ev(conv string, seq int64, typ string, dir bridge.Direction, agent string, edit func(*bridge.Event)) bridge.Record {
	call := &bridge.Call{ID: conv, Direction: dir, StartedAt: start, Queue: "support",
		Caller: bridge.Party{Number: "5551234", E164: "+15555551234"}, Callee: bridge.Party{Number: "200"}}
	if dir == bridge.DirectionOutbound {
		call.Queue = ""
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
	}
}

func customer(e *bridge.Event) { e.Party = bridge.PartyCustomer }

func deliverAll(t *testing.T, c *zammad.Connector, recs ...bridge.Record) {
	t.Helper()
	for _, r := range recs {
		if err := c.Deliver(ctx, r); err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
	}
}

func shorts(cs []zammadtest.Call, keys ...string) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Short(keys...))
	}
	return strings.Join(s, " ")
}

var keys = []string{"direction", "user", "answeringNumber", "cause"}

func TestFlows(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []bridge.Record
		want string
	}{
		{"answered ring-all", []bridge.Record{
			ev("c1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
			ev("c1", 2, bridge.EventCallRinging, bridge.DirectionInbound, "101", nil),
			ev("c1", 3, bridge.EventCallAnswered, bridge.DirectionInbound, "101", nil),
			ev("c1", 4, bridge.EventCallRingEnded, bridge.DirectionInbound, "100", nil),
			ev("c1", 5, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 16, "101")),
		}, "newCall(direction=in,user=[Anna]) answer(direction=in,user=Ben,answeringNumber=101) hangup(direction=in,answeringNumber=101,cause=normalClearing)"},
		{"missed", []bridge.Record{
			ev("c2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
			ev("c2", 2, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionNoAnswer, 16, "100")),
		}, "newCall(direction=in,user=[Anna]) hangup(direction=in,cause=noAnswer)"},
		{"caller gave up in the IVR", []bridge.Record{
			ev("c3", 1, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionCancelled, 16, "")),
		}, "newCall(direction=in) hangup(direction=in,cause=cancel)"},
		{"outbound answered by the customer", []bridge.Record{
			ev("c4", 1, bridge.EventCallRinging, bridge.DirectionOutbound, "100", nil),
			ev("c4", 2, bridge.EventCallAnswered, bridge.DirectionOutbound, "100", nil), // the agent's own phone
			ev("c4", 3, bridge.EventCallRinging, bridge.DirectionOutbound, "100", customer),
			ev("c4", 4, bridge.EventCallAnswered, bridge.DirectionOutbound, "100", customer),
			ev("c4", 5, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionAnswered, 16, "100")),
		}, "newCall(direction=out,user=[Anna]) answer(direction=out,user=Anna,answeringNumber=+15555559876) hangup(direction=out,answeringNumber=+15555559876,cause=normalClearing)"},
		{"click-to-call: the pop waits for the customer's number", []bridge.Record{
			ev("c8", 1, bridge.EventCallRinging, bridge.DirectionOutbound, "100", func(e *bridge.Event) { e.Call.Callee = bridge.Party{} }),
			ev("c8", 2, bridge.EventCallAnswered, bridge.DirectionOutbound, "100", func(e *bridge.Event) { e.Call.Callee = bridge.Party{} }),
			ev("c8", 3, bridge.EventCallRinging, bridge.DirectionOutbound, "100", customer),
			ev("c8", 4, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionNoAnswer, 19, "100")),
		}, "newCall(direction=out,user=[Anna]) hangup(direction=out,cause=noAnswer)"},
		{"click-to-call the agent never took", []bridge.Record{
			ev("c9", 1, bridge.EventCallRinging, bridge.DirectionOutbound, "100", func(e *bridge.Event) { e.Call.Callee = bridge.Party{} }),
			ev("c9", 2, bridge.EventCallEnded, bridge.DirectionOutbound, "", func(e *bridge.Event) {
				ended(bridge.DispositionNoAnswer, 19, "100")(e)
				e.Call.Callee = bridge.Party{}
			}),
		}, ""},
		{"outbound busy, no ring seen", []bridge.Record{
			ev("c5", 1, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionBusy, 17, "100")),
		}, "newCall(direction=out,user=[Anna]) hangup(direction=out,cause=busy)"},
		{"answered with no answer event seen, unmapped agent", []bridge.Record{
			ev("c6", 1, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 16, "300")),
		}, "newCall(direction=in,user=[300]) answer(direction=in,user=300,answeringNumber=300) hangup(direction=in,answeringNumber=300,cause=normalClearing)"},
		{"internal call ignored", []bridge.Record{
			ev("c7", 1, bridge.EventCallRinging, bridge.DirectionInternal, "100", nil),
			ev("c7", 2, bridge.EventCallEnded, bridge.DirectionInternal, "", ended(bridge.DispositionAnswered, 16, "100")),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := zammadtest.New(t)
			c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
			deliverAll(t, c, tc.recs...)
			cs := fake.Calls()
			if got := shorts(cs, keys...); got != tc.want {
				t.Fatalf("calls\n got %s\nwant %s", got, tc.want)
			}
			for _, c := range cs {
				if c.Params["callId"] != tc.recs[0].ConversationID || c.Params["from"] == "" || c.Params["to"] == "" {
					t.Errorf("callId, from or to: %v", c.Params)
				}
			}
			if len(cs) > 0 && strings.HasPrefix(tc.name, "answered ring-all") {
				p := cs[0].Params
				if p["from"] != "+15555551234" || p["to"] != "200" || p["queue"] != "support" {
					t.Errorf("newCall params %v", p)
				}
			}
			if n := len(fake.Refused()); n != 0 {
				t.Errorf("refused %v", fake.Refused())
			}
		})
	}
}

// The direction rules: with outbound off, outbound calls are not sent.
func TestDirectionRules(t *testing.T) {
	fake := zammadtest.New(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, func(o *zammad.Options) { o.Outbound = false })
	deliverAll(t, c, ev("o", 1, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionBusy, 17, "100")),
		ev("i", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	if got := shorts(fake.Calls(), "direction"); got != "newCall(direction=in)" {
		t.Errorf("calls %s", got)
	}
}

// A retry or a restart never sends newCall or answer twice; a newCall whose
// answer was lost, refused on retry as already there, counts as done.
func TestNoDoubles(t *testing.T) {
	fake := zammadtest.New(t)
	state := &memState{}
	fake.LoseAnswer("newCall", 1)
	ring := ev("c1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	ans := ev("c1", 2, bridge.EventCallAnswered, bridge.DirectionInbound, "100", nil)
	end := ev("c1", 3, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 16, "100"))
	c := newConnector(t, fake, state, &logBuf{}, nil)
	var ce *bridge.ConnectorError
	if err := c.Deliver(ctx, ring); !errors.As(err, &ce) || ce.Permanent || ce.StatusCode != 504 {
		t.Fatalf("lost answer: %v", err)
	}
	deliverAll(t, c, ring, ring, ans)
	c2 := newConnector(t, fake, state, &logBuf{}, nil) // a restart
	deliverAll(t, c2, ring, ans, end, end)
	if got := shorts(fake.Calls()); got != "newCall() answer() hangup()" {
		t.Errorf("calls %s", got)
	}
	if got := shorts(fake.Refused()); got != "newCall()" { // the retry, refused as already there
		t.Errorf("refused %s", got)
	}
}

// newCall answered with reject hangs the call up through the Reject hook,
// once; without a hook it is logged. A dial answer is logged.
func TestReplies(t *testing.T) {
	fake := zammadtest.New(t)
	fake.Block("+15555551234")
	fake.DialWith("+4930111")
	var rejected []string
	logs := &logBuf{}
	c := newConnector(t, fake, &memState{}, logs, func(o *zammad.Options) {
		o.Reject = func(_ context.Context, conv string) error { rejected = append(rejected, conv); return nil }
	})
	deliverAll(t, c, ev("r", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
		ev("r", 2, bridge.EventCallRinging, bridge.DirectionInbound, "101", nil),
		ev("r", 3, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionCancelled, 16, "")),
		ev("o", 1, bridge.EventCallRinging, bridge.DirectionOutbound, "100", nil))
	if fmt.Sprint(rejected) != "[r]" {
		t.Errorf("rejected %v", rejected)
	}
	if !strings.Contains(logs.String(), "call rejected as Zammad asked") || !strings.Contains(logs.String(), "caller_id=+4930111") {
		t.Errorf("logs:\n%s", logs)
	}
	noHook := &logBuf{}
	c2 := newConnector(t, fake, &memState{}, noHook, nil)
	deliverAll(t, c2, ev("r2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	if !strings.Contains(noHook.String(), "cannot hang calls up yet") {
		t.Errorf("logs:\n%s", noHook)
	}
	if got := shorts(fake.Calls()); got != "newCall() hangup() newCall() newCall()" {
		t.Errorf("calls %s", got)
	}
}

// 401 (a wrong token) and 422 (the integration off) are configuration
// errors: permanent, with a reason saying what to fix and no token; 503 is
// retried.
func TestErrorClasses(t *testing.T) {
	fake := zammadtest.New(t)
	logs := &logBuf{}
	ring := ev("a", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	wrong := newConnector(t, fake, &memState{}, logs, func(o *zammad.Options) {
		o.URL = strings.TrimSuffix(fake.URL, fake.Token) + "wrongtoken123"
	})
	c := newConnector(t, fake, &memState{}, logs, nil)
	var errs []string
	check := func(err error, status int, permanent bool, says string) {
		t.Helper()
		var ce *bridge.ConnectorError
		if !errors.As(err, &ce) || ce.StatusCode != status || ce.Permanent != permanent || !strings.Contains(err.Error(), says) {
			t.Errorf("got %v (%+v), want HTTP %d permanent=%v %q", err, ce, status, permanent, says)
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	check(wrong.Deliver(ctx, ring), 401, true, "Integrations → CTI (generic)")
	fake.SetDisabled(true)
	check(c.Deliver(ctx, ring), 422, true, "Feature is disabled")
	fake.SetDisabled(false)
	fake.SetOutage(true)
	check(c.Deliver(ctx, ring), 503, false, "HTTP 503")
	fake.SetOutage(false)
	dead := newConnector(t, fake, &memState{}, logs, func(o *zammad.Options) {
		o.URL = "http://127.0.0.1:1/api/v1/cti/" + fake.Token
	})
	err := dead.Deliver(ctx, ring)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused connection: %v", err)
	} else {
		errs = append(errs, err.Error())
	}
	deliverAll(t, c, ring)
	all := strings.Join(errs, "\n") + logs.String()
	if strings.Contains(all, fake.Token) {
		t.Errorf("token leaked:\n%s", all)
	}
	if got := zammad.Redact(fake.URL); strings.Contains(got, fake.Token) || !strings.HasSuffix(got, "/api/v1/cti/***") {
		t.Errorf("Redact = %s", got)
	}
}

func TestCause(t *testing.T) {
	for _, tc := range []struct {
		disp  bridge.Disposition
		cause int
		want  string
	}{
		{bridge.DispositionAnswered, 16, "normalClearing"},
		{bridge.DispositionBusy, 16, "busy"},
		{bridge.DispositionCancelled, 16, "cancel"},
		{bridge.DispositionNoAnswer, 19, "noAnswer"},
		{bridge.DispositionNoAnswer, 23, "forwarded"},
		{bridge.DispositionFailed, 17, "busy"},
		{bridge.DispositionFailed, 21, "busy"},
		{bridge.DispositionFailed, 1, "notFound"},
		{bridge.DispositionFailed, 28, "notFound"},
		{bridge.DispositionFailed, 34, "congestion"},
		{bridge.DispositionFailed, 38, "congestion"},
	} {
		call := &bridge.Call{Disposition: tc.disp, HangupCause: &bridge.HangupCause{Code: tc.cause}}
		if got := zammad.Cause(call); got != tc.want {
			t.Errorf("%s cause %d: %s, want %s", tc.disp, tc.cause, got, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	const tok = "abc-DEF_123456"
	for _, good := range []string{"https://z.example.com/api/v1/cti/" + tok, "http://z.example.com/helpdesk/api/v1/cti/" + tok + "/"} {
		if got, err := zammad.CheckURL(good); got != tok || err != nil {
			t.Errorf("%s: %q, %v", good, got, err)
		}
	}
	for _, bad := range []string{"", "z.example.com/api/v1/cti/" + tok, "ftp://z/api/v1/cti/" + tok, "https://z/api/v1/cti/",
		"https://z/api/v1/ctx/" + tok, "https://u:p@z/api/v1/cti/" + tok, "https://z/api/v1/cti/" + tok + "?a=b",
		"https://z/api/v1/cti/ab%2Fcd1234", "https://z/api/v1/cti/" + tok + "/x"} {
		_, err := zammad.CheckURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), tok) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}
