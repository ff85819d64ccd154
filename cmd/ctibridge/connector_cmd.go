package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/template"
)

// The config checks each template with the engine at load (config cannot
// import it: adapters import only bridge).
func init() { config.CheckTemplate = checkTemplate }

func checkTemplate(name string, src []byte, secrets map[string]string) error {
	_, err := compileTemplate(name, src, secrets)
	return err
}

func compileTemplate(name string, src []byte, secrets map[string]string) (*template.Template, error) {
	spec, err := template.ParseYAML(name, src)
	if err != nil {
		return nil, err
	}
	return template.Compile(name, spec, secrets)
}

const connectorUsage = `Usage:
  ctibridge connector test NAME --event FILE [--state KEY=VALUE]... [--config ctibridge.yaml] [--set key=value]...

Renders the request the template connector NAME (connectors.templates)
would send for the event in FILE, a committed event as the webhooks show it
(JSON), and prints the method, URL, headers and body. Nothing is sent: a
dry run. Every secret is shown as ***, and no OAuth2 token is fetched.
--state sets a value an earlier answer would have captured (.State.KEY).
The config loads as for serve, so the template's secrets must be set (any
value does for a dry run: none is shown or used).
`

// runConnector is "ctibridge connector": test renders a template's request.
func runConnector(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("connector", connectorUsage)
	cf := addConfigFlags(fs)
	event := fs.String("event", "", "the event's JSON file (as a webhook delivers it)")
	state := setFlags{}
	fs.Var(state, "state", "a captured value, KEY=VALUE (repeatable)")
	if len(args) == 0 || args[0] != "test" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			fmt.Fprint(stdout, connectorUsage)
			return 0
		}
		fmt.Fprintf(stderr, "ctibridge connector: say test NAME --event FILE (see ctibridge connector --help)\n")
		return 2
	}
	args = args[1:]
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fmt.Fprintf(stderr, "ctibridge connector: %v (see ctibridge connector --help)\n", err)
		return 2
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	switch {
	case len(rest) > 0:
		fmt.Fprintf(stderr, "ctibridge connector: unexpected argument%s %s (see ctibridge connector --help)\n", plural(len(rest)), quoteAll(rest))
		return 2
	case name == "":
		fmt.Fprintln(stderr, "ctibridge connector: name the template connector: ctibridge connector test NAME --event FILE")
		return 2
	case *event == "":
		fmt.Fprintln(stderr, "ctibridge connector: --event FILE is required (an event's JSON, as a webhook delivers it)")
		return 2
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "ctibridge connector: %v\n", err)
		return 2
	}
	var tc *config.TemplateConnector
	var names []string
	for i := range cfg.Connectors.Templates {
		names = append(names, cfg.Connectors.Templates[i].Name)
		if cfg.Connectors.Templates[i].Name == name {
			tc = &cfg.Connectors.Templates[i]
		}
	}
	if tc == nil {
		fmt.Fprintf(stderr, "ctibridge connector: no template connector %q in connectors.templates (configured: %s)\n", name, strings.Join(names, ", "))
		return 2
	}
	tp, err := compileTemplate(tc.Name, tc.Source, cfg.Connectors.TemplateSecrets)
	if err != nil {
		fmt.Fprintf(stderr, "ctibridge connector: %v\n", err)
		return 2
	}
	raw, err := os.ReadFile(*event)
	if err != nil {
		fmt.Fprintf(stderr, "ctibridge connector: --event: %v\n", err)
		return 2
	}
	var ev bridge.Event
	if err := json.Unmarshal(raw, &ev); err != nil || ev.Type == "" {
		if err == nil {
			err = errors.New("no \"type\"")
		}
		fmt.Fprintf(stderr, "ctibridge connector: --event %s is not an event's JSON: %v\n", *event, err)
		return 2
	}
	out, err := tp.DryRun(ev, state)
	if err != nil {
		fmt.Fprintf(stderr, "ctibridge connector: %s: %v\n", tc.Name, err)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}
