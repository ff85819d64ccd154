package connectors

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when the limiter sleeps.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

// The bucket gives its burst at once, then Rate per second; Drain makes
// the next request wait a whole refill interval.
func TestLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewLimiter(50, 2)
	l.SetClock(clk.now, clk.sleep)
	ctx := context.Background()
	for i := range 50 {
		if err := l.Wait(ctx); err != nil || clk.slept != 0 {
			t.Fatalf("request %d of the burst waited %s (%v)", i+1, clk.slept, err)
		}
	}
	for range 10 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 10 more at 2/s: 5 seconds of refill.
	if clk.slept < 5*time.Second-10*time.Millisecond || clk.slept > 5*time.Second+10*time.Millisecond {
		t.Errorf("10 requests past the burst waited %s, want 5s", clk.slept)
	}
	clk.mu.Lock()
	clk.t = clk.t.Add(time.Hour) // the bucket is full again
	clk.slept = 0
	clk.mu.Unlock()
	l.Drain()
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if clk.slept < 490*time.Millisecond {
		t.Errorf("after Drain the next request waited %s, want 500ms", clk.slept)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	l.Drain()
	l.SetClock(clk.now, sleepCtx)
	if err := l.Wait(cctx); err == nil {
		t.Error("Wait on an ended context with an empty bucket returned nil")
	}
}
