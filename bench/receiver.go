package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/webhooks"
)

// receiver is the CRM: a real HTTP server that verifies each webhook's
// signature (webhooks.Verify) and times it against the frame that caused
// it. webhookstest.Receiver is not used: it keeps every request with its
// parsed body, gigabytes for a 1M backlog, and parses each body twice.
type receiver struct {
	URL    string
	secret string
	srv    *http.Server
	hang   bool // never answer: the hung endpoint

	calls atomic.Pointer[map[string]*call] // by tag

	ok, bad, unmatched atomic.Int64

	mu          sync.Mutex
	first, last time.Time
	lat         map[string][]time.Duration // pop, release, all (+ "@phase")
}

func newReceiver(secret string, hang bool) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{URL: "http://" + ln.Addr().String() + "/hook", secret: secret, hang: hang,
		lat: map[string][]time.Duration{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) close() { r.srv.Close() } // idempotent

func (r *receiver) count() int64 { return r.ok.Load() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	now := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.hang {
		<-req.Context().Done()
		return
	}
	if err := webhooks.Verify(r.secret, req.Header, body, 0, now); err != nil {
		r.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.record(body, now)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) record(body []byte, now time.Time) {
	typ := jsonString(body, `"type":"`)
	seq, _ := strconv.ParseInt(jsonNumber(body, `"sequence":`), 10, 64)
	var lat time.Duration
	matched, phase := false, ""
	if c := r.lookup(body); c != nil {
		phase = c.phase
		if i, ok := c.tpl.trigger[typ+"/"+strconv.FormatInt(seq, 10)]; ok && i < len(c.sent) {
			if ts := c.sent[i].Load(); ts != 0 {
				lat, matched = now.Sub(time.Unix(0, ts)), true
			}
		}
	}
	r.ok.Add(1)
	if !matched {
		r.unmatched.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
	if matched {
		cats := []string{"all"}
		switch typ {
		case "call.ringing":
			cats = append(cats, "pop")
		case "call.ended":
			cats = append(cats, "release")
		}
		for _, k := range cats {
			r.lat[k] = append(r.lat[k], lat)
			if phase != "" {
				r.lat[k+"@"+phase] = append(r.lat[k+"@"+phase], lat)
			}
		}
	}
}

// lookup finds the call a webhook belongs to by its tag, the external
// party's number.
func (r *receiver) lookup(body []byte) *call {
	calls := r.calls.Load()
	if calls == nil {
		return nil
	}
	for _, k := range []string{`"caller":{"number":"`, `"callee":{"number":"`} {
		if c := (*calls)[jsonString(body, k)]; c != nil {
			return c
		}
	}
	return nil
}

// snapshot returns the latencies and the delivery window so far.
func (r *receiver) snapshot() (map[string][]time.Duration, time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]time.Duration{}
	for k, v := range r.lat {
		out[k] = append([]time.Duration(nil), v...)
	}
	return out, r.first, r.last
}

func (r *receiver) reset(calls map[string]*call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls.Store(&calls)
	r.lat = map[string][]time.Duration{}
	r.first, r.last = time.Time{}, time.Time{}
	r.ok.Store(0)
	r.bad.Store(0)
	r.unmatched.Store(0)
}

// jsonString returns the string value after key's first occurrence. The
// payloads are ctibridge's own compact JSON: a scan is enough and keeps the
// receiver cheap next to the process under test.
func jsonString(b []byte, key string) string {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return ""
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return ""
	}
	return string(b[:j])
}

func jsonNumber(b []byte, key string) string {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return ""
	}
	b = b[i+len(key):]
	j := 0
	for j < len(b) && isDigit(b[j]) {
		j++
	}
	return string(b[:j])
}
