package store

import (
	"context"
	"errors"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// deliveryCols leaves out the endpoint and the status: the queries select
// on both, so they are known without reading two strings a row back.
const deliveryCols = recordCols + `, d.attempts, d.next_attempt_at, d.first_tried_at`

// PendingDeliveries returns an endpoint's pending deliveries with Seq >
// afterSeq, in Seq order, payload included (through the partial index of
// pending rows, so delivered history is never scanned).
func (db *DB) PendingDeliveries(ctx context.Context, endpointID string, afterSeq int64, limit int) ([]bridge.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	return db.deliveries(ctx, endpointID, bridge.DeliveryPending, limit, `SELECT `+deliveryCols+` FROM deliveries d JOIN events e ON e.seq = d.event_seq
		WHERE d.endpoint_id = ? AND d.status = 'pending' AND d.event_seq > ? ORDER BY d.event_seq LIMIT ?`,
		endpointID, afterSeq, limit)
}

// DeadLetters returns an endpoint's dead deliveries (retry window
// exhausted), oldest first.
func (db *DB) DeadLetters(ctx context.Context, endpointID string, limit int) ([]bridge.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	return db.deliveries(ctx, endpointID, bridge.DeliveryDead, limit, `SELECT `+deliveryCols+` FROM deliveries d JOIN events e ON e.seq = d.event_seq
		WHERE d.endpoint_id = ? AND d.status = 'dead' ORDER BY d.event_seq LIMIT ?`, endpointID, limit)
}

// deliveries runs q, which selects deliveryCols of endpointID's deliveries
// with the given status, at most limit.
func (db *DB) deliveries(ctx context.Context, endpointID string, status bridge.DeliveryStatus, limit int, q string, args ...any) ([]bridge.Delivery, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := make([]bridge.Delivery, 0, min(limit, 1000))
	for rows.Next() {
		d := bridge.Delivery{EndpointID: endpointID, Status: status}
		var at, next, first int64
		if err := rows.Scan(&d.Seq, &d.ID, &d.Type, &d.ConversationID, &d.Sequence, &at, &d.Payload,
			&d.Attempts, &next, &first); err != nil {
			return nil, db.wrap(err)
		}
		d.OccurredAt, d.NextAttemptAt, d.FirstTriedAt = fromNanos(at), fromNanos(next), fromNanos(first)
		out = append(out, d)
	}
	return out, db.wrap(rows.Err())
}

func validStatus(s bridge.DeliveryStatus) bool {
	switch s {
	case bridge.DeliveryPending, bridge.DeliveryDelivered, bridge.DeliveryDead, bridge.DeliveryDisabled:
		return true
	}
	return false
}

// pendingDelta is how a status change moves the Backlog counter.
func pendingDelta(from, to bridge.DeliveryStatus) int64 {
	switch {
	case from != bridge.DeliveryPending && to == bridge.DeliveryPending:
		return 1
	case from == bridge.DeliveryPending && to != bridge.DeliveryPending:
		return -1
	}
	return 0
}

// RecordAttempt appends a to the attempt log and moves its delivery on
// (status = a.Outcome, one more attempt, the next try, the first try's time
// if unset) in one transaction. An attempt for a delivery the store does not
// have is refused with ENOTFOUND.
func (db *DB) RecordAttempt(ctx context.Context, a bridge.Attempt) error {
	if err := checkAttempt(a); err != nil {
		return err
	}
	now := time.Now()
	// Lazy: the CRM's answer is in and the dispatcher's slot is free, so
	// the record may wait a little to share a transaction (and its fsync).
	return db.writeLazy(ctx, 2, func(w *wtx) error { return recordAttempt(w, a, now) })
}

// RecordAttempts is RecordAttempt for several attempts in one request to the
// writer, so one transaction: the dispatcher hands over the attempts
// answered while its previous ones were committed, rather than a request and
// a waiting goroutine each. It returns one error per attempt; an attempt
// refused (invalid, or no such delivery) does not keep the others from being
// recorded, a failed transaction fails them all.
func (db *DB) RecordAttempts(ctx context.Context, as []bridge.Attempt) []error {
	errs := make([]error, len(as))
	ok := 0
	for i := range as {
		if errs[i] = checkAttempt(as[i]); errs[i] == nil {
			ok++
		}
	}
	if ok == 0 {
		return errs
	}
	now := time.Now()
	err := db.writeLazy(ctx, 2*ok, func(w *wtx) error {
		// Kept apart until the commit: a failed shared transaction runs
		// this again alone.
		var refused map[int]error
		for i := range as {
			if errs[i] != nil {
				continue
			}
			err := recordAttempt(w, as[i], now)
			var rf *refusal
			if errors.As(err, &rf) {
				if refused == nil {
					refused = make(map[int]error)
				}
				refused[i] = rf.err // it changed nothing
				continue
			}
			if err != nil {
				return err
			}
		}
		w.onCommit = func() {
			for i, err := range refused {
				errs[i] = err
			}
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

func checkAttempt(a bridge.Attempt) error {
	switch {
	case a.EventID == "":
		return bridge.FieldError("event_id", "is empty")
	case a.EndpointID == "":
		return bridge.FieldError("endpoint_id", "is empty")
	case !validStatus(a.Outcome):
		return bridge.FieldError("outcome", "must be pending, delivered, dead or disabled, got %q", a.Outcome)
	}
	return nil
}

// recordAttempt is RecordAttempt's work in w; now stands in for a zero
// a.At. It returns a refusal, having changed nothing, when the delivery
// does not exist.
func recordAttempt(w *wtx, a bridge.Attempt, now time.Time) error {
	at := a.At
	if at.IsZero() {
		at = now
	}
	// The common case, a pending delivery moving on, is one UPDATE that
	// finds the row itself; only when it changes nothing (no such
	// delivery, or one no longer pending) are the row's status and
	// existence read. That read was a third of the record's cost.
	res, err := w.exec(recordPendingSQL, string(a.Outcome), nanos(a.NextAttemptAt), at.UnixNano(), now.UnixNano(), a.EndpointID, a.EventID)
	if err != nil {
		return err
	}
	from := bridge.DeliveryPending
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var seq int64
		var status string
		err := w.queryRow(`SELECT d.event_seq, d.status FROM events e JOIN deliveries d ON d.event_seq = e.seq
			WHERE e.id = ? AND d.endpoint_id = ?`, a.EventID, a.EndpointID).Scan(&seq, &status)
		if errNoRows(err) {
			return refuse(notFound("event_id", "no delivery of event %q to endpoint %q", a.EventID, a.EndpointID))
		} else if err != nil {
			return err
		}
		if _, err := w.exec(recordSQL, string(a.Outcome), nanos(a.NextAttemptAt), at.UnixNano(), now.UnixNano(), a.EndpointID, seq); err != nil {
			return err
		}
		from = bridge.DeliveryStatus(status)
	}
	if _, err := w.exec(insertAttemptSQL, a.EventID, a.EndpointID, at.UnixNano(), a.StatusCode, int64(a.Latency), a.Error,
		string(a.Outcome), nanos(a.NextAttemptAt)); err != nil {
		return err
	}
	w.pending += pendingDelta(from, a.Outcome)
	return nil
}

const (
	// recordSet moves a delivery on by one attempt: ?1 status, ?2 next
	// attempt, ?3 this attempt's time (the first try's if unset), ?4 now.
	recordSet = `UPDATE deliveries SET status = ?1, attempts = attempts + 1, next_attempt_at = ?2,
		first_tried_at = CASE WHEN first_tried_at = 0 THEN ?3 ELSE first_tried_at END, updated_at = ?4`
	// recordPendingSQL: ?5 endpoint, ?6 event id; only a pending row.
	recordPendingSQL = recordSet + ` WHERE endpoint_id = ?5 AND status = 'pending'
		AND event_seq = (SELECT seq FROM events WHERE id = ?6)`
	// recordSQL: ?5 endpoint, ?6 event seq; whatever its status.
	recordSQL        = recordSet + ` WHERE endpoint_id = ?5 AND event_seq = ?6`
	insertAttemptSQL = `INSERT INTO attempts (event_id, endpoint_id, at, status_code, latency_ns, error, outcome, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
)

// DisableEndpoint marks an endpoint disabled (e.g. it answered 410 Gone) and
// its pending deliveries disabled. For an endpoint from the config file,
// which has no row here, the mark is kept aside (see DisabledEndpoints).
func (db *DB) DisableEndpoint(ctx context.Context, endpointID, reason string) error {
	if endpointID == "" {
		return bridge.FieldError("endpoint_id", "is empty")
	}
	now := time.Now().UnixNano()
	return db.write(ctx, 3, func(w *wtx) error {
		res, err := w.exec(`UPDATE endpoints SET disabled = 1, disabled_reason = ? WHERE id = ?`, reason, endpointID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := w.exec(`INSERT INTO endpoint_state (id, disabled_reason, disabled_at) VALUES (?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET disabled_reason = excluded.disabled_reason, disabled_at = excluded.disabled_at`,
				endpointID, reason, now); err != nil {
				return err
			}
		}
		n, err := disablePending(w, endpointID, now)
		w.pending -= n
		return err
	})
}

func disablePending(w *wtx, endpointID string, now int64) (int64, error) {
	res, err := w.exec(`UPDATE deliveries SET status = 'disabled', updated_at = ? WHERE endpoint_id = ? AND status = 'pending'`, now, endpointID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// EnableEndpoint clears an endpoint's disabled mark (after the CRM is
// fixed). Deliveries disabled meanwhile stay so; ReplayRange re-queues them.
func (db *DB) EnableEndpoint(ctx context.Context, endpointID string) error {
	return db.write(ctx, 2, func(w *wtx) error {
		if _, err := w.exec(`UPDATE endpoints SET disabled = 0, disabled_reason = '' WHERE id = ?`, endpointID); err != nil {
			return err
		}
		_, err := w.exec(`DELETE FROM endpoint_state WHERE id = ?`, endpointID)
		return err
	})
}

// DisabledEndpoints returns endpoint id → reason for every disabled
// endpoint, from the config file or the API.
func (db *DB) DisabledEndpoints(ctx context.Context) (map[string]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, disabled_reason FROM endpoint_state
		UNION ALL SELECT id, disabled_reason FROM endpoints WHERE disabled = 1`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, reason string
		if err := rows.Scan(&id, &reason); err != nil {
			return nil, db.wrap(err)
		}
		out[id] = reason
	}
	return out, db.wrap(rows.Err())
}

// Replay sets an event's deliveries to the given endpoints back to pending,
// due now and with a fresh retry window, creating the ones that do not
// exist, and returns them so the caller can notify the dispatcher. With no
// endpoints it replays every delivery the event already has. A delivery
// still pending is left as it is, and its endpoint returned in pending: it
// is on its way (maybe in flight now), and a second send could not be
// promised without a second row.
func (db *DB) Replay(ctx context.Context, eventID string, endpointIDs []string) (replayed []bridge.Delivery, pending []string, err error) {
	if eventID == "" {
		return nil, nil, bridge.FieldError("event_id", "is empty")
	}
	for _, ep := range endpointIDs {
		if ep == "" {
			return nil, nil, bridge.FieldError("endpoint_ids", "contains an empty endpoint id")
		}
	}
	var out []bridge.Delivery
	var stillPending []string
	now := time.Now()
	err = db.write(ctx, 1+len(endpointIDs), func(w *wtx) error {
		rec, err := scanRecord(w.queryRow(`SELECT `+recordCols+` FROM events e WHERE e.id = ?`, eventID))
		if errNoRows(err) {
			return refuse(notFound("event_id", "no event with id %q", eventID))
		} else if err != nil {
			return err
		}
		eps := endpointIDs
		if len(eps) == 0 {
			if eps, err = queryStrings(w, `SELECT endpoint_id FROM deliveries WHERE event_seq = ? ORDER BY endpoint_id`, rec.Seq); err != nil {
				return err
			}
			if len(eps) == 0 {
				return refuse(bridge.FieldError("endpoint_ids", "event %q has no deliveries; name the endpoints to replay it to", eventID))
			}
		}
		res := make([]bridge.Delivery, 0, len(eps))
		var already []string
		for _, ep := range eps {
			var status string
			err := w.queryRow(`SELECT status FROM deliveries WHERE endpoint_id = ? AND event_seq = ?`, ep, rec.Seq).Scan(&status)
			if err != nil && !errNoRows(err) {
				return err
			}
			if bridge.DeliveryStatus(status) == bridge.DeliveryPending {
				already = append(already, ep)
				continue
			}
			d := bridge.Delivery{Record: rec, EndpointID: ep, Status: bridge.DeliveryPending, NextAttemptAt: now.UTC()}
			if err := w.queryRow(`INSERT INTO deliveries (endpoint_id, event_seq, status, next_attempt_at, updated_at)
				VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (endpoint_id, event_seq) DO UPDATE SET status = 'pending',
				next_attempt_at = excluded.next_attempt_at, first_tried_at = 0, updated_at = excluded.updated_at
				RETURNING attempts`, ep, rec.Seq, now.UnixNano(), now.UnixNano()).Scan(&d.Attempts); err != nil {
				return err
			}
			w.pending += pendingDelta(bridge.DeliveryStatus(status), bridge.DeliveryPending)
			res = append(res, d)
		}
		w.onCommit = func() { out, stillPending = res, already }
		return nil
	})
	return out, stillPending, err
}

func queryStrings(w *wtx, q string, args ...any) ([]string, error) {
	rows, err := w.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// chunk bounds the events one ReplayRange or Prune step touches, so
// the writer is never held for long and other commits interleave.
const chunk = 500

// ReplayRange sets the delivered, dead and disabled deliveries to the given
// endpoints of events that occurred in [from, to) back to pending, due now
// with a fresh retry window, and returns how many. It works in chunks (each
// its own transaction); the dispatcher must then reload its backlog from
// the store. A delivery that never existed is created only where missed
// (nil: never) says the endpoint takes the event: the store does not know
// an endpoint's filter or tenant. perEndpoint holds each endpoint's share
// of the total, only those with some.
func (db *DB) ReplayRange(ctx context.Context, from, to time.Time, endpointIDs []string, missed func(endpointID string, rec bridge.Record) bool) (total int64, perEndpoint map[string]int64, err error) {
	if len(endpointIDs) == 0 {
		return 0, nil, bridge.FieldError("endpoint_ids", "name at least one endpoint")
	}
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return 0, nil, bridge.FieldError("from", "must be set and before to")
	}
	perEndpoint = map[string]int64{}
	cursorAt, cursorSeq := from.UnixNano(), int64(-1)
	for {
		var n int64
		var seen int
		var lastAt, lastSeq int64
		byEP := map[string]int64{}
		now := time.Now().UnixNano()
		err := db.write(ctx, chunk*len(endpointIDs), func(w *wtx) error {
			n, seen = 0, 0
			clear(byEP)
			cols := `e.seq, e.occurred_at`
			if missed != nil {
				cols = recordCols
			}
			rows, err := w.query(`SELECT `+cols+` FROM events e WHERE e.occurred_at < ? AND (e.occurred_at, e.seq) > (?, ?)
				ORDER BY e.occurred_at, e.seq LIMIT ?`, to.UnixNano(), cursorAt, cursorSeq, chunk)
			if err != nil {
				return err
			}
			var recs []bridge.Record
			for rows.Next() {
				var rec bridge.Record
				var at int64
				if missed != nil {
					err = rows.Scan(&rec.Seq, &rec.ID, &rec.Type, &rec.ConversationID, &rec.Sequence, &at, &rec.Payload)
				} else {
					err = rows.Scan(&rec.Seq, &at)
				}
				if err != nil {
					rows.Close()
					return err
				}
				rec.OccurredAt = fromNanos(at)
				lastSeq, lastAt = rec.Seq, at
				recs = append(recs, rec)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			seen = len(recs)
			for _, rec := range recs {
				seq := rec.Seq
				for _, ep := range endpointIDs {
					q := `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, first_tried_at = 0, updated_at = ?
						WHERE endpoint_id = ? AND event_seq = ? AND status <> 'pending'`
					args := []any{now, now, ep, seq}
					if missed != nil && missed(ep, rec) {
						q = `INSERT INTO deliveries (endpoint_id, event_seq, status, next_attempt_at, updated_at)
							VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (endpoint_id, event_seq) DO UPDATE SET status = 'pending',
							next_attempt_at = excluded.next_attempt_at, first_tried_at = 0, updated_at = excluded.updated_at
							WHERE deliveries.status <> 'pending'`
						args = []any{ep, seq, now, now}
					}
					res, err := w.exec(q, args...)
					if err != nil {
						return err
					}
					k, _ := res.RowsAffected()
					n += k
					byEP[ep] += k
				}
			}
			w.pending += n
			return nil
		})
		if err != nil {
			return total, perEndpoint, err
		}
		total += n
		for ep, k := range byEP {
			if k > 0 {
				perEndpoint[ep] += k
			}
		}
		if seen < chunk {
			return total, perEndpoint, nil
		}
		cursorAt, cursorSeq = lastAt, lastSeq
	}
}

// Attempts returns an endpoint's attempt log, newest first, made before
// before (zero: no bound), at most limit (default 50, at most 1000).
func (db *DB) Attempts(ctx context.Context, endpointID string, limit int, before time.Time) ([]bridge.Attempt, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	b := int64(1<<63 - 1)
	if !before.IsZero() {
		b = before.UnixNano()
	}
	rows, err := db.r.QueryContext(ctx, `SELECT event_id, endpoint_id, at, status_code, latency_ns, error, outcome, next_attempt_at
		FROM attempts WHERE endpoint_id = ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?`, endpointID, b, limit)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Attempt
	for rows.Next() {
		var a bridge.Attempt
		var at, lat, next int64
		var outcome string
		if err := rows.Scan(&a.EventID, &a.EndpointID, &at, &a.StatusCode, &lat, &a.Error, &outcome, &next); err != nil {
			return nil, db.wrap(err)
		}
		a.At, a.Latency, a.Outcome, a.NextAttemptAt = fromNanos(at), time.Duration(lat), bridge.DeliveryStatus(outcome), fromNanos(next)
		out = append(out, a)
	}
	return out, db.wrap(rows.Err())
}

// Backlog is the number of pending deliveries, from a counter kept by the
// writer: /metrics can ask as often as it likes.
func (db *DB) Backlog(context.Context) (int64, error) {
	return db.pending.Load(), nil
}
