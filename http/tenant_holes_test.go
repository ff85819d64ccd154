package http_test

import (
	"strings"
	"testing"
	"time"

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
