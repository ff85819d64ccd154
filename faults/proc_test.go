package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/internal/serveproc"
)

var workDir string // removed by TestMain

// binary builds cmd/ctibridge once per test run. It is built without -race:
// it is the product under test, not the test, and a race-built child would
// slow every scenario several-fold.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := serveproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// conf is the child's config file; fields left zero take the product's
// defaults. Timers are short so faults are seen and healed quickly.
type conf struct {
	PBXType, PBXAddr, PBXUser, PBXSecret string
	PingInterval, ActionTimeout          string
	DB, Sync                             string
	MaxQueued                            int // store.max_queued_events; 0: the default
	Endpoints                            []endpoint
	RetryWindow, Timeout                 string
	AllowLoopback                        *bool
	LogLevel                             string
	raw                                  string // the whole file, as read back for a restart
}

type endpoint struct{ ID, URL, Secret string }

func (c conf) yaml() string {
	if c.raw != "" {
		return c.raw
	}
	var b strings.Builder
	typ := c.PBXType
	if typ == "" {
		typ = "asterisk"
	}
	fmt.Fprintf(&b, "pbx:\n  name: faults\n  type: %s\n  address: %q\n", typ, c.PBXAddr)
	if typ == "asterisk" {
		user := c.PBXUser
		if user == "" {
			user = "bridge"
		}
		fmt.Fprintf(&b, "  username: %q\n", user)
	}
	fmt.Fprintf(&b, "  secret: %q\n  backoff_max: 300ms\n", c.PBXSecret)
	fmt.Fprintf(&b, "  ping_interval: %s\n  action_timeout: %s\n", or(c.PingInterval, "500ms"), or(c.ActionTimeout, "1s"))
	fmt.Fprintf(&b, "store:\n  path: %q\n  synchronous: %s\n  retention_days: 0\n", c.DB, or(c.Sync, "FULL"))
	if c.MaxQueued > 0 {
		fmt.Fprintf(&b, "  max_queued_events: %d\n", c.MaxQueued)
	}
	fmt.Fprintf(&b, "http:\n  listen: 127.0.0.1:0\nlog:\n  level: %s\n  format: json\n", or(c.LogLevel, "debug"))
	if typ == "asterisk" {
		b.WriteString("calls:\n  inbound_contexts: [inbound]\n")
	} else {
		b.WriteString("calls:\n  inbound_contexts: []\n")
	}
	fmt.Fprintf(&b, "delivery:\n  retry_window: %s\n  timeout: %s\n", or(c.RetryWindow, "1h"), or(c.Timeout, "2s"))
	if c.AllowLoopback != nil {
		fmt.Fprintf(&b, "  allow_loopback: %t\n", *c.AllowLoopback)
	}
	if len(c.Endpoints) > 0 {
		b.WriteString("webhooks:\n")
	}
	for _, e := range c.Endpoints {
		// No event filter: every type is due, so every committed event must
		// have a delivery row.
		fmt.Fprintf(&b, "  - id: %s\n    url: %q\n    secret: %q\n", e.ID, e.URL, e.Secret)
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// proc is one running `ctibridge serve`.
type proc struct {
	*serveproc.Process
	t    testing.TB
	cmd  *exec.Cmd
	log  procLog
	done <-chan struct{}
}

// procLog reads the child's log: tests grep it for errors that must be
// there and secrets that must not.
type procLog struct{ p *serveproc.Process }

func (l procLog) String() string    { return l.p.Log() }
func (l procLog) tail(n int) string { return l.p.LogTail(n) }

// procOpts tune how the child is started.
type procOpts struct {
	Env   []string
	Attr  *syscall.SysProcAttr
	Args  []string // extra serve flags (--set ...)
	NoAPI bool     // do not wait for the API (the child may exit at start)
}

// startProc writes cfg into dir and starts serve on it. It returns once the
// API listens (its address is read from the "ctibridge running" line).
func startProc(t testing.TB, dir string, cfg conf, o procOpts) *proc {
	t.Helper()
	sp, err := serveproc.Start(serveproc.Options{Bin: binary(t), Dir: dir, Config: cfg.yaml(), Args: o.Args,
		Env: append(childEnv(), o.Env...), Attr: o.Attr, NoAPI: o.NoAPI})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: sp, t: t, cmd: sp.Cmd, log: procLog{sp}, done: sp.Done()}
	t.Cleanup(p.Kill)
	return p
}

// childEnv is this process's environment without the suite's own
// CTIBRIDGE_FAULTS_* knobs: serve reads every CTIBRIDGE_* variable as a
// config key and refuses to start on an unknown one.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CTIBRIDGE_FAULTS_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) kill() { p.Kill() }

// term stops the child with SIGTERM. The bound is liveness (serve does
// exit), not speed: a CI host busy with parallel children once took over
// 30 s.
func (p *proc) term() error  { return p.Term(2 * time.Minute) }
func (p *proc) exited() bool { return p.Exited() }

var httpc = &http.Client{Timeout: 20 * time.Second}

// get returns the status and JSON body of a GET on the child's API.
func (p *proc) get(path string) (int, map[string]any, error) {
	resp, err := httpc.Get("http://" + p.HTTP + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body, nil
}

// ready reports whether /readyz says ready.
func (p *proc) ready() bool {
	code, _, err := p.get("/readyz")
	return err == nil && code == 200
}

// liveCalls is the length of GET /v1/calls (-1 on error).
func (p *proc) liveCalls() int {
	code, body, err := p.get("/v1/calls")
	if err != nil || code != 200 {
		return -1
	}
	calls, _ := body["calls"].([]any)
	return len(calls)
}

// metrics scrapes /metrics into "name{labels}" → value (nil on error).
func (p *proc) metrics() map[string]float64 {
	m, _ := p.Metrics()
	return m
}

func (p *proc) mem() (rss, peak int64) { return p.Mem() }

func (p *proc) logLineAfter(since time.Time, subs ...string) (time.Time, bool) {
	return p.LogLineAfter(since, subs...)
}

// waitLog waits until the child has logged a line holding s.
func (p *proc) waitLog(s string, timeout time.Duration) bool {
	return waitFor(timeout, func() bool { return strings.Contains(p.log.String(), s) })
}

// logMark is where the log ends now: waitLogSince(mark, ...) then waits for
// a line written after it, not one an earlier round of a fault left.
func (p *proc) logMark() int { return len(p.log.String()) }

func (p *proc) waitLogSince(mark int, s string, timeout time.Duration) bool {
	return waitFor(timeout, func() bool { return strings.Contains(p.log.String()[mark:], s) })
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
