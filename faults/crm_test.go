package faults

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// crmEnv is a child with an idle Asterisk simulator and the endpoints given.
type crmEnv struct {
	sim *amitest.Server
	p   *proc
	db  string
	// played is how many channel events the calls played so far make; the
	// child has ingested them all once its counter reaches it.
	played int
}

func startCRM(t *testing.T, eps []endpoint, tweak func(*conf)) *crmEnv {
	t.Helper()
	dir := t.TempDir()
	sim := amitest.NewTestServer(t, amitest.ServerOptions{})
	cfg := conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: filepath.Join(dir, "ctibridge.db"), Endpoints: eps}
	if tweak != nil {
		tweak(&cfg)
	}
	p := startProc(t, dir, cfg, procOpts{})
	if !waitFor(10*time.Second, p.ready) {
		t.Fatalf("not ready\n%s", p.log.tail(3000))
	}
	return &crmEnv{sim: sim, p: p, db: cfg.DB}
}

// playCalls plays n rewritten calls from the mix, one after another.
func (e *crmEnv) playCalls(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		name := amiMix[i%len(amiMix)]
		if err := e.sim.Play(name, amitest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
		e.played += channelEvents(t, name)
	}
}

// ingested waits until the child has handled every channel event of the
// calls played: the simulator's writes returning says only that the bytes
// are in a socket buffer.
func (e *crmEnv) ingested(timeout time.Duration) bool {
	return waitFor(timeout, func() bool {
		m := e.p.metrics()
		return m != nil && m["ctibridge_pbx_events_ingested_total"] >= float64(e.played) && m["ctibridge_engine_queue_length"] == 0
	})
}

// drained waits until every call played is ingested, nothing is pending and
// the engine is idle.
func (e *crmEnv) drained(timeout time.Duration) bool {
	return waitFor(timeout, func() bool {
		m := e.p.metrics()
		return m != nil && m["ctibridge_pbx_events_ingested_total"] >= float64(e.played) &&
			m["ctibridge_delivery_backlog"] == 0 && m["ctibridge_engine_queue_length"] == 0 &&
			m["ctibridge_events_committed_total"] > 0
	})
}

var channelEventCounts sync.Map // capture name -> int

// channelEvents is how many channel events the product's AMI mapper makes
// of a capture, i.e. what its ingest counter adds when the call is played.
func channelEvents(t *testing.T, name string) int {
	if n, ok := channelEventCounts.Load(name); ok {
		return n.(int)
	}
	sink := &countSink{}
	m := ami.NewMapper(context.Background(), sink, nil, slog.New(slog.DiscardHandler))
	for _, f := range amitest.Frames(name) {
		if !f.IsEvent() {
			continue
		}
		msg, err := f.Message()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.Message(msg)
	}
	channelEventCounts.Store(name, sink.n)
	return sink.n
}

type countSink struct{ n int }

func (*countSink) LinkUp(int)                                {}
func (*countSink) LinkDown(error)                            {}
func (*countSink) Snapshot([]bridge.Channel, time.Time)      {}
func (s *countSink) ChannelEvents(evs []bridge.ChannelEvent) { s.n += len(evs) }

// finish stops the child and checks one endpoint's deliveries against the
// store.
func (e *crmEnv) finish(t *testing.T, endpoint string, hits []hit, c checks) verdict {
	t.Helper()
	if err := e.p.term(); err != nil {
		t.Errorf("stop: %v", err)
	}
	events, integrity := readStore(t, e.db, endpoint)
	if integrity != "ok" {
		t.Errorf("integrity_check: %s", integrity)
	}
	v := analyse(events, hits, c)
	assertVerdict(t, endpoint, v)
	return v
}

func badSignatures(t *testing.T, rs ...*webhookstest.Receiver) {
	for _, r := range rs {
		for _, d := range r.Requests() {
			if d.Err != nil {
				t.Errorf("webhook %s refused by the receiver: %v", d.ID, d.Err)
				return
			}
		}
	}
}

// TestCRMOutage: the endpoint's listener is gone (connection refused) for
// a long outage while calls go on, then comes back on the same address:
// the backlog drains, in order, and nothing is lost. Backoff is not
// configurable (see the report), so the outage is real time.
func TestCRMOutage(t *testing.T) {
	t.Parallel()
	outage := time.Duration(count("CTIBRIDGE_FAULTS_OUTAGE_S", 4, 60)) * time.Second
	secret := bridge.NewWebhookSecret()
	up, err := webhookstest.NewServer("127.0.0.1:0", secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(up.URL, "http://"), "/webhook")
	e := startCRM(t, []endpoint{{"crm", up.URL, secret}}, nil)
	work := amiLoad(t, e.sim, 2, 3*time.Millisecond)
	time.Sleep(time.Second)
	up.Close()
	time.Sleep(outage)
	work.Stop()
	pending := e.p.metrics()["ctibridge_delivery_backlog"]
	if pending == 0 {
		t.Fatal("nothing pending after the outage: the endpoint was never down")
	}
	back, err := webhookstest.NewServer(addr, secret, nil)
	if err != nil {
		t.Fatalf("rebinding %s: %v", addr, err)
	}
	defer back.Close()
	start := time.Now()
	if !e.drained(2*outage + 30*time.Second) {
		t.Errorf("backlog not drained within %s of the endpoint's return", 2*outage+30*time.Second)
	}
	recovery := time.Since(start)
	// Full-jitter exponential backoff: the first retry after the return
	// comes at most about one outage later.
	if recovery > 2*outage+5*time.Second {
		t.Errorf("drain took %s after a %s outage", recovery, outage)
	}
	// Once one delivery succeeds, every delivery waiting out a backoff goes
	// at once: the drain at the returned endpoint spans its own send time
	// (ms for a few hundred events), not further backoffs (seconds).
	var first, last time.Time
	for _, d := range back.Deliveries() {
		if first.IsZero() || d.At.Before(first) {
			first = d.At
		}
		if d.At.After(last) {
			last = d.At
		}
	}
	span := last.Sub(first)
	if first.IsZero() {
		t.Error("nothing delivered to the returned endpoint")
	} else if span > 3*time.Second {
		t.Errorf("after the first delivery to the returned endpoint the rest took %s more: they waited out their backoff", span)
	}
	badSignatures(t, up, back)
	hits := append(fromReceiver(up.Requests()), fromReceiver(back.Requests())...)
	// The receivers number arrivals separately: the second one comes after.
	for i := range hits[len(up.Requests()):] {
		hits[len(up.Requests())+i].N += 1 << 30
	}
	v := e.finish(t, "crm", hits, allChecks)
	record("crm outage (connection refused)", 1, v, recovery,
		fmt.Sprintf("outage %s, %d deliveries pending at its end, sent within %s of the first success; recovery = endpoint back to backlog 0",
			outage, int(pending), span.Round(time.Millisecond)))
}

// TestCRMErrors: 500s, 429 with Retry-After, a very slow endpoint. Each
// retries until delivered, per-conversation order holds, and Retry-After
// is honoured (not earlier, not much later).
func TestCRMErrors(t *testing.T) {
	t.Parallel()
	calls := count("CTIBRIDGE_FAULTS_CALLS", 12, 200)
	t.Run("500", func(t *testing.T) {
		t.Parallel()
		secret := bridge.NewWebhookSecret()
		rcv := webhookstest.NewReceiver(t, secret)
		var mu sync.Mutex
		tries := map[string]int{}
		rcv.Respond(func(d webhookstest.Delivery) webhookstest.Response {
			mu.Lock()
			defer mu.Unlock()
			if tries[d.ID]++; tries[d.ID] <= 2 { // every event fails twice
				return webhookstest.Response{Status: 500}
			}
			return webhookstest.Response{}
		})
		e := startCRM(t, []endpoint{{"crm", rcv.URL, secret}}, nil)
		start := time.Now()
		e.playCalls(t, calls)
		if !e.drained(60 * time.Second) {
			t.Error("not drained within 60s")
			dumpPending(t, e.db)
		}
		badSignatures(t, rcv)
		v := e.finish(t, "crm", fromReceiver(rcv.Requests()), allChecks)
		record("crm 500 (first 2 tries of each event)", 1, v, time.Since(start), "recovery = first call to backlog 0")
	})
	t.Run("429", func(t *testing.T) {
		t.Parallel()
		secret := bridge.NewWebhookSecret()
		rcv := webhookstest.NewReceiver(t, secret)
		var n atomic.Int64
		rcv.Respond(func(webhookstest.Delivery) webhookstest.Response {
			if n.Add(1)%4 == 1 {
				return webhookstest.Response{Status: 429, RetryAfter: "2"}
			}
			return webhookstest.Response{}
		})
		e := startCRM(t, []endpoint{{"crm", rcv.URL, secret}}, nil)
		start := time.Now()
		e.playCalls(t, calls)
		if !e.drained(60 * time.Second) {
			t.Error("not drained within 60s")
		}
		badSignatures(t, rcv)
		reqs := rcv.Requests()
		throttled := 0
		for i, d := range reqs {
			if d.Status != 429 {
				continue
			}
			throttled++
			j := slices.IndexFunc(reqs[i+1:], func(x webhookstest.Delivery) bool { return x.ID == d.ID })
			if j < 0 {
				t.Errorf("%s: no retry after the 429", d.ID)
				continue
			}
			// Retry-After: 2 is whole seconds; the dispatcher's clock and the
			// receiver's differ by a few ms.
			if wait := reqs[i+1+j].At.Sub(d.At); wait < 1900*time.Millisecond || wait > 6*time.Second {
				t.Errorf("%s retried %s after a 429 with Retry-After: 2", d.ID, wait)
			}
		}
		if throttled == 0 {
			t.Error("no 429 was answered")
		}
		v := e.finish(t, "crm", fromReceiver(reqs), allChecks)
		record("crm 429 Retry-After: 2 (1 in 4)", 1, v, time.Since(start), "recovery = first call to backlog 0")
	})
	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		secret := bridge.NewWebhookSecret()
		rcv := webhookstest.NewReceiver(t, secret)
		rcv.Respond(func(webhookstest.Delivery) webhookstest.Response {
			return webhookstest.Response{Delay: 300 * time.Millisecond}
		})
		e := startCRM(t, []endpoint{{"crm", rcv.URL, secret}}, nil)
		start := time.Now()
		e.playCalls(t, calls)
		if !e.drained(120 * time.Second) {
			t.Error("not drained within 120s")
		}
		badSignatures(t, rcv)
		v := e.finish(t, "crm", fromReceiver(rcv.Requests()), allChecks)
		record("crm slow (300 ms per answer)", 1, v, time.Since(start), "recovery = first call to backlog 0")
	})
}

// TestCRMGone: an endpoint answering 410 is disabled (in /metrics and the
// log) and no request starts for it once its answer is in; another
// endpoint is unaffected.
func TestCRMGone(t *testing.T) {
	t.Parallel()
	secret := bridge.NewWebhookSecret()
	gone := webhookstest.NewReceiver(t, secret)
	gone.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Status: 410} })
	ok := webhookstest.NewReceiver(t, secret)
	e := startCRM(t, []endpoint{{"gone", gone.URL, secret}, {"crm", ok.URL, secret}}, nil)
	e.playCalls(t, 4)
	if !waitFor(10*time.Second, func() bool { return e.p.metrics()["ctibridge_endpoints_disabled_total"] == 1 }) {
		t.Errorf("ctibridge_endpoints_disabled_total never reached 1: %v", e.p.metrics())
	}
	e.playCalls(t, 4)
	if !e.ingested(20 * time.Second) {
		t.Errorf("the calls were not ingested: %v", e.p.metrics())
	}
	if !waitFor(20*time.Second, func() bool { return pendingFor(t, e.db, "crm") == 0 }) {
		t.Error("the healthy endpoint's deliveries did not drain")
	}
	reqs := gone.Requests()
	if len(reqs) == 0 {
		t.Fatal("the gone endpoint got no request")
	}
	// Requests already in flight when the first 410 came may get theirs
	// too; none may start well after it.
	for _, d := range reqs[1:] {
		if d.At.Sub(reqs[0].At) > 500*time.Millisecond {
			t.Errorf("request %s to the gone endpoint %s after its first 410", d.ID, d.At.Sub(reqs[0].At))
		}
	}
	if !strings.Contains(e.p.log.String(), `"msg":"webhook endpoint disabled","endpoint":"gone"`) {
		t.Error("no log line for the disabled endpoint")
	}
	v := e.finish(t, "crm", fromReceiver(ok.Requests()), allChecks)
	record("crm 410 (one of two endpoints)", 1, v, 0,
		fmt.Sprintf("gone endpoint: %d request(s) in flight at its first 410, then disabled; the other delivered all", len(reqs)))
}

// Events committed while an endpoint is being disabled must not leave
// deliveries to it pending for ever (they count in the backlog metric and
// are never attempted).
func TestCRMGoneLeavesNothingPending(t *testing.T) {
	t.Parallel()
	secret := bridge.NewWebhookSecret()
	gone := webhookstest.NewReceiver(t, secret)
	var goneNow atomic.Bool // the CRM goes away under load
	gone.Respond(func(webhookstest.Delivery) webhookstest.Response {
		if goneNow.Load() {
			return webhookstest.Response{Status: 410}
		}
		return webhookstest.Response{}
	})
	ok := webhookstest.NewReceiver(t, secret)
	e := startCRM(t, []endpoint{{"gone", gone.URL, secret}, {"crm", ok.URL, secret}}, nil)
	work := amiLoad(t, e.sim, 4, 0)
	time.Sleep(time.Second)
	goneNow.Store(true)
	time.Sleep(time.Second)
	work.Stop()
	if !e.drained(20 * time.Second) {
		t.Errorf("backlog stuck at %v", e.p.metrics()["ctibridge_delivery_backlog"])
	}
	if err := e.p.term(); err != nil {
		t.Error(err)
	}
	events, _ := readStore(t, e.db, "gone")
	pending := 0
	for _, ev := range events {
		if ev.Status == "pending" {
			pending++
		}
	}
	if pending > 0 {
		t.Errorf("%d of %d deliveries to the disabled endpoint left pending", pending, len(events))
	}
}

// TestCRMHungEndpoint: one endpoint hangs every request until the delivery
// timeout; a healthy endpoint's screen-pop latency must stay about what it
// is without the hung one.
func TestCRMHungEndpoint(t *testing.T) {
	t.Parallel()
	calls := count("CTIBRIDGE_FAULTS_CALLS", 12, 200)
	secret := bridge.NewWebhookSecret()
	var hang atomic.Bool
	hung := webhookstest.NewReceiver(t, secret)
	hung.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Hang: hang.Load()} })
	healthy := webhookstest.NewReceiver(t, secret)
	e := startCRM(t, []endpoint{{"hung", hung.URL, secret}, {"crm", healthy.URL, secret}}, nil)

	// pops times each call's screen pop at the healthy endpoint, from the
	// moment the simulator starts writing the call.
	pops := func() []time.Duration {
		var lat []time.Duration
		for range calls {
			before := countType(healthy.Deliveries(), "call.ringing")
			start := time.Now()
			if err := e.sim.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true}); err != nil {
				t.Fatal(err)
			}
			if !waitFor(10*time.Second, func() bool { return countType(healthy.Deliveries(), "call.ringing") > before }) {
				t.Fatal("no screen pop at the healthy endpoint within 10s")
			}
			ds := healthy.Deliveries()
			lat = append(lat, ds[lastIndexType(ds, "call.ringing")].At.Sub(start))
		}
		slices.Sort(lat)
		return lat
	}
	base := pops()
	hang.Store(true)
	e.playCalls(t, 6) // fill the hung endpoint's request slots
	if !hung.WaitHanging(6, 10*time.Second) {
		t.Fatalf("the hung endpoint holds %d requests", hung.Hanging())
	}
	with := pops()
	hanging := hung.Hanging()
	hang.Store(false)
	hung.Release()
	if !e.drained(60 * time.Second) {
		t.Error("not drained after the hung endpoint recovered")
	}
	b50, w50, w95 := base[len(base)/2], with[len(with)/2], with[len(with)*95/100]
	t.Logf("healthy endpoint screen pop: p50 %s without a hung endpoint, p50 %s / p95 %s with one (%d requests hanging)",
		b50, w50, w95, hanging)
	if w50 > 3*b50+200*time.Millisecond {
		t.Errorf("healthy endpoint slowed by a hung one: p50 %s, %s without", w50, b50)
	}
	badSignatures(t, hung, healthy)
	v := e.finish(t, "crm", fromReceiver(healthy.Requests()), allChecks)
	// The hung endpoint loses nothing either: once it answers, all its
	// events arrive, in order per conversation (a request that timed out is
	// retried under the same webhook-id).
	events, _ := readStore(t, e.db, "hung")
	assertVerdict(t, "hung", analyse(events, fromReceiver(hung.Requests()), allChecks))
	record("crm hung endpoint (healthy one measured)", calls, v, 0,
		fmt.Sprintf("healthy pop latency p50 %s alone, p50 %s / p95 %s beside a hung endpoint (%d requests hanging)",
			b50.Round(100*time.Microsecond), w50.Round(100*time.Microsecond), w95.Round(100*time.Microsecond), hanging))
}

func countType(ds []webhookstest.Delivery, typ string) int {
	n := 0
	for _, d := range ds {
		if d.Type == typ {
			n++
		}
	}
	return n
}

func lastIndexType(ds []webhookstest.Delivery, typ string) int {
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Type == typ {
			return i
		}
	}
	return -1
}

// dumpPending logs the pending deliveries and their attempts, to tell a
// slow retry from a stuck one.
func dumpPending(t *testing.T, path string) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Log(err)
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT d.endpoint_id, e.id, e.type, e.sequence, d.attempts, d.next_attempt_at, d.first_tried_at,
		(SELECT count(*) FROM attempts a WHERE a.event_id = e.id AND a.endpoint_id = d.endpoint_id)
		FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.status = 'pending' ORDER BY e.seq LIMIT 20`)
	if err != nil {
		t.Log(err)
		return
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var ep, id, typ string
		var seq, attempts, next, first, logged int64
		rows.Scan(&ep, &id, &typ, &seq, &attempts, &next, &first, &logged)
		t.Logf("pending %s %s %s #%d: %d attempts (%d logged), first %s ago, next in %s", ep, id, typ, seq, attempts, logged,
			now.Sub(time.Unix(0, first)).Round(time.Millisecond), time.Unix(0, next).Sub(now).Round(time.Millisecond))
	}
}

// pendingFor counts an endpoint's pending deliveries in a live store.
func pendingFor(t *testing.T, path, endpoint string) int {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM deliveries WHERE endpoint_id = ? AND status = 'pending'`, endpoint).Scan(&n); err != nil {
		return -1
	}
	return n
}
