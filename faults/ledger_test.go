package faults

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// hit is one webhook request as a receiver saw it, reduced to what the
// checks need, so a long run holds a million of them.
type hit struct {
	ID       string
	Type     string
	Conv     string
	Seq      int64
	Agent    string // agent.extension (the screen pop's agent)
	Resynced bool
	Status   int       // what the receiver answered
	N        int       // arrival order, one counter per receiver
	At       time.Time // arrival
}

func (h hit) ok() bool { return h.Status/100 == 2 }

type eventHead struct {
	Type     string `json:"type"`
	Conv     string `json:"conversation_id"`
	Sequence int64  `json:"sequence"`
	Resynced bool   `json:"resynced"`
	Agent    *struct {
		Extension string `json:"extension"`
	} `json:"agent"`
}

func headOf(id string, raw []byte) hit {
	var e eventHead
	_ = json.Unmarshal(raw, &e)
	h := hit{ID: id, Type: e.Type, Conv: e.Conv, Seq: e.Sequence, Resynced: e.Resynced}
	if e.Agent != nil {
		h.Agent = e.Agent.Extension
	}
	return h
}

// ledger is a compact webhook receiver: it verifies every signature with
// webhooks.Verify and keeps a hit per request. Scenarios that need scripted
// answers (429, hang) use webhookstest.Receiver instead; this one is for
// volume (the crash loop, a million-event backlog).
type ledger struct {
	URL    string
	secret string
	ln     net.Listener
	srv    *http.Server

	mu      sync.Mutex
	hits    []hit
	n       int
	bad     int                 // requests with a bad signature
	respond func(h hit) int     // status for a valid request; nil: 200
	changed chan struct{}       // closed and replaced on every request
	ids     map[string]struct{} // acknowledged ids
}

func newLedger(t testing.TB, secret string) *ledger {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{URL: "http://" + ln.Addr().String() + "/hook", secret: secret, ln: ln,
		changed: make(chan struct{}), ids: map[string]struct{}{}}
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	go l.srv.Serve(ln)
	t.Cleanup(func() { l.srv.Close() })
	return l
}

func (l *ledger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(400)
		return
	}
	h := headOf(r.Header.Get(webhooks.HeaderID), raw)
	h.At = time.Now()
	valid := webhooks.Verify(l.secret, r.Header, raw, 0, time.Now()) == nil
	l.mu.Lock()
	l.n++
	h.N = l.n
	fn := l.respond
	l.mu.Unlock()
	switch {
	case !valid:
		h.Status = 400
	case fn != nil:
		h.Status = fn(h)
	default:
		h.Status = 200
	}
	// Record before answering: once the bridge has the answer it may act.
	l.mu.Lock()
	if !valid {
		l.bad++
	}
	l.hits = append(l.hits, h)
	if h.ok() {
		l.ids[h.ID] = struct{}{}
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	w.WriteHeader(h.Status)
}

func (l *ledger) setRespond(fn func(h hit) int) {
	l.mu.Lock()
	l.respond = fn
	l.mu.Unlock()
}

func (l *ledger) snapshot() []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hit(nil), l.hits...)
}

// acked is the number of distinct ids acknowledged.
func (l *ledger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

func (l *ledger) badSignatures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bad
}

// has reports whether every id was acknowledged.
func (l *ledger) has(ids []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if _, ok := l.ids[id]; !ok {
			return false
		}
	}
	return true
}

// fromReceiver converts webhookstest deliveries (answer order) to hits.
func fromReceiver(ds []webhookstest.Delivery) []hit {
	out := make([]hit, 0, len(ds))
	for _, d := range ds {
		h := headOf(d.ID, d.Raw)
		h.Status, h.N, h.At = d.Status, d.Arrived, d.At
		if d.Err != nil {
			h.Status = 400
		}
		out = append(out, h)
	}
	return out
}
