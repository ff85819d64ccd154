// Command ctibridge runs beside an Asterisk or FreeSWITCH PBX and delivers
// its calls to CRMs as signed webhooks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ctibridge/ctibridge/config"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

const usage = `ctibridge connects an Asterisk (AMI) or FreeSWITCH (ESL) PBX to CRMs.

Usage:
  ctibridge serve  --config ctibridge.yaml   run the bridge
  ctibridge demo   [--pbx asterisk|freeswitch] [--calls N]
                                             simulated PBX + local CRM receiver, no setup
  ctibridge apikey create|list|revoke        manage REST API keys (ctibridge apikey for help)
  ctibridge secret                           print a new webhook secret (whsec_...)
  ctibridge check  --config ctibridge.yaml   validate a config file and exit
  ctibridge version

Configuration: a YAML file, then CTIBRIDGE_* environment variables
(CTIBRIDGE_PBX__SECRET sets pbx.secret), then --set key=value flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve", "check":
		cfg, log, err := loadConfig(args[0], args[1:], stderr)
		if err != nil {
			fmt.Fprintln(stderr, "ctibridge:", err)
			return 2
		}
		if args[0] == "check" {
			fmt.Fprintf(stdout, "config ok: %s %s at %s, %d webhook endpoint(s)\n", cfg.PBX.Type, cfg.PBX.Name, cfg.PBX.Address, len(cfg.Webhooks))
			return 0
		}
		if err := serve(ctx, cfg, log, nil); err != nil {
			log.Error("ctibridge stopped", "err", err)
			return 1
		}
		return 0
	case "demo":
		if err := demo(ctx, args[1:], stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "ctibridge demo:", err)
			return 1
		}
		return 0
	case "apikey":
		return runAPIKey(ctx, args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "secret":
		fmt.Fprintln(stdout, bridge.NewWebhookSecret())
		return 0
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "ctibridge", Version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ctibridge: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// setFlags collects repeated --set key=value overrides.
type setFlags map[string]string

func (s setFlags) String() string { return "" }
func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--set wants key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func loadConfig(name string, args []string, stderr io.Writer) (config.Config, *slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file")
	listen := fs.String("listen", "", "HTTP listen address (overrides http.listen)")
	sets := setFlags{}
	fs.Var(sets, "set", "override a config key, e.g. --set store.synchronous=NORMAL (repeatable)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, nil, err
	}
	if *path == "" {
		if _, err := os.Stat("ctibridge.yaml"); err == nil {
			*path = "ctibridge.yaml"
		} else if os.Getenv("CTIBRIDGE_PBX__SECRET") == "" {
			return config.Config{}, nil, errors.New("no config: pass --config ctibridge.yaml (README has a minimal file) or set CTIBRIDGE_* variables")
		}
	}
	if *listen != "" {
		sets["http.listen"] = *listen
	}
	cfg, err := config.Load(*path, os.Environ(), sets)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, newLogger(cfg.Log, stderr), nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
