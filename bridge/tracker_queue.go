package bridge

import (
	"slices"
	"strings"
	"time"
)

// Queues, recordings, variables, failed originates and agent states.

func (t *Tracker) variable(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		return
	}
	if c := l.conv; !c.TenantFixed && c.Seq == 0 {
		t.settleTenant(c, Channel{Vars: map[string]string{ev.Name: ev.Value}})
	}
	switch {
	case t.cfg.DirectionVar != "" && ev.Name == t.cfg.DirectionVar:
		t.setDirectionVar(l.conv, ev.Value)
	case ev.Name == VarRecordingFile:
		l.RecFile = ev.Value
	}
}

func (t *Tracker) setDirectionVar(c *conversation, v string) {
	switch d := Direction(strings.ToLower(strings.TrimSpace(v))); d {
	case DirectionInbound, DirectionOutbound, DirectionInternal:
		if c.Call.Variables == nil {
			c.Call.Variables = map[string]string{}
		}
		c.Call.Variables["direction"] = string(d)
		c.Call.Direction = d
		t.dirty[c.ID] = c
	}
}

func (t *Tracker) queueJoin(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || l.conv.Queued {
		return
	}
	c := l.conv
	if c.Call.AnsweredAt != nil && l.Role != roleCaller && anyHeld(c) {
		// An agent consulting a queue (Asterisk's attended transfer key
		// dialling one) while the customer holds: the consultation waits
		// there, not the customer's call.
		return
	}
	if x := ev.Channel.Exten; c.Call.Callee.Number == "" && x != "" && x != "s" {
		// The PBX dialled an agent's phone on its own (an originate by
		// another client) and put it through to a queue: the queue's
		// extension is the number the call went to.
		c.Call.Callee.Number = x
	}
	c.Queued = true
	at := ev.At.UTC()
	c.QueuedAt = &at
	c.Call.Queue = ev.Queue
	c.Call.State = "queued"
	t.emit(c, EventCallQueued, ev.At, nil)
}

// queueAbandon: the queue gave the caller up. It is an abandon when the
// caller hung up (Asterisk raises QueueCallerAbandon for a queue timeout
// too, where the caller goes on in the dialplan: not abandoned, and if
// nobody answers after, a no_answer).
func (t *Tracker) queueAbandon(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil || !l.conv.Queued {
		return
	}
	c := l.conv
	byCaller := ev.Reason == AbandonCallerHungUp || c.CallerCancelled || c.HupLeg == "caller" ||
		!t.reportsRequests && ev.Reason != AbandonTimeout
	if !byCaller {
		c.Queued = false
		t.dirty[c.ID] = c
		return
	}
	c.Queued = false
	// The caller's hang-up stopped every ring: the agents' pops close
	// first (mod_callcenter reports the member gone before it cancels the
	// agents' legs), in the order they rang.
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Ringing {
			t.stopRinging(x, ev.At, "")
		}
	}
	t.emit(c, EventCallAbandoned, ev.At, nil)
}

func (t *Tracker) recordStart(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || l.Recording {
		return
	}
	if ev.File != "" {
		l.RecFile = ev.File
	}
	l.Recording = true
	c := l.conv
	c.Call.Recording = &Recording{Path: l.RecFile}
	t.emit(c, EventRecordingStarted, ev.At, func(e *Event) { e.Recording = &Recording{Path: l.RecFile} })
}

func (t *Tracker) recordReady(l *leg, file string, at time.Time) {
	if !l.Recording {
		return
	}
	l.Recording = false
	if file != "" {
		l.RecFile = file
	}
	c := l.conv
	c.Call.Recording = &Recording{Path: l.RecFile}
	t.emit(c, EventRecordingReady, at, func(e *Event) { e.Recording = &Recording{Path: l.RecFile} })
}

func (t *Tracker) originateFailed(ev ChannelEvent) {
	o := t.originates["action:"+ev.ActionID]
	if o == nil {
		// Another client's originate of an agent's phone that failed: its
		// answer names where it would have gone, the call's callee.
		x := ev.Channel.Exten
		if l := t.legs[ev.Channel.ID]; l != nil && !l.conv.Ended && l.conv.Call.Callee.Number == "" && x != "" && x != "s" {
			l.conv.Call.Callee.Number = x
			t.dirty[l.conv.ID] = l.conv
		}
		return
	}
	delete(t.originates, "action:"+ev.ActionID)
	c := t.convs[o.ConversationID]
	if c == nil {
		c = t.newConversation(o.ConversationID, o.RequestedAt)
		c.Outbound, c.ActionID = true, o.ActionID
		c.Call.Callee.Number = o.To
		c.Call.Caller = Party{Number: o.Agent, Name: t.agentName(o.Agent)}
	}
	if c.Ended {
		return
	}
	c.Cause = &HangupCause{Code: ev.Cause, Text: causeText(ev.Cause, ev.CauseText)}
	switch ev.Cause {
	case 17:
		c.DialFail = "BUSY"
	case 18, 19:
		c.DialFail = "NOANSWER"
	default:
		c.DialFail = "CHANUNAVAIL"
	}
	if !c.Failed {
		c.Failed = true
		t.emit(c, EventCallFailed, ev.At, nil)
	}
	if len(c.Legs) == 0 {
		t.end(c, ev.At, false)
	}
}

func (t *Tracker) agentState(ev ChannelEvent) {
	ext := ev.Agent
	if ext == "" {
		ext = ev.Member
	}
	key := ext + "\x00" + ev.Queue
	if t.agentStates[key] == ev.Status+ev.Reason {
		return
	}
	t.agentStates[key] = ev.Status + ev.Reason
	if !t.cfg.AgentPattern.MatchString(ev.Member) && ev.Member != ev.Interface {
		t.learnName(ext, ev.Member)
	}
	name := ev.Member
	if n := t.agentName(ext); n != "" {
		name = n
	}
	t.out = append(t.out, Event{ID: NewID("evt_"), Type: EventAgentState, OccurredAt: ev.At.UTC(), PBX: t.cfg.PBX, Tenant: t.agentTenant(ext),
		Agent: &Agent{Extension: ext, Name: name}, AgentState: &AgentStat{Queue: ev.Queue, State: ev.Status, Reason: ev.Reason}})
}

// behindMember reports whether l is a queue member's local pair, or was
// dialled by one (the phone behind it), that the queue has not connected
// yet, and (for a bridge) meets nobody there but that member's own legs:
// the phone answered its pair's dial, but the queue may still cancel the
// member (its caller hung up at that moment, app_queue.c wait_for_answer):
// no person of the call answered yet. The queue's AgentConnect answers it
// (memberConnected).
func (t *Tracker) behindMember(l *leg, bridge string) bool {
	if l.Role == roleCaller || l.conv.Ended {
		return false
	}
	p := l
	if !l.Local || !l.QueueRung {
		if l.MemberPair == "" {
			return false
		}
		p = t.legs[l.MemberPair]
	}
	if p == nil || p.conv != l.conv || !p.Local || !p.QueueRung || p.Answered || p.Role == roleCaller {
		return false
	}
	if bridge != "" {
		// (The pair alone in a bridge is no phone of its own answering:
		// an application such as AgentRequest took it.)
		behind := l != p
		for _, x := range t.bridged[bridge] {
			if x == l || x == p {
				continue
			}
			if x.MemberPair == "" || t.legs[x.MemberPair] != p {
				return false
			}
			behind = true
		}
		return behind
	}
	return true
}

// memberConnected: the queue connected member pair p: the legs that
// answered behind it (behindMember) answer now.
func (t *Tracker) memberConnected(p *leg, at time.Time) {
	for _, x := range slices.Clone(p.conv.Legs) {
		if x == p {
			x.MemberUp = false
			continue
		}
		if x.MemberUp && len(x.Channels) > 0 && slices.Contains(p.Channels, x.MemberPair) {
			x.MemberUp = false
			t.answered(x, at)
		}
	}
}
