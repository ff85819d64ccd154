package http

import (
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// A stream client that does not keep up is cut off, never waited for: the
// engine's commit must not block on it.
func TestHubCutsSlowClient(t *testing.T) {
	h := newHub()
	slow := &subscriber{ch: make(chan bridge.Record, 1), cut: make(chan struct{})}
	fast := &subscriber{ch: make(chan bridge.Record, 8), cut: make(chan struct{})}
	h.subscribe(slow)
	h.subscribe(fast)
	recs := []bridge.Record{{Seq: 1, Type: "call.ringing"}, {Seq: 2, Type: "call.answered"}, {Seq: 3, Type: "call.ended"}}
	h.publish(recs) // returns although slow holds one at most
	select {
	case <-slow.cut:
	default:
		t.Fatal("slow client not cut")
	}
	if len(fast.ch) != 3 {
		t.Fatalf("fast client got %d", len(fast.ch))
	}
	h.publish([]bridge.Record{{Seq: 4, Type: "call.ringing"}})
	if len(slow.ch) != 1 || len(fast.ch) != 4 || len(h.subs) != 1 {
		t.Fatalf("after cut: slow %d fast %d subs %d", len(slow.ch), len(fast.ch), len(h.subs))
	}
}

func TestSubscriberFilters(t *testing.T) {
	rec := func(typ, payload string) bridge.Record { return bridge.Record{Type: typ, Payload: []byte(payload)} }
	ringing := rec("call.ringing", `{"agent":{"extension":"100"},"call":{"id":"c"}}`)
	answered := rec("call.answered", `{"call":{"agent":{"extension":"101"}}}`)
	moved := rec("call.transferred", `{"transfer":{"from":{"extension":"100"},"to":"600"},"call":{}}`)
	ping := rec("webhook.test", `{}`)
	cases := []struct {
		sub  *subscriber
		want []bool
	}{
		{&subscriber{}, []bool{true, true, true, false}},
		{&subscriber{agent: "100"}, []bool{true, false, true, false}},
		{&subscriber{types: []string{"call.answered", "call.t*"}}, []bool{false, true, true, false}},
	}
	for i, c := range cases {
		for j, r := range []bridge.Record{ringing, answered, moved, ping} {
			if got := c.sub.wants(r); got != c.want[j] {
				t.Errorf("case %d record %d: %v", i, j, got)
			}
		}
	}
}
