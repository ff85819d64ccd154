package bench

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/phone"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
)

// BenchmarkPipeline wires the components as cmd/ctibridge's serve does
// (adapter, engine, tracker, store, dispatcher) in this process, so that
// `go test -cpuprofile` shows where a `ctibridge serve` spends its time:
//
//	go test -run '^$' -bench Pipeline/asterisk/steady -benchtime 2000x -cpuprofile cpu.out ./bench/
//	go tool pprof -top bench.test cpu.out
//
// CTIBENCH_HEAP=heap.out writes a heap profile once every webhook arrived
// (with "held", every call still live).
//
// Each op is one call. "blast" sends the calls back to back; "steady"
// plays 200 calls/s with 2 s calls, as the steady scenario does; "held"
// starts 1,000 calls/s that stay live, as the live scenario does.
func BenchmarkPipeline(b *testing.B) {
	for _, pbx := range []string{"asterisk", "freeswitch"} {
		for _, mode := range []string{"blast", "steady", "held"} {
			for _, sync := range []string{"FULL", "NORMAL"} {
				b.Run(pbx+"/"+mode+"/"+sync, func(b *testing.B) { pipeline(b, pbx, mode, sync) })
			}
		}
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pipeline(b *testing.B, pbx, mode, sync string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	sim, err := newSimulator(pbx)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.close()
	secret := bridge.NewWebhookSecret()
	rcv, err := newReceiver(secret, false)
	if err != nil {
		b.Fatal(err)
	}
	defer rcv.close()

	db, err := store.Open(filepath.Join(b.TempDir(), "ctibridge.db"), store.Options{Synchronous: sync, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	eps := []bridge.Endpoint{{ID: "crm", URL: rcv.URL, Secret: secret, Events: []string{"call.*", "recording.*"}, Source: "config"}}
	d := webhooks.New(db, webhooks.Options{Logger: log})
	d.SetEndpoints(eps)
	tc := trackerConfig(pbx)
	tc.Numbers = phone.New("US", nil)
	tc.AgentPattern = regexp.MustCompile(`^[0-9]{2,6}$`)
	engine := bridge.NewEngine(bridge.NewTracker(tc), db, d, bridge.EngineOptions{Endpoints: eps, Logger: log})
	go engine.Run(ctx)
	go d.Run(ctx)
	switch pbx {
	case "asterisk":
		c := ami.New(ami.Config{Address: sim.addr(), Username: "bridge", Secret: "bridgepass", Logger: log}, engine)
		engine.Follow(c)
		go c.Run(ctx)
	default:
		c := esl.New(esl.Config{Address: sim.addr(), Password: "ClueCon", Logger: log}, engine)
		go c.Run(ctx)
	}
	for up, _ := engine.LinkState(); !up; up, _ = engine.LinkState() {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)

	calls, err := sim.prepare(b.N, mode == "held")
	if err != nil {
		b.Fatal(err)
	}
	sch := schedule{start: func(int) time.Duration { return 0 }}
	switch mode {
	case "steady":
		sch = steady(200, 2*time.Second)
	case "held":
		sch = steady(1000, time.Second)
	}
	finalize(pbx, calls, sch)
	want := 0
	tags := map[string]*call{}
	for _, c := range calls {
		want += c.tpl.cumHooks[c.last]
		tags[c.tag] = c
	}
	rcv.reset(tags)
	tx0, cpu0 := db.Transactions.Load(), selfCPU()
	b.ResetTimer()
	if err := play(ctx, sim.write, calls, sch); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(3*time.Minute + 2*sch.start(b.N))
	for rcv.count() < int64(want) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if path := os.Getenv("CTIBENCH_HEAP"); path != "" {
		// The heap with every call still in the model, before teardown
		// frees it (-memprofile only sees the end of the run).
		runtime.GC()
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	lat, _, _ := rcv.snapshot()
	p := percentiles(lat["pop"])
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(p.P50, "pop-p50-ms")
	b.ReportMetric(p.P99, "pop-p99-ms")
	b.ReportMetric(float64(db.Transactions.Load()-tx0)/float64(b.N), "tx/call")
	// This process's CPU, simulator and receiver included: compare runs.
	b.ReportMetric(ms(selfCPU()-cpu0)/float64(b.N), "cpu-ms/call")
	if rcv.count() < int64(want) {
		b.Errorf("%d of %d webhooks", rcv.count(), want)
	}
}
