package bitrix24_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connectors/connectorstest"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
	"github.com/ctibridge/ctibridge/connectors/bitrix24/bitrix24test"
)

// The connectors' shared test helpers.
type (
	memState = connectorstest.MemState
	logBuf   = connectorstest.LogBuffer
)

var ctx = context.Background()

func newConnector(t *testing.T, fake *bitrix24test.Server, state *memState, logs *logBuf, edit func(*bitrix24.Options)) *bitrix24.Connector {
	t.Helper()
	opts := bitrix24.Options{WebhookURL: fake.URL, Users: map[string]int{"100": 7, "101": 8}, CRMCreate: true, Show: true,
		State: state, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RecordingURL: func(p string) (string, bool) { return "https://bridge.example/rec?sig=x", true }}
	if edit != nil {
		edit(&opts)
	}
	c, err := bitrix24.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var start = time.Date(2026, 12, 2, 10, 0, 0, 0, time.FixedZone("MSK", 3*3600))

// ev builds one event of conversation conv.
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

// customer marks a ringing or ring end as the far party's (Event.Party).
func customer(e *bridge.Event) { e.Party = bridge.PartyCustomer }

func ended(disp bridge.Disposition, talk int64, cause int, agent string) func(*bridge.Event) {
	return func(e *bridge.Event) {
		e.Call.Disposition = disp
		e.Call.TalkS = &talk
		e.Call.HangupCause = &bridge.HangupCause{Code: cause, Text: "Cause " + fmt.Sprint(cause)}
		if agent != "" {
			e.Call.Agent = &bridge.Agent{Extension: agent}
		}
	}
}

func deliverAll(t *testing.T, c *bitrix24.Connector, recs ...bridge.Record) {
	t.Helper()
	for _, r := range recs {
		if err := c.Deliver(ctx, r); err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
	}
}

func shorts(cs []bitrix24test.Call, keys ...string) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Short(keys...))
	}
	return strings.Join(s, " ")
}

var keys = []string{"USER_ID", "TYPE", "SHOW", "STATUS_CODE", "DURATION"}

func TestFlows(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []bridge.Record
		want string
	}{
		{"answered ring-all", []bridge.Record{
			ev("c1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
			ev("c1", 2, bridge.EventCallRinging, bridge.DirectionInbound, "101", nil),
			ev("c1", 3, bridge.EventCallAnswered, bridge.DirectionInbound, "100", nil),
			ev("c1", 4, bridge.EventCallRingEnded, bridge.DirectionInbound, "101", nil),
			ev("c1", 5, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 42, 16, "100")),
		}, "register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=8) finish(USER_ID=7,STATUS_CODE=200,DURATION=42)"},
		{"missed ring-all", []bridge.Record{
			ev("c2", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
			ev("c2", 2, bridge.EventCallRinging, bridge.DirectionInbound, "101", nil),
			ev("c2", 3, bridge.EventCallRingEnded, bridge.DirectionInbound, "100", nil),
			ev("c2", 4, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionNoAnswer, 0, 16, "101")),
		}, "register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=7) finish(USER_ID=8,STATUS_CODE=304,DURATION=0)"},
		{"outbound busy, no ring seen", []bridge.Record{
			ev("c3", 1, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionBusy, 0, 17, "100")),
		}, "register(USER_ID=7,TYPE=1,SHOW=0) finish(USER_ID=7,STATUS_CODE=486,DURATION=0)"},
		{"outbound, the customer refuses: their ring end hides no card", []bridge.Record{
			ev("c5", 1, bridge.EventCallRinging, bridge.DirectionOutbound, "100", customer),
			ev("c5", 2, bridge.EventCallRingEnded, bridge.DirectionOutbound, "100", customer),
			ev("c5", 3, bridge.EventCallEnded, bridge.DirectionOutbound, "", ended(bridge.DispositionBusy, 0, 17, "100")),
		}, "register(USER_ID=7,TYPE=1,SHOW=1) finish(USER_ID=7,STATUS_CODE=486,DURATION=0)"},
		{"answered, under a second of talk: still a conversation", []bridge.Record{
			ev("c6", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
			ev("c6", 2, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 0, 16, "100")),
		}, "register(USER_ID=7,TYPE=2,SHOW=1) finish(USER_ID=7,STATUS_CODE=200,DURATION=1)"},
		{"internal call ignored", []bridge.Record{
			ev("c4", 1, bridge.EventCallRinging, bridge.DirectionInternal, "100", nil),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := bitrix24test.New(t)
			c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
			deliverAll(t, c, tc.recs...)
			cs := fake.Calls()
			if got := shorts(cs, keys...); got != tc.want {
				t.Fatalf("calls\n got %s\nwant %s", got, tc.want)
			}
			if len(cs) == 0 {
				return
			}
			r := cs[0].Params
			if r["EXTERNAL_CALL_ID"] != tc.recs[0].ConversationID || r["CALL_START_DATE"] != "2026-12-02T10:00:00+03:00" || fmt.Sprint(r["CRM_CREATE"]) != "1" {
				t.Errorf("register params %v", r)
			}
			if tc.recs[0].ConversationID == "c3" && cs[1].Params["FAILED_REASON"] != "Cause 17 (Q.850 17)" {
				t.Errorf("outbound finish params %v", cs[1].Params)
			}
			want := "+15555551234" // the caller of an inbound call
			if fmt.Sprint(r["TYPE"]) == "1" {
				want = "+15555559876" // the callee of an outbound one
			}
			if r["PHONE_NUMBER"] != want {
				t.Errorf("PHONE_NUMBER %v, want %s", r["PHONE_NUMBER"], want)
			}
		})
	}
}

// An extension without a Bitrix24 user is a permanent error naming the
// extension and the config key; nothing is sent.
func TestUnmappedExtension(t *testing.T) {
	fake := bitrix24test.New(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	err := c.Deliver(ctx, ev("c1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "555", nil))
	var ce *bridge.ConnectorError
	if !errors.As(err, &ce) || !ce.Permanent || !strings.Contains(err.Error(), "extension 555") || !strings.Contains(err.Error(), "connectors.bitrix24.users") {
		t.Fatalf("err = %v", err)
	}
	if n := len(fake.Calls()) + len(fake.Refused()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// A retry or a restart (a new connector on the same state) never registers
// or finishes a call twice; a finish whose answer was lost counts as done.
func TestNoDoubles(t *testing.T) {
	fake := bitrix24test.New(t)
	state := &memState{}
	ring := ev("c1", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	end := ev("c1", 2, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 5, 16, "100"))
	deliverAll(t, newConnector(t, fake, state, &logBuf{}, nil), ring, ring)
	c2 := newConnector(t, fake, state, &logBuf{}, nil)
	deliverAll(t, c2, ring, end, end)
	// The finish went out but its answer was lost: the state says sent,
	// not finished.
	state.Edit("bitrix24", "c1", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"finished":true`), []byte(`"finished":false`), 1)
	})
	deliverAll(t, c2, end)
	if got := shorts(fake.Calls()); got != "register() finish()" {
		t.Errorf("calls %s", got)
	}
}

// Bitrix24's rate limit: past the burst the portal answers 503
// QUERY_LIMIT_EXCEEDED; the connector reports a retryable error, drains
// its own bucket, and the retry registers the call once.
func TestQueryLimitExceeded(t *testing.T) {
	fake := bitrix24test.New(t)
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	fake.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	fake.SetLimits(2, 2)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	deliverAll(t, c, ev("a", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil),
		ev("b", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
	third := ev("c", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	err := c.Deliver(ctx, third)
	var ce *bridge.ConnectorError
	if !errors.As(err, &ce) || ce.Permanent || ce.StatusCode != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "QUERY_LIMIT_EXCEEDED") {
		t.Fatalf("past the burst: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	deliverAll(t, c, third)
	if got := shorts(fake.Calls()); got != "register() register() register()" {
		t.Errorf("calls %s", got)
	}
	if n := len(fake.Refused()); n != 1 {
		t.Errorf("%d refused, want 1", n)
	}
}

// The webhook token is a secret: no error (the attempt log) and no log line
// holds it, whatever fails.
func TestTokenNeverLeaks(t *testing.T) {
	fake := bitrix24test.New(t)
	logs := &logBuf{}
	c := newConnector(t, fake, &memState{}, logs, nil)
	var errs []string
	fake.SetOutage(true)
	if err := c.Deliver(ctx, ev("a", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)); err != nil {
		errs = append(errs, err.Error())
	}
	fake.SetOutage(false)
	// A refused connection: Go's url.Error would repeat the URL.
	dead := newConnector(t, fake, &memState{}, logs, func(o *bitrix24.Options) {
		o.WebhookURL = "http://127.0.0.1:1/rest/1/" + fake.Token + "/"
	})
	if err := dead.Deliver(ctx, ev("b", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)); err != nil {
		errs = append(errs, err.Error())
	}
	// A recording with no URL to give is skipped with a log line.
	noURL := newConnector(t, fake, &memState{}, logs, func(o *bitrix24.Options) { o.RecordingURL = nil })
	deliverAll(t, noURL, ev("d", 1, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 3, 16, "100")),
		ev("d", 2, bridge.EventRecordingReady, bridge.DirectionInbound, "", func(e *bridge.Event) { e.Recording = &bridge.Recording{Path: "/r/d.wav"} }))
	if len(errs) != 2 {
		t.Fatalf("errors %q", errs)
	}
	all := strings.Join(errs, "\n") + logs.String()
	if strings.Contains(all, fake.Token) {
		t.Errorf("token leaked:\n%s", all)
	}
	if !strings.Contains(errs[0], "HTTP 503") || !strings.Contains(errs[1], "connection refused") || !strings.Contains(logs.String(), "recording not attached") {
		t.Errorf("messages:\n%s", all)
	}
	if got := bitrix24.Redact(fake.URL); strings.Contains(got, fake.Token) || !strings.HasSuffix(got, "/rest/1/***/") {
		t.Errorf("Redact = %s", got)
	}
}

// attachRecord is refused before finish: a recording ready first waits for
// the finish; one ready after it is attached at once.
func TestRecordingAfterFinish(t *testing.T) {
	for _, early := range []bool{true, false} {
		fake := bitrix24test.New(t)
		c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
		ring := ev("c", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
		rec := ev("c", 2, bridge.EventRecordingReady, bridge.DirectionInbound, "", func(e *bridge.Event) {
			e.Recording = &bridge.Recording{Path: "/var/spool/asterisk/monitor/c.wav"}
		})
		end := ev("c", 3, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 9, 16, "100"))
		if early {
			deliverAll(t, c, ring, rec, end)
		} else {
			deliverAll(t, c, ring, end, rec, rec)
		}
		cs := fake.Calls()
		if got := shorts(cs); got != "register() finish() attachRecord()" {
			t.Fatalf("early=%v: calls %s", early, got)
		}
		if cs[2].Params["FILENAME"] != "c.wav" || cs[2].Params["RECORD_URL"] != "https://bridge.example/rec?sig=x" {
			t.Errorf("attachRecord %v", cs[2].Params)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		dir   bridge.Direction
		disp  bridge.Disposition
		cause int
		want  string
	}{
		{bridge.DirectionInbound, bridge.DispositionAnswered, 16, "200"},
		{bridge.DirectionInbound, bridge.DispositionNoAnswer, 16, "304"},
		{bridge.DirectionInbound, bridge.DispositionCancelled, 16, "304"},
		{bridge.DirectionInbound, bridge.DispositionBusy, 16, "486"},
		{bridge.DirectionOutbound, bridge.DispositionFailed, 17, "486"},
		{bridge.DirectionOutbound, bridge.DispositionFailed, 21, "603"},
		{bridge.DirectionOutbound, bridge.DispositionFailed, 1, "404"},
		{bridge.DirectionOutbound, bridge.DispositionFailed, 28, "484"},
		{bridge.DirectionOutbound, bridge.DispositionFailed, 34, "503"},
		{bridge.DirectionOutbound, bridge.DispositionNoAnswer, 19, "480"},
	} {
		call := &bridge.Call{Direction: tc.dir, Disposition: tc.disp, HangupCause: &bridge.HangupCause{Code: tc.cause}}
		if got := bitrix24.StatusCode(call); got != tc.want {
			t.Errorf("%s %s cause %d: %s, want %s", tc.dir, tc.disp, tc.cause, got, tc.want)
		}
	}
}

func TestCheckWebhookURL(t *testing.T) {
	const tok = "abcdef123456"
	if got, err := bitrix24.CheckWebhookURL("https://acme.bitrix24.com/rest/1/" + tok + "/"); got != tok || err != nil {
		t.Errorf("valid URL: %q, %v", got, err)
	}
	for _, bad := range []string{"", "acme.bitrix24.com/rest/1/" + tok, "ftp://acme/rest/1/" + tok + "/",
		"https://acme/rest/x/" + tok + "/", "https://acme/rest/1/", "https://acme/api/1/" + tok + "/",
		"https://u:p@acme/rest/1/" + tok + "/", "https://acme/rest/1/" + tok + "/?a=b", "https://acme/rest/1/ab%2Fcd1234/"} {
		_, err := bitrix24.CheckWebhookURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), tok) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}

// How each documented Bitrix24 error is classified: limits, server
// trouble and credentials an admin can fix are retried; refused
// parameters are dead letters.
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		permanent bool
	}{
		{503, `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`, false},
		{429, `{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit."}`, false},
		{500, `{"error":"INTERNAL_SERVER_ERROR","error_description":"Internal server error"}`, false},
		{401, `{"error":"expired_token","error_description":"The access token provided has expired."}`, false},
		{403, `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the webhook token"}`, false},
		{200, `{"time":{}}`, false},
		{302, ``, false},
		{400, `{"error":"ERROR_ARGUMENT","error_description":"PHONE_NUMBER is required"}`, true},
		{404, `{"error":"ERROR_METHOD_NOT_FOUND","error_description":"Method not found!"}`, true},
	} {
		srv := httptestServer(t, tc.status, tc.body)
		fake := bitrix24test.New(t)
		c := newConnector(t, fake, &memState{}, &logBuf{}, func(o *bitrix24.Options) {
			o.WebhookURL = srv + "/rest/1/" + fake.Token + "/"
		})
		err := c.Deliver(ctx, ev("a", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
		var ce *bridge.ConnectorError
		if !errors.As(err, &ce) || ce.Permanent != tc.permanent || ce.StatusCode != tc.status {
			t.Errorf("HTTP %d %s: %v (%+v)", tc.status, tc.body, err, ce)
		}
	}
}

func httptestServer(t *testing.T, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A recording ready before the end whose attach fails right after the
// finish is attached when call.ended is retried: the finished call is
// not taken as all done.
func TestAttachRetriedWithEnd(t *testing.T) {
	fake := bitrix24test.New(t)
	c := newConnector(t, fake, &memState{}, &logBuf{}, nil)
	ring := ev("c", 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil)
	rec := ev("c", 2, bridge.EventRecordingReady, bridge.DirectionInbound, "", func(e *bridge.Event) {
		e.Recording = &bridge.Recording{Path: "/var/spool/asterisk/monitor/c.wav"}
	})
	end := ev("c", 3, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 9, 16, "100"))
	deliverAll(t, c, ring, rec)
	fake.Fail("telephony.externalCall.attachRecord", true)
	if err := c.Deliver(ctx, end); err == nil {
		t.Fatal("the attach failed, yet call.ended is done")
	}
	fake.Fail("telephony.externalCall.attachRecord", false)
	deliverAll(t, c, end, end)
	if got := shorts(fake.Calls()); got != "register() finish() attachRecord()" {
		t.Fatalf("calls %s", got)
	}
}

// scripted puts canned answers in front of the fake for one method: each
// request of it takes the next answer, then they go through.
func scripted(t *testing.T, fake *bitrix24test.Server, method string, answers ...[2]string) string {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		var a *[2]string
		if strings.HasSuffix(r.URL.Path, "/"+method+".json") && len(answers) > 0 {
			a, answers = &answers[0], answers[1:]
		}
		mu.Unlock()
		if a != nil {
			var status int
			fmt.Sscan(a[0], &status)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, a[1])
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, fake.URL+r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], r.Body)
		req.Header = r.Header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/rest/1/" + fake.Token + "/"
}

// A finish the portal refused (rate limit) did not reach it: a 400 to its
// retry is a real error, not the echo of a finish done already, and the
// call is not taken as finished. Only a finish that may have been done
// (its answer lost) takes a "call not found" as done, and only that 400.
func TestFinishRefusedThenBadRequest(t *testing.T) {
	fake := bitrix24test.New(t)
	qle := [2]string{"503", `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`}
	badUser := [2]string{"400", `{"error":"ERROR_ARGUMENT","error_description":"USER_ID is not correct"}`}
	notFound := [2]string{"400", `{"error":"ERROR_NOT_FOUND","error_description":"Call is not found or finished"}`}
	lost := [2]string{"504", `<html>Gateway Timeout</html>`}
	for _, tc := range []struct {
		name    string
		answers [][2]string
		done    bool // the third attempt's outcome: nil error
	}{
		{"rate limit, then a refused USER_ID", [][2]string{qle, badUser}, false},
		{"rate limit, then call not found", [][2]string{qle, notFound}, false},
		{"answer lost, then a refused USER_ID", [][2]string{lost, badUser}, false},
		{"answer lost, then call not found", [][2]string{lost, notFound}, true},
		// The lost one may have finished it; a refusal between says nothing
		// of that one.
		{"answer lost, rate limit, then call not found", [][2]string{lost, qle, notFound}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := &memState{}
			url := scripted(t, fake, "telephony.externalcall.finish", tc.answers...)
			c := newConnector(t, fake, state, &logBuf{}, func(o *bitrix24.Options) { o.WebhookURL = url })
			conv := strings.ReplaceAll(tc.name, " ", "-")
			deliverAll(t, c, ev(conv, 1, bridge.EventCallRinging, bridge.DirectionInbound, "100", nil))
			end := ev(conv, 2, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 5, 16, "100"))
			for range len(tc.answers) - 1 {
				if err := c.Deliver(ctx, end); err == nil {
					t.Fatal("an early finish: no error")
				}
			}
			err := c.Deliver(ctx, end)
			var ce *bridge.ConnectorError
			if tc.done {
				if err != nil {
					t.Fatalf("last finish: %v, want done (the first may have finished the call)", err)
				}
				return
			}
			if !errors.As(err, &ce) || !ce.Permanent || ce.StatusCode != 400 {
				t.Fatalf("last finish: %v, want the portal's 400 as a permanent error", err)
			}
			if b, _ := state.ConnectorState(ctx, "bitrix24", conv); bytes.Contains(b, []byte(`"finished":true`)) {
				t.Fatalf("state %s: finished, though the portal never finished it", b)
			}
		})
	}
}
