// Package serveproc builds the ctibridge binary and runs `ctibridge serve`
// as a child process, for the tests and the benchmarks that need the real
// process (kill -9, RSS, CPU, the exit code): one harness, not one per
// suite. It does not import testing: the bench command uses it too.
package serveproc

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
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // build flags → binary
)

// Build compiles cmd/ctibridge once per process and set of flags (e.g.
// -race) into a directory of its own and returns the binary's path. The go
// tool runs in the current directory, which must be inside the module.
func Build(flags ...string) (string, error) {
	key := strings.Join(flags, " ")
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[key]; ok {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "ctibridge-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ctibridge")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/ctibridge/ctibridge/cmd/ctibridge")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ctibridge: %v\n%s", err, out)
	}
	built[key] = bin
	return bin, nil
}

// Options start a child.
type Options struct {
	Bin    string // the binary (Build)
	Dir    string // where the config file is written
	Config string // the config file's YAML
	Args   []string
	Env    []string             // the child's environment (nil: this process's)
	Attr   *syscall.SysProcAttr // e.g. resource limits
	// NoAPI returns once the child started, without waiting for its API
	// (the child may exit at start).
	NoAPI bool
	// StartTimeout bounds the wait for the API (default 30 s): a bound on
	// a failure, never on a measurement.
	StartTimeout time.Duration
}

// Process is a running `ctibridge serve`.
type Process struct {
	Cmd  *exec.Cmd
	Pid  int
	HTTP string // host:port of its API, from its "ctibridge running" log line
	log  logBuf
	done chan struct{}
	err  error // the exit status, once done is closed
}

// Start writes the config into o.Dir and starts serve on it. Unless
// o.NoAPI, it returns once the API listens.
func Start(o Options) (*Process, error) {
	path := filepath.Join(o.Dir, "ctibridge.yaml")
	// Readable by a child run as another user (the faults suite runs some as
	// nobody); a test config holds test secrets only.
	if err := os.WriteFile(path, []byte(o.Config), 0o644); err != nil { //nolint:gosec // see above
		return nil, err
	}
	cmd := exec.Command(o.Bin, append([]string{"serve", "--config", path}, o.Args...)...)
	cmd.Env = o.Env
	cmd.SysProcAttr = o.Attr
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, Pid: cmd.Process.Pid, done: make(chan struct{})}
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
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "ctibridge running" && rec.HTTP != "" {
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
	if o.NoAPI {
		return p, nil
	}
	wait := o.StartTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	select {
	case p.HTTP = <-addr:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("serve exited at start: %v\n%s", p.err, p.LogTail(4000))
	case <-time.After(wait):
		p.Kill()
		return nil, fmt.Errorf("serve did not start within %s\n%s", wait, p.LogTail(4000))
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Term sends SIGTERM and waits up to grace for a clean exit, then kills.
func (p *Process) Term(grace time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("no exit within %s of SIGTERM", grace)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended; Err is then its exit status.
func (p *Process) Done() <-chan struct{} { return p.done }
func (p *Process) Err() error            { return p.err }

// Log is everything the child logged (JSON lines).
func (p *Process) Log() string { return p.log.String() }

// LogTail is the last n bytes of the log.
func (p *Process) LogTail(n int) string {
	s := p.log.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// LogLineAfter returns the time of the first line logged after since that
// holds one of subs (the line's own "time" field).
func (p *Process) LogLineAfter(since time.Time, subs ...string) (time.Time, bool) {
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

var httpc = &http.Client{Timeout: 20 * time.Second}

// Metrics scrapes /metrics into "name{labels}" → value.
func (p *Process) Metrics() (map[string]float64, error) {
	resp, err := httpc.Get("http://" + p.HTTP + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("/metrics: " + resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
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
	return out, sc.Err()
}

// CPU is the process's user+system CPU time (from /proc/PID/stat).
func (p *Process) CPU() time.Duration { return CPU(p.Pid) }

// Mem is the process's VmRSS and VmHWM (peak RSS) in bytes.
func (p *Process) Mem() (rss, peak int64) { return Mem(p.Pid) }

// CPU returns a process's user+system CPU time, 0 if it is gone.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// Mem returns a process's VmRSS and VmHWM (peak RSS) in bytes, 0 if it is
// gone.
func Mem(pid int) (rss, peak int64) {
	v := status(pid)
	return v["VmRSS"], v["VmHWM"]
}

// MemSplit returns a process's resident memory in two parts: anonymous
// (its heap, stacks and SQLite's caches: what it costs the host) and
// file-backed (the pages of its binary and libraries, shared with the
// page cache and dropped first under pressure). 0, 0 if it is gone.
func MemSplit(pid int) (anon, file int64) {
	v := status(pid)
	return v["RssAnon"], v["RssFile"]
}

// status reads the sizes of /proc/<pid>/status in bytes, by name; empty
// if the process is gone.
func status(pid int) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, " kB")), 10, 64); err == nil {
			out[name] = kb << 10
		}
	}
	return out
}

// logBuf keeps everything the child logged: tests grep it for errors that
// must be there and secrets that must not.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) write(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(line)
	l.b.WriteByte('\n')
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
