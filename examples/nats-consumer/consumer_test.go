package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ctibridge/ctibridge/bridge"
	natssink "github.com/ctibridge/ctibridge/sinks/nats"
	"github.com/ctibridge/ctibridge/sinks/nats/natstest"
)

type recorder struct {
	mu       sync.Mutex
	handled  []Event
	attempts map[string]int
	failOnce map[string]bool
}

func (r *recorder) handler(ctx context.Context, ev Event, raw []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[ev.ID]++
	if r.failOnce[ev.ID] && r.attempts[ev.ID] == 1 {
		return fmt.Errorf("CRM unavailable")
	}
	r.handled = append(r.handled, ev)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handled)
}

func record(conv string, n int64) bridge.Record {
	id := fmt.Sprintf("evt_%s_%d", conv, n)
	body, _ := json.Marshal(Event{ID: id, Type: "call.answered", ConversationID: conv, Sequence: n, OccurredAt: time.Now()})
	return bridge.Record{ID: id, Type: "call.answered", ConversationID: conv, Sequence: n, Payload: body}
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The example against a real server: events published by the real sink,
// conversations interleaved, are handled each conversation in order (a
// failing event retried in place, not overtaken), each event id once even
// when the stream holds it twice, and a restart of the durable consumer
// resumes after what was acked.
func TestConsumerOrderIdempotenceAndResume(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := natssink.New(natssink.Options{URLs: []string{srv.URL()}, PBX: "pbx1", CreateStream: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	convs := []string{"a", "b", "c", "d"}
	for n := int64(1); n <= 6; n++ {
		for _, c := range convs {
			if err := sink.Deliver(t.Context(), record(c, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The same event stored twice (a resend outside the duplicate window:
	// another Nats-Msg-Id, the same event id).
	nc, js := srv.JetStream()
	again := nats.NewMsg("ctibridge.default.pbx1.call_answered")
	again.Data = record("a", 6).Payload
	again.Header.Set("Ctibridge-Conversation-Id", "a")
	again.Header.Set("Nats-Msg-Id", "evt_a_6-resent")
	if msg, err := nc.RequestMsg(again, 5*time.Second); err != nil {
		t.Fatal(err)
	} else if string(msg.Data) == "" {
		t.Fatal("no PubAck")
	}

	seen := NewMemorySeen()
	r := &recorder{attempts: map[string]int{}, failOnce: map[string]bool{"evt_b_3": true}}
	opts := Options{Stream: natssink.DefaultStreamName, Durable: "crm-test", Filter: "ctibridge.>", Workers: 3, Seen: seen, Logger: quiet}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, srv.URL(), "", opts, r.handler) }()
	wait(t, "24 events handled", func() bool { return r.count() == 24 })
	// A handler's count moves before its message is acked, and the resent
	// duplicate is acked without a handling: stop only once the server holds
	// every message acked, or the restart below rightly gets one again.
	wait(t, "every message acked", func() bool {
		c, err := js.Consumer(t.Context(), natssink.DefaultStreamName, "crm-test")
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	last := map[string]int64{}
	ids := map[string]int{}
	for _, ev := range r.handled {
		ids[ev.ID]++
		if ev.Sequence != last[ev.ConversationID]+1 {
			t.Errorf("conversation %s: %d after %d", ev.ConversationID, ev.Sequence, last[ev.ConversationID])
		}
		last[ev.ConversationID] = ev.Sequence
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s handled %d times", id, n)
		}
	}
	if r.attempts["evt_b_3"] != 2 {
		t.Errorf("evt_b_3 attempts %d, want a failure then a success", r.attempts["evt_b_3"])
	}

	// Restart with a fresh Seen store: only what came after the acked
	// position is delivered at all.
	for _, c := range convs {
		if err := sink.Deliver(t.Context(), record(c, 7)); err != nil {
			t.Fatal(err)
		}
	}
	r2 := &recorder{attempts: map[string]int{}, failOnce: map[string]bool{}}
	opts.Seen = NewMemorySeen()
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- run(ctx, srv.URL(), "", opts, r2.handler) }()
	wait(t, "the 4 new events", func() bool { return r2.count() == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ev := range r2.handled {
		if ev.Sequence != 7 {
			t.Errorf("after the restart %s was handled again", ev.ID)
		}
	}
}
