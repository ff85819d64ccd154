package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// Two tenants on one simulated Asterisk: acme's and globex's calls told
// apart by their accountcode, played interleaved frame by frame.

// tenantRig has operator keys (read, control, admin) and, per tenant,
// "<tenant>-read", "<tenant>-control" and "<tenant>-admin".
func tenantRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, rigOptions{
		tenants: bridge.Tenants{Rules: []bridge.TenantRule{{Source: bridge.TenantByAccountCode}},
			Agents: map[string]string{"100": "acme", "101": "globex"}},
		setup: func(s *apihttp.Server) { s.RecordingsDir = t.TempDir() },
	})
	for _, tn := range []string{"acme", "globex"} {
		for _, scope := range []string{"read", "control", "admin"} {
			key, _, err := r.db.CreateTenantAPIKey(context.Background(), tn+" "+scope, []string{scope}, "", tn)
			if err != nil {
				t.Fatal(err)
			}
			r.keys[tn+"-"+scope] = key
		}
	}
	return r
}

// withAccountCode sets every (Dest, LocalOne, ...) AccountCode of frames.
func withAccountCode(frames []amitest.Frame, code string) []amitest.Frame {
	out := make([]amitest.Frame, len(frames))
	for i, f := range frames {
		out[i] = amitest.Frame{Raw: bytes.ReplaceAll(f.Raw, []byte("AccountCode: \r\n"), []byte("AccountCode: "+code+"\r\n"))}
	}
	return out
}

// bridgedAt is the index after a capture's second BridgeEnter (both
// parties talking).
func bridgedAt(frames []amitest.Frame) int {
	enters := 0
	for i, f := range frames {
		if f.Event() == "BridgeEnter" {
			if enters++; enters == 2 {
				return i + 1
			}
		}
	}
	return len(frames)
}

// interleave alternates the frames of a and b.
func interleave(a, b []amitest.Frame) []amitest.Frame {
	var out []amitest.Frame
	for i := 0; i < len(a) || i < len(b); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

// tenantCalls plays acme's call (agent 100) and globex's (agent 101) up to
// talking, interleaved; it returns their ids and the frames that end them.
func (r *rig) tenantCalls() (acme, globex string, restA, restG []amitest.Frame) {
	r.t.Helper()
	fa := withAccountCode(r.ast.Rewrite(amitest.EventsOf(amitest.Frames("inbound-call-basic"))), "acme")
	fg := withAccountCode(r.ast.Rewrite(amitest.EventsOf(amitest.Frames("hangup-action"))), "globex")
	ca, cg := bridgedAt(fa), bridgedAt(fg)
	if err := r.ast.PlayFrames(interleave(fa[:ca], fg[:cg]), amitest.PlayOptions{}); err != nil {
		r.t.Fatal(err)
	}
	r.waitFor("both calls answered", func() bool {
		acme, globex = r.tenantAnswered("acme"), r.tenantAnswered("globex")
		return acme != "" && globex != ""
	})
	return acme, globex, fa[ca:], fg[cg:]
}

// tenantAnswered is the conversation of tenant's first call.answered.
func (r *rig) tenantAnswered(tenant string) string {
	for _, rec := range r.records() {
		if rec.Type == bridge.EventCallAnswered && bridge.RecordTenant(rec) == tenant {
			return rec.ConversationID
		}
	}
	return ""
}

// keyStream reads /v1/events/stream with key (and Last-Event-ID) in the
// background.
type keyStream struct {
	mu     sync.Mutex
	status int
	evs    []bridge.Event
}

func (r *rig) keyStream(key, lastID string) *keyStream {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.t.Cleanup(cancel)
	req, _ := nethttp.NewRequestWithContext(ctx, "GET", r.base+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+r.keys[key])
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	s := &keyStream{status: res.StatusCode}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev bridge.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					r.t.Errorf("data %q: %v", data, err)
				}
				s.mu.Lock()
				s.evs = append(s.evs, ev)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *keyStream) events() []bridge.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bridge.Event(nil), s.evs...)
}

// has reports whether the stream got an event of type typ of conv.
func (s *keyStream) has(conv, typ string) bool {
	for _, e := range s.events() {
		if e.ConversationID == conv && e.Type == typ {
			return true
		}
	}
	return false
}

// onlyTenant fails if any event is not tenant's (or none came).
func onlyTenant(t *testing.T, what string, evs []bridge.Event, tenant string) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatalf("%s: no event at all", what)
	}
	for _, e := range evs {
		if e.Tenant != tenant || e.Call != nil && e.Call.Tenant != tenant {
			t.Fatalf("%s: got %s of %s (tenant %q, call tenant %v), want only %s's", what, e.Type, e.ConversationID, e.Tenant, e.Call, tenant)
		}
	}
}

// Every call route, with acme's keys, on globex's live and ended call: not
// found (never forbidden), nothing reaches the PBX; acme's own call works.
func TestTenantCallRoutes(t *testing.T) {
	r := tenantRig(t)
	acme, globex, restA, restG := r.tenantCalls()

	// Every event of each call carries its tenant, on the call too.
	for conv, tn := range map[string]string{acme: "acme", globex: "globex"} {
		for _, e := range r.events(conv) {
			if e.Tenant != tn || e.Call == nil || e.Call.Tenant != tn {
				t.Fatalf("%s of %s: tenant %q, call %+v; want %s", e.Type, conv, e.Tenant, e.Call, tn)
			}
		}
	}

	// The live list: each tenant its own, the operator both.
	ids := func(key string) string {
		res := r.call("GET", "/v1/calls", key, nil)
		if res.status != 200 {
			t.Fatalf("GET /v1/calls %s: %d %s", key, res.status, res.body)
		}
		var body struct {
			Calls []bridge.Call `json:"calls"`
		}
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range body.Calls {
			out = append(out, c.ID+"/"+c.Tenant)
		}
		return strings.Join(out, ",")
	}
	if got := ids("acme-read"); got != acme+"/acme" {
		t.Fatalf("acme's live calls: %s", got)
	}
	if got := ids("globex-read"); got != globex+"/globex" {
		t.Fatalf("globex's live calls: %s", got)
	}
	if got := ids("read"); !strings.Contains(got, acme+"/acme") || !strings.Contains(got, globex+"/globex") {
		t.Fatalf("the operator's live calls: %s", got)
	}
	if res := r.call("GET", "/v1/calls/"+acme, "acme-read", nil); res.status != 200 || res.json(t)["call"].(map[string]any)["tenant"] != "acme" {
		t.Fatalf("acme's own call: %d %s", res.status, res.body)
	}

	commands := func(key, conv string, want int) {
		t.Helper()
		mark := len(r.ast.Received())
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/calls/" + conv, nil},
			{"GET", "/v1/calls/" + conv + "/recording", nil},
			{"POST", "/v1/calls/" + conv + "/hangup", nil},
			// hold and resume: 501 on Asterisk for every call.
			{"POST", "/v1/calls/" + conv + "/record", map[string]any{"action": "start"}},
			{"POST", "/v1/calls/" + conv + "/dtmf", map[string]any{"digits": "12"}},
			{"POST", "/v1/calls/" + conv + "/transfer", map[string]any{"to": "102"}},
			{"POST", "/v1/calls/" + conv + "/transfer", map[string]any{"to": "102", "mode": "attended"}},
		} {
			res := r.call(c.method, c.path, key, c.body)
			p := res.problem(t, want, "")
			if want == 404 && !strings.Contains(detail(p), "no call") {
				t.Fatalf("%s %s with %s: %v (the call must not exist for it)", c.method, c.path, key, p)
			}
		}
		if sent := r.amiSent(mark); strings.Contains(sent, "Action:") {
			t.Fatalf("%s reached the PBX on %s:\n%s", key, conv, sent)
		}
	}
	commands("acme-control", globex, 404)
	commands("globex-control", acme, 404)

	// The agent board: each tenant its configured agent only.
	var member []amitest.Frame
	for _, ext := range []string{"100", "101"} {
		member = append(member, amitest.Frame{Raw: []byte("Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: support\r\nMemberName: Agent" + ext +
			"\r\nInterface: Local/" + ext + "@agents\r\nStatus: 1\r\nPaused: 0\r\n\r\n")})
	}
	if err := r.ast.PlayFrames(member, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	board := func(key string) string {
		res := r.call("GET", "/v1/agents", key, nil)
		var body struct {
			Agents []bridge.AgentView `json:"agents"`
		}
		if err := json.Unmarshal(res.body, &body); err != nil || res.status != 200 {
			t.Fatalf("GET /v1/agents %s: %d %s", key, res.status, res.body)
		}
		var out []string
		for _, a := range body.Agents {
			out = append(out, a.Extension+"/"+a.Tenant)
		}
		return strings.Join(out, ",")
	}
	r.waitFor("both agents on the board", func() bool { return board("read") == "100/acme,101/globex" })
	if got := board("acme-read"); got != "100/acme" {
		t.Fatalf("acme's agents: %s", got)
	}
	if got := board("globex-read"); got != "101/globex" {
		t.Fatalf("globex's agents: %s", got)
	}

	// Dialling for the other tenant's agent: that agent does not exist.
	mark := len(r.ast.Received())
	r.call("POST", "/v1/calls", "acme-control", map[string]any{"agent": "101", "to": "600"}).problem(t, 404, "agent")
	r.call("POST", "/v1/agents/101/login", "acme-control", map[string]any{"queue": "support"}).problem(t, 404, "extension")
	if sent := r.amiSent(mark); strings.Contains(sent, "Action:") {
		t.Fatalf("acme dialled or logged in globex's agent:\n%s", sent)
	}

	// Ended: still not found for the other tenant (from the history).
	if err := r.ast.PlayFrames(interleave(restA, restG), amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(acme, bridge.EventCallEnded)
	r.waitEvents(globex, bridge.EventCallEnded)
	commands("acme-control", globex, 404)
	r.call("POST", "/v1/calls/"+acme+"/hangup", "acme-control", nil).problem(t, 409, "")

	// History: one's own calls only, whatever the query.
	hist := func(key, q string) string {
		res := r.call("GET", "/v1/history"+q, key, nil)
		if res.status != 200 {
			t.Fatalf("history %s: %d %s", key, res.status, res.body)
		}
		var body struct {
			Calls []bridge.Call `json:"calls"`
		}
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range body.Calls {
			out = append(out, c.ID)
		}
		return strings.Join(out, ",")
	}
	if got := hist("acme-read", ""); got != acme {
		t.Fatalf("acme's history: %s", got)
	}
	if got := hist("acme-read", "?agent=101"); got != "" {
		t.Fatalf("acme's history of globex's agent: %s", got)
	}
	if got := hist("globex-read", ""); got != globex {
		t.Fatalf("globex's history: %s", got)
	}
	if got := hist("read", ""); !strings.Contains(got, acme) || !strings.Contains(got, globex) {
		t.Fatalf("the operator's history: %s", got)
	}
}

// Webhook endpoints and the event stream: a tenant's endpoint and stream
// get its events only; tenant keys administer their own endpoints only;
// replay never crosses.
func TestTenantEndpointsStreamReplay(t *testing.T) {
	r := tenantRig(t)
	rcvA, rcvG := webhookstest.NewReceiver(t, r.secret), webhookstest.NewReceiver(t, r.secret)
	// The operator makes acme's endpoint; globex's admin its own (the
	// tenant forced); acme's admin cannot make one for globex.
	if res := r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-acme", "url": rcvA.URL, "secret": r.secret, "tenant": "acme"}); res.status != 201 || res.json(t)["tenant"] != "acme" {
		t.Fatalf("operator creates acme's endpoint: %d %s", res.status, res.body)
	}
	if res := r.call("POST", "/v1/webhooks", "globex-admin", map[string]any{"id": "ep-globex", "url": rcvG.URL, "secret": r.secret}); res.status != 201 || res.json(t)["tenant"] != "globex" {
		t.Fatalf("globex creates its endpoint: %d %s", res.status, res.body)
	}
	r.call("POST", "/v1/webhooks", "acme-admin", map[string]any{"id": "ep-x", "url": rcvA.URL, "tenant": "globex"}).problem(t, 403, "tenant")
	r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-y", "url": rcvA.URL, "tenant": "Acme!"}).problem(t, 400, "tenant")
	// By default a tenant's endpoint made over the API must be at a public
	// address: the provider's own network is not the tenant's to reach (or
	// to read answers from in the attempt log). The operator's are not
	// limited; its config can open the tenants' too.
	strict := newRig(t, rigOptions{tenants: bridge.Tenants{Rules: []bridge.TenantRule{{Source: bridge.TenantByAccountCode}}}, publicTenantEndpoints: true})
	key, _, err := strict.db.CreateTenantAPIKey(context.Background(), "acme admin", []string{"admin"}, "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	strict.keys["acme-admin"] = key
	for _, url := range []string{rcvA.URL, "http://10.1.2.3/hook", "http://[::1]:9/x"} {
		p := strict.call("POST", "/v1/webhooks", "acme-admin", map[string]any{"id": "ep-in", "url": url}).problem(t, 400, "url")
		if !strings.Contains(p["detail"].(string), "delivery.tenant_endpoints_private") {
			t.Fatalf("%s: %s", url, p["detail"])
		}
	}
	strict.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-in", "url": rcvA.URL, "tenant": "acme"}).problem(t, 400, "url")
	if res := strict.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-op", "url": rcvA.URL}); res.status != 201 {
		t.Fatalf("the operator's own endpoint on loopback: %d %s", res.status, res.body)
	}
	if res := strict.call("POST", "/v1/webhooks", "acme-admin", map[string]any{"id": "ep-pub", "url": "https://crm.acme.example/hook"}); res.status != 201 {
		t.Fatalf("a tenant's public endpoint: %d %s", res.status, res.body)
	}

	// A tenant no rule or agent can give would receive nothing: refused.
	// Here any name may come from an accountcode, so only a rig with
	// mapped rules (or none) can show it.
	closed := newRig(t, rigOptions{tenants: bridge.Tenants{Agents: map[string]string{"100": "acme"}}})
	closed.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-z", "url": rcvA.URL, "tenant": "acmee"}).problem(t, 400, "tenant")
	if res := closed.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-z", "url": rcvA.URL, "tenant": "acme"}); res.status != 201 {
		t.Fatalf("a tenant an agent has: %d %s", res.status, res.body)
	}

	// Admin routes of a tenant key: its endpoints only (not the
	// operator's crm, not globex's).
	res := r.call("GET", "/v1/webhooks", "acme-admin", nil)
	if res.status != 200 || !strings.Contains(string(res.body), `"ep-acme"`) || strings.Contains(string(res.body), `"ep-globex"`) || strings.Contains(string(res.body), `"crm"`) {
		t.Fatalf("acme's endpoints: %d %s", res.status, res.body)
	}
	for _, id := range []string{"ep-globex", "crm"} {
		r.call("GET", "/v1/webhooks/"+id, "acme-admin", nil).problem(t, 404, "id")
		r.call("PATCH", "/v1/webhooks/"+id, "acme-admin", map[string]any{"url": rcvA.URL}).problem(t, 404, "id")
		r.call("DELETE", "/v1/webhooks/"+id, "acme-admin", nil).problem(t, 404, "id")
		r.call("POST", "/v1/webhooks/"+id+"/test", "acme-admin", nil).problem(t, 404, "id")
		r.call("GET", "/v1/webhooks/"+id+"/deliveries", "acme-admin", nil).problem(t, 404, "id")
		r.call("GET", "/v1/webhooks/"+id+"/dead", "acme-admin", nil).problem(t, 404, "id")
	}

	sA, sG, sOp := r.keyStream("acme-read", ""), r.keyStream("globex-read", ""), r.keyStream("read", "")
	if sA.status != 200 || sG.status != 200 || sOp.status != 200 {
		t.Fatalf("streams: %d %d %d", sA.status, sG.status, sOp.status)
	}
	acme, globex, restA, restG := r.tenantCalls()
	// globex's call ends first: acme's call.ended is committed after
	// every globex event, so once a stream or endpoint has it, it has had
	// its chance to (wrongly) get them.
	if err := r.ast.PlayFrames(restG, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(globex, bridge.EventCallEnded)
	if err := r.ast.PlayFrames(restA, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(acme, bridge.EventCallEnded)

	r.waitFor("acme's stream", func() bool { return sA.has(acme, bridge.EventCallEnded) })
	r.waitFor("globex's stream", func() bool { return sG.has(globex, bridge.EventCallEnded) })
	r.waitFor("the operator's stream", func() bool { return sOp.has(acme, bridge.EventCallEnded) })
	onlyTenant(t, "acme's stream", sA.events(), "acme")
	onlyTenant(t, "globex's stream", sG.events(), "globex")
	if !sOp.has(globex, bridge.EventCallEnded) {
		t.Fatal("the operator's stream lacks globex's call")
	}

	// Endpoints: each gets every event of its tenant's call, nothing else;
	// the operator's crm gets both.
	count := func(conv string) int { return len(r.events(conv)) }
	for _, c := range []struct {
		rcv  *webhookstest.Receiver
		conv string
		tn   string
	}{{rcvA, acme, "acme"}, {rcvG, globex, "globex"}} {
		ds := c.rcv.WaitFor(count(c.conv), 10*time.Second)
		var evs []bridge.Event
		for _, d := range ds {
			var ev bridge.Event
			if err := json.Unmarshal(d.Raw, &ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		onlyTenant(t, c.tn+"'s endpoint", evs, c.tn)
	}
	if n := len(r.rcv.WaitFor(count(acme)+count(globex), 10*time.Second)); n < count(acme)+count(globex) {
		t.Fatalf("the operator's endpoint got %d deliveries", n)
	}

	// Resuming the stream: from one's own event, one's own backlog only;
	// another tenant's event id is unknown.
	first := r.events(acme)[0].ID
	resumed := r.keyStream("acme-read", first)
	r.waitFor("acme's resumed stream", func() bool { return resumed.has(acme, bridge.EventCallEnded) })
	onlyTenant(t, "acme's resumed stream", resumed.events(), "acme")
	gEv := r.events(globex)[0].ID
	req, _ := nethttp.NewRequest("GET", r.base+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+r.keys["acme-read"])
	req.Header.Set("Last-Event-ID", gEv)
	if res, err := nethttp.DefaultClient.Do(req); err != nil || res.StatusCode != 404 {
		t.Fatalf("acme resumes from globex's event: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}

	// Replay: another tenant's event is not found; the operator cannot
	// send globex's event to acme's endpoint.
	r.call("POST", "/v1/events/"+gEv+"/replay", "acme-admin", map[string]any{}).problem(t, 404, "id")
	r.call("POST", "/v1/events/"+gEv+"/replay", "admin", map[string]any{"endpoints": []string{"ep-acme"}}).problem(t, 400, "endpoints")
	r.call("POST", "/v1/events/"+gEv+"/replay", "acme-admin", map[string]any{"endpoints": []string{"ep-globex"}}).problem(t, 404, "id")
	if res := r.call("POST", "/v1/events/"+first+"/replay", "acme-admin", map[string]any{}); res.status != 202 || strings.Contains(string(res.body), "crm") || strings.Contains(string(res.body), "ep-globex") {
		t.Fatalf("acme replays its own event: %d %s", res.status, res.body)
	}
}
