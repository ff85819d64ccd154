package http

import (
	"errors"
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
			if got := c.sub.early(r); got != c.want[j] {
				t.Errorf("case %d record %d: %v", i, j, got)
			}
		}
	}
}

// An agent stream that opens in the middle of calls asks the store once
// per conversation whether the agent was named before; a conversation it
// saw from its first event needs no question; a store error admits
// nothing and is asked again.
func TestAgentFilterAsksOncePerConversation(t *testing.T) {
	asked := map[string]int{}
	fail := false
	f := newAgentFilter("100", func(conv string, seq int64) (bool, error) {
		asked[conv]++
		if fail {
			return false, errors.New("disk I/O error")
		}
		return conv == "mine-before", nil
	})
	rec := func(conv string, seq, sequence int64, payload string) bridge.Record {
		return bridge.Record{Seq: seq, Type: "call.answered", ConversationID: conv, Sequence: sequence, Payload: []byte(payload)}
	}
	other := `{"call":{"agent":{"extension":"101"}}}`
	steps := []struct {
		r    bridge.Record
		want bool
	}{
		{rec("mine-before", 10, 4, other), true}, // asked: named 100 before
		{rec("mine-before", 11, 5, other), true}, // known
		{rec("not-mine", 12, 3, other), false},   // asked: never named 100
		{rec("not-mine", 13, 4, other), false},   // known
		{rec("not-mine", 14, 5, `{"agent":{"extension":"100"}}`), true},
		{rec("not-mine", 15, 6, other), true},
		{rec("new", 16, 1, other), false}, // seen from its start: nothing to ask
		{rec("new", 17, 2, other), false},
		{bridge.Record{Seq: 18, Type: "agent.state", Payload: []byte(`{"agent":{"extension":"100"}}`)}, true},
		{bridge.Record{Seq: 19, Type: "agent.state", Payload: []byte(`{"agent":{"extension":"101"}}`)}, false},
	}
	for i, s := range steps {
		if got, err := f.admits(s.r); got != s.want || err != nil {
			t.Fatalf("step %d: admits = %v, %v; want %v", i, got, err, s.want)
		}
	}
	if asked["mine-before"] != 1 || asked["not-mine"] != 1 || asked["new"] != 0 {
		t.Fatalf("asked %v", asked)
	}
	fail = true
	for range 2 {
		if got, err := f.admits(rec("failing", 20, 7, other)); got || err == nil {
			t.Fatalf("store failed: admits = %v, %v", got, err)
		}
	}
	if asked["failing"] != 2 {
		t.Fatalf("a failed question is asked again: %v", asked)
	}
}
