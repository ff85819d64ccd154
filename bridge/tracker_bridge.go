package bridge

import (
	"slices"
	"time"
)

// Bridges: legs that meet join one call (or take it), holding bridges and
// conference rooms join nobody.

// bridgeEnter: a leg enters a bridge; the legs it meets there become one
// call, unless the bridge connects nobody.
func (t *Tracker) bridgeEnter(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || ev.Bridge == "" {
		return
	}
	if !slices.Contains(l.Bridges, ev.Bridge) {
		l.Bridges = append(l.Bridges, ev.Bridge)
		t.bridged[ev.Bridge] = append(t.bridged[ev.Bridge], l)
	}
	if ev.Conference {
		t.conferenceEnter(l, ev)
		return
	}
	// A leg of another conversation joining our bridge (an attended transfer
	// completing, a pickup) moves into the older conversation; an agent's
	// own call that only the PBX answered (the phone dialled a FIFO's
	// consumer extension, an intercept, a slot) moves into the call it is
	// bridged to, whichever began first, and its agent takes that call.
	for _, x := range t.bridged[ev.Bridge] {
		if x.conv != l.conv && !x.conv.Ended {
			older, newer := x.conv, l.conv
			if newer.Call.StartedAt.Before(older.Call.StartedAt) {
				older, newer = newer, older
			}
			mover, into := l, older
			if mover.conv != newer {
				mover = x
			}
			if cl, cx := t.callersCall(l), t.callersCall(x); cl != cx {
				// The caller of an answered call is that call: the party of
				// another call it now meets joins it, whichever call began
				// first (an AMI Bridge of two calls' channels; a REFER with
				// Replaces moving the customer into a consultation that was
				// older than the customer's call).
				mover, into = l, x.conv
				if cl {
					mover, into = x, l.conv
				}
			}
			if sl, sx := t.selfServed(l), t.selfServed(x); sl != sx {
				mover, into = l, x.conv
				if sx {
					mover, into = x, l.conv
				}
				t.moveLeg(mover, into)
				t.takeCall(mover, ev.At)
				mover.Served = true
				break
			}
			t.moveLeg(mover, into)
			if t.takesOver(mover, ev.Bridge) {
				t.takeCall(mover, ev.At)
			}
			break
		}
	}
	if l.Role != roleCaller && !l.Answered && l.Dialled {
		if t.behindMember(l, ev.Bridge) {
			l.MemberUp = true
		} else {
			t.answered(l, ev.At)
		}
	}
	t.callGoesOn(l, ev.Bridge)
}

// callersCall reports whether l is the caller of an answered call that
// goes on (its own call's identity, which a bridge with another call's
// party does not change).
func (t *Tracker) callersCall(l *leg) bool {
	return l.Role == roleCaller && len(l.Channels) > 0 && !l.conv.Ended && l.conv.Call.AnsweredAt != nil
}

// takesOver reports whether l, an agent's answered device that a bridge
// moved into another answered call (Asterisk's AMI Bridge of two calls'
// channels: bridge.c ast_bridge_add_channel -> bridge_move_locked), meets
// that call's caller there while the call's agent is no longer on it: the
// caller now talks to l's agent, who takes the call.
func (t *Tracker) takesOver(l *leg, bridge string) bool {
	c := l.conv
	if l.Role != roleAgent || !l.Answered || len(l.Channels) == 0 || c.Ended || c.Call.AnsweredAt == nil ||
		c.Call.Agent == nil || c.Call.Agent.Extension == l.Agent || t.agentOnCall(c, c.Call.Agent.Extension) {
		return false
	}
	for _, x := range t.bridged[bridge] {
		if x != l && x.conv == c && x.Role == roleCaller && len(x.Channels) > 0 {
			return true
		}
	}
	return false
}

// callGoesOn: after a party asked to hang up, the caller and a talking
// party are in one bridge again, whichever entered last. The party that
// asked only left the call (a consultation's target hanging up, Asterisk's
// bridge_basic.c rebridging the transferer with the customer, FreeSWITCH's
// att_xfer uuid_bridging them back): its request did not end the call,
// whose end will say who did.
func (t *Tracker) callGoesOn(l *leg, bridge string) {
	c := l.conv
	if c.HupLeg == "" || c.Ended || l.Asked {
		return
	}
	var caller, party bool
	for _, x := range t.bridged[bridge] {
		if x.conv != c || x.Asked || len(x.Channels) == 0 {
			continue
		}
		if x.Role == roleCaller {
			caller = true
		} else if t.talking(x) {
			party = true
		}
	}
	if !caller || !party {
		return
	}
	c.HupLeg, c.HupAside = "", false
	for _, y := range c.Legs {
		y.Asked = false
	}
	t.dirty[c.ID] = c
}

// selfServed reports whether l is an agent's device alone in a call of its
// own that no person answered: the phone dialled a service of the PBX (a
// FIFO consumer extension, an intercept code), or the PBX rang the agent by
// itself (an originate answered by the agent that reached nobody yet, as a
// callback's first leg), and the PBX then bridges it to another call (a
// FIFO, an intercept, an API uuid_bridge), which that agent so takes.
func (t *Tracker) selfServed(l *leg) bool {
	c := l.conv
	if len(c.Legs) != 1 || c.Call.AnsweredAt != nil || c.Queued || !t.isAgentDevice(l) {
		// (A phone waiting in a queue, even an agent's, is a caller being
		// served: a FIFO's consumer takes it.)
		return false
	}
	if l.Role == roleCaller {
		return !c.Dialled
	}
	return l.Role == roleAgent && l.Answered && c.OrigAgent == l.Ext
}

// conferenceEnter: l joined a conference room. Each party keeps its own
// call (a room is not a call: people come and go, some stay all day); an
// agent in the room with a caller whose call nobody answered yet answers
// it, whichever of the two came in first.
func (t *Tracker) conferenceEnter(l *leg, ev ChannelEvent) {
	for _, x := range t.bridged[ev.Bridge] {
		if x == l || x.conv == l.conv {
			continue
		}
		if a := t.roomAgent(x); a != nil {
			t.roomAnswer(l, a, ev.At)
		}
		if a := t.roomAgent(l); a != nil {
			t.roomAnswer(x, a, ev.At)
		}
		t.roomReached(l, x, ev.At)
		t.roomReached(x, l, ev.At)
	}
}

// roomAgent is the agent whose device l is, in a conference room: an
// agent's leg, or an agent's phone that dialled the room itself.
func (t *Tracker) roomAgent(l *leg) *Agent {
	switch {
	case l.conv.Ended || l.Local:
		return nil
	case l.Role == roleAgent:
		return t.agent(l)
	case l.Role == roleCaller && l.conv.OrigAgent != "" && l.conv.OrigAgent == l.Ext:
		return &Agent{Extension: l.Ext, Name: t.agentName(l.Ext)}
	}
	return nil
}

// roomReached: the agent whose own call into the room l is meets another
// person there, so a person answered that call: another agent (the call's
// agent then) or a customer (the far party, as on a call the agent placed).
func (t *Tracker) roomReached(l, other *leg, at time.Time) {
	c := l.conv
	self := t.roomAgent(l)
	if self == nil || l.Role != roleCaller || c.Ended || c.Call.AnsweredAt != nil || other.conv.Ended || other.Local {
		return
	}
	if !c.DirectionFixed && !c.Dialled && c.Call.Variables["direction"] == "" {
		// The agent's call never left the PBX: whoever it meets in the
		// room, it is an internal call, whatever its room's number looks
		// like to AgentPattern.
		c.Call.Direction, c.DirectionFixed = DirectionInternal, true
	}
	if a := t.roomAgent(other); a != nil {
		if a.Extension != self.Extension {
			t.establish(c, at, a)
		}
		return
	}
	t.establishBy(c, at, self, PartyCustomer)
}

// roomAnswer: agent a reached l's caller in a room; l's call, one no agent
// placed and nobody answered, is answered by a.
func (t *Tracker) roomAnswer(l *leg, a *Agent, at time.Time) {
	c := l.conv
	if l.Role != roleCaller || c.Ended || c.OrigAgent != "" || c.Call.AnsweredAt != nil {
		return
	}
	t.establish(c, at, a)
}
