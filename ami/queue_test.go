package ami

import "testing"

// The reader fills a chunk while the consumer handles the last one, at
// every rate: recycled chunks serve it, so steady traffic allocates none
// (with one spare chunk, as first written, it allocated one a cycle).
func TestQueueRecyclesChunks(t *testing.T) {
	q := newQueue()
	cycle := func() {
		q.push(item{kind: itemFrame, frame: "a"})
		c := q.take()
		q.push(item{kind: itemFrame, frame: "b"}) // while c is handled
		q.done(c)
		c = q.take()
		if c.n != 1 || c.items[0].frame != "b" {
			t.Fatalf("took %d items, first %q", c.n, c.items[0].frame)
		}
		q.done(c)
	}
	cycle() // the first chunks are new
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Fatalf("%v allocations a cycle, want 0", n)
	}
}

// Items come out in push order across chunks, and a taken chunk is no
// longer written: the producer starts another.
func TestQueueOrderAcrossChunks(t *testing.T) {
	q := newQueue()
	const n = 3*chunkSize + 7
	for i := range n {
		q.push(item{kind: itemStop, info: ConnInfo{Session: i}})
	}
	next, takes := 0, 0
	for next < n {
		c := q.take()
		takes++
		if c.n == 0 || c.n > chunkSize {
			t.Fatalf("a chunk of %d items", c.n)
		}
		taken := c.n
		q.push(item{kind: itemStop, info: ConnInfo{Session: -1}})
		if c.n != taken {
			t.Fatal("a push wrote into a chunk already taken")
		}
		for _, it := range c.items[:c.n] {
			if it.info.Session == -1 {
				continue
			}
			if it.info.Session != next {
				t.Fatalf("item %d came out as %d", next, it.info.Session)
			}
			next++
		}
		q.done(c)
	}
	if takes < n/chunkSize {
		t.Fatalf("%d takes for %d items", takes, n)
	}
}

// A consumer that lags three chunks behind the reader (a burst) still
// allocates none once keepChunks are recycled.
func TestQueueRecyclesChunksUnderLag(t *testing.T) {
	q := newQueue()
	held := make([]*chunk, 0, keepChunks) // the test's own, allocated once
	cycle := func() {
		held = held[:0]
		for range keepChunks - 1 {
			q.push(item{kind: itemFrame, frame: "a"})
			held = append(held, q.take())
		}
		q.push(item{kind: itemFrame, frame: "b"}) // the reader fills one more
		for _, c := range held {
			q.done(c)
		}
		q.done(q.take())
	}
	cycle()
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Fatalf("%v allocations a cycle, want 0", n)
	}
}
