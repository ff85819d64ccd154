package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No secret ctibridge ships is usable: the deployment files carry none
// (the compose file requires them from the environment, without a
// default), and the README's examples are placeholders.
func TestShippedFilesCarryNoSecret(t *testing.T) {
	_, err := Load("../deploy/ctibridge.yaml", nil, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "pbx.secret" {
		t.Fatalf("deploy/ctibridge.yaml without CTIBRIDGE_PBX__SECRET: %v, want pbx.secret required", err)
	}
	if _, err := Load("../deploy/ctibridge.yaml", []string{"CTIBRIDGE_PBX__SECRET=" + strings.Repeat("ab", 24)}, nil); err != nil {
		t.Fatalf("deploy/ctibridge.yaml with the secret from the environment: %v", err)
	}

	files := []string{"../docker-compose.yml", "../README.md", "../Dockerfile"}
	filepath.WalkDir("../deploy", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	published := regexp.MustCompile(`bridgepass|whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw|whsec_[A-Za-z0-9+/]{30,}`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := published.Find(b); m != nil {
			t.Errorf("%s ships a usable secret: %s", f, m)
		}
	}

	compose, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\$\{[^}]*\}`).FindAll(compose, -1)
	if len(vars) == 0 {
		t.Fatal("docker-compose.yml passes no secret from the environment")
	}
	for _, v := range vars {
		if !strings.Contains(string(v), ":?") {
			t.Errorf("docker-compose.yml: %s has a default or may be empty; a secret must be required (${VAR:?message})", v)
		}
	}
}
