// Package store is ctibridge's SQLite outbox, delivery log and call history.
//
// Every write goes through one writer goroutine that owns the only writing
// connection: the requests waiting when it is free are grouped into one
// transaction, so a burst costs one fsync and synchronous=FULL stays usable,
// and our own connections never see "database is locked". Reads use a
// separate read-only pool; WAL lets them run while the writer writes.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the store. The zero value is durable and safe.
type Options struct {
	// Synchronous is FULL (default: a commit survives power loss) or NORMAL
	// (a commit survives a crash of the process, not of the machine).
	Synchronous string
	// BusyTimeout is how long a write waits for a lock held by another
	// process (a backup tool, the sqlite3 shell). Default 5s.
	BusyTimeout time.Duration
	// MaxBatch bounds the rows one grouped transaction writes (default
	// 4096), so one commit never holds the writer for long.
	MaxBatch int
	Logger   *slog.Logger
}

// DB is the store. Its methods are safe for concurrent use.
type DB struct {
	path string
	w    *sql.DB // the one writing connection; only the writer goroutine uses it after Open
	r    *sql.DB // read-only pool
	log  *slog.Logger
	busy time.Duration
	max  int
	// full: synchronous=FULL, under which a transaction of relaxed
	// requests alone commits with NORMAL (see writeRelaxed). level is the
	// writer connection's level as last set ("" unknown); unsynced says
	// relaxed commits wait for an fsync. The writer goroutine's own.
	full       bool
	level      string
	unsynced   bool
	unsyncedAt time.Time // the first relaxed commit since the last fsync

	reqs chan *request
	done chan struct{}

	ckpt     *sql.DB       // the checkpointer's connection
	ckptWake chan struct{} // the writer asks for a checkpoint
	ckptDone chan struct{}
	walPages int // pages the writer estimates it added to the WAL since it last asked
	// mu orders Close after every send on reqs: senders hold it shared.
	mu     sync.RWMutex
	closed bool

	// pending mirrors count(*) of pending deliveries. It is loaded at Open
	// and moved only by committed transactions, so Backlog costs nothing.
	pending atomic.Int64
	// lastErr is the last failed transaction's error, nil after a commit.
	lastErr atomic.Pointer[error]

	// Transactions counts committed write transactions and Requests the
	// write calls they carried: group commit shows as far fewer
	// transactions than requests.
	Transactions atomic.Int64
	Requests     atomic.Int64
	// Relaxed counts the transactions committed without an fsync of their
	// own (writeRelaxed).
	Relaxed atomic.Int64
}

// Open opens or creates the database at path, applies migrations and starts
// the writer. Errors name the path and the reason.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, bridge.Errorf(bridge.EINVALID, "store: the database path is empty")
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, bridge.Errorf(bridge.EINVALID, "store: synchronous must be FULL or NORMAL, got %q", opts.Synchronous)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := checkPath(abs); err != nil {
		return nil, err
	}
	if err := createPrivate(abs, opts.Logger); err != nil {
		return nil, err
	}
	db := &DB{path: abs, log: opts.Logger, busy: opts.BusyTimeout, max: opts.MaxBatch, full: sync == "FULL", level: sync,
		reqs: make(chan *request, 1024), done: make(chan struct{}),
		ckptWake: make(chan struct{}, 1), ckptDone: make(chan struct{})}

	// _txlock=immediate: a write transaction takes the write lock at BEGIN,
	// so an outside process makes us wait (busy_timeout) rather than fail
	// half-way through. The statement cache spares re-preparing the same
	// few statements on every request. The page cache is 4 MB: the writer
	// touches the tails of the tables and their indexes, and a larger one
	// only grew the process by its size (32 MB was a third of its memory
	// with 2,000 calls up) for no measured gain; older pages come from the
	// OS's cache.
	db.w, err = sql.Open("sqlite3", db.dsn("rwc",
		"_txlock=immediate", "_foreign_keys=on", "_synchronous="+sync, "_cache_size=-4000", "_stmt_cache_size=64"))
	if err != nil {
		return nil, db.openErr(err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.setup(); err != nil {
		db.w.Close()
		return nil, db.openErr(err)
	}

	readers := max(4, runtime.GOMAXPROCS(0))
	db.r, err = sql.Open("sqlite3", db.dsn("ro", "_stmt_cache_size=32"))
	if err == nil {
		db.r.SetMaxOpenConns(readers)
		db.r.SetMaxIdleConns(readers)
		var n int64
		err = db.r.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&n)
		db.pending.Store(n)
	}
	if err == nil {
		db.ckpt, err = sql.Open("sqlite3", db.dsn("rw", "_synchronous="+sync))
	}
	if err != nil {
		for _, c := range []*sql.DB{db.w, db.r, db.ckpt} {
			if c != nil {
				c.Close()
			}
		}
		return nil, db.openErr(err)
	}
	db.ckpt.SetMaxOpenConns(1)
	// SQLite creates -wal and -shm with the database file's mode, umask
	// or not; this makes sure of it for files an older version left.
	for _, suffix := range []string{"-wal", "-shm"} {
		tighten(abs+suffix, opts.Logger)
	}
	go db.writer()
	go db.checkpointer()
	return db, nil
}

// checkPath gives the OS's reason for a path SQLite could only call
// "unable to open database file".
func checkPath(abs string) error {
	dir := filepath.Dir(abs)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("store: open %s: directory %s: %w", abs, dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("store: open %s: %s is not a directory", abs, dir)
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		return fmt.Errorf("store: open %s: it is a directory, not a database file", abs)
	}
	return nil
}

// createPrivate creates the database file readable and writable by its
// owner only, before SQLite opens it: it holds webhook secrets, API key
// hashes and callers' numbers, and SQLite would create it with the umask's
// mode (0644 under the usual 022). An existing file that others can read
// is tightened (its owner's bits are kept, so a read-only file stays so).
func createPrivate(abs string, log *slog.Logger) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: open %s: cannot create the file: check that the directory exists and is writable (%v)", abs, errors.Unwrap(err))
	}
	tighten(abs, log)
	return nil
}

// tighten removes group and other permissions from one of the database's
// files. Failing (another user's file) is only logged: SQLite's own open
// then says what is wrong, if anything.
func tighten(path string, log *slog.Logger) {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return
	}
	mode := st.Mode().Perm() &^ 0o077
	if err := os.Chmod(path, mode); err != nil {
		log.Warn("store: the database file is readable by other users and could not be made owner-only", "path", path, "mode", st.Mode().Perm().String(), "err", err)
		return
	}
	log.Warn("store: the database file was readable by other users; made it owner-only", "path", path, "was", st.Mode().Perm().String(), "now", mode.String())
}

// dsn is a file: URI, so a path with '?' or '#' stays a path.
func (db *DB) dsn(mode string, params ...string) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(db.path)
	params = append(params, "mode="+mode, fmt.Sprintf("_busy_timeout=%d", db.busy.Milliseconds()))
	return "file:" + p + "?" + strings.Join(params, "&")
}

// setup puts the file in WAL mode, migrates it and proves it writable, so a
// read-only file fails at Open rather than at the first event.
func (db *DB) setup() error {
	var mode string
	if err := db.w.QueryRow(`PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return err
	}
	if err := db.migrate(); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		// Some filesystems (network shares) cannot hold the WAL index.
		return fmt.Errorf("cannot switch to WAL journal mode (still %s): put the database on a local filesystem", mode)
	}
	// The checkpointer goroutine copies the WAL into the file; the writer's
	// own automatic checkpoint is only the safety net that bounds the WAL
	// (~40 MB) when that one cannot catch up under sustained load.
	for _, p := range []string{`PRAGMA journal_size_limit = 67108864`, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, walSafetyPages)} {
		if _, err := db.w.Exec(p); err != nil {
			return err
		}
	}
	_, err := db.w.Exec(heartbeatSQL, time.Now().UnixNano())
	return err
}

// walSafetyPages is where the writer checkpoints by itself; walCheckpointPages
// is how much WAL growth wakes the checkpointer.
const (
	walSafetyPages     = 10000
	walCheckpointPages = 1000
)

// checkpointer copies the WAL into the database file on its own connection,
// so the copying and its fsync run beside the writer instead of inside one
// of its commits. PASSIVE never waits for or blocks the writer or readers.
func (db *DB) checkpointer() {
	defer close(db.ckptDone)
	for range db.ckptWake {
		if _, err := db.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			db.log.Debug("store: background checkpoint failed", "path", db.path, "err", err)
		}
	}
}

const heartbeatSQL = `INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`

type migration struct {
	version int
	name    string
}

func embeddedMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number", name)
		}
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("migrations %s and %s have the same version", prev, name)
		}
		seen[v] = name
		ms = append(ms, migration{v, name})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction with its schema_migrations row. BEGIN IMMEDIATE makes two
// processes opening the same file at once apply each migration once.
func (db *DB) migrate() error {
	ms, err := embeddedMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	if _, err := db.w.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	for _, m := range ms {
		tx, err := db.w.Begin()
		if err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			tx.Rollback()
			return err
		}
		if current > latest {
			tx.Rollback()
			return fmt.Errorf("the database has schema version %d, newer than this ctibridge knows (%d): it was written by a newer ctibridge; upgrade, or restore a backup", current, latest)
		}
		if m.version <= current {
			tx.Rollback()
			continue
		}
		body, err := migrations.ReadFile(m.name)
		if err == nil {
			_, err = tx.Exec(string(body))
		}
		if err == nil {
			_, err = tx.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().UnixNano())
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		db.log.Info("store: applied migration", "path", db.path, "migration", filepath.Base(m.name))
	}
	return nil
}

// Path is the database file's absolute path.
func (db *DB) Path() string { return db.path }

// Close commits the writes already queued, stops the writer and closes the
// database. Writes after Close fail with EUNAVAILABLE.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.reqs)
	db.mu.Unlock()
	<-db.done
	close(db.ckptWake)
	<-db.ckptDone
	return errors.Join(db.r.Close(), db.ckpt.Close(), db.w.Close())
}

// Writable is the readiness probe: a one-row write through the writer, so it
// fails when commits would (full disk, read-only file, a foreign lock).
func (db *DB) Writable(ctx context.Context) error {
	now := time.Now().UnixNano()
	err := db.probe(ctx, func(w *wtx) error {
		_, err := w.exec(heartbeatSQL, now)
		return err
	})
	if errors.Is(err, context.DeadlineExceeded) {
		if last := db.lastErr.Load(); last != nil {
			return *last
		}
		return bridge.Errorf(bridge.EUNAVAILABLE, "store %s: a write did not finish in time: another process holds a lock on the database, or the disk is slow", db.path)
	}
	return err
}

// IntegrityCheck runs PRAGMA integrity_check.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return db.wrap(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return db.wrap(err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return db.wrap(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store %s: integrity_check: %s", db.path, strings.Join(problems, "; "))
	}
	return nil
}

// storeError is an EUNAVAILABLE bridge.Error that keeps the SQLite error in
// its chain, so errors.Is(err, sqlite3.ErrFull) still works.
type storeError struct {
	app   *bridge.Error
	cause error
}

func (e *storeError) Error() string   { return e.app.Message }
func (e *storeError) Unwrap() []error { return []error{e.app, e.cause} }

// wrap turns a database failure into an EUNAVAILABLE error naming the path
// and the operator's fault in words. Application errors and context errors
// pass through.
func (db *DB) wrap(err error) error {
	return db.fail("store "+db.path, err)
}

func (db *DB) openErr(err error) error {
	var se *storeError
	if errors.As(err, &se) {
		err = se.cause
	}
	return db.fail("store: open "+db.path, err)
}

func (db *DB) fail(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var ae *bridge.Error
	if errors.As(err, &ae) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := prefix + ": " + reason(err, db.busy)
	return &storeError{app: bridge.Errorf(bridge.EUNAVAILABLE, "%s", msg), cause: err}
}

// reason says what an operator must fix, then SQLite's own words.
func reason(err error, busy time.Duration) string {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	var hint string
	switch se.Code {
	case sqlite3.ErrFull:
		hint = "the disk is full"
	case sqlite3.ErrReadonly:
		hint = "the database file or its directory is read-only"
	case sqlite3.ErrPerm:
		hint = "permission denied"
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		hint = fmt.Sprintf("another process holds a lock on the database (waited %s)", busy)
	case sqlite3.ErrCantOpen:
		hint = "cannot open or create the file: check that the directory exists and is writable"
	case sqlite3.ErrNotADB:
		hint = "the file is not a SQLite database"
	case sqlite3.ErrCorrupt:
		hint = "the database file is corrupt"
	case sqlite3.ErrIoErr:
		hint = "disk I/O error"
	default:
		return err.Error()
	}
	return hint + " (" + err.Error() + ")"
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func notFound(field, format string, args ...any) *bridge.Error {
	return &bridge.Error{Code: bridge.ENOTFOUND, Field: field, Message: fmt.Sprintf(format, args...)}
}
