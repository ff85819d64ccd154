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
	itemResync // a frame was lost: the Handler asks for the PBX's state again
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
// slow handler. It is a list of fixed chunks, so a backlog grows without
// copying what is already queued (a slice appended to would copy it at
// every growth); the consumer takes the oldest chunk in one lock.
type queue struct {
	mu         sync.Mutex
	head, tail *chunk
	// free holds recycled chunks: while the consumer handles one, the
	// reader fills another, so two or three cycle with no allocation.
	free    []*chunk
	wake    chan struct{}
	pending atomic.Int64 // pushed and not yet handled
}

const (
	chunkSize  = 128 // items a chunk holds: the most the consumer takes at once
	keepChunks = 4   // recycled chunks kept; a burst's others go to the collector
)

type chunk struct {
	items [chunkSize]item
	n     int
	next  *chunk
}

func newQueue() *queue {
	return &queue{wake: make(chan struct{}, 1)}
}

func (q *queue) push(it item) {
	q.mu.Lock()
	if q.tail == nil || q.tail.n == chunkSize {
		var c *chunk
		if n := len(q.free); n > 0 {
			c, q.free = q.free[n-1], q.free[:n-1]
		} else {
			c = new(chunk)
		}
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
	q.tail.items[q.tail.n] = it
	q.tail.n++
	q.pending.Add(1) // before the consumer can take it: QueueLen never reads low
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take blocks until something is queued and returns the oldest chunk,
// which leaves the queue: the producer starts another. The caller hands it
// back with done.
func (q *queue) take() *chunk {
	for {
		q.mu.Lock()
		if c := q.head; c != nil {
			q.head = c.next
			if q.head == nil {
				q.tail = nil
			}
			q.mu.Unlock()
			return c
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// done recycles a chunk returned by take once it has been handled.
func (q *queue) done(c *chunk) {
	clear(c.items[:c.n]) // its frames and messages are garbage now
	c.n, c.next = 0, nil
	q.mu.Lock()
	if len(q.free) < keepChunks {
		q.free = append(q.free, c)
	}
	q.mu.Unlock()
}

// len is the backlog: queued frames plus the batch being handled.
func (q *queue) len() int { return int(q.pending.Load()) }
