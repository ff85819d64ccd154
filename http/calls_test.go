package http_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// originates returns the Originate actions the simulator received.
func originates(r *rig) []*goami2.Message {
	var out []*goami2.Message
	for _, a := range r.ast.Actions() {
		if a.Field("Action") == "Originate" {
			out = append(out, a)
		}
	}
	return out
}

// Click-to-call on Asterisk: 202 at once, the Originate on the wire with
// pre-assigned ids, and the call, played back by the PBX with those ids,
// tracked from its first event as an outbound conversation.
func TestClickToCallAsterisk(t *testing.T) {
	r := newRig(t, rigOptions{})
	mark := len(r.ast.Received())
	res := r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600", "caller_id": `"Click2Call" <600>`,
		"variables": map[string]string{"crm_foo": "bar"}, "timeout_s": 30})
	if res.status != 202 {
		t.Fatalf("POST /v1/calls: %d %s", res.status, res.body)
	}
	conv := res.json(t)["id"].(string)
	if !strings.HasPrefix(conv, "conv_") || res.header.Get("Location") != "/v1/calls/"+conv {
		t.Fatalf("id %q location %q", conv, res.header.Get("Location"))
	}
	os := originates(r)
	if len(os) != 1 {
		t.Fatalf("%d originates", len(os))
	}
	a := os[0]
	want := lines("Action: Originate", "ActionID: "+a.Field("ActionID"), "Channel: Local/101@agents", "ChannelId: "+a.Field("ChannelId"),
		"OtherChannelId: "+a.Field("OtherChannelId"), "Async: true", "Context: inbound", "Exten: 600", "Priority: 1",
		`CallerID: "Click2Call" <600>`, "Timeout: 30000", "Variable: crm_foo=bar")
	if got := r.amiSent(mark); got != want {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}
	// Before the PBX reports a channel, the Location answers "dialing" and
	// a hangup is refused as too early, not as unknown.
	pending := r.call("GET", "/v1/calls/"+conv, "read", nil)
	if pc, _ := pending.json(t)["call"].(map[string]any); pending.status != 200 || pc["status"] != "dialing" || pc["direction"] != "outbound" {
		t.Fatalf("GET before the first event: %d %s", pending.status, pending.body)
	}
	r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 409, "")
	// The real capture of this originate, with the ids ctibridge chose.
	frames := rewrite(amitest.EventsOf(amitest.Frames("originate-exten")), map[string]string{
		"1795339035.4": a.Field("ChannelId"), "1795339035.5": a.Field("OtherChannelId"), "orig-exten-1": a.Field("ActionID")})
	if err := r.ast.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if evs[0].Type != bridge.EventCallRinging || evs[0].Agent.Extension != "101" || evs[0].Call.Direction != bridge.DirectionOutbound ||
		evs[0].Call.Callee.Number != "600" || evs[0].Call.Variables["crm_foo"] != "bar" {
		t.Fatalf("first event %+v", evs[0])
	}
	// The agent answers their own phone (call.answered, state dialing);
	// extension 600 then plays and hangs up: no person answered.
	if types(evs) != "call.ringing,call.answered,call.ended" || evs[1].Call.State != "dialing" || evs[2].Call.Disposition != bridge.DispositionNoAnswer {
		t.Fatalf("events %s", types(evs))
	}
	// The history has it under the returned id.
	if res := r.call("GET", "/v1/calls/"+conv, "read", nil); res.status != 200 {
		t.Fatalf("GET call: %d %s", res.status, res.body)
	}
}

// A busy agent: the PBX's OriginateResponse (Reason 5) fails the
// conversation the API returned.
func TestClickToCallBusy(t *testing.T) {
	r := newRig(t, rigOptions{})
	res := r.call("POST", "/v1/calls", "control", map[string]any{"agent": "102", "to": "+74954451120"})
	if res.status != 202 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	conv := res.json(t)["id"].(string)
	a := originates(r)[0]
	frames := rewrite(amitest.EventsOf(amitest.Frames("originate-busy")), map[string]string{
		"1795339106.38": a.Field("ChannelId"), "1795339106.39": a.Field("OtherChannelId"), "orig-busy-1": a.Field("ActionID")})
	if err := r.ast.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if types(evs) != "call.ringing,call.ring_ended,call.failed,call.ended" {
		t.Fatalf("events %s", types(evs))
	}
	end := evs[len(evs)-1]
	if end.Call.Disposition != bridge.DispositionBusy || end.Call.Direction != bridge.DirectionOutbound || end.Call.Callee.Number != "+74954451120" {
		t.Fatalf("ended %+v", end.Call)
	}
}

// The same Idempotency-Key never dials twice and returns the first answer;
// reused for another request it is refused.
func TestClickToCallIdempotency(t *testing.T) {
	r := newRig(t, rigOptions{})
	body := map[string]any{"agent": "101", "to": "600"}
	first := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k-1")
	second := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k-1")
	if first.status != 202 || second.status != 202 || string(first.body) != string(second.body) || second.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s, second %d %s", first.status, first.body, second.status, second.body)
	}
	if n := len(originates(r)); n != 1 {
		t.Fatalf("%d originates on the wire", n)
	}
	other := r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "601"}, "Idempotency-Key", "k-1")
	other.problem(t, 400, "Idempotency-Key")
	// Another key dials again; a key is per API key.
	if res := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k-2"); res.status != 202 {
		t.Fatalf("k-2: %d", res.status)
	}
	if res := r.call("POST", "/v1/calls", "admin", body, "Idempotency-Key", "k-1"); res.status != 202 || string(res.body) == string(first.body) {
		t.Fatalf("admin k-1: %d %s", res.status, res.body)
	}
	if n := len(originates(r)); n != 3 {
		t.Fatalf("%d originates on the wire", n)
	}
}

// The link's state does not change what a key answers: a call placed is
// replayed as placed while the link is down, and a request refused because
// the link was down (nothing dialled) leaves the key free for the retry.
func TestClickToCallIdempotencyAcrossLinkLoss(t *testing.T) {
	r := newRig(t, rigOptions{})
	body := map[string]any{"agent": "101", "to": "600"}
	placed := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "placed")
	if placed.status != 202 {
		t.Fatalf("%d %s", placed.status, placed.body)
	}
	r.ast.SetSecret("not-the-bridge's")
	r.ast.DropConnections()
	r.waitFor("link down", func() bool { return !r.up() })
	again := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "placed")
	if again.status != 202 || string(again.body) != string(placed.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry of a placed call while the link is down: %d %s", again.status, again.body)
	}
	r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "fresh").problem(t, 503, "")
	r.ast.SetSecret("bridgepass")
	r.waitFor("link up", r.up)
	retry := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "fresh")
	if retry.status != 202 || retry.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the link came back: %d %s", retry.status, retry.body)
	}
	if n := len(originates(r)); n != 2 {
		t.Fatalf("%d originates on the wire, want 2", n)
	}
}

// A claim without an answer (ctibridge stopped between dialling and
// storing the answer) is answered 409 "outcome unknown", the same every
// time, and never dials.
func TestClickToCallIdempotencyUnknownOutcome(t *testing.T) {
	r := newRig(t, rigOptions{})
	body := map[string]any{"agent": "101", "to": "600"}
	if res := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k"); res.status != 202 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	// What a crash right after the Originate leaves: the claim alone.
	if err := r.db.DeleteIdempotency(context.Background(), "k", "POST /v1/calls "+r.keyIDs["control"]); err != nil {
		t.Fatal(err)
	}
	first := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k")
	first.problem(t, 409, "")
	second := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k")
	if string(second.body) != string(first.body) || first.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %s, second %s", first.body, second.body)
	}
	if !strings.Contains(string(first.body), "outcome is unknown") {
		t.Fatalf("409 does not say why: %s", first.body)
	}
	if n := len(originates(r)); n != 1 {
		t.Fatalf("%d originates on the wire", n)
	}
}

// A refusal by the PBX is the first response too: the retry gets it, and
// nothing is dialled again.
func TestClickToCallIdempotentRefusal(t *testing.T) {
	r := newRig(t, rigOptions{onAction: func(r *rig, a *goami2.Message) bool {
		if a.Field("Action") != "Originate" {
			return false
		}
		_ = r.ast.Reply(a, amitest.Response(a, "Error", "Message", "Originate failed"))
		return true
	}})
	body := map[string]any{"agent": "101", "to": "600"}
	first := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k")
	first.problem(t, 409, "")
	second := r.call("POST", "/v1/calls", "control", body, "Idempotency-Key", "k")
	second.problem(t, 409, "")
	if string(first.body) != string(second.body) || len(originates(r)) != 1 {
		t.Fatalf("retry %s vs %s, %d originates", second.body, first.body, len(originates(r)))
	}
}

// Values with line breaks, sent through the REST API, are refused with the
// field named, and the PBX receives nothing: no extra header, no action.
func TestInjectionRefusedAtTheWire(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, _ := r.liveCall("blind-transfer")
	mark := len(r.ast.Received())
	cases := []struct {
		path, field string
		body        any
	}{
		{"/v1/calls", "to", map[string]any{"agent": "101", "to": "600\r\nAction: Hangup\r\nChannel: Local/500@inbound-00000005;2"}},
		{"/v1/calls", "agent", map[string]any{"agent": "101\r\n\r\nAction: Logoff", "to": "600"}},
		{"/v1/calls", "caller_id", map[string]any{"agent": "101", "to": "600", "caller_id": "x\nVariable: A=b"}},
		{"/v1/calls", "variables.A", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"A": "1\r\nAction: Hangup"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"A\r\nB": "1"}}},
		{"/v1/calls/" + conv + "/transfer", "to", map[string]any{"to": "600\r\nExten: 700"}},
		{"/v1/calls/" + conv + "/dtmf", "digits", map[string]any{"digits": "1\r\nAction: Hangup"}},
		{"/v1/agents/100/pause", "reason", map[string]any{"reason": "x\r\nAction: Logoff"}},
		{"/v1/agents/100/login", "queue", map[string]any{"queue": "support\r\nAction: Logoff"}},
		{"/v1/agents/100%0D%0AAction:%20Logoff/login", "extension", map[string]any{"queue": "support"}},
		// Variables Asterisk acts on (MONITOR_EXEC runs a shell command),
		// and inheritance to every channel the call makes.
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"MONITOR_EXEC": "/bin/sh"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"TRANSFER_CONTEXT": "evil"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"__INHERITED": "1"}}},
		// Only the variable namespace (crm_) reaches Asterisk: names it acts
		// on that no blocklist had, and values or names with syntax.
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"GOTO_ON_BLINDXFR": "evil,s,1"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"TOUCH_MIXMONITOR": "x"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"PICKUPMARK": "x"}}},
		{"/v1/calls", "variables.crm_x", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"crm_x": "${SHELL(id)}"}}},
		{"/v1/calls", "variables.crm_x", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"crm_x": "a(b,c)"}}},
		{"/v1/calls", "caller_id", map[string]any{"agent": "101", "to": "600", "caller_id": `"a;b|c" <600>`}},
		{"/v1/agents/100/pause", "reason", map[string]any{"queue": "support", "reason": "x|PAUSE|y"}},
		{"/v1/calls/" + conv + "/transfer", "to", map[string]any{"to": "_X."}},
	}
	for _, c := range cases {
		res := r.call("POST", c.path, "control", c.body)
		res.problem(t, 400, c.field)
	}
	if got := r.amiSent(mark); got != "" {
		t.Fatalf("the simulator received %q", got)
	}
}

func TestCallCommandsAsterisk(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, rest := r.liveCall("blind-transfer")
	cust, agent := "", ""
	for _, ch := range r.ast.LiveChannels() {
		switch {
		case strings.HasPrefix(ch.Name, "Local/500@inbound") && strings.HasSuffix(ch.Name, ";2"):
			cust = ch.Name
		case strings.HasPrefix(ch.Name, "Local/101@agents") && strings.HasSuffix(ch.Name, ";1"):
			agent = ch.Name
		}
	}
	if cust == "" || agent == "" {
		t.Fatalf("live channels %+v", r.ast.LiveChannels())
	}
	path := "/v1/calls/" + conv
	// send makes a request and returns what reached the PBX, without the
	// ActionIDs (the client's own counter).
	send := func(method, p string, body any) (resp, string) {
		t.Helper()
		mark := len(r.ast.Received())
		res := r.call(method, p, "control", body)
		return res, reActionID.ReplaceAllString(r.amiSent(mark), "")
	}
	expect := func(name string, res resp, got string, status int, want string) map[string]any {
		t.Helper()
		if res.status != status || got != want {
			t.Fatalf("%s: %d %s, sent\n%q\nwant\n%q", name, res.status, res.body, got, want)
		}
		return res.json(t)
	}
	res, got := send("POST", path+"/dtmf", map[string]any{"digits": "1#"})
	expect("dtmf", res, got, 202, lines("Action: PlayDTMF", "Channel: "+cust, "Digit: 1")+lines("Action: PlayDTMF", "Channel: "+cust, "Digit: #"))

	res, got = send("POST", path+"/record", map[string]any{"action": "start"})
	file, _ := res.json(t)["file"].(string)
	if !strings.HasPrefix(file, conv+"-") || !strings.HasSuffix(file, ".wav") {
		t.Fatalf("record file %q", file)
	}
	expect("record", res, got, 202, lines("Action: MixMonitor", "Channel: "+cust, "File: "+file))
	res, got = send("POST", path+"/record", map[string]any{"action": "stop"})
	expect("record stop", res, got, 202, lines("Action: StopMixMonitor", "Channel: "+cust))

	// Asterisk cannot hold over AMI: 501 saying why, nothing sent.
	res, got = send("POST", path+"/hold", nil)
	if res.problem(t, 501, ""); got != "" {
		t.Fatalf("hold sent %q", got)
	}

	// Attended: Atxfer from the agent's channel; cancel, then complete.
	res, got = send("POST", path+"/transfer", map[string]any{"to": "600", "mode": "attended"})
	xfer := expect("attended", res, got, 202, lines("Action: Atxfer", "Channel: "+agent, "Exten: 600", "Context: inbound"))["transfer_id"].(string)
	res, got = send("DELETE", "/v1/transfers/"+xfer, nil)
	expect("cancel", res, got, 202, lines("Action: CancelAtxfer", "Channel: "+agent))
	res, got = send("DELETE", "/v1/transfers/"+xfer, nil)
	if res.problem(t, 404, "id"); got != "" {
		t.Fatalf("second cancel sent %q", got)
	}
	res, _ = send("POST", path+"/transfer", map[string]any{"to": "600", "mode": "attended"})
	xfer = res.json(t)["transfer_id"].(string)
	res, got = send("POST", "/v1/transfers/"+xfer+"/complete", nil)
	expect("complete", res, got, 202, lines("Action: Hangup", "Channel: "+agent, "Cause: 16"))

	res, got = send("POST", path+"/transfer", map[string]any{"to": "600"})
	expect("blind", res, got, 202, lines("Action: Redirect", "Channel: "+cust, "Context: inbound", "Exten: 600", "Priority: 1"))
	res, got = send("POST", path+"/hangup", nil)
	expect("hangup", res, got, 202, lines("Action: Hangup", "Channel: "+cust, "Cause: 16"))

	// Bad input is refused before anything is sent.
	for _, c := range []struct {
		p, field string
		body     any
	}{
		{path + "/transfer", "mode", map[string]any{"to": "600", "mode": "warm"}},
		{path + "/record", "action", map[string]any{"action": "pause"}},
		{path + "/dtmf", "digits", map[string]any{"digits": "12E"}},
		{path + "/dtmf", "digit", map[string]any{"digit": "1"}},
		{path + "/dtmf", "digits", map[string]any{"digits": 1}},
		{path + "/hangup", "body", "{"},
	} {
		res, got = send("POST", c.p, c.body)
		if res.problem(t, 400, c.field); got != "" {
			t.Fatalf("%s sent %q", c.p, got)
		}
	}

	// The call ends: commands on it conflict; an unknown call is 404.
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(conv, bridge.EventCallEnded)
	r.call("POST", path+"/hangup", "control", nil).problem(t, 409, "")
	r.call("POST", "/v1/calls/conv_nope/hangup", "control", nil).problem(t, 404, "id")
	r.call("POST", "/v1/transfers/xfer_nope/complete", "control", nil).problem(t, 404, "id")
}

// The PBX link down: 503 at once, nothing queued for later.
func TestCommandsWhileLinkDown(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, _ := r.liveCall("inbound-call-basic")
	r.ast.Close()
	r.waitFor("link down", func() bool { return !r.up() })
	r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 503, "")
	r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600"}).problem(t, 503, "")
	r.call("POST", "/v1/agents/100/login", "control", map[string]any{"queue": "support"}).problem(t, 503, "")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("%d originates", n)
	}
}

var reActionID = regexp.MustCompile(`ActionID: [^\r]*\r\n`)

// A call the live list shows can be read by its id at once, even while its
// state waits in the engine for the next commit (a new inbound channel
// gives the CRM no event; the engine holds such state up to StateHoldMax).
func TestCallByIDWhileItsStateWaitsForACommit(t *testing.T) {
	r := newRig(t, rigOptions{stateHold: time.Hour})
	frames := r.ast.Rewrite(amitest.EventsOf(amitest.Frames("inbound-call-basic")))
	first := slices.IndexFunc(frames, func(f amitest.Frame) bool { return f.Event() == "Newchannel" })
	if first < 0 {
		t.Fatal("no Newchannel in the capture")
	}
	if err := r.ast.PlayFrames(frames[:first+1], amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	var id string
	r.waitFor("the call in /v1/calls", func() bool {
		var body struct {
			Calls []bridge.Call `json:"calls"`
		}
		res := r.call("GET", "/v1/calls", "read", nil)
		if res.status != 200 || json.Unmarshal(res.body, &body) != nil || len(body.Calls) != 1 {
			return false
		}
		id = body.Calls[0].ID
		return true
	})
	if evs := r.events(id); len(evs) != 0 {
		t.Fatalf("events %s committed for a channel that gives the CRM none", types(evs))
	}
	res := r.call("GET", "/v1/calls/"+id, "read", nil)
	if res.status != 200 {
		t.Fatalf("GET /v1/calls/%s while listed live: %d %s", id, res.status, res.body)
	}
	body := res.json(t)
	if call, _ := body["call"].(map[string]any); call["id"] != id || body["open"] != true {
		t.Fatalf("GET /v1/calls/%s answered %s", id, res.body)
	}
}
