package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// A deleted endpoint's deliveries and attempts stay under its id: a tenant
// endpoint taking the id would inherit them (dead letters with whole
// events, the attempt log, a range replay to its own URL).
func TestTenantEndpointCannotTakeDeletedID(t *testing.T) {
	r := tenantRig(t)
	rcvG := webhookstest.NewReceiver(t, r.secret)
	if res := r.call("POST", "/v1/webhooks", "globex-admin", map[string]any{"id": "ep-old", "url": rcvG.URL, "secret": r.secret}); res.status != 201 {
		t.Fatalf("globex creates its endpoint: %d %s", res.status, res.body)
	}
	if res := r.call("POST", "/v1/webhooks/ep-old/test", "globex-admin", nil); res.status != 202 {
		t.Fatalf("test: %d %s", res.status, res.body)
	}
	if n := len(rcvG.WaitFor(1, 10*time.Second)); n < 1 {
		t.Fatal("globex's endpoint got no webhook.test")
	}
	r.waitFor("the attempt log", func() bool {
		res := r.call("GET", "/v1/webhooks/ep-old/deliveries", "globex-admin", nil)
		return res.status == 200 && len(res.json(t)["attempts"].([]any)) > 0
	})
	if res := r.call("DELETE", "/v1/webhooks/ep-old", "globex-admin", nil); res.status != 204 {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	rcvA := webhookstest.NewReceiver(t, r.secret)
	r.call("POST", "/v1/webhooks", "acme-admin", map[string]any{"id": "ep-old", "url": rcvA.URL, "secret": r.secret}).problem(t, 409, "id")
	r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "ep-old", "url": rcvA.URL, "secret": r.secret, "tenant": "acme"}).problem(t, 409, "id")
	r.call("GET", "/v1/webhooks/ep-old/deliveries", "acme-admin", nil).problem(t, 404, "id")
	// A fresh id is fine.
	if res := r.call("POST", "/v1/webhooks", "acme-admin", map[string]any{"id": "ep-new", "url": rcvA.URL, "secret": r.secret}); res.status != 201 {
		t.Fatalf("acme creates a fresh endpoint: %d %s", res.status, res.body)
	}
}

// One transfer context serves every tenant: a tenant key transferring its
// own call to another tenant's agent would ring that agent, and the
// agent's phone would be learned as the key's tenant's.
func TestTenantCannotRingAnotherTenantsAgent(t *testing.T) {
	r := tenantRig(t)
	acme, _, _, _ := r.tenantCalls()
	mark := len(r.ast.Received())
	r.call("POST", "/v1/calls/"+acme+"/transfer", "acme-control", map[string]any{"to": "101"}).problem(t, 404, "to")
	r.call("POST", "/v1/calls/"+acme+"/transfer", "acme-control", map[string]any{"to": "101", "mode": "attended"}).problem(t, 404, "to")
	r.call("POST", "/v1/calls", "acme-control", map[string]any{"agent": "100", "to": "101"}).problem(t, 404, "to")
	if sent := r.amiSent(mark); strings.Contains(sent, "Action:") {
		t.Fatalf("acme's transfer or click-to-call to globex's agent reached the PBX:\n%s", sent)
	}
}

// An attended transfer outlives its call in memory: once the call has
// ended and left the call model, another agent's key holding the transfer
// id must still find no such transfer (not learn the call's id from a
// 409, nor drop the transfer).
func TestAgentCannotFinishAnotherAgentsTransferAfterTheCallEnded(t *testing.T) {
	r := newRig(t, rigOptions{})
	k100, k101 := r.agentKey("100"), r.agentKey("101")
	conv, rest := r.liveCall("inbound-call-basic") // agent 100 talks to the caller
	res := r.raw("POST", "/v1/calls/"+conv+"/transfer", k100, `{"to":"600","mode":"attended"}`, "Content-Type", "application/json")
	if res.status != 202 {
		t.Fatalf("100's own transfer: %d %s", res.status, res.body)
	}
	xfer, _ := res.json(t)["transfer_id"].(string)
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(conv, bridge.EventCallEnded)
	for _, m := range []struct{ method, path string }{{"POST", "/v1/transfers/" + xfer + "/complete"}, {"DELETE", "/v1/transfers/" + xfer}} {
		res := r.raw(m.method, m.path, k101, "")
		if p := res.problem(t, 404, "id"); strings.Contains(string(res.body), conv) {
			t.Fatalf("101's %s %s names 100's call: %v", m.method, m.path, p)
		}
	}
	// Still 100's: its call has ended.
	r.raw("DELETE", "/v1/transfers/"+xfer, k100, "").problem(t, 409, "")
}
