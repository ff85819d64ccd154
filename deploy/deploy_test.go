// Package deploy_test checks the files docker-compose.yml runs with: they
// exist, refer to each other, ship no usable secret, and Asterisk's
// dialplan has the contexts ctibridge's configuration names. (No Docker
// engine runs here; this is what can be checked without one.)
package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/config"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every file compose mounts exists; .env.example, which it points to, sets
// every variable compose requires, and none to a value.
func TestComposeFiles(t *testing.T) {
	compose := read(t, "../docker-compose.yml")
	mounts := regexp.MustCompile(`(?m)^\s*-\s*(\./[^:\s]+):`).FindAllStringSubmatch(compose, -1)
	if len(mounts) < 3 {
		t.Fatalf("docker-compose.yml mounts %d files; want manager.conf, extensions.conf and ctibridge.yaml", len(mounts))
	}
	var mounted []string
	for _, m := range mounts {
		mounted = append(mounted, m[1])
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("docker-compose.yml mounts %s: %v", m[1], err)
		}
	}
	for _, want := range []string{"./deploy/asterisk/manager.conf", "./deploy/asterisk/extensions.conf", "./deploy/ctibridge.yaml"} {
		if !slices.Contains(mounted, want) {
			t.Errorf("docker-compose.yml does not mount %s", want)
		}
	}
	if !strings.Contains(compose, ".env.example") {
		t.Error("docker-compose.yml does not point to .env.example")
	}

	env := read(t, "../.env.example")
	set := map[string]string{}
	for _, line := range strings.Split(env, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not KEY=value", line)
			continue
		}
		set[k] = v
		if v != "" {
			t.Errorf(".env.example: %s has a value; ship placeholders only (empty, refused by compose)", k)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`).FindAllStringSubmatch(compose, -1) {
		if _, ok := set[m[1]]; !ok {
			t.Errorf(".env.example lacks %s, which docker-compose.yml requires", m[1])
		}
	}
}

// The dialplan compose gives Asterisk has every context deploy/ctibridge.yaml
// sends calls to (with the Asterisk commander's defaults for unset keys),
// one of its inbound contexts, and agents' extensions in the agent-dial
// context.
func TestDialplanMatchesConfig(t *testing.T) {
	cfg, err := config.Load("../deploy/ctibridge.yaml", []string{"CTIBRIDGE_PBX__SECRET=" + strings.Repeat("0", 48)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dialplan := read(t, "asterisk/extensions.conf")
	contexts := map[string]string{} // name → its body
	var cur string
	for _, line := range strings.Split(dialplan, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			cur = line[1 : len(line)-1]
			contexts[cur] = ""
			continue
		}
		contexts[cur] += line + "\n"
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	agentDial := or(cfg.Commands.AgentDial, "Local/{agent}@from-internal")
	_, agentCtx, ok := strings.Cut(agentDial, "@")
	if !strings.HasPrefix(agentDial, "Local/") || !ok {
		t.Fatalf("commands.agent_dial %q is not a Local channel; this test reads its context", agentDial)
	}
	for key, ctx := range map[string]string{
		"commands.agent_dial":       agentCtx,
		"commands.context":          or(cfg.Commands.Context, "from-internal"),
		"commands.transfer_context": or(cfg.Commands.TransferContext, "from-internal"),
	} {
		if _, ok := contexts[ctx]; !ok {
			t.Errorf("%s names context %q; extensions.conf has none (%v)", key, ctx, contexts)
		}
	}
	inbound := false
	for _, c := range cfg.Calls.InboundContexts {
		_, ok := contexts[c]
		inbound = inbound || ok
	}
	if !inbound {
		t.Errorf("extensions.conf has none of calls.inbound_contexts %v: no call would be inbound", cfg.Calls.InboundContexts)
	}
	// Every agent length the pattern allows (2 to 6 digits) has an extension
	// in the agent-dial context.
	agent := regexp.MustCompile(cfg.Calls.AgentPattern)
	for n := 1; n <= 8; n++ {
		ext := strings.Repeat("1", n)
		pattern := "exten => _" + strings.Repeat("X", n) + ","
		if has := strings.Contains(contexts[agentCtx], pattern); agent.MatchString(ext) && !has {
			t.Errorf("context %s has no %s for %d-digit agents", agentCtx, pattern, n)
		}
	}
}
