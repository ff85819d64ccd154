package bridge

// inputQueue is the engine's FIFO of adapter input: fixed-size chunks in a
// list, so a push never copies what is already queued.
//
// Why not a slice: under a backlog (a PBX burst faster than the store
// commits) the queue holds hundreds of thousands of inputs; append on a
// slice whose front is being consumed reallocates and copies the whole
// backlog every time it fills, into fresh pages the kernel must zero. At
// ctibench's max rate that copying was a tenth of serve's CPU, taken from
// the engine that drains the queue.
type inputQueue struct {
	head, tail *inputChunk
	n          int
	spare      *inputChunk // one emptied chunk kept for reuse
}

const inputChunkSize = 128

type inputChunk struct {
	items      [inputChunkSize]input
	next       *inputChunk
	read, used int
}

func (q *inputQueue) len() int { return q.n }

func (q *inputQueue) push(in input) {
	if q.tail == nil || q.tail.used == inputChunkSize {
		c := q.spare
		if c != nil {
			q.spare = nil
		} else {
			c = new(inputChunk)
		}
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
	q.tail.items[q.tail.used] = in
	q.tail.used++
	q.n++
}

// take moves up to max inputs, oldest first, to the end of dst.
func (q *inputQueue) take(dst []input, max int) []input {
	for max > 0 && q.head != nil {
		c := q.head
		k := min(c.used-c.read, max)
		dst = append(dst, c.items[c.read:c.read+k]...)
		clear(c.items[c.read : c.read+k]) // the queue no longer pins their events
		c.read += k
		q.n -= k
		max -= k
		if c.read == c.used && (c.used == inputChunkSize || c == q.tail) {
			q.head = c.next
			if q.head == nil {
				q.tail = nil
			}
			*c = inputChunk{}
			q.spare = c
		}
	}
	return dst
}
