package http_test

import (
	"strings"
	"testing"

	apihttp "github.com/ctibridge/ctibridge/http"
)

// Every route an agent key can reach treats another agent's call, transfer
// and state as not there (404, never 403, so nothing is learnt), and sends
// nothing to the PBX for it; the agent's own call works. The key comes as a
// bearer token and as the panel's cookie.
func TestAgentKeyOnEveryRouteOfAnotherAgentsCall(t *testing.T) {
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) { s.RecordingsDir = t.TempDir() }})
	k100, k101 := r.agentKey("100"), r.agentKey("101")
	conv, _ := r.liveCall("inbound-call-basic") // agent 100 talks to the caller
	jsonHdr := []string{"Content-Type", "application/json"}

	// Agent 100 starts an attended transfer: agent 101 must not finish it.
	res := r.raw("POST", "/v1/calls/"+conv+"/transfer", k100, `{"to":"600","mode":"attended"}`, jsonHdr...)
	if res.status != 202 {
		t.Fatalf("100's own transfer: %d %s", res.status, res.body)
	}
	xfer, _ := res.json(t)["transfer_id"].(string)

	as := []struct{ how, key string }{{"bearer", k101}, {"cookie", r.signIn(k101)}}
	for _, a := range as {
		do := func(method, path, body string) resp {
			if a.how == "bearer" {
				return r.raw(method, path, a.key, body, jsonHdr...)
			}
			return r.raw(method, path, "", body, r.panelHdr(a.key)...)
		}
		mark := len(r.ast.Received())
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/calls/" + conv, ""},
			{"GET", "/v1/calls/" + conv + "/recording", ""},
			{"POST", "/v1/calls/" + conv + "/hangup", ""},
			{"POST", "/v1/calls/" + conv + "/record", `{"action":"start"}`},
			{"POST", "/v1/calls/" + conv + "/dtmf", `{"digits":"1"}`},
			{"POST", "/v1/calls/" + conv + "/transfer", `{"to":"600"}`},
			{"POST", "/v1/transfers/" + xfer + "/complete", ""},
			{"DELETE", "/v1/transfers/" + xfer, ""},
			{"POST", "/v1/agents/100/login", `{"queue":"support"}`},
			{"POST", "/v1/agents/100/pause", `{"queue":"support","reason":"lunch"}`},
			{"POST", "/v1/agents/100/logout", `{"queue":"support"}`},
		} {
			res := do(c.method, c.path, c.body)
			if res.status != 404 {
				t.Errorf("%s: 101's %s %s: %d %s, want 404", a.how, c.method, c.path, res.status, res.body)
			}
		}
		// Dialling for another agent is refused as such (no call exists to
		// hide); hold on Asterisk is 501 for any id, so it tells nothing.
		if res := do("POST", "/v1/calls", `{"agent":"100","to":"600"}`); res.status != 403 {
			t.Errorf("%s: 101 dials for 100: %d %s", a.how, res.status, res.body)
		}
		for _, id := range []string{conv, "conv_nope"} {
			for _, op := range []string{"hold", "resume"} {
				if res := do("POST", "/v1/calls/"+id+"/"+op, ""); res.status != 501 {
					t.Errorf("%s: 101's %s of %s: %d %s", a.how, op, id, res.status, res.body)
				}
			}
		}
		if sent := r.amiSent(mark); strings.Contains(sent, "Action:") {
			t.Errorf("%s: 101's requests reached the PBX:\n%s", a.how, sent)
		}
		// Lists: the call and agent 100 are not in them.
		for _, p := range []string{"/v1/calls", "/v1/history", "/v1/history?agent=100", "/v1/agents"} {
			if res := do("GET", p, ""); res.status != 200 || strings.Contains(string(res.body), conv) || strings.Contains(string(res.body), `"extension":"100"`) {
				t.Errorf("%s: 101's GET %s: %d %s", a.how, p, res.status, res.body)
			}
		}
		// Admin is never an agent's.
		if res := do("GET", "/v1/webhooks", ""); res.status != 403 {
			t.Errorf("%s: 101's GET /v1/webhooks: %d", a.how, res.status)
		}
	}

	// Agent 100's own call answers, and the transfer is 100's to cancel.
	if res := r.raw("GET", "/v1/calls/"+conv, k100, ""); res.status != 200 {
		t.Fatalf("100's own call: %d %s", res.status, res.body)
	}
	if res := r.raw("POST", "/v1/calls/"+conv+"/dtmf", k100, `{"digits":"1"}`, jsonHdr...); res.status != 202 {
		t.Fatalf("100's own DTMF: %d %s", res.status, res.body)
	}
	if res := r.raw("DELETE", "/v1/transfers/"+xfer, k100, ""); res.status != 202 {
		t.Fatalf("100's own transfer cancel: %d %s", res.status, res.body)
	}
}
