package store

import (
	"database/sql"
	"testing"
)

// Revoking every key does not make the store forget that one existed, in
// this process or the next: the HTTP default keeps anonymous requests out
// from the first key on.
func TestAPIKeyEverCreatedSurvivesRevokeAndReopen(t *testing.T) {
	db, path := openTest(t)
	existed := func(db *DB) bool {
		t.Helper()
		ok, err := db.APIKeyEverCreated(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if existed(db) {
		t.Fatal("a fresh store says a key existed")
	}
	_, k, err := db.CreateAPIKey(ctx, "crm", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.ListAPIKeys(ctx); len(keys) != 0 || !existed(db) {
		t.Fatalf("after revoking the only key: %d keys, existed %v", len(keys), existed(db))
	}
	db.Close()
	if db = openAt(t, path, Options{}); !existed(db) {
		t.Fatal("forgotten across a restart")
	}
}

// A database written before the meta table, holding keys, is marked as
// having had one when migration 0003 runs on it.
func TestAPIKeyEverCreatedBackfilled(t *testing.T) {
	db, path := openTest(t)
	if _, _, err := db.CreateAPIKey(ctx, "crm", []string{"read"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// As an older ctibridge left it: keys, no meta table. Then 0003 alone
	// (the versions after it need not be re-appliable).
	if _, err := raw.Exec(`DROP TABLE meta`); err != nil {
		t.Fatal(err)
	}
	body, err := migrations.ReadFile("migrations/0003_meta.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(string(body)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM meta WHERE name = 'api_key_created_at'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("existing keys not carried over: %d %v", n, err)
	}
	// Applied again, it changes nothing.
	if _, err := raw.Exec(string(body)); err != nil {
		t.Fatal(err)
	}
}
