package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/store"
)

// ctibridge backup copies the database of a config file while another
// store (serve) has it open; the copy opens as a store and holds its keys.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "ctibridge.db")
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	yaml := "pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nstore:\n  path: " + dbPath + "\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	quiet := store.Options{Logger: slog.New(slog.DiscardHandler)}
	live, err := store.Open(dbPath, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, _, err := live.CreateAPIKey(ctx, "crm", []string{"read"}); err != nil {
		t.Fatal(err)
	}

	exec := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	to := filepath.Join(dir, "copy.db")
	if code, out, errOut := exec("backup", "--to", to, "--config", cfgPath); code != 0 || !strings.Contains(out, to) {
		t.Fatalf("backup: %d %q %q", code, out, errOut)
	}
	if st, err := os.Stat(to); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("copy: %v %v", st, err)
	}
	cp, err := store.Open(to, quiet)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cp.ListAPIKeys(ctx)
	cp.Close()
	if err != nil || len(keys) != 1 || keys[0].Name != "crm" {
		t.Fatalf("keys in the copy: %v %v", keys, err)
	}

	if code, _, errOut := exec("backup", "--to", to, "--config", cfgPath); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("backup over the copy: %d %q", code, errOut)
	}
	if code, _, errOut := exec("backup", "--to", to, "--force", "--config", cfgPath); code != 0 {
		t.Fatalf("backup --force: %d %q", code, errOut)
	}
	if code, out, _ := exec("backup", "--help"); code != 0 || !strings.Contains(out, "--to FILE") {
		t.Fatalf("backup --help: %d %q", code, out)
	}
	for _, args := range [][]string{
		{"backup", "--config", cfgPath},                          // no --to
		{"backup", "--to", to, "extra", "--config", cfgPath},     // extra argument
		{"backup", "--to", to, "--config", dir + "/missing.yml"}, // no config
	} {
		if code, _, _ := exec(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
