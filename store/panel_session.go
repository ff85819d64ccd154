package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// panelSessionPrefix marks a panel session token, so one is never taken
// for an API key (or the other way round).
const panelSessionPrefix = "cps_"

// CreatePanelSession signs the agent panel in for the key keyID until
// expires, and returns the token its cookie holds. Expired sessions are
// dropped on the way.
func (db *DB) CreatePanelSession(ctx context.Context, keyID string, expires time.Time) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := panelSessionPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := time.Now()
	err := db.write(ctx, 2, func(w *wtx) error {
		if _, err := w.exec(`DELETE FROM panel_sessions WHERE expires_at <= ?`, now.UnixNano()); err != nil {
			return err
		}
		res, err := w.exec(`INSERT INTO panel_sessions (hash, key_id, expires_at) SELECT ?, id, ? FROM api_keys WHERE id = ?`,
			hashKey(token), expires.UnixNano(), keyID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(bridge.Errorf(bridge.EUNAUTHORIZED, "the API key was revoked"))
		}
		return nil
	})
	return token, err
}

// PanelSessionKey returns the key a live panel session signs in with, or
// EUNAUTHORIZED (unknown, expired, or its key revoked).
func (db *DB) PanelSessionKey(ctx context.Context, token string) (bridge.APIKey, error) {
	unauthorized := bridge.Errorf(bridge.EUNAUTHORIZED, "the panel's sign-in has expired or was revoked: sign in again")
	if !strings.HasPrefix(token, panelSessionPrefix) || len(token) > 256 {
		return bridge.APIKey{}, unauthorized
	}
	want := hashKey(token)
	var hash []byte
	var expires int64
	var ks keyScan
	err := db.r.QueryRowContext(ctx, `SELECT s.hash, s.expires_at, `+keyCols+` FROM panel_sessions s, `+keyFrom+`
		WHERE s.hash = ? AND k.id = s.key_id`, want).Scan(ks.into(&hash, &expires)...)
	if errNoRows(err) {
		return bridge.APIKey{}, unauthorized
	} else if err != nil {
		return bridge.APIKey{}, db.wrap(err)
	}
	if subtle.ConstantTimeCompare(hash, want) != 1 || time.Now().UnixNano() >= expires {
		return bridge.APIKey{}, unauthorized
	}
	k := ks.key()
	db.touchKey(k) // the panel's use is its key's: apikey list shows it
	return k, nil
}

// DeletePanelSession signs a panel out (an unknown token is no error).
func (db *DB) DeletePanelSession(ctx context.Context, token string) error {
	return db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`DELETE FROM panel_sessions WHERE hash = ?`, hashKey(token))
		return err
	})
}

// APIKeyByID returns a key by its id (never its secret), or ENOTFOUND.
func (db *DB) APIKeyByID(ctx context.Context, id string) (bridge.APIKey, error) {
	keys, err := db.ListAPIKeys(ctx)
	if err != nil {
		return bridge.APIKey{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, nil
		}
	}
	return bridge.APIKey{}, bridge.Errorf(bridge.ENOTFOUND, "no API key with id %s", id)
}
