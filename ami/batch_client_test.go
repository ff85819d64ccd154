package ami_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/staskobzar/goami2"
)

// batchRecorder is a BatchHandler: Add and Flush are logged beside the
// recorder's calls.
type batchRecorder struct {
	*recorder
}

const (
	kindAdd kind = 100 + iota
	kindFlush
)

func (b batchRecorder) Add(m *goami2.Message, more int) {
	b.add(call{kind: kindAdd, msg: m, err: moreCount(more)})
}
func (b batchRecorder) Flush() { b.add(call{kind: kindFlush}) }
func (b batchRecorder) Message(m *goami2.Message) {
	panic("Message called on a BatchHandler")
}

// moreCount carries Add's more in a call's err field.
type moreCount int

func (moreCount) Error() string { return "more" }

// A BatchHandler gets a batch's messages through Add, counted down to the
// batch's end, then Flush; no other call comes while an Add is unflushed.
// A handler held while frames pile up takes them as one batch.
func TestClient_BatchHandlerFlushes(t *testing.T) {
	s := newServer(t, amitest.ServerOptions{})
	rec := newRecorder()
	h := batchRecorder{rec}
	c := start(t, ami.Config{Address: s.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1}, h)
	// As in the other tests, a login gives Connected and two messages.
	rec.waitFor(t, "login", func(r *recorder) bool {
		cs := r.calls()
		return r.count(kindConnected) == 1 && r.count(kindAdd) == 2 && cs[len(cs)-1].kind == kindFlush
	})

	var stream []byte
	for _, name := range amitest.Names() {
		if !strings.HasSuffix(name, ".sent") {
			for _, f := range amitest.EventsOf(amitest.Frames(name)) {
				stream = append(stream, f.Raw...)
			}
		}
	}
	n := len(amitest.SplitFrames(stream))
	before := rec.count(kindAdd)
	release := rec.hold()
	t.Cleanup(release)
	if err := s.SendRaw(stream); err != nil {
		t.Fatal(err)
	}
	// The first frame may be taken alone (its Add waits on the gate); the
	// rest queue behind it.
	ctx := testContext(t)
	for c.QueueLen() < n {
		if ctx.Err() != nil {
			t.Fatalf("queued %d of %d frames", c.QueueLen(), n)
		}
		time.Sleep(time.Millisecond)
	}
	// The session ends behind the frames: Disconnected must come after a
	// Flush (within one chunk: TestConsumeFlushesAndCountsAMixedChunk).
	s.Close()
	for c.QueueLen() < n+1 {
		if ctx.Err() != nil {
			t.Fatalf("queued %d of %d items", c.QueueLen(), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	release()
	rec.waitFor(t, "every frame", func(r *recorder) bool { return r.count(kindAdd) == before+n })
	rec.waitFor(t, "Disconnected", func(r *recorder) bool { return r.count(kindDisconnected) == 1 })

	calls := rec.calls()
	unflushed, largest, batch := 0, 0, 0
	for i, cl := range calls {
		switch cl.kind {
		case kindAdd:
			more := int(cl.err.(moreCount))
			if unflushed > 0 {
				// Counted down (by more than one past a refused frame).
				if prev := int(calls[i-1].err.(moreCount)); more >= prev {
					t.Fatalf("call %d: Add more=%d after more=%d in one batch", i, more, prev)
				}
			}
			unflushed++
			batch++
			if more == 0 && (i+1 >= len(calls) || calls[i+1].kind != kindFlush) {
				t.Fatalf("call %d: the batch's last Add is not followed by Flush", i)
			}
		case kindFlush:
			largest = max(largest, batch)
			unflushed, batch = 0, 0
		default:
			if unflushed > 0 {
				t.Fatalf("call %d (kind %d) came with %d Adds unflushed", i, cl.kind, unflushed)
			}
		}
	}
	// Held back, the frames behind the first are taken a whole chunk at
	// a time.
	if want := min(n-1, ami.ChunkSize); largest < want {
		t.Fatalf("largest batch %d of %d frames held back, want %d: the client did not batch", largest, n, want)
	}
}
