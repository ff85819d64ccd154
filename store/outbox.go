package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

var _ bridge.Outbox = (*DB)(nil)
var _ bridge.DeliveryStore = (*DB)(nil)

// Commit writes a batch of events, their deliveries and the conversations
// they changed in one transaction. An event id already stored is skipped.
func (db *DB) Commit(ctx context.Context, b *bridge.Batch) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		insEvent, err := tx.Prepare(`INSERT INTO events (id, type, conversation_id, sequence, occurred_at, payload)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq`)
		if err != nil {
			return err
		}
		defer insEvent.Close()
		insDelivery, err := tx.Prepare(`INSERT INTO deliveries (endpoint_id, event_seq, status, next_attempt_at, updated_at)
			VALUES (?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer insDelivery.Close()
		now := time.Now().UnixNano()
		for i := range b.Events {
			e := &b.Events[i]
			err := insEvent.QueryRow(e.ID, e.Type, e.ConversationID, e.Sequence, nanos(e.OccurredAt), e.Payload).Scan(&e.Seq)
			if errors.Is(err, sql.ErrNoRows) {
				// Already stored (a replayed batch): keep its position.
				if err := tx.QueryRow(`SELECT seq FROM events WHERE id = ?`, e.ID).Scan(&e.Seq); err != nil {
					return err
				}
				continue
			} else if err != nil {
				return err
			}
			for _, ep := range e.EndpointIDs {
				if _, err := insDelivery.Exec(ep, e.Seq, now, now); err != nil {
					return err
				}
			}
		}
		for _, c := range b.Conversations {
			if err := upsertConversation(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

func upsertConversation(tx *sql.Tx, c bridge.ConversationRecord) error {
	call, err := json.Marshal(c.Call)
	if err != nil {
		return err
	}
	agent := ""
	if c.Call.Agent != nil {
		agent = c.Call.Agent.Extension
	}
	var answered, ended, dur, talk any
	if c.Call.AnsweredAt != nil {
		answered = c.Call.AnsweredAt.UnixNano()
	}
	if c.Call.EndedAt != nil {
		ended = c.Call.EndedAt.UnixNano()
	}
	if c.Call.DurationS != nil {
		dur = *c.Call.DurationS
	}
	if c.Call.TalkS != nil {
		talk = *c.Call.TalkS
	}
	state := c.State
	if !c.Open {
		state = nil // ended calls need no tracker state
	}
	_, err = tx.Exec(`INSERT INTO conversations (id, direction, caller_number, callee_number, agent, queue, started_at,
		answered_at, ended_at, duration_s, talk_s, disposition, open, last_seq, state, call, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET direction = excluded.direction, caller_number = excluded.caller_number,
		callee_number = excluded.callee_number, agent = excluded.agent, queue = excluded.queue,
		answered_at = excluded.answered_at, ended_at = excluded.ended_at, duration_s = excluded.duration_s,
		talk_s = excluded.talk_s, disposition = excluded.disposition, open = excluded.open,
		last_seq = MAX(last_seq, excluded.last_seq), state = excluded.state, call = excluded.call, updated_at = excluded.updated_at`,
		c.Call.ID, string(c.Call.Direction), c.Call.Caller.Number, c.Call.Callee.Number, agent, c.Call.Queue,
		nanos(c.Call.StartedAt), answered, ended, dur, talk, string(c.Call.Disposition), c.Open, c.LastSeq, state, call,
		nanos(c.UpdatedAt))
	return err
}

const conversationCols = `id, open, last_seq, state, call, updated_at`

func scanConversation(row interface{ Scan(...any) error }) (bridge.ConversationRecord, error) {
	var c bridge.ConversationRecord
	var id string
	var call []byte
	var updated int64
	if err := row.Scan(&id, &c.Open, &c.LastSeq, &c.State, &call, &updated); err != nil {
		return c, err
	}
	if err := json.Unmarshal(call, &c.Call); err != nil {
		return c, err
	}
	c.UpdatedAt = fromNanos(updated)
	return c, nil
}

// OpenConversations returns the calls not yet ended.
func (db *DB) OpenConversations(ctx context.Context) ([]bridge.ConversationRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+conversationCols+` FROM conversations WHERE open = 1 ORDER BY started_at`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.ConversationRecord
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Conversation returns one conversation.
func (db *DB) Conversation(ctx context.Context, id string) (bridge.ConversationRecord, error) {
	c, err := scanConversation(db.r.QueryRowContext(ctx, `SELECT `+conversationCols+` FROM conversations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no call with id " + id}
	}
	return c, err
}

// ConversationEvents returns a conversation's events in sequence order.
func (db *DB) ConversationEvents(ctx context.Context, conversationID string) ([]bridge.Record, error) {
	return db.records(ctx, `SELECT seq, id, type, conversation_id, sequence, occurred_at, payload FROM events
		WHERE conversation_id = ? ORDER BY sequence, seq`, conversationID)
}

// Event returns one event.
func (db *DB) Event(ctx context.Context, id string) (bridge.Record, error) {
	recs, err := db.records(ctx, `SELECT seq, id, type, conversation_id, sequence, occurred_at, payload FROM events WHERE id = ?`, id)
	if err != nil {
		return bridge.Record{}, err
	}
	if len(recs) == 0 {
		return bridge.Record{}, &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no event with id " + id}
	}
	return recs[0], nil
}

func (db *DB) records(ctx context.Context, q string, args ...any) ([]bridge.Record, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Record
	for rows.Next() {
		var r bridge.Record
		var at int64
		if err := rows.Scan(&r.Seq, &r.ID, &r.Type, &r.ConversationID, &r.Sequence, &at, &r.Payload); err != nil {
			return nil, err
		}
		r.OccurredAt = fromNanos(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PendingDeliveries returns an endpoint's pending deliveries after afterSeq.
func (db *DB) PendingDeliveries(ctx context.Context, endpointID string, afterSeq int64, limit int) ([]bridge.Delivery, error) {
	return db.deliveries(ctx, `WHERE d.endpoint_id = ? AND d.status = 'pending' AND d.event_seq > ? ORDER BY d.event_seq LIMIT ?`,
		endpointID, afterSeq, limit)
}

// DeadLetters returns an endpoint's dead deliveries, oldest first.
func (db *DB) DeadLetters(ctx context.Context, endpointID string, limit int) ([]bridge.Delivery, error) {
	return db.deliveries(ctx, `WHERE d.endpoint_id = ? AND d.status = 'dead' ORDER BY d.event_seq LIMIT ?`, endpointID, limit)
}

func (db *DB) deliveries(ctx context.Context, where string, args ...any) ([]bridge.Delivery, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT e.seq, e.id, e.type, e.conversation_id, e.sequence, e.occurred_at, e.payload,
		d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.first_tried_at
		FROM deliveries d JOIN events e ON e.seq = d.event_seq `+where, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Delivery
	for rows.Next() {
		var d bridge.Delivery
		var at, next, first int64
		var status string
		if err := rows.Scan(&d.Seq, &d.ID, &d.Type, &d.ConversationID, &d.Sequence, &at, &d.Payload,
			&d.EndpointID, &status, &d.Attempts, &next, &first); err != nil {
			return nil, err
		}
		d.OccurredAt, d.NextAttemptAt, d.FirstTriedAt = fromNanos(at), fromNanos(next), fromNanos(first)
		d.Status = bridge.DeliveryStatus(status)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecordAttempt logs an attempt and moves its delivery on, atomically.
func (db *DB) RecordAttempt(ctx context.Context, a bridge.Attempt) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO attempts (event_id, endpoint_id, at, status_code, latency_ns, error, outcome, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.EventID, a.EndpointID, nanos(a.At), a.StatusCode, int64(a.Latency), a.Error,
			string(a.Outcome), nanos(a.NextAttemptAt)); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
			first_tried_at = CASE WHEN first_tried_at = 0 THEN ? ELSE first_tried_at END, updated_at = ?
			WHERE endpoint_id = ? AND event_seq = (SELECT seq FROM events WHERE id = ?)`,
			string(a.Outcome), nanos(a.NextAttemptAt), nanos(a.At), time.Now().UnixNano(), a.EndpointID, a.EventID)
		return err
	})
}

// DisableEndpoint marks an endpoint disabled and its pending deliveries too.
func (db *DB) DisableEndpoint(ctx context.Context, endpointID, reason string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		if _, err := tx.Exec(`UPDATE endpoints SET disabled = 1, disabled_reason = ? WHERE id = ?`, reason, endpointID); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO endpoint_state (id, disabled_reason, disabled_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET disabled_reason = excluded.disabled_reason, disabled_at = excluded.disabled_at`,
			endpointID, reason, now); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE deliveries SET status = 'disabled', updated_at = ? WHERE endpoint_id = ? AND status = 'pending'`, now, endpointID)
		return err
	})
}

// EnableEndpoint clears a disabled mark (after the CRM is fixed).
func (db *DB) EnableEndpoint(ctx context.Context, endpointID string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE endpoints SET disabled = 0, disabled_reason = '' WHERE id = ?`, endpointID); err != nil {
			return err
		}
		_, err := tx.Exec(`DELETE FROM endpoint_state WHERE id = ?`, endpointID)
		return err
	})
}

// DisabledEndpoints returns endpoint id → reason for every disabled one.
func (db *DB) DisabledEndpoints(ctx context.Context) (map[string]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, disabled_reason FROM endpoint_state UNION SELECT id, disabled_reason FROM endpoints WHERE disabled = 1`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, reason string
		if err := rows.Scan(&id, &reason); err != nil {
			return nil, err
		}
		out[id] = reason
	}
	return out, rows.Err()
}

// Replay sets an event's deliveries to the given endpoints back to pending
// (creating them if needed) and returns them for the dispatcher.
func (db *DB) Replay(ctx context.Context, eventID string, endpointIDs []string) ([]bridge.Delivery, error) {
	rec, err := db.Event(ctx, eventID)
	if err != nil {
		return nil, err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		for _, ep := range endpointIDs {
			if _, err := tx.Exec(`INSERT INTO deliveries (endpoint_id, event_seq, status, next_attempt_at, updated_at)
				VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (endpoint_id, event_seq) DO UPDATE SET status = 'pending',
				next_attempt_at = excluded.next_attempt_at, first_tried_at = 0, updated_at = excluded.updated_at`,
				ep, rec.Seq, now, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]bridge.Delivery, 0, len(endpointIDs))
	for _, ep := range endpointIDs {
		out = append(out, bridge.Delivery{Record: rec, EndpointID: ep, Status: bridge.DeliveryPending, NextAttemptAt: time.Now()})
	}
	return out, nil
}

// ReplayRange sets every delivered or dead delivery of events in [from, to)
// to the endpoints back to pending; the dispatcher must then reload.
func (db *DB) ReplayRange(ctx context.Context, from, to time.Time, endpointIDs []string) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		for _, ep := range endpointIDs {
			res, err := tx.Exec(`UPDATE deliveries SET status = 'pending', next_attempt_at = ?, first_tried_at = 0, updated_at = ?
				WHERE endpoint_id = ? AND status IN ('delivered', 'dead') AND event_seq IN
				(SELECT seq FROM events WHERE occurred_at >= ? AND occurred_at < ?)`, now, now, ep, nanos(from), nanos(to))
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}

// Attempts returns an endpoint's attempt log, newest first, before a time.
func (db *DB) Attempts(ctx context.Context, endpointID string, limit int, before time.Time) ([]bridge.Attempt, error) {
	if before.IsZero() {
		before = time.Now().Add(time.Hour)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT event_id, endpoint_id, at, status_code, latency_ns, error, outcome, next_attempt_at
		FROM attempts WHERE endpoint_id = ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?`, endpointID, nanos(before), limit)
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
			return nil, err
		}
		a.At, a.Latency, a.Outcome, a.NextAttemptAt = fromNanos(at), time.Duration(lat), bridge.DeliveryStatus(outcome), fromNanos(next)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Backlog counts pending deliveries (through the partial index).
func (db *DB) Backlog(ctx context.Context) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&n)
	return n, err
}

// Prune deletes ended conversations older than the cutoff with their events,
// deliveries and attempts, in chunks, never touching an event with a pending
// delivery.
func (db *DB) Prune(ctx context.Context, olderThan time.Time) (int64, error) {
	var total int64
	cut := nanos(olderThan)
	for {
		var n int64
		err := db.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.Exec(`DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE e.occurred_at < ?
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')
				AND (e.conversation_id = '' OR NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = e.conversation_id AND c.open = 1))
				LIMIT 1000)`, cut)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			if _, err := tx.Exec(`DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE at < ? LIMIT 1000)`, cut); err != nil {
				return err
			}
			_, err = tx.Exec(`DELETE FROM conversations WHERE id IN (SELECT id FROM conversations c WHERE c.open = 0 AND c.started_at < ?
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.conversation_id = c.id) LIMIT 1000)`, cut)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}
