package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/internal/serveproc"
)

// Build compiles cmd/ctibridge and returns the binary's path; flags go to
// go build (tests pass -race to reuse their cache). dir is unused: the
// binary is built once per process (serveproc.Build).
func Build(ctx context.Context, dir string, flags ...string) (string, error) {
	return serveproc.Build(flags...)
}

// endpointConf is one webhook endpoint of the config file.
type endpointConf struct{ id, url, secret string }

// serveConf is what the harness puts in the child's config file.
type serveConf struct {
	pbx, pbxAddr string
	db           string
	sync         string
	endpoints    []endpointConf
}

func (c serveConf) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pbx:\n  name: bench\n  type: %s\n  address: %q\n", c.pbx, c.pbxAddr)
	if c.pbx == "asterisk" {
		b.WriteString("  username: bridge\n  secret: bridgepass\n")
	} else {
		b.WriteString("  secret: ClueCon\n")
	}
	fmt.Fprintf(&b, "store:\n  path: %q\n  synchronous: FULL\n  retention_days: 0\n", c.db)
	b.WriteString("http:\n  listen: 127.0.0.1:0\nlog:\n  level: info\n  format: json\n")
	if c.pbx == "asterisk" {
		b.WriteString("calls:\n  inbound_contexts: [inbound]\n")
	} else {
		b.WriteString("calls:\n  inbound_contexts: []\n")
	}
	b.WriteString("webhooks:\n")
	for _, e := range c.endpoints {
		fmt.Fprintf(&b, "  - id: %s\n    url: %q\n    secret: %q\n    events: [\"call.*\", \"recording.*\"]\n", e.id, e.url, e.secret)
	}
	return b.String()
}

// child is a running `ctibridge serve`.
type child struct {
	*serveproc.Process
	http string // host:port of its API
	db   string
}

// startServe writes the config into dir and starts the binary with
// --set store.synchronous=sync, returning once its API listens.
func startServe(bin, dir string, conf serveConf) (*child, error) {
	// CTIBENCH_SERVE_ENV adds variables for the child only, e.g.
	// "GOMEMLIMIT=48MiB GOGC=50", to try runtime settings.
	env := append(os.Environ(), strings.Fields(os.Getenv("CTIBENCH_SERVE_ENV"))...)
	p, err := serveproc.Start(serveproc.Options{Bin: bin, Dir: dir, Config: conf.yaml(),
		Args: []string{"--set", "store.synchronous=" + conf.sync}, Env: env})
	if err != nil {
		return nil, err
	}
	return &child{Process: p, http: p.HTTP, db: conf.db}, nil
}

func (c *child) tail() string { return c.LogTail(2000) }

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop() error { return c.Term(30 * time.Second) }

func (c *child) kill() { c.Kill() }

// metrics scrapes /metrics into name{labels} → value.
func (c *child) metrics() (map[string]float64, error) { return c.Metrics() }

// cpu returns the child's user+system CPU time.
func (c *child) cpu() time.Duration { return c.CPU() }

// mem returns VmRSS and VmHWM (peak RSS) in bytes.
func (c *child) mem() (rss, peak int64) { return c.Mem() }

// storeBytes is the SQLite file with its WAL.
func storeBytes(db string) int64 {
	var n int64
	for _, s := range []string{"", "-wal"} {
		if st, err := os.Stat(db + s); err == nil {
			n += st.Size()
		}
	}
	return n
}

// outcome is what the child's store says after a run.
type outcome struct {
	Events, Attempts, Delivered, Pending int64
}

// inspect counts rows in a stopped child's store, to check that every
// attempt was recorded.
func inspect(db, endpoint string) (outcome, error) {
	var o outcome
	h, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		return o, err
	}
	defer h.Close()
	for q, dst := range map[string]*int64{
		`SELECT count(*) FROM events`:                                                                     &o.Events,
		`SELECT count(*) FROM attempts WHERE endpoint_id = '` + endpoint + `'`:                            &o.Attempts,
		`SELECT count(*) FROM deliveries WHERE endpoint_id = '` + endpoint + `' AND status = 'delivered'`: &o.Delivered,
		`SELECT count(*) FROM deliveries WHERE endpoint_id = '` + endpoint + `' AND status = 'pending'`:   &o.Pending,
	} {
		if err := h.QueryRow(q).Scan(dst); err != nil {
			return o, err
		}
	}
	return o, nil
}
