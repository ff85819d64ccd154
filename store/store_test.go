package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/mattn/go-sqlite3"
)

var ctx = context.Background()

// quiet keeps test output to failures.
var quiet = slog.New(slog.DiscardHandler)

func openAt(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	return openAt(t, path, Options{}), path
}

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func newEvent(conv string, sequence int64, typ string, at time.Time, endpoints ...string) bridge.PendingEvent {
	e := bridge.Event{ID: bridge.NewID("evt_"), Type: typ, ConversationID: conv, Sequence: sequence, OccurredAt: at, PBX: "pbx1"}
	rec, err := bridge.NewRecord(e)
	if err != nil {
		panic(err)
	}
	return bridge.PendingEvent{Record: rec, EndpointIDs: endpoints}
}

func commit(t testing.TB, db *DB, b *bridge.Batch) {
	t.Helper()
	if err := db.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// count runs a count query on the read pool.
func count(t testing.TB, db *DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.r.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func sqliteCode(err error) sqlite3.ErrNo {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func wantCode(t testing.TB, err error, code, contains string) {
	t.Helper()
	if bridge.ErrorCode(err) != code || !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %v; want code %s mentioning %q", err, code, contains)
	}
}

func TestMigrationsAppliedOnceInOrderAndReopen(t *testing.T) {
	db, path := openTest(t)
	ms, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM schema_migrations`); n != int64(len(ms)) || len(ms) < 2 {
		t.Fatalf("%d migrations recorded, %d embedded", n, len(ms))
	}
	var applied int64
	db.r.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&applied)
	var mode string
	db.r.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal_mode = %s", mode)
	}
	db.Close()

	// A database left at version 1 (written by an older ctibridge) gets
	// only the later migrations; version 1 is not applied again.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version > 1; DROP INDEX deliveries_event; DROP INDEX conversations_direction;
		DROP INDEX conversations_disposition; DROP INDEX idempotency_created; DROP INDEX conversations_caller; DROP INDEX conversations_callee;
		CREATE INDEX conversations_caller ON conversations (caller_number); CREATE INDEX conversations_callee ON conversations (callee_number);`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db = openAt(t, path, Options{})
	if n := count(t, db, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_event'`); n != 1 {
		t.Fatal("migration 2 not applied to a version-1 database")
	}
	var again int64
	db.r.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&again)
	if again != applied {
		t.Fatal("migration 1 applied twice")
	}
	if n := count(t, db, `SELECT count(*) FROM schema_migrations`); n != int64(len(ms)) {
		t.Fatalf("%d migrations recorded after upgrade", n)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	db, path := openTest(t)
	if err := db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ms, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	// The error names the database's version and the one this binary knows.
	known := fmt.Sprintf("(%d)", ms[len(ms)-1].version)
	_, err = Open(path, Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), known) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenErrorsNamePathAndReason(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "x.db")
	if _, err := Open(missing, Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("missing dir: %v", err)
	}
	if _, err := Open(dir, Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(junk, Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), junk) || !strings.Contains(err.Error(), "not a SQLite database") || sqliteCode(err) != sqlite3.ErrNotADB {
		t.Fatalf("junk file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "x.db"), Options{Synchronous: "OFF"}); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("synchronous=OFF: %v", err)
	}
	if _, err := Open("", Options{}); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("empty path: %v", err)
	}
	// A path that looks like URI syntax is still a path.
	odd := filepath.Join(dir, "odd?name#1%.db")
	db := openAt(t, odd, Options{Synchronous: "normal"})
	if err := db.Writable(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(odd); err != nil {
		t.Fatalf("file not at its path: %v", err)
	}
}

func TestReopenAfterCloseKeepsEverything(t *testing.T) {
	db, path := openTest(t)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm"), newEvent("c1", 2, "call.ended", t0, "crm")},
		Conversations: []bridge.ConversationRecord{convRec("c1", t0, false, "5551234", "201", bridge.DispositionAnswered)}}
	commit(t, db, b)
	if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: b.Events[0].ID, EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	plain, _, err := db.CreateAPIKey(ctx, "crm", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	db = openAt(t, path, Options{})
	if n, _ := db.Backlog(ctx); n != 1 {
		t.Fatalf("backlog after reopen = %d, want 1", n)
	}
	evs, err := db.ConversationEvents(ctx, "c1")
	if err != nil || len(evs) != 2 || evs[0].Seq != b.Events[0].Seq || string(evs[1].Payload) != string(b.Events[1].Payload) {
		t.Fatalf("events after reopen = %+v, %v", evs, err)
	}
	if c, err := db.Conversation(ctx, "c1"); err != nil || c.Call.Caller.Number != "5551234" {
		t.Fatalf("conversation after reopen: %+v %v", c, err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, plain); err != nil {
		t.Fatalf("key after reopen: %v", err)
	}
	// New events continue after the old ones.
	b2 := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c2", 1, "call.ringing", t0)}}
	commit(t, db, b2)
	if b2.Events[0].Seq <= b.Events[1].Seq {
		t.Fatalf("seq went back: %d after %d", b2.Events[0].Seq, b.Events[1].Seq)
	}
}

func TestClosedStoreRefuses(t *testing.T) {
	db, _ := openTest(t)
	db.Close()
	err := db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0)}})
	wantCode(t, err, bridge.EUNAVAILABLE, "closed")
	if err := db.Writable(ctx); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("Writable after Close: %v", err)
	}
}

// The disk fills (simulated with max_page_count, which fails writes with the
// same SQLITE_FULL): the caller hears it, nothing half-written stays, and
// the store works again once there is room.
func TestFullDiskIsReportedAndRecovers(t *testing.T) {
	db, path := openTest(t)
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c0", 1, "call.ringing", t0, "crm")}})
	limit := func(pages string) {
		t.Helper()
		if err := db.write(ctx, 1, func(w *wtx) error {
			_, err := w.exec(`PRAGMA max_page_count = ` + pages)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var pages int64
	db.r.QueryRow(`PRAGMA page_count`).Scan(&pages)
	limit(fmt.Sprint(pages))

	big := &bridge.Batch{}
	for i := range 300 {
		e := newEvent("c1", int64(i+1), "call.ringing", t0, "crm")
		e.Payload = []byte(strings.Repeat("x", 2000))
		big.Events = append(big.Events, e)
	}
	err := db.Commit(ctx, big)
	wantCode(t, err, bridge.EUNAVAILABLE, "the disk is full")
	if !strings.Contains(err.Error(), path) || sqliteCode(err) != sqlite3.ErrFull {
		t.Fatalf("err = %v", err)
	}
	if big.Events[0].Seq != 0 {
		t.Fatal("Seq filled in for a batch that was not committed")
	}
	if n, _ := db.Backlog(ctx); n != 1 {
		t.Fatalf("backlog moved by a failed commit: %d", n)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 1 {
		t.Fatalf("%d events after a failed commit", n)
	}

	limit("1073741823")
	commit(t, db, big)
	if big.Events[299].Seq == 0 {
		t.Fatal("no Seq after recovery")
	}
	if n, _ := db.Backlog(ctx); n != 301 {
		t.Fatalf("backlog = %d, want 301", n)
	}
}

// Another process holding the write lock longer than busy_timeout fails our
// writes with a message saying so; when it lets go, writes work again.
func TestForeignLockIsReportedAndRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	db := openAt(t, path, Options{BusyTimeout: 50 * time.Millisecond})
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=50")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	err = db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm")}})
	wantCode(t, err, bridge.EUNAVAILABLE, "another process holds a lock")
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	if err := db.Writable(ctx); err == nil {
		t.Fatal("Writable while another process holds the lock")
	}
	// Reads are not blocked by a writer in WAL mode.
	if _, err := db.OpenConversations(ctx); err != nil {
		t.Fatalf("read while locked: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if err := db.Writable(ctx); err != nil {
		t.Fatalf("after the lock is released: %v", err)
	}
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm")}})
}

// A read-only database file fails Open with a message saying so. Root
// ignores file modes, so as root the check runs in a child process as
// nobody.
func TestReadOnlyFileIsAClearError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dirMode   os.FileMode
		fileMode  os.FileMode
		wantWords string
		existing  bool
	}{
		{"file read-only", 0o777, 0o444, "read-only", true},
		{"directory read-only", 0o555, 0o666, "read-only", true},
		{"new file in a read-only directory", 0o555, 0, "directory exists and is writable", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := worldDir(t)
			path := filepath.Join(dir, "ro.db")
			if tc.existing {
				db := openAt(t, path, Options{})
				commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0)}})
				db.Close()
				if err := os.Chmod(path, tc.fileMode); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			msg := openAsUnprivileged(t, path)
			t.Log(msg)
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.wantWords) {
				t.Fatalf("Open of a read-only database: %q; want the path and %q", msg, tc.wantWords)
			}
		})
	}
}

// worldDir is a temporary directory that a process running as nobody can
// reach.
func worldDir(t *testing.T) string {
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, st.Mode().Perm()|0o055)
		}
	}
	os.Chmod(dir, 0o777)
	return dir
}

// openAsUnprivileged opens path with Open, as this user when it is not
// root, else in a copy of the test binary running as nobody, and returns
// Open's error text.
func openAsUnprivileged(t *testing.T, path string) string {
	if os.Geteuid() != 0 {
		_, err := Open(path, Options{Logger: quiet})
		if err == nil {
			t.Fatal("opened a read-only database")
		}
		return err.Error()
	}
	bin := filepath.Join(worldDir(t), "store.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestReadOnlyChild$", "-test.v")
	cmd.Env = []string{"STORE_RO_PATH=" + path, "PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Skipf("cannot run a child process as nobody: %v", err)
	}
	_, msg, ok := strings.Cut(string(out), "OPEN-ERROR: ")
	if !ok {
		t.Fatalf("child output: %s", out)
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// TestReadOnlyChild is the child half of TestReadOnlyFileIsAClearError.
func TestReadOnlyChild(t *testing.T) {
	path := os.Getenv("STORE_RO_PATH")
	if path == "" {
		t.Skip("runs only as TestReadOnlyFileIsAClearError's child process")
	}
	db, err := Open(path, Options{Logger: quiet})
	if err == nil {
		db.Close()
		fmt.Println("OPEN-ERROR: <nil>")
		return
	}
	fmt.Printf("OPEN-ERROR: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
}
