package bridge_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Dependencies point inward: the domain imports no adapter, and an adapter
// imports the domain only, never another adapter.
func TestDependenciesPointInward(t *testing.T) {
	const module = "github.com/ctibridge/ctibridge/"
	allowed := map[string][]string{
		"bridge": nil, "phone": nil,
		"ami": {"bridge"}, "esl": {"bridge"}, "store": {"bridge"}, "webhooks": {"bridge"},
		"http": {"bridge"}, "config": {"bridge"},
		// A connector speaks one CRM: the domain and the shared connector
		// helpers only, never another adapter.
		"connectors": {"bridge"}, "connectors/bitrix24": {"bridge", "connectors"},
		"connectors/zammad":   {"bridge", "connectors"},
		"connectors/template": {"bridge", "connectors"},
		"connectors/hubspot":  {"bridge", "connectors"},
		// A sink publishes events to a message system: the domain only.
		"sinks/nats": {"bridge"},
		// The test harness that runs the binary depends on nothing of ours.
		"internal/serveproc": nil,
	}
	for pkg, ok := range allowed {
		files, err := filepath.Glob(filepath.Join("..", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", pkg, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				dep, inModule := strings.CutPrefix(path, module)
				if !inModule {
					continue
				}
				if !slices.Contains(ok, dep) {
					t.Errorf("%s imports %s: %s may import only %v", f, path, pkg, ok)
				}
			}
		}
	}
}
