package bridge

import (
	"context"
	"path"
	"time"
)

// Endpoint is a webhook subscriber.
type Endpoint struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"-"` // whsec_<base64>; never logged or returned after creation
	// PreviousSecret, during a rotation, is the secret being retired:
	// requests carry a signature for each, so receivers holding either
	// verify them. Empty outside a rotation.
	PreviousSecret string   `json:"-"`
	Events         []string `json:"events"`
	Source         string   `json:"source"` // "config" or "api"
	Disabled       bool     `json:"disabled"`
	// DisabledReason says why, e.g. "endpoint answered 410 Gone".
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Wants reports whether the endpoint subscribes to an event type. Filters are
// exact types or path.Match-style patterns such as "call.*"; no filter means
// every type.
func (e Endpoint) Wants(eventType string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, f := range e.Events {
		if f == "*" || f == eventType {
			return true
		}
		if ok, _ := path.Match(f, eventType); ok {
			return true
		}
	}
	return false
}

// DeliveryStatus is where one event stands with one endpoint.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryDead      DeliveryStatus = "dead"     // retry window exhausted; replayable
	DeliveryDisabled  DeliveryStatus = "disabled" // the endpoint answered 410 or was removed
)

// Delivery is one event due to one endpoint.
type Delivery struct {
	Record
	EndpointID    string
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt time.Time
	FirstTriedAt  time.Time // zero until the first attempt
}

// Attempt is one HTTP try of a delivery, kept for the attempt log.
type Attempt struct {
	EventID    string        `json:"event_id"`
	EndpointID string        `json:"endpoint_id"`
	At         time.Time     `json:"at"`
	StatusCode int           `json:"status_code"` // 0 when no response came
	Latency    time.Duration `json:"latency_ns"`
	Error      string        `json:"error,omitempty"`
	// Outcome is the delivery's status after this attempt.
	Outcome       DeliveryStatus `json:"outcome"`
	NextAttemptAt time.Time      `json:"next_attempt_at,omitempty"` // when Outcome is pending
}

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

// DeliveryStore is what the webhook dispatcher needs from the store.
type DeliveryStore interface {
	// PendingDeliveries returns pending deliveries of one endpoint with
	// Seq > afterSeq in Seq order, at most limit, payload included.
	PendingDeliveries(ctx context.Context, endpointID string, afterSeq int64, limit int) ([]Delivery, error)
	// RecordAttempt appends to the attempt log and updates the delivery's
	// status, attempt count and next try, atomically.
	RecordAttempt(ctx context.Context, a Attempt) error
	// DisableEndpoint marks an endpoint disabled (e.g. after 410 Gone) and its
	// pending deliveries disabled.
	DisableEndpoint(ctx context.Context, endpointID, reason string) error
}

// Notifier is told about deliveries right after their commit, so delivery is
// pushed, not polled.
type Notifier interface {
	Notify(ds []Delivery)
}
