package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// Defaults for Options left zero.
const (
	DefaultTimeout                = 10 * time.Second
	DefaultDialTimeout            = 5 * time.Second
	DefaultRetryWindow            = 72 * time.Hour
	DefaultBackoffBase            = time.Second
	DefaultBackoffMax             = time.Hour
	DefaultMaxInFlightPerEndpoint = 16
	DefaultMaxInFlight            = 256
	DefaultMaxQueuedPerEndpoint   = 10000
	DefaultPageSize               = 500
	DefaultShutdownGrace          = 5 * time.Second
	DefaultUserAgent              = "ctibridge/dev"
)

// Options configure a Dispatcher. Zero values take the defaults above.
type Options struct {
	// Transport replaces the default transport, which enforces Policy and
	// the dial timeout and ignores proxy settings (a proxy would make the
	// policy check the proxy's address instead of the endpoint's). A
	// custom transport must do its own address checks.
	Transport   http.RoundTripper
	Policy      *Policy       // nil means DefaultPolicy()
	DialTimeout time.Duration // TCP connect
	Timeout     time.Duration // whole attempt: connect, TLS, request, response headers, body

	// RetryWindow is how long after it became due (its commit, or its
	// replay) a delivery keeps being retried before it is dead; it always
	// gets one attempt. Counted from when it was due, not from its first
	// attempt: a conversation's later events wait behind a failing one,
	// and counted from their first attempts the k-th would die only after
	// k windows.
	RetryWindow time.Duration
	// Retries wait a random time in [0, min(BackoffMax, BackoffBase·2^n))
	// ("full jitter") after the n-th failed attempt, or what Retry-After
	// asks, capped at MaxRetryAfter (default BackoffMax).
	BackoffBase   time.Duration
	BackoffMax    time.Duration
	MaxRetryAfter time.Duration

	// MaxInFlightPerEndpoint bounds concurrent requests to one endpoint.
	// MaxInFlight bounds them across endpoints, except that each endpoint
	// always keeps one request of its own outside that pool, so endpoints
	// that hang cannot starve healthy ones.
	MaxInFlightPerEndpoint int
	MaxInFlight            int
	// MaxQueuedPerEndpoint caps the deliveries (with payloads) held in
	// memory per endpoint; beyond it they are read back from the store.
	MaxQueuedPerEndpoint int
	PageSize             int // deliveries per store read, at most half MaxQueuedPerEndpoint
	// ShutdownGrace is how long Run waits for requests under way once its
	// context ends, before abandoning them (they stay pending).
	ShutdownGrace time.Duration

	Clock     Clock
	Logger    *slog.Logger
	UserAgent string
	// OnAttempt, when set, sees every recorded attempt (metrics). It runs on
	// the goroutine that recorded it and must not block.
	OnAttempt func(bridge.Attempt)
	// Observer, when set, sees attempts and deliveries for metrics.
	Observer Observer
	// OnDisable, when set, is told when an endpoint answered 410 Gone and
	// was disabled, so the caller can stop creating deliveries for it.
	OnDisable func(endpointID, reason string)
	// Connectors, by endpoint ID, make those endpoints CRM connectors: each
	// delivery is handed to Deliver instead of being posted (see
	// bridge.Connector). Their endpoints' URL and secret are unused.
	Connectors map[string]bridge.Connector
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Timeout, DefaultTimeout)
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.RetryWindow, DefaultRetryWindow)
	def(&o.BackoffBase, DefaultBackoffBase)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.MaxRetryAfter, o.BackoffMax)
	def(&o.ShutdownGrace, DefaultShutdownGrace)
	defInt(&o.MaxInFlightPerEndpoint, DefaultMaxInFlightPerEndpoint)
	defInt(&o.MaxInFlight, DefaultMaxInFlight)
	defInt(&o.MaxQueuedPerEndpoint, DefaultMaxQueuedPerEndpoint)
	defInt(&o.PageSize, DefaultPageSize)
	// A page must fit in the room freed while half the queue drains, or the
	// endpoint would only refill once its memory is empty.
	o.PageSize = max(1, min(o.PageSize, o.MaxQueuedPerEndpoint/2))
	if o.Policy == nil {
		p := DefaultPolicy()
		o.Policy = &p
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return o
}

// Observer sees the dispatcher's work, for metrics (the http package's
// DeliveryMetrics). Its methods run on the goroutines that record attempts
// and must not block.
type Observer interface {
	// Attempted sees every recorded attempt.
	Attempted(a bridge.Attempt)
	// Delivered sees a delivery acknowledged with a 2xx, once, with the time
	// from its commit (when Notify handed it over) to the answer. Deliveries
	// whose commit this dispatcher was not told of (pending at start, or
	// dropped by Notify while the endpoint's memory was full) are not seen
	// here.
	Delivered(endpointID string, sinceCommit time.Duration)
	// ScreenPop sees a call.ringing event's first 2xx from any endpoint, with
	// the time from its occurred_at (the PBX's clock; 0 if that clock is
	// ahead) to the answer.
	ScreenPop(sinceOccurred time.Duration)
}

// popsRemembered bounds the call.ringing IDs kept to observe each screen pop
// once across endpoints; a far older one may be counted again.
const popsRemembered = 4096

// Stats are the dispatcher's counters, for metrics.
type Stats struct {
	Delivered      int64 // deliveries acknowledged with a 2xx
	FailedAttempts int64 // attempts without a 2xx (410s included)
	Retried        int64 // failed attempts that scheduled another try
	Dead           int64 // deliveries whose retry window ran out
	Disabled       int64 // endpoints disabled after answering 410 Gone
	InFlight       int64 // requests under way now
	Queued         int64 // deliveries held in memory now, in flight included
	Paused         int64 // endpoints waiting out a 429's or 503's Retry-After now
	// Waiting counts deliveries waiting out a retry's backoff now, as of
	// their endpoint's last look (its timer is armed for them).
	Waiting int64
}

// Dispatcher pushes deliveries to endpoints. Each endpoint has its own
// scheduler goroutine; see endpoint.go for how ordering is kept.
type Dispatcher struct {
	store  bridge.DeliveryStore
	batch  attemptBatcher // store, when it records attempts in batches
	opts   Options
	clock  Clock
	log    *slog.Logger
	client *http.Client
	// tenantClient delivers to endpoints a tenant made over the API:
	// public addresses only.
	tenantClient *http.Client
	// userAgent is the User-Agent header's value, shared by every request.
	userAgent []string
	// sem holds the shared request slots (MaxInFlight).
	sem chan struct{}

	mu        sync.RWMutex
	endpoints map[string]*endpoint
	running   bool
	stopped   bool
	runCtx    context.Context // ends the schedulers
	reqCtx    context.Context // ends requests; outlives runCtx by the grace
	abortAll  context.CancelFunc

	schedWG sync.WaitGroup
	workWG  sync.WaitGroup

	delivered, failed, retried, dead, disabled, inflight, queued, waiting atomic.Int64

	// Final outcomes the store refused (a full or locked disk), recorded
	// again every second.
	unrecordedMu sync.Mutex
	unrecorded   []bridge.Attempt

	// call.ringing events already seen delivered (Observer.ScreenPop), and
	// their order for forgetting the oldest.
	popMu    sync.Mutex
	popSeen  map[string]struct{}
	popOrder []string
}

var _ bridge.Notifier = (*Dispatcher)(nil)

// New returns a dispatcher reading from store. Call SetEndpoints and Run.
func New(store bridge.DeliveryStore, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{
		store:     store,
		opts:      opts,
		clock:     opts.Clock,
		log:       opts.Logger,
		sem:       make(chan struct{}, opts.MaxInFlight),
		endpoints: make(map[string]*endpoint),
		userAgent: []string{opts.UserAgent},
	}
	d.batch, _ = store.(attemptBatcher)
	d.client = newClient(opts, *opts.Policy)
	// A tenant's own endpoints get public addresses only
	// (bridge.AddressPolicy.For), through a transport of
	// their own: the policy is enforced where the address is dialled.
	d.tenantClient = d.client
	if opts.Transport == nil && !opts.Policy.TenantsLikeOperator {
		d.tenantClient = newClient(opts, opts.Policy.For(bridge.Endpoint{Source: "api", Tenant: "any"}))
	}
	return d
}

func newClient(opts Options, policy Policy) *http.Client {
	rt := opts.Transport
	if rt == nil {
		dialer := &policyDialer{
			policy: policy,
			dialer: &net.Dialer{
				Timeout:   opts.DialTimeout,
				KeepAlive: 30 * time.Second,
				Control:   control(policy),
			},
			lookup: net.DefaultResolver.LookupNetIP,
		}
		rt = &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          opts.MaxInFlight,
			MaxIdleConnsPerHost:   opts.MaxInFlightPerEndpoint,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   opts.Timeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	return &http.Client{
		Transport: rt,
		// A redirect is a failed attempt: following it would send a signed
		// event somewhere the operator did not configure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Client is the HTTP client deliveries use: the address policy enforced at
// every connection, redirects not followed. Connectors make their CRM
// requests with it.
func (d *Dispatcher) Client() *http.Client { return d.client }

// AddressPolicy is the policy the default transport enforces, for the API
// to refuse an endpoint URL it would refuse anyway.
func (d *Dispatcher) AddressPolicy() bridge.AddressPolicy { return *d.opts.Policy }

// SetEndpoints replaces the set of endpoints. New ones start delivering at
// once (reading their backlog from the store), removed or disabled ones stop
// and their requests under way are abandoned, changed ones (URL, secret) use
// the new settings from their next attempt. Pass the store's current view:
// an endpoint this dispatcher disabled comes back to life if it is passed
// again with Disabled false.
func (d *Dispatcher) SetEndpoints(eps []bridge.Endpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := make(map[string]bridge.Endpoint, len(eps))
	for _, ep := range eps {
		if !ep.Disabled {
			want[ep.ID] = ep
		}
	}
	for id, e := range d.endpoints {
		ep, ok := want[id]
		if !ok || e.isClosed() {
			e.close()
			delete(d.endpoints, id)
			continue
		}
		e.setConfig(ep)
		delete(want, id)
	}
	for id, ep := range want {
		e := newEndpoint(d, ep)
		d.endpoints[id] = e
		if d.running {
			d.start(e)
		}
	}
}

// start launches e's scheduler. d.mu must be held.
func (d *Dispatcher) start(e *endpoint) {
	e.ctx, e.stop = context.WithCancel(d.runCtx)
	e.reqCtx, e.abort = context.WithCancel(d.reqCtx)
	d.schedWG.Add(1)
	go e.run()
}

// Notify hands freshly committed deliveries to their endpoints' schedulers.
// It never blocks on I/O: each delivery is appended to a bounded in-memory
// inbox, or dropped there (and read back from the store later) when the
// endpoint already holds its share of memory. Deliveries must come in commit
// (Seq) order per endpoint, as the engine produces them.
func (d *Dispatcher) Notify(ds []bridge.Delivery) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for i := range ds {
		if e := d.endpoints[ds[i].EndpointID]; e != nil {
			e.push(ds[i])
		}
	}
}

// Reload makes an endpoint re-read all its pending deliveries from the
// store, e.g. after dead deliveries were set pending again for a replay.
func (d *Dispatcher) Reload(endpointID string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e := d.endpoints[endpointID]; e != nil {
		e.reload()
	}
}

// Resume tells an endpoint it is reachable again (a connector's link came
// back): the deliveries waiting out a backoff go now instead of after it,
// which after a long outage can be an hour. What the endpoint asked to wait
// (Retry-After) still waits.
func (d *Dispatcher) Resume(endpointID string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e := d.endpoints[endpointID]; e != nil {
		e.resumeSoon()
	}
}

// Stats returns a snapshot of the counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Delivered:      d.delivered.Load(),
		FailedAttempts: d.failed.Load(),
		Retried:        d.retried.Load(),
		Dead:           d.dead.Load(),
		Disabled:       d.disabled.Load(),
		InFlight:       d.inflight.Load(),
		Queued:         d.queued.Load(),
		Paused:         d.paused(),
		Waiting:        d.waiting.Load(),
	}
}

// paused counts the endpoints in a Retry-After pause now.
func (d *Dispatcher) paused() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var n int64
	for _, e := range d.endpoints {
		if e.paused() {
			n++
		}
	}
	return n
}

// Backlogs returns, by endpoint, the pending deliveries held in memory (in
// flight and waiting). That is the whole backlog up to MaxQueuedPerEndpoint;
// past it the rest waits in the store and this is a floor.
func (d *Dispatcher) Backlogs() map[string]int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	m := make(map[string]int64, len(d.endpoints))
	for id, e := range d.endpoints {
		m[id] = e.queued.Load()
	}
	return m
}

// Run delivers until ctx ends. It then waits up to ShutdownGrace for the
// requests under way and abandons the rest; whatever was not acknowledged
// stays pending in the store for the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running || d.stopped {
		d.mu.Unlock()
		return errors.New("webhooks: dispatcher already run")
	}
	d.running = true
	d.runCtx = ctx
	d.reqCtx, d.abortAll = context.WithCancel(context.WithoutCancel(ctx))
	for _, e := range d.endpoints {
		d.start(e)
	}
	d.mu.Unlock()

	retry := time.NewTicker(time.Second)
	defer retry.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-retry.C:
			d.recordPending(ctx)
		}
	}

	d.mu.Lock()
	d.running, d.stopped = false, true
	d.mu.Unlock()
	d.schedWG.Wait() // no request starts after this

	done := make(chan struct{})
	go func() { d.workWG.Wait(); close(done) }()
	grace := time.NewTimer(d.opts.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		d.log.Warn("webhook requests abandoned at shutdown; they stay pending", "in_flight", d.inflight.Load())
		d.abortAll()
		<-done
	}
	d.abortAll()
	d.client.CloseIdleConnections()
	d.tenantClient.CloseIdleConnections()
	final, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	defer cancel()
	d.recordPending(final)
	return nil
}
