package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/bridge"
)

// CreateEndpoint stores a webhook endpoint created over the API. The id is
// the caller's (unique, 1 to 64 of A-Z a-z 0-9 _ . -); a zero CreatedAt
// becomes now.
func (db *DB) CreateEndpoint(ctx context.Context, ep bridge.Endpoint) error {
	if err := ep.Validate(); err != nil {
		return err
	}
	if ep.CreatedAt.IsZero() {
		ep.CreatedAt = time.Now()
	}
	events, err := json.Marshal(ep.Events)
	if err != nil {
		return bridge.FieldError("events", "%v", err)
	}
	return db.write(ctx, 1, func(w *wtx) error {
		var exists bool
		if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = ?)`, ep.ID).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return refuse(&bridge.Error{Code: bridge.ECONFLICT, Field: "id", Message: "a webhook endpoint with id " + ep.ID + " exists"})
		}
		// A deleted endpoint's deliveries and attempts stay, keyed by its
		// id: a tenant's endpoint taking that id would read them (dead
		// letters hold whole events) and replay them to its URL, another
		// tenant's or the operator's events included.
		if ep.Tenant != "" {
			if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = ?) OR EXISTS (SELECT 1 FROM attempts WHERE endpoint_id = ?)`,
				ep.ID, ep.ID).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return refuse(&bridge.Error{Code: bridge.ECONFLICT, Field: "id", Message: "id " + ep.ID + " was used by a deleted webhook endpoint whose delivery history is kept: choose another id"})
			}
		}
		_, err := w.exec(`INSERT INTO endpoints (id, url, secret, events, disabled, disabled_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ep.ID, ep.URL, ep.Secret, string(events), ep.Disabled, ep.DisabledReason, ep.CreatedAt.UnixNano())
		if err != nil {
			return err
		}
		if ep.Tenant != "" {
			if _, err := w.exec(`INSERT INTO endpoint_tenants (id, tenant) VALUES (?, ?)`, ep.ID, ep.Tenant); err != nil {
				return err
			}
		}
		return putPreviousSecret(w, ep)
	})
}

// putPreviousSecret stores an endpoint's previous secret, or removes it
// when the rotation is over.
func putPreviousSecret(w *wtx, ep bridge.Endpoint) error {
	if ep.PreviousSecret == "" {
		_, err := w.exec(`DELETE FROM endpoint_previous_secrets WHERE id = ?`, ep.ID)
		return err
	}
	_, err := w.exec(`INSERT INTO endpoint_previous_secrets (id, previous_secret) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET previous_secret = excluded.previous_secret`, ep.ID, ep.PreviousSecret)
	return err
}

// UpdateEndpoint changes the URL, secrets and event filters of an endpoint
// created over the API (its id, disabled state and creation time stay).
func (db *DB) UpdateEndpoint(ctx context.Context, ep bridge.Endpoint) error {
	if err := ep.Validate(); err != nil {
		return err
	}
	events, err := json.Marshal(ep.Events)
	if err != nil {
		return bridge.FieldError("events", "%v", err)
	}
	return db.write(ctx, 1, func(w *wtx) error {
		res, err := w.exec(`UPDATE endpoints SET url = ?, secret = ?, events = ? WHERE id = ?`, ep.URL, ep.Secret, string(events), ep.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(notFound("id", "no webhook endpoint with id %q", ep.ID))
		}
		return putPreviousSecret(w, ep)
	})
}

// endpointSelect reads endpoints with their previous secret (” outside a
// rotation).
const endpointSelect = `SELECT e.id, e.url, e.secret, COALESCE(p.previous_secret, ''), e.events, e.disabled, e.disabled_reason, e.created_at,
	COALESCE(t.tenant, '')
	FROM endpoints e LEFT JOIN endpoint_previous_secrets p ON p.id = e.id LEFT JOIN endpoint_tenants t ON t.id = e.id`

func scanEndpoint(row interface{ Scan(...any) error }) (bridge.Endpoint, error) {
	var ep bridge.Endpoint
	var events string
	var created int64
	if err := row.Scan(&ep.ID, &ep.URL, &ep.Secret, &ep.PreviousSecret, &events, &ep.Disabled, &ep.DisabledReason, &created, &ep.Tenant); err != nil {
		return ep, err
	}
	if err := json.Unmarshal([]byte(events), &ep.Events); err != nil {
		return ep, err
	}
	ep.CreatedAt, ep.Source = fromNanos(created), "api"
	return ep, nil
}

// ListEndpoints returns the endpoints created over the API, secrets (and
// previous secrets) included (the dispatcher signs with them), oldest first.
func (db *DB) ListEndpoints(ctx context.Context) ([]bridge.Endpoint, error) {
	rows, err := db.r.QueryContext(ctx, endpointSelect+` ORDER BY e.created_at, e.id`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Endpoint
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, ep)
	}
	return out, db.wrap(rows.Err())
}

// Endpoint returns one endpoint created over the API.
func (db *DB) Endpoint(ctx context.Context, id string) (bridge.Endpoint, error) {
	ep, err := scanEndpoint(db.r.QueryRowContext(ctx, endpointSelect+` WHERE e.id = ?`, id))
	if errNoRows(err) {
		return ep, notFound("id", "no webhook endpoint with id %q", id)
	}
	return ep, db.wrap(err)
}

// DeleteEndpoint removes an endpoint created over the API. Its pending
// deliveries become disabled; its history stays for the attempt log.
func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	now := time.Now().UnixNano()
	return db.write(ctx, 2, func(w *wtx) error {
		res, err := w.exec(`DELETE FROM endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(notFound("id", "no webhook endpoint with id %q", id))
		}
		if _, err := w.exec(`DELETE FROM endpoint_state WHERE id = ?`, id); err != nil {
			return err
		}
		n, err := disablePending(w, id, now)
		w.pending -= n
		return err
	})
}

const apiKeyPrefix = "ctb_"

func hashKey(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// CreateAPIKey makes a key and returns its plaintext, the only time it
// exists: the store keeps its SHA-256. A key is 32 random bytes, so a plain
// hash (no salt, no stretching) is enough and lookups stay one index probe.
func (db *DB) CreateAPIKey(ctx context.Context, name string, scopes []string) (string, bridge.APIKey, error) {
	return db.CreateAgentAPIKey(ctx, name, scopes, "")
}

// CreateAgentAPIKey makes a key limited to agent extension agent ("" for
// none, as CreateAPIKey): its calls and its state only. An agent key may
// read and control, never admin.
func (db *DB) CreateAgentAPIKey(ctx context.Context, name string, scopes []string, agent string) (string, bridge.APIKey, error) {
	return db.CreateTenantAPIKey(ctx, name, scopes, agent, "")
}

// CreateTenantAPIKey makes a key limited to tenant ("" the operator's,
// which sees every tenant) and, optionally, to one agent of it.
func (db *DB) CreateTenantAPIKey(ctx context.Context, name string, scopes []string, agent, tenant string) (string, bridge.APIKey, error) {
	if err := bridge.CheckTenant("tenant", tenant); err != nil {
		return "", bridge.APIKey{}, err
	}
	if agent != "" {
		if err := bridge.CheckExtension("agent", agent); err != nil {
			return "", bridge.APIKey{}, err
		}
		if slices.Contains(scopes, bridge.ScopeAdmin) {
			return "", bridge.APIKey{}, bridge.FieldError("scopes", "an agent key (--agent %s) cannot hold admin: it would manage every webhook and replay every call", agent)
		}
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", bridge.APIKey{}, bridge.FieldError("name", "must be 1 to 100 characters")
	}
	// Printed in `apikey list` and logs: a line break or an escape would
	// forge a row or a log line.
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", bridge.APIKey{}, bridge.FieldError("name", "must be printable text: no line breaks, tabs or other control characters")
	}
	if len(scopes) == 0 {
		return "", bridge.APIKey{}, bridge.FieldError("scopes", "at least one scope is required (read, control, admin)")
	}
	for _, s := range scopes {
		if bridge.ScopeRank(s) == 0 {
			return "", bridge.APIKey{}, bridge.FieldError("scopes", "unknown scope %q (read, control, admin)", s)
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", bridge.APIKey{}, err
	}
	plain := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k := bridge.APIKey{ID: bridge.NewID("key_"), Name: name, Scopes: append([]string(nil), scopes...), Agent: agent, Tenant: tenant, CreatedAt: time.Now().UTC()}
	err := db.write(ctx, 3, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO api_keys (id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.ID, k.Name, hashKey(plain), strings.Join(k.Scopes, ","), k.CreatedAt.UnixNano())
		if err != nil {
			return err
		}
		if agent != "" {
			if _, err := w.exec(`INSERT INTO api_key_agents (id, agent) VALUES (?, ?)`, k.ID, agent); err != nil {
				return err
			}
		}
		if tenant != "" {
			if _, err := w.exec(`INSERT INTO api_key_tenants (id, tenant) VALUES (?, ?)`, k.ID, tenant); err != nil {
				return err
			}
		}
		// Kept for good, in the same transaction: see APIKeyEverCreated.
		_, err = w.exec(`INSERT OR IGNORE INTO meta (name, value) VALUES ('api_key_created_at', ?)`, strconv.FormatInt(k.CreatedAt.UnixNano(), 10))
		return err
	})
	if err != nil {
		return "", bridge.APIKey{}, err
	}
	return plain, k, nil
}

// AuthenticateAPIKey returns the key a plaintext belongs to, or
// EUNAUTHORIZED. The row is found by the hash's index, then the hashes are
// compared in constant time: timing can only tell about a SHA-256 of the
// attacker's own guess, never about the stored secret. Last use is recorded
// in the background, at most once a minute per key.
func (db *DB) AuthenticateAPIKey(ctx context.Context, plain string) (bridge.APIKey, error) {
	unauthorized := bridge.Errorf(bridge.EUNAUTHORIZED, "invalid API key")
	if !strings.HasPrefix(plain, apiKeyPrefix) || len(plain) > 256 {
		return bridge.APIKey{}, unauthorized
	}
	want := hashKey(plain)
	var hash []byte
	var ks keyScan
	err := db.r.QueryRowContext(ctx, `SELECT k.hash, `+keyCols+` FROM `+keyFrom+` WHERE k.hash = ?`, want).Scan(ks.into(&hash)...)
	if errNoRows(err) {
		return bridge.APIKey{}, unauthorized
	} else if err != nil {
		return bridge.APIKey{}, db.wrap(err)
	}
	if subtle.ConstantTimeCompare(hash, want) != 1 {
		return bridge.APIKey{}, unauthorized
	}
	k := ks.key()
	db.touchKey(k)
	return k, nil
}

// keyCols and keyFrom select an API key (never its secret) with its agent
// and tenant; keyScan reads them.
const (
	keyCols = `k.id, k.name, k.scopes, k.created_at, k.last_used_at, COALESCE(a.agent, ''), COALESCE(t.tenant, '')`
	keyFrom = `api_keys k LEFT JOIN api_key_agents a ON a.id = k.id LEFT JOIN api_key_tenants t ON t.id = k.id`
)

type keyScan struct {
	k       bridge.APIKey
	scopes  string
	created int64
	used    sql.NullInt64
}

// into is Scan's destinations: first the columns selected before keyCols.
func (ks *keyScan) into(before ...any) []any {
	return append(before, &ks.k.ID, &ks.k.Name, &ks.scopes, &ks.created, &ks.used, &ks.k.Agent, &ks.k.Tenant)
}

func (ks *keyScan) key() bridge.APIKey {
	k := ks.k
	k.Scopes, k.CreatedAt = strings.Split(ks.scopes, ","), fromNanos(ks.created)
	if ks.used.Valid {
		t := fromNanos(ks.used.Int64)
		k.LastUsedAt = &t
	}
	return k
}

// touchKey records that k was used now, in the background and at most
// once a minute.
func (db *DB) touchKey(k bridge.APIKey) {
	now := time.Now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		db.writeLater(func(w *wtx) error {
			_, err := w.exec(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`, now.UnixNano(), k.ID)
			return err
		})
	}
}

// ListAPIKeys returns the keys, oldest first (never their secrets).
func (db *DB) ListAPIKeys(ctx context.Context) ([]bridge.APIKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+keyCols+` FROM `+keyFrom+` ORDER BY k.created_at, k.id`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.APIKey
	for rows.Next() {
		var ks keyScan
		if err := rows.Scan(ks.into()...); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, ks.key())
	}
	return out, db.wrap(rows.Err())
}

// APIKeyExists reports whether the key with this id is still there (not
// revoked): a stream opened with it ends when it is gone.
func (db *DB) APIKeyExists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?)`, id).Scan(&ok)
	return ok, db.wrap(err)
}

// APIKeyEverCreated reports whether an API key was ever created in this
// database, revoked since or not. The HTTP API's default lets requests
// without a key read only until then: revoking the last key must not
// reopen it.
func (db *DB) APIKeyEverCreated(ctx context.Context) (bool, error) {
	var existed bool
	err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM meta WHERE name = 'api_key_created_at')`).Scan(&existed)
	return existed, db.wrap(err)
}

// DeleteAPIKey revokes a key.
func (db *DB) DeleteAPIKey(ctx context.Context, id string) error {
	return db.write(ctx, 1, func(w *wtx) error {
		res, err := w.exec(`DELETE FROM api_keys WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(notFound("id", "no API key with id %q", id))
		}
		return nil
	})
}

// PutIdempotency stores result under (scope, key) unless a result is
// already there, in which case that one is returned with created=false: the
// caller answers a repeated request with the first answer. Keys are pruned
// with the history (Prune).
func (db *DB) PutIdempotency(ctx context.Context, key, scope string, result []byte) (existing []byte, created bool, err error) {
	switch {
	case key == "" || len(key) > 255:
		return nil, false, bridge.FieldError("idempotency_key", "must be 1 to 255 characters")
	case scope == "":
		return nil, false, bridge.FieldError("scope", "is empty")
	}
	if result == nil {
		result = []byte{}
	}
	now := time.Now().UnixNano()
	err = db.write(ctx, 1, func(w *wtx) error {
		var prev []byte
		err := w.queryRow(`SELECT result FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key).Scan(&prev)
		if err == nil {
			w.onCommit = func() { existing, created = prev, false }
			return nil
		} else if !errNoRows(err) {
			return err
		}
		if _, err := w.exec(`INSERT INTO idempotency_keys (key, scope, result, created_at) VALUES (?, ?, ?, ?)`, key, scope, result, now); err != nil {
			return err
		}
		w.onCommit = func() { existing, created = nil, true }
		return nil
	})
	return existing, created, err
}

// DeleteIdempotency releases a key, so a request that provably did
// nothing (refused before the PBX saw it) can be retried under it.
func (db *DB) DeleteIdempotency(ctx context.Context, key, scope string) error {
	return db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`DELETE FROM idempotency_keys WHERE scope = ? AND key = ?`, scope, key)
		return err
	})
}
