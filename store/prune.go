package store

import (
	"context"
	"math"
	"time"
)

// pruneCursor is where a prune step's next chunk starts, so rows it keeps
// (open calls, pending events) are not scanned again by the same Prune.
type pruneCursor struct {
	cut int64 // unix nanoseconds: older than this goes
	at  int64
	id  string
	seq int64
}

// pruneStep deletes one chunk and reports how many conversations and events
// it deleted and whether more may follow.
type pruneStep func(w *wtx, c *pruneCursor) (n int64, more bool, err error)

// Prune deletes history older than olderThan: conversations that ended
// before it with their events, deliveries and attempts; events of no stored
// conversation that occurred before it; idempotency keys created before it.
// An event with a pending delivery is never deleted, nor the conversation it
// belongs to, nor an open conversation. Each chunk is its own transaction,
// so commits interleave and the writer is never held for long. It returns
// how many conversations and events it deleted.
func (db *DB) Prune(ctx context.Context, olderThan time.Time) (int64, error) {
	if olderThan.IsZero() {
		return 0, nil
	}
	var total int64
	for _, step := range []pruneStep{pruneConversations, pruneOrphanEvents, pruneIdempotency} {
		cur := pruneCursor{cut: olderThan.UnixNano(), at: math.MinInt64, seq: math.MinInt64}
		for {
			var n int64
			var more bool
			next := cur
			err := db.write(ctx, chunk*4, func(w *wtx) error {
				next = cur // a group that failed runs this again alone
				var err error
				n, more, err = step(w, &next)
				return err // pending deliveries are never deleted: w.pending stays 0
			})
			if err != nil {
				return total, err
			}
			total += n
			if !more {
				break
			}
			cur = next
		}
	}
	return total, nil
}

func pruneConversations(w *wtx, c *pruneCursor) (int64, bool, error) {
	rows, err := w.query(`SELECT id, started_at, open = 0 AND COALESCE(ended_at, started_at) < ? FROM conversations
		WHERE started_at < ? AND (started_at, id) > (?, ?) ORDER BY started_at, id LIMIT ?`, c.cut, c.cut, c.at, c.id, chunk)
	if err != nil {
		return 0, false, err
	}
	var ended []string
	seen := 0
	for rows.Next() {
		var done bool
		if err := rows.Scan(&c.id, &c.at, &done); err != nil {
			rows.Close()
			return 0, false, err
		}
		seen++
		if done {
			ended = append(ended, c.id)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, false, err
	}
	var n int64
	for _, id := range ended {
		var pending bool
		if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM events e JOIN deliveries d ON d.event_seq = e.seq
			WHERE e.conversation_id = ? AND d.status = 'pending')`, id).Scan(&pending); err != nil {
			return 0, false, err
		}
		if pending {
			continue
		}
		if _, err := w.exec(`DELETE FROM attempts WHERE event_id IN (SELECT id FROM events WHERE conversation_id = ?)`, id); err != nil {
			return 0, false, err
		}
		res, err := w.exec(`DELETE FROM events WHERE conversation_id = ?`, id) // deliveries follow (ON DELETE CASCADE)
		if err != nil {
			return 0, false, err
		}
		k, _ := res.RowsAffected()
		if _, err := w.exec(`DELETE FROM conversations WHERE id = ?`, id); err != nil {
			return 0, false, err
		}
		n += 1 + k
	}
	return n, seen == chunk, nil
}

// pruneOrphanEvents takes the events no stored conversation owns (agent
// state, tests, calls whose record is gone).
func pruneOrphanEvents(w *wtx, c *pruneCursor) (int64, bool, error) {
	rows, err := w.query(`SELECT e.seq, e.id, e.occurred_at,
			(e.conversation_id = '' OR NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = e.conversation_id))
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')
		FROM events e WHERE e.occurred_at < ? AND (e.occurred_at, e.seq) > (?, ?) ORDER BY e.occurred_at, e.seq LIMIT ?`,
		c.cut, c.at, c.seq, chunk)
	if err != nil {
		return 0, false, err
	}
	type victim struct {
		seq int64
		id  string
	}
	var victims []victim
	seen := 0
	for rows.Next() {
		var v victim
		var gone bool
		if err := rows.Scan(&v.seq, &v.id, &c.at, &gone); err != nil {
			rows.Close()
			return 0, false, err
		}
		c.seq = v.seq
		seen++
		if gone {
			victims = append(victims, v)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, false, err
	}
	for _, v := range victims {
		if _, err := w.exec(`DELETE FROM attempts WHERE event_id = ?`, v.id); err != nil {
			return 0, false, err
		}
		if _, err := w.exec(`DELETE FROM events WHERE seq = ?`, v.seq); err != nil {
			return 0, false, err
		}
	}
	return int64(len(victims)), seen == chunk, nil
}

func pruneIdempotency(w *wtx, c *pruneCursor) (int64, bool, error) {
	res, err := w.exec(`DELETE FROM idempotency_keys WHERE rowid IN
		(SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)`, c.cut, chunk)
	if err != nil {
		return 0, false, err
	}
	n, _ := res.RowsAffected()
	return 0, n == chunk, nil
}
