package bridge

import (
	"context"
	"time"
)

// ConversationRecord is a conversation as kept in the call history. State is
// the tracker's opaque snapshot, used to adopt live calls after a restart.
type ConversationRecord struct {
	Call      Call
	LastSeq   int64  // last Event.Sequence issued for it
	Open      bool   // false once call.ended has been emitted
	Discard   bool   // merged into another before any event: delete its row
	State     []byte // tracker snapshot (JSON)
	UpdatedAt time.Time
}

// Batch is what the bridge commits in one transaction: new events (each with
// the endpoints it is due to) and the conversations they changed.
type Batch struct {
	Events        []PendingEvent
	Conversations []ConversationRecord
}

// PendingEvent is an event and the endpoints that must receive it.
type PendingEvent struct {
	Record
	EndpointIDs []string
}

// Outbox is the durable event log. Commit returns only once the batch is on
// disk with the configured durability; the Seq of each record is filled in.
type Outbox interface {
	Commit(ctx context.Context, b *Batch) error
	// OpenConversations returns conversations not yet ended, for adoption
	// after a restart.
	OpenConversations(ctx context.Context) ([]ConversationRecord, error)
	// LatestAgentStates returns the newest agent.state of each agent per
	// queue, so a restart does not report unchanged states again.
	LatestAgentStates(ctx context.Context) ([]Record, error)
}
