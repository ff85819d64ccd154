package http_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

var reOriginate = regexp.MustCompile(`^bgapi originate \{origination_uuid=([0-9a-f-]{36}),originate_timeout=(\d+)\}loopback/101/default 600 XML default\nJob-UUID: ([0-9a-f-]{36})\n\n$`)

// Click-to-call on FreeSWITCH: bgapi originate with the pre-assigned leg
// uuid and Job-UUID; the switch's failure (the simulator has no route, as
// the originate-failure capture) fails the conversation the API returned.
func TestClickToCallFreeSWITCHFails(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	mark := len(r.fs.Received()[0])
	res := r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600", "timeout_s": 20})
	if res.status != 202 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	conv := res.json(t)["id"].(string)
	if m := reOriginate.FindStringSubmatch(r.eslSent(mark)); m == nil || m[2] != "20" {
		t.Fatalf("sent %q", r.eslSent(mark))
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if types(evs) != "call.failed,call.ended" || evs[1].Call.Disposition != bridge.DispositionFailed ||
		evs[1].Call.Direction != bridge.DirectionOutbound || evs[1].Call.HangupCause.Code != 3 {
		t.Fatalf("events %s %+v", types(evs), evs[len(evs)-1].Call)
	}
}

// The switch places the call: its first event, the agent's leg with the
// pre-assigned uuid, already belongs to the returned conversation, and the
// agent's phone ringing is the click-to-call's call.ringing (outbound), as
// on Asterisk.
func TestClickToCallFreeSWITCHRings(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch", api: func(cmd, args string) (string, bool) {
		return "+OK 0085ebeb-a9d3-4ead-b747-874e997b39c0\n", cmd == "originate"
	}})
	mark := len(r.fs.Received()[0])
	res := r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600"})
	conv := res.json(t)["id"].(string)
	m := reOriginate.FindStringSubmatch(r.eslSent(mark))
	if m == nil || m[2] != "30" {
		t.Fatalf("sent %q", r.eslSent(mark))
	}
	frames, err := r.fs.Prepare("basic-call-plain", esltest.PlayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The capture's originated leg (loopback/2000-a) is ours.
	var agentLeg []esltest.Frame
	for _, f := range frames {
		if f.Event.Get("Unique-ID") == "0085ebeb-a9d3-4ead-b747-874e997b39c0" && f.Event.Get("Event-Name") == "CHANNEL_CREATE" {
			raw := strings.ReplaceAll(string(f.Raw), "0085ebeb-a9d3-4ead-b747-874e997b39c0", m[1])
			ev := *f.Event
			ev.Headers = append([]esltest.Header(nil), f.Event.Headers...)
			for i, h := range ev.Headers {
				ev.Headers[i].Value = strings.ReplaceAll(h.Value, "0085ebeb-a9d3-4ead-b747-874e997b39c0", m[1])
			}
			f.Raw, f.Event = []byte(raw), &ev
			agentLeg = append(agentLeg, f)
			break
		}
	}
	r.fs.Stream(agentLeg, 0)
	var live bridge.Call
	r.waitFor("the call live", func() bool {
		for _, c := range r.engine.Live() {
			if c.ID == conv {
				live = c
				return true
			}
		}
		return false
	})
	if live.Agent == nil || live.Agent.Extension != "101" || live.Callee.Number != "600" {
		t.Fatalf("live call %+v", live)
	}
	evs := r.waitEvents(conv, bridge.EventCallRinging)
	if types(evs) != "call.ringing" || evs[0].Agent == nil || evs[0].Agent.Extension != "101" ||
		evs[0].Call.Direction != bridge.DirectionOutbound || evs[0].Call.Callee.Number != "600" {
		t.Fatalf("events %s %+v", types(evs), evs)
	}
}

func TestCallCommandsFreeSWITCH(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch", api: func(cmd, args string) (string, bool) {
		switch cmd {
		case "uuid_broadcast", "uuid_send_dtmf":
			return "+OK\n", true
		case "uuid_kill":
			return "+OK\n", true // the consultation leg is not in the simulator's table
		}
		return "", false
	}})
	frames, err := r.fs.Prepare("basic-call-plain", esltest.PlayOptions{Rewrite: true})
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for i, f := range frames {
		if f.Event.Get("Event-Name") == "CHANNEL_BRIDGE" {
			cut = i + 1
			break
		}
	}
	r.fs.Stream(frames[:cut], 0)
	var conv string
	r.waitFor("answered", func() bool {
		for _, rec := range r.records() {
			if rec.Type == bridge.EventCallAnswered {
				conv = rec.ConversationID
				return true
			}
		}
		return false
	})
	uuidOf := map[string]string{}
	for _, ch := range r.fs.Channels() {
		uuidOf[ch["name"]] = ch["uuid"]
	}
	cust, agent := uuidOf["loopback/2000-b"], uuidOf["loopback/1000-a"]
	if cust == "" || agent == "" {
		t.Fatalf("channels %v", uuidOf)
	}
	path := "/v1/calls/" + conv
	send := func(method, p string, body any) (resp, string) {
		t.Helper()
		mark := len(r.fs.Received()[0])
		res := r.call(method, p, "control", body)
		return res, r.eslSent(mark)
	}
	check := func(name string, res resp, got string, status int, want string) map[string]any {
		t.Helper()
		if res.status != status || got != want {
			t.Fatalf("%s: %d %s sent %q, want %q", name, res.status, res.body, got, want)
		}
		if status >= 400 {
			return nil
		}
		return res.json(t)
	}
	res, got := send("POST", path+"/hold", nil)
	check("hold", res, got, 202, "api uuid_hold "+agent+"\n\n")
	// A loopback leg never enters the held state: FreeSWITCH refuses to
	// take it off hold (the hold-loopback capture), and so does the API.
	res, got = send("POST", path+"/resume", nil)
	check("resume", res, got, 409, "api uuid_hold off "+agent+"\n\n")
	res, got = send("POST", path+"/dtmf", map[string]any{"digits": "1#"})
	check("dtmf", res, got, 202, "api uuid_send_dtmf "+cust+" 1#\n\n")
	res, got = send("POST", path+"/record", map[string]any{"action": "start"})
	file, _ := res.json(t)["file"].(string)
	check("record", res, got, 202, "api uuid_record "+cust+" start /rec/"+file+"\n\n")
	res, got = send("POST", path+"/record", map[string]any{"action": "stop"})
	check("record stop", res, got, 202, "api uuid_record "+cust+" stop all\n\n")

	res, got = send("POST", path+"/transfer", map[string]any{"to": "3000", "mode": "attended"})
	consult := regexp.MustCompile(`origination_uuid=([0-9a-f-]{36})`).FindStringSubmatch(got)
	if consult == nil {
		t.Fatalf("attended sent %q", got)
	}
	xfer := check("attended", res, got, 202, "api uuid_broadcast "+agent+" att_xfer::{origination_uuid="+consult[1]+",loopback_bowout=false}loopback/3000/default aleg\n\n")["transfer_id"].(string)
	res, got = send("DELETE", "/v1/transfers/"+xfer, nil)
	check("cancel", res, got, 202, "api uuid_kill "+consult[1]+"\n\n")
	res, _ = send("POST", path+"/transfer", map[string]any{"to": "3000", "mode": "attended"})
	xfer = res.json(t)["transfer_id"].(string)
	res, got = send("POST", "/v1/transfers/"+xfer+"/complete", nil)
	check("complete", res, got, 202, "api uuid_kill "+agent+"\n\n")

	res, got = send("POST", path+"/transfer", map[string]any{"to": "3000"})
	check("blind", res, got, 202, "api uuid_transfer "+cust+" 3000 XML default\n\n")
	res, got = send("POST", "/v1/agents/1000/login", map[string]any{"queue": "support@default"})
	check("login", res, got, 202, "api callcenter_config tier set state support@default 1000@default Ready\n\n"+
		"api callcenter_config agent set status 1000@default 'Available'\n\n")
	res, got = send("POST", path+"/hangup", nil)
	check("hangup", res, got, 202, "api uuid_kill "+cust+"\n\n")

	// Injection through the API never reaches the socket.
	for _, c := range []struct {
		p, field string
		body     any
	}{
		{path + "/transfer", "to", map[string]any{"to": "3000\n\napi hupall"}},
		{path + "/transfer", "to", map[string]any{"to": "3000 XML public"}},
		{"/v1/calls", "variables.crm_x", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"crm_x": "1,origination_uuid=x"}}},
		// The enterprise-originate injection confirmed on FreeSWITCH
		// 1.10.12 (":_:" splits the whole dial string, the second part's
		// [api_on_originate=...] runs a shell), in a value and a caller id.
		{"/v1/calls", "variables.crm_ticket", map[string]any{"agent": "101", "to": "600",
			"variables": map[string]string{"crm_ticket": "x:_:[api_on_originate=system touch pwned]loopback/9196/default|"}}},
		{"/v1/calls", "caller_id", map[string]any{"agent": "101", "to": "600",
			"caller_id": `"x:_:[api_on_originate=system touch pwned]loopback/9196/default|" <600>`}},
		{"/v1/calls", "variables.crm_x", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"crm_x": "a<b>|c[d]^^e$f"}}},
		// Variables FreeSWITCH acts on that the old blocklist missed.
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"process_cdr": "false"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"accountcode": "x"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"domain_name": "x"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"nibble_rate": "1"}}},
		{"/v1/calls", "to", map[string]any{"agent": "101", "to": "600 &park"}},
		// Variables FreeSWITCH acts on: a command run on answer, the
		// pre-assigned uuid overridden, the leg moved after the bridge.
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"api_on_answer": "system id"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"EXECUTE_ON_ANSWER": "bridge_export"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"origination_uuid": "x"}}},
		{"/v1/calls", "variables", map[string]any{"agent": "101", "to": "600", "variables": map[string]string{"crm_ok": "1", "session_in_hangup_hook": "true"}}},
		// A leading '-' would be a uuid_transfer flag (-bleg, -both).
		{path + "/transfer", "to", map[string]any{"to": "-bleg"}},
		{path + "/transfer", "to", map[string]any{"to": "-both", "mode": "attended"}},
		// Every other field that reaches an ESL command line.
		{path + "/dtmf", "digits", map[string]any{"digits": "1\n\napi hupall"}},
		{path + "/dtmf", "digits", map[string]any{"digits": "1 2"}},
		{path + "/record", "file", map[string]any{"action": "start", "file": "a.wav\n\napi hupall"}},
		{path + "/record", "file", map[string]any{"action": "start", "file": "a.wav stop all"}},
		{"/v1/calls", "caller_id", map[string]any{"agent": "101", "to": "600", "caller_id": "x\n\napi hupall <600>"}},
		{"/v1/calls", "caller_id", map[string]any{"agent": "101", "to": "600", "caller_id": "x'},{origination_uuid=y <600>"}},
		{"/v1/calls", "agent", map[string]any{"agent": "101 &park", "to": "600"}},
		{"/v1/agents/1000/login", "queue", map[string]any{"queue": "support@default\n\napi hupall"}},
		{"/v1/agents/1000/login", "queue", map[string]any{"queue": "support@default Ready"}},
		{"/v1/agents/1000%0A%0Aapi%20hupall/login", "extension", nil},
		{"/v1/agents/1000/pause", "reason", map[string]any{"reason": "x\n\napi hupall"}},
	} {
		res, got = send("POST", c.p, c.body)
		if res.problem(t, 400, c.field); got != "" {
			t.Fatalf("%s reached the switch: %q", c.p, got)
		}
	}
}
