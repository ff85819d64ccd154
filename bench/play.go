package bench

import (
	"container/heap"
	"context"
	"time"
)

// schedule says when call i starts and how long its frames are spread over.
type schedule struct {
	start func(i int) time.Duration
	dur   time.Duration // first to last frame of a call; 0 sends a call at once
	// perBurst, when set, groups a call's frames as the PBX sends them
	// (see call.offset and burstSize); else each frame goes on its own.
	perBurst float64
}

// burstSize is how many of the events ctibridge subscribes to a PBX sends
// together (within 1 ms of each other by the PBX's own clock), measured on
// the real SIP captures in shared/fixtures: Asterisk 22, 1,942 events in
// 408 bursts (Timestamp, timestampevents=yes, 40 captures); FreeSWITCH
// 1.10, 530 subscribed events in 146 bursts (Event-Date-Timestamp, 22
// captures). The steady runs send each frame on its own, which wakes the
// reader for every event; the bursts runs send them grouped like this.
var burstSize = map[string]float64{"asterisk": 1942.0 / 408, "freeswitch": 530.0 / 146}

// steady starts rate calls per second.
func steady(rate float64, dur time.Duration) schedule {
	return schedule{start: func(i int) time.Duration { return time.Duration(float64(i) / rate * float64(time.Second)) }, dur: dur}
}

// cursor is the next frame of one call.
type cursor struct {
	c     *call
	n     int // the call's index: ties go to the older call
	i     int
	start time.Duration
	due   time.Duration
}

type cursorHeap []*cursor

func (h cursorHeap) Len() int { return len(h) }

// Less orders frames as finalize numbered them.
func (h cursorHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].n < h[j].n
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxWrite bounds one write so a blast still streams.
const maxWrite = 256 << 10

// play writes the calls' frames (joined by finalize) on their schedule from one goroutine: all
// frames due are joined into one write, and each frame's send time is the
// moment just before that write. It returns when every frame is written.
func play(ctx context.Context, write func([]byte) error, calls []*call, sch schedule) error {
	h := make(cursorHeap, 0, len(calls))
	for i, c := range calls {
		if c.last == 0 {
			continue
		}
		h = append(h, &cursor{c: c, n: i, start: sch.start(i), due: sch.start(i)})
	}
	heap.Init(&h)
	type mark struct {
		c *call
		i int
	}
	var buf []byte
	var marks []mark
	t0 := time.Now()
	for len(h) > 0 {
		now := time.Since(t0)
		buf, marks = buf[:0], marks[:0]
		for len(h) > 0 && h[0].due <= now && len(buf) < maxWrite {
			cu := h[0]
			buf = append(buf, cu.c.frame(cu.i)...)
			marks = append(marks, mark{cu.c, cu.i})
			cu.i++
			if cu.i == cu.c.last {
				heap.Pop(&h)
			} else {
				cu.due = cu.start + cu.c.offset(cu.i, sch)
				heap.Fix(&h, 0)
			}
		}
		if len(buf) > 0 {
			ts := time.Now().UnixNano()
			for _, m := range marks {
				m.c.sent[m.i].Store(ts)
			}
			if err := write(buf); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(h) > 0 {
			if d := h[0].due - time.Since(t0); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return nil
}
