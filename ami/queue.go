package ami

import (
	"sync"
	"sync/atomic"

	"github.com/staskobzar/goami2"
)

type itemKind uint8

const (
	itemMessage itemKind = iota
	itemFrame            // an event's frame, parsed by the consumer
	itemConnected
	itemDisconnected
	itemFailed // a connection attempt that never logged in
	itemStop
)

type item struct {
	kind itemKind
	msg  *goami2.Message
	// frame: an itemFrame's bytes. A backlog waits as frames (no pointers
	// for the collector to scan), not as parsed messages, which took 3.5
	// times their memory.
	frame string
	info  ConnInfo
	err   error
}

// queue is the unbounded FIFO between the reader goroutine and the
// consumer. It never blocks the producer: memory, not the socket, absorbs a
// slow handler. The consumer swaps out everything queued in one lock, so the
// cost per frame is one append under an uncontended mutex.
type queue struct {
	mu      sync.Mutex
	items   []item
	spare   []item
	wake    chan struct{}
	pending atomic.Int64 // pushed and not yet handled
}

// keepCap bounds the capacity a drained slice keeps for reuse, so a burst of
// a million frames does not pin its memory for ever.
const keepCap = 4096

func newQueue() *queue {
	return &queue{wake: make(chan struct{}, 1)}
}

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.pending.Add(1)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take blocks until something is queued and returns all of it. The caller
// hands the slice back with done.
func (q *queue) take() []item {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			batch := q.items
			q.items = q.spare
			q.spare = nil
			q.mu.Unlock()
			return batch
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// done recycles a batch returned by take once it has been handled.
func (q *queue) done(batch []item) {
	clear(batch)
	if cap(batch) > keepCap {
		return
	}
	q.mu.Lock()
	if q.spare == nil {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// len is the backlog: queued frames plus the batch being handled.
func (q *queue) len() int { return int(q.pending.Load()) }
