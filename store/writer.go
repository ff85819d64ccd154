package store

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// request is one write call. fn runs on the writer goroutine inside a
// transaction it may share with other requests; it must only touch the
// caller's memory through wtx.onCommit, because a shared transaction can
// fail and fn then runs again alone.
type request struct {
	fn   func(*wtx) error
	rows int // rough rows written, to bound a group
	// lazy: the caller can wait a little for company (an attempt record:
	// its HTTP answer is in, nothing downstream waits on the commit).
	lazy bool
	// relaxed: losing the write to a power cut is harmless (see
	// writeRelaxed), so it needs no fsync of its own.
	relaxed bool
	state   atomic.Int32
	res     error      // fn's own outcome when the transaction commits
	done    chan error // buffered: the writer never waits for a caller
}

const (
	queued    = iota
	taken     // in a transaction: the caller must wait for its outcome
	abandoned // the caller's ctx ended first: never run
)

// wtx is one request's view of the shared write transaction.
type wtx struct {
	tx *sql.Tx
	// pending is the request's change to the number of pending
	// deliveries, added to the Backlog counter once the transaction commits.
	pending int64
	// onCommit runs on the writer after the commit, before the caller
	// wakes: the place to hand results (Seq, rows read back) to the caller.
	onCommit func()
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) { return w.tx.Exec(q, args...) }
func (w *wtx) query(q string, args ...any) (*sql.Rows, error) { return w.tx.Query(q, args...) }
func (w *wtx) queryRow(q string, args ...any) *sql.Row        { return w.tx.QueryRow(q, args...) }

// refusal is an error a request returns before it changed anything (an
// unknown id, a duplicate): the shared transaction carries on without it.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }

func refuse(err error) error { return &refusal{err} }

// write submits fn to the writer and waits until its transaction commits.
// If ctx ends while the request still waits in the queue, it is withdrawn
// and ctx's error returned; once in a transaction, its real outcome is
// returned, so nil always means committed.
func (db *DB) write(ctx context.Context, rows int, fn func(*wtx) error) error {
	return db.submit(ctx, &request{fn: fn, rows: rows}, true)
}

// writeRelaxed is write for a change a power cut may take back without
// harm: a call's working state between two events (the events themselves,
// and the state they carry, commit durably), or a delivery's attempt and
// outcome (lost, the delivery is tried again: at-least-once, same id). On
// synchronous=FULL a transaction holding only such requests commits with
// NORMAL: no fsync of its own; the WAL is appended in order, so the next
// FULL commit's fsync makes it durable too. A process crash loses nothing
// either way: the WAL is in the OS's cache. At a low call rate most
// transactions are of this kind, and each fsync cost the CPU of several
// calls' other work.
func (db *DB) writeRelaxed(ctx context.Context, rows int, fn func(*wtx) error) error {
	return db.submit(ctx, &request{fn: fn, rows: rows, relaxed: true}, true)
}

// lazyWait is how long a group of lazy requests alone waits for more
// requests before it commits. A request that is not lazy ends the wait at
// once and takes the lazy ones along, so at a low rate the attempt records
// share the next event commit's transaction (and fsync), and in a backlog
// drain many records share one.
const (
	lazyWait = 20 * time.Millisecond
	lazyIdle = 2 * time.Millisecond // no request for this long: commit
)

// writeLazy is writeRelaxed for a request that may wait up to lazyWait
// for others to share its transaction.
func (db *DB) writeLazy(ctx context.Context, rows int, fn func(*wtx) error) error {
	return db.submit(ctx, &request{fn: fn, rows: rows, lazy: true, relaxed: true}, true)
}

// probe is write for a request whose outcome nobody needs once ctx ends (the
// readiness probe): it returns at ctx's end even if the request is in a
// transaction that waits on another process's lock.
func (db *DB) probe(ctx context.Context, fn func(*wtx) error) error {
	return db.submit(ctx, &request{fn: fn, rows: 1}, false)
}

func (db *DB) submit(ctx context.Context, req *request, waitTaken bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req.rows, req.done = max(req.rows, 1), make(chan error, 1)
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return db.errClosed()
	}
	select {
	case db.reqs <- req:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, abandoned) || !waitTaken {
			return ctx.Err()
		}
		return <-req.done
	}
}

// writeLater queues fn without waiting, and drops it when the queue is full:
// for bookkeeping nobody waits on (an API key's last use).
func (db *DB) writeLater(fn func(*wtx) error) {
	req := &request{fn: fn, rows: 1, relaxed: true, done: make(chan error, 1)}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return
	}
	select {
	case db.reqs <- req:
	default:
	}
}

func (db *DB) errClosed() error {
	return bridge.Errorf(bridge.EUNAVAILABLE, "store %s is closed", db.path)
}

// writer runs until Close: it takes the first waiting request, then every
// other request already waiting (up to MaxBatch rows), and commits them in
// one transaction. While it commits, new requests queue up and form the
// next group, so the group size follows the load by itself. A group of lazy
// requests only first waits up to lazyWait for company.
func (db *DB) writer() {
	defer close(db.done)
	var group []*request
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	syncWait := time.NewTimer(time.Hour)
	syncWait.Stop()
	for {
		var req *request
		var ok bool
		if db.unsynced {
			// Relaxed commits wait for the next durable one's fsync, but
			// no longer than relaxedMaxUnsynced after the first of them.
			left := relaxedMaxUnsynced - time.Since(db.unsyncedAt)
			if left <= 0 {
				db.syncRelaxed()
				continue
			}
			syncWait.Reset(left)
			select {
			case req, ok = <-db.reqs:
				syncWait.Stop()
			case <-syncWait.C:
				db.syncRelaxed()
				continue
			}
		} else {
			req, ok = <-db.reqs
		}
		if !ok {
			if db.unsynced {
				db.syncRelaxed() // closing: the last relaxed commits too
			}
			return
		}
		group = group[:0]
		rows, lazy := 0, true
		add := func(r *request) {
			if r.state.CompareAndSwap(queued, taken) {
				group = append(group, r)
				rows += r.rows
				lazy = lazy && r.lazy
			}
		}
		add(req)
	drain:
		for rows < db.max {
			select {
			case r, ok := <-db.reqs:
				if !ok {
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		if lazy && len(group) > 0 {
			// Wait while requests keep coming (a drain: each one extends
			// the wait by lazyIdle, up to lazyWait in all), or until a
			// request that is not lazy arrives.
			deadline := time.Now().Add(lazyWait)
		company:
			for lazy && rows < db.max {
				d := min(lazyIdle, time.Until(deadline))
				if d <= 0 {
					break
				}
				wait.Reset(d)
				select {
				case r, ok := <-db.reqs:
					wait.Stop()
					if !ok {
						break company
					}
					add(r)
				case <-wait.C:
					break company
				}
			}
		}
		if len(group) > 0 {
			db.commit(group)
		}
	}
}

// commit runs a group. If the shared transaction fails, no caller is failed
// for another's fault: each request is retried alone and gets its own
// outcome. A failed BEGIN ran nothing, so everyone gets that error at once
// (retrying would only wait out the busy timeout once per request).
func (db *DB) commit(group []*request) {
	db.Requests.Add(int64(len(group)))
	began, err := db.run(group)
	if err != nil {
		werr := db.wrap(err)
		db.lastErr.Store(&werr)
	} else {
		db.lastErr.Store(nil)
	}
	if err != nil && began && len(group) > 1 {
		db.log.Warn("store: grouped write failed; retrying its requests one by one", "path", db.path, "requests", len(group), "err", err)
		for _, r := range group {
			_, err := db.run([]*request{r})
			r.done <- db.outcome(r, err)
		}
		return
	}
	for _, r := range group {
		r.done <- db.outcome(r, err)
	}
}

func (db *DB) outcome(r *request, err error) error {
	if err != nil {
		return db.wrap(err)
	}
	return r.res
}

// run executes the requests in one transaction and reports whether BEGIN
// succeeded.
func (db *DB) run(group []*request) (began bool, err error) {
	relaxed := db.full && relaxedGroup(group)
	if db.full {
		// Set before BEGIN (SQLite refuses it inside a transaction); a
		// group that needs FULL and cannot have it does not run.
		level := "FULL"
		if relaxed {
			level = "NORMAL"
		}
		if err := db.setLevel(level); err != nil {
			return false, err
		}
	}
	tx, err := db.w.Begin()
	if err != nil {
		return false, err
	}
	ws := make([]wtx, len(group))
	for i, r := range group {
		ws[i].tx = tx
		err := r.fn(&ws[i])
		var rf *refusal
		if errors.As(err, &rf) {
			r.res, ws[i] = rf.err, wtx{}
			continue
		}
		if err != nil {
			tx.Rollback()
			return true, err
		}
		r.res = nil
	}
	syncs := db.full && !relaxed && db.unsynced
	if syncs {
		// A FULL transaction that changes nothing commits without writing
		// the WAL, or fsyncing it: the heartbeat makes sure this one covers
		// the relaxed commits before it.
		if _, err := tx.Exec(heartbeatSQL, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return true, err
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return true, err
	}
	db.Transactions.Add(1)
	switch {
	case relaxed:
		db.Relaxed.Add(1)
		if !db.unsynced {
			db.unsynced, db.unsyncedAt = true, time.Now()
		}
	case syncs:
		db.unsynced = false
	}
	db.walGrew(group)
	for i := range ws {
		db.pending.Add(ws[i].pending)
		if ws[i].onCommit != nil {
			ws[i].onCommit()
		}
	}
	return true, nil
}

// relaxedMaxUnsynced bounds how long relaxed commits wait for a durable
// one's fsync: past it the writer makes one itself.
const relaxedMaxUnsynced = time.Second

// setLevel sets the writer connection's synchronous level, unless it is
// known to be set already. A failure leaves the level unknown, so the next
// group sets it again.
func (db *DB) setLevel(level string) error {
	if db.level == level {
		return nil
	}
	if _, err := db.w.Exec(`PRAGMA synchronous = ` + level); err != nil {
		db.level = ""
		return err
	}
	db.level = level
	return nil
}

// syncRelaxed makes the relaxed commits durable with a FULL commit (run
// adds the heartbeat row): its fsync covers the WAL before it.
func (db *DB) syncRelaxed() {
	_, err := db.run([]*request{{rows: 1, fn: func(*wtx) error { return nil }}})
	if err != nil {
		// Try again in relaxedMaxUnsynced (or with the next durable write),
		// not in a loop against a failing disk.
		db.unsyncedAt = time.Now()
		db.log.Debug("store: could not sync the relaxed commits; retrying", "path", db.path, "err", err)
	}
}

func relaxedGroup(group []*request) bool {
	for _, r := range group {
		if !r.relaxed {
			return false
		}
	}
	return true
}

// walGrew estimates the pages a commit added to the WAL (a small commit
// dirties about one page per table and index it touches, a large one about
// a page per few rows) and wakes the checkpointer every walCheckpointPages.
func (db *DB) walGrew(group []*request) {
	rows := 0
	for _, r := range group {
		rows += r.rows
	}
	db.walPages += 8 + rows/3
	if db.walPages < walCheckpointPages {
		return
	}
	select {
	case db.ckptWake <- struct{}{}:
		db.walPages = 0
	default: // one is running; ask again after the next commit
	}
}
