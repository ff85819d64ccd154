package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Event is the part of a ctibridge event (the webhook body, README "Events")
// this example reads. A real integration reads more of it: the call's
// numbers, agent, direction, recording.
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	ConversationID string    `json:"conversation_id"`
	Sequence       int64     `json:"sequence"`
	OccurredAt     time.Time `json:"occurred_at"`
}

// Handler does the CRM's work for one event. An error is retried in place
// (the conversation waits), so a conversation's events are handled in order
// even when the CRM fails for a while.
type Handler func(ctx context.Context, ev Event, raw []byte) error

// Options configure a Consumer.
type Options struct {
	Stream  string // the stream ctibridge publishes to (sinks.nats.stream)
	Durable string // one durable consumer per CRM integration: its position survives restarts
	Filter  string // e.g. ctibridge.> or ctibridge.acme.> for one tenant
	Workers int    // conversations handled at once
	AckWait time.Duration
	// Seen remembers the event ids already handled (idempotence). Use the
	// CRM's database in production (a unique key on the event id); the
	// default keeps them in memory, which a restart forgets.
	Seen   SeenStore
	Logger *slog.Logger
}

// SeenStore records handled event ids. MarkSeen must be durable before the
// message is acked, or a crash between the two handles the event twice.
type SeenStore interface {
	Seen(ctx context.Context, eventID string) (bool, error)
	MarkSeen(ctx context.Context, eventID string) error
}

// Consumer reads the stream with a durable pull consumer.
//
// Order. ctibridge publishes a conversation's event N+1 only after N is in
// the stream, so the stream holds each conversation in order. The consumer
// keeps it: messages are dispatched by conversation id to a fixed worker,
// each worker handles its messages one at a time in stream order, and a
// failing event is retried in place (with InProgress keeping the server
// from redelivering it) rather than nak'ed, which would let the next one
// overtake it. Different conversations run in parallel on other workers.
//
// At least once. A message is acked (and the ack confirmed) only after the
// handler succeeded and its id was marked seen; a crash before the ack gets
// the message redelivered, and Seen makes the second handling a no-op. The
// stream may also hold one event twice (a resend outside its duplicate
// window): the same id, the same no-op.
type Consumer struct {
	opts Options
	js   jetstream.JetStream
	h    Handler
	log  *slog.Logger
}

// NewConsumer returns a consumer; Run starts it.
func NewConsumer(js jetstream.JetStream, h Handler, opts Options) *Consumer {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Seen == nil {
		opts.Seen = NewMemorySeen()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Consumer{opts: opts, js: js, h: h, log: opts.Logger}
}

// Run consumes until ctx ends. Messages not yet acked then are redelivered
// to the next run (the durable consumer keeps the position).
func (c *Consumer) Run(ctx context.Context) error {
	o := c.opts
	cons, err := c.js.CreateOrUpdateConsumer(ctx, o.Stream, jetstream.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "CRM integration reading ctibridge events",
		FilterSubject: o.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1, // never give an event up: the handler retries in place
		// Bounds what is handed out unacked: workers × a small queue each.
		MaxAckPending: o.Workers * 64,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", o.Durable, o.Stream, err)
	}

	queues := make([]chan jetstream.Msg, o.Workers)
	var wg sync.WaitGroup
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range queues[i] {
				c.handle(wctx, m)
			}
		}()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// The conversation picks the worker; events without one (agent
		// states) go by their id.
		key := m.Headers().Get("Ctibridge-Conversation-Id")
		if key == "" {
			key = m.Headers().Get("Nats-Msg-Id")
		}
		h := fnv.New32a()
		h.Write([]byte(key))
		select {
		case queues[h.Sum32()%uint32(len(queues))] <- m:
		case <-wctx.Done(): // stopping: it is redelivered next run
		}
	}, jetstream.PullMaxMessages(o.Workers*16), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		c.log.Warn("consume", "err", err)
	}))
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop() // workers drop what they hold: it is redelivered next run
	cc.Stop()
	<-cc.Closed()
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return nil
}

// handle runs the handler for one message until it succeeds (or the
// consumer stops), then marks the event seen and acks it.
func (c *Consumer) handle(ctx context.Context, m jetstream.Msg) {
	var ev Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
		// Not a ctibridge event: retrying cannot help. Term stops
		// redelivery; log it for a human.
		c.log.Error("not a ctibridge event; terminated", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return // not acked: redelivered to the next run
		}
		err := c.once(ctx, ev, m)
		if err == nil {
			return
		}
		c.log.Warn("event handling failed; retrying in place", "event", ev.ID, "attempt", attempt, "err", err)
		_ = m.InProgress() // keep it ours while we retry
		t := time.NewTimer(min(time.Duration(attempt)*200*time.Millisecond, 10*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func (c *Consumer) once(ctx context.Context, ev Event, m jetstream.Msg) error {
	seen, err := c.opts.Seen.Seen(ctx, ev.ID)
	if err != nil {
		return err
	}
	if !seen {
		if err := c.h(ctx, ev, m.Data()); err != nil {
			return err
		}
		if err := c.opts.Seen.MarkSeen(ctx, ev.ID); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.DoubleAck(actx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return fmt.Errorf("ack: %w", err) // handled and seen: the retry only acks
	}
	return nil
}

// MemorySeen is an in-memory SeenStore, for the example and tests.
type MemorySeen struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// NewMemorySeen returns an empty store.
func NewMemorySeen() *MemorySeen { return &MemorySeen{ids: map[string]struct{}{}} }

// Seen implements SeenStore.
func (s *MemorySeen) Seen(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok, nil
}

// MarkSeen implements SeenStore.
func (s *MemorySeen) MarkSeen(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = struct{}{}
	return nil
}
