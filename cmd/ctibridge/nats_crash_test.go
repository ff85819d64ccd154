package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/config"
	natssink "github.com/ctibridge/ctibridge/sinks/nats"
	"github.com/ctibridge/ctibridge/sinks/nats/natstest"
)

// natsProc is `ctibridge serve` as a child process publishing to NATS.
type natsProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	listen string
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
}

func (p *natsProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *natsProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.logs.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// count is how often s appears in the whole log.
func (p *natsProc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Count(p.logs.Bytes(), []byte(s))
}

func startNATSProc(t *testing.T, bin, cfgPath, listen string) *natsProc {
	t.Helper()
	p := &natsProc{t: t, listen: listen, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	return p
}

func (p *natsProc) ready() bool {
	resp, err := http.Get("http://" + p.listen + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func (p *natsProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (p *natsProc) term() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Errorf("no exit within 30s of SIGTERM\n%s", p.log())
	}
}

// pendingIn counts the sink's deliveries pending in the file.
func pendingIn(t *testing.T, dbPath string) int {
	n := 0
	for _, e := range sinkDeliveries(t, dbPath) {
		if e.status == "pending" {
			n++
		}
	}
	return n
}

// storeEvent is an event the outbox committed with a delivery to the sink.
type storeEvent struct {
	id, conv string
	seq      int64
	status   string
}

// sinkDeliveries reads the file (read-only, beside a running or dead
// process): every event due to the NATS sink and its delivery status.
func sinkDeliveries(t *testing.T, path string) []storeEvent {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT e.id, e.conversation_id, e.sequence, d.status FROM deliveries d JOIN events e ON e.seq = d.event_seq
		WHERE d.endpoint_id = ? ORDER BY e.seq`, config.NATSEndpointID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		t.Logf("read store: %v", err) // created but not migrated yet
		return nil
	}
	defer rows.Close()
	var out []storeEvent
	for rows.Next() {
		var e storeEvent
		if err := rows.Scan(&e.id, &e.conv, &e.seq, &e.status); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func streamMsgs(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natssink.DefaultStreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func streamLen(js jetstream.JetStream) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natssink.DefaultStreamName)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// ctibridge is killed with SIGKILL several times while it publishes a
// steady call load to JetStream, and restarted on the same file. At the end
// every event the outbox committed for the sink is in the stream exactly
// once, each conversation's events in their order: what was published but
// not yet marked delivered at a kill was sent again under the same
// Nats-Msg-Id and dropped by the stream.
func TestNATSSinkSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env := newNATSEnv(t)
	bin, js, sim, dbPath, listen, cfgPath := env.bin, env.js, env.sim, env.dbPath, env.listen, env.cfgPath

	// A steady load: five callers, each playing a call after another.
	var stopLoad atomic.Bool
	var played atomic.Int64
	var load sync.WaitGroup
	for range 5 {
		load.Add(1)
		go func() {
			defer load.Done()
			for !stopLoad.Load() {
				if err := sim.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true, Pace: time.Millisecond}); err != nil {
					return
				}
				played.Add(1)
			}
		}()
	}
	defer func() { stopLoad.Store(true); load.Wait() }()

	// Kill until three kills have landed mid-publish (deliveries pending in
	// the file at the kill), at most 20.
	const wantMid, maxKills = 3, 20
	kills, midPublish, resent := 0, 0, 0
	for ; midPublish < wantMid && kills < maxKills; kills++ {
		p := startNATSProc(t, bin, cfgPath, listen)
		if err := waitFor(t.Context(), 30*time.Second, p.ready); err != nil {
			t.Fatalf("start %d: not ready\n%s", kills, p.log())
		}
		// Kill once this process has published a few more events and has
		// more committed but not yet acknowledged: it is then publishing.
		before := streamLen(js)
		if err := waitFor(t.Context(), 60*time.Second, func() bool { return streamLen(js) >= before+10 }); err != nil {
			t.Fatalf("start %d: nothing published\n%s", kills, p.log())
		}
		_ = waitFor(t.Context(), 5*time.Second, func() bool { return pendingIn(t, dbPath) > 0 })
		p.kill()
		resent += p.count("already in the stream")
		pending := pendingIn(t, dbPath)
		if pending > 0 {
			midPublish++
		}
		t.Logf("kill %d: %d events in the stream, %d deliveries pending in the file", kills, streamLen(js), pending)
	}
	if midPublish < wantMid {
		t.Fatalf("%d of %d kills left a delivery pending: the test proved too little", midPublish, kills)
	}

	// The last process runs to the end: the load stops and every committed
	// event must reach the stream.
	p := startNATSProc(t, bin, cfgPath, listen)
	if err := waitFor(t.Context(), 30*time.Second, p.ready); err != nil {
		t.Fatalf("final start: not ready\n%s", p.log())
	}
	stopLoad.Store(true)
	load.Wait()
	waitSinkDrained(t, p, dbPath, js)
	p.term()
	resent += p.count("already in the stream")

	evs, msgs := checkSinkStream(t, dbPath, js)
	t.Logf("%d calls played, %d kills (%d with deliveries pending), %d events in the outbox, %d messages in the stream, %d resends the stream dropped as duplicates",
		played.Load(), kills, midPublish, len(evs), len(msgs), resent)
}

// checkSinkStream asserts that every event the outbox committed for the
// sink is delivered and in the stream exactly once, each conversation in
// order, with headers matching the outbox and the PBX name kept in one
// subject level.
func checkSinkStream(t *testing.T, dbPath string, js jetstream.JetStream) ([]storeEvent, []*jetstream.RawStreamMsg) {
	t.Helper()
	evs := sinkDeliveries(t, dbPath)
	msgs := streamMsgs(t, js)
	want := map[string]storeEvent{}
	for _, e := range evs {
		if e.status != "delivered" {
			t.Errorf("event %s: %s, want delivered", e.id, e.status)
		}
		want[e.id] = e
	}
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		e, ok := want[id]
		switch {
		case seen[id]:
			t.Errorf("event %s twice in the stream", id)
		case !ok:
			t.Errorf("event %s in the stream but not in the outbox", id)
		}
		seen[id] = true
		conv := m.Header.Get(natssink.HeaderConversation)
		seq, _ := strconv.ParseInt(m.Header.Get(natssink.HeaderSequence), 10, 64)
		if ok && (conv != e.conv || seq != e.seq) {
			t.Errorf("event %s: headers say %s/%d, the outbox %s/%d", id, conv, seq, e.conv, e.seq)
		}
		if conv != "" && seq <= last[conv] {
			t.Errorf("conversation %s: sequence %d after %d in the stream", conv, seq, last[conv])
		}
		last[conv] = seq
		if want := "ctibridge.default.pbx_eu_1."; len(m.Subject) < len(want) || m.Subject[:len(want)] != want {
			t.Errorf("subject %q: the PBX name's dot and space must not add levels", m.Subject)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("event %s committed but not in the stream", id)
		}
	}
	return evs, msgs
}

// natsEnv is a NATS server and a simulated Asterisk in this process, the
// ctibridge binary and its config publishing to that server.
type natsEnv struct {
	bin                     string
	srv                     *natstest.Server
	js                      jetstream.JetStream
	sim                     *amitest.Server
	dbPath, listen, cfgPath string
}

func newNATSEnv(t *testing.T) natsEnv {
	t.Helper()
	bin := buildBinary(t)
	srv := natstest.Start(t, natstest.Options{})
	_, js := srv.JetStream()
	sim := newAsterisk(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "c.db")
	listen := freePort(t)
	cfgPath := filepath.Join(dir, "c.yaml")
	yaml := fmt.Sprintf(`pbx:
  name: pbx.eu 1
  type: asterisk
  address: %s
  username: bridge
  secret: bridgepass
  backoff_max: 200ms
store:
  path: %s
http:
  listen: %s
calls:
  inbound_contexts: [inbound]
sinks:
  nats:
    urls: [%s]
    create_stream: true
    duplicate_window: 1h
log:
  level: debug
`, sim.Addr(), dbPath, listen, srv.URL())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	return natsEnv{bin: bin, srv: srv, js: js, sim: sim, dbPath: dbPath, listen: listen, cfgPath: cfgPath}
}

// waitSinkDrained waits until every event the outbox holds for the sink is
// delivered and the stream has at least as many, the same twice in a row
// (the engine may still commit the last calls' ends).
func waitSinkDrained(t *testing.T, p *natsProc, dbPath string, js jetstream.JetStream) {
	t.Helper()
	var evs []storeEvent
	drained := func() bool {
		evs = sinkDeliveries(t, dbPath)
		for _, e := range evs {
			if e.status != "delivered" {
				return false
			}
		}
		return len(evs) > 0 && streamLen(js) >= uint64(len(evs))
	}
	// Stable twice: the engine may still commit the last calls' ends.
	if err := waitFor(t.Context(), 120*time.Second, func() bool {
		if !drained() {
			return false
		}
		n := len(evs)
		time.Sleep(500 * time.Millisecond)
		return drained() && len(evs) == n
	}); err != nil {
		t.Fatalf("not drained: %d events in the file, %d in the stream\n%s", len(evs), streamLen(js), p.log())
	}
}

// NATS goes away under a running ctibridge while calls go on: their events
// are committed and wait in the outbox; once NATS is back (same store) the
// backlog is drained, every event once, each conversation in order.
func TestNATSSinkOutageDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env := newNATSEnv(t)
	p := startNATSProc(t, env.bin, env.cfgPath, env.listen)
	if err := waitFor(t.Context(), 30*time.Second, p.ready); err != nil {
		t.Fatalf("not ready\n%s", p.log())
	}
	play := func(n int) {
		for range n {
			if err := env.sim.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	play(2)
	waitSinkDrained(t, p, env.dbPath, env.js)
	before := len(sinkDeliveries(t, env.dbPath))

	env.srv.Shutdown()
	if err := waitFor(t.Context(), 30*time.Second, func() bool { return p.count("NATS disconnected") > 0 }); err != nil {
		t.Fatalf("the sink did not see NATS go\n%s", p.log())
	}
	play(4)
	// Wait for the new events' first attempts to have failed: they are
	// pending in the file, and the log says the endpoint is failing.
	pending := func() int {
		n := 0
		for _, e := range sinkDeliveries(t, env.dbPath) {
			if e.status == "pending" {
				n++
			}
		}
		return n
	}
	if err := waitFor(t.Context(), 30*time.Second, func() bool {
		return pending() >= 12 && p.count("nats: not connected") > 0
	}); err != nil {
		t.Fatalf("no publish failed while NATS was down (%d pending)\n%s", pending(), p.log())
	}

	env.srv.Restart()
	waitSinkDrained(t, p, env.dbPath, env.js)
	p.term()
	evs, msgs := checkSinkStream(t, env.dbPath, env.js)
	if len(evs) <= before {
		t.Errorf("%d events after the outage, %d before: the calls during it were not committed", len(evs), before)
	}
	t.Logf("%d events before the outage, %d after, %d messages in the stream", before, len(evs), len(msgs))
}
