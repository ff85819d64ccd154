// Command ctibridge runs beside an Asterisk or FreeSWITCH PBX and delivers
// its calls to CRMs as signed webhooks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
)

const usage = `ctibridge connects an Asterisk (AMI) or FreeSWITCH (ESL) PBX to CRMs.

Usage:
  ctibridge serve    --config ctibridge.yaml  run the bridge
  ctibridge check    --config ctibridge.yaml  validate a config file (every problem at once) and exit
  ctibridge demo     [--pbx asterisk|freeswitch] [--calls N] [--keep]
                                              simulated PBX + local CRM receiver, no setup
  ctibridge simulate --pbx asterisk|freeswitch --listen 127.0.0.1:5038 [--calls N] [--rate R] [--scenario NAME]
                                              a simulated PBX alone, for your own ctibridge
  ctibridge apikey   create|list|revoke       manage REST API keys
  ctibridge connector test NAME --event FILE  render a template connector's request for an event, without sending
  ctibridge backup   --to FILE                copy the database while serve runs
  ctibridge secret                            print a new webhook secret (whsec_...)
  ctibridge healthcheck [--config F | --url URL]
                                              exit 0 when /readyz answers 200 (for Docker, systemd)
  ctibridge version                           version, commit and build date

Every command takes --help. Configuration: a YAML file, then CTIBRIDGE_*
environment variables (CTIBRIDGE_PBX__SECRET sets pbx.secret), then
--set key=value flags.
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
		cfg, log, err := loadConfig(args[0], args[1:], stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "ctibridge %s: %v\n", args[0], err)
			return 2
		}
		if args[0] == "check" {
			fmt.Fprintf(stdout, "config ok: %s %s at %s, %d webhook endpoint(s), database %s\n", cfg.PBX.Type, cfg.PBX.Name, cfg.PBX.Address, len(cfg.Webhooks), cfg.Store.Path)
			return 0
		}
		if err := serve(ctx, cfg, log, nil); err != nil {
			log.Error("ctibridge stopped", "err", err)
			return 1
		}
		return 0
	case "demo", "simulate":
		cmd := demo
		if args[0] == "simulate" {
			cmd = simulate
		}
		err := cmd(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			return 0 // Ctrl-C or SIGTERM: stopped as asked
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "ctibridge %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "ctibridge %s: %v\n", args[0], err)
		return 1
	case "apikey":
		return runAPIKey(ctx, args[1:], stdout, stderr)
	case "connector":
		return runConnector(ctx, args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], stdout, stderr)
	case "secret":
		fs := newFlagSet("secret", "Usage: ctibridge secret\n\nPrints a new random webhook secret (whsec_...) for a webhooks entry or the API.\n")
		if code, ok := parseFlags(fs, args[1:], stdout, stderr); !ok {
			return code
		}
		fmt.Fprintln(stdout, bridge.NewWebhookSecret())
		return 0
	case "version", "--version", "-v":
		fs := newFlagSet("version", "Usage: ctibridge version\n\nPrints the version, the commit and the build date.\n")
		if code, ok := parseFlags(fs, args[1:], stdout, stderr); !ok {
			return code
		}
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ctibridge: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// usageError is a mistake on the command line (exit 2), not a failure.
type usageError struct{ error }

// newFlagSet is a FlagSet whose --help prints head and the flags to the
// writer parseFlags gives it.
func newFlagSet(name, head string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), head)
		if hasFlags(fs) {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args. --help prints the usage on stdout (code 0); a
// bad flag or any argument left over is named on stderr (code 2). ok is
// true when the command should run.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		fmt.Fprintf(stderr, "ctibridge %s: %v\n", fs.Name(), err)
		return 2, false
	}
	return 0, true
}

// parseArgs is parseFlags returning flag.ErrHelp or a usageError.
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return err
	case err != nil:
		return usageError{fmt.Errorf("%v (see ctibridge %s --help)", err, fs.Name())}
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument%s %s (see ctibridge %s --help)", plural(fs.NArg()), quoteAll(fs.Args()), fs.Name())}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
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

// configFlags are the flags of every command that reads the config.
type configFlags struct {
	path *string
	sets setFlags
}

func addConfigFlags(fs *flag.FlagSet) configFlags {
	c := configFlags{path: fs.String("config", "", "YAML config file (default ./ctibridge.yaml if it exists)"), sets: setFlags{}}
	fs.Var(c.sets, "set", "override a config key, e.g. --set store.synchronous=NORMAL (repeatable)")
	return c
}

// load reads the config the flags name. Without --config it takes
// ./ctibridge.yaml, or the environment alone when CTIBRIDGE_PBX__SECRET
// is set.
func (c configFlags) load() (config.Config, error) {
	if *c.path == "" {
		if _, err := os.Stat("ctibridge.yaml"); err == nil {
			*c.path = "ctibridge.yaml"
		} else if os.Getenv("CTIBRIDGE_PBX__SECRET") == "" {
			return config.Config{}, errors.New("no config: pass --config ctibridge.yaml (README has a minimal file) or set CTIBRIDGE_* variables")
		}
	}
	return config.Load(*c.path, os.Environ(), c.sets)
}

func loadConfig(name string, args []string, stdout, stderr io.Writer) (config.Config, *slog.Logger, error) {
	head := "Usage: ctibridge serve --config ctibridge.yaml [--listen ADDR] [--set key=value]...\n\nRuns the bridge until SIGTERM or Ctrl-C.\n"
	if name == "check" {
		head = "Usage: ctibridge check --config ctibridge.yaml [--set key=value]...\n\nValidates the configuration, listing every problem at once; exit 0 when it is valid.\n"
	}
	fs := newFlagSet(name, head)
	cf := addConfigFlags(fs)
	listen := fs.String("listen", "", "HTTP listen address (overrides http.listen)")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return config.Config{}, nil, err
	}
	if *listen != "" {
		cf.sets["http.listen"] = *listen
	}
	cfg, err := cf.load()
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
