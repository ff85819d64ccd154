package bridge

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// inbound returns the trunk channel of a distinct inbound call n.
func inbound(n int) Channel {
	c := trunk()
	c.ID, c.LinkedID = fmt.Sprintf("in%d.1", n), fmt.Sprintf("in%d.1", n)
	c.Name = fmt.Sprintf("PJSIP/trunk-%08d", n)
	c.CallerNum = fmt.Sprintf("+7495445%04d", n)
	return c
}

// agentLeg returns the agent channel 201 dialled for inbound call n.
func agentLeg(n int) Channel {
	c := ch(fmt.Sprintf("in%d.2", n), fmt.Sprintf("PJSIP/201-%08d", n))
	c.LinkedID = fmt.Sprintf("in%d.1", n)
	return c
}

func (o *fakeOutbox) snapshot() []*Batch {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*Batch(nil), o.batches...)
}

// committedConversations lists the call ids of every conversation record
// committed, batch by batch.
func committedConversations(bs []*Batch) [][]string {
	var out [][]string
	for _, b := range bs {
		var ids []string
		for _, c := range b.Conversations {
			ids = append(ids, c.Call.ID)
		}
		out = append(out, ids)
	}
	return out
}

// A call's working state changed by PBX events that give the CRM nothing
// waits; the live view has it at once; the call's next event commits its
// newest record, and only its own (another call's event leaves it held);
// Do writes every held call, and so does shutdown.
func TestEngineHoldsStateOnlyChangesForTheNextCommit(t *testing.T) {
	ob := &fakeOutbox{}
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{Endpoints: []Endpoint{{ID: "crm", Events: []string{"call.*"}}},
		StateHoldMax: time.Hour}) // only commits write here, never the timer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	ingested := func(n int64) func() bool { return func() bool { return e.Ingested.Load() == n } }

	// Two calls arrive: channels only, no CRM event yet.
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(1)})})
	waitFor(t, "first event handled", ingested(1))
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(2)})})
	waitFor(t, "second event handled", ingested(2))
	if bs := ob.snapshot(); len(bs) != 0 {
		t.Fatalf("state-only changes committed at once: %v", committedConversations(bs))
	}
	if got := len(e.Live()); got != 2 {
		t.Fatalf("live calls = %d, want 2: the live view must not wait for the commit", got)
	}
	var conv1, conv2 string
	for _, c := range e.Live() {
		switch c.Caller.Number {
		case inbound(1).CallerNum:
			conv1 = c.ID
		case inbound(2).CallerNum:
			conv2 = c.ID
		}
	}

	// Call 1 rings an agent: its event commits with call 1's newest
	// record; call 2's state stays held (the pop's commit is not made
	// slower by it).
	a := agentLeg(1)
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanDial, Channel: inbound(1), Peer: &a})})
	waitFor(t, "ring handled", ingested(3))
	bs := ob.snapshot()
	if len(bs) != 1 || len(bs[0].Events) != 1 || bs[0].Events[0].Type != EventCallRinging {
		t.Fatalf("batches = %v, want one with call.ringing", committedConversations(bs))
	}
	if ids := committedConversations(bs)[0]; len(ids) != 1 || ids[0] != conv1 || bs[0].Conversations[0].LastSeq == 0 {
		t.Fatalf("ring commit carries conversations %v, want call 1's newest record alone", ids)
	}

	// Do commits what is held before it returns: calls 2 and 3.
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(3)})})
	waitFor(t, "third call handled", ingested(4))
	if err := e.Do(ctx, func(*Tracker) {}); err != nil {
		t.Fatal(err)
	}
	bs = ob.snapshot()
	if len(bs) != 2 || len(bs[1].Conversations) != 2 || len(bs[1].Events) != 0 || !slices.Contains(committedConversations(bs)[1], conv2) {
		t.Fatalf("after Do: batches %v, want the second and third calls' state", committedConversations(bs))
	}

	// Shutdown writes what is held.
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(4)})})
	waitFor(t, "fourth call handled", ingested(5))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bs = ob.snapshot()
	if len(bs) != 3 || len(bs[2].Conversations) != 1 {
		t.Fatalf("after shutdown: batches %v, want the fourth call's state written", committedConversations(bs))
	}
}

// Held state is written on its own once StateHoldMax has passed, so a
// quiet PBX does not keep it in memory.
func TestEngineWritesHeldStateWhenNothingElseComes(t *testing.T) {
	ob := &fakeOutbox{}
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{StateHoldMax: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(1)})})
	waitFor(t, "held state written", func() bool { return len(ob.snapshot()) == 1 })
	if bs := ob.snapshot(); len(bs[0].Events) != 0 || len(bs[0].Conversations) != 1 {
		t.Fatalf("batch = %v with %d events", committedConversations(bs), len(bs[0].Events))
	}
	// Nothing more is held: the timer does not write it twice.
	e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(2)})})
	waitFor(t, "second held state written", func() bool { return len(ob.snapshot()) == 2 })
	if ids := committedConversations(ob.snapshot())[1]; len(ids) != 1 {
		t.Fatalf("second write = %v, want the second call only", ids)
	}
}

// The bound holds under a backlog too: batches that keep coming without a
// CRM event do not keep the state in memory past StateHoldMax.
func TestEngineWritesHeldStateDuringABacklog(t *testing.T) {
	ob := &fakeOutbox{}
	// 1 ns: the hold is over by the time a batch is done.
	e := NewEngine(newTestTracker(), ob, &fakeNotifier{ob: ob}, EngineOptions{StateHoldMax: time.Nanosecond})
	// Queued before Run: it takes them as two batches (maxBatch) back to
	// back, the queue never empty in between.
	calls := maxBatch + maxBatch/2
	for n := range calls {
		e.ChannelEvents([]ChannelEvent{adapt(ChannelEvent{Kind: ChanNew, Channel: inbound(n + 1)})})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, "every call handled", func() bool { return e.Ingested.Load() == int64(calls) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bs := ob.snapshot()
	if len(bs) < 2 || len(bs[0].Conversations) != maxBatch {
		var sizes []int
		for _, b := range bs {
			sizes = append(sizes, len(b.Conversations))
		}
		t.Fatalf("commits of %v conversations: the first batch's state must be written before the second batch is handled", sizes)
	}
}
