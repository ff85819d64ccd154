package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Backup writes a consistent copy of the open database to the file to: the
// rows committed before the call, as one read transaction sees them, while
// the writer goes on. See BackupFile.
func (db *DB) Backup(ctx context.Context, to string, force bool) error {
	return backup(ctx, db.path, db.busy, to, force)
}

// BackupFile copies the database file at from to the file to without opening
// it as a store: it neither migrates nor writes, so a newer binary backs up
// the file an older `ctibridge serve` is still using, before the upgrade.
//
// The copy is made with VACUUM INTO in one read transaction (WAL lets it run
// beside the writer), into a new owner-only temporary file beside to that is
// fsynced and checked with PRAGMA integrity_check before it takes to's name,
// so to is never a half-written or corrupt copy. An existing to is refused
// unless force.
func BackupFile(ctx context.Context, from, to string, force bool) error {
	abs, err := filepath.Abs(from)
	if err != nil {
		return fmt.Errorf("backup: %s: %w", from, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		// mode=ro would not create it, but the reason reads better from the OS.
		return fmt.Errorf("backup: the database %s: %w", abs, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("backup: the database %s is not a regular file", abs)
	}
	return backup(ctx, abs, 5*time.Second, to, force)
}

func backup(ctx context.Context, from string, busy time.Duration, to string, force bool) (err error) {
	if to == "" {
		return errors.New("backup: the destination file is empty")
	}
	dst, err := filepath.Abs(to)
	if err != nil {
		return fmt.Errorf("backup: %s: %w", to, err)
	}
	if dst == from {
		return fmt.Errorf("backup: the destination %s is the database itself", dst)
	}
	if st, err := os.Lstat(dst); err == nil {
		if !force {
			return fmt.Errorf("backup: %s already exists: choose another file, or pass --force to replace it", dst)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("backup: %s exists and is not a regular file; not replacing it", dst)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %s: %w", dst, errors.Unwrap(err))
	}

	// CreateTemp makes the file 0600 whatever the umask: the copy holds
	// webhook secrets and API key hashes, like the database. VACUUM INTO
	// accepts an existing empty file.
	tmpf, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: cannot create a file beside %s: %w", dst, errors.Unwrap(err))
	}
	tmp := tmpf.Name()
	tmpf.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()

	src, err := sql.Open("sqlite3", uri(from, "mode=ro", fmt.Sprintf("_busy_timeout=%d", busy.Milliseconds())))
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", from, err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("backup: copy %s: %s", from, reason(err, busy))
	}
	// SQLite does not fsync what VACUUM INTO writes.
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("backup: %s: %w", tmp, err)
	}
	if err := checkCopy(ctx, tmp); err != nil {
		return err
	}
	if force {
		err = os.Rename(tmp, dst)
	} else {
		// Link fails if dst appeared meanwhile: never replace without force.
		err = os.Link(tmp, dst)
		if err == nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("backup: %s already exists: choose another file, or pass --force to replace it", dst)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("backup: %s: %w", filepath.Dir(dst), err)
	}
	return nil
}

// checkCopy opens the copy read-only and runs PRAGMA integrity_check on it.
func checkCopy(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite3", uri(path, "mode=ro"))
	if err != nil {
		return fmt.Errorf("backup: open the copy %s: %w", path, err)
	}
	defer c.Close()
	rows, err := c.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("backup: check the copy %s: %s", path, reason(err, 0))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("backup: check the copy %s: %w", path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backup: check the copy %s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("backup: the copy %s failed integrity_check: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// uri is a file: URI for path, so a path with '?' or '#' stays a path.
func uri(path string, params ...string) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + p + "?" + strings.Join(params, "&")
}
