package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/store"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// storeCalls commits ended conversations straight to the store.
func storeCalls(t *testing.T, db *store.DB, calls ...bridge.Call) {
	t.Helper()
	b := &bridge.Batch{}
	for _, c := range calls {
		c.State = "ended"
		b.Conversations = append(b.Conversations, bridge.ConversationRecord{Call: c, LastSeq: 1})
	}
	if err := db.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestHistory(t *testing.T) {
	call := func(id string, min int, dir bridge.Direction, agent, caller string, disp bridge.Disposition) bridge.Call {
		return bridge.Call{ID: id, Direction: dir, Caller: bridge.Party{Number: caller}, Callee: bridge.Party{Number: "200"},
			Agent: &bridge.Agent{Extension: agent}, StartedAt: t0.Add(time.Duration(min) * time.Minute), Disposition: disp}
	}
	r := newRig(t, rigOptions{preload: func(db *store.DB) {
		storeCalls(t, db,
			call("conv_a", 1, bridge.DirectionInbound, "100", "5551234", bridge.DispositionAnswered),
			call("conv_b", 2, bridge.DirectionInbound, "101", "5559999", bridge.DispositionNoAnswer),
			call("conv_c", 3, bridge.DirectionOutbound, "100", "100", bridge.DispositionBusy),
			call("conv_d", 4, bridge.DirectionInbound, "100", "5551234", bridge.DispositionAnswered))
	}})
	ids := func(query string) (string, string) {
		t.Helper()
		res := r.call("GET", "/v1/history"+query, "read", nil)
		var b struct {
			Calls []bridge.Call `json:"calls"`
			Next  string        `json:"next_cursor"`
		}
		if res.status != 200 || json.Unmarshal(res.body, &b) != nil {
			t.Fatalf("%s: %d %s", query, res.status, res.body)
		}
		var s []string
		for _, c := range b.Calls {
			s = append(s, c.ID)
		}
		return strings.Join(s, ","), b.Next
	}
	for q, want := range map[string]string{
		"":                                "conv_d,conv_c,conv_b,conv_a",
		"?agent=100":                      "conv_d,conv_c,conv_a",
		"?number=5551234":                 "conv_d,conv_a",
		"?direction=outbound":             "conv_c",
		"?disposition=answered&agent=100": "conv_d,conv_a",
		"?from=2026-11-22T09:02:00Z":      "conv_d,conv_c,conv_b",
		"?from=2026-11-22T09:02:00Z&to=2026-11-22T09:04:00Z": "conv_c,conv_b",
	} {
		if got, _ := ids(q); got != want {
			t.Errorf("history%s = %s, want %s", q, got, want)
		}
	}
	page, next := ids("?limit=3")
	if page != "conv_d,conv_c,conv_b" || next == "" {
		t.Fatalf("page 1: %s next %q", page, next)
	}
	if page, next = ids("?limit=3&cursor=" + next); page != "conv_a" || next != "" {
		t.Fatalf("page 2: %s next %q", page, next)
	}
	for q, field := range map[string]string{"?from=yesterday": "from", "?limit=0": "limit", "?limit=501": "limit",
		"?direction=sideways": "direction", "?disposition=maybe": "disposition", "?cursor=%%%": "cursor", "?agent=1%0A": "agent"} {
		r.call("GET", "/v1/history"+q, "read", nil).problem(t, 400, field)
	}
}

func TestRecordingDownload(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	content := []byte("RIFF0123456789abcdef")
	if err := os.WriteFile(filepath.Join(dir, "call-1.wav"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.wav"), []byte("secret"), 0o600); err != nil {
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
	r := newRig(t, rigOptions{
		setup: func(s *apihttp.Server) { s.RecordingsDir = dir },
		preload: func(db *store.DB) {
			storeCalls(t, db, rec("conv_ok", filepath.Join(dir, "call-1.wav")), rec("conv_none", ""),
				rec("conv_etc", "/etc/passwd"), rec("conv_dots", dir+"/../"+filepath.Base(outside)+"/secret.wav"),
				rec("conv_link", filepath.Join(dir, "link.wav")), rec("conv_gone", filepath.Join(dir, "gone.wav")),
				rec("conv_rel", "call-1.wav"))
		}})
	get := func(id string, hdr ...string) resp {
		return r.call("GET", "/v1/calls/"+id+"/recording", "read", nil, hdr...)
	}
	res := get("conv_ok")
	if res.status != 200 || string(res.body) != string(content) || res.header.Get("Accept-Ranges") != "bytes" ||
		res.header.Get("Content-Type") != "audio/x-wav" && res.header.Get("Content-Type") != "audio/wav" && res.header.Get("Content-Type") != "audio/vnd.wave" {
		t.Fatalf("whole: %d %q %v", res.status, res.body, res.header)
	}
	for _, c := range []struct {
		rng, want, crange string
	}{
		{"bytes=4-7", "0123", "bytes 4-7/20"},
		{"bytes=16-", "cdef", "bytes 16-19/20"},
		{"bytes=-3", "def", "bytes 17-19/20"},
		{"bytes=18-100", "ef", "bytes 18-19/20"},
	} {
		res := get("conv_ok", "Range", c.rng)
		if res.status != 206 || string(res.body) != c.want || res.header.Get("Content-Range") != c.crange {
			t.Errorf("%s: %d %q %q", c.rng, res.status, res.body, res.header.Get("Content-Range"))
		}
	}
	if res := get("conv_ok", "Range", "bytes=0-1,4-5"); res.status != 200 || len(res.body) != len(content) {
		t.Errorf("multi-range: %d, %d bytes", res.status, len(res.body))
	}
	res = get("conv_ok", "Range", "bytes=20-")
	res.problem(t, 416, "")
	if res.header.Get("Content-Range") != "bytes */20" {
		t.Errorf("416 Content-Range %q", res.header.Get("Content-Range"))
	}
	get("conv_none").problem(t, 404, "id")
	get("conv_nope").problem(t, 404, "id")
	get("conv_gone").problem(t, 404, "")
	for _, id := range []string{"conv_etc", "conv_dots", "conv_link", "conv_rel"} {
		if p := get(id).problem(t, 403, ""); strings.Contains(p["detail"].(string), "secret") {
			t.Fatal(p)
		}
	}

	// Not configured: recordings are not served at all.
	r2 := newRig(t, rigOptions{preload: func(db *store.DB) { storeCalls(t, db, rec("conv_ok", filepath.Join(dir, "call-1.wav"))) }})
	r2.call("GET", "/v1/calls/conv_ok/recording", "read", nil).problem(t, 501, "")
}

func TestRequestBodies(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.call("POST", "/v1/calls", "control", nil).problem(t, 400, "body")
	r.call("POST", "/v1/calls", "control", `{"agent":"101","to":"600","extra":1}`).problem(t, 400, "extra")
	r.call("POST", "/v1/calls", "control", `{"agent":"101","to":600}`).problem(t, 400, "to")
	r.call("POST", "/v1/calls", "control", `{"agent":"101","to":"600"} {}`).problem(t, 400, "body")
	r.call("POST", "/v1/calls", "control", `{"agent":"101","to":"600","timeout_s":1}`).problem(t, 400, "timeout_s")
	r.call("POST", "/v1/calls", "control", `{"agent":"101","to":"600"}`, "Content-Type", "text/plain").problem(t, 415, "Content-Type")
	big := `{"agent":"101","to":"600","caller_id":"` + strings.Repeat("x", 70<<10) + `"}`
	r.call("POST", "/v1/calls", "control", big).problem(t, 413, "")
	r.call("GET", "/v1/nothing", "read", nil).problem(t, 404, "")
	if n := len(originates(r)); n != 0 {
		t.Fatalf("%d originates", n)
	}
}

// A recording larger than the socket buffers reaches a slow client whole.
// The write bound is per chunk (see TestRecordingDeadlinePerChunk, which
// proves it without timing); here it is generous, so a loaded machine's
// scheduling pauses cannot cut the transfer: this checks the bytes.
func TestRecordingSlowClient(t *testing.T) {
	defer apihttp.SetWriteTimeout(30 * time.Second)()
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef"), 24<<20/16) // 24 MiB, beyond the socket buffers
	if err := os.WriteFile(filepath.Join(dir, "long.wav"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{
		setup: func(s *apihttp.Server) { s.RecordingsDir = dir },
		preload: func(db *store.DB) {
			storeCalls(t, db, bridge.Call{ID: "conv_long", Direction: bridge.DirectionInbound, StartedAt: t0,
				Recording: &bridge.Recording{Path: filepath.Join(dir, "long.wav")}})
		}})
	req, _ := nethttp.NewRequest("GET", r.base+"/v1/calls/conv_long/recording", nil)
	req.Header.Set("Authorization", "Bearer "+r.keys["read"])
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// A slow reader: 128 KiB, then a pause.
	var got bytes.Buffer
	buf := make([]byte, 128<<10)
	for {
		n, err := io.ReadFull(res.Body, buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.Len() != len(content) || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("got %d of %d bytes", got.Len(), len(content))
	}
}

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// The recording's write bound is per chunk: every chunk handed to the
// writer first pushes the connection's write deadline a whole bound past
// now, so a long recording is never cut by a bound on the whole response.
func TestRecordingDeadlinePerChunk(t *testing.T) {
	conn := &deadlineConn{}
	const bound = time.Hour
	rd := apihttp.NewDeadlineReader(bytes.NewReader(make([]byte, 3<<10)), conn, bound)
	buf := make([]byte, 1<<10)
	for i := range 3 {
		before := time.Now()
		if n, err := rd.Read(buf); n != len(buf) || err != nil {
			t.Fatalf("read %d: %d %v", i, n, err)
		}
		if len(conn.deadlines) != i+1 || conn.deadlines[i].Before(before.Add(bound)) {
			t.Fatalf("chunk %d: deadlines %v, want one per chunk, each a bound past its read", i, conn.deadlines)
		}
	}
}
