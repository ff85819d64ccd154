package esl

import (
	"context"
	"time"
)

// SetSleep replaces the backoff wait, so tests see the delays without
// waiting them out.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }
