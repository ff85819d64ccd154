package esl

import (
	"container/heap"
	"time"
)

// reorder restores Event-Sequence order, holding back only events that
// follow a gap.
//
// Why events come out of order (switch_event.c): the sequence number is
// taken when an event is created (switch_event_create ->
// switch_event_prep_for_delivery), not when it is fired. A thread that
// creates an event, then copies the channel's variables into it
// (switch_channel_event_set_data) and fires it, can be overtaken by an event
// another thread created later and fired sooner. The dispatch queue is FIFO
// (one dispatch thread until 10,000 events back up). In the captures in
// testdata/sip (event plain ALL, FreeSWITCH 1.10) every inversion of a
// subscribed kind is a teardown event (HANGUP_COMPLETE, UNBRIDGE, BRIDGE,
// CALLSTATE) overtaken by at most 7 frames, all stamped in the same tick of
// the switch's clock (equal Event-Date-Timestamp): the wait needed is
// short, so the default window is 5 ms.
//
// The rule: an event whose sequence follows the last one released goes out
// at once, and so do the held events that then follow on. An event after a
// gap is held for the window (a gap may be an event still in flight);
// when the oldest held event is due, it and every held event with a lower
// sequence are released in sequence order. Note that gaps are common: the
// counter is global, so every event the subscription leaves out and every
// event created and never fired (the REQUEST_PARAMS of an XML lookup) takes
// a number.
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

// push adds an event and appends to out what goes out now, in order: the
// event itself when it is in order (and the held events that then follow
// on), late, unsequenced, or when there is no window.
func (r *reorder) push(ev *Event, now time.Time, out []*Event) []*Event {
	seq := ev.Seq()
	if r.window <= 0 || seq == 0 {
		return append(out, ev)
	}
	if seq <= r.last {
		r.late++
		return append(out, ev)
	}
	if seq == r.last+1 {
		// Held events all lie beyond a gap: none comes before this one.
		r.last = seq
		return r.contiguous(append(out, ev))
	}
	h := &held{ev: ev, seq: seq, due: now.Add(r.window)}
	heap.Push(&r.held, h)
	r.arrivals = append(r.arrivals, h)
	return out
}

// due appends to out the events whose hold time is over, and those that
// follow the last released one without a gap, in sequence order.
func (r *reorder) due(now time.Time, out []*Event) []*Event {
	for {
		out = r.contiguous(out)
		r.skipReleased()
		if len(r.arrivals) == 0 || r.arrivals[0].due.After(now) {
			return out
		}
		out = r.release(r.arrivals[0].seq, out)
	}
}

// contiguous releases held events while the lowest follows the last one.
func (r *reorder) contiguous(out []*Event) []*Event {
	for len(r.held) > 0 && r.held[0].seq == r.last+1 {
		out = r.release(r.held[0].seq, out)
	}
	return out
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
