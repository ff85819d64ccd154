package webhooks

import (
	"testing"
	"time"
)

// stepClock is a Clock whose time the test sets.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time                 { return c.now }
func (c *stepClock) NewTimer(d time.Duration) Timer { panic("not used") }

// logTurn logs a state the log was not told, at most once a quiet minute,
// and counts the turns it kept back for the next line.
func TestLogTurnCountsWhatItKeepsBack(t *testing.T) {
	clock := &stepClock{now: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)}
	e := &endpoint{d: &Dispatcher{clock: clock}}
	type step struct {
		failing, turned bool
		after           time.Duration // clock moves this much first
		wantLog         bool
		wantUnlogged    int64
	}
	for i, s := range []step{
		{failing: true, turned: true, wantLog: true},                              // starts failing: said
		{failing: false, turned: true},                                            // recovered within the minute: kept back (1)
		{failing: true, turned: true},                                             // failing again: same as said, kept back (2)
		{failing: true},                                                           // still failing: no turn
		{failing: false, turned: true, after: 30 * time.Second},                   // kept back (3)
		{failing: false, after: 31 * time.Second, wantLog: true, wantUnlogged: 3}, // a minute on, still well: said, with the 3
		{failing: false},                                                          // nothing new
		{failing: true, turned: true, after: 2 * time.Minute, wantLog: true},      // a new outage: said at once
	} {
		clock.now = clock.now.Add(s.after)
		n, ok := e.logTurn(s.failing, s.turned)
		if ok != s.wantLog || n != s.wantUnlogged {
			t.Fatalf("step %d %+v: logged %v with %d unlogged", i, s, ok, n)
		}
	}
}
