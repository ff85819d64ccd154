package http_test

import (
	"github.com/ctibridge/ctibridge/bridge"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/webhooks"
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

// An endpoint the delivery policy would refuse at every attempt is refused
// when it is created or changed (400 naming url), as is the published
// example secret; a host name is left to the dispatcher's check after DNS.
func TestWebhookCreationRefusesUnsafe(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, c := range []struct {
		body   map[string]any
		field  string
		detail string
	}{
		{map[string]any{"url": "http://169.254.169.254/x"}, "url", "169.254.169.254 is a cloud metadata address: always refused"},
		{map[string]any{"url": "http://[fd00:ec2::254]/latest/"}, "url", "cloud metadata"},
		{map[string]any{"url": "http://[64:ff9b::a9fe:a9fe]/"}, "url", "embeds 169.254.169.254 (NAT64)"},
		{map[string]any{"url": "http://169.254.10.1/hook"}, "url", "refused by delivery.allow_link_local"},
		{map[string]any{"url": "http://metadata.google.internal/computeMetadata/v1/"}, "url", "cloud metadata service"},
		{map[string]any{"url": "http://0xa9fea9fe/"}, "url", "dotted-quad"},
		{map[string]any{"url": "https://crm.example.com/", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "secret", "published example secret"},
		{map[string]any{"url": "https://crm.example.com/", "previous_secret": "hunter2"}, "previous_secret", "whsec_"},
	} {
		p := r.call("POST", "/v1/webhooks", "admin", c.body).problem(t, 400, c.field)
		if !strings.Contains(p["detail"].(string), c.detail) {
			t.Errorf("%v: detail %q, want %q", c.body, p["detail"], c.detail)
		}
	}
	list := r.call("GET", "/v1/webhooks", "admin", nil)
	if strings.Count(string(list.body), `"id"`) != 1 {
		t.Fatalf("a refused endpoint was stored: %s", list.body)
	}
	// A private address is allowed by the running dispatcher's policy (the default).
	res := r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "lan", "url": "http://10.20.30.40:8080/hook"})
	if res.status != 201 {
		t.Fatalf("private CRM: %d %s", res.status, res.body)
	}
	r.call("PATCH", "/v1/webhooks/lan", "admin", map[string]any{"url": "http://169.254.169.254/"}).problem(t, 400, "url")
	r.call("DELETE", "/v1/webhooks/lan", "admin", nil)
}

// Rotating an API endpoint's secret: PATCH a new secret and the old one
// becomes the previous secret, so the same delivery verifies for a receiver
// holding only the old secret and for one holding only the new (Standard
// Webhooks: any one v1 signature); PATCH previous_secret "" ends it.
func TestWebhookSecretRotation(t *testing.T) {
	r := newRig(t, rigOptions{})
	oldSecret := bridge.NewWebhookSecret()
	rxOld := webhookstest.NewReceiver(t, oldSecret)
	if res := r.call("POST", "/v1/webhooks", "admin", map[string]any{"id": "rot", "url": rxOld.URL, "secret": oldSecret, "events": []string{"call.*"}}); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}

	res := r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"secret": ""})
	m := res.json(t)
	newSecret, _ := m["secret"].(string)
	if res.status != 200 || !strings.HasPrefix(newSecret, "whsec_") || newSecret == oldSecret || m["rotating"] != true || strings.Contains(string(res.body), oldSecret) {
		t.Fatalf("rotate: %d %s", res.status, res.body)
	}
	if got := r.call("GET", "/v1/webhooks/rot", "admin", nil).json(t); got["rotating"] != true || got["secret"] != nil {
		t.Fatalf("get during rotation: %v", got)
	}
	if res := r.call("POST", "/v1/webhooks/rot/test", "admin", nil); res.status != 202 {
		t.Fatalf("test: %d %s", res.status, res.body)
	}
	d := rxOld.WaitFor(1, 5*time.Second)[0]
	if d.Err != nil || len(strings.Fields(d.Header.Get("webhook-signature"))) != 2 {
		t.Fatalf("a receiver holding only the old secret: %v, signatures %q", d.Err, d.Header.Get("webhook-signature"))
	}
	if err := webhooks.Verify(newSecret, d.Header, d.Raw, 0, time.Now()); err != nil {
		t.Fatalf("a receiver holding only the new secret, same delivery: %v", err)
	}

	// The receivers have moved: the rotation ends (and the URL changes).
	rxNew := webhookstest.NewReceiver(t, newSecret)
	res = r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"previous_secret": "", "url": rxNew.URL})
	if m := res.json(t); res.status != 200 || m["rotating"] != nil || m["secret"] != nil || m["url"] != rxNew.URL {
		t.Fatalf("end rotation: %d %s", res.status, res.body)
	}
	r.call("POST", "/v1/webhooks/rot/test", "admin", nil)
	d = rxNew.WaitFor(1, 5*time.Second)[0]
	if d.Err != nil || len(strings.Fields(d.Header.Get("webhook-signature"))) != 1 {
		t.Fatalf("after the rotation: %v, signatures %q", d.Err, d.Header.Get("webhook-signature"))
	}
	if err := webhooks.Verify(oldSecret, d.Header, d.Raw, 0, time.Now()); err == nil {
		t.Fatal("the retired secret still verifies")
	}

	r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"previous_secret": newSecret}).problem(t, 400, "previous_secret")
	r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}).problem(t, 400, "secret")
	r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"events": []string{"calls.*"}}).problem(t, 400, "events")
	r.call("PATCH", "/v1/webhooks/rot", "admin", map[string]any{"id": "other"}).problem(t, 400, "id")
	r.call("PATCH", "/v1/webhooks/nope", "admin", map[string]any{"secret": ""}).problem(t, 404, "id")
	r.call("PATCH", "/v1/webhooks/crm", "admin", map[string]any{"secret": ""}).problem(t, 409, "")
	r.call("PATCH", "/v1/webhooks/rot", "control", map[string]any{"secret": ""}).problem(t, 403, "")
}
