package bridge

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Engine is the bridge between a PBX adapter and the outbox: it implements
// Sink, runs the Tracker on one goroutine, commits each batch of events
// durably and only then hands the deliveries to the Notifier.
type Engine struct {
	tracker   *Tracker
	outbox    Outbox
	notifier  Notifier
	endpoints atomic.Pointer[[]Endpoint]
	log       *slog.Logger

	mu      sync.Mutex
	queue   inputQueue
	batch   []input // Run's buffer for the inputs it takes from queue
	wake    chan struct{}
	live    *liveSet
	linkUp  atomic.Bool
	linkErr atomic.Pointer[string]
	storeOK atomic.Bool
	// storeErr is the last failed commit's error while storeOK is false.
	storeErr atomic.Pointer[error]

	// Counters for /metrics.
	Ingested      atomic.Int64 // channel events handled, and what they caused committed
	Emitted       atomic.Int64 // CRM events committed
	CommitErrors  atomic.Int64
	QueueLen      atomic.Int64
	LastCommitDur atomic.Int64 // nanoseconds

	subs     atomic.Pointer[[]*subscription] // copy on write: read on every commit
	subsMu   sync.Mutex
	resyncer Resyncer // the adapter, set once by Follow before Run

	// maxQueued bounds the PBX events waiting for the call model. They
	// pile up only while the store refuses commits; past the bound new
	// ones are dropped rather than let memory grow until the process dies,
	// and once the store takes writes again and the queue is empty the
	// adapter re-reads the PBX's state: calls that ended meanwhile are
	// released (resynced), calls still up are adopted.
	maxQueued         int
	Dropped           atomic.Int64 // channel events dropped over MaxQueued
	reconcileInterval time.Duration
	// Reconciled counts what snapshots corrected: conversations released
	// and channels adopted.
	Reconciled      atomic.Int64
	checkInvariants bool
	Violations      atomic.Int64
	// periodic: the next snapshot answers the periodic reconcile.
	periodic atomic.Bool
	stopped  atomic.Bool // Run has returned
	stories  StoryChecker

	queued   int  // channel events in queue (mu)
	overflow bool // events were dropped since the last resync (mu)

	// Working state changed without a CRM event, not yet written
	// (engine_hold.go); touched only by Run's goroutine.
	held      map[string]int // call id -> index in heldConvs
	heldConvs []ConversationRecord
	holding   bool
	holdTimer *time.Timer
	holdMax   time.Duration

	// A resume the tracker waits to tell (see ResumeSettle) is told when
	// settleTimer fires, if no event of its call told it first.
	settleTimer *time.Timer
	settling    bool
}

// DefaultMaxQueued is MaxQueued's default: at a few hundred bytes an
// event, some hundreds of MB, hours of a busy PBX.
const DefaultMaxQueued = 1_000_000

type input struct {
	evs      []ChannelEvent
	snapshot []Channel
	at       time.Time
	kind     int
	err      error
	fn       func(*Tracker)
	done     chan struct{}
}

const (
	inEvents = iota
	inSnapshot
	inLinkUp
	inLinkDown
	inFunc
	inSettle // tell the resumes still waiting (Tracker.SettleResumes)
)

// maxBatch bounds the inputs handled per commit.
const maxBatch = 1024

// EngineOptions configure NewEngine. Zero values take the defaults noted.
type EngineOptions struct {
	// Endpoints are the subscribers new events are delivered to (see
	// SetEndpoints).
	Endpoints []Endpoint
	Logger    *slog.Logger // default slog.Default()
	// MaxQueued bounds the PBX events waiting for the call model (default
	// DefaultMaxQueued).
	MaxQueued int
	// ReconcileInterval, when > 0, asks the adapter for the PBX's live
	// channels that often while the link is up, so a call the model failed
	// to end is released within an interval.
	ReconcileInterval time.Duration
	// CheckInvariants checks the call model and the events it emits after
	// every batch (calls.check_invariants, a debug mode: it costs a scan of
	// the live calls per batch). Violations are logged at ERROR and
	// counted.
	CheckInvariants bool
	// StateHoldMax bounds how long working state changed without a CRM
	// event waits before it is written (default DefaultStateHoldMax).
	StateHoldMax time.Duration
}

// Resyncer is the PBX adapter as the engine drives it: Resync asks for the
// PBX's full state again (its answer comes as Sink.Snapshot). It must not
// block.
type Resyncer interface {
	Resync()
}

// NewEngine wires a tracker to an outbox and a notifier.
func NewEngine(t *Tracker, outbox Outbox, notifier Notifier, opts EngineOptions) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{tracker: t, outbox: outbox, notifier: notifier, log: log, wake: make(chan struct{}, 1),
		maxQueued: opts.MaxQueued, reconcileInterval: opts.ReconcileInterval, checkInvariants: opts.CheckInvariants}
	e.holdMax = opts.StateHoldMax
	if e.holdMax <= 0 {
		e.holdMax = DefaultStateHoldMax
	}
	e.SetEndpoints(opts.Endpoints)
	e.live = newLiveSet()
	e.storeOK.Store(true)
	return e
}

// Follow sets the PBX adapter the engine asks for resyncs. The adapter is built with the
// engine as its Sink, so it comes after NewEngine; call Follow once,
// before Run.
func (e *Engine) Follow(a Resyncer) {
	e.resyncer = a
}

// Subscribe calls fn with every batch of records committed from now on,
// on the engine's goroutine, after the outbox commit and before the next
// batch: fn must not block (the event stream hands records to buffered
// clients). The returned func unsubscribes.
func (e *Engine) Subscribe(fn func([]Record)) (unsubscribe func()) {
	sub := &subscription{fn: fn}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	var cur []*subscription
	if p := e.subs.Load(); p != nil {
		cur = *p
	}
	next := append(append([]*subscription(nil), cur...), sub)
	e.subs.Store(&next)
	return func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		cur := *e.subs.Load()
		next := make([]*subscription, 0, len(cur))
		for _, x := range cur {
			if x != sub {
				next = append(next, x)
			}
		}
		e.subs.Store(&next)
	}
}

type subscription struct{ fn func([]Record) }

func (e *Engine) resync() {
	if e.resyncer != nil {
		e.resyncer.Resync()
	}
}

// SetEndpoints replaces the subscriber list used for new events.
func (e *Engine) SetEndpoints(eps []Endpoint) {
	cp := append([]Endpoint(nil), eps...)
	e.endpoints.Store(&cp)
}

// Restore adopts the conversations that were open when the process
// stopped, and the agents' last reported states.
func (e *Engine) Restore(ctx context.Context) error {
	recs, err := e.outbox.OpenConversations(ctx)
	if err != nil {
		return err
	}
	e.tracker.Restore(recs)
	states, err := e.outbox.LatestAgentStates(ctx)
	if err != nil {
		return err
	}
	e.tracker.RestoreAgentStates(states)
	e.publish()
	return nil
}

func (e *Engine) push(in input) {
	e.mu.Lock()
	if in.kind == inEvents {
		limit := e.maxQueued
		if limit <= 0 {
			limit = DefaultMaxQueued
		}
		if e.queued+len(in.evs) > limit {
			e.Dropped.Add(int64(len(in.evs)))
			first := !e.overflow
			e.overflow = true
			e.mu.Unlock()
			if first {
				e.log.Error("PBX events dropped: the store has refused commits for so long that the queue is full; "+
					"the PBX's state is read again once it takes writes", "queued", limit)
			}
			return
		}
		e.queued += len(in.evs)
	}
	e.queue.push(in)
	e.QueueLen.Store(int64(e.queue.len()))
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// LinkUp implements Sink.
func (e *Engine) LinkUp(session int) {
	e.linkUp.Store(true)
	e.linkErr.Store(nil)
	e.push(input{kind: inLinkUp})
}

// LinkDown implements Sink.
func (e *Engine) LinkDown(err error) {
	e.linkUp.Store(false)
	if err != nil {
		s := err.Error()
		e.linkErr.Store(&s)
	}
	e.push(input{kind: inLinkDown, err: err, at: time.Now()})
}

// ChannelEvents implements Sink. It never blocks on disk.
func (e *Engine) ChannelEvents(evs []ChannelEvent) {
	e.push(input{kind: inEvents, evs: evs})
}

// Snapshot implements Sink.
func (e *Engine) Snapshot(live []Channel, at time.Time) {
	e.push(input{kind: inSnapshot, snapshot: live, at: at})
}

// Do runs fn on the engine goroutine (e.g. to register an originate) and
// waits until its events are committed.
func (e *Engine) Do(ctx context.Context, fn func(*Tracker)) error {
	done := make(chan struct{})
	e.push(input{kind: inFunc, fn: fn, done: done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LinkState reports whether the PBX link is up, and the last error if not.
func (e *Engine) LinkState() (bool, string) {
	if p := e.linkErr.Load(); p != nil {
		return e.linkUp.Load(), *p
	}
	return e.linkUp.Load(), ""
}

// StoreOK reports whether the last commit succeeded.
func (e *Engine) StoreOK() bool { return e.storeOK.Load() }

// StoreErr returns why the last commit failed, or nil when it succeeded.
func (e *Engine) StoreErr() error {
	if p := e.storeErr.Load(); p != nil && !e.storeOK.Load() {
		return *p
	}
	return nil
}

// Live returns the conversations in progress as of the last batch.
// The slice is shared: callers must not modify it.
func (e *Engine) Live() []Call { return e.live.calls() }

// publish rebuilds the live view from the whole tracker.
func (e *Engine) publish() { e.live.reset(e.tracker.Live()) }

// Run processes input until ctx ends, then drains what was already queued.
func (e *Engine) Run(ctx context.Context) error {
	defer e.stopped.Store(true) // no confirmation pass after the engine stops
	if e.reconcileInterval > 0 && e.resyncer != nil {
		go e.reconcile(ctx, e.reconcileInterval)
	}
	for {
		// A bounded batch: under a backlog, events commit and deliver as
		// they go instead of after one giant transaction.
		e.mu.Lock()
		e.batch = e.queue.take(e.batch[:0], maxBatch)
		batch := e.batch
		for _, in := range batch {
			e.queued -= len(in.evs)
		}
		e.QueueLen.Store(int64(e.queue.len()))
		e.mu.Unlock()
		if len(batch) > 0 {
			err := e.process(ctx, batch)
			clear(batch) // reused: must not pin the events it held
			if err == nil && e.holdDue() {
				// A backlog of event-less batches never reaches the select.
				err = e.flushHeld(ctx)
			}
			if err == nil && e.settleDue() {
				// Nor, under steady input, the settle timer.
				err = e.settle(ctx)
			}
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			// Commit what the adapter handed over before it stopped.
			e.mu.Lock()
			rest := e.queue.take(nil, e.queue.len())
			e.mu.Unlock()
			if len(rest) > 0 {
				if err := e.process(context.WithoutCancel(ctx), rest); err != nil {
					return err
				}
			}
			// One attempt (ctx is done): held state is what a crash may
			// take back anyway, not worth a shutdown that never ends
			// while the store fails.
			return e.flushHeld(ctx)
		case <-e.holdExpired():
			if err := e.flushHeld(ctx); err != nil {
				return err
			}
		case <-e.settleExpired():
			if err := e.settle(ctx); err != nil {
				return err
			}
		case <-e.wake:
		}
	}
}

// confirmAfter is how long after a resync (a reconnect, dropped events) a
// confirmation pass reads the PBX's channels again: events that crossed
// the first list on the wire (a hangup queued just before the list, a
// channel listed just before its hangup) are settled by the second. It
// exceeds reconcileMargin, so channels the first list adopted are checked.
const confirmAfter = reconcileMargin + time.Second

// confirm schedules the confirmation pass of a resync, when reconciling is
// on.
func (e *Engine) confirm() {
	if e.reconcileInterval <= 0 || e.resyncer == nil {
		return
	}
	time.AfterFunc(confirmAfter, func() {
		if e.linkUp.Load() && !e.stopped.Load() {
			e.periodic.Store(true)
			e.resync()
		}
	})
}

// reconcile asks the adapter for the PBX's live channels every interval
// while the link is up: the safety net under the call model.
func (e *Engine) reconcile(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if e.linkUp.Load() {
				e.periodic.Store(true)
				e.resync()
			}
		}
	}
}

func (e *Engine) process(ctx context.Context, batch []input) error {
	var done []chan struct{}
	full := false // an input other than events: rebuild the live view
	ingested := 0
	for _, in := range batch {
		full = full || (in.kind != inEvents && in.kind != inSettle)
		switch in.kind {
		case inSettle:
			e.tracker.SettleResumes()
		case inEvents:
			for _, ev := range in.evs {
				e.tracker.Handle(ev)
			}
			ingested += len(in.evs)
		case inSnapshot:
			r0, a0 := e.tracker.Reconciled()
			if e.periodic.Swap(false) {
				e.tracker.Reconcile(in.snapshot, in.at)
			} else {
				e.tracker.Snapshot(in.snapshot, in.at)
				e.confirm()
			}
			r1, a1 := e.tracker.Reconciled()
			if n := (r1 - r0) + (a1 - a0); n > 0 {
				e.Reconciled.Add(n)
				e.log.Warn("pbx state reconciled: calls released or adopted from the PBX's list of live channels",
					"released", r1-r0, "adopted", a1-a0, "live_channels", len(in.snapshot))
			} else {
				e.log.Debug("pbx state checked", "live_channels", len(in.snapshot))
			}
		case inLinkDown:
			e.tracker.LinkLost(in.at)
		case inFunc:
			in.fn(e.tracker)
		}
		if in.done != nil {
			done = append(done, in.done)
		}
	}
	if e.checkInvariants {
		e.check(e.tracker.CheckInvariants())
	}
	evs, convs := e.tracker.Drain()
	if e.checkInvariants {
		for _, ev := range evs {
			e.check(e.stories.Check(ev))
		}
		e.stories.prune()
	}
	// The live view changes once the batch is durable, before anyone is
	// told of its events (a CRM that asks for the calls on a webhook sees
	// them).
	showLive := func() {
		if full {
			e.publish()
		} else {
			e.live.apply(convs)
		}
	}
	switch {
	case len(evs) == 0 && len(convs) > 0 && !full:
		// Only PBX events, and the CRM hears of nothing: no commit now.
		e.holdState(convs)
		showLive()
	case full && e.holding:
		// Commands and resyncs see every call's state committed.
		if err := e.commit(ctx, evs, e.takeHeld(convs), showLive); err != nil {
			return err
		}
	case len(evs) > 0 || len(convs) > 0:
		e.supersede(convs)
		if err := e.commit(ctx, evs, convs, showLive); err != nil {
			return err
		}
	default:
		showLive()
	}
	// Counted once the events they caused are committed: "ingested and the
	// queue empty" then means every such event is in the outbox (tests and
	// ctibench wait on it; counted earlier, a reader could see the
	// deliveries missing). Held working state may still be unwritten.
	e.Ingested.Add(int64(ingested))
	if e.checkInvariants {
		e.check(e.live.diff(e.tracker.Live()))
	}
	e.mu.Lock()
	idle := e.queue.len() == 0
	resync := idle && e.overflow
	if resync {
		e.overflow = false
	}
	e.mu.Unlock()
	if resync {
		// Everything kept is committed; what was dropped is read again.
		e.log.Warn("re-reading the PBX's state after dropped events", "dropped_total", e.Dropped.Load())
		if e.resyncer != nil {
			e.resync()
		}
	}
	if !e.settling && e.tracker.Resuming() {
		e.armSettle()
	}
	for _, d := range done {
		close(d)
	}
	return nil
}

// armSettle starts the timer that tells waiting resumes: ResumeSettle by
// this host's clock, as the tracker waits by the PBX's.
func (e *Engine) armSettle() {
	if e.settleTimer == nil {
		e.settleTimer = time.NewTimer(ResumeSettle)
	} else {
		e.settleTimer.Reset(ResumeSettle)
	}
	e.settling = true
}

func (e *Engine) settleExpired() <-chan time.Time {
	if !e.settling {
		return nil
	}
	return e.settleTimer.C
}

func (e *Engine) settleDue() bool { return fired(e.settleExpired()) }

// settle tells the resumes still waiting, after the timer fired.
func (e *Engine) settle(ctx context.Context) error {
	e.settling = false
	return e.process(ctx, []input{{kind: inSettle}})
}

// commit writes the batch, retrying until it succeeds: the tracker has
// already moved on, so giving up would lose events. The PBX link stays up
// meanwhile; new input waits in the queue.
func (e *Engine) commit(ctx context.Context, evs []Event, convs []ConversationRecord, committed func()) error {
	eps := *e.endpoints.Load()
	b := &Batch{Conversations: convs}
	for _, ev := range evs {
		rec, err := NewRecord(ev)
		if err != nil {
			e.log.Error("event not encodable, dropped", "type", ev.Type, "err", err)
			continue
		}
		pe := PendingEvent{Record: rec}
		for _, ep := range eps {
			if !ep.Disabled && ep.WantsEvent(ev.Type, ev.Tenant) {
				pe.EndpointIDs = append(pe.EndpointIDs, ep.ID)
			}
		}
		b.Events = append(b.Events, pe)
	}
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := e.outbox.Commit(context.WithoutCancel(ctx), b)
		if err == nil {
			e.LastCommitDur.Store(int64(time.Since(start)))
			if !e.storeOK.Swap(true) {
				e.log.Info("store writable again")
			}
			break
		}
		e.CommitErrors.Add(1)
		e.storeErr.Store(&err)
		if e.storeOK.Swap(false) {
			e.log.Error("store commit failed; holding events in memory and retrying", "events", len(b.Events), "err", err)
		}
		select {
		case <-ctx.Done():
			// Shutting down with the store failing: these events are lost
			// only if the process dies now; say so loudly.
			e.log.Error("shutdown while the store is failing: uncommitted events dropped", "events", len(b.Events), "conversations", len(b.Conversations))
			committed() // the tracker has moved on: the live view follows it
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	committed()
	e.Emitted.Add(int64(len(b.Events)))
	recs := make([]Record, 0, len(b.Events))
	var ds []Delivery
	for _, pe := range b.Events {
		recs = append(recs, pe.Record)
		for _, id := range pe.EndpointIDs {
			ds = append(ds, Delivery{Record: pe.Record, EndpointID: id, Status: DeliveryPending, NextAttemptAt: time.Now()})
		}
	}
	if e.notifier != nil && len(ds) > 0 {
		e.notifier.Notify(ds)
	}
	if p := e.subs.Load(); p != nil {
		for _, sub := range *p {
			sub.fn(recs)
		}
	}
	return nil
}

func (e *Engine) check(err error) {
	if err != nil {
		e.Violations.Add(1)
		e.log.Error("call model invariant broken", "err", err)
	}
}

// EngineStats are the engine's counters, for /metrics.
type EngineStats struct {
	Ingested, Emitted, CommitErrors, Dropped, Reconciled, Violations int64
	QueueLen                                                         int64
	LiveCalls                                                        int
}

// Stats reads the counters.
func (e *Engine) Stats() EngineStats {
	return EngineStats{Ingested: e.Ingested.Load(), Emitted: e.Emitted.Load(), CommitErrors: e.CommitErrors.Load(),
		Dropped: e.Dropped.Load(), Reconciled: e.Reconciled.Load(), Violations: e.Violations.Load(),
		QueueLen: e.QueueLen.Load(), LiveCalls: e.live.len()}
}
