package bridge

import (
	"math/rand/v2"
	"testing"
)

// The queue hands inputs out in the order they came, across chunk
// boundaries, whatever the mix of pushes and takes.
func TestInputQueueKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q inputQueue
	var want []int // kinds pushed and not yet taken, oldest first
	next := 0
	for round := range 5000 {
		if rng.IntN(3) > 0 {
			for range rng.IntN(3 * inputChunkSize) {
				q.push(input{kind: next})
				want = append(want, next)
				next++
			}
		}
		max := rng.IntN(2*inputChunkSize + 2)
		got := q.take(nil, max)
		if n := min(max, len(want)); len(got) != n {
			t.Fatalf("round %d: took %d of %d queued with max %d", round, len(got), len(want), max)
		}
		for i, in := range got {
			if in.kind != want[i] {
				t.Fatalf("round %d: item %d is %d, want %d", round, i, in.kind, want[i])
			}
		}
		want = want[len(got):]
		if q.len() != len(want) {
			t.Fatalf("round %d: len %d, want %d", round, q.len(), len(want))
		}
	}
	rest := q.take(nil, q.len()+1)
	if len(rest) != len(want) || q.len() != 0 || q.head != nil || q.tail != nil {
		t.Fatalf("draining left %d items, head %v", q.len(), q.head)
	}
}

// A push never copies the queue: its cost does not grow with the backlog.
func BenchmarkInputQueuePushUnderBacklog(b *testing.B) {
	var q inputQueue
	for range 500_000 {
		q.push(input{})
	}
	buf := make([]input, 0, maxBatch)
	b.ResetTimer()
	for i := range b.N {
		q.push(input{kind: i})
		if i%maxBatch == 0 {
			buf = q.take(buf[:0], maxBatch)
		}
	}
}
