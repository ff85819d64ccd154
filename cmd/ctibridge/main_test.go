package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestHelperProcess is ctibridge as a child process: the test binary
// itself, re-run with CTIBRIDGE_TEST_RUN holding the arguments (no
// second build of the cgo SQLite package).
func TestHelperProcess(t *testing.T) {
	args := os.Getenv("CTIBRIDGE_TEST_RUN")
	if args == "" {
		t.Skip("helper: runs only as a child of another test")
	}
	os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr))
}

// child starts ctibridge ARGS as a process; its stdout is read line by line.
func child(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CTIBRIDGE_TEST_RUN="+strings.Join(args, " "))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(stdout), &stderr
}

// waitLine reads the child's stdout up to a line containing want.
func waitLine(t *testing.T, sc *bufio.Scanner, want string) string {
	t.Helper()
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), want) {
			return sc.Text()
		}
	}
	t.Fatalf("no line with %q; output:\n%s", want, seen.String())
	return ""
}

// Every command answers --help and -h with its usage on stdout, exit 0,
// and does nothing else (secret --help used to print a secret); an
// argument a command does not take is refused by name, exit 2.
func TestEveryCommandHelpAndExtraArguments(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "demo", "simulate", "apikey", "apikey create", "apikey list", "apikey revoke",
		"secret", "version", "healthcheck", "help"} {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			code := run(append(strings.Fields(cmd), h), &out, &errb)
			if code != 0 || !strings.Contains(out.String(), "Usage") || regexp.MustCompile(`whsec_[A-Za-z0-9+/]{20,}`).MatchString(out.String()) {
				t.Errorf("%s %s: exit %d\nstdout: %s\nstderr: %s", cmd, h, code, out.String(), errb.String())
			}
		}
	}
	for _, args := range [][]string{{"serve", "--config", "x.yaml", "now"}, {"check", "extra"}, {"secret", "extra"},
		{"version", "extra"}, {"healthcheck", "--url", "http://127.0.0.1:1/readyz", "extra"}, {"demo", "extra"},
		{"simulate", "--pbx", "asterisk", "extra"}, {"apikey", "list", "extra"}, {"apikey", "revoke", "id", "extra"}} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), `"extra"`) && !strings.Contains(errb.String(), `"now"`) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--bogus"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "bogus") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errb.String())
	}
}

// version names the version, the commit and the build date; a release
// build stamps them with -ldflags -X.
func TestVersion(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, BuildDate = v, c, d }(Version, Commit, BuildDate)
	Version, Commit, BuildDate = "1.4.2", "0123456789ab", "2026-12-01T10:00:00Z"
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"ctibridge 1.4.2", "commit 0123456789ab", "built 2026-12-01T10:00:00Z"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version says %q, lacks %q", out.String(), want)
		}
	}
}

// healthcheck exits 0 only when /readyz answers 200, at the address the
// config listens on (a wildcard listen is reached on loopback).
func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz" && ready:
			fmt.Fprint(w, `{"status":"ready"}`)
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"not ready","pbx_error":"not connected"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	yaml := "pbx:\n  address: 127.0.0.1:1\n  username: bridge\n  secret: x\nhttp:\n  listen: 0.0.0.0:" + port + "\n  anonymous: none\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"healthcheck"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := hc("--config", cfgPath); code != 0 || !strings.Contains(out, "200") {
		t.Errorf("ready: exit %d: %s", code, out)
	}
	ready = false
	if code, out := hc("--config", cfgPath); code != 1 || !strings.Contains(out, "503") {
		t.Errorf("not ready: exit %d: %s", code, out)
	}
	if code, out := hc("--url", srv.URL+"/nothing"); code != 1 {
		t.Errorf("404: exit %d: %s", code, out)
	}
	srv.Close()
	if code, out := hc("--url", srv.URL+"/readyz"); code != 1 {
		t.Errorf("nothing listening: exit %d: %s", code, out)
	}
}

// The Dockerfile's HEALTHCHECK runs the binary, not a shell trick.
func TestDockerHealthcheckUsesTheCommand(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "HEALTHCHECK") {
			if !strings.Contains(l, `"ctibridge", "healthcheck"`) || strings.Contains(l, "/dev/tcp") {
				t.Errorf("Dockerfile: %s", l)
			}
			return
		}
	}
	t.Error("Dockerfile has no HEALTHCHECK")
}

// SIGTERM stops the demo at once with exit 0, in the middle of its calls
// and while --keep holds it up.
func TestDemoStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo as a process")
	}
	for _, tc := range []struct {
		args []string
		wait string
	}{
		{[]string{"demo", "--calls", "1000", "--pace", "20ms"}, "SCREEN POP"},
		{[]string{"demo", "--keep", "--pace", "1ms"}, "--keep: still running"},
	} {
		cmd, sc, stderr := child(t, tc.args...)
		waitLine(t, sc, tc.wait)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		go func() {
			for sc.Scan() { // drain: a full pipe would block the child
			}
		}()
		if err := cmd.Wait(); err != nil {
			t.Errorf("%v after SIGTERM: %v\nstderr: %s", tc.args, err, stderr.String())
		}
	}
}
