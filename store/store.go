// Package store is ctibridge's SQLite outbox and call history.
//
// One writer connection, driven by one goroutine, takes every write; the
// requests waiting when it is free are grouped into one transaction, so a
// burst costs one fsync, and synchronous=FULL stays usable. Readers use a
// separate pool; WAL lets them read while the writer writes.
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the store.
type Options struct {
	Synchronous string        // FULL (default) or NORMAL
	BusyTimeout time.Duration // wait for other processes' locks; default 5s
	// MaxBatch bounds the requests grouped into one transaction.
	MaxBatch int
	Logger   *slog.Logger
}

// DB is the store.
type DB struct {
	path string
	w    *sql.DB // the one writer connection
	r    *sql.DB // readers
	reqs chan *request
	done chan struct{}
	// mu orders Close after every send on reqs: senders hold it shared.
	mu     sync.RWMutex
	closed bool
	log    *slog.Logger
	max    int

	// Transactions counts committed write transactions (group commit shows
	// as far fewer transactions than requests).
	Transactions atomic.Int64
	Requests     atomic.Int64
}

// request is one write: fn runs inside the shared transaction.
type request struct {
	fn  func(tx *sql.Tx) error
	err chan error
}

// Open opens or creates the database at path and applies migrations.
func Open(path string, opts Options) (*DB, error) {
	if opts.Synchronous == "" {
		opts.Synchronous = "FULL"
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("store: synchronous must be FULL or NORMAL, got %q", opts.Synchronous)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("store: directory of %s does not exist", path)
		}
	}
	dsn := func(mode string) string {
		return fmt.Sprintf("file:%s?_busy_timeout=%d&_foreign_keys=on&_journal_mode=WAL&_synchronous=%s&_txlock=immediate&mode=%s",
			path, opts.BusyTimeout.Milliseconds(), sync, mode)
	}
	w, err := sql.Open("sqlite3", dsn("rwc"))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %s is not a usable SQLite database: %w", path, err)
	}
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", dsn("ro"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	db := &DB{path: path, w: w, r: r, reqs: make(chan *request, 1024), done: make(chan struct{}), log: opts.Logger, max: opts.MaxBatch}
	go db.writer()
	return db, nil
}

// migrate applies the embedded migrations not yet applied, in order.
func migrate(w *sql.DB) error {
	if _, err := w.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var current int
	if err := w.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	latest := 0
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		latest = max(latest, v)
		if v <= current {
			continue
		}
		body, _ := migrations.ReadFile(name)
		tx, err := w.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	if current > latest {
		return fmt.Errorf("database schema version %d is newer than this ctibridge knows (%d): upgrade ctibridge", current, latest)
	}
	return nil
}

// Close waits for queued writes and closes the database.
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
	return errors.Join(db.r.Close(), db.w.Close())
}

// write submits fn to the writer and waits for its transaction to commit.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	req := &request{fn: fn, err: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return bridge.Errorf(bridge.EUNAVAILABLE, "store is closed")
	}
	select {
	case db.reqs <- req:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the request is committed or fails on its own; waiting
	// for it keeps the caller's view true even when ctx ends.
	return <-req.err
}

// writer groups waiting requests into one transaction each round.
func (db *DB) writer() {
	defer close(db.done)
	for req := range db.reqs {
		batch := []*request{req}
	fill:
		for len(batch) < db.max {
			select {
			case r, ok := <-db.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.commit(batch)
	}
}

func (db *DB) commit(batch []*request) {
	db.Requests.Add(int64(len(batch)))
	err := db.run(batch)
	if err == nil {
		for _, r := range batch {
			r.err <- nil
		}
		return
	}
	if len(batch) == 1 {
		batch[0].err <- err
		return
	}
	// One bad request must not fail the others: retry each alone.
	for _, r := range batch {
		r.err <- db.run([]*request{r})
	}
}

func (db *DB) run(batch []*request) error {
	tx, err := db.w.Begin()
	if err != nil {
		return db.wrap(err)
	}
	for _, r := range batch {
		if err := r.fn(tx); err != nil {
			tx.Rollback()
			return db.wrap(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return db.wrap(err)
	}
	db.Transactions.Add(1)
	return nil
}

// wrap adds the path to SQLite errors and names the usual operator faults.
func (db *DB) wrap(err error) error {
	var ae *bridge.Error
	if errors.As(err, &ae) {
		return err
	}
	msg := err.Error()
	hint := ""
	switch {
	case strings.Contains(msg, "full"):
		hint = " (the disk is full)"
	case strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only"):
		hint = " (the file or its directory is read-only)"
	case strings.Contains(msg, "locked") || strings.Contains(msg, "busy"):
		hint = " (another process holds a lock on it)"
	}
	return bridge.Errorf(bridge.EUNAVAILABLE, "store %s: %s%s", db.path, msg, hint)
}

// Writable is the readiness probe: a tiny write through the writer.
func (db *DB) Writable(ctx context.Context) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, time.Now().UnixNano())
		return err
	})
}

// IntegrityCheck runs PRAGMA integrity_check.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := db.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("store: integrity_check: %s", res)
	}
	return nil
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
