package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

var _ bridge.ConnectorStateStore = (*DB)(nil)

// ConnectorState returns a connector's saved state for a conversation, nil
// when it has none.
func (db *DB) ConnectorState(ctx context.Context, connector, conversationID string) ([]byte, error) {
	var state []byte
	err := db.r.QueryRowContext(ctx, `SELECT state FROM connector_state WHERE connector = ? AND conversation_id = ?`,
		connector, conversationID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return state, nil
}

// SaveConnectorState stores a connector's state for a conversation,
// replacing what it had. It returns once the state is committed.
func (db *DB) SaveConnectorState(ctx context.Context, connector, conversationID string, state []byte) error {
	now := time.Now().UnixNano()
	return db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO connector_state (connector, conversation_id, state, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (connector, conversation_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
			connector, conversationID, state, now)
		return err
	})
}
