package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// CreateEndpoint stores a webhook endpoint created over the API.
func (db *DB) CreateEndpoint(ctx context.Context, ep bridge.Endpoint) error {
	events, _ := json.Marshal(ep.Events)
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO endpoints (id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?)`,
			ep.ID, ep.URL, ep.Secret, string(events), nanos(ep.CreatedAt))
		if err != nil && strings.Contains(err.Error(), "UNIQUE") {
			return bridge.FieldError("id", "an endpoint with id %s exists", ep.ID)
		}
		return err
	})
}

// ListEndpoints returns the endpoints created over the API.
func (db *DB) ListEndpoints(ctx context.Context) ([]bridge.Endpoint, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, url, secret, events, disabled, disabled_reason, created_at FROM endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Endpoint
	for rows.Next() {
		var ep bridge.Endpoint
		var events string
		var created int64
		if err := rows.Scan(&ep.ID, &ep.URL, &ep.Secret, &events, &ep.Disabled, &ep.DisabledReason, &created); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(events), &ep.Events)
		ep.CreatedAt, ep.Source = fromNanos(created), "api"
		out = append(out, ep)
	}
	return out, rows.Err()
}

// DeleteEndpoint removes an API endpoint; its pending deliveries are
// disabled (kept for the log).
func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no webhook endpoint with id " + id}
		}
		_, err = tx.Exec(`UPDATE deliveries SET status = 'disabled' WHERE endpoint_id = ? AND status = 'pending'`, id)
		return err
	})
}

// APIKey is a stored API key (its hash only).
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// HasScope reports whether the key grants scope; admin implies control,
// control implies read.
func (k APIKey) HasScope(scope string) bool {
	rank := map[string]int{"read": 1, "control": 2, "admin": 3}
	for _, s := range k.Scopes {
		if rank[s] >= rank[scope] && rank[scope] > 0 {
			return true
		}
	}
	return false
}

func hashKey(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// CreateAPIKey makes a key; the plaintext is returned once and never stored.
func (db *DB) CreateAPIKey(ctx context.Context, name string, scopes []string) (string, APIKey, error) {
	for _, s := range scopes {
		if s != "read" && s != "control" && s != "admin" {
			return "", APIKey{}, bridge.FieldError("scopes", "unknown scope %q (read, control, admin)", s)
		}
	}
	if len(scopes) == 0 {
		return "", APIKey{}, bridge.FieldError("scopes", "at least one scope is required (read, control, admin)")
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", APIKey{}, err
	}
	k := APIKey{ID: bridge.NewID("key_"), Name: name, Scopes: scopes, CreatedAt: time.Now().UTC()}
	plain := "ctb_" + base64.RawURLEncoding.EncodeToString(raw[:])
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO api_keys (id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.ID, name, hashKey(plain), strings.Join(scopes, ","), nanos(k.CreatedAt))
		return err
	})
	return plain, k, err
}

// AuthenticateAPIKey finds the key for a plaintext token.
func (db *DB) AuthenticateAPIKey(ctx context.Context, plain string) (APIKey, error) {
	want := hashKey(plain)
	var k APIKey
	var hash []byte
	var scopes string
	var created int64
	var used sql.NullInt64
	// Look up by hash (the index), then compare in constant time anyway.
	err := db.r.QueryRowContext(ctx, `SELECT id, name, hash, scopes, created_at, last_used_at FROM api_keys WHERE hash = ?`, want).
		Scan(&k.ID, &k.Name, &hash, &scopes, &created, &used)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(hash, want) != 1) {
		return APIKey{}, bridge.Errorf(bridge.EUNAUTHORIZED, "invalid API key")
	} else if err != nil {
		return APIKey{}, db.wrap(err)
	}
	k.Scopes = strings.Split(scopes, ",")
	k.CreatedAt = fromNanos(created)
	if used.Valid {
		t := fromNanos(used.Int64)
		k.LastUsedAt = &t
	}
	return k, nil
}

// ListAPIKeys returns the keys (no secrets).
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, scopes, created_at FROM api_keys ORDER BY created_at`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var scopes string
		var created int64
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &created); err != nil {
			return nil, err
		}
		k.Scopes, k.CreatedAt = strings.Split(scopes, ","), fromNanos(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteAPIKey revokes a key.
func (db *DB) DeleteAPIKey(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM api_keys WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no API key with id " + id}
		}
		return nil
	})
}

// PutIdempotency records the result for (scope, key) unless one exists, in
// which case the existing result is returned with created=false.
func (db *DB) PutIdempotency(ctx context.Context, key, scope string, result []byte) (existing []byte, created bool, err error) {
	err = db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow(`SELECT result FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).Scan(&existing)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		created = true
		_, err = tx.Exec(`INSERT INTO idempotency_keys (key, scope, result, created_at) VALUES (?, ?, ?, ?)`, key, scope, result, time.Now().UnixNano())
		return err
	})
	return existing, created, err
}

// HistoryFilter selects calls from the history.
type HistoryFilter struct {
	From, To    time.Time
	Number      string // caller or callee number
	Agent       string
	Direction   string
	Disposition string
	Limit       int
	Cursor      string // from a previous page
}

// History returns calls newest first and the cursor of the next page ("" at the end).
func (db *DB) History(ctx context.Context, f HistoryFilter) ([]bridge.ConversationRecord, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := `SELECT ` + conversationCols + `, started_at FROM conversations WHERE 1=1`
	var args []any
	if !f.From.IsZero() {
		q += ` AND started_at >= ?`
		args = append(args, nanos(f.From))
	}
	if !f.To.IsZero() {
		q += ` AND started_at < ?`
		args = append(args, nanos(f.To))
	}
	if f.Number != "" {
		q += ` AND (caller_number = ? OR callee_number = ?)`
		args = append(args, f.Number, f.Number)
	}
	for col, v := range map[string]string{"agent": f.Agent, "direction": f.Direction, "disposition": f.Disposition} {
		if v != "" {
			q += ` AND ` + col + ` = ?`
			args = append(args, v)
		}
	}
	if f.Cursor != "" {
		ts, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", bridge.FieldError("cursor", "not a cursor from a previous page")
		}
		q += ` AND (started_at < ? OR (started_at = ? AND id < ?))`
		args = append(args, ts, ts, id)
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.ConversationRecord
	var starts []int64
	for rows.Next() {
		var c bridge.ConversationRecord
		var id string
		var call []byte
		var updated, started int64
		if err := rows.Scan(&id, &c.Open, &c.LastSeq, &c.State, &call, &updated, &started); err != nil {
			return nil, "", err
		}
		if err := json.Unmarshal(call, &c.Call); err != nil {
			return nil, "", err
		}
		c.State, c.UpdatedAt = nil, fromNanos(updated)
		out = append(out, c)
		starts = append(starts, started)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > f.Limit {
		out, starts = out[:f.Limit], starts[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(starts[len(starts)-1], last.Call.ID)
	}
	return out, next, nil
}

func encodeCursor(ts int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts, 10) + "|" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return 0, "", fmt.Errorf("bad cursor")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	return n, id, err
}
