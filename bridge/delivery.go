package bridge

import (
	"context"
	"time"
)

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
