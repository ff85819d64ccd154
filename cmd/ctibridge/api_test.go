package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"github.com/ctibridge/ctibridge/bridge"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// apiRequest calls the running bridge's API with a key ("" for none).
func apiRequest(t *testing.T, h *harness, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+h.run.HTTPAddr+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func apiKey(t *testing.T, h *harness, scopes ...string) string {
	t.Helper()
	key, _, err := h.run.DB.CreateAPIKey(context.Background(), "test", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// The apikey command writes keys serve accepts, lists and revokes them.
func TestAPIKeyCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "ctibridge.db")
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	yaml := "pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nstore:\n  path: " + dbPath + "\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runAPIKey(ctx, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := run("create", "--name", "crm", "--scopes", "read,control", "--config", cfgPath)
	key := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(key, "ctb_") || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	code, out, _ = run("list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "crm") || !strings.Contains(out, "read,control") || strings.Contains(out, key) {
		t.Fatalf("list: %d %q", code, out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	for _, args := range [][]string{
		{"create", "--name", "x", "--config", cfgPath},                     // no scopes
		{"create", "--name", "x", "--scopes", "root", "--config", cfgPath}, // unknown scope
		{"revoke", "--config", cfgPath},                                    // no id
		{"rotate", "--config", cfgPath},                                    // no such command
		{"list", "--config", filepath.Join(dir, "missing.yaml")},           // no config
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}

	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Store.Path = dbPath
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	if code, _ := apiRequest(t, h, "GET", "/v1/calls", key, nil); code != 200 {
		t.Fatalf("with the key: %d", code)
	}
	if code, _ := apiRequest(t, h, "GET", "/v1/calls", "", nil); code != 401 {
		t.Fatalf("without a key, once keys exist: %d", code)
	}
	if code, p := apiRequest(t, h, "GET", "/v1/webhooks", key, nil); code != 403 || !strings.Contains(p["detail"].(string), "admin") {
		t.Fatalf("admin route with read,control: %d %v", code, p)
	}
	// Revoked beside the running bridge: refused from the next request.
	if code, out, _ := run("revoke", id, "--config", cfgPath); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if code, _ := apiRequest(t, h, "GET", "/v1/calls", key, nil); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}
	if code, _, _ := run("revoke", id, "--config", cfgPath); code != 1 {
		t.Fatalf("revoking twice: %d", code)
	}
}

// Click-to-call through serve: the returned id is the conversation of the
// signed webhooks and of the event stream.
func TestClickToCallEndToEnd(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	key := apiKey(t, h, "control")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+h.run.HTTPAddr+"/v1/events/stream?types=call.ringing", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	ids := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev struct {
					ConversationID string `json:"conversation_id"`
				}
				_ = json.Unmarshal([]byte(data), &ev)
				ids <- ev.ConversationID
			}
		}
	}()

	code, body := apiRequest(t, h, "POST", "/v1/calls", key, map[string]any{"agent": "101", "to": "600"})
	if code != 202 {
		t.Fatalf("POST /v1/calls: %d %v", code, body)
	}
	conv := body["id"].(string)
	var orig *struct{ id, ch, other string }
	for _, a := range sim.Actions() {
		if a.Field("Action") == "Originate" {
			orig = &struct{ id, ch, other string }{a.Field("ActionID"), a.Field("ChannelId"), a.Field("OtherChannelId")}
			if a.Field("Channel") != "Local/101@from-internal" || a.Field("Context") != "from-internal" || a.Field("Exten") != "600" {
				t.Fatalf("originate %v", a.Headers())
			}
		}
	}
	if orig == nil || orig.other == "" {
		t.Fatal("no Originate with pre-assigned ids on the wire")
	}
	var frames []amitest.Frame
	for _, f := range amitest.EventsOf(amitest.Frames("originate-exten")) {
		raw := strings.NewReplacer(": 1795339035.4\r\n", ": "+orig.ch+"\r\n", ": 1795339035.5\r\n", ": "+orig.other+"\r\n",
			": orig-exten-1\r\n", ": "+orig.id+"\r\n").Replace(string(f.Raw))
		frames = append(frames, amitest.Frame{Raw: []byte(raw)})
	}
	if err := sim.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	// The agent's phone rings and answers; the extension it then dials
	// plays and hangs up without a person answering.
	ds := rcv.WaitFor(3, 10*time.Second)
	if typesOf(ds) != "call.ringing,call.answered,call.ended" || ds[0].ConversationID != conv || ds[0].Err != nil ||
		field(ds[0], "call.direction") != "outbound" || field(ds[0], "agent.extension") != "101" {
		t.Fatalf("webhooks %s: %s", typesOf(ds), ds[0].Raw)
	}
	select {
	case id := <-ids:
		if id != conv {
			t.Fatalf("stream conversation %s, want %s", id, conv)
		}
	case <-time.After(time.Minute): // a bound on a failure only
		t.Fatal("the event stream saw nothing")
	}
}

// Endpoints made over the API get the calls; one of them answering 410 is
// disabled without taking the others out of the engine's subscriber list.
func TestWebhookAPIEndToEnd(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	admin := apiKey(t, h, "admin")

	goneSecret, okSecret := bridge.NewWebhookSecret(), bridge.NewWebhookSecret()
	gone, ok := webhookstest.NewReceiver(t, goneSecret), webhookstest.NewReceiver(t, okSecret)
	gone.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Status: 410} })
	for id, r := range map[string][]string{"gone": {gone.URL, goneSecret}, "ok": {ok.URL, okSecret}} {
		code, body := apiRequest(t, h, "POST", "/v1/webhooks", admin, map[string]any{"id": id, "url": r[0], "secret": r[1], "events": []string{"call.*"}})
		if code != 201 {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
	}
	code, body := apiRequest(t, h, "POST", "/v1/webhooks/gone/test", admin, nil)
	if code != 202 {
		t.Fatalf("test: %d %v", code, body)
	}
	if ds := gone.WaitForRequests(1, 5*time.Second); len(ds) != 1 || ds[0].Type != "webhook.test" || ds[0].Err != nil {
		t.Fatalf("ping: %+v", ds)
	}
	err := waitFor(t.Context(), 5*time.Second, func() bool {
		_, body := apiRequest(t, h, "GET", "/v1/webhooks/gone", admin, nil)
		return body["disabled"] == true
	})
	if err != nil {
		t.Fatal("410 did not disable the endpoint")
	}
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	if ds := ok.WaitFor(3, 5*time.Second); typesOf(ds) != "call.ringing,call.answered,call.ended" || ds[0].Err != nil {
		t.Fatalf("the healthy API endpoint: %s", typesOf(ds))
	}
	if ds := rcv.WaitFor(3, 5*time.Second); typesOf(ds) != "call.ringing,call.answered,call.ended" {
		t.Fatalf("the config endpoint: %s", typesOf(ds))
	}
	if n := len(gone.Requests()); n != 1 {
		t.Fatalf("the gone endpoint got %d requests", n)
	}
}

// Click-to-call on FreeSWITCH through serve: the switch cannot route it
// (the simulator answers as the originate-failure capture) and the CRM
// gets call.failed for the id it was given.
func TestClickToCallFreeSWITCHEndToEnd(t *testing.T) {
	sim := newFreeSWITCH(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, freeswitchConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	code, body := apiRequest(t, h, "POST", "/v1/calls", apiKey(t, h, "control"), map[string]any{"agent": "1000", "to": "+74954451120"})
	if code != 202 {
		t.Fatalf("%d %v", code, body)
	}
	sent := string(sim.Received()[0])
	if !strings.Contains(sent, "}user/1000 +74954451120 XML default\nJob-UUID: ") {
		t.Fatalf("sent %q", sent)
	}
	ds := rcv.WaitFor(2, 10*time.Second)
	if typesOf(ds) != "call.failed,call.ended" || ds[0].ConversationID != body["id"] || field(ds[1], "call.disposition") != "failed" {
		t.Fatalf("webhooks %s", typesOf(ds))
	}
}

// ctibridge apikey as a real process against a config's database: the key
// printed once on stdout, stored only as its SHA-256, listed, revoked.
func TestAPIKeyCLIProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "keys.db")
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	yaml := "pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nstore:\n  path: " + dbPath + "\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"apikey"}, args...)...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	code, out, errOut := cli(nil, "create", "--name", "crm", "--scopes", "read,control", "--config", cfgPath)
	key := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(key, "ctb_") || strings.Count(out, "\n") != 1 || strings.Contains(errOut, key) {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	// ctibridge.yaml in the working directory is the default config.
	code, out, _ = cli(nil, "create", "--name", "ops", "--scopes", "admin")
	if code != 0 || !strings.HasPrefix(out, "ctb_") {
		t.Fatalf("create with the default config: %d %q", code, out)
	}
	code, out, _ = cli(nil, "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "crm") || !strings.Contains(out, "read,control") || !strings.Contains(out, "ops") || strings.Contains(out, "ctb_") {
		t.Fatalf("list: %d %q", code, out)
	}
	// Stored hashed: the plaintext is nowhere in the database files, its
	// SHA-256 is.
	sum := sha256.Sum256([]byte(key))
	var files []byte
	for _, p := range []string{dbPath, dbPath + "-wal"} {
		b, _ := os.ReadFile(p)
		files = append(files, b...)
	}
	if bytes.Contains(files, []byte(key)) || bytes.Contains(files, []byte(strings.TrimPrefix(key, "ctb_"))) || !bytes.Contains(files, sum[:]) {
		t.Fatal("the key is not stored as its SHA-256 alone")
	}
	// The store can come from the environment or --set, as for serve.
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	code, out, _ = cli([]string{"CTIBRIDGE_STORE__PATH=" + filepath.Join(dir, "other.db")}, "list", "--config", cfgPath)
	if code != 0 || strings.Contains(out, "crm") {
		t.Fatalf("list of another store: %d %q", code, out)
	}
	if code, out, _ = cli(nil, "revoke", id, "--set", "store.path="+dbPath, "--config", cfgPath); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if code, out, _ = cli(nil, "list", "--config", cfgPath); code != 0 || strings.Contains(out, "crm") || !strings.Contains(out, "ops") {
		t.Fatalf("list after revoke: %d %q", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"revoke", id, "--config", cfgPath}, 1},                                // already revoked
		{[]string{"create", "--name", "x", "--scopes", "root", "--config", cfgPath}, 2}, // unknown scope
		{[]string{}, 2}, // usage
	} {
		if code, _, errOut := cli(nil, c.args...); code != c.code || errOut == "" {
			t.Errorf("%v: exit %d (%q), want %d", c.args, code, errOut, c.code)
		}
	}
}
