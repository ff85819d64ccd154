package http_test

import (
	"context"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/store"
)

// raw makes a request exactly as given: no Content-Type unless hdr has
// one, "Host" in hdr sets the request's Host, key is an API key ("" for
// none). A generous deadline only guards against a hang.
func (r *rig) raw(method, path, key, body string, hdr ...string) resp {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (r *rig) port() string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.base, "http://"))
	return port
}

func (r *rig) newKey(scope string) (plain, id string) {
	r.t.Helper()
	plain, k, err := r.db.CreateAPIKey(context.Background(), scope+"-extra", []string{scope})
	if err != nil {
		r.t.Fatal(err)
	}
	return plain, k.ID
}

func detail(p map[string]any) string { s, _ := p["detail"].(string); return s }

const dial = `{"agent":"101","to":"600"}`

// Requests without a key never reach admin routes, whatever the anonymous
// policy: before, anonymous_loopback let them create a webhook to any URL
// and replay the history to it.
func TestAnonymousIsNeverAdmin(t *testing.T) {
	for name, setup := range map[string]func(*apihttp.Server){
		"anonymous_loopback": func(s *apihttp.Server) { s.AnonymousLoopback = true },
		"anonymous control":  func(s *apihttp.Server) { s.Anonymous = apihttp.AnonymousControl },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, rigOptions{noKeys: true, setup: setup})
			r.call("POST", "/v1/webhooks", "", map[string]any{"id": "evil", "url": "http://127.0.0.1:9/steal"}).problem(t, 401, "")
			r.call("GET", "/v1/webhooks", "", nil).problem(t, 401, "")
			r.call("DELETE", "/v1/webhooks/crm", "", nil).problem(t, 401, "")
			r.call("POST", "/v1/events/replay", "", map[string]any{"from": "2026-01-01T00:00:00Z"}).problem(t, 401, "")
			r.call("POST", "/v1/events/evt_x/replay", "", map[string]any{}).problem(t, 401, "")
			// Control is what was asked for, and stays.
			if res := r.call("POST", "/v1/calls", "", map[string]any{"agent": "101", "to": "600"}); res.status != 202 {
				t.Fatalf("anonymous control: %d %s", res.status, res.body)
			}
			admin, _ := r.newKey("admin")
			if res := r.raw("GET", "/v1/webhooks", admin, ""); res.status != 200 || strings.Contains(string(res.body), "evil") {
				t.Fatalf("webhooks: %d %s", res.status, res.body)
			}
		})
	}
}

// A page in a browser can POST text/plain, a form or multipart to any
// address without a preflight (fetch no-cors), never application/json.
// Such a body is refused (415) before anything runs, key or not.
func TestJSONBodiesNeedTheirContentType(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.Anonymous = apihttp.AnonymousControl }})
	for _, ct := range []string{"", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json; charset=utf-16", "application/merge-patch+json", "json"} {
		var hdr []string
		if ct != "" {
			hdr = []string{"Content-Type", ct}
		}
		p := r.raw("POST", "/v1/calls", "", dial, hdr...).problem(t, 415, "Content-Type")
		want := "no Content-Type"
		if ct != "" {
			want = ct
		}
		if p["code"] != "unsupported_media_type" || !strings.Contains(detail(p), want) || !strings.Contains(detail(p), "application/json") {
			t.Errorf("Content-Type %q: %v", ct, p)
		}
	}
	admin, _ := r.newKey("admin")
	r.raw("POST", "/v1/webhooks", admin, `{"id":"evil","url":"http://127.0.0.1:9/steal"}`).problem(t, 415, "Content-Type")
	r.raw("POST", "/v1/webhooks", admin, `{"id":"evil","url":"http://127.0.0.1:9/steal"}`, "Content-Type", "text/plain").problem(t, 415, "Content-Type")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("a refused body dialled %d times", n)
	}
	if res := r.raw("GET", "/v1/webhooks", admin, ""); strings.Contains(string(res.body), "evil") {
		t.Fatalf("a refused body made a webhook: %s", res.body)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		if res := r.raw("POST", "/v1/calls", "", dial, "Content-Type", ct); res.status != 202 {
			t.Errorf("Content-Type %q: %d %s", ct, res.status, res.body)
		}
	}
	// No body, no Content-Type needed: a hangup has nothing to declare.
	r.raw("POST", "/v1/calls/conv_nope/hangup", "", "").problem(t, 404, "id")
}

// Browsers send Origin on every POST, same-origin included: a write from
// a page whose origin is not listed is refused, key or not; requests
// without Origin (a CRM's server, curl) are served. Without a key, a
// cross-site page is refused even for reads.
func TestCrossSiteBrowserRequests(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) {
		s.Anonymous = apihttp.AnonymousControl
		s.AllowedOrigins = []string{"https://crm.example.com"}
	}})
	control, _ := r.newKey("control")
	json := []string{"Content-Type", "application/json"}
	for _, origin := range []string{"https://evil.example", "null", "http://127.0.0.1:" + r.port(), "https://crm.example.com.evil.example",
		"https://CRM.example.com", "http://crm.example.com"} {
		for _, key := range []string{"", control} {
			p := r.raw("POST", "/v1/calls", key, dial, append(json, "Origin", origin)...).problem(t, 403, "Origin")
			if !strings.Contains(detail(p), "http.allowed_origins") {
				t.Errorf("Origin %s: %v", origin, p)
			}
		}
	}
	r.raw("DELETE", "/v1/transfers/xfer_nope", control, "", "Origin", "https://evil.example").problem(t, 403, "Origin")
	r.raw("POST", "/v1/calls/conv_nope/hangup", "", "", "Origin", "https://evil.example").problem(t, 403, "Origin")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("a cross-site write dialled %d times", n)
	}
	if res := r.raw("POST", "/v1/calls", "", dial, append(json, "Origin", "https://crm.example.com")...); res.status != 202 {
		t.Fatalf("listed origin: %d %s", res.status, res.body)
	}
	if res := r.raw("POST", "/v1/calls", control, dial, json...); res.status != 202 {
		t.Fatalf("no Origin: %d %s", res.status, res.body)
	}

	r.raw("GET", "/v1/calls", "", "", "Sec-Fetch-Site", "cross-site").problem(t, 403, "Sec-Fetch-Site")
	r.raw("POST", "/v1/calls", "", dial, append(json, "Sec-Fetch-Site", "cross-site", "Origin", "https://crm.example.com")...).problem(t, 403, "Sec-Fetch-Site")
	for _, res := range []resp{
		r.raw("GET", "/v1/calls", "", "", "Sec-Fetch-Site", "same-origin"),
		r.raw("GET", "/v1/calls", "", "", "Sec-Fetch-Site", "none"),
		r.raw("GET", "/v1/calls", control, "", "Sec-Fetch-Site", "cross-site"), // a key is a credential no page has
	} {
		if res.status != 200 {
			t.Errorf("%d %s", res.status, res.body)
		}
	}
}

// DNS rebinding: a page of rebind.attacker.example whose name now points at
// 127.0.0.1 reaches the loopback listener with its own Host. Without a key
// only loopback names (or http.allowed_hosts) are served; with a key, any.
// The public routes answer any Host (probes) and tell no data.
func TestRebindingHostIsMisdirected(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true, preload: func(db *store.DB) {
		storeCalls(t, db, bridge.Call{ID: "conv_1", Direction: bridge.DirectionInbound, StartedAt: t0,
			Caller: bridge.Party{Number: "+15551234567"}})
	}})
	port := r.port()
	for _, host := range []string{"rebind.attacker.example:8181", "rebind.attacker.example", "localhost.attacker.example:" + port,
		"127.0.0.1.nip.io:" + port, "[::ffff:127.0.0.1]:" + port, "10.0.0.5:" + port} {
		res := r.raw("GET", "/v1/history", "", "", "Host", host)
		p := res.problem(t, 421, "Host")
		if p["code"] != "misdirected" || !strings.Contains(detail(p), "http.allowed_hosts") || strings.Contains(string(res.body), "5551234567") {
			t.Errorf("Host %s: %s", host, res.body)
		}
	}
	for _, host := range []string{"localhost:" + port, "LOCALHOST:" + port, "localhost", "127.0.0.1:" + port, "127.0.0.2:" + port, "[::1]:" + port, "[::1]"} {
		if res := r.raw("GET", "/v1/history", "", "", "Host", host); res.status != 200 || !strings.Contains(string(res.body), "5551234567") {
			t.Errorf("Host %s: %d %s", host, res.status, res.body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		if res := r.raw("GET", p, "", "", "Host", "rebind.attacker.example:8181"); res.status != 200 {
			t.Errorf("GET %s for a foreign Host: %d", p, res.status)
		}
	}
	read, _ := r.newKey("read")
	if res := r.raw("GET", "/v1/history", read, "", "Host", "ctibridge.example.com"); res.status != 200 {
		t.Fatalf("with a key, any Host: %d %s", res.status, res.body)
	}

	listed := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.AllowedHosts = []string{"ctibridge.lan", "pbx.lan:8181"} }})
	for host, want := range map[string]int{"ctibridge.lan": 200, "CTIBRIDGE.LAN:9000": 200, "pbx.lan:8181": 200, "pbx.lan:8182": 421, "pbx.lan": 421, "other.lan": 421} {
		if res := listed.raw("GET", "/v1/calls", "", "", "Host", host); res.status != want {
			t.Errorf("allowed_hosts, Host %s: %d, want %d", host, res.status, want)
		}
	}
}

// Revoking the last key must not reopen anonymous access: the default
// (read while no key has ever existed) fails closed from the first key on.
// An explicit policy says what it says, keys or not; admin never.
func TestAnonymousPolicy(t *testing.T) {
	r := newRig(t, rigOptions{noKeys: true})
	if res := r.raw("GET", "/v1/calls", "", ""); res.status != 200 {
		t.Fatalf("before any key: %d", res.status)
	}
	_, id := r.newKey("read")
	r.raw("GET", "/v1/calls", "", "").problem(t, 401, "")
	if err := r.db.DeleteAPIKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if p := r.raw("GET", "/v1/calls", "", "").problem(t, 401, ""); strings.Contains(detail(p), "no API key exists") {
		t.Errorf("after revoking: %v", p)
	}

	alias := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.AnonymousLoopback = true }})
	_, id = alias.newKey("read")
	_ = alias.db.DeleteAPIKey(context.Background(), id)
	alias.call("POST", "/v1/calls", "", map[string]any{"agent": "101", "to": "600"}).problem(t, 401, "")

	read := newRig(t, rigOptions{setup: func(s *apihttp.Server) { s.Anonymous = apihttp.AnonymousRead }})
	if res := read.raw("GET", "/v1/calls", "", ""); res.status != 200 {
		t.Errorf("anonymous read with keys: %d", res.status)
	}
	read.raw("POST", "/v1/calls", "", dial, "Content-Type", "application/json").problem(t, 401, "")

	none := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.Anonymous = apihttp.AnonymousNone }})
	none.raw("GET", "/v1/calls", "", "").problem(t, 401, "")

	// An unknown value (the config refuses it) closes, admin included.
	odd := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.Anonymous = "admin" }})
	odd.raw("GET", "/v1/calls", "", "").problem(t, 401, "")
	odd.raw("GET", "/v1/webhooks", "", "").problem(t, 401, "")
	if n := len(originates(r)) + len(originates(alias)) + len(originates(read)); n != 0 {
		t.Fatalf("dialled %d", n)
	}
}

// A FIFO where a recording should be used to block the request in open(2)
// for good (20 of them: 20 OS threads pinned). It is refused instead, as
// is a directory.
func TestRecordingThatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.wav"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.wav"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{
		setup: func(s *apihttp.Server) { s.RecordingsDir = dir },
		preload: func(db *store.DB) {
			storeCalls(t, db,
				bridge.Call{ID: "conv_fifo", Direction: bridge.DirectionInbound, StartedAt: t0, Recording: &bridge.Recording{Path: filepath.Join(dir, "fifo.wav")}},
				bridge.Call{ID: "conv_dir", Direction: bridge.DirectionInbound, StartedAt: t0, Recording: &bridge.Recording{Path: filepath.Join(dir, "dir.wav")}})
		}})
	for id, kind := range map[string]string{"conv_fifo": "FIFO", "conv_dir": "directory"} {
		p := r.raw("GET", "/v1/calls/"+id+"/recording", r.keys["read"], "").problem(t, 403, "")
		if !strings.Contains(detail(p), "not a regular file") || !strings.Contains(detail(p), kind) {
			t.Errorf("%s: %v", id, p)
		}
	}
}

// A misspelt or repeated query parameter is refused, naming it: ignored,
// ?limt=5 or ?agnt=100 answered with everything, unfiltered.
func TestQueryParametersAllowlisted(t *testing.T) {
	r := newRig(t, rigOptions{preload: func(db *store.DB) {
		storeCalls(t, db, bridge.Call{ID: "conv_1", Direction: bridge.DirectionInbound, StartedAt: t0})
	}})
	for _, q := range []struct{ path, scope, field, detail string }{
		{"/v1/history?limt=5", "read", "limt", "it takes from, to, limit"},
		{"/v1/history?limit=1&limit=2", "read", "limit", "given twice"},
		{"/v1/events/stream?agnt=100", "read", "agnt", "it takes types, agent, last_event_id"},
		{"/v1/webhooks/crm/deliveries?befor=2026-01-01T00:00:00Z", "admin", "befor", "it takes limit, before"},
		{"/v1/webhooks/crm/dead?cursor=x", "admin", "cursor", "it takes limit"},
	} {
		p := r.call("GET", q.path, q.scope, nil).problem(t, 400, q.field)
		if !strings.Contains(p["detail"].(string), q.detail) {
			t.Errorf("%s: detail %q, want %q", q.path, p["detail"], q.detail)
		}
	}
	if res := r.call("GET", "/v1/history?limit=5&direction=inbound", "read", nil); res.status != 200 || !strings.Contains(string(res.body), "conv_1") {
		t.Fatalf("known parameters: %d %s", res.status, res.body)
	}
}

// Times outside what the store's nanoseconds hold are refused naming the
// parameter: from=9999-12-31 overflowed and returned every call.
func TestTimesOutOfRange(t *testing.T) {
	r := newRig(t, rigOptions{preload: func(db *store.DB) {
		storeCalls(t, db, bridge.Call{ID: "conv_1", Direction: bridge.DirectionInbound, StartedAt: t0})
	}})
	for _, q := range []struct{ query, field string }{
		{"from=9999-12-31T23:59:59Z", "from"},
		{"from=2262-04-12T00:00:00Z", "from"},
		{"from=2200-01-01T00:00:00Z", "from"},
		{"to=0001-01-01T00:00:00Z", "to"},
		{"to=1969-12-31T23:59:59Z", "to"},
	} {
		r.call("GET", "/v1/history?"+q.query, "read", nil).problem(t, 400, q.field)
	}
	res := r.call("GET", "/v1/history?from=2199-12-31T23:59:59Z", "read", nil)
	if res.status != 200 || strings.Contains(string(res.body), "conv_1") {
		t.Fatalf("from 2199: %d %s", res.status, res.body)
	}
	r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": "9999-12-31T23:59:59Z"}).problem(t, 400, "from")
	r.call("POST", "/v1/events/replay", "admin", map[string]any{"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}).problem(t, 400, "to")
	r.call("GET", "/v1/webhooks/crm/deliveries?before=9999-12-31T23:59:59Z", "admin", nil).problem(t, 400, "before")
}

// stream opens an event stream; the caller closes it with the returned
// function. A refusal's body is read.
func (r *rig) stream(key string) (resp, func()) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := nethttp.NewRequestWithContext(ctx, "GET", r.base+"/v1/events/stream", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		cancel()
		r.t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header}
	if res.StatusCode != 200 {
		out.body, _ = io.ReadAll(res.Body)
		res.Body.Close()
	}
	closeFn := func() { cancel(); res.Body.Close() }
	r.t.Cleanup(closeFn)
	return out, closeFn
}

// Event streams are capped in all and per key (anonymous is one key),
// answered 429 with Retry-After; a closed stream frees its slot.
func TestStreamCaps(t *testing.T) {
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) { s.MaxStreams, s.MaxStreamsPerKey = 3, 2 }})
	var closers []func()
	for range 2 {
		res, c := r.stream(r.keys["read"])
		if res.status != 200 {
			t.Fatalf("stream: %d %s", res.status, res.body)
		}
		closers = append(closers, c)
	}
	res, _ := r.stream(r.keys["read"])
	if p := res.problem(t, 429, ""); p["code"] != "too_many_streams" || !strings.Contains(detail(p), "http.max_streams_per_key") || res.header.Get("Retry-After") == "" {
		t.Fatalf("third stream of a key: %v %v", p, res.header)
	}
	if res, _ := r.stream(r.keys["control"]); res.status != 200 {
		t.Fatalf("another key's stream: %d %s", res.status, res.body)
	}
	res, _ = r.stream(r.keys["admin"])
	if p := res.problem(t, 429, ""); !strings.Contains(detail(p), "http.max_streams ") || res.header.Get("Retry-After") == "" {
		t.Fatalf("past the total: %v", p)
	}
	closers[0]()
	r.waitFor("a freed stream slot", func() bool {
		res, c := r.stream(r.keys["read"])
		if res.status != 200 {
			c()
		}
		return res.status == 200
	})

	anon := newRig(t, rigOptions{noKeys: true, setup: func(s *apihttp.Server) { s.MaxStreamsPerKey = 1 }})
	if res, _ := anon.stream(""); res.status != 200 {
		t.Fatalf("anonymous stream: %d %s", res.status, res.body)
	}
	res, _ = anon.stream("")
	if p := res.problem(t, 429, ""); !strings.Contains(detail(p), "without an API key") {
		t.Fatalf("second anonymous stream: %v", p)
	}
}

// /readyz needs no key: it says what is wrong with the PBX link, never
// where (address, user).
func TestReadyzSaysWhatNotWhere(t *testing.T) {
	r := newRig(t, rigOptions{})
	addr := r.ast.Addr()
	_, port, _ := net.SplitHostPort(addr)
	r.ast.Close()
	var res resp
	r.waitFor("pbx_error", func() bool {
		res = r.raw("GET", "/readyz", "", "")
		return res.status == 503 && strings.Contains(string(res.body), "pbx_error")
	})
	// "ami: <address> closed the connection: EOF" (or a reset) before.
	if b := string(res.body); !strings.Contains(b, `"pbx_error":"pbx: link lost: the connection was closed"`) ||
		strings.Contains(b, port) || strings.Contains(b, "bridge") || strings.Contains(b, "127.0.0.1") {
		t.Fatalf("readyz: %s", b)
	}
}

// A sink that is down shows in /readyz, in fixed words, and does not make
// ctibridge unready: its events wait in the outbox.
func TestReadyzShowsSinks(t *testing.T) {
	up := true
	var mu sync.Mutex
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) {
		s.Sinks = func() (bool, []string) {
			mu.Lock()
			defer mu.Unlock()
			if up {
				return true, nil
			}
			return false, []string{"nats: not connected"}
		}
	}})
	r.waitFor("ready", func() bool { return r.raw("GET", "/readyz", "", "").status == 200 })
	if b := string(r.raw("GET", "/readyz", "", "").body); !strings.Contains(b, `"sinks_connected":true`) || strings.Contains(b, "sinks_error") {
		t.Fatalf("readyz: %s", b)
	}
	mu.Lock()
	up = false
	mu.Unlock()
	res := r.raw("GET", "/readyz", "", "")
	if b := string(res.body); res.status != 200 || !strings.Contains(b, `"sinks_connected":false`) || !strings.Contains(b, `"sinks_error":["nats: not connected"]`) {
		t.Fatalf("readyz with the sink down: %d %s", res.status, b)
	}
}
