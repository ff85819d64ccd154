package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/esl"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/phone"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
)

// running is a started bridge, for the demo and tests.
type running struct {
	HTTPAddr string
	Engine   *bridge.Engine
	DB       *store.DB
}

// serve runs the bridge until ctx ends, then shuts down in order: the PBX
// link first (no new input), the engine (commit what it holds), the
// dispatcher (in-flight requests finish or stay pending), HTTP, the store.
// started, when set, is called once everything listens.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, started func(running)) error {
	db, err := store.Open(cfg.Store.Path, store.Options{Synchronous: cfg.Store.Synchronous, Logger: log})
	if err != nil {
		return err // it names the store, the file and the reason
	}
	defer db.Close()

	var engine *bridge.Engine
	var srv *apihttp.Server
	var endpoints *bridge.Endpoints // built once the connectors are

	policy := webhooks.DefaultPolicy()
	policy.AllowLoopback, policy.AllowPrivate, policy.AllowLinkLocal = cfg.Delivery.AllowLoopback, cfg.Delivery.AllowPrivate, cfg.Delivery.AllowLinkLocal
	policy.TenantsLikeOperator = cfg.Delivery.TenantEndpointsPrivate
	conns := map[string]bridge.Connector{} // filled below, before any delivery
	deliveries := apihttp.NewDeliveryMetrics()
	dispatcher := webhooks.New(db, webhooks.Options{
		Observer:               deliveries,
		RetryWindow:            cfg.Delivery.RetryWindow,
		Timeout:                cfg.Delivery.Timeout,
		MaxInFlight:            cfg.Delivery.MaxInFlight,
		MaxInFlightPerEndpoint: cfg.Delivery.MaxInFlightPerEndpoint,
		Policy:                 &policy,
		UserAgent:              "ctibridge/" + Version,
		Logger:                 log,
		// Stop creating deliveries for an endpoint that answered 410.
		OnDisable: func(id, reason string) {
			if err := endpoints.Disabled(context.Background(), id); err != nil {
				log.Error("endpoint disabled, but deliveries may still be created for it until a restart", "endpoint", id, "err", err)
			}
		},
		Connectors: conns,
	})
	var calls bridge.CallService // built once the PBX adapter is
	connectorEPs, err := crmConnectors(cfg, db, dispatcher.Client(), log, conns, func(ctx context.Context, id string) error {
		return hangUpRefused(ctx, calls, id)
	})
	if err != nil {
		return err
	}
	if connectorEPs, err = fleetSinks(ctx, cfg, log, conns, connectorEPs, dispatcher.Resume); err != nil {
		return err
	}
	fixedEPs, err := tenantEndpoints(cfg, append(configEndpoints(cfg), connectorEPs...))
	if err != nil {
		return err
	}
	endpoints = bridge.NewEndpoints(db, fixedEPs, dispatcher.AddressPolicy(), cfg.Tenants.Bridge())
	initial, err := endpoints.Load(ctx, func(id, reason string) {
		log.Warn("webhook endpoint from the config was disabled; enabling it again", "endpoint", id, "reason", reason)
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, ep := range initial {
		// Made before tenants' endpoints were held to public addresses:
		// each delivery to it now fails at its dial.
		if err := bridge.CheckWebhookAddress("url", ep.URL, policy.For(ep)); ep.TenantMade() && err != nil {
			log.Warn("a tenant's webhook endpoint is at an address tenants may not reach: its events are dead-lettered (delivery.tenant_endpoints_private, or move it to a public address)",
				"endpoint", ep.ID, "tenant", ep.Tenant, "err", bridge.ErrorMessage(err))
		}
	}

	tracker := bridge.NewTracker(trackerConfig(cfg))
	engine = bridge.NewEngine(tracker, db, dispatcher, bridge.EngineOptions{Endpoints: initial, Logger: log,
		MaxQueued: cfg.Store.MaxQueuedEvents, ReconcileInterval: cfg.PBX.ReconcileInterval, CheckInvariants: cfg.Calls.CheckInvariants})
	if err := engine.Restore(ctx); err != nil {
		return fmt.Errorf("store: restoring open calls: %w", err)
	}

	pbxCtx, stopPBX := context.WithCancel(ctx)
	defer stopPBX()
	// The PBX adapter is built before anything serves, so the readiness
	// probe is in place; it runs last and stops first.
	var runPBX func(context.Context) error
	var pbx bridge.PBX
	cm := cfg.Commands
	switch cfg.PBX.Type {
	case "asterisk":
		acfg := ami.Config{Address: cfg.PBX.Address, Username: cfg.PBX.Username, Secret: cfg.PBX.Secret,
			ActionTimeout: cfg.PBX.ActionTimeout, PingInterval: cfg.PBX.PingInterval, BackoffMax: cfg.PBX.BackoffMax,
			EventFilters: cfg.PBX.EventFilters, Logger: log}
		if cfg.PBX.TLS {
			acfg.TLS = &tls.Config{InsecureSkipVerify: cfg.PBX.TLSSkipVerify} //nolint:gosec // the admin's explicit choice
		}
		client := ami.New(acfg, engine, append(cfg.Tenants.Bridge().Variables(), cfg.Calls.DirectionVariable)...)
		pbx = ami.NewCommander(client, ami.CommanderOptions{AgentChannel: cm.AgentDial, OutboundContext: cm.Context,
			TransferContext: cm.TransferContext, QueueInterface: cm.QueueInterface, RingTimeout: cm.RingTimeout,
			VariablePrefix: cm.VariablePrefix})
		engine.Follow(client)
		runPBX = client.Run
	case "freeswitch":
		client := esl.New(esl.Config{Address: cfg.PBX.Address, Password: cfg.PBX.Secret, CommandTimeout: cfg.PBX.ActionTimeout,
			HeartbeatTimeout: cfg.PBX.PingInterval, ReorderWindow: reorderWindow(cfg.PBX.ReorderWindow),
			BackoffMax: cfg.PBX.BackoffMax, DirectionVar: cfg.Calls.DirectionVariable, Vars: cfg.Tenants.Bridge().Variables(), Logger: log}, engine)
		pbx = esl.NewCommander(client, esl.CommanderOptions{AgentDial: cm.AgentDial, Context: cm.Context,
			CallcenterAgent: cm.CallcenterAgent, RecordDir: cm.RecordDir, RingTimeout: cm.RingTimeout,
			VariablePrefix: cm.VariablePrefix})
		engine.Follow(client)
		runPBX = client.Run
	}
	calls = bridge.NewCallService(engine, bridge.CallServiceOptions{PBX: pbx, History: db})
	agents := bridge.NewAgents(pbx)
	// An agent not on the board yet: the tenant the call model learned from
	// its calls, else the configured one, else the default.
	agents.Tenants = func(ext string) string {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if tn, ok := engine.KnownAgentTenant(actx, ext); ok {
			return tn
		}
		return cfg.Tenants.Bridge().AgentTenant(ext)
	}
	engine.Subscribe(agents.Apply)

	srv = apihttp.NewServer(engine, db, log)
	if err := endpoints.Push(ctx, engine, dispatcher); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	srv.Calls, srv.Agents, srv.Endpoints = calls, agents, endpoints
	srv.PublicURL = cfg.HTTP.PublicURL
	// A sink that is down does not make ctibridge unready (the outbox keeps
	// its events, as for a webhook endpoint): /readyz says so, /metrics too.
	srv.Sinks = func() (bool, []string) { return sinkState(conns) }
	srv.Metrics = func() []apihttp.Metric {
		return append(append(dispatcherMetrics(dispatcher), storeMetrics(db)...), sinkMetrics(conns)...)
	}
	deliveries.Backlog, srv.Deliveries = dispatcher.Backlogs, deliveries
	srv.Version, srv.Commit, _ = buildInfo()
	srv.PBXName, srv.Dispatcher = cfg.PBX.Name, dispatcher
	srv.RequestTimeout, srv.RecordingsDir = cfg.HTTP.RequestTimeout, cfg.HTTP.RecordingsDir
	srv.Anonymous, srv.AnonymousLoopback = cfg.HTTP.Anonymous, cfg.HTTP.AnonymousLoopback
	srv.AllowedOrigins, srv.AllowedHosts = cfg.HTTP.AllowedOrigins, cfg.HTTP.AllowedHosts
	srv.MaxStreams, srv.MaxStreamsPerKey = cfg.HTTP.MaxStreams, cfg.HTTP.MaxStreamsPerKey
	srv.Panel = apihttp.PanelConfig{CRMURL: cfg.HTTP.Panel.CRMURL, AutoOpen: cfg.HTTP.Panel.AutoOpen, FrameAncestors: cfg.HTTP.Panel.FrameAncestors}
	if err := crmHandlers(cfg, srv, conns, calls, log); err != nil { // recording links, Bitrix24 click-to-call (connectors.go)
		return err
	}
	if err := srv.Listen(cfg.HTTP.Listen); err != nil {
		return err
	}

	// Everything is built and bound: let a caller (demo, tests) look before
	// anything runs.
	if started != nil {
		started(running{HTTPAddr: srv.Addr(), Engine: engine, DB: db})
	}

	var wg sync.WaitGroup
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	errc := make(chan error, 4)
	goRun := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	engineDone := make(chan struct{})
	go func() { defer close(engineDone); _ = engine.Run(engineCtx) }()
	dispatchDone := make(chan struct{})
	go func() { defer close(dispatchDone); _ = dispatcher.Run(dispatchCtx) }()
	goRun("http", srv.Serve)
	// Agent states committed before this start; the live feed (subscribed
	// above) wins over them by outbox position.
	go func() {
		if err := agents.Restore(pbxCtx, db); err != nil && pbxCtx.Err() == nil {
			log.Warn("agent states not read from the store; GET /v1/agents shows changes from now on", "err", err)
		}
	}()

	pbxDone := make(chan struct{})
	go func() { defer close(pbxDone); _ = runPBX(pbxCtx) }()
	// One P while nearly idle, every core when busy (procs.go).
	go scaleProcs(pbxCtx, log, func() bool { return engine.QueueLen.Load() > 64 })

	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		if cfg.Store.RetentionDays > 0 {
			prune(pbxCtx, db, cfg.Store.RetentionDays, log)
		}
	}()
	log.Info("ctibridge running", "pbx", cfg.PBX.Type, "pbx_address", cfg.PBX.Address, "http", srv.Addr(),
		"store", cfg.Store.Path, "endpoints", len(initial))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("ctibridge shutting down")
	stopPBX()
	<-pbxDone
	<-pruneDone
	stopEngine()
	<-engineDone
	stopDispatch()
	<-dispatchDone
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	wg.Wait()
	log.Info("ctibridge stopped")
	return runErr
}

func configEndpoints(cfg config.Config) []bridge.Endpoint {
	var eps []bridge.Endpoint
	for _, w := range cfg.Webhooks {
		eps = append(eps, bridge.Endpoint{ID: w.ID, URL: w.URL, Secret: w.Secret, PreviousSecret: w.PreviousSecret, Events: w.Events, Source: "config", Tenant: w.Tenant})
	}
	return eps
}

func trackerConfig(cfg config.Config) bridge.TrackerConfig {
	tc := bridge.TrackerConfig{
		PBX:             cfg.PBX.Name,
		AgentPattern:    regexp.MustCompile(cfg.Calls.AgentPattern), // validated by config
		InboundContexts: cfg.Calls.InboundContexts,
		DirectionVar:    cfg.Calls.DirectionVariable,
		Agents:          cfg.Calls.Agents,
		Numbers:         phone.New(cfg.Calls.DefaultRegion, cfg.Calls.StripPrefixes),
		Tenants:         cfg.Tenants.Bridge(),
	}
	if cfg.Calls.TrunkPattern != "" {
		tc.TrunkPattern = regexp.MustCompile(cfg.Calls.TrunkPattern)
	}
	return tc
}

// prune deletes history older than the retention, hourly.
func prune(ctx context.Context, db *store.DB, days int, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := db.Prune(ctx, time.Now().AddDate(0, 0, -days))
		if err != nil && ctx.Err() == nil {
			log.Warn("retention prune failed", "err", err)
		} else if n > 0 {
			log.Info("retention pruned old calls", "rows", n, "days", days)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeMetrics are the writer's counters: requests per transaction shows
// how well commits are grouped (each transaction of a FULL store is an fsync).
func storeMetrics(db *store.DB) []apihttp.Metric {
	return []apihttp.Metric{
		{Name: "ctibridge_store_transactions_total", Help: "Write transactions committed to the SQLite store.", Type: "counter", Value: float64(db.Transactions.Load())},
		{Name: "ctibridge_store_relaxed_transactions_total", Help: "Store transactions that needed no fsync of their own (calls' working state, delivery attempts).", Type: "counter", Value: float64(db.Relaxed.Load())},
		{Name: "ctibridge_store_write_requests_total", Help: "Write requests to the SQLite store (several share a transaction).", Type: "counter", Value: float64(db.Requests.Load())},
	}
}

func dispatcherMetrics(d *webhooks.Dispatcher) []apihttp.Metric {
	s := d.Stats()
	const name = "ctibridge_deliveries_total"
	// Kept for older readers; attempts and deliveries are apart in
	// ctibridge_delivery_attempts_total and ctibridge_deliveries_completed_total.
	const help = "Webhook delivery attempts and outcomes."
	return []apihttp.Metric{
		{Name: name, Help: help, Type: "counter", Labels: map[string]string{"outcome": "delivered"}, Value: float64(s.Delivered)},
		{Name: name, Help: help, Type: "counter", Labels: map[string]string{"outcome": "failed_attempt"}, Value: float64(s.FailedAttempts)},
		{Name: name, Help: help, Type: "counter", Labels: map[string]string{"outcome": "retried"}, Value: float64(s.Retried)},
		{Name: name, Help: help, Type: "counter", Labels: map[string]string{"outcome": "dead"}, Value: float64(s.Dead)},
		{Name: "ctibridge_endpoints_disabled_total", Help: "Endpoints disabled after 410 Gone.", Type: "counter", Value: float64(s.Disabled)},
		{Name: "ctibridge_deliveries_in_flight", Help: "Webhook requests under way.", Type: "gauge", Value: float64(s.InFlight)},
		{Name: "ctibridge_deliveries_queued", Help: "Deliveries held in memory.", Type: "gauge", Value: float64(s.Queued)},
		{Name: "ctibridge_endpoints_paused", Help: "Endpoints waiting out the Retry-After of a 429 or 503: no request to them until it ends.", Type: "gauge", Value: float64(s.Paused)},
	}
}

// reorderWindow maps the config's 0 (off) to the ESL client's negative
// (its 0 means its default).
func reorderWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
