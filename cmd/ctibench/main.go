// Command ctibench is ctibridge's load harness: it drives the simulated
// Asterisk and FreeSWITCH into a real `ctibridge serve` process and
// reports throughput, end-to-end latency, CPU, memory and store size beside
// raw baselines measured on the same machine in the same run. See
// package bench.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only with --pprof
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctibridge/ctibridge/bench"
)

func main() {
	if code, ok := bench.FloorChild(); ok {
		os.Exit(code) // started by the floor scenario as its child
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	def := bench.DefaultOptions()
	fs := flag.NewFlagSet("ctibench", flag.ContinueOnError)
	out := fs.String("out", "bench-out", "directory for report.json, results.csv and the latency plots")
	bin := fs.String("bin", "", "ctibridge binary to run (default: go build ./cmd/ctibridge)")
	pbx := fs.String("pbx", strings.Join(def.PBX, ","), "PBX simulators to drive: asterisk,freeswitch")
	syncs := fs.String("sync", strings.Join(def.Sync, ","), "store.synchronous values to run with: FULL,NORMAL")
	scen := fs.String("scenarios", strings.Join(bench.Scenarios, ","), "scenarios to run")
	rates := fs.String("rates", "50,100,200,400", "calls/s of the steady sweep (the plot's x axis)")
	rate := fs.Float64("rate", def.Rate, "calls/s of the burst and hung-endpoint runs")
	dur := fs.Duration("duration", def.Duration, "length of each steady, burst and hung run")
	conc := fs.Int("concurrency", 0, "calls in progress at once in steady runs (default: rate × --call-len)")
	callLen := fs.Duration("call-len", def.CallLen, "time from a call's first to last PBX event, when --concurrency is 0")
	maxCalls := fs.Int("max-calls", def.MaxCalls, "calls blasted by the max-throughput scenario")
	hungPairs := fs.Int("hung-pairs", def.HungPairs, "interleaved pairs of runs (healthy alone, with a hung endpoint) the hung scenario compares: 2 × N runs of --duration for each PBX and sync")
	backlog := fs.Int("backlog", def.Backlog, "pending deliveries pre-loaded by the backlog scenario")
	live := fs.Int("live", def.Live, "calls held open by the live scenario")
	liveRate := fs.Float64("live-rate", def.LiveRate, "calls/s at which the live scenario opens them")
	pprof := fs.String("pprof", "", "serve net/http/pprof for this process on ADDR (e.g. 127.0.0.1:6060)")
	quiet := fs.Bool("q", false, "no progress lines")
	from := fs.String("from", "", "re-render the table and files of an earlier report.json instead of running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := bench.Options{Bin: *bin, PBX: list(*pbx), Sync: upper(list(*syncs)), Scenarios: list(*scen), Rate: *rate,
		Duration: *dur, Concurrency: *conc, CallLen: *callLen, MaxCalls: *maxCalls, HungPairs: *hungPairs, Backlog: *backlog, Live: *live, LiveRate: *liveRate, Log: os.Stderr}
	if *quiet {
		o.Log = nil
	}
	if *hungPairs < 1 {
		fmt.Fprintf(os.Stderr, "ctibench: --hung-pairs: %d: want at least 1 pair\n", *hungPairs)
		return 2
	}
	for _, s := range list(*rates) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "ctibench: --rates: bad rate %q\n", s)
			return 2
		}
		o.Rates = append(o.Rates, v)
	}
	if *pprof != "" {
		go func() { fmt.Fprintln(os.Stderr, "ctibench: pprof:", http.ListenAndServe(*pprof, nil)) }()
	}
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ctibench:", err)
			return 1
		}
		var rep bench.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			fmt.Fprintln(os.Stderr, "ctibench:", *from+":", err)
			return 1
		}
		rep.Evaluate()
		return output(&rep, *out, time.Now())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctibench:", err)
		return 1
	}
	rep.Command = "ctibench " + strings.Join(args, " ")
	return output(rep, *out, start)
}

func output(rep *bench.Report, out string, start time.Time) int {
	fmt.Println()
	rep.WriteTable(os.Stdout)
	files, err := rep.WriteFiles(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctibench:", err)
		return 1
	}
	fmt.Printf("\nwrote %s (%s)\n", strings.Join(files, ", "), time.Since(start).Round(time.Second))
	return 0
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func upper(s []string) []string {
	for i := range s {
		s[i] = strings.ToUpper(s[i])
	}
	return s
}
