package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/store"
	"github.com/staskobzar/goami2"
)

// The floor scenario measures the least CPU a call can cost at a steady
// run's pace with this design's guarantees, on the same machine: a child
// process that reads and parses every PBX event the run sends, and at each
// event that makes CRM events commits them durably (the same rows through
// store.Commit), POSTs each one signed to the same receiver and records its
// delivery (store.RecordAttempts): what serve must do, with no call model,
// no JSON of its own and one goroutine. Its CPU a call is the denominator
// the steady runs' CPU a call is read against: the part of a call's cost
// that comes from being woken for its events, syscalls and fsyncs, which
// no implementation of the same guarantees avoids.

// floorEnv names the spec file of a floor child; a process started with it
// runs FloorChild's work instead of its own.
const floorEnv = "CTIBENCH_FLOOR_SPEC"

type floorSpec struct {
	PBX    string `json:"pbx"`
	Addr   string `json:"addr"`
	Sync   string `json:"sync"`
	DB     string `json:"db"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
	// Frames is how many event frames the run sends; Triggers maps a
	// frame's key (frameKey) to the CRM events it makes.
	Frames   int            `json:"frames"`
	Triggers map[uint64]int `json:"triggers"`
	Webhooks int            `json:"webhooks"`
	// Stages is how much of the work the child does (floorStages): 1
	// reads and parses, 2 also commits, 3 also POSTs, 4 also records the
	// deliveries.
	Stages int `json:"stages"`
}

// floorStages name the floor's cumulative stages, as result scenarios.
var floorStages = []string{"floor-parse", "floor-commit", "floor-post", "floor"}

type floorOut struct {
	CPUNanos int64  `json:"cpu_ns"` // from the login to the last delivery recorded
	Frames   int    `json:"frames"`
	Commits  int    `json:"commits"` // transactions: event commits and attempt records
	Posts    int    `json:"posts"`
	Err      string `json:"err,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameKey names an event by its bytes without the framing around them
// (AMI: the trailing blank line; ESL: the Content-Length envelope): its
// length and CRC, cheap enough not to weigh on the floor it is part of.
func frameKey(event []byte) uint64 {
	b := bytes.TrimSpace(event)
	return uint64(len(b))<<32 | uint64(crc32.Checksum(b, castagnoli))
}

// eventBytes is a prepared frame as a reader of the PBX sees the event.
func eventBytes(pbx string, frame []byte) []byte {
	if pbx == "freeswitch" {
		_, body, _ := bytes.Cut(frame, []byte("\n\n"))
		return body
	}
	return frame
}

// FloorChild runs a floor child's work when this process was started as one
// and reports true with the exit code; otherwise it returns at once.
// Programs that run the floor scenario (cmd/ctibench, this package's tests)
// call it first thing.
func FloorChild() (int, bool) {
	path := os.Getenv(floorEnv)
	if path == "" {
		return 0, false
	}
	out := floorOut{}
	var spec floorSpec
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err == nil {
		out, err = runFloor(spec)
	}
	if err != nil {
		out.Err = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	if err != nil {
		return 1, true
	}
	return 0, true
}

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func runFloor(spec floorSpec) (floorOut, error) {
	var out floorOut
	ctx := context.Background()
	// The same rows the backlog and store baselines use; made before the
	// clock starts.
	sim, err := newSimulator(spec.PBX)
	if err != nil {
		return out, err
	}
	sim.close()
	var all []row
	if err := rows(sim.tpls, max(1, spec.Webhooks), max(1, spec.Webhooks), func(rs []row) error { all = rs; return nil }); err != nil {
		return out, err
	}
	db, err := store.Open(spec.DB, store.Options{Synchronous: spec.Sync})
	if err != nil {
		return out, err
	}
	defer db.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	conn, err := net.Dial("tcp", spec.Addr)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	next, err := login(spec.PBX, conn)
	if err != nil {
		return out, err
	}
	cpu0 := cpuNow()
	used := 0
	for out.Frames < spec.Frames || spec.Stages >= 3 && out.Posts < spec.Webhooks {
		ev, err := next()
		if err != nil {
			return out, fmt.Errorf("after %d of %d frames, %d of %d webhooks: %w", out.Frames, spec.Frames, out.Posts, spec.Webhooks, err)
		}
		out.Frames++
		key := frameKey(ev)
		k := spec.Triggers[key]
		if k == 0 || used == len(all) || spec.Stages < 2 {
			continue
		}
		delete(spec.Triggers, key)
		rs := all[used:min(used+k, len(all))]
		used += len(rs)
		if err := db.Commit(ctx, batchOf(rs, "crm")); err != nil {
			return out, err
		}
		out.Commits++
		if spec.Stages < 3 {
			continue
		}
		attempts := make([]bridge.Attempt, 0, len(rs))
		for _, r := range rs {
			start := time.Now()
			if err := post(ctx, client, spec.URL, spec.Secret, r.rec); err != nil {
				return out, err
			}
			out.Posts++
			attempts = append(attempts, bridge.Attempt{EventID: r.rec.ID, EndpointID: "crm", At: start,
				StatusCode: http.StatusNoContent, Latency: time.Since(start), Outcome: bridge.DeliveryDelivered})
		}
		if spec.Stages < 4 {
			continue
		}
		if err := errors.Join(db.RecordAttempts(ctx, attempts)...); err != nil {
			return out, err
		}
		out.Commits++
	}
	out.CPUNanos = cpuNow() - cpu0
	return out, nil
}

// login logs in to the simulated PBX as serve does (AMI Login; ESL auth and
// a subscription) and returns a reader of parsed events' bytes.
func login(pbx string, conn net.Conn) (func() ([]byte, error), error) {
	if pbx == "asterisk" {
		rd := ami.NewReader(conn, 0, 0)
		if _, err := rd.ReadBanner(); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(conn, "Action: Login\r\nActionID: floor\r\nUsername: bridge\r\nSecret: bridgepass\r\n\r\n"); err != nil {
			return nil, err
		}
		for {
			f, err := rd.ReadFrame()
			if err != nil {
				return nil, err
			}
			if bytes.Contains(f, []byte("Response: Success")) {
				break
			}
			if bytes.Contains(f, []byte("Response: Error")) {
				return nil, fmt.Errorf("login refused: %s", bytes.TrimSpace(f))
			}
		}
		return func() ([]byte, error) {
			for {
				f, err := rd.ReadFrame()
				if err != nil {
					return nil, err
				}
				if _, err := goami2.Parse(string(f)); err != nil {
					return nil, err
				}
				// Asterisk's greeting after a login, not one of the run's.
				if !bytes.HasPrefix(f, []byte("Event: FullyBooted")) {
					return f, nil
				}
			}
		}, nil
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	reply := func(cmd string) error {
		if cmd != "" {
			if _, err := io.WriteString(conn, cmd+"\n\n"); err != nil {
				return err
			}
		}
		f, err := esl.ReadFrame(br, 0)
		if err != nil {
			return err
		}
		if r := f.Get("Reply-Text"); cmd != "" && !bytes.HasPrefix([]byte(r), []byte("+OK")) {
			return fmt.Errorf("%s: %s", cmd, r)
		}
		return nil
	}
	for _, cmd := range []string{"", "auth ClueCon", "event plain ALL"} {
		if err := reply(cmd); err != nil {
			return nil, err
		}
	}
	return func() ([]byte, error) {
		f, err := esl.ReadFrame(br, 0)
		if err != nil {
			return nil, err
		}
		if _, err := esl.ParsePlain(f.Body); err != nil {
			return nil, err
		}
		return f.Body, nil
	}, nil
}

// floor plays a steady run's calls at rate to a floor child (see above)
// doing stages of the work.
func (h *harness) floor(ctx context.Context, pbx, sync string, rate float64, stages int, bursts bool) (*Result, error) {
	sim, calls, sch, err := h.steadyCalls(pbx, rate, bursts)
	if err != nil {
		return nil, err
	}
	defer sim.close()
	name := floorStages[stages-1]
	if bursts {
		name += "@bursts"
	}
	h.logf("%s %s %s: %.0f calls/s for %s, the bare work in a child", pbx, sync, name, rate, h.o.Duration)
	finalize(pbx, calls, sch)
	secret := bridge.NewWebhookSecret()
	rcv, err := newReceiver(secret, false)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	dir := h.dir()
	spec := floorSpec{PBX: pbx, Addr: sim.addr(), Sync: sync, DB: filepath.Join(dir, "floor.db"), URL: rcv.URL, Secret: secret,
		Triggers: map[uint64]int{}, Stages: stages}
	for _, c := range calls {
		spec.Frames += c.last
		for i := range c.last {
			if k := c.tpl.cumHooks[i+1] - c.tpl.cumHooks[i]; k > 0 {
				spec.Triggers[frameKey(eventBytes(pbx, c.frame(i)))] += k
				spec.Webhooks += k
			}
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specPath := filepath.Join(dir, "floor.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, 2*sch.start(len(calls))+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, exe)
	cmd.Env = append(os.Environ(), floorEnv+"="+specPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	loggedIn := func() bool {
		if sim.ami != nil {
			return sim.ami.LoggedIn() > 0
		}
		return sim.esl.Subscriptions() > 0
	}
	for !loggedIn() {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("floor child exited before logging in (%v): %s %s", err, stdout.Bytes(), stderr.Bytes())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t0 := time.Now()
	if err := play(runCtx, sim.write, calls, sch); err != nil {
		return nil, fmt.Errorf("playing: %w", err)
	}
	waitErr := <-exited
	var out floorOut
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.Err != "" || waitErr != nil {
		return nil, fmt.Errorf("floor child: %v %s: %s", waitErr, out.Err, stderr.Bytes())
	}
	r := &Result{Scenario: name, PBX: pbx, Sync: sync, Rate: rate, Calls: len(calls), Frames: int64(out.Frames),
		Concurrency: int(rate*sch.dur.Seconds() + 0.5), Committed: int64(out.Posts), Webhooks: rcv.count(),
		BadSignatures: rcv.bad.Load(), Elapsed: time.Since(t0).Seconds()}
	r.CPUSeconds = float64(out.CPUNanos) / 1e9
	r.CPUPer1000 = r.CPUSeconds / float64(len(calls)) * 1000
	r.TxPerCall = float64(out.Commits) / float64(len(calls))
	if stages >= 3 && r.Webhooks != int64(spec.Webhooks) {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d webhooks received", r.Webhooks, spec.Webhooks))
	}
	return r, nil
}
