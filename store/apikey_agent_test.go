package store

import (
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// An agent key keeps its extension through authentication and listing; it
// cannot be admin; a plain key has none; revoking drops the agent row too.
func TestAgentAPIKey(t *testing.T) {
	db, _ := openTest(t)
	plain, k, err := db.CreateAgentAPIKey(ctx, "agent 100", []string{"read", "control"}, "100")
	if err != nil || k.Agent != "100" {
		t.Fatalf("create: %+v %v", k, err)
	}
	got, err := db.AuthenticateAPIKey(ctx, plain)
	if err != nil || got.Agent != "100" || got.ID != k.ID {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	plain2, _, err := db.CreateAPIKey(ctx, "crm", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.AuthenticateAPIKey(ctx, plain2); err != nil || got.Agent != "" {
		t.Fatalf("plain key: %+v %v", got, err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Agent != "100" || keys[1].Agent != "" {
		t.Fatalf("list: %+v %v", keys, err)
	}
	if _, _, err := db.CreateAgentAPIKey(ctx, "x", []string{"admin"}, "100"); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("admin agent key: %v", err)
	}
	if _, _, err := db.CreateAgentAPIKey(ctx, "x", []string{"read"}, "1 00"); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Fatalf("bad extension: %v", err)
	}
	if err := db.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRow(`SELECT COUNT(*) FROM api_key_agents`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("agent rows after revoke: %d %v", n, err)
	}
}
