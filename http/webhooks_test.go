package http_test

import (
	"github.com/ctibridge/ctibridge/bridge"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

func TestWebhooksCRUDTestAndReplay(t *testing.T) {
	r := newRig(t, rigOptions{})
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)

	res := r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "crm2", "url": rcv.URL, "secret": secret, "events": []string{"call.*"}})
	if res.status != 201 || res.header.Get("Location") != "/v1/webhooks/crm2" {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if m := res.json(t); m["secret"] != nil || m["source"] != "api" {
		t.Fatalf("a given secret is never echoed: %s", res.body)
	}
	// Without a secret, one is made and shown this once.
	res = r.call("POST", "/v1/webhooks", "admin", map[string]any{"url": "https://crm.example.com/hook"})
	gen := res.json(t)
	if res.status != 201 || !strings.HasPrefix(gen["secret"].(string), "whsec_") || !strings.HasPrefix(gen["id"].(string), "ep_") {
		t.Fatalf("generated: %d %s", res.status, res.body)
	}
	defer func() { // nothing listens there: its deliveries would stay pending
		if res := r.call("DELETE", "/v1/webhooks/"+gen["id"].(string), "admin", nil); res.status != 204 {
			t.Errorf("delete: %d", res.status)
		}
	}()
	list := r.call("GET", "/v1/webhooks", "admin", nil)
	if list.status != 200 || strings.Contains(string(list.body), "whsec_") || !strings.Contains(string(list.body), `"crm2"`) ||
		!strings.Contains(string(list.body), `"source":"config"`) {
		t.Fatalf("list: %s", list.body)
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"url": "ftp://x/y"}, 400, "url"},
		{map[string]any{"url": "https://user:pw@crm.example.com/"}, 400, "url"},
		{map[string]any{"url": "https://crm.example.com/\r\nX: y"}, 400, "url"},
		{map[string]any{"url": "https://crm.example.com/", "events": []string{"calls.*"}}, 400, "events"},
		{map[string]any{"url": "https://crm.example.com/", "secret": "hunter2"}, 400, "secret"},
		{map[string]any{"url": "https://crm.example.com/", "id": "a b"}, 400, "id"},
		{map[string]any{"url": "https://crm.example.com/", "id": "crm2"}, 409, "id"},
		{map[string]any{"url": "https://crm.example.com/", "id": "crm"}, 409, "id"},
		{map[string]any{"url": "https://crm.example.com/", "filter": "x"}, 400, "filter"},
	} {
		r.call("POST", "/v1/webhooks", "admin", c.body).problem(t, c.status, c.field)
	}

	// A signed ping reaches the new endpoint only, through the outbox.
	res = r.call("POST", "/v1/webhooks/crm2/test", "admin", nil)
	if res.status != 202 {
		t.Fatalf("test: %d %s", res.status, res.body)
	}
	ping := res.json(t)["event_id"].(string)
	ds := rcv.WaitFor(1, 5*time.Second)
	if len(ds) != 1 || ds[0].Type != "webhook.test" || ds[0].ID != ping || ds[0].Err != nil || !ds[0].OK() {
		t.Fatalf("ping: %+v", ds)
	}
	for _, d := range r.rcv.Deliveries() {
		if d.ID == ping || d.Type == "webhook.test" {
			t.Fatal("the ping went to another endpoint")
		}
	}
	r.waitFor("attempt logged", func() bool {
		return strings.Contains(string(r.call("GET", "/v1/webhooks/crm2/deliveries", "admin", nil).body), ping)
	})
	att := r.call("GET", "/v1/webhooks/crm2/deliveries", "admin", nil).json(t)["attempts"].([]any)[0].(map[string]any)
	if att["event_id"] != ping || att["status_code"] != 200.0 || att["outcome"] != "delivered" {
		t.Fatalf("attempt %v", att)
	}
	if dead := r.call("GET", "/v1/webhooks/crm2/dead", "admin", nil); dead.status != 200 || string(dead.body) != `{"dead":[]}` {
		t.Fatalf("dead: %d %s", dead.status, dead.body)
	}

	// Replay sends it again with the same webhook-id.
	res = r.call("POST", "/v1/events/"+ping+"/replay", "admin", map[string]any{"endpoints": []string{"crm2"}})
	if res.status != 202 {
		t.Fatalf("replay: %d %s", res.status, res.body)
	}
	ds = rcv.WaitFor(2, 5*time.Second)
	if len(ds) != 2 || ds[1].ID != ping || ds[1].Header.Get("webhook-id") != ping || ds[1].Err != nil {
		t.Fatalf("replayed: %+v", ds)
	}
	r.call("POST", "/v1/events/evt_nope/replay", "admin", nil).problem(t, 404, "id")
	r.call("POST", "/v1/events/"+ping+"/replay", "admin", map[string]any{"endpoints": []string{"nope"}}).problem(t, 404, "endpoints")

	// The new endpoint gets the calls that follow (the engine knows it).
	start := time.Now().Add(-time.Second).UTC()
	if err := r.ast.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	ds = rcv.WaitFor(5, 5*time.Second)
	if typesOf(ds[2:]) != "call.ringing,call.answered,call.ended" {
		t.Fatalf("call webhooks: %s", typesOf(ds))
	}
	// A range replay to the config endpoint: everything it had, again,
	// with the same ids.
	var crm []webhookstest.Delivery
	r.waitFor("call delivered to crm", func() bool {
		// crm wants every event the engine commits.
		crm = r.rcv.Deliveries()
		as := r.call("GET", "/v1/webhooks/crm/deliveries?limit=500", "admin", nil).json(t)["attempts"].([]any)
		return strings.Contains(typesOf(crm), "call.ended") && len(crm) == len(r.records()) && len(as) == len(crm)
	})
	res = r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": start.Format(time.RFC3339Nano), "endpoint": "crm"})
	if res.status != 202 || res.json(t)["replayed"] != float64(len(crm)) {
		t.Fatalf("range replay of %d: %d %s", len(crm), res.status, res.body)
	}
	again := r.rcv.WaitFor(2*len(crm), 5*time.Second)
	first, second := map[string]bool{}, map[string]bool{}
	for i, d := range again {
		if i < len(crm) {
			first[d.ID] = true
		} else {
			second[d.ID] = true
		}
	}
	if len(again) != 2*len(crm) || len(second) != len(first) {
		t.Fatalf("range replayed: %s", typesOf(again))
	}
	for id := range first {
		if !second[id] {
			t.Fatalf("%s not replayed", id)
		}
	}
	r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": "yesterday"}).problem(t, 400, "from")

	// Delete: the API's endpoint goes, the config's stays.
	if res := r.call("DELETE", "/v1/webhooks/crm2", "admin", nil); res.status != 204 {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	r.call("DELETE", "/v1/webhooks/crm2", "admin", nil).problem(t, 404, "id")
	r.call("DELETE", "/v1/webhooks/crm", "admin", nil).problem(t, 409, "")
	r.call("GET", "/v1/webhooks/crm2", "admin", nil).problem(t, 404, "id")
	r.call("POST", "/v1/webhooks/crm2/test", "admin", nil).problem(t, 404, "id")
}

func typesOf(ds []webhookstest.Delivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Type)
	}
	return strings.Join(s, ",")
}
