package faults

import (
	"cmp"
	"database/sql"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	_ "github.com/mattn/go-sqlite3" // the checks read the child's store directly
)

// stored is one committed event and where its delivery to one endpoint
// stands, read straight from the child's SQLite file.
type stored struct {
	Seq      int64
	ID       string
	Type     string
	Conv     string
	Sequence int64
	Status   string // deliveries.status for the endpoint; "" when there is no row
}

// readStore returns every event in commit order with its delivery status
// for endpoint, and the result of PRAGMA integrity_check.
func readStore(t testing.TB, path, endpoint string) ([]stored, string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	rows, err := db.Query(`SELECT e.seq, e.id, e.type, e.conversation_id, e.sequence, COALESCE(d.status, '')
		FROM events e LEFT JOIN deliveries d ON d.event_seq = e.seq AND d.endpoint_id = ? ORDER BY e.seq`, endpoint)
	if err != nil {
		t.Fatalf("reading events: %v", err)
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.Seq, &s.ID, &s.Type, &s.Conv, &s.Sequence, &s.Status); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, integrity
}

// checks select the call-model properties a scenario promises on top of
// "nothing committed is lost".
type checks struct {
	Order     bool // first deliveries of a conversation arrive in sequence order
	EndsOnce  bool // every conversation has exactly one call.ended
	OnePop    bool // at most one call.ringing per conversation and agent
	Delivered bool // every delivery row is 'delivered' (the run drained)
}

var allChecks = checks{Order: true, EndsOnce: true, OnePop: true, Delivered: true}

// verdict is what a run proved, and what it broke.
type verdict struct {
	Sent      int // events committed (each due to the endpoint)
	Delivered int // distinct committed events acknowledged
	Lost      int // committed, never acknowledged
	Dups      int // acknowledgements beyond the first per webhook-id
	Problems  []string
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.Problems) < 30 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	} else if len(v.Problems) == 30 {
		v.Problems = append(v.Problems, "...")
	}
}

// analyse compares the store with what a receiver acknowledged.
func analyse(events []stored, hits []hit, c checks) verdict {
	var v verdict
	inStore := make(map[string]*stored, len(events))
	for i := range events {
		e := &events[i]
		inStore[e.ID] = e
		v.Sent++
		if e.Status == "" {
			v.problem("event %s (%s) committed without a delivery row for the endpoint", e.ID, e.Type)
		} else if c.Delivered && e.Status != "delivered" {
			v.problem("event %s (%s) has delivery status %q at the end", e.ID, e.Type, e.Status)
		}
	}
	// The first acknowledgement of each id, in arrival order.
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(a.N, b.N) })
	first := map[string]hit{}
	var firsts []hit
	for _, h := range hits {
		if !h.ok() {
			continue
		}
		if _, seen := first[h.ID]; seen {
			v.Dups++
			continue
		}
		first[h.ID] = h
		firsts = append(firsts, h)
		if inStore[h.ID] == nil {
			v.problem("webhook %s (%s) delivered but not in the outbox: sent before its commit?", h.ID, h.Type)
		}
	}
	for _, e := range events {
		if _, ok := first[e.ID]; ok {
			v.Delivered++
		} else {
			v.Lost++
			v.problem("LOST: event %s (%s, conversation %s #%d) committed but never delivered", e.ID, e.Type, e.Conv, e.Sequence)
		}
	}
	// A duplicate must carry the id of the original: the same moment of a
	// conversation under two ids is a duplicate the CRM cannot detect.
	type key struct {
		conv string
		seq  int64
	}
	byKey := map[key]string{}
	for _, e := range events {
		if e.Conv == "" {
			continue
		}
		k := key{e.Conv, e.Sequence}
		if other, ok := byKey[k]; ok {
			v.problem("conversation %s #%d committed twice, as %s and %s", e.Conv, e.Sequence, other, e.ID)
		}
		byKey[k] = e.ID
	}
	if c.Order {
		last := map[string]hit{}
		for _, h := range firsts {
			if h.Conv == "" {
				continue
			}
			if p, ok := last[h.Conv]; ok && h.Seq <= p.Seq {
				v.problem("ORDER: conversation %s: #%d (%s) first delivered after #%d (%s)", h.Conv, h.Seq, h.Type, p.Seq, p.Type)
			}
			last[h.Conv] = h
		}
	}
	if c.EndsOnce || c.OnePop {
		agents := map[string]string{}
		for _, h := range hits {
			if h.Type == "call.ringing" {
				agents[h.ID] = h.Agent
			}
		}
		ended := map[string]int{}
		pops := map[string]int{}
		var convs []string
		for _, e := range events {
			if e.Conv == "" {
				continue
			}
			if _, ok := ended[e.Conv]; !ok {
				ended[e.Conv] = 0
				convs = append(convs, e.Conv)
			}
			switch e.Type {
			case "call.ended":
				ended[e.Conv]++
			case "call.ringing":
				pops[e.Conv+" agent "+agents[e.ID]]++
			}
		}
		if c.EndsOnce {
			for _, conv := range convs {
				if n := ended[conv]; n != 1 {
					v.problem("conversation %s has %d call.ended (want exactly 1)", conv, n)
				}
			}
		}
		if c.OnePop {
			for k, n := range pops {
				if n > 1 {
					v.problem("DUPLICATE POP: %s got %d call.ringing", k, n)
				}
			}
		}
	}
	return v
}

// assertVerdict fails the test with every problem found.
func assertVerdict(t testing.TB, name string, v verdict) {
	t.Helper()
	if v.Sent == 0 {
		t.Errorf("%s: no event was committed: the scenario tested nothing", name)
	}
	if len(v.Problems) > 0 {
		t.Errorf("%s: %d committed, %d delivered, %d lost, %d duplicates:\n  %s", name, v.Sent, v.Delivered, v.Lost, v.Dups,
			strings.Join(v.Problems, "\n  "))
	}
}

// result is one row of the table `make faults` prints.
type result struct {
	Scenario    string
	Runs        int
	Sent        int
	Delivered   int
	Lost        int
	Dups        int
	MaxRecovery time.Duration
	Notes       string
}

var (
	resultsMu sync.Mutex
	results   []result
)

// record adds a row for the table, from a verdict.
func record(scenario string, runs int, v verdict, recovery time.Duration, notes string) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results = append(results, result{Scenario: scenario, Runs: runs, Sent: v.Sent, Delivered: v.Delivered,
		Lost: v.Lost, Dups: v.Dups, MaxRecovery: recovery, Notes: notes})
}

func writeTable(w io.Writer) {
	resultsMu.Lock()
	rs := append([]result(nil), results...)
	resultsMu.Unlock()
	slices.SortStableFunc(rs, func(a, b result) int { return cmp.Compare(a.Scenario, b.Scenario) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\truns\tevents sent\tdelivered\tlost\tduplicated\tmax recovery\t")
	for _, r := range rs {
		rec := "-"
		if r.MaxRecovery > 0 {
			rec = r.MaxRecovery.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Scenario, r.Runs, r.Sent, r.Delivered, r.Lost, r.Dups, rec)
	}
	tw.Flush()
	for _, r := range rs {
		if r.Notes != "" {
			fmt.Fprintf(w, "  %s: %s\n", r.Scenario, r.Notes)
		}
	}
}

// long reports whether the long versions run (make faults).
func long() bool { return os.Getenv("CTIBRIDGE_FAULTS_LONG") == "1" }

// count picks the short or long size of a scenario, or the value of an
// environment variable (make faults KILLS=50 ...).
func count(env string, short, longN int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	if long() {
		return longN
	}
	return short
}

func TestMain(m *testing.M) {
	var err error
	workDir, err = os.MkdirTemp("", "ctibridge-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(workDir)
	if len(results) > 0 && (long() || os.Getenv("CTIBRIDGE_FAULTS_OUT") != "") {
		fmt.Println()
		writeTable(os.Stdout)
		if path := os.Getenv("CTIBRIDGE_FAULTS_OUT"); path != "" {
			if f, err := os.Create(path); err == nil {
				writeTable(f)
				f.Close()
			}
		}
	}
	os.Exit(code)
}
