package esl

import (
	"container/heap"
	"time"
)

// reorder restores Event-Sequence order. FreeSWITCH numbers events when it
// fires them but several dispatch threads write them to the socket, so a
// few per call arrive swapped. Each event is held for the window after it
// arrives; when the oldest held event is due, it and every held event with a
// lower sequence are released in sequence order. The counter is global, so
// sorting it globally also restores each call's order.
//
// An event arriving with a sequence at or below the last released one is
// late: it is passed on at once (the translator tolerates it) rather than
// dropped. Events without a sequence pass straight through too.
type reorder struct {
	window   time.Duration
	held     seqHeap
	arrivals []*held // arrival order; released entries are skipped
	last     uint64  // highest sequence released
	late     int64   // events that came after a higher one was released
}

type held struct {
	ev       *Event
	seq      uint64
	due      time.Time
	released bool
}

func newReorder(window time.Duration) *reorder { return &reorder{window: window} }

// push adds an event. It returns the event back when it must go out now
// (late, unsequenced, or no window).
func (r *reorder) push(ev *Event, now time.Time) *Event {
	seq := ev.Seq()
	if r.window <= 0 || seq == 0 {
		return ev
	}
	if seq <= r.last {
		r.late++
		return ev
	}
	h := &held{ev: ev, seq: seq, due: now.Add(r.window)}
	heap.Push(&r.held, h)
	r.arrivals = append(r.arrivals, h)
	return nil
}

// due appends to out the events whose hold time is over, in sequence order.
func (r *reorder) due(now time.Time, out []*Event) []*Event {
	for {
		r.skipReleased()
		if len(r.arrivals) == 0 || r.arrivals[0].due.After(now) {
			return out
		}
		out = r.release(r.arrivals[0].seq, out)
	}
}

// flush appends every held event, in sequence order.
func (r *reorder) flush(out []*Event) []*Event {
	out = r.release(^uint64(0), out)
	r.arrivals = r.arrivals[:0]
	return out
}

// next returns when the next held event is due.
func (r *reorder) next() (time.Time, bool) {
	r.skipReleased()
	if len(r.arrivals) == 0 {
		return time.Time{}, false
	}
	return r.arrivals[0].due, true
}

func (r *reorder) release(upto uint64, out []*Event) []*Event {
	for len(r.held) > 0 && r.held[0].seq <= upto {
		h := heap.Pop(&r.held).(*held)
		h.released = true
		out = append(out, h.ev)
		r.last = max(r.last, h.seq)
	}
	return out
}

func (r *reorder) skipReleased() {
	i := 0
	for i < len(r.arrivals) && r.arrivals[i].released {
		r.arrivals[i] = nil
		i++
	}
	r.arrivals = r.arrivals[i:]
}

type seqHeap []*held

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(*held)) }
func (h *seqHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return x
}
