package webhooks

import "time"

// Unexported pieces the external tests check directly.
var ParseRetryAfter = parseRetryAfter

func (d *Dispatcher) Backoff(n int) time.Duration { return d.backoff(n) }
