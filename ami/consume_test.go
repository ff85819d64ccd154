package ami

import (
	"fmt"
	"log/slog"
	"reflect"
	"testing"

	"github.com/staskobzar/goami2"
)

// flushLog is a BatchHandler that logs its calls and, at each Flush, how
// many items the Client still counted as queued.
type flushLog struct {
	c     *Client
	calls []string
	lens  []int
}

func (h *flushLog) Connected(ConnInfo)        { h.calls = append(h.calls, "connected") }
func (h *flushLog) Disconnected(error)        { h.calls = append(h.calls, "disconnected") }
func (h *flushLog) Message(m *goami2.Message) { h.calls = append(h.calls, "message") }
func (h *flushLog) Add(m *goami2.Message, more int) {
	h.calls = append(h.calls, fmt.Sprintf("add %s more=%d", m.Field("Uniqueid"), more))
}
func (h *flushLog) Flush() {
	h.calls = append(h.calls, "flush")
	h.lens = append(h.lens, h.c.QueueLen())
}

// One chunk holding frames, a session's end, more frames and the stop:
// the handler is flushed before the end and before the stop, and a
// message leaves QueueLen only once flushed (its events were still in the
// handler until then).
func TestConsumeFlushesAndCountsAMixedChunk(t *testing.T) {
	h := &flushLog{}
	c := NewClient(Config{Address: "127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)}, h)
	h.c = c
	frame := func(id string) item {
		return item{kind: itemFrame, frame: "Event: Newchannel\r\nUniqueid: " + id + "\r\n\r\n"}
	}
	for _, it := range []item{frame("1"), frame("2"), frame("3"), {kind: itemDisconnected}, frame("4"), {kind: itemFrame, frame: "no header\r\n\r\n"}, frame("5"), {kind: itemStop}} {
		c.q.push(it)
	}
	done := make(chan struct{})
	c.consume(done) // returns at the stop
	want := []string{"add 1 more=7", "add 2 more=6", "add 3 more=5", "flush", "disconnected",
		"add 4 more=3", "add 5 more=1", "flush"}
	if !reflect.DeepEqual(h.calls, want) {
		t.Fatalf("calls %q\nwant  %q", h.calls, want)
	}
	// First flush: nothing has left the count (8 items). Second, before the
	// stop: the three flushed frames and the session's end have (8-4); the
	// frames added since, the refused one among them, leave after it.
	if !reflect.DeepEqual(h.lens, []int{8, 4}) {
		t.Fatalf("QueueLen at the flushes %v, want [8 4]", h.lens)
	}
	if c.QueueLen() != 0 || c.Skipped() != 1 {
		t.Fatalf("QueueLen %d, skipped %d after the stop", c.QueueLen(), c.Skipped())
	}
}
