package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/store"
)

const backupUsage = `Usage:
  ctibridge backup --to FILE [--force] [--config ctibridge.yaml] [--set store.path=...]

Writes a consistent copy of the database (store.path) to FILE, owner-only
(0600: it holds webhook secrets and API key hashes), while ctibridge serve
runs. The copy is checked with PRAGMA integrity_check before it takes FILE's
name. An existing FILE is refused unless --force. The database itself is
only read: no migration runs, so back up before an upgrade with the new binary.
Restore: stop ctibridge, copy FILE over store.path, start it.
`

// runBackup copies the store of a config file with store.BackupFile.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), backupUsage) }
	path := fs.String("config", "", "YAML config file (its store.path is the database)")
	sets := setFlags{}
	fs.Var(sets, "set", "override a config key, e.g. --set store.path=/var/lib/ctibridge/ctibridge.db")
	to := fs.String("to", "", "the backup file to write")
	force := fs.Bool("force", false, "replace FILE if it exists")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ctibridge backup: unexpected argument %q\n\n%s", fs.Arg(0), backupUsage)
		return 2
	}
	if *to == "" {
		fmt.Fprintf(stderr, "ctibridge backup: --to FILE is required\n\n%s", backupUsage)
		return 2
	}
	if *path == "" {
		if _, err := os.Stat("ctibridge.yaml"); err == nil {
			*path = "ctibridge.yaml"
		}
	}
	cfg, err := config.Load(*path, os.Environ(), sets)
	if err != nil {
		fmt.Fprintln(stderr, "ctibridge backup:", err)
		return 2
	}
	if err := store.BackupFile(ctx, cfg.Store.Path, *to, *force); err != nil {
		fmt.Fprintln(stderr, "ctibridge", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", cfg.Store.Path, *to)
	return 0
}
