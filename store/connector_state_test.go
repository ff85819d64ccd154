package store

import (
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// Connector state is per connector and conversation, replaced on save, and
// pruned with its conversation.
func TestConnectorState(t *testing.T) {
	db, path := openTest(t)
	old := t0.Add(-48 * time.Hour)
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{
		convRec("c1", old, false, "1", "100", bridge.DispositionAnswered),
		convRec("c2", t0, true, "2", "100", ""),
	}})
	if s, err := db.ConnectorState(ctx, "bitrix24", "c1"); s != nil || err != nil {
		t.Fatalf("state before save = %q, %v", s, err)
	}
	for _, st := range []string{`{"call_id":"X1"}`, `{"call_id":"X1","finished":true}`} {
		if err := db.SaveConnectorState(ctx, "bitrix24", "c1", []byte(st)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SaveConnectorState(ctx, "bitrix24", "c2", []byte(`{"call_id":"X2"}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveConnectorState(ctx, "hubspot", "c1", []byte(`{"id":7}`)); err != nil {
		t.Fatal(err)
	}
	// A restart reads what was committed.
	db.Close()
	db = openAt(t, path, Options{})
	for _, tc := range []struct{ conn, conv, want string }{
		{"bitrix24", "c1", `{"call_id":"X1","finished":true}`}, {"bitrix24", "c2", `{"call_id":"X2"}`}, {"hubspot", "c1", `{"id":7}`},
	} {
		if s, err := db.ConnectorState(ctx, tc.conn, tc.conv); string(s) != tc.want || err != nil {
			t.Errorf("%s/%s = %s, %v; want %s", tc.conn, tc.conv, s, err, tc.want)
		}
	}
	if _, err := db.Prune(ctx, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.ConnectorState(ctx, "bitrix24", "c1"); s != nil {
		t.Errorf("state of a pruned conversation kept: %s", s)
	}
	if s, _ := db.ConnectorState(ctx, "bitrix24", "c2"); s == nil {
		t.Error("state of a kept conversation pruned")
	}
}
