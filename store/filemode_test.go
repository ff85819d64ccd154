package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// The database holds webhook secrets, API key hashes and callers' numbers:
// it and its -wal and -shm are created owner-only whatever the umask, and
// an older file others could read is tightened at Open. Not parallel: the
// umask is the process's.
func TestDatabaseFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask: SQLite alone would create 0644 files
	defer syscall.Umask(old)

	dir := t.TempDir()
	path := filepath.Join(dir, "ctibridge.db")
	db := openAt(t, path, Options{})
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0, "crm")}})
	if err := db.CreateEndpoint(t.Context(), bridge.Endpoint{ID: "api1", URL: "https://crm.example.com/hook", Secret: bridge.NewWebhookSecret()}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		st, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %s, want -rw-------", filepath.Base(path+suffix), st.Mode().Perm())
		}
	}
	db.Close()

	// A file an older version created 0644 (and its WAL, as a crash left it).
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	db = openAt(t, path, Options{})
	defer db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if st, err := os.Stat(path + suffix); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("reopened %s: mode %s, want -rw-------", filepath.Base(path+suffix), st.Mode().Perm())
		}
	}
}
