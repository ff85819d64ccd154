package ami

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// orderSink logs what reaches it, in order: each ChannelEvents slice as it
// came, snapshots and link changes between them.
type orderSink struct {
	slices [][]bridge.ChannelEvent
	log    []string
}

func (s *orderSink) LinkUp(int)                           { s.log = append(s.log, "up") }
func (s *orderSink) LinkDown(error)                       { s.log = append(s.log, "down") }
func (s *orderSink) Snapshot([]bridge.Channel, time.Time) { s.log = append(s.log, "snapshot") }
func (s *orderSink) ChannelEvents(evs []bridge.ChannelEvent) {
	s.slices = append(s.slices, evs)
	s.log = append(s.log, "events")
}

// Added messages reach the sink in slices of at most maxPending, in order,
// exactly as the same messages handed one by one; nothing is lost at the
// batch's end.
func TestMapperBatchesAsMessageDoes(t *testing.T) {
	paths, _ := filepath.Glob("testdata/sip/*.ami")
	batched := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".sent.ami") {
			continue
		}
		frs := frames(t, strings.TrimSuffix(p, ".ami"))
		one, many := &chanSink{}, &orderSink{}
		mOne := NewMapper(context.Background(), one, nil, nil, "CALL_DIRECTION")
		mMany := NewMapper(context.Background(), many, nil, nil, "CALL_DIRECTION")
		for i, fr := range frs {
			m, err := Parse([]byte(fr))
			if err != nil {
				continue
			}
			mOne.Message(m)
			mMany.Add(m, len(frs)-1-i)
		}
		mMany.Flush()
		got := &chanSink{}
		for _, s := range many.slices {
			if len(s) > maxPending {
				t.Fatalf("%s: a slice of %d events", p, len(s))
			}
			got.ChannelEvents(s)
		}
		if !reflect.DeepEqual(got.evs, one.evs) {
			t.Fatalf("%s: batched, the sink got %d events; one by one, %d (or others)", p, len(got.evs), len(one.evs))
		}
		if len(many.slices) < len(one.evs) {
			batched++
		}
	}
	if batched == 0 {
		t.Fatal("no capture's events were handed on in fewer slices than events")
	}
}

// What was added before a snapshot's end or a link change reaches the sink
// before it, even with no Flush between them.
func TestMapperFlushesBeforeOtherCalls(t *testing.T) {
	s := &orderSink{}
	m := NewMapper(context.Background(), s, nil, nil)
	m.Connected(ConnInfo{Session: 1})
	m.Flush()
	s.log = nil
	newchannel := func(id string) {
		msg, err := Parse([]byte("Event: Newchannel\r\nChannel: PJSIP/100-1\r\nUniqueid: " + id + "\r\nLinkedid: " + id + "\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		m.Add(msg, 5)
	}
	newchannel("1.1")
	end, err := Parse([]byte("Event: CoreShowChannelsComplete\r\nActionID: " + m.resyncID + "\r\nListItems: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m.Add(end, 4)
	newchannel("1.2")
	m.Disconnected(nil)
	newchannel("1.3")
	m.Connected(ConnInfo{Session: 2})
	newchannel("1.4")
	m.AttemptFailed(nil)
	want := []string{"events", "snapshot", "events", "down", "events", "up", "events", "down"}
	if !reflect.DeepEqual(s.log, want) {
		t.Fatalf("sink saw %v, want %v", s.log, want)
	}
}

// FuzzMapperBatch: whatever the frames and wherever the client's batches
// end, the sink gets what the same frames give one by one, in order, in
// slices of at most maxPending.
func FuzzMapperBatch(f *testing.F) {
	seedCaptures(f, true)
	f.Fuzz(func(t *testing.T, data []byte, cuts uint16) {
		var msgs []*goami2.Message
		for _, fr := range bytes.SplitAfter(data, []byte("\r\n\r\n")) {
			if m, err := Parse(fr); err == nil {
				msgs = append(msgs, m)
			}
		}
		one, many := &chanSink{}, &orderSink{}
		mOne := NewMapper(context.Background(), one, nil, nil, "CALL_DIRECTION")
		mMany := NewMapper(context.Background(), many, nil, nil, "CALL_DIRECTION")
		for i, m := range msgs {
			mOne.Message(m)
			mMany.Add(m, int(cuts>>(i%16))&0xff) // any hint: it only sizes slices
			if cuts&(1<<(i%16)) != 0 {
				mMany.Flush()
			}
		}
		mMany.Flush()
		got := &chanSink{}
		for _, s := range many.slices {
			if len(s) == 0 || len(s) > maxPending {
				t.Fatalf("a slice of %d events", len(s))
			}
			got.ChannelEvents(s)
		}
		if !reflect.DeepEqual(got.evs, one.evs) {
			t.Fatalf("batched: %d events; one by one: %d (or others)", len(got.evs), len(one.evs))
		}
	})
}
