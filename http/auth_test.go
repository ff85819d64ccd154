package http_test

import (
	"strings"
	"testing"

	apihttp "github.com/ctibridge/ctibridge/http"
)

func TestAuthScopes(t *testing.T) {
	r := newRig(t, rigOptions{})
	// Health, readiness, metrics and the API description need no key.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		if res := r.call("GET", p, "", nil); res.status != 200 {
			t.Errorf("GET %s without a key: %d %s", p, res.status, res.body)
		}
	}
	res := r.call("GET", "/v1/calls", "", nil)
	res.problem(t, 401, "")
	if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
	}
	r.call("GET", "/v1/calls", "", nil, "Authorization", "Bearer ctb_not-a-key").problem(t, 401, "")
	r.call("GET", "/v1/calls", "", nil, "Authorization", "Basic "+r.keys["admin"]).problem(t, 401, "")
	r.call("POST", "/v1/calls", "read", map[string]any{"agent": "101", "to": "600"}).problem(t, 403, "")
	r.call("GET", "/v1/webhooks", "control", nil).problem(t, 403, "")
	r.call("POST", "/v1/events/replay", "control", map[string]any{"from": "2026-01-01T00:00:00Z"}).problem(t, 403, "")
	// Scopes nest: admin reads and controls.
	for _, scope := range []string{"read", "control", "admin"} {
		if res := r.call("GET", "/v1/calls", scope, nil); res.status != 200 {
			t.Errorf("GET /v1/calls with %s: %d", scope, res.status)
		}
	}
	if res := r.call("GET", "/v1/webhooks", "admin", nil); res.status != 200 {
		t.Errorf("GET /v1/webhooks with admin: %d", res.status)
	}
	if n := len(originates(r)); n != 0 {
		t.Fatalf("a refused request dialled: %d", n)
	}
}

// With no API key in the store and a loopback listener, reads stay open (as
// before keys existed) and commands say how to create a key.
func TestAuthWithoutKeys(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true})
	if res := r.call("GET", "/v1/calls", "", nil); res.status != 200 {
		t.Fatalf("anonymous read: %d %s", res.status, res.body)
	}
	p := r.call("POST", "/v1/calls", "", map[string]any{"agent": "101", "to": "600"}).problem(t, 401, "")
	if !strings.Contains(p["detail"].(string), "ctibridge apikey create") {
		t.Fatalf("no hint: %s", p["detail"])
	}
	r.call("GET", "/v1/webhooks", "", nil).problem(t, 401, "")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("dialled: %d", n)
	}

	open := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.AnonymousLoopback = true }})
	if res := open.call("POST", "/v1/calls", "", map[string]any{"agent": "101", "to": "600"}); res.status != 202 {
		t.Fatalf("anonymous loopback command: %d %s", res.status, res.body)
	}
}

// A listener that is not loopback-only never serves anonymous requests,
// even reads, even with no key in the store.
func TestAuthWithoutKeysOnAllInterfaces(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true, listen: "0.0.0.0:0", setup: func(s *apihttp.Server) { s.AnonymousLoopback = true }})
	r.call("GET", "/v1/calls", "", nil).problem(t, 401, "")
	r.call("POST", "/v1/calls", "", map[string]any{"agent": "101", "to": "600"}).problem(t, 401, "")
}
