package bridge

import (
	"context"
	"slices"
	"time"
)

// DefaultStateHoldMax bounds how long a call's working state, changed by PBX
// events that gave the CRM nothing, waits in memory before it is written.
//
// Why hold it at all: most of a call's PBX events (a new channel, a dial,
// a bridge of two local channels) change only the tracker's state of the
// call. Written as they came, they were half of the transactions a call
// costs (3.4 of 6.8 on Asterisk), each one system calls, WAL frames and
// thread wake-ups on the host's CPU. Held, a call's state goes with its
// next event (that commit carries the newest record of the call), and what
// other calls hold is written together once DefaultStateHoldMax has passed:
// not with another call's event, whose commit (a screen pop's, say) would
// only be slower for it.
//
// What it risks: only working state newer than every committed event. A
// crash inside the window restarts the tracker from the state of the last
// event (consistent with the outbox, which is all a CRM has seen), as if
// the crash had come a little earlier; the resync with the PBX's live
// channels after the restart settles the rest, as it does for the events
// a crashed process never read.
const DefaultStateHoldMax = 500 * time.Millisecond

// holdState keeps convs (from a batch that emitted no event) for the next
// commit. The newest record of a call replaces an older one.
func (e *Engine) holdState(convs []ConversationRecord) {
	if e.held == nil {
		e.held = make(map[string]int)
	}
	for _, c := range convs {
		if i, ok := e.held[c.Call.ID]; ok {
			e.heldConvs[i] = c
			continue
		}
		e.held[c.Call.ID] = len(e.heldConvs)
		e.heldConvs = append(e.heldConvs, c)
	}
	if e.holdTimer == nil {
		e.holdTimer = time.NewTimer(e.holdMax)
	} else if !e.holding {
		e.holdTimer.Reset(e.holdMax)
	}
	e.holding = true
}

// takeHeld returns the held records a commit of convs must carry too (those
// convs do not supersede), and forgets them: for a commit that must leave
// nothing held (Do, a snapshot, shutdown).
func (e *Engine) takeHeld(convs []ConversationRecord) []ConversationRecord {
	e.supersede(convs)
	if !e.holding {
		return convs
	}
	out := append(slices.Clone(e.heldConvs), convs...)
	e.dropHeld()
	return out
}

// supersede forgets the held records of the calls convs write anew: a
// commit of convs leaves the other calls' state held.
func (e *Engine) supersede(convs []ConversationRecord) {
	if !e.holding {
		return
	}
	for _, c := range convs {
		i, ok := e.held[c.Call.ID]
		if !ok {
			continue
		}
		last := len(e.heldConvs) - 1
		if i != last {
			e.heldConvs[i] = e.heldConvs[last]
			e.held[e.heldConvs[i].Call.ID] = i
		}
		e.heldConvs[last] = ConversationRecord{}
		e.heldConvs = e.heldConvs[:last]
		delete(e.held, c.Call.ID)
	}
	if len(e.heldConvs) == 0 {
		e.dropHeld()
	}
}

func (e *Engine) dropHeld() {
	clear(e.held)
	clear(e.heldConvs) // the records pin state JSON
	e.heldConvs = e.heldConvs[:0]
	e.holding = false
	e.holdTimer.Stop()
}

// holdExpired is the timer's channel while state is held, nil otherwise.
func (e *Engine) holdExpired() <-chan time.Time {
	if !e.holding {
		return nil
	}
	return e.holdTimer.C
}

// holdDue reports whether held state has waited its longest.
func (e *Engine) holdDue() bool { return fired(e.holdExpired()) }

// fired reports whether a timer's channel (nil: no timer) has fired,
// without waiting.
func fired(c <-chan time.Time) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// flushHeld writes the held state on its own.
func (e *Engine) flushHeld(ctx context.Context) error {
	if !e.holding {
		return nil
	}
	convs := e.takeHeld(nil)
	return e.commit(ctx, nil, convs, func() {})
}
