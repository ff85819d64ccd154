// Package packaging holds the release scripts; its test builds the .deb with
// packaging/build.sh and inspects it as dpkg would install it.
package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The .deb installs the binary, an owner-only config with no usable secret
// (a conffile), and a hardened unit whose state directory holds the
// database; systemd-analyze verify accepts the unit where it is installed.
func TestDeb(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the .deb cannot be built here", tool)
		}
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "ctibridge")
	run(t, "", nil, "go", "build", "-C", "..", "-o", bin, "./cmd/ctibridge")
	out := filepath.Join(tmp, "out")
	deb := strings.TrimSpace(run(t, "", nil, "./build.sh", "deb", bin, "amd64", "v1.2.3-4-gabc1234", out))
	if filepath.Base(deb) != "ctibridge_1.2.3+git4.abc1234_amd64.deb" {
		t.Fatalf("package name %s", deb)
	}

	// Control fields, conffiles and maintainer scripts.
	info := run(t, "", nil, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends")
	for _, want := range []string{"Package: ctibridge", "Version: 1.2.3+git4.abc1234", "Architecture: amd64", "adduser"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	ctrl := filepath.Join(tmp, "DEBIAN")
	run(t, "", nil, "dpkg-deb", "--control", deb, ctrl)
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/ctibridge/ctibridge.yaml" {
		t.Errorf("conffiles = %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		run(t, "", nil, "sh", "-n", filepath.Join(ctrl, s))
		if st, err := os.Stat(filepath.Join(ctrl, s)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", s, st, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ctrl, "postinst")); !bytes.Contains(b, []byte("chown root:ctibridge /etc/ctibridge /etc/ctibridge/ctibridge.yaml")) {
		t.Error("postinst does not give the config to the ctibridge group")
	}

	// Files, owners and modes as dpkg lists them.
	wantFiles := map[string]string{
		"./":                             "drwxr-xr-x",
		"./usr/bin/ctibridge":            "-rwxr-xr-x",
		"./etc/ctibridge/":               "drwxr-x---",
		"./etc/ctibridge/ctibridge.yaml": "-rw-r-----",
		"./usr/lib/systemd/system/ctibridge.service": "-rw-r--r--",
		"./usr/share/doc/ctibridge/README.md":        "-rw-r--r--",
	}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "", nil, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", line)
		}
		if f[1] != "root/root" {
			t.Errorf("%s owned by %s", f[5], f[1])
		}
		if want, ok := wantFiles[f[5]]; ok {
			if f[0] != want {
				t.Errorf("%s: mode %s, want %s", f[5], f[0], want)
			}
			delete(wantFiles, f[5])
		}
	}
	for f := range wantFiles {
		t.Errorf("the package lacks %s", f)
	}

	root := filepath.Join(tmp, "root")
	run(t, "", nil, "dpkg-deb", "-x", deb, root)

	// The unit's hardening and paths, read with a parser (what systemd reads
	// when systemd-analyze is not installed).
	unit := parseUnit(t, filepath.Join(root, "usr/lib/systemd/system/ctibridge.service"))
	for key, want := range map[string]string{
		"Service.ExecStart":                "/usr/bin/ctibridge serve --config /etc/ctibridge/ctibridge.yaml",
		"Service.User":                     "ctibridge",
		"Service.StateDirectory":           "ctibridge",
		"Service.StateDirectoryMode":       "0700",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.NoNewPrivileges":          "yes",
		"Service.PrivateTmp":               "yes",
		"Service.RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "2",
		"Service.CapabilityBoundingSet":    "",
		"Service.UMask":                    "0077",
		"Install.WantedBy":                 "multi-user.target",
	} {
		if got, ok := unit[key]; !ok || got != want {
			t.Errorf("unit %s = %q (set %v), want %q", key, got, ok, want)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// --root: the unit and its ExecStart are checked where dpkg put them.
		cmd := exec.Command(sa, "verify", "--man=no", "--recursive-errors=no", "--root="+root, "/usr/lib/systemd/system/ctibridge.service")
		b, err := cmd.CombinedOutput()
		if err != nil || bytes.Contains(b, []byte("ctibridge.service")) {
			t.Errorf("systemd-analyze verify: %v\n%s", err, b)
		}
	} else {
		t.Log("systemd-analyze is not installed: the unit was checked by the parser only")
	}

	// The config keeps the database in the state directory and has no
	// usable secret: check refuses it for pbx.secret, and accepts it once
	// the secret comes from the environment the unit's EnvironmentFile sets.
	cfg := filepath.Join(root, "etc/ctibridge/ctibridge.yaml")
	if b, _ := os.ReadFile(cfg); !regexp.MustCompile(`(?m)^\s+path: /var/lib/ctibridge/ctibridge\.db\s*$`).Match(b) {
		t.Error("store.path is not /var/lib/ctibridge/ctibridge.db")
	}
	installed := filepath.Join(root, "usr/bin/ctibridge")
	clean := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp}
	cmd := exec.Command(installed, "check", "--config", cfg)
	cmd.Env = clean
	if b, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(b, []byte("pbx.secret")) {
		t.Errorf("check of the shipped config: %v\n%s", err, b)
	}
	run(t, "", append(clean, "CTIBRIDGE_PBX__SECRET=from-env"), installed, "check", "--config", cfg)
}

// parseUnit reads a systemd unit file into "Section.Key" → value (the last
// assignment wins, as for the keys checked here).
func parseUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, n, line)
			}
			m[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}
