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
		if ev := r.push(seqEvent(seq), now); ev != nil {
			out = append(out, ev)
		}
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
	if ev := r.push(&Event{Headers: map[string]string{"Event-Name": "X"}}, time.Now()); ev == nil {
		t.Fatal("an event without a sequence was held")
	}
	if ev := newReorder(-1).push(seqEvent(9), time.Now()); ev == nil {
		t.Fatal("a disabled window held an event")
	}
}
