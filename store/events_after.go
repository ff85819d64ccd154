package store

import (
	"context"

	"github.com/ctibridge/ctibridge/bridge"
)

// EventsAfter returns up to limit events committed after the outbox
// position afterSeq, in commit order: what an event stream resuming from a
// Last-Event-ID has missed.
func (db *DB) EventsAfter(ctx context.Context, afterSeq int64, limit int) ([]bridge.Record, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return db.records(ctx, `SELECT seq, id, type, conversation_id, sequence, occurred_at, payload FROM events
		WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
}
