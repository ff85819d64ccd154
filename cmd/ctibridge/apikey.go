package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/store"
)

const apikeyUsage = `Usage:
  ctibridge apikey create --name NAME --scopes read,control,admin [--config ctibridge.yaml]
                          prints the new key once, alone on stdout
  ctibridge apikey create --agent EXT [--name NAME] [--scopes read,control]
                          a key limited to one agent's calls and state (the
                          agent panel signs in with it); never admin
  ... --tenant NAME       limits a key to one tenant's calls, agents, events
                          and webhook endpoints (config tenants:)
  ctibridge apikey list   [--config ctibridge.yaml]
  ctibridge apikey revoke ID [--config ctibridge.yaml]

Scopes: read (GETs, the event stream), control (call and agent commands),
admin (webhooks, replay); admin implies control, control implies read.
Keys live in the store (store.path), only as their SHA-256.
`

// runAPIKey manages API keys in the store of a config file. It opens the
// store itself, so it works beside a running ctibridge serve.
func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeyUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "create", "list", "revoke":
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, apikeyUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "ctibridge apikey: unknown command %q\n\n%s", sub, apikeyUsage)
		return 2
	}
	fs := flag.NewFlagSet("apikey "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "YAML config file (its store.path holds the keys)")
	sets := setFlags{}
	fs.Var(sets, "set", "override a config key, e.g. --set store.path=/var/lib/ctibridge/ctibridge.db")
	name := fs.String("name", "", "who the key is for, e.g. crm")
	scopes := fs.String("scopes", "", "comma-separated: read, control, admin")
	agent := fs.String("agent", "", "limit the key to this agent extension (its calls and state)")
	tenant := fs.String("tenant", "", "limit the key to this tenant (its calls, agents, events, endpoints)")
	// Flags may follow the positional id (apikey revoke ID --config x).
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, apikeyUsage)
				return 0
			}
			fmt.Fprintf(stderr, "ctibridge apikey %s: %v\n\n%s", sub, err, apikeyUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if want := map[string]int{"create": 0, "list": 0, "revoke": 1}[sub]; len(pos) > want {
		fmt.Fprintf(stderr, "ctibridge apikey %s: unexpected argument%s %s\n\n%s", sub, plural(len(pos)-want), quoteAll(pos[want:]), apikeyUsage)
		return 2
	}
	if *path == "" {
		if _, err := os.Stat("ctibridge.yaml"); err == nil {
			*path = "ctibridge.yaml"
		}
	}
	cfg, err := config.Load(*path, os.Environ(), sets)
	if err != nil {
		fmt.Fprintln(stderr, "ctibridge apikey:", err)
		return 2
	}
	db, err := store.Open(cfg.Store.Path, store.Options{Synchronous: cfg.Store.Synchronous, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(stderr, "ctibridge apikey: store:", err)
		return 1
	}
	defer db.Close()

	switch sub {
	case "create":
		if *agent != "" {
			// An agent's key: named after it and able to control its own
			// calls unless told otherwise.
			if *name == "" {
				*name = "agent " + *agent
			}
			if *scopes == "" {
				*scopes = "read,control"
			}
		}
		if *name == "" || *scopes == "" || len(pos) > 0 {
			fmt.Fprint(stderr, apikeyUsage)
			return 2
		}
		var list []string
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		if err := cfg.Tenants.Bridge().CheckKnownTenant("--tenant", *tenant); err != nil {
			fmt.Fprintln(stderr, "ctibridge apikey create:", err)
			return 2
		}
		// An agent the config gives a tenant: its key is that tenant's,
		// or it would see that agent's calls of every tenant (or none).
		if owner, ok := cfg.Tenants.Agents[*agent]; ok && *agent != "" && owner != *tenant {
			fmt.Fprintf(stderr, "ctibridge apikey create: --tenant: agent %s is tenant %s's (tenants.agents): use --tenant %s\n", *agent, owner, owner)
			return 2
		}
		plain, k, err := db.CreateTenantAPIKey(ctx, *name, list, *agent, *tenant)
		if err != nil {
			fmt.Fprintln(stderr, "ctibridge apikey create:", err)
			return 2
		}
		limit := ""
		if k.Agent != "" {
			limit = " limited to agent " + k.Agent
		}
		if k.Tenant != "" {
			limit += " of tenant " + k.Tenant
		}
		fmt.Fprintf(stderr, "created %s for %q with scopes %s%s; the key is shown only now:\n", k.ID, k.Name, strings.Join(k.Scopes, ","), limit)
		fmt.Fprintln(stdout, plain)
		return 0
	case "list":
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "ctibridge apikey list:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tAGENT\tTENANT\tCREATED\tLAST USED")
		for _, k := range keys {
			used := "never"
			if k.LastUsedAt != nil {
				used = k.LastUsedAt.Format(time.RFC3339)
			}
			ag := k.Agent
			if ag == "" {
				ag = "-"
			}
			tn := cmp.Or(k.Tenant, "-")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), ag, tn, k.CreatedAt.Format(time.RFC3339), used)
		}
		tw.Flush()
		return 0
	case "revoke":
		if len(pos) != 1 {
			fmt.Fprint(stderr, apikeyUsage)
			return 2
		}
		if err := db.DeleteAPIKey(ctx, pos[0]); err != nil {
			fmt.Fprintln(stderr, "ctibridge apikey revoke:", err)
			return 1
		}
		fmt.Fprintln(stdout, "revoked", pos[0])
	}
	return 0
}

// panelLoginLink creates an agent key for extension ext and asks the
// running server at httpAddr for a one-time link that signs the panel in
// with it (good once, for 10 minutes): ctibridge demo prints one.
func panelLoginLink(ctx context.Context, db *store.DB, httpAddr, ext string) (string, error) {
	plain, _, err := db.CreateAgentAPIKey(ctx, "agent "+ext, []string{"read", "control"}, ext)
	if err != nil {
		return "", err
	}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, "http://"+httpAddr+"/panel/links", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+plain)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body); err != nil || res.StatusCode != nethttp.StatusCreated || body.URL == "" {
		return "", fmt.Errorf("panel login link: HTTP %d", res.StatusCode)
	}
	return body.URL, nil
}
