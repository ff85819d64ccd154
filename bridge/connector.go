package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Connector turns committed events into a CRM's own API calls. It is
// delivered to like a webhook endpoint (an Endpoint whose ID the dispatcher
// maps to it): the same deliveries, per-conversation order, retries, dead
// letters, replay and attempt log; only the "send" differs.
//
// Deliver handles one event. It may make zero or more CRM requests; the
// state it needs across the events of a call (the CRM's call id, what was
// already done) it keeps in a ConnectorStateStore, saved after each request
// that changed it, so a retry or a restart resumes rather than repeats. A
// nil error means the event is done. Errors are retried within the retry
// window unless they are a *ConnectorError with Permanent set.
type Connector interface {
	Name() string
	Deliver(ctx context.Context, rec Record) error
}

// ConnectorError is a connector failure with what the dispatcher needs to
// decide: retry (after RetryAfter, or the backoff) or dead-letter it.
// Its message goes into the attempt log: it must hold no secret.
type ConnectorError struct {
	StatusCode int           // the CRM's HTTP status, 0 if none
	RetryAfter time.Duration // what the CRM asked to wait, 0 for the backoff
	Permanent  bool          // retrying cannot help (bad config, refused input): dead-letter it
	Err        error
}

func (e *ConnectorError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("connector error (HTTP %d)", e.StatusCode)
	}
	return e.Err.Error()
}
func (e *ConnectorError) Unwrap() error { return e.Err }

// PermanentError marks err as one no retry can fix.
func PermanentError(err error) error { return &ConnectorError{Permanent: true, Err: err} }

// ConnectorOutcome reads a Deliver error as a status code, a wait the CRM
// asked for and whether it is permanent.
func ConnectorOutcome(err error) (code int, retryAfter time.Duration, permanent bool) {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce.StatusCode, ce.RetryAfter, ce.Permanent
	}
	return 0, 0, false
}

// ConnectorStateStore keeps each connector's per-conversation state (JSON)
// so that later events, retries and restarts see what the CRM answered.
type ConnectorStateStore interface {
	// ConnectorState returns the saved state, nil when there is none.
	ConnectorState(ctx context.Context, connector, conversationID string) ([]byte, error)
	SaveConnectorState(ctx context.Context, connector, conversationID string, state []byte) error
}
