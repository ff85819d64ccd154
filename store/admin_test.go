package store

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestEndpoints(t *testing.T) {
	db, _ := openTest(t)
	a := bridge.Endpoint{ID: "crm-a", URL: "https://a.example.com/hook", Secret: secret, Events: []string{"call.*"}, CreatedAt: t0}
	b := bridge.Endpoint{ID: "crm-b", URL: "http://10.0.0.5:8080/in", Secret: secret, CreatedAt: t0.Add(1)}
	for _, ep := range []bridge.Endpoint{b, a} {
		if err := db.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, db.CreateEndpoint(ctx, a), bridge.ECONFLICT, "crm-a")
	eps, err := db.ListEndpoints(ctx)
	if err != nil || len(eps) != 2 || eps[0].ID != "crm-a" || eps[0].Secret != secret || eps[0].Source != "api" ||
		len(eps[0].Events) != 1 || eps[0].Events[0] != "call.*" || !eps[0].CreatedAt.Equal(t0) || eps[1].Events != nil {
		t.Fatalf("endpoints = %+v, %v", eps, err)
	}

	bad := []struct {
		ep    bridge.Endpoint
		field string
	}{
		{bridge.Endpoint{ID: "", URL: a.URL, Secret: secret}, "id"},
		{bridge.Endpoint{ID: "has space", URL: a.URL, Secret: secret}, "id"},
		{bridge.Endpoint{ID: "x", URL: "ftp://a.example.com", Secret: secret}, "url"},
		{bridge.Endpoint{ID: "x", URL: "/relative", Secret: secret}, "url"},
		{bridge.Endpoint{ID: "x", URL: a.URL, Secret: "hunter2"}, "secret"},
		{bridge.Endpoint{ID: "x", URL: a.URL, Secret: secret, Events: []string{"call.answerd"}}, "events"},
	}
	for _, tc := range bad {
		wantCode(t, db.CreateEndpoint(ctx, tc.ep), bridge.EINVALID, tc.field)
	}

	// Deleting an endpoint stops its pending deliveries.
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm-a", "crm-b")}})
	if err := db.DeleteEndpoint(ctx, "crm-a"); err != nil {
		t.Fatal(err)
	}
	checkBacklog(t, db, 1)
	if _, err := db.Endpoint(ctx, "crm-a"); bridge.ErrorCode(err) != bridge.ENOTFOUND {
		t.Fatalf("deleted endpoint: %v", err)
	}
	wantCode(t, db.DeleteEndpoint(ctx, "crm-a"), bridge.ENOTFOUND, "crm-a")
}

func TestAPIKeys(t *testing.T) {
	db, _ := openTest(t)
	plain, k, err := db.CreateAPIKey(ctx, "crm", []string{"control"})
	if err != nil || !strings.HasPrefix(plain, "ctb_") || len(plain) < 40 || k.ID == "" || k.Name != "crm" {
		t.Fatalf("created %q %+v %v", plain, k, err)
	}
	plain2, _, _ := db.CreateAPIKey(ctx, "ops", []string{"admin"})
	if plain2 == plain {
		t.Fatal("two keys are equal")
	}
	// A name is printed in `apikey list` and logs: a line break or an
	// escape would forge a row there.
	for _, name := range []string{"a\nb", "crm\tx", "x\x1b[31m", "\xff"} {
		if _, _, err := db.CreateAPIKey(ctx, name, []string{"read"}); bridge.ErrorCode(err) != bridge.EINVALID || !strings.Contains(err.Error(), "name") {
			t.Errorf("name %q: %v", name, err)
		}
	}

	// Only the SHA-256 is stored: no column holds the plaintext.
	var hash []byte
	var scopes string
	if err := db.r.QueryRow(`SELECT hash, scopes FROM api_keys WHERE id = ?`, k.ID).Scan(&hash, &scopes); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(plain))
	if !bytes.Equal(hash, sum[:]) || scopes != "control" {
		t.Fatalf("stored hash %x, want sha256 of the key", hash)
	}
	dump := count(t, db, `SELECT count(*) FROM api_keys WHERE instr(CAST(hash AS TEXT), ?) > 0 OR instr(name, ?) > 0 OR instr(scopes, ?) > 0`,
		plain[4:], plain[4:], plain[4:])
	if dump != 0 {
		t.Fatal("the plaintext key is stored")
	}

	got, err := db.AuthenticateAPIKey(ctx, plain)
	if err != nil || got.ID != k.ID || !got.HasScope("read") || !got.HasScope("control") || got.HasScope("admin") || got.HasScope("root") {
		t.Fatalf("auth = %+v %v", got, err)
	}
	for _, wrong := range []string{plain + "x", plain[:len(plain)-1], "", "ctb_", strings.ToUpper(plain), plain2[:10] + plain[10:]} {
		if _, err := db.AuthenticateAPIKey(ctx, wrong); bridge.ErrorCode(err) != bridge.EUNAUTHORIZED {
			t.Fatalf("key %q: %v", wrong, err)
		}
	}
	// A row whose hash does not match the presented key's is refused even
	// when the lookup returns it (the constant-time compare is the check).
	if err := db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`UPDATE api_keys SET hash = ? WHERE id = ?`, append(sum[:31:31], sum[31]^1), k.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, plain); bridge.ErrorCode(err) != bridge.EUNAUTHORIZED {
		t.Fatalf("altered hash accepted: %v", err)
	}

	// Last use is recorded in the background; a write queued after it
	// commits after it.
	if _, err := db.AuthenticateAPIKey(ctx, plain2); err != nil {
		t.Fatal(err)
	}
	if err := db.Writable(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[1].LastUsedAt == nil || keys[0].LastUsedAt == nil || keys[1].Scopes[0] != "admin" {
		t.Fatalf("keys = %+v %v", keys, err)
	}

	_, _, err = db.CreateAPIKey(ctx, "x", []string{"root"})
	wantCode(t, err, bridge.EINVALID, "scopes")
	_, _, err = db.CreateAPIKey(ctx, "x", nil)
	wantCode(t, err, bridge.EINVALID, "scopes")
	_, _, err = db.CreateAPIKey(ctx, " ", []string{"read"})
	wantCode(t, err, bridge.EINVALID, "name")

	if err := db.DeleteAPIKey(ctx, keys[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthenticateAPIKey(ctx, plain2); bridge.ErrorCode(err) != bridge.EUNAUTHORIZED {
		t.Fatalf("deleted key still works: %v", err)
	}
	wantCode(t, db.DeleteAPIKey(ctx, keys[1].ID), bridge.ENOTFOUND, keys[1].ID)
}

func TestIdempotency(t *testing.T) {
	db, _ := openTest(t)
	existing, created, err := db.PutIdempotency(ctx, "k1", "POST /v1/calls key_a", []byte(`{"id":"a"}`))
	if err != nil || !created || existing != nil {
		t.Fatalf("first put: %s %v %v", existing, created, err)
	}
	existing, created, err = db.PutIdempotency(ctx, "k1", "POST /v1/calls key_a", []byte(`{"id":"b"}`))
	if err != nil || created || string(existing) != `{"id":"a"}` {
		t.Fatalf("second put: %s %v %v", existing, created, err)
	}
	// The same key under another scope (another API key) is independent.
	if _, created, _ := db.PutIdempotency(ctx, "k1", "POST /v1/calls key_b", []byte(`{}`)); !created {
		t.Fatal("scopes are not separate")
	}
	_, _, err = db.PutIdempotency(ctx, "", "s", nil)
	wantCode(t, err, bridge.EINVALID, "idempotency_key")
	_, _, err = db.PutIdempotency(ctx, strings.Repeat("k", 256), "s", nil)
	wantCode(t, err, bridge.EINVALID, "idempotency_key")
}
