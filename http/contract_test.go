package http_test

import (
	"encoding/json"
	"github.com/ctibridge/ctibridge/bridge"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
	"github.com/staskobzar/goami2"
)

// A PBX that does not answer within the request's deadline: 504 as
// problem+json with the timeout code, not a request held open.
func TestRequestTimeout(t *testing.T) {
	r := newRig(t, rigOptions{
		onAction: func(r *rig, a *goami2.Message) bool { return a.Field("Action") == "Hangup" }, // never answered
		setup:    func(s *apihttp.Server) { s.RequestTimeout = 300 * time.Millisecond },
	})
	conv, _ := r.liveCall("inbound-call-basic")
	p := r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 504, "")
	if p["code"] != "timeout" {
		t.Fatalf("problem %v", p)
	}
}

// Wrong JSON types are refused naming the field, on every kind of body.
func TestRequestBodyTypes(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, _ := r.liveCall("inbound-call-basic")
	mark := len(r.ast.Received())
	for _, c := range []struct {
		method, path, scope, body, field, detail string
	}{
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","variables":{"A":1}}`, "variables", "an object of strings"},
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","variables":[]}`, "variables", "an object of strings"},
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","timeout_s":"30"}`, "timeout_s", "an integer"},
		{"POST", "/v1/calls", "control", `["agent"]`, "body", "an object"},
		{"POST", "/v1/calls", "control", `{"":1}`, "body", "empty name"},
		{"POST", "/v1/calls/" + conv + "/transfer", "control", `{"to":600}`, "to", "a string"},
		{"POST", "/v1/calls/" + conv + "/transfer", "control", `{"to":"600","mode":"blind","when":"now"}`, "when", "not a known field"},
		{"POST", "/v1/calls/" + conv + "/record", "control", `{"action":true}`, "action", "a string"},
		{"POST", "/v1/agents/100/login", "control", `{"queue":["support"]}`, "queue", "a string"},
		{"POST", "/v1/webhooks", "admin", `{"url":"https://crm.example.com/","events":"call.*"}`, "events", "an array of strings"},
		{"POST", "/v1/webhooks", "admin", `{"url":"https://crm.example.com/","events":[1]}`, "events", "an array of strings"},
		{"POST", "/v1/events/replay", "admin", `{"from":20261122}`, "from", "a string"},
		// encoding/json would keep the last of two names that differ only in
		// case: agent 101 dialled, with no word said.
		{"POST", "/v1/calls", "control", `{"agent":"100","Agent":"101","to":"600"}`, "Agent", `given twice, also as "agent"`},
		{"POST", "/v1/calls", "control", `{"agent":"100","to":"600","to":"601"}`, "to", "given twice"},
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","variables":{"crm_a":"1"},"variableſ":{"crm_a":"2"}}`, "variableſ", `also as "variables"`},
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","variables":{"crm_a":"x","crm_a":"y"}}`, "variables.crm_a", "given twice"},
		{"POST", "/v1/calls", "control", `{"agent":"101","to":"600","variables":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, "body", "nests deeper than 32 levels"},
	} {
		p := r.call(c.method, c.path, c.scope, c.body).problem(t, 400, c.field)
		if !strings.Contains(p["detail"].(string), c.detail) {
			t.Errorf("%s %s: detail %q, want %q", c.path, c.body, p["detail"], c.detail)
		}
	}
	if got := r.amiSent(mark); got != "" {
		t.Fatalf("sent %q", got)
	}
}

// Asterisk cannot hold over AMI, whatever the call's state: 501 with the
// reason, nothing sent.
func TestHoldAsteriskNotImplemented(t *testing.T) {
	r := newRig(t, rigOptions{})
	frames := r.ast.Rewrite(amitest.EventsOf(amitest.Frames("inbound-call-basic")))
	before := len(r.records())
	// Up to the agent's phone ringing: no agent has the call yet.
	for i, f := range frames {
		if f.Event() == "Newstate" && strings.HasPrefix(f.Header("Channel"), "Local/100@agents") {
			frames = frames[:i]
			break
		}
	}
	if err := r.ast.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	var conv string
	r.waitFor("call.ringing", func() bool {
		for _, rec := range r.records()[before:] {
			conv = rec.ConversationID
			return rec.Type == "call.ringing"
		}
		return false
	})
	if res := r.call("GET", "/v1/calls", "read", nil); !strings.Contains(string(res.body), `"state":"ringing"`) {
		t.Fatalf("not ringing: %s", res.body)
	}
	mark := len(r.ast.Received())
	for _, action := range []string{"hold", "resume"} {
		p := r.call("POST", "/v1/calls/"+conv+"/"+action, "control", nil).problem(t, 501, "")
		if p["code"] != "not_implemented" || !strings.Contains(p["detail"].(string), "hold") {
			t.Fatalf("%s: %v", action, p)
		}
	}
	if got := r.amiSent(mark); got != "" {
		t.Fatalf("sent %q", got)
	}
}

// A delivery that keeps failing is dead-lettered after the retry window,
// listed, and replayed by id and by time range with its webhook-id.
func TestDeadLettersReplayed(t *testing.T) {
	r := newRig(t, rigOptions{retryWindow: 200 * time.Millisecond})
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	var failing atomic.Bool
	failing.Store(true)
	rcv.Respond(func(webhookstest.Delivery) webhookstest.Response {
		if failing.Load() {
			return webhookstest.Response{Status: 503}
		}
		return webhookstest.Response{}
	})
	if res := r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "down", "url": rcv.URL, "secret": secret, "events": []string{"call.*"}}); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	start := time.Now().Add(-time.Second).UTC()
	if err := r.ast.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	type dead struct {
		Dead []struct {
			EventID  string `json:"event_id"`
			Type     string `json:"type"`
			Attempts int    `json:"attempts"`
		} `json:"dead"`
	}
	var d dead
	r.waitFor("three dead letters", func() bool {
		res := r.call("GET", "/v1/webhooks/down/dead", "admin", nil)
		d = dead{}
		if err := json.Unmarshal(res.body, &d); err != nil {
			t.Fatal(err)
		}
		return len(d.Dead) == 3
	})
	var ids []string
	for _, x := range d.Dead {
		if x.Attempts < 1 || !strings.HasPrefix(x.Type, "call.") {
			t.Fatalf("dead letter %+v", x)
		}
		ids = append(ids, x.EventID)
	}
	if len(rcv.Deliveries()) != 0 {
		t.Fatal("delivered while failing")
	}
	failing.Store(false) // the CRM is back
	res := r.call("POST", "/v1/events/"+ids[0]+"/replay", "admin", map[string]any{"endpoints": []string{"down"}})
	if res.status != 202 || !strings.Contains(string(res.body), `"endpoints":["down"]`) || !strings.Contains(string(res.body), `"already_pending":[]`) {
		t.Fatalf("replay: %d %s", res.status, res.body)
	}
	if ds := rcv.WaitFor(1, 5*time.Second); len(ds) != 1 || ds[0].ID != ids[0] || ds[0].Err != nil {
		t.Fatalf("replayed by id: %+v", ds)
	}
	// A range replay takes what was delivered or dead, not what is in
	// flight: wait for the replayed one's outcome.
	r.waitFor("the replay's outcome", func() bool {
		return strings.Contains(string(r.call("GET", "/v1/webhooks/down/deliveries", "admin", nil).body), `"outcome":"delivered"`)
	})
	res = r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": start.Format(time.RFC3339Nano), "endpoint": "down"})
	if res.status != 202 || res.json(t)["replayed"] != 3.0 {
		t.Fatalf("range replay: %d %s", res.status, res.body)
	}
	got := map[string]int{}
	for _, x := range rcv.WaitFor(4, 5*time.Second) {
		got[x.ID]++
	}
	for i, id := range ids {
		if want := 1 + map[bool]int{true: 1}[i == 0]; got[id] != want {
			t.Fatalf("event %s delivered %d times, want %d (%v)", id, got[id], want, got)
		}
	}
	r.waitFor("dead letters cleared", func() bool {
		return string(r.call("GET", "/v1/webhooks/down/dead", "admin", nil).body) == `{"dead":[]}`
	})
}

// A command refused while the link is down is not sent when it comes back:
// after the reconnect, a new command reaches Asterisk and the refused ones
// never do (a queue would have sent them first).
func TestRefusedCommandsNotSentAfterReconnect(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, _ := r.liveCall("inbound-call-basic")
	addr := r.ast.Addr()
	r.ast.Close()
	r.waitFor("link down", func() bool { return !r.up() })
	r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 503, "")
	r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600"}).problem(t, 503, "")
	sim, err := amitest.NewServer(amitest.ServerOptions{Addr: addr, OnAction: func(a *goami2.Message) bool {
		if a.Field("Action") == "QueueAdd" {
			_ = r.ast.Reply(a, amitest.Response(a, "Success", "Message", "Added interface to queue"))
			return true
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	old := r.ast
	r.ast = sim
	t.Cleanup(func() { sim.Close(); old.Close() })
	r.waitFor("link up again", r.up)
	if res := r.call("POST", "/v1/agents/100/login", "control", map[string]any{"queue": "support"}); res.status != 202 {
		t.Fatalf("login after the reconnect: %d %s", res.status, res.body)
	}
	got := string(sim.Received())
	if !strings.Contains(got, "Action: QueueAdd\r\n") || strings.Contains(got, "Action: Hangup") || strings.Contains(got, "Action: Originate") {
		t.Fatalf("after the reconnect the PBX received %q", got)
	}
}

// goneEndpoint makes an API endpoint whose receiver answers its first
// request (a test event) 410 Gone, and waits until it is disabled.
func (r *rig) goneEndpoint(id string, events []string) (*webhookstest.Receiver, string) {
	r.t.Helper()
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(r.t, secret)
	rcv.Script(webhookstest.Response{Status: 410})
	body := map[string]any{"id": id, "url": rcv.URL, "secret": secret}
	if events != nil {
		body["events"] = events
	}
	if res := r.call("POST", "/v1/webhooks", "admin", body); res.status != 201 {
		r.t.Fatalf("create: %d %s", res.status, res.body)
	}
	if res := r.call("POST", "/v1/webhooks/"+id+"/test", "admin", nil); res.status != 202 {
		r.t.Fatalf("test: %d %s", res.status, res.body)
	}
	r.waitFor("the 410 to disable it", func() bool {
		return strings.Contains(string(r.call("GET", "/v1/webhooks/"+id, "admin", nil).body), `"disabled":true`)
	})
	return rcv, secret
}

// An endpoint a 410 Gone disabled can be turned on again over the API,
// and delivers from then on; "enabled": false is refused with the way out.
func TestReenableEndpoint(t *testing.T) {
	r := newRig(t, rigOptions{})
	rcv, _ := r.goneEndpoint("crm2", nil)
	if res := r.call("POST", "/v1/webhooks/crm2/test", "admin", nil); res.status != 409 {
		t.Fatalf("test while disabled: %d %s", res.status, res.body)
	}
	p := r.call("PATCH", "/v1/webhooks/crm2", "admin", map[string]any{"enabled": false}).problem(t, 400, "enabled")
	if !strings.Contains(p["detail"].(string), "DELETE") {
		t.Errorf("detail %q", p["detail"])
	}
	res := r.call("PATCH", "/v1/webhooks/crm2", "admin", map[string]any{"enabled": true})
	if res.status != 200 || strings.Contains(string(res.body), `"disabled":true`) {
		t.Fatalf("re-enable: %d %s", res.status, res.body)
	}
	if res := r.call("POST", "/v1/webhooks/crm2/test", "admin", nil); res.status != 202 {
		t.Fatalf("test after re-enabling: %d %s", res.status, res.body)
	}
	if ds := rcv.WaitFor(1, 30*time.Second); len(ds) != 1 || ds[0].Type != "webhook.test" {
		t.Fatalf("delivered after re-enabling: %+v", ds)
	}
}

// Events committed while an endpoint was disabled have no delivery to it:
// a range replay reaches them only with missed, which needs the endpoint
// named and takes what its filter takes.
func TestReplayRangeMissedWhileDisabled(t *testing.T) {
	r := newRig(t, rigOptions{})
	rcv, secret := r.goneEndpoint("crm2", []string{"call.answered"})
	// The engine learns of the 410 just after the store: a change of the
	// list pushes it again, read after the store's (under the same lock).
	r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "push", "url": rcv.URL, "secret": secret})
	r.call("DELETE", "/v1/webhooks/push", "admin", nil)
	from := time.Now().UTC().Format(time.RFC3339Nano) // after the test event
	conv, _ := r.liveCall("inbound-call-basic")       // ringing and answered, while crm2 is off
	if res := r.call("PATCH", "/v1/webhooks/crm2", "admin", map[string]any{"enabled": true}); res.status != 200 {
		t.Fatalf("re-enable: %d %s", res.status, res.body)
	}
	res := r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": from, "endpoint": "crm2"})
	if res.status != 202 || res.json(t)["replayed"] != float64(0) {
		t.Fatalf("replay without missed: %d %s; want nothing (crm2 had no delivery of the call)", res.status, res.body)
	}
	r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": from, "missed": true}).problem(t, 400, "missed")
	res = r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": from, "endpoint": "crm2", "missed": true})
	if res.status != 202 || res.json(t)["replayed"] != float64(1) {
		t.Fatalf("replay with missed: %d %s; want the call's one call.answered", res.status, res.body)
	}
	ds := rcv.WaitFor(1, 30*time.Second)
	if len(ds) != 1 || ds[0].Type != bridge.EventCallAnswered || ds[0].ConversationID != conv {
		t.Fatalf("crm2 received %+v, want the call.answered of %s", ds, conv)
	}
}
