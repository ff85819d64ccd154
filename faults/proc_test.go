package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bench"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	workDir   string // removed by TestMain
)

// binary builds cmd/ctibridge once per test run. It is built without -race:
// it is the product under test, not the test, and a race-built child would
// slow every scenario several-fold.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(workDir, "ctibridge")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/ctibridge/ctibridge/cmd/ctibridge")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
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
	t    testing.TB
	cmd  *exec.Cmd
	Pid  int
	HTTP string // host:port of its API
	log  *logBuf
	done chan struct{}
	err  error // exit status, once done is closed
}

// logBuf keeps everything the child logged: tests grep it for errors that
// must be there and secrets that must not.
type logBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	lines int
}

func (l *logBuf) write(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(line)
	l.b.WriteByte('\n')
	l.lines++
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

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
	path := filepath.Join(dir, "ctibridge.yaml")
	if err := os.WriteFile(path, []byte(cfg.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--config", path}, o.Args...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(childEnv(), o.Env...)
	cmd.SysProcAttr = o.Attr
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, Pid: cmd.Process.Pid, log: &logBuf{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.log.write(line)
			var rec struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "ctibridge running" {
				select {
				case addr <- rec.HTTP:
				default:
				}
			}
		}
	}()
	go func() {
		<-logDone // Wait closes the pipe: read it all first
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	if o.NoAPI {
		return p
	}
	select {
	case p.HTTP = <-addr:
	case <-p.done:
		t.Fatalf("serve exited at start: %v\n%s", p.err, p.log.tail(4000))
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start within 30s\n%s", p.log.tail(4000))
	}
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

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits for a clean exit.
func (p *proc) term() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return errors.New("no exit within 30s of SIGTERM")
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

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

// metrics scrapes /metrics into "name{labels}" → value.
func (p *proc) metrics() map[string]float64 {
	resp, err := httpc.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

// mem returns the child's VmRSS and VmHWM (peak) in bytes.
func (p *proc) mem() (rss, peak int64) { return bench.ProcMem(p.Pid) }

// logLineAfter returns the time of the first line the child logged after
// since that holds one of the strings (the line's own "time" field).
func (p *proc) logLineAfter(since time.Time, subs ...string) (time.Time, bool) {
	for line := range strings.SplitSeq(p.log.String(), "\n") {
		if !slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(line, s) }) {
			continue
		}
		var rec struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Time.After(since) {
			return rec.Time, true
		}
	}
	return time.Time{}, false
}

// waitLog waits until the child has logged a line holding s.
func (p *proc) waitLog(s string, timeout time.Duration) bool {
	return waitFor(timeout, func() bool { return strings.Contains(p.log.String(), s) })
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
