package webhooks

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// An endpoint's scheduler owns every delivery due to that endpoint that is
// held in memory, and is the only goroutine that starts requests for it.
//
// Ordering. Deliveries are grouped by conversation; only the head of a
// conversation (lowest Sequence) is ever scheduled, and the next one is
// scheduled when the head is delivered, dead or disabled. Deliveries without
// a conversation are groups of one. A conversation waiting for a retry holds
// no request slot, so other conversations go on; an endpoint that hangs
// holds only its own slots (see launch).
//
// Memory. The scheduler keeps a cursor, seen: every pending delivery with
// Seq <= seen is in memory or finished. In live mode the store holds nothing
// pending beyond seen except what Notify is about to push, so pushed
// deliveries are taken as they come. When memory is full, or at start (the
// store may hold a backlog), the endpoint goes to backlog mode: pushes are
// dropped and the store is read page by page after seen, in Seq order, as
// memory frees up, until a short page says the backlog is gone. Because the
// in-memory set is always a Seq prefix of what is pending, each
// conversation's head in memory is its oldest pending delivery.
//
// No duplicates. A delivery is in memory at most once (known, by event ID).
// Store reads happen on the scheduler goroutine, and a finished delivery
// leaves memory only after its attempt is recorded, so a page can only
// return a delivery that is still in memory (and is skipped) or one that was
// never there. Pushes at or below seen are already in memory or finished.
type endpoint struct {
	d  *Dispatcher
	id string

	cfg atomic.Pointer[endpointConfig]

	// Inbox, written by Notify.
	mu      sync.Mutex
	inbox   []pushed
	dropped bool // a push was dropped since the scheduler last looked
	rescan  bool // Reload asked to re-read the store from the start
	resume  bool // Resume said the endpoint is back: backoffs end now
	closed  bool // the scheduler has exited

	// waitingShown is len(waiting) as last added to the dispatcher's
	// count, when the scheduler armed its timer (see armTimer).
	waitingShown int
	wake         chan struct{}
	queued       atomic.Int64 // deliveries in memory for this endpoint, inbox included

	// recordMu orders attempt records against DisableEndpoint, so that no
	// attempt marks a delivery pending again once the endpoint is disabled.
	recordMu sync.RWMutex
	disabled atomic.Bool
	// pausedUntil (unix nanoseconds): the endpoint answered 429 or 503 with
	// Retry-After, which speaks for the whole endpoint (a rate limit, a
	// maintenance window): no request starts before it, whichever
	// conversation it is for. Set by the request's worker before its slot
	// is freed, so that the scheduler cannot start another one first.
	pausedUntil atomic.Int64
	failing     atomic.Bool // the last attempt failed; for logging transitions
	// flapMu guards what the log was last told of the endpoint (see
	// logTurn): loggedFailing, when (flapAt), and the turns not logged
	// since (flaps).
	flapMu        sync.Mutex
	loggedFailing bool
	flapAt        time.Time
	flaps         int64

	ctx    context.Context // ends the scheduler
	stop   context.CancelFunc
	reqCtx context.Context // ends its requests
	abort  context.CancelFunc
	freed  chan bool // a request is answered; true: it held a shared slot
	// jobs hands a request to an idle worker goroutine (see startNext);
	// idle counts those waiting.
	jobs chan job
	idle atomic.Int32
	// recQ holds answered attempts for the recorder (see queueRecord);
	// recording: a recorder goroutine runs.
	recMu     sync.Mutex
	recQ      []queued
	recording bool
	recFull   chan struct{} // recQ holds maxRecordBatch
	doneMu    sync.Mutex
	done      []result // attempts answered and recorded

	// Owned by the scheduler goroutine.
	convs    map[string]*conv
	known    map[string]*item // by event ID
	ready    []*item          // due now, oldest first
	waiting  waitHeap         // due later
	inflight int
	reserved bool // the endpoint's own slot, outside the shared pool, is in use
	backlog  bool
	// notifiedAt holds when Notify handed over deliveries it dropped because
	// they were to be read from the store (bounded by MaxQueuedPerEndpoint).
	notifiedAt map[string]time.Time
	seen       int64
	loadAt     time.Time // after a store error, do not read before this
	loadFails  int
	timer      Timer
	timerAt    time.Time
	// retrying: the last finished attempt failed, so deliveries wait in
	// backoff; the first success after that is the end of an outage.
	retrying bool
}

// endpointConfig is an endpoint with its secrets decoded once.
type endpointConfig struct {
	bridge.Endpoint
	keys   [][]byte // the secret's, then the previous secret's during a rotation
	sign   *signer  // with keys
	keyErr error
}

type conv struct {
	items  []*item // by Sequence; items[0] is the head
	active bool    // the head is ready, waiting or in flight
}

type item struct {
	bridge.Delivery
	notified time.Time // when Notify handed it over, right after its commit; zero if read from the store
	key      string    // conversation key
	due      time.Time // zero means now
	since    time.Time // when it became due: its retry window's start (see Options.RetryWindow)
	asked    bool      // due is the endpoint's own Retry-After: kept even when it recovers
	index    int       // in waitHeap
	token    bool      // the request holds a shared slot
}

// pushed is a delivery in the inbox and when Notify handed it over.
type pushed struct {
	bridge.Delivery
	at time.Time
}

type outcome int

const (
	outAborted outcome = iota // shutdown or removal; nothing recorded
	outDelivered
	outRetry
	outDead
	outDisabled
)

type result struct {
	it      *item
	outcome outcome
	next    time.Time
	asked   bool // next is what the endpoint asked for (Retry-After)
	pause   bool // and it asked it of every request (429, 503): see pausedUntil
	refused bool // dead because the policy refuses every address of the host
	// permanent: dead because the connector said no retry can help (a
	// refused parameter or credential), not because the window closed.
	permanent bool
}

func newEndpoint(d *Dispatcher, ep bridge.Endpoint) *endpoint {
	e := &endpoint{
		d:     d,
		id:    ep.ID,
		wake:  make(chan struct{}, 1),
		freed: make(chan bool, d.opts.MaxInFlightPerEndpoint),
		jobs:  make(chan job),
		// recFull: buffered, so that queueRecord never waits.
		recFull: make(chan struct{}, 1),
		convs:   make(map[string]*conv),
		known:   make(map[string]*item),
		// The store may hold deliveries from before this start.
		backlog: true,
	}
	e.setConfig(ep)
	return e
}

func (e *endpoint) setConfig(ep bridge.Endpoint) {
	keys, err := signingKeys(ep.Secret, ep.PreviousSecret)
	e.cfg.Store(&endpointConfig{Endpoint: ep, keys: keys, sign: newSigner(keys), keyErr: err})
}

func (e *endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed || e.disabled.Load()
}

// close stops the scheduler and abandons its requests.
func (e *endpoint) close() {
	if e.stop != nil {
		e.stop()
		e.abort()
	}
}

func (e *endpoint) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// push is Notify's part: append to the inbox unless memory is full. Once a
// push is dropped, later ones are too until the scheduler has looked, so
// that what is kept is always a Seq prefix of what was pushed.
func (e *endpoint) push(dl bridge.Delivery) {
	if e.disabled.Load() {
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	if e.dropped || !e.reserve(1, int64(e.d.opts.MaxQueuedPerEndpoint)) {
		e.dropped = true
		e.mu.Unlock()
		e.signal()
		return
	}
	e.inbox = append(e.inbox, pushed{dl, e.d.clock.Now()})
	e.mu.Unlock()
	e.signal()
}

func (e *endpoint) reload() {
	e.mu.Lock()
	e.rescan = true
	e.mu.Unlock()
	e.signal()
}

// resumeSoon asks the scheduler to end the deliveries' backoffs (the
// endpoint's link is back).
func (e *endpoint) resumeSoon() {
	e.mu.Lock()
	e.resume = true
	e.mu.Unlock()
	e.signal()
}

func (e *endpoint) addQueued(n int) {
	e.queued.Add(int64(n))
	e.d.queued.Add(int64(n))
}

// reserve adds n to the deliveries held in memory if that keeps them at
// or under limit. Pushes and store reads reserve before they add, so the
// two together never pass MaxQueuedPerEndpoint (checked apart, a page read
// while the inbox filled could).
func (e *endpoint) reserve(n int, limit int64) bool {
	for {
		q := e.queued.Load()
		if q+int64(n) > limit {
			return false
		}
		if e.queued.CompareAndSwap(q, q+int64(n)) {
			e.d.queued.Add(int64(n))
			return true
		}
	}
}

func (e *endpoint) run() {
	defer e.d.schedWG.Done()
	defer e.exit()
	for {
		if e.ctx.Err() != nil || e.disabled.Load() {
			return
		}
		e.drainResults()
		e.takeInbox()
		now := e.d.clock.Now()
		more := e.wantLoad(now) && e.load(now)
		e.promote(now)
		e.launch()
		if more {
			continue // room for another page: read it before sleeping
		}
		e.armTimer(now)

		var timerC <-chan time.Time
		if e.timer != nil {
			timerC = e.timer.C()
		}
		// Wait for a shared slot only when there is work the endpoint's own
		// slot cannot take.
		var sem chan struct{}
		if len(e.ready) > 0 && e.reserved && e.inflight < e.d.opts.MaxInFlightPerEndpoint && !e.paused() {
			sem = e.d.sem
		}
		select {
		case <-e.ctx.Done():
			return
		case <-e.wake:
		case token := <-e.freed:
			e.slotFreed(token)
		case <-timerC:
			e.timer, e.timerAt = nil, time.Time{}
		case sem <- struct{}{}:
			e.startShared()
		}
	}
}

// exit releases the endpoint's memory. Requests under way finish (or are
// aborted) on their own; their results are dropped with the list.
func (e *endpoint) exit() {
	e.mu.Lock()
	e.closed = true
	n := len(e.inbox)
	e.inbox = nil
	e.mu.Unlock()
	e.addQueued(-(n + len(e.known)))
	e.showWaiting(0)
	e.known, e.convs, e.ready, e.waiting = nil, nil, nil, nil
	if e.timer != nil {
		e.timer.Stop()
	}
}

func (e *endpoint) drainResults() {
	for {
		select {
		case token := <-e.freed:
			e.slotFreed(token)
		default:
			e.doneMu.Lock()
			done := e.done
			e.done = nil
			e.doneMu.Unlock()
			for _, r := range done {
				e.complete(r)
			}
			return
		}
	}
}

func (e *endpoint) takeInbox() {
	e.mu.Lock()
	in, dropped, rescan, resume := e.inbox, e.dropped, e.rescan, e.resume
	e.inbox, e.dropped, e.rescan, e.resume = nil, false, false, false
	e.mu.Unlock()
	if rescan {
		e.backlog, e.seen, e.loadAt = true, 0, time.Time{}
	}
	if resume {
		e.endBackoffs()
	}
	n := 0
	for i := range in {
		if !e.accept(in[i].Delivery, in[i].at) {
			n++
		}
	}
	e.addQueued(-n)
	if dropped {
		e.backlog = true
	}
}

// accept takes a pushed delivery into memory, or reports that it should be
// dropped because it is already known or the store will provide it.
func (e *endpoint) accept(dl bridge.Delivery, notified time.Time) bool {
	switch {
	case e.backlog:
		// The store has it; it will be read in order. Its commit time is
		// kept for the Observer until then.
		if len(e.notifiedAt) < e.d.opts.MaxQueuedPerEndpoint {
			if e.notifiedAt == nil {
				e.notifiedAt = make(map[string]time.Time)
			}
			e.notifiedAt[dl.ID] = notified
		}
		return false
	case dl.Seq != 0 && dl.Seq <= e.seen:
		return false // in memory or finished already
	case e.known[dl.ID] != nil:
		return false
	case len(e.known) >= e.d.opts.MaxQueuedPerEndpoint:
		e.backlog = true
		return false
	}
	e.insert(dl).notified = notified
	e.seen = max(e.seen, dl.Seq)
	return true
}

func (e *endpoint) wantLoad(now time.Time) bool {
	return e.backlog && !now.Before(e.loadAt) &&
		len(e.known) <= e.d.opts.MaxQueuedPerEndpoint-e.d.opts.PageSize
}

// load reads the next page of the backlog and reports whether there may be
// more right away. It reserves room for a whole page first and gives back
// what the page did not fill.
func (e *endpoint) load(now time.Time) bool {
	limit := e.d.opts.PageSize
	if !e.reserve(limit, int64(e.d.opts.MaxQueuedPerEndpoint)) {
		return false // pushes filled the room: wait for deliveries to finish
	}
	n := 0
	defer func() { e.addQueued(n - limit) }()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	ds, err := e.d.store.PendingDeliveries(ctx, e.id, e.seen, limit)
	cancel()
	if err != nil {
		if e.ctx.Err() != nil {
			return false
		}
		e.loadFails++
		wait := min(time.Second<<min(e.loadFails-1, 6), time.Minute)
		e.loadAt = now.Add(wait)
		e.d.log.Error("webhook backlog read failed", "endpoint", e.id, "retry_in", wait, "err", err)
		return false
	}
	e.loadFails = 0
	for _, dl := range ds {
		e.seen = max(e.seen, dl.Seq)
		if e.known[dl.ID] != nil || (dl.Status != "" && dl.Status != bridge.DeliveryPending) {
			delete(e.notifiedAt, dl.ID)
			continue
		}
		e.insert(dl).notified = e.notifiedAt[dl.ID]
		delete(e.notifiedAt, dl.ID)
		n++
	}
	if len(ds) < limit {
		e.backlog = false
		clear(e.notifiedAt) // what was not read is no longer pending
		return false
	}
	return true
}

func convKey(dl *bridge.Delivery) string {
	if dl.ConversationID == "" {
		return "\x00" + dl.ID // independent: a conversation of its own
	}
	return dl.ConversationID
}

func (e *endpoint) insert(dl bridge.Delivery) *item {
	it := &item{Delivery: dl, key: convKey(&dl), index: -1, since: dl.FirstTriedAt}
	if dl.FirstTriedAt.IsZero() {
		it.since = dl.NextAttemptAt // committed or replayed then; never tried since
	}
	if dl.Attempts > 0 {
		// A retry scheduled before a restart. Fresh deliveries go now,
		// whatever clock stamped them.
		it.due = dl.NextAttemptAt
	}
	e.known[dl.ID] = it
	c := e.convs[it.key]
	if c == nil {
		c = &conv{}
		e.convs[it.key] = c
	}
	// Deliveries arrive in Seq order, which is Sequence order within a
	// conversation, so this is nearly always an append. An active head is
	// never displaced.
	i := len(c.items)
	for i > 0 && less(it, c.items[i-1]) {
		i--
	}
	if i == 0 && c.active {
		i = 1
	}
	c.items = slices.Insert(c.items, i, it)
	if !c.active {
		e.activate(c)
	}
	return it
}

func less(a, b *item) bool {
	if a.Sequence != b.Sequence {
		return a.Sequence < b.Sequence
	}
	return a.Seq < b.Seq
}

// activate schedules a conversation's head.
func (e *endpoint) activate(c *conv) {
	c.active = true
	e.schedule(c.items[0])
}

func (e *endpoint) schedule(it *item) {
	if !it.due.IsZero() && it.due.After(e.d.clock.Now()) {
		heap.Push(&e.waiting, it)
		return
	}
	e.ready = append(e.ready, it)
}

func (e *endpoint) promote(now time.Time) {
	for len(e.waiting) > 0 && !e.waiting[0].due.After(now) {
		e.ready = append(e.ready, heap.Pop(&e.waiting).(*item))
	}
}

// launch starts as many ready deliveries as slots allow without waiting. The
// endpoint's first concurrent request uses its own slot; further ones need
// one of the shared MaxInFlight slots. So a hung endpoint can hold at most
// MaxInFlightPerEndpoint-1 shared slots, and even with all shared slots
// held by hung endpoints every other endpoint still makes progress.
func (e *endpoint) launch() {
	for len(e.ready) > 0 && e.inflight < e.d.opts.MaxInFlightPerEndpoint && !e.disabled.Load() {
		// Checked at every start: a request launched a moment ago may
		// already have been answered 429 and paused the endpoint.
		if e.paused() {
			return
		}
		if !e.reserved {
			e.startNext(false)
			continue
		}
		select {
		case e.d.sem <- struct{}{}:
			if !e.startShared() {
				return
			}
		default:
			return
		}
	}
}

// startShared starts the next ready delivery on the shared slot just
// taken, or gives the slot back when the endpoint is paused: it may be the
// very slot a request of this endpoint freed after its 429 paused it.
func (e *endpoint) startShared() bool {
	if e.paused() {
		<-e.d.sem
		return false
	}
	e.startNext(true)
	return true
}

func (e *endpoint) startNext(token bool) {
	it := e.ready[0]
	e.ready[0] = nil
	e.ready = e.ready[1:]
	it.token = token
	if !token {
		e.reserved = true
	}
	e.inflight++
	e.d.inflight.Add(1)
	e.d.workWG.Add(1)
	j := job{e.cfg.Load(), it}
	select {
	case e.jobs <- j:
	default:
		go e.work(j)
	}
}

// job is one request for a worker: a delivery and the settings to use.
type job struct {
	cfg *endpointConfig
	it  *item
}

// work runs requests, the first j, then whatever startNext hands over while
// it waits. Workers are kept rather than a goroutine started per request
// because net/http's client path grows a fresh goroutine's stack, copying
// it, on every request (4-6 % of a backlog drain's CPU). That holds only
// while a worker's stack stays grown: with a batching store it hands the
// record to the recorder instead of waiting for the commit, shallow, where
// the GC would shrink its stack again.
func (e *endpoint) work(j job) {
	for {
		e.attempt(j.cfg, j.it)
		// As many wait as requests may run at once; more come and go.
		if e.idle.Add(1) > int32(e.d.opts.MaxInFlightPerEndpoint) {
			e.idle.Add(-1)
			return
		}
		select {
		case j = <-e.jobs:
			e.idle.Add(-1)
		case <-e.reqCtx.Done(): // removed, or the dispatcher stopped
			e.idle.Add(-1)
			return
		}
	}
}

// attempt makes one try of a delivery and hands its result to the scheduler.
func (e *endpoint) attempt(cfg *endpointConfig, it *item) {
	r, a := e.send(cfg, it)
	if r.pause {
		e.pause(r.next)
	}
	release := func() {
		if it.token {
			<-e.d.sem
		}
		e.d.inflight.Add(-1)
		e.freed <- it.token // never blocks: room for every request in flight
	}
	// A 410 keeps its slot until the endpoint is disabled, so that the
	// scheduler starts no further request to an endpoint that is gone.
	gone := r.outcome == outDisabled
	if !gone {
		release()
	}
	if r.outcome != outAborted && !gone && e.d.batch != nil {
		e.queueRecord(queued{cfg, it, a, r}) // its recorder finishes it
		return
	}
	defer e.d.workWG.Done()
	if r.outcome != outAborted {
		e.record(cfg, it, a, &r)
	}
	if gone {
		release()
	}
	e.finished(r)
}

// finished hands a result to the scheduler. A list, not a channel: results
// wait for their records, so more can be outstanding than requests.
func (e *endpoint) finished(r result) {
	e.doneMu.Lock()
	e.done = append(e.done, r)
	e.doneMu.Unlock()
	e.signal()
}

// slotFreed is a request's answer (or failure) being in: its slot may take
// the next request while the outcome is still being recorded.
func (e *endpoint) slotFreed(token bool) {
	e.inflight--
	if !token {
		e.reserved = false
	}
}

func (e *endpoint) complete(r result) {
	if e.disabled.Load() {
		return // run exits and drops everything
	}
	switch r.outcome {
	case outAborted:
		// Shutting down or removed; the delivery stays pending in the store.
	case outRetry:
		e.retrying = true
		r.it.due, r.it.asked = r.next, r.asked
		e.schedule(r.it)
	case outDelivered:
		if e.retrying {
			e.endBackoffs() // the endpoint is back
		}
		e.finish(r.it)
	default:
		e.finish(r.it)
	}
}

// endBackoffs makes what waits out a backoff (which grows with an outage)
// due now, so the drain starts at once; what the endpoint asked to wait
// (Retry-After) still waits.
func (e *endpoint) endBackoffs() {
	e.retrying = false
	var kept waitHeap
	for len(e.waiting) > 0 {
		it := heap.Pop(&e.waiting).(*item)
		if it.asked {
			kept = append(kept, it)
			continue
		}
		it.due = time.Time{}
		e.ready = append(e.ready, it)
	}
	for _, it := range kept {
		heap.Push(&e.waiting, it)
	}
}

// finish drops a delivered or dead delivery and schedules its successor.
func (e *endpoint) finish(it *item) {
	delete(e.known, it.ID)
	e.addQueued(-1)
	c := e.convs[it.key]
	if i := slices.Index(c.items, it); i >= 0 {
		c.items = slices.Delete(c.items, i, i+1)
	}
	c.active = false
	if len(c.items) == 0 {
		delete(e.convs, it.key)
		return
	}
	e.activate(c)
}

// pause holds every request until next, unless a pause already runs longer.
func (e *endpoint) pause(next time.Time) {
	for {
		cur := e.pausedUntil.Load()
		if next.UnixNano() <= cur {
			return
		}
		if e.pausedUntil.CompareAndSwap(cur, next.UnixNano()) {
			e.d.log.Warn("webhook endpoint asked to wait (a 429 or 503: its Retry-After, or the CRM's rate-limit headers); no request to it until then", "endpoint", e.id, "until", next)
			return
		}
	}
}

// paused reports whether the endpoint asked that no request start yet.
func (e *endpoint) paused() bool {
	return e.pausedUntil.Load() > e.d.clock.Now().UnixNano()
}

// armTimer makes the timer fire at the next retry or store re-read, or at
// the end of a pause when deliveries wait for it.
func (e *endpoint) armTimer(now time.Time) {
	// Counted here, once the timer reflects them: a reader of Stats that
	// sees the retries waiting also sees the timer that will wake them.
	defer e.showWaiting(len(e.waiting))
	var at time.Time
	if len(e.waiting) > 0 {
		at = e.waiting[0].due
	}
	if p := time.Unix(0, e.pausedUntil.Load()); len(e.ready) > 0 && p.After(now) && (at.IsZero() || p.Before(at)) {
		at = p
	}
	if e.backlog && e.loadAt.After(now) && (at.IsZero() || e.loadAt.Before(at)) {
		at = e.loadAt
	}
	if at.Equal(e.timerAt) && (e.timer != nil) == !at.IsZero() {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer, e.timerAt = nil, time.Time{}
	}
	if !at.IsZero() {
		e.timer, e.timerAt = e.d.clock.NewTimer(at.Sub(now)), at
	}
}

// showWaiting moves the dispatcher's count of deliveries waiting for a
// retry to n for this endpoint.
func (e *endpoint) showWaiting(n int) {
	if n != e.waitingShown {
		e.d.waiting.Add(int64(n - e.waitingShown))
		e.waitingShown = n
	}
}

// waitHeap orders deliveries waiting for a retry by due time.
type waitHeap []*item

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *waitHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}
