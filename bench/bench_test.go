package bench

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// TestTinyRun runs every scenario at toy size against a real ctibridge
// process and checks that the figures and files are sane; the real figures
// come from cmd/ctibench.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ctibridge")
	}
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race") // shares the test build's cache
	}
	bin, err := Build(context.Background(), t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Bin: bin, PBX: []string{"asterisk", "freeswitch"}, Sync: []string{"NORMAL"},
		Scenarios: []string{"baseline", "max", "steady", "bursts", "floor", "hung", "backlog", "live"}, Rates: []float64{20},
		Rate: 20, Duration: time.Second, CallLen: 200 * time.Millisecond, MaxCalls: 20, HungPairs: 2, Backlog: 300, Live: 10, BaselineRows: 300}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Scenario+"/"+r.PBX] = true
		name := r.Scenario + " " + r.PBX
		if len(r.Notes) > 0 && r.Scenario != "backlog" {
			t.Errorf("%s: %s", name, strings.Join(r.Notes, "; "))
		}
		stage, bursts := strings.CutSuffix(r.Scenario, "@bursts")
		if i := slices.Index(floorStages, stage); i >= 0 {
			checkFloor(t, rep, r, i+1, bursts)
			continue
		}
		if r.Webhooks == 0 || r.WebhooksPerSec <= 0 || r.BadSignatures != 0 || r.PeakRSSMB <= 0 || r.StoreMB <= 0 {
			t.Errorf("%s: webhooks %d at %.0f/s, %d bad, peak RSS %.1f MB, store %.2f MB", name, r.Webhooks, r.WebhooksPerSec, r.BadSignatures, r.PeakRSSMB, r.StoreMB)
		}
		if r.Attempts < r.Webhooks {
			t.Errorf("%s: %d attempts recorded for %d webhooks", name, r.Attempts, r.Webhooks)
		}
		if r.Scenario == "backlog" {
			if r.Webhooks != int64(o.Backlog) || r.Pending != 0 || len(r.Series) == 0 {
				t.Errorf("backlog: %d of %d delivered, %d pending, %d samples", r.Webhooks, o.Backlog, r.Pending, len(r.Series))
			}
			continue
		}
		if r.IngestPerSec <= 0 || r.Frames == 0 {
			t.Errorf("%s: ingest %.0f events/s of %d", name, r.IngestPerSec, r.Frames)
		}
		pop := r.Latency["pop"]
		if pop.N == 0 || pop.P50 <= 0 || pop.P50 > pop.P99 || pop.P99 > pop.Max || pop.Max > 10_000 {
			t.Errorf("%s: screen pop latency %+v", name, pop)
		}
		if p := r.Paired; r.Scenario == "hung" && (p == nil || p.Pairs != o.HungPairs || len(p.PairP99) != o.HungPairs || p.BaseP99 <= 0 || p.HungP99 <= 0) {
			t.Errorf("hung %s: paired comparison %+v, want %d pairs with both p99s", r.PBX, p, o.HungPairs)
		}
		if r.Scenario == "live" && r.LiveCalls != float64(o.Live) {
			t.Errorf("live %s: %.0f live calls, want %d", r.PBX, r.LiveCalls, o.Live)
		}
	}
	for _, k := range []string{"max/asterisk", "steady/freeswitch", "hung/asterisk", "live/freeswitch", "backlog/-"} {
		if !seen[k] {
			t.Errorf("no %s result", k)
		}
	}
	if len(rep.Baselines) != 6 || len(rep.Ratios) == 0 || len(rep.Targets) == 0 {
		t.Errorf("%d baselines, %d ratios, %d targets", len(rep.Baselines), len(rep.Ratios), len(rep.Targets))
	}
	for _, b := range rep.Baselines {
		if b.Value <= 0 {
			t.Errorf("baseline %s: %v", b.Name, b.Value)
		}
	}

	hungTargets := 0
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Goal, "endpoint hung") {
			hungTargets++
			if !strings.Contains(tg.Got, "pooled over 2 interleaved pairs") {
				t.Errorf("hung target reads %q, want the pooled pairs", tg.Got)
			}
		}
	}
	for _, pbx := range o.PBX {
		if n := len(slices.DeleteFunc(slices.Clone(rep.Results), func(r *Result) bool { return r.Scenario != "steady" || r.PBX != pbx })); n != len(o.Rates) {
			t.Errorf("%s: %d steady rows, want %d (the sweep's; the hung pairs add none at a rate it covers)", pbx, n, len(o.Rates))
		}
	}
	if hungTargets != len(o.PBX) {
		t.Errorf("%d hung targets, want one a PBX", hungTargets)
	}
	var buf bytes.Buffer
	rep.WriteTable(&buf)
	if !strings.Contains(buf.String(), "raw baselines") || !strings.Contains(buf.String(), "targets") {
		t.Errorf("table:\n%s", buf.String())
	}
	dir := t.TempDir()
	files, err := rep.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.json", "results.csv", "latency-asterisk-NORMAL.png", "latency-freeswitch-NORMAL.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not written (%v): %v", name, files, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "latency-asterisk-NORMAL.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("plot: %v", err)
	}
}

// checkFloor checks a floor child's row against the steady run of the same
// calls: every event read, and from the commit stage on every CRM event
// committed, then POSTed (the receiver verified each signature).
func checkFloor(t *testing.T, rep *Report, r *Result, stages int, bursts bool) {
	t.Helper()
	s := rep.find(map[bool]string{false: "steady", true: "bursts"}[bursts], r.PBX, r.Sync, r.Rate)
	if s == nil {
		t.Fatalf("%s %s: no steady run beside it", r.Scenario, r.PBX)
	}
	if r.Frames != s.Frames || r.CPUSeconds <= 0 || r.BadSignatures != 0 {
		t.Errorf("%s %s: %d of %d events read, CPU %.3f s, %d bad signatures", r.Scenario, r.PBX, r.Frames, s.Frames, r.CPUSeconds, r.BadSignatures)
	}
	if commits := r.TxPerCall > 0; commits != (stages >= 2) {
		t.Errorf("%s %s: %.1f transactions a call at stage %d", r.Scenario, r.PBX, r.TxPerCall, stages)
	}
	if want := map[bool]int64{true: s.Webhooks, false: 0}[stages >= 3]; r.Webhooks != want {
		t.Errorf("%s %s: %d webhooks received, want %d", r.Scenario, r.PBX, r.Webhooks, want)
	}
}

// TestCalibration checks that every call of the mixes pops a screen and is
// released, and that a prepared call keeps its frames and carries its tag.
func TestCalibration(t *testing.T) {
	for _, pbx := range []string{"asterisk", "freeswitch"} {
		s, err := newSimulator(pbx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		calls, err := s.prepare(len(s.tpls), false)
		if err != nil {
			t.Fatal(err)
		}
		finalize(pbx, calls, steady(100, time.Second))
		for _, c := range calls {
			left := externalNumber([][]byte{c.raw}) // a caller id still the captured one
			if len(c.ends) != len(c.tpl.frames) || !bytes.Contains(c.raw, []byte(c.tag)) || left != "" {
				t.Errorf("%s %s: %d frames of %d, tag %s present %v, captured number left: %q", pbx, c.tpl.name, len(c.ends), len(c.tpl.frames),
					c.tag, bytes.Contains(c.raw, []byte(c.tag)), left)
			}
			if _, ok := c.tpl.trigger[bridge.EventCallRinging+"/1"]; !ok && c.tpl.name != "queue-call" && c.tpl.name != "callcenter" && c.tpl.name != "mixmonitor" {
				t.Errorf("%s %s: no trigger for the first screen pop: %v", pbx, c.tpl.name, c.tpl.trigger)
			}
			if c.tpl.liveCut <= 0 || c.tpl.liveCut >= len(c.tpl.frames) {
				t.Errorf("%s %s: live cut %d of %d", pbx, c.tpl.name, c.tpl.liveCut, len(c.tpl.frames))
			}
		}
	}
}

func TestSetSeq(t *testing.T) {
	body := "Event-Name: CHANNEL_ANSWER\nEvent-Sequence: 7\nUnique-ID: x\n\n"
	f := []byte("Content-Length: 59\nContent-Type: text/event-plain\n\n" + body)
	got := string(setSeq(f, 123456))
	want := "Content-Length: 64\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_ANSWER\nEvent-Sequence: 123456\nUnique-ID: x\n\n"
	if got != want {
		t.Errorf("setSeq:\n%q\nwant\n%q", got, want)
	}
}

func TestRetag(t *testing.T) {
	in := "CallerIDNum: 5551234\r\nExten: 15551234\r\nX: 5551234;"
	if got := string(retag([]byte(in), "5551234", "7000001")); got != "CallerIDNum: 7000001\r\nExten: 15551234\r\nX: 7000001;" {
		t.Errorf("retag: %q", got)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(ds)
	if p.N != 100 || p.P50 != 50 || p.P95 != 95 || p.P99 != 99 || p.Max != 100 {
		t.Errorf("%+v", p)
	}
}

// TestTargetCPUPerEvent: the per-event CPU target compares a run's CPU per
// PBX event with the raw read+parse cost of one, and says missed past 10x.
func TestTargetCPUPerEvent(t *testing.T) {
	rep := &Report{Baselines: []Baseline{{Name: "read+parse asterisk", Value: 500_000}}} // 2 µs an event
	for _, tc := range []struct {
		cpu  float64
		met  bool
		text string
	}{
		{cpu: 0.019, met: true, text: "19.0 µs = 9.5 x raw (2.00 µs)"},
		{cpu: 0.021, met: false, text: "21.0 µs = 10.5 x raw (2.00 µs)"},
	} {
		rep.Results = []*Result{{Scenario: "max", PBX: "asterisk", Sync: "FULL", Frames: 1000, CPUSeconds: tc.cpu}}
		found := 0
		for _, g := range targets(rep) {
			if strings.Contains(g.Goal, "CPU per PBX event") {
				found++
				if g.Met != tc.met || g.Got != tc.text {
					t.Errorf("cpu %.3f s: got %q met=%v, want %q met=%v", tc.cpu, g.Got, g.Met, tc.text, tc.met)
				}
			}
		}
		if found != 1 {
			t.Fatalf("%d CPU per PBX event targets, want 1: %+v", found, targets(rep))
		}
	}
}

// TestTargetIngestRawSeries: the ingest target also says how fast the raw
// baselines of the same work go stage after stage: a PBX event's parse and
// its share of the commits, then also its share of the POSTs; each
// baseline is the one of the run's own sync.
func TestTargetIngestRawSeries(t *testing.T) {
	rep := &Report{Baselines: []Baseline{
		{Name: "read+parse asterisk", Value: 1_000_000},                 // 1 µs an event
		{Name: "sqlite commit batch 256", Sync: "NORMAL", Value: 1_000}, // never read for a FULL run
		{Name: "sqlite commit batch 256", Sync: "FULL", Value: 10_000},  // 100 µs a CRM event
		{Name: "net/http POST", Value: 20_000},                          // 50 µs a webhook
	}}
	// 1,000 PBX events made 50 CRM events and 40 webhooks: 1 + 5 (+ 2) µs an event.
	rep.Results = []*Result{{Scenario: "max", PBX: "asterisk", Sync: "FULL", Frames: 1000, Committed: 50, Webhooks: 40, IngestPerSec: 300_000}}
	pc, all := rawSeries(rep, rep.Results[0])
	if math.Abs(pc-1e6/6) > 1e-6 || math.Abs(all-125_000) > 1e-6 {
		t.Errorf("rawSeries = %v, %v, want %v (6 µs an event), 125000 (8 µs)", pc, all, 1e6/6)
	}
	want := "0.30 x raw (300000 of 1000000 events/s); raw baselines of its work, stage after stage: parse + commits 0.17 x raw, + webhooks' POSTs 0.12 x raw"
	found := false
	for _, g := range targets(rep) {
		if strings.Contains(g.Goal, "ingest >= 0.5") {
			found = true
			if g.Got != want || g.Met {
				t.Errorf("got %q met=%v, want %q unmet", g.Got, g.Met, want)
			}
		}
	}
	if !found {
		t.Fatal("no ingest target")
	}
	// Without the store's baseline the bound is not guessed.
	rep.Baselines = rep.Baselines[:1]
	if pc, all := rawSeries(rep, rep.Results[0]); pc != 0 || all != 0 {
		t.Errorf("rawSeries without baselines = %v, %v, want 0", pc, all)
	}
}

// TestPairedPoolsEveryPair: the hung comparison pools each condition's
// samples over all pairs, keeps each pair's own p99s, and orders the pairs
// ABBA.
func TestPairedPoolsEveryPair(t *testing.T) {
	run := func(from, n int) *Result {
		var lat []time.Duration
		for i := range n {
			lat = append(lat, time.Duration(from+i)*time.Millisecond)
		}
		return &Result{lat: map[string][]time.Duration{"all": lat}, Latency: map[string]Percentiles{"all": percentiles(lat)}}
	}
	// Pair 0 alone would say 100 -> 100 ms; pooled with pair 1 the hung
	// runs' tail is pair 1's.
	p := paired([][2]*Result{{run(1, 100), run(1, 100)}, {run(1, 100), run(1001, 100)}})
	if p.Pairs != 2 || len(p.PairP99) != 2 || p.PairP99[0] != [2]float64{99, 99} || p.PairP99[1] != [2]float64{99, 1099} {
		t.Errorf("pairs %+v", p)
	}
	if p.BaseP99 != 99 || p.HungP99 != 1098 {
		t.Errorf("pooled p99 %v -> %v, want 99 -> 1098", p.BaseP99, p.HungP99)
	}
	var first []bool
	for i := range 4 {
		first = append(first, pairOrder(i)[0])
		if o := pairOrder(i); len(o) != 2 || o[0] == o[1] {
			t.Fatalf("pair %d order %v", i, o)
		}
	}
	if !slices.Equal(first, []bool{false, true, true, false}) {
		t.Errorf("hung first by pair: %v, want ABBA", first)
	}
}

// TestBurstOffsets checks the two pacings: evenly, every frame has its own
// time; in bursts, consecutive frames share one, the groups are about
// perBurst frames, and both span the call's duration.
func TestBurstOffsets(t *testing.T) {
	c := &call{last: 88}
	even := schedule{dur: 2 * time.Second}
	burst := schedule{dur: 2 * time.Second, perBurst: 4.76}
	seen := map[time.Duration]int{}
	for i := range c.last {
		seen[c.offset(i, burst)]++
		if i > 0 && c.offset(i, even) <= c.offset(i-1, even) {
			t.Fatalf("even: frame %d at %v, not after frame %d at %v", i, c.offset(i, even), i-1, c.offset(i-1, even))
		}
		if i > 0 && c.offset(i, burst) < c.offset(i-1, burst) {
			t.Fatalf("bursts: frame %d goes out before frame %d", i, i-1)
		}
	}
	if len(seen) != 18 { // 88 / 4.76 = 18.5
		t.Errorf("%d bursts, want 18", len(seen))
	}
	for off, n := range seen {
		if n < 4 || n > 5 {
			t.Errorf("burst at %v has %d frames, want 4-5", off, n)
		}
	}
	last := c.last - 1
	near := func(d time.Duration) bool { return (even.dur - d).Abs() < time.Microsecond }
	if c.offset(0, burst) != 0 || !near(c.offset(last, burst)) || !near(c.offset(last, even)) {
		t.Errorf("last frame at %v (bursts), %v (even), want %v", c.offset(last, burst), c.offset(last, even), even.dur)
	}
}
