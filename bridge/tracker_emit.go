package bridge

import (
	"slices"
	"strings"
	"time"
)

// Emitting: the CRM's view of a call at each event, its direction and
// numbers.

// emit appends an event for c with a fresh id and the next sequence.
func (t *Tracker) emit(c *conversation, typ string, at time.Time, fill func(*Event)) {
	switch {
	case c.ResumeAt == nil || typ == EventCallResumed || typ == EventCallRingEnded:
		// A consultation's ring ending is told before the resume: Asterisk
		// puts the transferer back before it hangs the unanswered
		// consultation up, but the failed attempt is why.
	case typ == EventCallEnded:
		// The key's hold ended with the call (its agent or customer hung
		// up while the PBX collected the digits): nobody resumed.
		c.ResumeAt = nil
	default:
		// Anything else the call does first tells its resume (a transfer
		// has unheld it silently).
		t.resume(c, *c.ResumeAt)
	}
	if at.Before(c.lastAt) && typ == EventCallResumed {
		at = c.lastAt // told after an event that came later
	}
	c.lastAt = at
	t.direction(c)
	if !c.TenantFixed {
		// No rule matched before the first event: the default, for good.
		c.Call.Tenant, c.TenantFixed = t.cfg.Tenants.Default, true
	}
	c.Seq++
	snap := c.snapshot()
	e := Event{ID: NewID("evt_"), Type: typ, OccurredAt: at.UTC(), Sequence: c.Seq, PBX: t.cfg.PBX,
		ConversationID: c.ID, Call: &snap, Tenant: c.Call.Tenant}
	if fill != nil {
		fill(&e)
	}
	t.learnAgentTenant(e.Agent, c.Call.Tenant)
	t.out = append(t.out, e)
	t.dirty[c.ID] = c
}

// direction settles the call's direction from the configured rules, once
// enough is known; a dialplan variable always wins.
func (t *Tracker) direction(c *conversation) {
	if c.Call.Variables["direction"] != "" || c.DirectionFixed {
		t.numbers(c)
		return
	}
	if c.Outbound || c.PBXDialled {
		c.Call.Direction = DirectionOutbound
	} else {
		var caller *leg
		for _, l := range c.Legs {
			if l.Role == roleCaller {
				caller = l
			}
		}
		callerInternal := t.cfg.AgentPattern.MatchString(c.Call.Caller.Number)
		// A feature code (*97, **1000: voicemail, pickup, intercept) is the
		// PBX's own service, never an outside number.
		calleeInternal := t.cfg.AgentPattern.MatchString(c.Call.Callee.Number) || strings.HasPrefix(c.Call.Callee.Number, "*")
		calleeUnknown := c.Call.Callee.Number == "" || c.Call.Callee.Number == "s"
		switch {
		case caller != nil && (slices.Contains(t.cfg.InboundContexts, caller.Context) ||
			(t.cfg.TrunkPattern != nil && caller.nameMatches(t.cfg.TrunkPattern))):
			c.Call.Direction = DirectionInbound
		case callerInternal && calleeUnknown:
			// An agent's call whose destination is not known yet.
		case callerInternal && (calleeInternal || dialsAgent(c)):
			// A code that dials an agent's own device (intercom 8<ext>,
			// a group number) keeps the call inside the PBX.
			c.Call.Direction = DirectionInternal
		case callerInternal:
			c.Call.Direction = DirectionOutbound
		case c.Call.Caller.Number != "":
			c.Call.Direction = DirectionInbound
		}
	}
	// The first event settles it: a caller leg that hangs up first or a
	// transfer must not turn an inbound call internal at its end.
	c.DirectionFixed = c.Call.Direction != DirectionUnknown
	t.numbers(c)
}

func (t *Tracker) numbers(c *conversation) {
	if t.cfg.Numbers == nil {
		return
	}
	// Parsing a number is the dearest step of an event: a number seen at
	// the last event takes the result kept then.
	for i, p := range []*Party{&c.Call.Caller, &c.Call.Callee} {
		if !c.e164Done[i] || p.Number != c.e164Of[i] {
			c.e164Of[i], c.e164Is[i], c.e164Done[i] = p.Number, t.cfg.Numbers.E164(p.Number), true
		}
		p.E164 = c.e164Is[i]
	}
}

// snapshot is the call as a CRM sees it now.
func (c *conversation) snapshot() Call {
	s := c.Call
	if c.Call.Variables != nil {
		s.Variables = make(map[string]string, len(c.Call.Variables))
		for k, v := range c.Call.Variables {
			s.Variables[k] = v
		}
	}
	return s
}

var q850 = map[int]string{
	1: "Unallocated (unassigned) number", 3: "No route to destination", 16: "Normal Clearing",
	17: "User busy", 18: "No user responding", 19: "No answer from user (user alerted)",
	21: "Call Rejected", 27: "Destination out of order", 28: "Invalid number format (address incomplete)",
	31: "Normal, unspecified", 34: "No circuit/channel available", 38: "Network out of order",
	41: "Temporary failure", 42: "Switching equipment congestion", 127: "Interworking, unspecified",
}

// dialsAgent reports whether the call dialled an agent's device.
func dialsAgent(c *conversation) bool {
	for _, l := range c.Legs {
		if l.Role == roleAgent && l.Dialled {
			return true
		}
	}
	return false
}
