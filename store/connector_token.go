package store

import (
	"context"
	"database/sql"
	"errors"
)

// A connector's OAuth2 token is kept in meta, not connector_state: its
// rows belong to a conversation (foreign key, pruned with it) and a token
// belongs to none. meta is the store's own name → value table, so this
// needs no migration.
const tokenPrefix = "connector_token:"

// ConnectorToken returns a connector's saved OAuth2 token (JSON), nil when
// there is none.
func (db *DB) ConnectorToken(ctx context.Context, connector string) ([]byte, error) {
	var v string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, tokenPrefix+connector).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return []byte(v), nil
}

// SaveConnectorToken stores a connector's OAuth2 token, replacing the one
// it had. It returns once the token is committed.
func (db *DB) SaveConnectorToken(ctx context.Context, connector string, token []byte) error {
	return db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
			tokenPrefix+connector, string(token))
		return err
	})
}
