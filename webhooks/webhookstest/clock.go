package webhookstest

import (
	"slices"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/webhooks"
)

// Clock is a fake webhooks.Clock. Time moves only when told to (Advance,
// AdvanceTo, AdvanceToNext), or, in auto mode, jumps to each timer's
// deadline as soon as the timer is made, so retry schedules of hours run in
// microseconds while keeping their order.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	timers  []*fakeTimer
	changed chan struct{}
}

var _ webhooks.Clock = (*Clock)(nil)

// NewClock returns a manual clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// NewAutoClock returns a clock in auto mode.
func NewAutoClock(start time.Time) *Clock {
	c := NewClock(start)
	c.auto = true
	return c
}

// Now implements webhooks.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements webhooks.Clock.
func (c *Clock) NewTimer(d time.Duration) webhooks.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if c.auto {
		if t.at.After(c.now) {
			c.now = t.at
		}
		t.ch <- c.now
		return t
	}
	if !t.at.After(c.now) {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.notify()
	return t
}

// Advance moves the clock forward by d, firing the timers that come due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	now := c.now.Add(d)
	c.mu.Unlock()
	c.AdvanceTo(now)
}

// AdvanceTo sets the clock to t (if later) and fires the timers due by then.
func (c *Clock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	c.timers = slices.DeleteFunc(c.timers, func(ft *fakeTimer) bool {
		if ft.at.After(c.now) {
			return false
		}
		ft.ch <- c.now
		return true
	})
	c.notify()
}

// Deadlines returns the pending timers' deadlines, earliest first.
func (c *Clock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Time
	for _, t := range c.timers {
		ds = append(ds, t.at)
	}
	slices.SortFunc(ds, time.Time.Compare)
	return ds
}

// WaitForTimer waits (in real time, up to timeout) until a timer is pending
// and returns the earliest deadline.
func (c *Clock) WaitForTimer(timeout time.Duration) (time.Time, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ch := c.changed
		var first time.Time
		for _, t := range c.timers {
			if first.IsZero() || t.at.Before(first) {
				first = t.at
			}
		}
		c.mu.Unlock()
		if !first.IsZero() {
			return first, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return time.Time{}, false
		}
	}
}

// AdvanceToNext waits for a pending timer and moves the clock to its
// deadline, firing it. It returns the new time.
func (c *Clock) AdvanceToNext(timeout time.Duration) (time.Time, bool) {
	at, ok := c.WaitForTimer(timeout)
	if ok {
		c.AdvanceTo(at)
	}
	return at, ok
}

func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTimer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// Stop removes the timer and drains a fired value, like time.Timer since
// Go 1.23.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(ft *fakeTimer) bool { return ft == t })
	select {
	case <-t.ch:
	default:
	}
	if len(t.c.timers) != n {
		t.c.notify()
		return true
	}
	return false
}
