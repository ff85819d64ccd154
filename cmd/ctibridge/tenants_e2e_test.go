package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// The whole binary's wiring of tenants: the rules from the config (a
// dialplan variable through AMI's VarSet, then the accountcode), a config
// webhook of one tenant, a key made by `apikey create --tenant`.
func TestTenantsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "ctibridge.db")
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	if err := os.WriteFile(cfgPath, []byte("pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nstore:\n  path: "+dbPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	apikey := func(args ...string) (int, string) {
		var out bytes.Buffer
		stderr.Reset()
		code := runAPIKey(context.Background(), append(args, "--config", cfgPath), &out, &stderr)
		return code, strings.TrimSpace(out.String())
	}
	if code, _ := apikey("create", "--name", "x", "--scopes", "read", "--tenant", "Not A Tenant"); code != 2 {
		t.Fatalf("a bad tenant name: exit %d, want 2", code)
	}
	// With no tenants: section no call is ever a tenant's: a tenant key
	// would see nothing, so it is refused, saying why.
	if code, _ := apikey("create", "--name", "x", "--scopes", "read", "--tenant", "acme"); code != 2 || !strings.Contains(stderr.String(), "--tenant: \"acme\": no call or agent can be a tenant's") {
		t.Fatalf("a tenant with no tenants configured: exit %d, %q", code, stderr.String())
	}
	if err := os.WriteFile(cfgPath, []byte("pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nstore:\n  path: "+dbPath+
		"\ntenants:\n  agents: {\"100\": acme}\n  rules:\n    - source: variable\n      variable: CTI_TENANT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An agent the config gives a tenant gets a key of that tenant only.
	for _, args := range [][]string{{"--tenant", "globex"}, {}} {
		if code, _ := apikey(append([]string{"create", "--agent", "100"}, args...)...); code != 2 || !strings.Contains(stderr.String(), "agent 100 is tenant acme's (tenants.agents): use --tenant acme") {
			t.Fatalf("agent 100 with %v: exit %d, %q", args, code, stderr.String())
		}
	}
	code, key := apikey("create", "--name", "acme crm", "--scopes", "read,admin", "--tenant", "acme")
	if code != 0 || !strings.HasPrefix(key, "ctb_") {
		t.Fatalf("apikey create --tenant: %d %q", code, key)
	}
	if code, out := apikey("list"); code != 0 || !strings.Contains(out, "TENANT") || !strings.Contains(out, " acme ") {
		t.Fatalf("apikey list: %d %q", code, out)
	}

	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcvOp, rcvA := webhookstest.NewReceiver(t, secret), webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcvOp.URL, secret)
	cfg.Store.Path = dbPath
	cfg.Webhooks = append(cfg.Webhooks, config.Webhook{ID: "acme", URL: rcvA.URL, Secret: secret, Events: []string{"call.*"}, Tenant: "acme"})
	cfg.Tenants.Rules = []config.TenantRule{{Source: "variable", Variable: "CTI_TENANT"}, {Source: "accountcode"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startBridge(t, cfg, rcvOp)
	h.waitLink(true)

	// globex's call (accountcode) first, then acme's (the dialplan sets
	// CTI_TENANT on the first channel): once acme's endpoint has acme's
	// three events, globex's were committed before them.
	globex := sim.Rewrite(amitest.EventsOf(amitest.Frames("hangup-action")))
	for i, f := range globex {
		globex[i] = amitest.Frame{Raw: bytes.ReplaceAll(f.Raw, []byte("AccountCode: \r\n"), []byte("AccountCode: globex\r\n"))}
	}
	acme := amitest.EventsOf(amitest.Frames("inbound-call-basic"))
	set := strings.Replace(string(acme[0].Raw), "Event: Newchannel", "Event: VarSet", 1)
	set = strings.TrimSuffix(set, "\r\n\r\n") + "\r\nVariable: CTI_TENANT\r\nValue: acme\r\n\r\n"
	acme = sim.Rewrite(append([]amitest.Frame{acme[0], {Raw: []byte(set)}}, acme[1:]...))
	for _, frames := range [][]amitest.Frame{globex, acme} {
		if err := sim.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ops := rcvOp.WaitFor(6, 10*time.Second)
	got := rcvA.WaitFor(3, 10*time.Second)
	if len(ops) != 6 || typesOf(got) != "call.ringing,call.answered,call.ended" {
		t.Fatalf("operator got %s; acme got %s", typesOf(ops), typesOf(got))
	}
	tenants := map[string]int{}
	for _, d := range ops {
		tenants[field(d, "tenant").(string)+"/"+field(d, "call.tenant").(string)]++
	}
	if tenants["acme/acme"] != 3 || tenants["globex/globex"] != 3 {
		t.Fatalf("the operator's endpoint got tenants %v", tenants)
	}
	for _, d := range rcvA.Deliveries() {
		if field(d, "tenant") != "acme" {
			t.Fatalf("acme's endpoint got %s of tenant %v", d.Type, field(d, "tenant"))
		}
	}

	get := func(path string) string {
		req, _ := nethttp.NewRequest("GET", "http://"+h.run.HTTPAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return string(b)
	}
	var hist struct {
		Calls []bridge.Call `json:"calls"`
	}
	if err := json.Unmarshal([]byte(get("/v1/history")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Calls) != 1 || hist.Calls[0].Tenant != "acme" || hist.Calls[0].ID != field(got[0], "call.id") {
		t.Fatalf("acme's history: %+v", hist.Calls)
	}
	if body := get("/v1/webhooks"); !strings.Contains(body, `"acme"`) || strings.Contains(body, `"crm"`) {
		t.Fatalf("acme's webhooks: %s", body)
	}
}
