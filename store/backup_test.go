package store

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// openCopy opens a backup read-only and returns its events count after
// PRAGMA integrity_check said ok.
func checkBackup(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %s, want -rw-------", st.Mode().Perm())
	}
	c, err := sql.Open("sqlite3", uri(path, "mode=ro"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ok string
	if err := c.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check of the copy: %q, %v", ok, err)
	}
	var n int64
	if err := c.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A backup taken while the writer commits holds every row committed before
// the call, opens and passes integrity_check, is owner-only under the most
// permissive umask, and never replaces a file without force. Not parallel:
// the umask is the process's.
func TestBackupWhileWriting(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	db, _ := openTest(t)
	commitN := func(from, n int) {
		b := &bridge.Batch{}
		for i := range n {
			b.Events = append(b.Events, newEvent(fmt.Sprintf("c%d", from+i), 1, "call.ringing", t0, "crm"))
		}
		commit(t, db, b)
	}
	commitN(0, 500)

	// Writes go on during the backups.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent(fmt.Sprintf("w%d", i), 1, "call.ringing", t0, "crm")}}
			if err := db.Commit(ctx, b); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	dir := t.TempDir()
	to := filepath.Join(dir, "backup.db")
	before := count(t, db, `SELECT count(*) FROM events`)
	if err := db.Backup(ctx, to, false); err != nil {
		t.Fatal(err)
	}
	if n := checkBackup(t, to); n < before {
		t.Fatalf("the copy holds %d events, %d were committed before the backup", n, before)
	}

	// An existing file is refused and left as it was.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := db.Backup(ctx, filepath.Join(dir, "other"), false)
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("backup over an existing file: err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "other")); string(b) != "keep me" {
		t.Fatalf("the existing file was changed: %q", b)
	}

	// --force replaces it with a good copy; a later copy has at least as much.
	commitN(1000, 10)
	before = count(t, db, `SELECT count(*) FROM events`)
	if err := db.Backup(ctx, to, true); err != nil {
		t.Fatal(err)
	}
	if n := checkBackup(t, to); n < before {
		t.Fatalf("the forced copy holds %d events, %d were committed before it", n, before)
	}

	// No temporary file is left beside the copies.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "backup.db" && e.Name() != "other" {
			t.Errorf("left over: %s", e.Name())
		}
	}
}

// BackupFile copies a database another connection (serve) has open without
// migrating or writing it, and refuses a missing source without creating it.
func TestBackupFileBesideAnOpenStore(t *testing.T) {
	db, path := openTest(t)
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm")}})
	// A schema newer than this binary: Open would refuse it, a backup must not.
	if err := db.write(ctx, 1, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "copy.db")
	if err := BackupFile(ctx, path, to, false); err != nil {
		t.Fatal(err)
	}
	if n := checkBackup(t, to); n != 1 {
		t.Fatalf("the copy holds %d events, want 1", n)
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	err := BackupFile(ctx, missing, filepath.Join(t.TempDir(), "x.db"), false)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("backup of a missing database: err = %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("backup created the missing database")
	}
	if err := BackupFile(ctx, path, path, true); err == nil || !strings.Contains(err.Error(), "database itself") {
		t.Fatalf("backup onto the database: err = %v", err)
	}
}
