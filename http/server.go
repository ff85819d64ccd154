// Package http is ctibridge's HTTP surface (fiber): health, metrics and the
// REST API over the call model.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// CallStore is what the health, metrics and call routes read.
type CallStore interface {
	Conversation(ctx context.Context, id string) (bridge.ConversationRecord, error)
	ConversationEvents(ctx context.Context, conversationID string) ([]bridge.Record, error)
	LatestAgentStates(ctx context.Context) ([]bridge.Record, error)
	Backlog(ctx context.Context) (int64, error)
	Writable(ctx context.Context) error
}

// Store is everything the server needs from the store (*store.DB).
type Store interface {
	CallStore
	History(ctx context.Context, f bridge.HistoryFilter) ([]bridge.ConversationRecord, string, error)
	Event(ctx context.Context, id string) (bridge.Record, error)
	EventsAfter(ctx context.Context, afterSeq int64, limit int) ([]bridge.Record, error)
	Commit(ctx context.Context, b *bridge.Batch) error

	AuthenticateAPIKey(ctx context.Context, plain string) (bridge.APIKey, error)
	ListAPIKeys(ctx context.Context) ([]bridge.APIKey, error)
	APIKeyExists(ctx context.Context, id string) (bool, error)
	APIKeyByID(ctx context.Context, id string) (bridge.APIKey, error)
	CreatePanelSession(ctx context.Context, keyID string, expires time.Time) (string, error)
	PanelSessionKey(ctx context.Context, token string) (bridge.APIKey, error)
	DeletePanelSession(ctx context.Context, token string) error
	// APIKeyEverCreated reports whether any API key was ever created,
	// revoked or not.
	APIKeyEverCreated(ctx context.Context) (bool, error)
	PutIdempotency(ctx context.Context, key, scope string, result []byte) ([]byte, bool, error)
	DeleteIdempotency(ctx context.Context, key, scope string) error

	Attempts(ctx context.Context, endpointID string, limit int, before time.Time) ([]bridge.Attempt, error)
	DeadLetters(ctx context.Context, endpointID string, limit int) ([]bridge.Delivery, error)
	Replay(ctx context.Context, eventID string, endpointIDs []string) (replayed []bridge.Delivery, pending []string, err error)
	ReplayRange(ctx context.Context, from, to time.Time, endpointIDs []string, missed func(endpointID string, rec bridge.Record) bool) (total int64, perEndpoint map[string]int64, err error)
}

// Engine is what the server reads of the call model's engine
// (*bridge.Engine): its health, its counters, and its commits for the
// event stream.
type Engine interface {
	LinkState() (up bool, lastErr string)
	StoreOK() bool
	StoreErr() error
	Stats() bridge.EngineStats
	Subscribe(fn func([]bridge.Record)) (unsubscribe func())
}

// Dispatcher is the webhook dispatcher (*webhooks.Dispatcher).
type Dispatcher interface {
	Notify(ds []bridge.Delivery)
	SetEndpoints(eps []bridge.Endpoint)
	Reload(endpointID string)
}

// Metric is one sample for /metrics.
type Metric struct {
	Name   string
	Help   string
	Type   string // counter or gauge
	Labels map[string]string
	Value  float64
}

// Server serves the HTTP API. Set the exported fields before Serve.
type Server struct {
	app    *fiber.App
	ln     net.Listener
	engine Engine
	store  Store
	log    *slog.Logger
	// Metrics adds samples from other parts (the dispatcher, the PBX link).
	// PublicURL is http.public_url: login links are made under it when set
	// (not under the request's Host, which the caller chooses).
	PublicURL string
	Metrics   func() []Metric
	// Sinks, when set, says whether the sinks (NATS) are connected, with a
	// fixed reason for each that is not: /readyz shows it, and stays ready
	// (their events wait in the outbox, as a webhook endpoint's do).
	Sinks func() (ok bool, reasons []string)
	// Deliveries are the webhook dispatcher's counters and histograms
	// (its Observer); nil: not served.
	Deliveries *DeliveryMetrics
	// Version and Commit label ctibridge_build_info.
	Version, Commit string
	promOnce        sync.Once
	promReg         *prometheus.Registry
	PBXName         string

	// Calls and Agents carry out the call and agent commands and serve
	// their views (bridge.NewCallService, bridge.NewAgents).
	Calls     bridge.CallService
	Agents    bridge.AgentService
	Endpoints bridge.EndpointService
	// Dispatcher delivers webhooks; the webhook routes need it.
	Dispatcher Dispatcher
	// RecordingsDir is the directory recordings may be served from; a
	// recording's path, as the PBX reports it, must lie under it. Empty:
	// recordings are not served.
	RecordingsDir string
	// RecordingLinks verifies the signed links of GET /v1/recordings/<token>
	// (no API key: the token is the credential); nil: every link is 404.
	RecordingLinks *bridge.RecordingLinks
	// Anonymous is what a request without an API key may do, on a
	// loopback listener only (never admin): "none", "read" or "control",
	// whether or not keys exist. "" is the default: read while no API key
	// has ever existed, nothing after (revoking the last key does not
	// reopen it).
	Anonymous string
	// AnonymousLoopback is the older spelling of control with the
	// default's condition: control while no API key has ever existed.
	AnonymousLoopback bool
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// POST, PUT, PATCH and DELETE requests are served; any other Origin
	// is refused (403). Requests without Origin (CRM servers) are served.
	AllowedOrigins []string
	// AllowedHosts are Host values, besides loopback ones, that requests
	// without a key may carry (an entry without a port matches any port);
	// any other is refused with 421 (DNS rebinding).
	AllowedHosts []string
	// MaxStreams bounds the open event streams (default 1000) and
	// MaxStreamsPerKey those of one API key, anonymous counting as one
	// key (default 50); past either a stream is refused with 429.
	MaxStreams       int
	MaxStreamsPerKey int
	// RequestTimeout bounds a request's work (default 20s).
	RequestTimeout time.Duration
	// Heartbeat is the event stream's keepalive interval (default 15s);
	// StreamBuffer the events one stream client may lag behind before it is
	// cut off (default 1024); StreamWriteTimeout how long one write to it
	// may take (default 10s).
	Heartbeat          time.Duration
	StreamBuffer       int
	StreamWriteTimeout time.Duration
	// Panel configures the agent panel (GET /panel); panel holds its
	// one-time login links.
	Panel PanelConfig
	panel panelState

	loopback     bool
	keyExisted   atomic.Bool // once true, stays true: the store says so for good
	streamCount  streamCounts
	readyLogged  atomic.Pointer[string] // the readiness details last logged
	writeTimeout time.Duration          // writeTimeout as NewServer found it
	hub          *hub
	idem         keyLocks

	attachOnce  sync.Once
	unsubscribe func() // from the engine's commits
	attached    chan struct{}
	quit        chan struct{}
	quitOnce    sync.Once
	streams     sync.WaitGroup
}

// writeTimeout bounds writing a response; a streamed body (a recording)
// is bounded per write instead (deadlineReader).
var writeTimeout = 30 * time.Second

// NewServer builds the routes.
func NewServer(engine Engine, st Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{engine: engine, store: st, log: log, hub: newHub(),
		attached: make(chan struct{}), quit: make(chan struct{}), writeTimeout: writeTimeout}
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             64 << 10,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          s.writeTimeout,
		IdleTimeout:           120 * time.Second,
		ErrorHandler:          s.errorHandler,
		// No route takes multipart: never parse one (415 refuses it).
		DisablePreParseMultipartForm: true,
	})
	// Browsers' cross-site writes are refused before any route, public
	// ones included; the public routes then answer any Host without a key
	// (probes use the pod's address) and tell nothing but states and counts.
	s.app.Use(s.checkOrigin)
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", s.metrics)
	s.app.Get("/v1/openapi.json", s.openapi)
	s.publicRoutes() // credentials of their own (http/recording_link.go): before the /v1 guards
	s.app.Use("/v1", s.checkKeyless, s.checkContentType, s.deadline)
	s.routes()
	return s
}

// App exposes the fiber app so other route groups can be mounted.
func (s *Server) App() *fiber.App { return s.app }

// Listen binds addr; Serve then serves on it. Split so a caller learns the
// bound address (":0" in tests) before serving.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	s.ln = lingerListener{ln}
	// Only a listener bound to loopback proves every client is local; the
	// client's address does not (a local reverse proxy makes them all so).
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		s.loopback = ap.Addr().IsLoopback()
	}
	return nil
}

// lingerListener gives every connection a lingering close. fasthttp
// closes at once after refusing a request (413 on an oversized body): with
// the client's unread body still arriving, the kernel answers with a RST
// that can destroy the refusal before the client reads it. Shutting down
// the write side and draining what is left first, as net/http does, lets
// the client see the 413.
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &lingerConn{TCPConn: tc}, nil
	}
	return c, err
}

type lingerConn struct {
	*net.TCPConn
	once sync.Once
}

// Close sends FIN, then drains up to 256 KiB for at most 500 ms in the
// background before the real close, so the caller never waits.
func (c *lingerConn) Close() error {
	c.once.Do(func() {
		if c.TCPConn.CloseWrite() != nil {
			_ = c.TCPConn.Close()
			return
		}
		go func() {
			_ = c.TCPConn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, _ = io.CopyN(io.Discard, c.TCPConn, 256<<10)
			_ = c.TCPConn.Close()
		}()
	})
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown. It hooks the event stream and the agent
// view to the engine first (the engine must be running).
func (s *Server) Serve() error {
	s.Attach()
	return s.app.Listener(s.ln)
}

// Shutdown ends the event streams, stops accepting and waits for requests
// in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.quitOnce.Do(func() { close(s.quit) })
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.app.ShutdownWithContext(ctx)
}

// deadline bounds the work of an API request.
func (s *Server) deadline(c *fiber.Ctx) error {
	d := s.RequestTimeout
	if d <= 0 {
		d = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), d)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz is ready when the PBX link is up and the store takes writes. It
// needs no key, so it says what is wrong, never where: no address, user
// or path (those go to the log).
func (s *Server) readyz(c *fiber.Ctx) error {
	up, linkErr := s.engine.LinkState()
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	storeErr := s.store.Writable(ctx)
	if storeErr == nil && !s.engine.StoreOK() {
		// The probe's one-row write can go through where the engine's
		// commit did not (a full disk still takes a write into WAL space it
		// already has): say why the engine's failed.
		storeErr = s.engine.StoreErr()
	}
	body := fiber.Map{"pbx_connected": up, "store_writable": storeErr == nil && s.engine.StoreOK()}
	if s.Sinks != nil {
		ok, reasons := s.Sinks()
		body["sinks_connected"] = ok
		if !ok {
			body["sinks_error"] = reasons
		}
	}
	var details []string
	if !up && linkErr != "" {
		body["pbx_error"] = pbxReason(linkErr)
		details = append(details, "pbx", linkErr)
	}
	if storeErr != nil {
		body["store_error"] = storeReason(storeErr.Error())
		details = append(details, "store", storeErr.Error())
	}
	s.logReadiness(details)
	if up && storeErr == nil && s.engine.StoreOK() {
		body["status"] = "ready"
		return c.JSON(body)
	}
	body["status"] = "not ready"
	return c.Status(nethttp.StatusServiceUnavailable).JSON(body)
}

// logReadiness logs the full reasons /readyz leaves out, once per change:
// a probe every few seconds must not flood the log.
func (s *Server) logReadiness(details []string) {
	key := strings.Join(details, "\x00")
	if p := s.readyLogged.Load(); p != nil && *p == key || p == nil && key == "" {
		return
	}
	s.readyLogged.Store(&key)
	if key == "" {
		return
	}
	args := make([]any, 0, len(details))
	for i := 0; i+1 < len(details); i += 2 {
		args = append(args, details[i]+"_error", details[i+1])
	}
	s.log.Warn("not ready", args...)
}

// reasons maps what an error says to what /readyz may say, the first
// rule whose words all appear winning: an allowlist of fixed sentences, so
// nothing of the error itself (an address, a user name, a file path)
// reaches an unauthenticated caller.
type reasons []struct {
	all []string
	say string
}

func (rs reasons) of(msg, fallback string) string {
	msg = strings.ToLower(msg)
next:
	for _, r := range rs {
		for _, w := range r.all {
			if !strings.Contains(msg, w) {
				continue next
			}
		}
		return r.say
	}
	return fallback
}

var pbxReasons = reasons{
	{[]string{"login", "refused"}, "pbx: login refused"},
	{[]string{"authentication failed"}, "pbx: login refused"},
	{[]string{"password"}, "pbx: login refused"},
	{[]string{"connection refused"}, "pbx: not connected: connection refused"},
	{[]string{"connection rejected", "acl"}, "pbx: not connected: the PBX's ACL rejected this address"},
	{[]string{"connection rejected"}, "pbx: not connected: the PBX rejected the connection"},
	{[]string{"not an asterisk manager"}, "pbx: not connected: the peer is not an Asterisk manager (check pbx.address and pbx.type)"},
	{[]string{"expected auth/request"}, "pbx: not connected: the peer is not a FreeSWITCH event socket (check pbx.address and pbx.type)"},
	{[]string{"line too long"}, "pbx: link lost: the PBX sent more than the size limit"},
	{[]string{"frame too large"}, "pbx: link lost: the PBX sent more than the size limit"},
	{[]string{"over the size limit"}, "pbx: link lost: the PBX sent more than the size limit"},
	{[]string{"malformed frame"}, "pbx: link lost: the PBX sent a malformed frame"},
	{[]string{"no such host"}, "pbx: not connected: host not found"},
	{[]string{"network is unreachable"}, "pbx: not connected: network unreachable"},
	{[]string{"no route to host"}, "pbx: not connected: network unreachable"},
	{[]string{"tls"}, "pbx: not connected: TLS handshake failed"},
	{[]string{"x509"}, "pbx: not connected: TLS handshake failed"},
	{[]string{"ping"}, "pbx: link lost: no answer to keepalive"},
	{[]string{"link dead"}, "pbx: link lost: no answer to keepalive"},
	{[]string{"timeout"}, "pbx: not connected: timed out"},
	{[]string{"timed out"}, "pbx: not connected: timed out"},
	{[]string{"eof"}, "pbx: link lost: the connection was closed"},
	{[]string{"closed the connection"}, "pbx: link lost: the connection was closed"},
	{[]string{"connection reset"}, "pbx: link lost: the connection was closed"},
	{[]string{"broken pipe"}, "pbx: link lost: the connection was closed"},
	{[]string{"disconnected"}, "pbx: link lost: the connection was closed"},
}

func pbxReason(msg string) string {
	return pbxReasons.of(msg, "pbx: not connected (details in the log)")
}

var storeReasons = reasons{
	{[]string{"disk is full"}, "store: not writable: the disk is full"},
	{[]string{"read-only"}, "store: not writable: the database is read-only"},
	{[]string{"permission denied"}, "store: not writable: permission denied"},
	{[]string{"did not finish in time"}, "store: not writable: a write did not finish in time"},
	{[]string{"lock"}, "store: not writable: another process holds a lock on the database"},
	{[]string{"disk i/o error"}, "store: not writable: disk I/O error"},
	{[]string{"corrupt"}, "store: the database file is corrupt"},
	{[]string{"not a sqlite database"}, "store: the file is not a SQLite database"},
	{[]string{"cannot open"}, "store: cannot open the database file"},
}

func storeReason(msg string) string {
	return storeReasons.of(msg, "store: not writable (details in the log)")
}

func (s *Server) listCalls(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"calls": s.Calls.LiveCalls(c.UserContext())})
}

func (s *Server) getCall(c *fiber.Ctx) error {
	id := param(c, "id")
	call, open, pending, err := s.Calls.Call(c.UserContext(), id)
	if err != nil {
		return err
	}
	if pending {
		// A click-to-call whose first channel has not been seen yet: the
		// Location of its 202 must not answer 404.
		return c.JSON(fiber.Map{"call": fiber.Map{"id": id, "status": "dialing", "direction": call.Direction,
			"agent": fiber.Map{"extension": call.Agent.Extension}, "callee": fiber.Map{"number": call.Callee.Number},
			"started_at": call.StartedAt}, "open": true, "events": []any{}})
	}
	recs, err := s.store.ConversationEvents(c.UserContext(), id)
	if err != nil {
		return err
	}
	events := make([]json.RawMessage, 0, len(recs))
	for _, r := range recs {
		events = append(events, json.RawMessage(r.Payload))
	}
	return c.JSON(fiber.Map{"call": call, "open": open, "events": events})
}

// metrics serves a prometheus registry: the call model's and the parts'
// samples under their established names (dashboards, bench/ and faults/
// read them), Go runtime and process collectors, and ctibridge_build_info.
func (s *Server) metrics(c *fiber.Ctx) error {
	s.promOnce.Do(s.newRegistry)
	mfs, err := s.promReg.Gather()
	if err != nil {
		// A sample that breaks the format (a name or label clash) is left
		// out; the rest is still served.
		s.log.Warn("metrics: some samples were left out", "err", err)
	}
	format := expfmt.Negotiate(nethttp.Header{"Accept": []string{c.Get(fiber.HeaderAccept)}})
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	c.Set(fiber.HeaderContentType, string(format))
	return c.Send(buf.Bytes())
}

// newRegistry builds the registry on the first scrape, after the exported
// fields (Metrics, Version, Commit) are set.
func (s *Server) newRegistry() {
	reg := prometheus.NewRegistry()
	version, commit := s.Version, s.Commit
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = "unknown"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ctibridge_build_info", Help: "1, labelled with the running binary's version and commit.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit}})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build, sampleCollector{s})
	if s.Deliveries != nil {
		reg.MustRegister(s.Deliveries)
	}
	s.promReg = reg
}

// DeliveryMetrics are the webhook dispatcher's attempts, deliveries,
// latencies and backlog by endpoint. It is the dispatcher's Observer
// (webhooks.Observer, by its methods: this package does not import webhooks).
type DeliveryMetrics struct {
	attempts  *prometheus.CounterVec
	completed *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	screenPop prometheus.Histogram
	backlog   *prometheus.Desc
	// Backlog, when set, gives each endpoint's pending deliveries at a scrape.
	Backlog func() map[string]int64
}

// NewDeliveryMetrics makes the families; Server.Deliveries serves them.
func NewDeliveryMetrics() *DeliveryMetrics {
	return &DeliveryMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctibridge_delivery_attempts_total",
			Help: "Webhook delivery attempts (HTTP requests or connector calls) by endpoint; result ok is a 2xx, failed anything else."}, []string{"endpoint", "result"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ctibridge_deliveries_completed_total",
			Help: "Webhook deliveries that reached a final outcome by an attempt, by endpoint: delivered, dead or disabled."}, []string{"endpoint", "outcome"}),
		// Retries stretch a delivery over hours; the low buckets are the
		// healthy case.
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ctibridge_delivery_latency_seconds",
			Help:    "Time from an event's commit to its delivery's 2xx, by endpoint, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600}}, []string{"endpoint"}),
		screenPop: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ctibridge_screen_pop_latency_seconds",
			Help:    "Time from a call.ringing event's occurred_at (the PBX's clock) to its first 2xx from any endpoint.",
			Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10, 30, 60}}),
		backlog: prometheus.NewDesc("ctibridge_endpoint_delivery_backlog",
			"Deliveries pending for an endpoint that the dispatcher holds (up to delivery memory per endpoint; beyond, a floor: the total is ctibridge_delivery_backlog).",
			[]string{"endpoint"}, nil),
	}
}

// Attempted counts an attempt, and a delivery that reached its final outcome.
func (m *DeliveryMetrics) Attempted(a bridge.Attempt) {
	result := "failed"
	if a.Outcome == bridge.DeliveryDelivered {
		result = "ok"
	}
	m.attempts.WithLabelValues(a.EndpointID, result).Inc()
	if a.Outcome != bridge.DeliveryPending {
		m.completed.WithLabelValues(a.EndpointID, string(a.Outcome)).Inc()
	}
}

// Delivered observes a delivery's commit → 2xx latency.
func (m *DeliveryMetrics) Delivered(endpointID string, sinceCommit time.Duration) {
	m.latency.WithLabelValues(endpointID).Observe(sinceCommit.Seconds())
}

// ScreenPop observes a call.ringing event's PBX time → first 2xx latency.
func (m *DeliveryMetrics) ScreenPop(sinceOccurred time.Duration) {
	m.screenPop.Observe(sinceOccurred.Seconds())
}

func (m *DeliveryMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.attempts.Describe(ch)
	m.completed.Describe(ch)
	m.latency.Describe(ch)
	m.screenPop.Describe(ch)
	ch <- m.backlog
}

func (m *DeliveryMetrics) Collect(ch chan<- prometheus.Metric) {
	m.attempts.Collect(ch)
	m.completed.Collect(ch)
	m.latency.Collect(ch)
	m.screenPop.Collect(ch)
	if m.Backlog == nil {
		return
	}
	for id, n := range m.Backlog() {
		ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(n), id)
	}
}

// samples are the values the engine, the store and the other parts keep.
func (s *Server) samples() []Metric {
	up, _ := s.engine.LinkState()
	st := s.engine.Stats()
	ms := []Metric{
		{Name: "ctibridge_pbx_events_ingested_total", Help: "PBX channel events handled by the call model, counted once the CRM events they caused are committed.", Type: "counter", Value: float64(st.Ingested)},
		{Name: "ctibridge_events_committed_total", Help: "CRM events committed to the outbox.", Type: "counter", Value: float64(st.Emitted)},
		{Name: "ctibridge_store_commit_errors_total", Help: "Failed outbox commits (retried).", Type: "counter", Value: float64(st.CommitErrors)},
		{Name: "ctibridge_pbx_events_dropped_total", Help: "PBX events dropped while the store refused commits past store.max_queued_events (the state is re-read).", Type: "counter", Value: float64(st.Dropped)},
		{Name: "ctibridge_reconciled_total", Help: "Calls released and channels adopted from the PBX's list of live channels (a reconnect's or the periodic reconcile's).", Type: "counter", Value: float64(st.Reconciled)},
		{Name: "ctibridge_invariant_violations_total", Help: "Call model invariants found broken (calls.check_invariants).", Type: "counter", Value: float64(st.Violations)},
		{Name: "ctibridge_engine_queue_length", Help: "PBX events waiting for the call model.", Type: "gauge", Value: float64(st.QueueLen)},
		{Name: "ctibridge_pbx_link_up", Help: "1 when the PBX link is connected and logged in.", Type: "gauge", Value: b2f(up)},
		{Name: "ctibridge_store_writable", Help: "1 when the last outbox commit succeeded.", Type: "gauge", Value: b2f(s.engine.StoreOK())},
		{Name: "ctibridge_live_calls", Help: "Conversations in progress.", Type: "gauge", Value: float64(st.LiveCalls)},
	}
	// Collect has no request context; Backlog is a counter the store keeps.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := s.store.Backlog(ctx); err == nil {
		ms = append(ms, Metric{Name: "ctibridge_delivery_backlog", Help: "Deliveries pending (not yet delivered, dead or disabled).", Type: "gauge", Value: float64(n)})
	}
	if s.Metrics != nil {
		ms = append(ms, s.Metrics()...)
	}
	return ms
}

// sampleCollector turns samples into const metrics at each scrape. It is
// unchecked (describes nothing): the parts' names are known only then; the
// registry still checks each family's help and labels are consistent.
type sampleCollector struct{ s *Server }

func (sampleCollector) Describe(chan<- *prometheus.Desc) {}

func (sc sampleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range sc.s.samples() {
		keys := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = m.Labels[k]
		}
		vt := prometheus.GaugeValue
		if m.Type == "counter" {
			vt = prometheus.CounterValue
		}
		desc := prometheus.NewDesc(m.Name, m.Help, keys, nil)
		cm, err := prometheus.NewConstMetric(desc, vt, m.Value, vals...)
		if err != nil {
			cm = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- cm
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// statusOf maps application error codes to HTTP statuses, once.
var statusOf = map[string]int{
	bridge.ENOTIMPLEMENTED: nethttp.StatusNotImplemented,
	bridge.ECONFLICT:       nethttp.StatusConflict,
	bridge.EINVALID:        nethttp.StatusBadRequest,
	bridge.ENOTFOUND:       nethttp.StatusNotFound,
	bridge.EUNAVAILABLE:    nethttp.StatusServiceUnavailable,
	bridge.EUNAUTHORIZED:   nethttp.StatusUnauthorized,
	bridge.EFORBIDDEN:      nethttp.StatusForbidden,
	bridge.ETIMEOUT:        nethttp.StatusGatewayTimeout,
	bridge.EINTERNAL:       nethttp.StatusInternalServerError,
}

// errorHandler renders every error as RFC 9457 problem+json.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	status, body := s.problem(c.Path(), err)
	if status == nethttp.StatusUnauthorized {
		c.Set("WWW-Authenticate", `Bearer realm="ctibridge"`)
	}
	c.Set("Content-Type", "application/problem+json")
	return c.Status(status).Send(body)
}

// problem maps an error to a status and a problem+json body. Internal
// errors are logged and never shown.
func (s *Server) problem(path string, err error) (int, []byte) {
	status := nethttp.StatusInternalServerError
	detail, field, code := "", "", ""
	var fe *fiber.Error
	var ae *bridge.Error
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, detail, field, code = he.status, he.detail, he.field, he.code
	case errors.As(err, &fe):
		status, detail = fe.Code, fe.Message
	case errors.As(err, &ae):
		status, detail, field, code = statusOf[ae.Code], ae.Message, ae.Field, ae.Code
		if status == 0 {
			status = nethttp.StatusInternalServerError
		}
		if ae.Code == bridge.EINTERNAL {
			s.log.Error("http: internal error", "path", path, "err", err)
		}
	case errors.Is(err, context.DeadlineExceeded):
		status, detail, code = nethttp.StatusGatewayTimeout, "the request took too long", bridge.ETIMEOUT
	default:
		s.log.Error("http: internal error", "path", path, "err", err)
		detail = "internal error"
	}
	body := fiber.Map{"type": "about:blank", "title": nethttp.StatusText(status), "status": status, "detail": detail, "instance": path}
	if field != "" {
		body["field"] = field
	}
	if code != "" {
		body["code"] = code
	}
	b, _ := json.Marshal(body)
	return status, b
}

// httpError is a refusal whose status no application error code maps to
// (415, 421, 429).
type httpError struct {
	status              int
	code, field, detail string
}

func (e *httpError) Error() string { return e.detail }

// Codes of the refusals HTTP itself makes.
const (
	codeUnsupportedMedia = "unsupported_media_type"
	codeMisdirected      = "misdirected"
	codeTooManyStreams   = "too_many_streams"
)
