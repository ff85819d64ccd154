package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Ratio is a ctibridge figure beside its raw baseline.
type Ratio struct {
	Figure   string  `json:"figure"`
	Value    float64 `json:"value"`
	Baseline string  `json:"baseline"`
	Raw      float64 `json:"raw"`
	Ratio    float64 `json:"ratio"`
	Unit     string  `json:"unit"`
}

// Target is one goal of issue 16 and how this run did.
type Target struct {
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func (rep *Report) baseline(name, sync string) float64 {
	for _, b := range rep.Baselines {
		if b.Name == name && (sync == "" || b.Sync == sync) {
			return b.Value
		}
	}
	return 0
}

func (rep *Report) find(scenario, pbx, sync string, rate float64) *Result {
	for _, r := range rep.Results {
		if r.Scenario == scenario && r.PBX == pbx && r.Sync == sync && (rate == 0 || r.Rate == rate) {
			return r
		}
	}
	return nil
}

func ratios(rep *Report) []Ratio {
	var out []Ratio
	addRatio := func(fig string, v float64, base string, raw float64, unit string) {
		if v == 0 || raw == 0 {
			return
		}
		out = append(out, Ratio{Figure: fig, Value: v, Baseline: base, Raw: raw, Ratio: v / raw, Unit: unit})
	}
	for _, r := range rep.Results {
		switch r.Scenario {
		case "max":
			addRatio(fmt.Sprintf("ingest %s %s", r.PBX, r.Sync), r.IngestPerSec, "read+parse "+r.PBX, rep.baseline("read+parse "+r.PBX, ""), "events/s")
			addRatio(fmt.Sprintf("committed %s %s", r.PBX, r.Sync), r.CommittedPerSec, "sqlite commit batch 256 "+r.Sync,
				rep.baseline("sqlite commit batch 256", r.Sync), "events/s")
			addRatio(fmt.Sprintf("webhooks (max) %s %s", r.PBX, r.Sync), r.WebhooksPerSec, "net/http POST", rep.baseline("net/http POST", ""), "webhooks/s")
		case "backlog":
			addRatio("webhooks (backlog drain) "+r.Sync, r.WebhooksPerSec, "net/http POST", rep.baseline("net/http POST", ""), "webhooks/s")
			addRatio("webhooks (backlog drain) "+r.Sync, r.WebhooksPerSec, "sqlite record attempt "+r.Sync,
				rep.baseline("sqlite record attempt", r.Sync), "webhooks/s")
		}
	}
	return out
}

// rawSeries is how fast a max run's work goes as its raw baselines, stage
// after stage with no overlap between the stages, per PBX event: its read
// and parse plus its share of the CRM events committed (at the batch-256
// commit's rate), and that plus its share of the webhooks posted. The
// POSTs may run on past the ingest window, so the truth for ingest lies
// between the two. Zeros when a baseline is missing.
func rawSeries(rep *Report, r *Result) (parseCommit, withPosts float64) {
	parse := rep.baseline("read+parse "+r.PBX, "")
	commit := rep.baseline("sqlite commit batch 256", r.Sync)
	post := rep.baseline("net/http POST", "")
	if parse <= 0 || commit <= 0 || post <= 0 || r.Frames <= 0 {
		return 0, 0
	}
	frames := float64(r.Frames)
	per := 1/parse + float64(r.Committed)/frames/commit
	return 1 / per, 1 / (per + float64(r.Webhooks)/frames/post)
}

// targets are issue 16's: what a sidecar on the PBX's own host may cost.
func targets(rep *Report) []Target {
	var out []Target
	add := func(goal, got string, met bool) { out = append(out, Target{Goal: goal, Got: got, Met: met}) }
	for _, r := range rep.Results {
		raw := rep.baseline("read+parse "+r.PBX, "")
		if raw > 0 && r.Frames > 0 && r.CPUSeconds > 0 &&
			(r.Scenario == "max" || r.Scenario == "steady" && r.Rate == 200) {
			// The raw figure is one reader's wall time per event: its CPU.
			per, rawPer := r.CPUSeconds/float64(r.Frames), 1/raw
			what := "as fast as possible"
			if r.Rate > 0 {
				what = fmt.Sprintf("at %.0f calls/s", r.Rate)
			}
			add(fmt.Sprintf("%s %s CPU per PBX event <= 10 x raw read+parse, %s", r.PBX, r.Sync, what),
				fmt.Sprintf("%.1f µs = %.1f x raw (%.2f µs)", per*1e6, per/rawPer, rawPer*1e6), per <= 10*rawPer)
		}
		switch r.Scenario {
		case "max":
			if raw > 0 {
				got := fmt.Sprintf("%.2f x raw (%.0f of %.0f events/s)", r.IngestPerSec/raw, r.IngestPerSec, raw)
				if pc, all := rawSeries(rep, r); pc > 0 {
					got += fmt.Sprintf("; raw baselines of its work, stage after stage: parse + commits %.2f x raw, + webhooks' POSTs %.2f x raw", pc/raw, all/raw)
				}
				add(fmt.Sprintf("%s %s ingest >= 0.5 x raw read+parse", r.PBX, r.Sync), got, r.IngestPerSec >= 0.5*raw)
			}
		case "steady":
			add(fmt.Sprintf("%s %s CPU <= 1 ms a call at %.0f calls/s", r.PBX, r.Sync, r.Rate), rep.cpuGot(r, "floor"), r.CPUPer1000 > 0 && r.CPUPer1000 <= 1)
			p := r.Latency["pop"]
			switch r.Rate {
			case 200:
				add(fmt.Sprintf("%s %s screen pop p50 <= 2 ms, p99 <= 10 ms at 200 calls/s", r.PBX, r.Sync),
					fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", p.P50, p.P99), p.N > 0 && p.P50 <= 2 && p.P99 <= 10)
			case 400:
				add(fmt.Sprintf("%s %s no lag at 400 calls/s: pop p50 <= 5 ms", r.PBX, r.Sync),
					fmt.Sprintf("p50 %.2f ms", p.P50), p.N > 0 && p.P50 <= 5)
			}
		case "bursts":
			add(fmt.Sprintf("%s %s CPU <= 1 ms a call at %.0f calls/s, events sent in the PBX's bursts", r.PBX, r.Sync, r.Rate),
				rep.cpuGot(r, "floor@bursts"), r.CPUPer1000 > 0 && r.CPUPer1000 <= 1)
		case "burst":
			p := r.Latency["pop@burst"]
			add(fmt.Sprintf("%s %s a 2,000 calls/s half-second burst absorbed within 1 s (its pops' max)", r.PBX, r.Sync),
				fmt.Sprintf("p50 %.0f ms, max %.0f ms", p.P50, p.Max), p.N > 0 && p.Max <= 1000)
		case "hung":
			what := fmt.Sprintf("%s %s healthy endpoint p99 (all webhooks) rises <= 10%% with one endpoint hung", r.PBX, r.Sync)
			if p := r.Paired; p != nil && p.Pairs > 0 {
				pairs := make([]string, len(p.PairP99))
				for i, v := range p.PairP99 {
					pairs[i] = fmt.Sprintf("%.2f -> %.2f", v[0], v[1])
				}
				add(what, fmt.Sprintf("p99 pooled over %d interleaved pairs %.2f ms -> %.2f ms (%+.0f%%); each pair's: %s ms",
					p.Pairs, p.BaseP99, p.HungP99, 100*(safeDiv(p.HungP99, p.BaseP99)-1), strings.Join(pairs, ", ")),
					p.BaseP99 > 0 && p.HungP99 <= 1.1*p.BaseP99)
				continue
			}
			base := rep.find("steady", r.PBX, r.Sync, r.Rate)
			if base == nil {
				continue
			}
			a, b := base.Latency["all"].P99, r.Latency["all"].P99
			add(what, fmt.Sprintf("p99 %.2f ms -> %.2f ms (%+.0f%%)", a, b, 100*(safeDiv(b, a)-1)), a > 0 && b <= 1.1*a)
		case "backlog":
			post := rep.baseline("net/http POST", "")
			all := r.Attempts >= r.Webhooks && r.Pending == 0
			g := rssGrowth(r.Series)
			add(fmt.Sprintf("backlog %s: %d drain >= 10,000/s and >= 0.5 x raw POST, every attempt recorded, flat RSS", r.Sync, r.Calls),
				fmt.Sprintf("%.0f/s = %.2f x raw POST, %d attempts for %d webhooks, %d pending, %+.1f MB RSS over the second half",
					r.WebhooksPerSec, safeDiv(r.WebhooksPerSec, post), r.Attempts, r.Webhooks, r.Pending, g),
				r.WebhooksPerSec >= 10000 && all && (post == 0 || r.WebhooksPerSec >= 0.5*post) && g < 8)
		case "live":
			add(fmt.Sprintf("%s %s RSS <= 40 MB with %d live calls", r.PBX, r.Sync, r.Calls),
				fmt.Sprintf("%.0f live, RSS %.1f MB = %.1f MB anonymous + %.1f MB of mapped binary; %.1f KB anonymous a live call, %.1f KB of it live Go heap (heap %.1f MB; Go runtime: %s)",
					r.LiveCalls, r.RSSMB, r.RSSAnonMB, r.RSSFileMB, r.BytesPerLive/1024, r.HeapBytesPerLive/1024, r.HeapAllocMB, r.GoMemory), r.RSSMB <= 40 && r.LiveCalls >= float64(r.Calls))
		}
	}
	return out
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// line is a one-line progress summary.
func (r *Result) line() string {
	p := r.Latency["pop"]
	return fmt.Sprintf("%-8s %-10s %-6s rate=%-5.0f calls=%-6d ingest=%.0f ev/s webhooks=%.0f/s pop p50=%.2fms p99=%.2fms cpu/1k=%.2fs tx/call=%.1f peakRSS=%.0fMB %s",
		r.Scenario, r.PBX, r.Sync, r.Rate, r.Calls, r.IngestPerSec, r.WebhooksPerSec, p.P50, p.P99, r.CPUPer1000, r.TxPerCall, r.PeakRSSMB, strings.Join(r.Notes, "; "))
}

// WriteTable prints the report for a terminal.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "ctibench %s\nmachine: %s\n\n", rep.Started.Format("2006-01-02 15:04:05Z"), rep.Machine)
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpbx\tsync\tcalls/s\tcalls\tconc\tPBX ev/s\tcommit ev/s\twebhooks/s\tpop p50\tp95\tp99\tmax\trelease p50\tp99\tCPU s/1k calls\tpeak RSS MB\tstore MB/1k calls\t")
	for _, r := range rep.Results {
		p, rl := r.Latency["pop"], r.Latency["release"]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.2f\t\n",
			r.Scenario, r.PBX, r.Sync, num(r.Rate), r.Calls, r.Concurrency, num(r.IngestPerSec), num(r.CommittedPerSec), num(r.WebhooksPerSec),
			msf(p.P50, p.N), msf(p.P95, p.N), msf(p.P99, p.N), msf(p.Max, p.N), msf(rl.P50, rl.N), msf(rl.P99, rl.N),
			r.CPUPer1000, r.PeakRSSMB, r.StorePer1000MB)
	}
	tw.Flush()
	for _, r := range rep.Results {
		if b, ok := r.Latency["pop@burst"]; ok {
			fmt.Fprintf(w, "burst %s %s: calls started in the 10x burst: pop p50 %.2f p99 %.2f max %.2f ms\n", r.PBX, r.Sync, b.P50, b.P99, b.Max)
		}
		if r.Scenario == "floor" || r.Scenario == "floor@bursts" {
			fmt.Fprintf(w, "%s %s %s at %.0f calls/s, CPU a call: %s\n", r.Scenario, r.PBX, r.Sync, r.Rate, rep.floorLine(r))
		}
		if r.Scenario == "live" {
			fmt.Fprintf(w, "live %s %s: %.0f live calls, RSS %.1f MB, peak %.1f MB\n", r.PBX, r.Sync, r.LiveCalls, r.RSSMB, r.PeakRSSMB)
		}
		if r.Scenario == "backlog" {
			fmt.Fprintf(w, "backlog %s: %d deliveries drained at %.0f/s, %d attempts recorded, %d pending; RSS peak %.1f MB, second-half growth %+.1f MB; %s\n",
				r.Sync, r.Webhooks, r.WebhooksPerSec, r.Attempts, r.Pending, r.PeakRSSMB, rssGrowth(r.Series), strings.Join(r.Notes, "; "))
		}
		if len(r.Notes) > 0 && r.Scenario != "backlog" {
			fmt.Fprintf(w, "note %s %s %s %.0f: %s\n", r.Scenario, r.PBX, r.Sync, r.Rate, strings.Join(r.Notes, "; "))
		}
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nctibridge beside the raw baseline (same machine, same run):")
		tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "figure\tctibridge\tbaseline\traw\tratio\t")
		for _, x := range rep.Ratios {
			fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%.2f\t\n", x.Figure, num(x.Value), x.Unit, x.Baseline, num(x.Raw), x.Ratio)
		}
		tw.Flush()
	}
	if len(rep.Baselines) > 0 {
		fmt.Fprintln(w, "\nraw baselines:")
		for _, b := range rep.Baselines {
			fmt.Fprintf(w, "  %-28s %-6s %12s %-10s %s\n", b.Name, b.Sync, num(b.Value), b.Unit, b.Note)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (2 cores):")
		for _, t := range rep.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met   "
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", mark, t.Goal, t.Got)
		}
	}
}

func num(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func msf(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// WriteFiles writes report.json, results.csv and one latency plot per PBX
// and durability into dir.
func (rep *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "report.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, err
	}
	files = append(files, p)

	p = filepath.Join(dir, "results.csv")
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"scenario", "pbx", "sync", "rate_calls_per_s", "calls", "concurrency", "pbx_events", "ingest_events_per_s",
		"committed_events_per_s", "webhooks", "webhooks_per_s", "pop_p50_ms", "pop_p95_ms", "pop_p99_ms", "pop_max_ms",
		"release_p50_ms", "release_p95_ms", "release_p99_ms", "release_max_ms", "all_p50_ms", "all_p99_ms",
		"cpu_s_per_1000_calls", "peak_rss_mb", "rss_mb", "store_mb_per_1000_calls", "attempts_recorded", "deliveries_pending", "live_calls", "notes"})
	ff := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, r := range rep.Results {
		p, rl, al := r.Latency["pop"], r.Latency["release"], r.Latency["all"]
		cw.Write([]string{r.Scenario, r.PBX, r.Sync, ff(r.Rate), strconv.Itoa(r.Calls), strconv.Itoa(r.Concurrency), strconv.FormatInt(r.Frames, 10),
			ff(r.IngestPerSec), ff(r.CommittedPerSec), strconv.FormatInt(r.Webhooks, 10), ff(r.WebhooksPerSec),
			ff(p.P50), ff(p.P95), ff(p.P99), ff(p.Max), ff(rl.P50), ff(rl.P95), ff(rl.P99), ff(rl.Max), ff(al.P50), ff(al.P99),
			ff(r.CPUPer1000), ff(r.PeakRSSMB), ff(r.RSSMB), ff(r.StorePer1000MB), strconv.FormatInt(r.Attempts, 10),
			strconv.FormatInt(r.Pending, 10), ff(r.LiveCalls), strings.Join(r.Notes, "; ")})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	files = append(files, p)

	seen := map[string]bool{}
	for _, r := range rep.Results {
		key := r.PBX + "-" + r.Sync
		if r.Scenario != "steady" || seen[key] {
			continue
		}
		seen[key] = true
		var pts []point
		for _, s := range rep.Results {
			if s.Scenario == "steady" && s.PBX == r.PBX && s.Sync == r.Sync {
				pts = append(pts, point{s.Rate, s.Latency["pop"]})
			}
		}
		p := filepath.Join(dir, "latency-"+key+".png")
		if err := plotLatency(p, fmt.Sprintf("screen pop latency, %s, synchronous=%s", r.PBX, r.Sync), pts); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	return files, nil
}

// cpuGot is a run's CPU a call beside the floor's at the same pace.
func (rep *Report) cpuGot(r *Result, floor string) string {
	got := fmt.Sprintf("%.2f ms", r.CPUPer1000)
	if f := rep.find(floor, r.PBX, r.Sync, r.Rate); f != nil && f.CPUPer1000 > 0 {
		got += fmt.Sprintf(" = %.1f x the floor at this pace, %.2f ms (read and parse every event, commit, POST and record every CRM event, nothing else)",
			r.CPUPer1000/f.CPUPer1000, f.CPUPer1000)
	}
	return got
}

// floorLine is the floor's stages and serve beside them, CPU a call.
func (rep *Report) floorLine(all *Result) string {
	var b strings.Builder
	suffix, run := "", "steady"
	if strings.HasSuffix(all.Scenario, "@bursts") {
		suffix, run = "@bursts", "bursts"
	}
	for i, name := range floorStages {
		f := rep.find(name+suffix, all.PBX, all.Sync, all.Rate)
		if f == nil {
			continue
		}
		fmt.Fprintf(&b, "%s%s %.2f ms", map[bool]string{true: "", false: ", + "}[i == 0], []string{"read and parse", "commits", "POSTs", "delivery records"}[i], f.CPUPer1000)
	}
	if s := rep.find(run, all.PBX, all.Sync, all.Rate); s != nil && all.CPUPer1000 > 0 {
		fmt.Fprintf(&b, "; serve %.2f ms = %.1f x", s.CPUPer1000, s.CPUPer1000/all.CPUPer1000)
	}
	return b.String()
}
