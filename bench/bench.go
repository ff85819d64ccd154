// Package bench is ctibridge's load harness. It drives the AMI and ESL
// simulators with rewritten real captures into a real `ctibridge serve`
// process (its own config file and SQLite file), delivering to a local
// receiver that verifies every signature, and measures the same work done
// raw on the same machine in the same run: read+parse over loopback,
// SQLite inserts through the store, plain net/http POSTs.
//
// Latency is end to end: from the simulator writing the frame that causes
// a webhook to the receiver having it. Which frame causes which webhook is
// learnt per capture by running the adapter's translation and the tracker
// in-process frame by frame (calibrate); each call carries a unique
// external number (its tag) that every webhook of it repeats.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/internal/serveproc"

	"github.com/ctibridge/ctibridge/store"
)

// Scenarios, in the order they run.
var Scenarios = []string{"baseline", "max", "steady", "bursts", "floor", "burst", "hung", "backlog", "live"}

// Options shape a run. Zero values take the defaults of DefaultOptions.
type Options struct {
	Bin       string   // ctibridge binary; "" builds cmd/ctibridge
	PBX       []string // asterisk, freeswitch
	Sync      []string // store.synchronous values: FULL, NORMAL
	Scenarios []string
	Rates     []float64     // calls/s of the steady sweep
	Rate      float64       // calls/s of burst and hung
	Duration  time.Duration // length of a steady, burst or hung run
	// Concurrency is the calls in progress at once in steady runs: each
	// call's frames are spread over Concurrency/rate seconds. 0 uses CallLen.
	Concurrency int
	CallLen     time.Duration
	MaxCalls    int // calls blasted by the max scenario
	// HungPairs is how many interleaved pairs of runs (healthy alone, and
	// with a hung endpoint) the hung scenario compares; below 1 means 1.
	HungPairs int
	Backlog   int     // pending deliveries pre-loaded by the backlog scenario
	Live      int     // calls held open by the live scenario
	LiveRate  float64 // calls/s at which they are opened
	// BaselineRows is how many webhook rows the store and POST baselines
	// write (default 20,000).
	BaselineRows int
	Log          io.Writer
}

// DefaultOptions is the full run.
func DefaultOptions() Options {
	return Options{
		PBX: []string{"asterisk", "freeswitch"}, Sync: []string{"FULL", "NORMAL"}, Scenarios: Scenarios,
		Rates: []float64{50, 100, 200, 400}, Rate: 200, Duration: 10 * time.Second, CallLen: 2 * time.Second,
		MaxCalls: 3000, HungPairs: 4, Backlog: 1_000_000, Live: 10_000, LiveRate: 250, BaselineRows: 20000, Log: io.Discard,
	}
}

// Result is one run of ctibridge.
type Result struct {
	Scenario    string  `json:"scenario"`
	PBX         string  `json:"pbx"`
	Sync        string  `json:"sync"`
	Rate        float64 `json:"rate_calls_per_s"` // offered; 0 = as fast as possible
	Calls       int     `json:"calls"`
	Concurrency int     `json:"concurrency"`
	Frames      int64   `json:"pbx_events"`

	IngestPerSec    float64                `json:"ingest_events_per_s"`    // PBX events / time until all committed
	CommittedPerSec float64                `json:"committed_events_per_s"` // CRM events committed per second, same window
	Committed       int64                  `json:"committed_events"`       // CRM events committed
	Webhooks        int64                  `json:"webhooks"`               // delivered to the healthy endpoint
	WebhooksPerSec  float64                `json:"webhooks_per_s"`         // from the first frame (backlog: first delivery) to the last delivery
	BadSignatures   int64                  `json:"bad_signatures"`         // should be 0
	Latency         map[string]Percentiles `json:"latency"`                // pop, release, all (+ @phase)

	CPUPer1000 float64 `json:"cpu_s_per_1000_calls"`
	CPUSeconds float64 `json:"cpu_s"`
	TxPerCall  float64 `json:"store_transactions_per_call,omitempty"` // each is an fsync on FULL
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	RSSMB      float64 `json:"rss_mb"` // at the end
	// At the end, RSS split into anonymous memory (heap, stacks, SQLite's
	// caches) and file-backed pages (the binary's, shared with the page
	// cache); live runs add the anonymous bytes each live call added.
	RSSAnonMB    float64 `json:"rss_anon_mb,omitempty"`
	RSSFileMB    float64 `json:"rss_file_mb,omitempty"`
	BytesPerLive float64 `json:"anon_bytes_per_live_call,omitempty"`
	// Live runs: the Go heap's allocated bytes after the run
	// (go_memstats_heap_alloc: live objects and those not yet collected),
	// and what each live call added to them, to tell the model's bytes
	// from the collector's headroom and SQLite's caches.
	HeapAllocMB      float64  `json:"heap_alloc_mb,omitempty"`
	HeapBytesPerLive float64  `json:"heap_bytes_per_live_call,omitempty"`
	GoMemory         string   `json:"go_runtime_memory,omitempty"` // the Go runtime's part of the anonymous memory
	StorePer1000MB   float64  `json:"store_mb_per_1000_calls"`
	StoreMB          float64  `json:"store_mb"`
	LiveCalls        float64  `json:"live_calls,omitempty"`
	Attempts         int64    `json:"attempts_recorded"`
	Delivered        int64    `json:"deliveries_delivered"`
	Pending          int64    `json:"deliveries_pending"`
	Series           []Sample `json:"series,omitempty"`
	// Paired is the hung scenario's comparison over interleaved pairs.
	Paired  *Paired  `json:"paired,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Elapsed float64  `json:"elapsed_s"`

	// lat keeps the run's raw latencies, for pooling over pairs.
	lat map[string][]time.Duration
}

// Paired compares the healthy endpoint's p99 (all webhooks) without and
// with a hung endpoint over interleaved pairs of runs (pairOrder): one
// run's p99 is a few dozen samples' tail and moved by ±30 % between
// identical runs, more than the 10 % the target allows. When the steady
// sweep covers the hung rate, the table's steady row there is the sweep's
// own run, not the first pair's.
type Paired struct {
	Pairs   int          `json:"pairs"`
	BaseP99 float64      `json:"base_p99_ms"` // pooled over the pairs' healthy runs
	HungP99 float64      `json:"hung_p99_ms"` // pooled over the pairs' hung runs
	PairP99 [][2]float64 `json:"pair_p99_ms"` // each pair's own: healthy, hung
}

// Sample is the child's state at one moment of a run.
type Sample struct {
	T         float64 `json:"t_s"`
	RSSMB     float64 `json:"rss_mb"`
	Delivered int64   `json:"delivered"`
}

// Baseline is a raw figure of the same work without ctibridge.
type Baseline struct {
	Name  string  `json:"name"`
	Sync  string  `json:"sync,omitempty"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started   time.Time  `json:"started"`
	Command   string     `json:"command"`
	Machine   string     `json:"machine"`
	Results   []*Result  `json:"results"`
	Baselines []Baseline `json:"baselines"`
	Ratios    []Ratio    `json:"ratios"`
	Targets   []Target   `json:"targets"`
}

// Run runs the scenarios and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	def := DefaultOptions()
	// The simulators' "show channels" does not list the calls the harness
	// writes raw, so the resync's confirmation pass (6 s after link-up)
	// and the periodic reconcile would end every call live then: calls
	// ended early, ingest never complete, CPU charged for the wait. The
	// child inherits this unless the caller set it.
	if _, ok := os.LookupEnv("CTIBRIDGE_PBX__RECONCILE_INTERVAL"); !ok {
		os.Setenv("CTIBRIDGE_PBX__RECONCILE_INTERVAL", "0")
		defer os.Unsetenv("CTIBRIDGE_PBX__RECONCILE_INTERVAL")
	}
	if len(o.PBX) == 0 {
		o.PBX = def.PBX
	}
	if len(o.Sync) == 0 {
		o.Sync = def.Sync
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = def.Scenarios
	}
	if len(o.Rates) == 0 {
		o.Rates = def.Rates
	}
	if o.Rate <= 0 {
		o.Rate = def.Rate
	}
	if o.Duration <= 0 {
		o.Duration = def.Duration
	}
	if o.CallLen <= 0 {
		o.CallLen = def.CallLen
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = def.MaxCalls
	}
	if o.Backlog <= 0 {
		o.Backlog = def.Backlog
	}
	if o.Live <= 0 {
		o.Live = def.Live
	}
	if o.LiveRate <= 0 {
		o.LiveRate = def.LiveRate
	}
	if o.BaselineRows <= 0 {
		o.BaselineRows = def.BaselineRows
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("bench: unknown scenario %q (have %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	tmp, err := os.MkdirTemp("", "ctibench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if o.Bin == "" {
		fmt.Fprintln(o.Log, "building ctibridge...")
		if o.Bin, err = Build(ctx, tmp); err != nil {
			return nil, err
		}
	}
	h := &harness{o: o, tmp: tmp, rep: &Report{Started: time.Now().UTC(), Machine: machine()}}
	want := func(s string) bool { return slices.Contains(o.Scenarios, s) }
	for _, pbx := range o.PBX {
		if want("baseline") {
			if err := h.parseBaseline(ctx, pbx); err != nil {
				return nil, err
			}
		}
		for _, sync := range o.Sync {
			if want("max") {
				r, err := h.max(ctx, pbx, sync)
				if err != nil {
					return nil, err
				}
				h.add(r)
			}
			if want("steady") {
				for _, rate := range o.Rates {
					r, err := h.steady(ctx, pbx, sync, "steady", rate, false)
					if err != nil {
						return nil, err
					}
					h.add(r)
				}
			}
			if want("bursts") {
				for _, rate := range o.Rates {
					r, err := h.steady(ctx, pbx, sync, "bursts", rate, false)
					if err != nil {
						return nil, err
					}
					h.add(r)
				}
			}
			// The bare work's commits are its only part that depends on the
			// durability, and the first one asked for says enough.
			if want("floor") && sync == o.Sync[0] {
				for _, bursts := range []bool{false, true} {
					if bursts && !want("bursts") {
						continue
					}
					for _, rate := range o.Rates {
						for stages := range len(floorStages) {
							r, err := h.floor(ctx, pbx, sync, rate, stages+1, bursts)
							if err != nil {
								return nil, err
							}
							h.add(r)
						}
					}
				}
			}
			if want("burst") {
				r, err := h.burst(ctx, pbx, sync)
				if err != nil {
					return nil, err
				}
				h.add(r)
			}
			if want("hung") {
				r, healthy, err := h.hungPairs(ctx, pbx, sync)
				if err != nil {
					return nil, err
				}
				if !want("steady") || !slices.Contains(o.Rates, o.Rate) {
					h.add(healthy) // the table's row at this rate
				}
				h.add(r)
			}
			if want("live") {
				r, err := h.live(ctx, pbx, sync)
				if err != nil {
					return nil, err
				}
				h.add(r)
			}
		}
	}
	// The backlog drain and the store and POST baselines use webhook
	// payloads, not PBX traffic: once per durability, from the Asterisk mix.
	var tpls []*template
	if want("baseline") || want("backlog") {
		sim, err := h.newSim("asterisk")
		if err != nil {
			return nil, err
		}
		sim.close()
		tpls = sim.tpls
	}
	for _, sync := range o.Sync {
		if want("baseline") {
			if err := h.storeBaseline(ctx, sync, tpls); err != nil {
				return nil, err
			}
		}
		if want("backlog") {
			r, err := h.backlog(ctx, sync, tpls)
			if err != nil {
				return nil, err
			}
			h.add(r)
		}
	}
	if want("baseline") {
		if err := h.postBaseline(ctx, tpls); err != nil {
			return nil, err
		}
	}
	h.rep.Evaluate()
	return h.rep, nil
}

// Evaluate (re)computes the ratios to the baselines and the targets.
func (rep *Report) Evaluate() {
	rep.Ratios = ratios(rep)
	rep.Targets = targets(rep)
}

type harness struct {
	o   Options
	tmp string
	rep *Report
	n   int
}

func (h *harness) add(r *Result) {
	r.lat = nil // pooled already, if at all: the report keeps percentiles
	h.rep.Results = append(h.rep.Results, r)
	fmt.Fprintln(h.o.Log, "  "+r.line())
}

func (h *harness) logf(format string, args ...any) { fmt.Fprintf(h.o.Log, format+"\n", args...) }

// dir returns a fresh directory for one child.
func (h *harness) dir() string {
	h.n++
	d := filepath.Join(h.tmp, fmt.Sprintf("run%03d", h.n))
	_ = os.MkdirAll(d, 0o755)
	return d
}

func machine() string {
	s := fmt.Sprintf("%d CPUs, %s, %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				s += ", " + strings.TrimSpace(v)
				break
			}
		}
	}
	return s
}

// load is one run of the child under PBX traffic.
type load struct {
	name, pbx, sync string
	rate            float64
	calls           []*call
	sched           schedule
	hung            bool // add an endpoint that never answers
	sample          time.Duration
}

// run starts a child for the load, plays it and measures. The child's
// figures cover the window from the first frame to the last delivery.
func (h *harness) run(ctx context.Context, sim *simulator, l load) (*Result, error) {
	finalize(sim.pbx, l.calls, l.sched)
	secret := bridge.NewWebhookSecret()
	rcv, err := newReceiver(secret, false)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tags := make(map[string]*call, len(l.calls))
	var frames int64
	wantChan, wantHooks := 0, 0
	for _, c := range l.calls {
		tags[c.tag] = c
		frames += int64(c.last)
		wantChan += c.tpl.cumChan[c.last]
		wantHooks += c.tpl.cumHooks[c.last]
	}
	rcv.reset(tags)
	eps := []endpointConf{{id: "crm", url: rcv.URL, secret: secret}}
	var hung *receiver
	if l.hung {
		if hung, err = newReceiver(secret, true); err != nil {
			return nil, err
		}
		defer hung.close()
		eps = append(eps, endpointConf{id: "hung", url: hung.URL, secret: secret})
	}
	dir := h.dir()
	db := filepath.Join(dir, "ctibridge.db")
	c, err := startServe(h.o.Bin, dir, serveConf{pbx: sim.pbx, pbxAddr: sim.addr(), db: db, sync: l.sync, endpoints: eps})
	if err != nil {
		return nil, err
	}
	defer c.kill()
	if err := waitLink(ctx, c); err != nil {
		return nil, err
	}

	r := &Result{Scenario: l.name, PBX: l.pbx, Sync: l.sync, Rate: l.rate, Calls: len(l.calls), Frames: frames}
	if l.rate > 0 {
		r.Concurrency = int(l.rate*l.sched.dur.Seconds() + 0.5)
	}
	anon0, _ := serveproc.MemSplit(c.Pid)
	heap0 := -1.0
	tx0 := -1.0
	if m, err := c.metrics(); err == nil {
		tx0 = m["ctibridge_store_transactions_total"]
		heap0 = m["go_memstats_heap_alloc_bytes"]
	}
	cpu0 := c.cpu()
	t0 := time.Now()
	played := make(chan error, 1)
	go func() { played <- play(ctx, sim.write, l.calls, l.sched) }()
	stopSampling := h.sampleRSS(c, rcv, t0, l.sample, r)

	// Ingested and durable: the engine handled every ChannelEvent, its
	// queue is empty and the committed count has stopped moving. /metrics
	// is read only once every frame is out: scraping it 50 times a second
	// through the run cost the child CPU that the per-call figure charged
	// to the calls.
	if err := <-played; err != nil {
		stopSampling()
		return nil, fmt.Errorf("playing: %w", err)
	}
	// The work was done by the first scrape that saw it all (every event
	// in, the queue empty, the committed count at its final value); the
	// next scrape only confirms that the count stopped moving. Timing the
	// confirming scrape charged a whole poll interval to the run.
	var ingestAt, doneAt time.Time
	var committed float64
	prev := -1.0
	deadline := time.Now().Add(2*l.sched.start(len(l.calls)) + 120*time.Second)
	for ingestAt.IsZero() {
		if time.Now().After(deadline) {
			r.Notes = append(r.Notes, "ingest did not complete before the deadline")
			break
		}
		time.Sleep(5 * time.Millisecond)
		m, err := c.metrics()
		now := time.Now()
		if err != nil {
			continue
		}
		committed = m["ctibridge_events_committed_total"]
		done := m["ctibridge_pbx_events_ingested_total"] >= float64(wantChan) && m["ctibridge_engine_queue_length"] == 0
		switch {
		case !done:
			doneAt = time.Time{}
		case committed != prev || doneAt.IsZero():
			doneAt = now
		default:
			ingestAt = doneAt
		}
		prev = committed
	}
	if !ingestAt.IsZero() {
		r.IngestPerSec = rate(frames, ingestAt.Sub(t0))
		r.CommittedPerSec = rate(int64(committed), ingestAt.Sub(t0))
	}
	r.Committed = int64(committed)

	// Delivered: every webhook the calls make, or no progress for 20 s.
	last, lastAt := rcv.count(), time.Now()
	for rcv.count() < int64(wantHooks) && time.Since(lastAt) < 20*time.Second {
		time.Sleep(10 * time.Millisecond)
		if n := rcv.count(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	if n := rcv.count(); n < int64(wantHooks) {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d webhooks delivered", n, wantHooks))
	}
	if l.name == "live" {
		if m, err := c.metrics(); err == nil {
			r.LiveCalls = m["ctibridge_live_calls"]
			r.HeapAllocMB = m["go_memstats_heap_alloc_bytes"] / (1 << 20)
			// Where the anonymous memory is: the Go runtime's own (heap in
			// use, heap kept idle, stacks, the rest of what it mapped) and,
			// by difference, the C side's (SQLite's caches).
			r.GoMemory = fmt.Sprintf("heap in use %.1f MB, idle not returned %.1f MB, stacks %.1f MB, mapped in all %.1f MB",
				m["go_memstats_heap_inuse_bytes"]/(1<<20), (m["go_memstats_heap_idle_bytes"]-m["go_memstats_heap_released_bytes"])/(1<<20),
				m["go_memstats_stack_inuse_bytes"]/(1<<20), m["go_memstats_sys_bytes"]/(1<<20))
			if heap0 >= 0 && r.LiveCalls > 0 {
				r.HeapBytesPerLive = (m["go_memstats_heap_alloc_bytes"] - heap0) / r.LiveCalls
			}
		}
	}
	cpu := c.cpu() - cpu0
	rss, peak := c.mem()
	anon, file := serveproc.MemSplit(c.Pid)
	r.RSSAnonMB, r.RSSFileMB = mb(anon), mb(file)
	if l.name == "live" && r.LiveCalls > 0 {
		r.BytesPerLive = float64(anon-anon0) / r.LiveCalls
	}
	if m, err := c.metrics(); err == nil && tx0 >= 0 {
		r.TxPerCall = (m["ctibridge_store_transactions_total"] - tx0) / float64(len(l.calls))
	}
	stopSampling()
	lat, _, lastDelivery := rcv.snapshot()
	r.Webhooks, r.BadSignatures = rcv.count(), rcv.bad.Load()
	if !lastDelivery.IsZero() {
		r.WebhooksPerSec = rate(r.Webhooks, lastDelivery.Sub(t0))
	}
	r.Latency, r.lat = map[string]Percentiles{}, lat
	for k, v := range lat {
		r.Latency[k] = percentiles(v)
	}
	if n := rcv.unmatched.Load(); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d webhooks not matched to a frame", n))
	}
	r.CPUSeconds = cpu.Seconds()
	r.CPUPer1000 = cpu.Seconds() / float64(len(l.calls)) * 1000
	r.RSSMB, r.PeakRSSMB = mb(rss), mb(peak)
	r.Elapsed = time.Since(t0).Seconds()
	if hung != nil {
		hung.close() // else the child's shutdown waits out its grace for them
	}
	if err := c.stop(); err != nil {
		r.Notes = append(r.Notes, "stop: "+err.Error())
	}
	r.StoreMB = mb(storeBytes(db))
	r.StorePer1000MB = r.StoreMB / float64(len(l.calls)) * 1000
	if out, err := inspect(db, "crm"); err == nil {
		r.Attempts, r.Delivered, r.Pending = out.Attempts, out.Delivered, out.Pending
		if out.Attempts < r.Webhooks {
			r.Notes = append(r.Notes, fmt.Sprintf("%d attempts recorded for %d webhooks received", out.Attempts, r.Webhooks))
		}
	} else {
		r.Notes = append(r.Notes, "inspecting the store: "+err.Error())
	}
	return r, nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// waitLink waits until the child is logged in to the simulator and has
// taken the PBX's snapshot.
func waitLink(ctx context.Context, c *child) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := c.metrics(); err == nil && m["ctibridge_pbx_link_up"] == 1 {
			time.Sleep(300 * time.Millisecond) // the resync answer
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("ctibridge never logged in to the simulated PBX: %s", c.tail())
}

// sampleRSS records the child's RSS and deliveries every interval (0:
// none) until the returned stop is called.
func (h *harness) sampleRSS(c *child, rcv *receiver, t0 time.Time, every time.Duration, r *Result) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rss, _ := c.mem()
			r.Series = append(r.Series, Sample{T: time.Since(t0).Seconds(), RSSMB: mb(rss), Delivered: rcv.count()})
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (h *harness) newSim(pbx string) (*simulator, error) { return newSimulator(pbx) }

// max blasts MaxCalls calls as fast as the simulator can write them.
func (h *harness) max(ctx context.Context, pbx, sync string) (*Result, error) {
	sim, err := h.newSim(pbx)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	calls, err := sim.prepare(h.o.MaxCalls, false)
	if err != nil {
		return nil, err
	}
	h.logf("%s %s max: %d calls as fast as possible", pbx, sync, len(calls))
	return h.run(ctx, sim, load{name: "max", pbx: pbx, sync: sync, calls: calls,
		sched: schedule{start: func(int) time.Duration { return 0 }}})
}

// callLen is how long each call's frames are spread over at a rate.
func (h *harness) callLen(rate float64) time.Duration {
	if h.o.Concurrency > 0 {
		return time.Duration(float64(h.o.Concurrency) / rate * float64(time.Second))
	}
	return h.o.CallLen
}

// steadyCalls prepares a steady run's calls at rate for Duration, and its
// schedule: each event on its own, or in the PBX's bursts.
func (h *harness) steadyCalls(pbx string, rate float64, bursts bool) (*simulator, []*call, schedule, error) {
	sch := steady(rate, h.callLen(rate))
	if bursts {
		sch.perBurst = burstSize[pbx]
	}
	sim, err := h.newSim(pbx)
	if err != nil {
		return nil, nil, sch, err
	}
	calls, err := sim.prepare(max(1, int(rate*h.o.Duration.Seconds())), false)
	if err != nil {
		sim.close()
		return nil, nil, sch, err
	}
	return sim, calls, sch, nil
}

// steady plays rate calls/s for Duration; hung adds an endpoint that never
// answers beside the healthy one.
func (h *harness) steady(ctx context.Context, pbx, sync, name string, rate float64, hung bool) (*Result, error) {
	sim, calls, sch, err := h.steadyCalls(pbx, rate, name == "bursts")
	if err != nil {
		return nil, err
	}
	defer sim.close()
	h.logf("%s %s %s: %.0f calls/s for %s", pbx, sync, name, rate, h.o.Duration)
	r, err := h.run(ctx, sim, load{name: name, pbx: pbx, sync: sync, rate: rate, calls: calls, hung: hung, sched: sch})
	return r, err
}

// hungPairs runs HungPairs interleaved pairs at Rate: the healthy endpoint
// alone and with a hung one beside it, in pairOrder. It returns the first
// pair's runs, the hung one carrying the pooled comparison (paired).
func (h *harness) hungPairs(ctx context.Context, pbx, sync string) (hungRun, healthyRun *Result, err error) {
	pairs := make([][2]*Result, max(1, h.o.HungPairs))
	for i := range pairs {
		for _, withHung := range pairOrder(i) {
			name, slot := "steady", 0
			if withHung {
				name, slot = "hung", 1
			}
			r, runErr := h.steady(ctx, pbx, sync, name, h.o.Rate, withHung)
			if runErr != nil {
				return nil, nil, runErr
			}
			pairs[i][slot] = r
		}
	}
	hungRun, healthyRun = pairs[0][1], pairs[0][0]
	hungRun.Paired = paired(pairs)
	return hungRun, healthyRun, nil
}

// pairOrder is pair i's order (true: the run with the hung endpoint), ABBA
// so that an even number of pairs puts each condition first equally often
// (a machine warming up or slowing down favours neither).
func pairOrder(i int) []bool {
	if i%4 == 1 || i%4 == 2 {
		return []bool{true, false}
	}
	return []bool{false, true}
}

// paired pools each condition's latencies of all webhooks over the pairs
// ([0] healthy alone, [1] with the hung endpoint) and keeps each pair's own
// p99s.
func paired(pairs [][2]*Result) *Paired {
	p := &Paired{Pairs: len(pairs)}
	var base, hung []time.Duration
	for _, pr := range pairs {
		base = append(base, pr[0].lat["all"]...)
		hung = append(hung, pr[1].lat["all"]...)
		p.PairP99 = append(p.PairP99, [2]float64{pr[0].Latency["all"].P99, pr[1].Latency["all"].P99})
	}
	p.BaseP99, p.HungP99 = percentiles(base).P99, percentiles(hung).P99
	return p
}

// burst plays Rate calls/s, then 10× that for a tenth of the run, then
// Rate again; latencies of calls started in the burst are under "@burst".
func (h *harness) burst(ctx context.Context, pbx, sync string) (*Result, error) {
	sim, err := h.newSim(pbx)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	d := h.o.Duration.Seconds()
	rate := h.o.Rate
	n1, n2, n3 := int(rate*d*0.4), int(rate*10*d*0.1), int(rate*d*0.5)
	calls, err := sim.prepare(n1+n2+n3, false)
	if err != nil {
		return nil, err
	}
	for _, c := range calls[n1 : n1+n2] {
		c.phase = "burst"
	}
	start := func(i int) time.Duration {
		var s float64
		switch {
		case i < n1:
			s = float64(i) / rate
		case i < n1+n2:
			s = d*0.4 + float64(i-n1)/(10*rate)
		default:
			s = d*0.5 + float64(i-n1-n2)/rate
		}
		return time.Duration(s * float64(time.Second))
	}
	h.logf("%s %s burst: %.0f calls/s, %.0f calls/s for %.1fs, %.0f calls/s", pbx, sync, rate, 10*rate, d*0.1, rate)
	r, err := h.run(ctx, sim, load{name: "burst", pbx: pbx, sync: sync, rate: rate, calls: calls,
		sched: schedule{start: start, dur: h.callLen(rate)}})
	return r, err
}

// live holds Live calls open (each played up to its answer) and reports
// the child's memory with all of them in the call model.
func (h *harness) live(ctx context.Context, pbx, sync string) (*Result, error) {
	sim, err := h.newSim(pbx)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	calls, err := sim.prepare(h.o.Live, true)
	if err != nil {
		return nil, err
	}
	rate := h.o.LiveRate
	h.logf("%s %s live: %d calls held open, started at %.0f calls/s", pbx, sync, len(calls), rate)
	r, err := h.run(ctx, sim, load{name: "live", pbx: pbx, sync: sync, rate: rate, calls: calls,
		sched: steady(rate, time.Second), sample: time.Second})
	if r != nil {
		r.Concurrency = len(calls)
	}
	return r, err
}

// backlog pre-loads Backlog pending deliveries into the SQLite file, then
// starts the child with the PBX idle and times the drain.
func (h *harness) backlog(ctx context.Context, sync string, tpls []*template) (*Result, error) {
	dir := h.dir()
	db := filepath.Join(dir, "ctibridge.db")
	st, err := store.Open(db, store.Options{Synchronous: "NORMAL"}) // pre-loading is not the measure
	if err != nil {
		return nil, err
	}
	t := time.Now()
	err = rows(tpls, h.o.Backlog, 5000, func(rs []row) error { return st.Commit(ctx, batchOf(rs, "crm")) })
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bench: pre-loading the backlog: %w", err)
	}
	h.logf("backlog %s: %d pending deliveries pre-loaded in %s; draining", sync, h.o.Backlog, time.Since(t).Round(time.Millisecond))

	sim, err := h.newSim("asterisk") // idle: the link is up, no calls
	if err != nil {
		return nil, err
	}
	defer sim.close()
	secret := bridge.NewWebhookSecret()
	rcv, err := newReceiver(secret, false)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	t0 := time.Now()
	c, err := startServe(h.o.Bin, dir, serveConf{pbx: "asterisk", pbxAddr: sim.addr(), db: db, sync: sync,
		endpoints: []endpointConf{{id: "crm", url: rcv.URL, secret: secret}}})
	if err != nil {
		return nil, err
	}
	defer c.kill()
	r := &Result{Scenario: "backlog", PBX: "-", Sync: sync, Calls: h.o.Backlog}
	stop := h.sampleRSS(c, rcv, t0, 500*time.Millisecond, r)
	want := int64(h.o.Backlog)
	last, lastAt := rcv.count(), time.Now()
	for rcv.count() < want && time.Since(lastAt) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
		if n := rcv.count(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	cpu := c.cpu()
	rss, peak := c.mem()
	anon, file := serveproc.MemSplit(c.Pid)
	r.RSSAnonMB, r.RSSFileMB = mb(anon), mb(file)
	stop()
	_, first, lastDelivery := rcv.snapshot()
	r.Webhooks, r.BadSignatures = rcv.count(), rcv.bad.Load()
	if r.Webhooks < want {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d delivered", r.Webhooks, want))
	}
	if lastDelivery.After(first) {
		r.WebhooksPerSec = rate(r.Webhooks, lastDelivery.Sub(first))
		r.Notes = append(r.Notes, fmt.Sprintf("first delivery %.2fs after start", first.Sub(t0).Seconds()))
	}
	r.CPUSeconds = cpu.Seconds()
	r.CPUPer1000 = cpu.Seconds() / float64(max(r.Webhooks, 1)) * 1000 // per 1,000 deliveries here
	r.RSSMB, r.PeakRSSMB = mb(rss), mb(peak)
	r.Elapsed = time.Since(t0).Seconds()
	if err := c.stop(); err != nil {
		r.Notes = append(r.Notes, "stop: "+err.Error())
	}
	r.StoreMB = mb(storeBytes(db))
	if out, err := inspect(db, "crm"); err == nil {
		r.Attempts, r.Delivered, r.Pending = out.Attempts, out.Delivered, out.Pending
	} else {
		r.Notes = append(r.Notes, "inspecting the store: "+err.Error())
	}
	return r, nil
}

// rssGrowth reports the RSS growth over the second half of a series (MB):
// the first half includes warm-up (page cache of the first reads, pools).
func rssGrowth(s []Sample) float64 {
	if len(s) < 4 {
		return 0
	}
	half := s[len(s)/2:]
	lo, hi := half[0].RSSMB, half[0].RSSMB
	for _, x := range half {
		lo, hi = min(lo, x.RSSMB), max(hi, x.RSSMB)
	}
	return hi - lo
}
