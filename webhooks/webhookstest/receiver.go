// Package webhookstest provides a webhook receiver that verifies Standard
// Webhooks signatures, for tests and for the `ctibridge demo` command, and a
// fake clock for the dispatcher.
package webhookstest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/webhooks"
)

// TB is the part of testing.TB the receiver uses; taking an interface keeps
// the testing package out of binaries that use NewServer.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Delivery is one request the receiver got.
type Delivery struct {
	ID             string // webhook-id
	Type           string
	ConversationID string
	Sequence       int64
	Body           map[string]any // the JSON body, parsed; nil if it is not JSON
	Raw            []byte
	Header         http.Header
	At             time.Time // arrival
	Status         int       // what the receiver answered
	Err            error     // why the signature was refused, if it was
	// Arrived and Answered number arrivals and answers on one counter, so
	// tests can tell whether a request came in before another was answered.
	Arrived, Answered int
}

// OK reports whether the receiver acknowledged the request with a 2xx.
func (d Delivery) OK() bool { return d.Status/100 == 2 }

// Response scripts how the receiver answers a request with a valid signature.
type Response struct {
	Status     int    // 0 means 200
	RetryAfter string // Retry-After header value
	Location   string // Location header value, for redirects
	// Hang holds the request until Release is called (or the client gives
	// up); it is then answered with Status.
	Hang bool
	// Delay answers after this long: a slow endpoint.
	Delay time.Duration
}

// Receiver is a real HTTP server that accepts webhooks.
type Receiver struct {
	URL string // http://127.0.0.1:port/webhook

	secret     string
	tb         TB
	srv        *http.Server
	ln         net.Listener
	onDelivery func(Delivery)

	mu        sync.Mutex
	n         int
	reqs      []Delivery
	script    []Response
	respond   func(Delivery) Response
	now       func() time.Time
	tolerance time.Duration
	release   chan struct{}
	hanging   int
	closed    bool
	changed   chan struct{} // closed and replaced on every change
}

// NewReceiver starts a receiver on 127.0.0.1 for a test; it is closed when
// the test ends.
func NewReceiver(tb TB, secret string) *Receiver {
	tb.Helper()
	r, err := NewServer("127.0.0.1:0", secret, nil)
	if err != nil {
		tb.Fatalf("webhookstest: %v", err)
	}
	r.tb = tb
	tb.Cleanup(func() { r.Close() })
	return r
}

// NewServer starts a receiver on addr (host:port; port 0 picks one). When
// onDelivery is set it sees every request, valid or not, after it is
// answered. Close it when done.
func NewServer(addr, secret string, onDelivery func(Delivery)) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		URL:        "http://" + ln.Addr().String() + "/webhook",
		secret:     secret,
		ln:         ln,
		onDelivery: onDelivery,
		now:        time.Now,
		release:    make(chan struct{}),
		changed:    make(chan struct{}),
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// Close releases hung requests and stops the server.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.release)
	r.mu.Unlock()
	return r.srv.Close()
}

// Script queues responses for the next valid requests, in order; once they
// are used up the Respond function (or 200) answers.
func (r *Receiver) Script(rs ...Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, rs...)
}

// Respond sets a function choosing the answer to each valid request that
// no Script entry answers. It runs on the request's goroutine.
func (r *Receiver) Respond(fn func(Delivery) Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = fn
}

// Release answers every request hanging now. Later Hang responses hang again.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		close(r.release)
		r.release = make(chan struct{})
	}
}

// SetNow sets the clock signatures' timestamps are checked against (the
// dispatcher's fake clock in tests); tolerance 0 means the default.
func (r *Receiver) SetNow(now func() time.Time, tolerance time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now, r.tolerance = now, tolerance
}

// Requests returns every request answered so far, in answer order.
func (r *Receiver) Requests() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.reqs...)
}

// Deliveries returns the requests acknowledged with a 2xx, in answer order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries()
}

func (r *Receiver) deliveries() []Delivery {
	var ds []Delivery
	for _, d := range r.reqs {
		if d.OK() {
			ds = append(ds, d)
		}
	}
	return ds
}

// Hanging returns how many requests are held by a Hang response now.
func (r *Receiver) Hanging() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hanging
}

// WaitFor waits until at least n deliveries were acknowledged and returns
// them all. On timeout it returns what there is (and fails the test, for a
// receiver made by NewReceiver).
func (r *Receiver) WaitFor(n int, timeout time.Duration) []Delivery {
	ok := r.wait(timeout, func() bool { return len(r.deliveries()) >= n })
	ds := r.Deliveries()
	if !ok && r.tb != nil {
		r.tb.Helper()
		r.tb.Errorf("webhookstest: %d deliveries after %s, want %d", len(ds), timeout, n)
	}
	return ds
}

// WaitForRequests waits until at least n requests were answered, whatever
// the answer, and returns them all.
func (r *Receiver) WaitForRequests(n int, timeout time.Duration) []Delivery {
	ok := r.wait(timeout, func() bool { return len(r.reqs) >= n })
	ds := r.Requests()
	if !ok && r.tb != nil {
		r.tb.Helper()
		r.tb.Errorf("webhookstest: %d requests after %s, want %d", len(ds), timeout, n)
	}
	return ds
}

// WaitHanging waits until at least n requests hang, and reports whether
// they did in time.
func (r *Receiver) WaitHanging(n int, timeout time.Duration) bool {
	return r.wait(timeout, func() bool { return r.hanging >= n })
}

// wait polls cond (called with r.mu held) on every change until timeout.
func (r *Receiver) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// notify wakes waiters; r.mu must be held.
func (r *Receiver) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// ServeHTTP verifies and records one webhook.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(req.Body, 10<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	d := Delivery{Raw: raw, Header: req.Header.Clone(), At: time.Now(), ID: req.Header.Get(webhooks.HeaderID)}
	var head struct {
		Type           string `json:"type"`
		ConversationID string `json:"conversation_id"`
		Sequence       int64  `json:"sequence"`
	}
	if json.Unmarshal(raw, &d.Body) == nil {
		json.Unmarshal(raw, &head)
		d.Type, d.ConversationID, d.Sequence = head.Type, head.ConversationID, head.Sequence
	}

	r.mu.Lock()
	r.n++
	d.Arrived = r.n
	now, tol := r.now, r.tolerance
	r.mu.Unlock()

	var resp Response
	if req.Method != http.MethodPost {
		d.Err = errors.New("method " + req.Method + ", want POST")
		resp.Status = http.StatusMethodNotAllowed
	} else if err := webhooks.Verify(r.secret, req.Header, raw, tol, now()); err != nil {
		d.Err = err
		resp.Status = http.StatusBadRequest
	} else {
		resp = r.next(d)
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Hang {
		r.hang(req.Context())
	}
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
		}
		t.Stop()
	}
	if resp.RetryAfter != "" {
		w.Header().Set("Retry-After", resp.RetryAfter)
	}
	if resp.Location != "" {
		w.Header().Set("Location", resp.Location)
	}

	d.Status = resp.Status
	r.mu.Lock()
	r.n++
	d.Answered = r.n
	r.reqs = append(r.reqs, d)
	r.notify()
	r.mu.Unlock()
	// Record before answering: once the client has the answer it may act on
	// it, and tests compare what it did with what was recorded.
	w.WriteHeader(resp.Status)
	if d.Err != nil {
		io.WriteString(w, d.Err.Error())
	}
	if r.onDelivery != nil {
		r.onDelivery(d)
	}
}

func (r *Receiver) next(d Delivery) Response {
	r.mu.Lock()
	if len(r.script) > 0 {
		resp := r.script[0]
		r.script = r.script[1:]
		r.mu.Unlock()
		return resp
	}
	fn := r.respond
	r.mu.Unlock()
	if fn != nil {
		return fn(d)
	}
	return Response{}
}

func (r *Receiver) hang(ctx context.Context) {
	r.mu.Lock()
	ch := r.release
	r.hanging++
	r.notify()
	r.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	r.mu.Lock()
	r.hanging--
	r.notify()
	r.mu.Unlock()
}
