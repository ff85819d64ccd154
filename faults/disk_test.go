package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ctibridge/ctibridge/ami/amitest"
)

// diskRun is a child under call load whose store is about to fail.
type diskRun struct {
	sim  *amitest.Server
	rcv  *ledger
	p    *proc
	db   string
	work *load
}

func startDisk(t *testing.T, cfgDir, db string, o procOpts, edit ...func(*conf)) *diskRun {
	t.Helper()
	sim := amitest.NewTestServer(t, amitest.ServerOptions{})
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	c := conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: db, LogLevel: "info",
		Endpoints: []endpoint{{"crm", rcv.URL, secret}}}
	for _, f := range edit {
		f(&c)
	}
	p := startProc(t, cfgDir, c, o)
	r := &diskRun{sim: sim, rcv: rcv, p: p, db: db}
	// Not /readyz: the store may be failing from the start.
	if !waitFor(10*time.Second, func() bool { return sim.LoggedIn() == 1 }) {
		t.Fatalf("no PBX link\n%s", p.log.tail(3000))
	}
	r.work = amiLoad(t, sim, 2, 3*time.Millisecond)
	return r
}

// committedIDs reads the ids of the events the store has committed.
func committedIDs(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM events`)
	if err != nil {
		t.Fatalf("reading committed events: %v", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

// failing checks the bridge while its store fails: the log says why,
// /readyz is 503 with store_error naming the cause, and the PBX link is
// still the one it had (a store failure must not cost PBX events). It
// returns how long /readyz took to answer.
func (r *diskRun) failing(t *testing.T, hint string) time.Duration {
	t.Helper()
	sessions := amiSessions(r.sim)
	if !r.p.waitLog("store commit failed", 20*time.Second) {
		t.Fatalf("no 'store commit failed' in the log\n%s", r.p.log.tail(3000))
	}
	if line := logLine(r.p.log.String(), "store commit failed"); !strings.Contains(line, hint) {
		t.Errorf("store error in the log does not say %q: %s", hint, line)
	}
	start := time.Now()
	code, body, err := r.p.get("/readyz")
	took := time.Since(start)
	if msg, _ := body["store_error"].(string); err != nil || code != 503 || !strings.Contains(msg, hint) {
		t.Errorf("/readyz with the store failing: %d %v %v (want 503 with a store_error saying %q)", code, body, err, hint)
	}
	if m := r.p.metrics(); m["ctibridge_pbx_link_up"] != 1 || m["ctibridge_store_writable"] != 0 {
		t.Errorf("metrics with the store failing: pbx_link_up %v, store_writable %v", m["ctibridge_pbx_link_up"], m["ctibridge_store_writable"])
	}
	if n := amiSessions(r.sim); n != sessions || r.sim.LoggedIn() != 1 {
		t.Errorf("the PBX link was dropped while the store failed (%d sessions, %d before)", n, sessions)
	}
	return took
}

// recover waits for the store to take writes again, then lets every call
// end and checks that every event committed, before or after the fault,
// was delivered. It returns the time from heal to /readyz 200.
func (r *diskRun) recover(t *testing.T, healed time.Time, name string, restarted bool) (verdict, time.Duration) {
	t.Helper()
	if !waitFor(30*time.Second, r.p.ready) {
		t.Fatalf("%s: not ready within 30s of the fix\n%s", name, r.p.log.tail(3000))
	}
	recovery := time.Since(healed)
	if !restarted && !r.p.waitLog("store writable again", 5*time.Second) {
		t.Errorf("%s: no 'store writable again' in the log\n%s", name, grepLog(r.p.log.String(), "store"))
	}
	r.work.Stop()
	if !waitFor(15*time.Second, func() bool { return r.p.liveCalls() == 0 }) {
		t.Errorf("%s: %d calls still open after every call ended", name, r.p.liveCalls())
	}
	ids := committedIDs(t, r.db)
	if !waitFor(30*time.Second, func() bool { return r.rcv.has(ids) }) {
		t.Errorf("%s: committed events not all delivered within 30s", name)
	}
	// Outcomes the store refused while failing are recorded once it takes
	// writes again: the backlog returns to 0 without a restart.
	if !waitFor(30*time.Second, func() bool { return r.p.metrics()["ctibridge_delivery_backlog"] == 0 }) {
		t.Errorf("%s: backlog stuck at %v after recovery", name, r.p.metrics()["ctibridge_delivery_backlog"])
	}
	// A restart on the same file finds nothing left to send.
	if err := r.p.term(); err != nil {
		t.Errorf("%s: stop: %v", name, err)
	}
	cfgDir := filepath.Dir(r.p.cmd.Args[3])
	p2 := startProc(t, cfgDir, confFromFile(t, r.p.cmd.Args[3]), procOpts{Attr: r.p.cmd.SysProcAttr})
	if !waitFor(30*time.Second, func() bool {
		m := p2.metrics()
		return m != nil && m["ctibridge_delivery_backlog"] == 0
	}) {
		t.Errorf("%s: backlog not drained after a restart", name)
	}
	if err := p2.term(); err != nil {
		t.Errorf("%s: stop: %v", name, err)
	}
	events, integrity := readStore(t, r.db, "crm")
	if integrity != "ok" {
		t.Errorf("%s: integrity_check: %s", name, integrity)
	}
	v := analyse(events, r.rcv.snapshot(), allChecks)
	assertVerdict(t, name, v)
	return v, recovery
}

// confFromFile keeps a child's config for the restart: startProc rewrites
// the same file from a conf, so read it back as-is.
func confFromFile(t *testing.T, path string) conf {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return conf{raw: string(b)}
}

// grepLog returns the lines holding any of the words.
func grepLog(log string, words ...string) string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func logLine(log, msg string) string {
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, msg) {
			return line
		}
	}
	return ""
}

// lockDB takes the database with BEGIN EXCLUSIVE on a connection of its
// own, as another process would, and returns the unlock. The connection
// closes when the test ends.
func lockDB(t *testing.T, db string) (unlock func()) {
	t.Helper()
	other, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDiskLocked: another process holds the database with BEGIN EXCLUSIVE
// for longer than the store's busy timeout (5 s).
func TestDiskLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	r := startDisk(t, dir, db, procOpts{})
	time.Sleep(time.Second)

	unlock := lockDB(t, db)
	took := r.failing(t, "another process holds a lock")
	time.Sleep(time.Second)
	unlock()
	healed := time.Now()
	v, recovery := r.recover(t, healed, "locked", false)
	record("disk: database locked (BEGIN EXCLUSIVE)", 1, v, recovery,
		fmt.Sprintf("/readyz took %s to answer 503 while locked; recovery = unlock to /readyz 200", took.Round(time.Millisecond)))
	if took > 3*time.Second {
		t.Logf("/readyz took %s with the store locked (see TestDiskLockedReadyzAnswersPromptly)", took)
	}
}

// TestDiskLockedOverflow: the lock lasts until more PBX events wait than
// store.max_queued_events. The excess is dropped and counted, the link
// stays, and once the lock is gone the bridge reads the PBX's state again:
// every call the PBX ended meanwhile ends in the bridge too (no call is
// left open), and every event committed is delivered.
func TestDiskLockedOverflow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	r := startDisk(t, dir, db, procOpts{}, func(c *conf) { c.MaxQueued = 1000 })
	time.Sleep(time.Second)
	unlock := lockDB(t, db)
	r.failing(t, "another process holds a lock")
	if !waitFor(60*time.Second, func() bool { return r.p.metrics()["ctibridge_pbx_events_dropped_total"] > 0 }) {
		t.Fatalf("no event dropped past max_queued_events\n%s", r.p.log.tail(3000))
	}
	if !r.p.waitLog("PBX events dropped", 5*time.Second) {
		t.Error("no log line for the dropped events")
	}
	dropped := r.p.metrics()["ctibridge_pbx_events_dropped_total"]
	unlock()
	healed := time.Now()
	if !r.p.waitLog("re-reading the PBX's state after dropped events", 30*time.Second) {
		t.Errorf("no resync after the lock was gone\n%s", r.p.log.tail(3000))
	}
	v, recovery := r.recover(t, healed, "locked past max_queued_events", false)
	record("disk: locked until the event queue overflowed (max_queued_events 1000)", 1, v, recovery,
		fmt.Sprintf("%.0f PBX events dropped, the state re-read on recovery; recovery = unlock to /readyz 200", dropped))
}

// TestDiskLockedReadyzAnswersPromptly: /readyz bounds its store probe to
// 2 s even when the probe sits in a transaction that waits on the lock.
func TestDiskLockedReadyzAnswersPromptly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	r := startDisk(t, dir, db, procOpts{})
	defer lockDB(t, db)()
	time.Sleep(time.Second)
	start := time.Now()
	code, _, err := r.p.get("/readyz")
	if took := time.Since(start); err != nil || code != 503 || took > 3*time.Second {
		t.Errorf("/readyz with the database locked: %d, %v, after %s (want 503 within its 2 s probe bound)", code, err, took)
	}
}

// TestDiskReadOnlyAtStart: the database file is read-only when serve starts
// (a restored backup, a wrong chmod). Nothing was acknowledged yet, so
// serve refuses to start, saying which file and why, rather than run a
// bridge that cannot keep a single event; once fixed it starts and delivers.
func TestDiskReadOnlyAtStart(t *testing.T) {
	t.Parallel()
	dir, attr := unprivilegedDir(t)
	db := filepath.Join(dir, "ctibridge.db")
	// Create the store (and its schema), then make the file read-only.
	p := startProc(t, dir, conf{PBXAddr: "127.0.0.1:1", PBXSecret: "x", DB: db}, procOpts{Attr: attr})
	if err := p.term(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	ro := startProc(t, dir, confFromFile(t, filepath.Join(dir, "ctibridge.yaml")), procOpts{Attr: attr, NoAPI: true})
	select {
	case <-ro.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve kept running on a read-only database")
	}
	if ro.Err() == nil {
		t.Fatal("serve exited 0 on a read-only database")
	}
	if line := logLine(ro.log.String(), "ctibridge stopped"); !strings.Contains(line, db) || !strings.Contains(line, "read-only") {
		t.Fatalf("the error does not name the file and say read-only: %s", ro.log.tail(2000))
	}
	writable(t, db)
	start := time.Now()
	r := startDisk(t, dir, db, procOpts{Attr: attr})
	if !waitFor(10*time.Second, r.p.ready) {
		t.Fatalf("not ready after the file was made writable\n%s", r.p.log.tail(3000))
	}
	v, recovery := r.recover(t, start, "read-only at start", true)
	record("disk: read-only database file at start", 1, v, recovery, "serve exits naming the file; recovery = chmod 0644 and start to /readyz 200")
}

// writable makes the database writable again: the file, and the -wal and
// -shm files SQLite created with the database file's (read-only) mode.
func writable(t *testing.T, db string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(db+suffix, 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// unprivilegedDir returns a directory the child can write and, when the
// suite runs as root (whom file modes do not stop), credentials to run the
// child as nobody.
func unprivilegedDir(t *testing.T) (string, *syscall.SysProcAttr) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctibridge-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() != 0 {
		return dir, nil
	}
	const nobody = 65534
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	// The child must reach the binary too.
	for d := filepath.Dir(binary(t)); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return dir, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// TestDiskFull: the store's filesystem fills up (a 16 MB tmpfs when this
// runs as root and may mount; otherwise RLIMIT_FSIZE on the child, which
// SQLite reports as an I/O error rather than a full disk), then space
// returns.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mode := "tmpfs"
	if os.Getenv("CTIBRIDGE_FAULTS_NO_MOUNT") == "1" || mount(mnt, "16m") != nil {
		mode = "rlimit"
	} else {
		t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	}
	db := filepath.Join(mnt, "ctibridge.db")
	r := startDisk(t, dir, db, procOpts{})
	time.Sleep(time.Second)

	var fill, heal func()
	hint := "the disk is full"
	switch mode {
	case "tmpfs":
		filler := filepath.Join(mnt, "filler")
		fill = func() {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			chunk := make([]byte, 64<<10)
			for {
				if _, err := f.Write(chunk); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("filling the disk: %v", err)
					}
					break
				}
			}
			f.Close()
		}
		heal = func() { os.Remove(filler) }
	case "rlimit":
		// Files may not grow past their size now: the WAL cannot extend.
		hint = "disk I/O error"
		fill = func() {
			st, err := os.Stat(db + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			if err := prlimitFsize(r.p.Pid, uint64(st.Size())); err != nil {
				t.Skipf("cannot limit the child's file size: %v", err)
			}
		}
		heal = func() {
			if err := prlimitFsize(r.p.Pid, ^uint64(0)); err != nil {
				t.Fatalf("lifting the child's file size limit: %v", err)
			}
		}
	}
	fill()
	took := r.failing(t, hint)
	time.Sleep(time.Second)
	heal()
	healed := time.Now()
	v, recovery := r.recover(t, healed, "disk full ("+mode+")", false)
	record("disk: full ("+mode+")", 1, v, recovery,
		fmt.Sprintf("/readyz answered 503 in %s; recovery = space back to /readyz 200", took.Round(time.Millisecond)))
}

// mount mounts a tmpfs of the given size on dir.
func mount(dir, size string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	return exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).Run()
}

// prlimitFsize sets the soft RLIMIT_FSIZE of another process
// (prlimit64(2)), keeping its hard limit: lowering a hard limit could not be
// undone without CAP_SYS_RESOURCE. Go ignores SIGXFSZ, so a write past the
// limit fails with EFBIG instead of killing the child.
func prlimitFsize(pid int, soft uint64) error {
	var cur [2]uint64
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_FSIZE),
		0, uintptr(unsafe.Pointer(&cur)), 0, 0); errno != 0 {
		return errno
	}
	lim := [2]uint64{min(soft, cur[1]), cur[1]}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_FSIZE),
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
