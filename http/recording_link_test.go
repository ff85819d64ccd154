package http_test

import (
	"encoding/json"
	"io"
	"mime"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/store"
)

const testLinkSecret = "link-secret-0123456789abcdef012345"

// getLink fetches a recording link as a CRM's server does: no API key, a
// public Host name, headers given.
func getLink(t *testing.T, r *rig, path string, hdr ...string) resp {
	t.Helper()
	req, err := nethttp.NewRequest("GET", r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "cti.example.com"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// A signed link serves its call's recording, with Range, to a client with
// no API key on a public Host; an expired, tampered or foreign token, a
// call without a recording and a path outside the directory all get the
// same 404, which names no path and does not echo the token.
func TestRecordingLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	content := []byte("RIFF0123456789abcdef")
	if err := os.WriteFile(filepath.Join(dir, "call-1.wav"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.wav"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	odd := `Bob" x="1.wav`
	if err := os.WriteFile(filepath.Join(dir, odd), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.wav"), filepath.Join(dir, "link.wav")); err != nil {
		t.Fatal(err)
	}
	rec := func(id, path string) bridge.Call {
		c := bridge.Call{ID: id, Direction: bridge.DirectionInbound, StartedAt: t0}
		if path != "" {
			c.Recording = &bridge.Recording{Path: path}
		}
		return c
	}
	now := time.Now()
	links, err := bridge.NewRecordingLinks(testLinkSecret, "https://cti.example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{
		setup: func(s *apihttp.Server) { s.RecordingsDir, s.RecordingLinks = dir, links },
		preload: func(db *store.DB) {
			storeCalls(t, db, rec("conv_ok", filepath.Join(dir, "call-1.wav")), rec("conv_other", filepath.Join(dir, "call-1.wav")),
				rec("conv_none", ""), rec("conv_etc", "/etc/passwd"), rec("conv_dots", dir+"/../"+filepath.Base(outside)+"/secret.wav"),
				rec("conv_link", filepath.Join(dir, "link.wav")), rec("conv_gone", filepath.Join(dir, "gone.wav")),
				rec("conv_odd", filepath.Join(dir, odd)))
		}})
	path := func(id string, exp time.Time) string {
		tok, err := links.Sign(id, exp)
		if err != nil {
			t.Fatal(err)
		}
		return bridge.RecordingLinkPath + tok
	}
	ok := path("conv_ok", now.Add(time.Hour))
	u, _ := links.URL("conv_ok")
	for _, p := range []string{ok, strings.TrimPrefix(u, "https://cti.example.com")} {
		res := getLink(t, r, p)
		if res.status != 200 || string(res.body) != string(content) || res.header.Get("Accept-Ranges") != "bytes" ||
			!strings.Contains(res.header.Get("Cache-Control"), "no-store") {
			t.Fatalf("whole: %d %q %v", res.status, res.body, res.header)
		}
	}
	for _, c := range []struct{ rng, want, crange string }{
		{"bytes=0-9", "RIFF012345", "bytes 0-9/20"},
		{"bytes=-4", "cdef", "bytes 16-19/20"},
		{"bytes=14-", "abcdef", "bytes 14-19/20"},
		{"bytes=18-100", "ef", "bytes 18-19/20"},
	} {
		res := getLink(t, r, ok, "Range", c.rng)
		if res.status != 206 || string(res.body) != c.want || res.header.Get("Content-Range") != c.crange {
			t.Errorf("%s: %d %q %q", c.rng, res.status, res.body, res.header.Get("Content-Range"))
		}
	}
	res := getLink(t, r, ok, "Range", "bytes=20-")
	if p := res.problem(t, 416, ""); res.header.Get("Content-Range") != "bytes */20" || strings.Contains(string(res.body), strings.TrimPrefix(ok, bridge.RecordingLinkPath)) {
		t.Errorf("416: %v %s", res.header, p)
	}

	// Every refused link looks the same.
	tok := strings.TrimPrefix(ok, bridge.RecordingLinkPath)
	tampered := []byte(tok)
	tampered[3] ^= 0x01
	if tampered[3] == '-' || tampered[3] == '_' {
		tampered[3] = 'A'
	}
	refused := map[string]string{
		"expired":        path("conv_ok", now.Add(-time.Second)),
		"tampered":       bridge.RecordingLinkPath + string(tampered),
		"truncated":      ok[:len(ok)-2],
		"no recording":   path("conv_none", now.Add(time.Hour)),
		"unknown call":   path("conv_nope", now.Add(time.Hour)),
		"file gone":      path("conv_gone", now.Add(time.Hour)),
		"absolute path":  path("conv_etc", now.Add(time.Hour)),
		"dot-dot path":   path("conv_dots", now.Add(time.Hour)),
		"symlink out":    path("conv_link", now.Add(time.Hour)),
		"traversal":      bridge.RecordingLinkPath + "..%2f..%2fetc%2fpasswd",
		"other secret":   otherSecretPath(t, "conv_ok", now.Add(time.Hour)),
		"query id swaps": ok + "?id=conv_other",
	}
	var first string
	for name, p := range refused {
		res := getLink(t, r, p)
		if name == "query id swaps" { // the query is ignored: still conv_ok's bytes, never another call's
			if res.status != 200 || string(res.body) != string(content) {
				t.Errorf("%s: %d", name, res.status)
			}
			continue
		}
		if res.status != 404 {
			t.Errorf("%s: %d %s", name, res.status, res.body)
			continue
		}
		var m map[string]any
		_ = json.Unmarshal(res.body, &m)
		if first == "" {
			first = m["detail"].(string)
		} else if m["detail"] != first {
			t.Errorf("%s: detail %q differs from %q: it tells why", name, m["detail"], first)
		}
		if m["instance"] != "/v1/recordings/{token}" {
			t.Errorf("%s: instance %v", name, m["instance"])
		}
		for _, leak := range []string{dir, outside, "secret", "passwd", ".wav", strings.TrimPrefix(p, bridge.RecordingLinkPath)} {
			if leak != "" && strings.Contains(string(res.body), leak) {
				t.Errorf("%s: answer reveals %q: %s", name, leak, res.body)
			}
		}
	}
	if res := getLink(t, r, bridge.RecordingLinkPath); res.status == 200 {
		t.Errorf("no token: %d", res.status)
	}
	// A file name from the dialplan (a caller's name in it) cannot break
	// out of Content-Disposition's quotes.
	res = getLink(t, r, path("conv_odd", now.Add(time.Hour)))
	if _, params, err := mime.ParseMediaType(res.header.Get("Content-Disposition")); res.status != 200 || err != nil || len(params) != 1 || params["filename"] != odd {
		t.Errorf("Content-Disposition %q: %v %v", res.header.Get("Content-Disposition"), params, err)
	}
	// A token for one call does not open another's recording.
	other := path("conv_other", now.Add(time.Hour))
	if other == ok {
		t.Fatal("two calls, one token")
	}
}

// Without RecordingLinks (no public URL or secret) every link is 404.
func TestRecordingLinkOff(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "call-1.wav"), []byte("RIFF"), 0o600)
	r := newRig(t, rigOptions{
		setup: func(s *apihttp.Server) { s.RecordingsDir = dir },
		preload: func(db *store.DB) {
			storeCalls(t, db, bridge.Call{ID: "conv_ok", StartedAt: t0, Recording: &bridge.Recording{Path: filepath.Join(dir, "call-1.wav")}})
		}})
	getLink(t, r, otherSecretPath(t, "conv_ok", time.Now().Add(time.Hour))).problem(t, 404, "")
}

// Mounted CRM handlers take a POST without a key and without Origin on a
// public Host; a browser page's POST (Origin) is still refused.
func TestMounts(t *testing.T) {
	var mu sync.Mutex
	var got []string
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
	r := newRig(t, rigOptions{setup: func(s *apihttp.Server) {
		for _, bad := range []string{"/v1/x", "/crm/:id", "/crm/../v1", "/crm/*"} {
			if s.Mount(bad, nethttp.NotFoundHandler()) == nil {
				t.Errorf("mounted at %q", bad)
			}
		}
		err := s.Mount("/crm/test/events", nethttp.HandlerFunc(func(w nethttp.ResponseWriter, req *nethttp.Request) {
			_ = req.ParseForm()
			mu.Lock()
			got = append(got, req.Method+" "+req.PostForm.Get("data[X]"))
			mu.Unlock()
			if _, ok := req.Context().Deadline(); !ok {
				w.WriteHeader(500)
				return
			}
			w.WriteHeader(202)
		}))
		if err != nil {
			t.Fatal(err)
		}
	}})
	post := func(path string, hdr ...string) int {
		req, _ := nethttp.NewRequest("POST", r.base+path, strings.NewReader(url.Values{"data[X]": {"1"}}.Encode()))
		req.Host = "cti.example.com"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("/crm/test/events"); code != 202 || len(seen()) != 1 || seen()[0] != "POST 1" {
		t.Fatalf("mounted: %d %v", code, seen())
	}
	if code := post("/crm/other"); code != 404 {
		t.Fatalf("unmounted: %d", code)
	}
	if code := post("/crm/test/events", "Origin", "https://evil.example"); code != 403 || len(seen()) != 1 {
		t.Fatalf("browser POST: %d %v", code, seen())
	}
}

func otherSecretPath(t *testing.T, id string, exp time.Time) string {
	l, err := bridge.NewRecordingLinks("another-secret-0123456789abcdefghij", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := l.Sign(id, exp)
	return bridge.RecordingLinkPath + tok
}
