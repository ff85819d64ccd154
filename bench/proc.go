package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles cmd/ctibridge into dir and returns the binary's path. It
// runs the go tool in the current directory, which must be inside the
// module; flags go to go build (tests pass -race to reuse their cache).
func Build(ctx context.Context, dir string, flags ...string) (string, error) {
	bin := filepath.Join(dir, "ctibridge")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/ctibridge/ctibridge/cmd/ctibridge")
	cmd := exec.CommandContext(ctx, "go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: building ctibridge: %v\n%s", err, out)
	}
	return bin, nil
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
	cmd  *exec.Cmd
	pid  int
	http string // host:port of its API
	db   string
	done chan error

	mu     sync.Mutex
	stderr bytes.Buffer // last lines, for errors
}

// startServe writes the config into dir and starts the binary with
// --set store.synchronous=sync, returning once its API listens.
func startServe(bin, dir string, conf serveConf) (*child, error) {
	path := filepath.Join(dir, "ctibridge.yaml")
	if err := os.WriteFile(path, []byte(conf.yaml()), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", path, "--set", "store.synchronous="+conf.sync)
	// CTIBENCH_SERVE_ENV adds variables for the child only, e.g.
	// "GOMEMLIMIT=48MiB GOGC=50", to try runtime settings.
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("CTIBENCH_SERVE_ENV"))...)
	errp, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid, db: conf.db, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go c.readLog(errp, addr)
	go func() { c.done <- cmd.Wait() }()
	select {
	case a := <-addr:
		c.http = a
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("ctibridge serve exited: %v: %s", err, c.tail())
	case <-time.After(30 * time.Second):
		c.kill()
		return nil, fmt.Errorf("ctibridge serve did not start: %s", c.tail())
	}
}

// readLog keeps the tail of the child's log and finds the API address in
// its "ctibridge running" line.
func (c *child) readLog(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "ctibridge running" && rec.HTTP != "" {
			select {
			case addr <- rec.HTTP:
			default:
			}
		}
		c.mu.Lock()
		c.stderr.Write(line)
		c.stderr.WriteByte('\n')
		if c.stderr.Len() > 64<<10 {
			b := c.stderr.Bytes()
			c.stderr = *bytes.NewBuffer(append([]byte(nil), b[len(b)-32<<10:]...))
		}
		c.mu.Unlock()
	}
}

func (c *child) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stderr.String()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(30 * time.Second):
		c.kill()
		return errors.New("ctibridge serve did not stop within 30s of SIGTERM")
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
}

// metrics scrapes /metrics into name{labels} → value.
func (c *child) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + c.http + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// cpu returns the child's user+system CPU time from /proc/PID/stat.
func (c *child) cpu() time.Duration { return procCPU(c.pid) }

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// mem returns VmRSS and VmHWM (peak RSS) in bytes.
func (c *child) mem() (rss, peak int64) { return ProcMem(c.pid) }

// ProcMem returns a process's VmRSS and VmHWM (peak RSS) in bytes, 0 if it
// is gone.
func ProcMem(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

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
