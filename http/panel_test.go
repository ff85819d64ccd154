package http_test

import (
	"bufio"
	"context"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	apihttp "github.com/ctibridge/ctibridge/http"
)

func (r *rig) agentKey(ext string) string {
	r.t.Helper()
	plain, _, err := r.db.CreateAgentAPIKey(context.Background(), "agent "+ext, []string{"read", "control"}, ext)
	if err != nil {
		r.t.Fatal(err)
	}
	return plain
}

// panelHdr is what Chromium sends on a fetch from the panel's own page.
func (r *rig) panelHdr(cookie string, extra ...string) []string {
	h := []string{"Origin", r.base, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"}
	if cookie != "" {
		h = append(h, "Cookie", "ctb_panel="+cookie)
	}
	return append(h, extra...)
}

// signIn posts the key to the sign-in route as the panel page does and
// returns the cookie's value.
func (r *rig) signIn(key string) string {
	r.t.Helper()
	res := r.raw("POST", "/panel/session", "", `{"key":"`+key+`"}`, r.panelHdr("")...)
	if res.status != 200 {
		r.t.Fatalf("sign in: %d %s", res.status, res.body)
	}
	sc := res.header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(strings.ToLower(sc), "samesite=strict") || !strings.Contains(strings.ToLower(sc), "path=/") {
		r.t.Fatalf("cookie %q: want HttpOnly, SameSite=Strict, Path=/", sc)
	}
	v, _, _ := strings.Cut(strings.TrimPrefix(sc, "ctb_panel="), ";")
	return v
}

// The sign-in cookie drives the API only from the panel's own page: a
// cross-site form POST carrying it (as a browser would, were SameSite not
// there) is refused before anything is dialled, and so is a cross-site read.
func TestPanelCookieOnlyFromThePanel(t *testing.T) {
	r := newRig(t, rigOptions{})
	cookie := r.signIn(r.agentKey("100"))
	form := []string{"Cookie", "ctb_panel=" + cookie, "Content-Type", "application/x-www-form-urlencoded",
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	r.raw("POST", "/v1/calls", "", "agent=100&to=600", form...).problem(t, 403, "")
	r.raw("POST", "/v1/calls", "", `{"agent":"100","to":"600"}`, "Cookie", "ctb_panel="+cookie,
		"Content-Type", "application/json", "Origin", "https://evil.example").problem(t, 403, "Origin")
	// A same-site sibling or a DNS-rebound name is not the panel either.
	r.raw("POST", "/v1/calls", "", `{"agent":"100","to":"600"}`, r.panelHdr(cookie, "Origin", "http://localhost:"+r.port())...).problem(t, 403, "Origin")
	r.raw("POST", "/v1/calls", "", `{"agent":"100","to":"600"}`, r.panelHdr(cookie, "Sec-Fetch-Site", "same-site")...).problem(t, 403, "Sec-Fetch-Site")
	r.raw("GET", "/v1/history", "", "", "Cookie", "ctb_panel="+cookie, "Sec-Fetch-Site", "cross-site").problem(t, 403, "Sec-Fetch-Site")
	r.raw("GET", "/panel/me", "", "", "Cookie", "ctb_panel="+cookie, "Sec-Fetch-Site", "cross-site").problem(t, 403, "Sec-Fetch-Site")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("a cross-site request dialled %d times", n)
	}
	// Signing in from another page, or with a form body, is refused too.
	r.raw("POST", "/panel/session", "", `{"key":"x"}`, "Origin", "https://evil.example", "Content-Type", "application/json").problem(t, 403, "Origin")
	r.raw("POST", "/panel/session", "", "key=x", r.panelHdr("", "Content-Type", "application/x-www-form-urlencoded")...).problem(t, 415, "Content-Type")
	// Only agent keys sign in to the panel; a wrong cookie is 401.
	r.raw("POST", "/panel/session", "", `{"key":"`+r.keys["control"]+`"}`, r.panelHdr("")...).problem(t, 403, "key")
	r.raw("GET", "/panel/me", "", "", r.panelHdr("ctb_nope")...).problem(t, 401, "")

	// The panel itself: reads, then dials for its own agent only.
	me := r.raw("GET", "/panel/me", "", "", r.panelHdr(cookie)...)
	if me.status != 200 || me.json(t)["agent"] != "100" {
		t.Fatalf("me: %d %s", me.status, me.body)
	}
	if res := r.raw("POST", "/v1/calls", "", `{"agent":"100","to":"600"}`, r.panelHdr(cookie)...); res.status != 202 {
		t.Fatalf("the panel's own dial: %d %s", res.status, res.body)
	}
	if n := len(originates(r)); n != 1 {
		t.Fatalf("%d originates, want 1", n)
	}
	// Sign out clears the cookie.
	out := r.raw("DELETE", "/panel/session", "", "", r.panelHdr(cookie)...)
	if out.status != 204 || !strings.Contains(out.header.Get("Set-Cookie"), "ctb_panel=;") {
		t.Fatalf("sign out: %d %v", out.status, out.header)
	}
}

// Over TLS (a proxy in front says so) the cookie is Secure and
// SameSite=None, so the panel works in a CRM's frame.
func TestPanelCookieOverTLS(t *testing.T) {
	r := newRig(t, rigOptions{})
	res := r.raw("POST", "/panel/session", "", `{"key":"`+r.agentKey("100")+`"}`,
		"Origin", "https://127.0.0.1:"+r.port(), "X-Forwarded-Proto", "https", "Content-Type", "application/json")
	sc := res.header.Get("Set-Cookie")
	if res.status != 200 || !strings.Contains(sc, "secure") || !strings.Contains(strings.ToLower(sc), "samesite=none") {
		t.Fatalf("%d %q", res.status, sc)
	}
}

// A login link is good once: the ticket signs in, then never again.
func TestPanelLoginLinkIsSingleUse(t *testing.T) {
	r := newRig(t, rigOptions{})
	key := r.agentKey("100")
	r.raw("POST", "/panel/links", r.keys["admin"], "").problem(t, 403, "")
	res := r.raw("POST", "/panel/links", key, "")
	if res.status != 201 {
		t.Fatalf("link: %d %s", res.status, res.body)
	}
	url, _ := res.json(t)["url"].(string)
	_, ticket, ok := strings.Cut(url, "/panel/#ticket=")
	if !ok || strings.Contains(url, key) {
		t.Fatalf("url %q: want the ticket in the fragment, never the key", url)
	}
	first := r.raw("POST", "/panel/session", "", `{"ticket":"`+ticket+`"}`, r.panelHdr("")...)
	sc := first.header.Get("Set-Cookie")
	if first.status != 200 || !strings.HasPrefix(sc, "ctb_panel=cps_") || strings.Contains(sc, key) {
		t.Fatalf("first use: %d %s, cookie %q: want a session, never the key", first.status, first.body, sc)
	}
	r.raw("POST", "/panel/session", "", `{"ticket":"`+ticket+`"}`, r.panelHdr("")...).problem(t, 401, "ticket")
}

// The cookie holds a session, not the key: it is no API key, it ends at
// sign-out (the old value refused after), and with its key.
func TestPanelSessionIsNotTheKey(t *testing.T) {
	r := newRig(t, rigOptions{})
	key := r.agentKey("100")
	cookie := r.signIn(key)
	if strings.Contains(cookie, key) || !strings.HasPrefix(cookie, "cps_") {
		t.Fatalf("cookie %q", cookie)
	}
	if res := r.raw("GET", "/panel/me", "", "", r.panelHdr(cookie)...); res.status != 200 {
		t.Fatalf("signed in: %d %s", res.status, res.body)
	}
	r.raw("GET", "/v1/calls", cookie, "").problem(t, 401, "") // not a Bearer key
	stream := r.panelStream(cookie)
	if res := r.raw("DELETE", "/panel/session", "", "", r.panelHdr(cookie)...); res.status != 204 {
		t.Fatalf("sign out: %d %s", res.status, res.body)
	}
	r.raw("GET", "/panel/me", "", "", r.panelHdr(cookie)...).problem(t, 401, "")
	select { // the session's stream ends at the next heartbeat (20 ms here)
	case <-stream.ended:
	case <-time.After(time.Minute): // a bound on a failure only
		t.Fatal("the signed-out session's stream goes on")
	}

	again := r.signIn(key)
	k, err := r.db.AuthenticateAPIKey(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.db.DeleteAPIKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	r.raw("GET", "/panel/me", "", "", r.panelHdr(again)...).problem(t, 401, "")
}

// With http.public_url set, a login link is made under it, whatever Host
// the request named.
func TestPanelLoginLinkUnderPublicURL(t *testing.T) {
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) { s.PublicURL = "https://cti.example.com/bridge" }})
	res := r.raw("POST", "/panel/links", r.agentKey("100"), "", "Host", "attacker.example")
	if u, _ := res.json(t)["url"].(string); res.status != 201 || !strings.HasPrefix(u, "https://cti.example.com/bridge/panel/#ticket=") {
		t.Fatalf("%d %s", res.status, res.body)
	}
}

// One key cannot take the whole pool of unused login links: another
// agent still gets one.
func TestPanelLoginLinksCappedPerKey(t *testing.T) {
	r := newRig(t, rigOptions{})
	greedy, other := r.agentKey("100"), r.agentKey("101")
	n := 0
	for ; n < 1000; n++ {
		if res := r.raw("POST", "/panel/links", greedy, ""); res.status != 201 {
			if res.status != 429 || !strings.Contains(string(res.body), "this key has") {
				t.Fatalf("link %d: %d %s", n, res.status, res.body)
			}
			break
		}
	}
	if n == 1000 {
		t.Fatal("one key took 1000 unused links")
	}
	if res := r.raw("POST", "/panel/links", other, ""); res.status != 201 {
		t.Fatalf("another agent after %d links of the first: %d %s", n, res.status, res.body)
	}
}

// The page: its CSP lets only the configured hosts frame it and runs only
// its own script.
func TestPanelPageHeaders(t *testing.T) {
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) {
		s.Panel.FrameAncestors = []string{"'self'", "https://crm.example.com"}
	}})
	for _, p := range []string{"/panel", "/panel/", "/c2c?number=600", "/panel/assets/panel.js"} {
		res := r.raw("GET", p, "", "")
		csp := res.header.Get("Content-Security-Policy")
		if res.status != 200 || !strings.Contains(csp, "frame-ancestors 'self' https://crm.example.com") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s: %d %q", p, res.status, csp)
		}
	}
	r.raw("GET", "/panel/assets/..%2fpanel.go", "", "").problem(t, 404, "")
	// postMessage talks to the framing origins only ('self': this server).
	me := r.raw("GET", "/panel/me", "", "", r.panelHdr(r.signIn(r.agentKey("100")))...).json(t)
	if got := fmt.Sprint(me["host_origins"]); got != "[https://crm.example.com "+r.base+"]" {
		t.Errorf("host_origins %s", got)
	}
	// A bare GET of /c2c dials nothing: the page asks first.
	if n := len(originates(r)); n != 0 {
		t.Fatalf("GET /c2c dialled %d times", n)
	}
}

// sse reads an event stream opened with the panel's cookie; types returns
// the event types (and the agents they name) seen so far.
type sse struct {
	mu    sync.Mutex
	got   []string
	ended chan struct{} // closed when the server ends the stream
}

func (r *rig) panelStream(cookie string) *sse {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := nethttp.NewRequestWithContext(ctx, "GET", r.base+"/v1/events/stream", nil)
	req.Header.Set("Cookie", "ctb_panel="+cookie)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		cancel()
		r.t.Fatalf("stream: %v %v", err, res)
	}
	s := &sse{ended: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.ended)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.mu.Lock()
				s.got = append(s.got, line)
				s.mu.Unlock()
			}
		}
	}()
	r.t.Cleanup(func() { cancel(); res.Body.Close(); <-done })
	return s
}

func (s *sse) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// An agent key's stream carries only its own calls: agent 100's gets the
// call that rang it; agent 101's gets none of it. History and recordings
// follow the same rule (another agent's call is 404, never 403).
func TestAgentKeySeesOnlyItsCalls(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) { s.RecordingsDir = dir }})
	c100, c101 := r.signIn(r.agentKey("100")), r.signIn(r.agentKey("101"))
	s100, s101 := r.panelStream(c100), r.panelStream(c101)
	conv, rest := r.liveCall("inbound-call-basic") // rings and connects agent 100
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("call.ended on 100's stream", func() bool {
		for _, l := range s100.lines() {
			if strings.Contains(l, `"type":"call.ended"`) && strings.Contains(l, conv) {
				return true
			}
		}
		return false
	})
	// The events were committed in one order: everything 101's stream would
	// ever get of them is already written when 100's has call.ended.
	for _, l := range s101.lines() {
		if strings.Contains(l, conv) || strings.Contains(l, `"extension":"100"`) {
			t.Fatalf("agent 101's stream got %s", l)
		}
	}
	var ringing bool
	for _, l := range s100.lines() {
		ringing = ringing || strings.Contains(l, `"type":"call.ringing"`)
		if !strings.Contains(l, conv) && !strings.Contains(l, `"type":"agent.state"`) {
			t.Errorf("agent 100's stream got another call: %s", l)
		}
	}
	if !ringing {
		t.Fatalf("agent 100's stream: no call.ringing in %v", s100.lines())
	}

	// History: 100 sees the call, 101 an empty page even when it asks for 100's.
	h100 := r.raw("GET", "/v1/history", "", "", r.panelHdr(c100)...).json(t)
	if calls, _ := h100["calls"].([]any); len(calls) != 1 {
		t.Fatalf("100's history: %v", h100)
	}
	for _, q := range []string{"", "?agent=100"} {
		h101 := r.raw("GET", "/v1/history"+q, "", "", r.panelHdr(c101)...).json(t)
		if calls, _ := h101["calls"].([]any); len(calls) != 0 {
			t.Fatalf("101's history%s: %v", q, h101)
		}
	}
	// Recording: 101 is told the call does not exist; 100 that it has no recording.
	p := r.raw("GET", "/v1/calls/"+conv+"/recording", "", "", r.panelHdr(c101)...).problem(t, 404, "id")
	if !strings.Contains(detail(p), "no call") {
		t.Fatalf("101: %v", p)
	}
	p = r.raw("GET", "/v1/calls/"+conv+"/recording", "", "", r.panelHdr(c100)...).problem(t, 404, "id")
	if !strings.Contains(detail(p), "has no recording") {
		t.Fatalf("100: %v", p)
	}
}
