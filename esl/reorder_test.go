package esl

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

func seqEvent(seq uint64) *Event {
	return &Event{Headers: map[string]string{"Event-Name": "X", "Event-Sequence": strconv.FormatUint(seq, 10)}}
}

// feed plays events arriving 1 ms apart in the given order through a
// reorder with the window, releasing as time passes, and returns the
// sequences in release order.
func feed(order []uint64, window time.Duration) ([]uint64, int64) {
	r := newReorder(window)
	t0 := time.Unix(1000, 0)
	var out []*Event
	for i, seq := range order {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		out = r.due(now, out)
		out = r.push(seqEvent(seq), now, out)
	}
	if at, ok := r.next(); ok {
		out = r.due(at, out)
	}
	out = r.flush(out)
	got := make([]uint64, len(out))
	for i, e := range out {
		got[i] = e.Seq()
	}
	return got, r.late
}

func TestReorderRestoresOrder(t *testing.T) {
	const n, k = 500, 7
	sorted := make([]uint64, n)
	for i := range sorted {
		sorted[i] = uint64(1000 + 3*i) // gaps, like FreeSWITCH's global counter
	}
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 1))
		order := slices.Clone(sorted)
		for i := 0; i < n; i += k { // displaced by less than k places
			w := order[i:min(i+k, n)]
			r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
		got, late := feed(order, k*time.Millisecond)
		if !slices.Equal(got, sorted) || late != 0 {
			t.Fatalf("seed %d: late %d, got %v", seed, late, got[:20])
		}
	}
}

func TestReorderLateEventsPassOn(t *testing.T) {
	// 5 arrives 10 ms after 6 was released: it is passed on, not dropped.
	order := []uint64{1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 5, 16}
	got, late := feed(order, 2*time.Millisecond)
	if late != 1 || len(got) != len(order) {
		t.Fatalf("late %d, got %v", late, got)
	}
	if i := slices.Index(got, 5); i == -1 || !slices.IsSorted(slices.Delete(slices.Clone(got), i, i+1)) {
		t.Fatalf("got %v", got)
	}
}

func TestReorderUnsequencedAndDisabled(t *testing.T) {
	r := newReorder(time.Second)
	if out := r.push(&Event{Headers: map[string]string{"Event-Name": "X"}}, time.Now(), nil); len(out) != 1 {
		t.Fatal("an event without a sequence was held")
	}
	if out := newReorder(-1).push(seqEvent(9), time.Now(), nil); len(out) != 1 {
		t.Fatal("a disabled window held an event")
	}
}

// TestReorderReleasesContiguousAtOnce: events that follow the last one
// released go out as they arrive (no time passes here); an event after a
// gap waits until the gap fills, and then everything that follows on goes
// out with it; an unfilled gap holds only until the window ends.
func TestReorderReleasesContiguousAtOnce(t *testing.T) {
	r := newReorder(time.Hour)
	now := time.Unix(1000, 0)
	seqs := func(evs []*Event) []uint64 {
		var s []uint64
		for _, e := range evs {
			s = append(s, e.Seq())
		}
		return s
	}
	out := r.push(seqEvent(1), now, nil) // the first event: nothing before it to wait for
	out = r.push(seqEvent(2), now, out)
	if got := seqs(out); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("contiguous events were held: %v", got)
	}
	if out := r.push(seqEvent(4), now, nil); len(out) != 0 {
		t.Fatalf("an event after a gap went out: %v", seqs(out))
	}
	out = r.push(seqEvent(5), now, nil)
	out = r.push(seqEvent(3), now, out)
	if got := seqs(out); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("the filled gap released %v, want 3 4 5", got)
	}
	if out := r.push(seqEvent(9), now, nil); len(out) != 0 {
		t.Fatalf("an event after a gap went out: %v", seqs(out))
	}
	at, ok := r.next()
	if !ok {
		t.Fatal("nothing held")
	}
	if got := seqs(r.due(at, nil)); !slices.Equal(got, []uint64{9}) {
		t.Fatalf("the window's end released %v", got)
	}
	if out := r.push(seqEvent(10), now, nil); len(out) != 1 {
		t.Fatal("the event after the released one was held")
	}
}
