package bridge

import "time"

// agentName is an agent's display name: from config, else as the PBX
// named the agent (a queue member's name, the phone's own caller id).
func (t *Tracker) agentName(ext string) string {
	if n := t.cfg.Agents[ext]; n != "" {
		return n
	}
	return t.names[ext]
}

// learnName remembers how the PBX names an agent, for agents config does
// not name.
func (t *Tracker) learnName(ext, name string) {
	if ext == "" || name == "" || name == ext || t.cfg.Agents[ext] != "" || t.names[ext] == name {
		return
	}
	if len(t.names) > 10000 { // bounded: names come from the wire
		clear(t.names)
	}
	t.names[ext] = name
}

// originatedToAgent: the PBX rang an agent's device by itself (an
// originate, click-to-call placed by anyone): that agent places the call,
// and the call it then dials is theirs.
func (t *Tracker) originatedToAgent(l *leg) {
	c := l.conv
	if l.Role != roleCaller || len(c.Legs) != 1 || c.OrigAgent != "" || !t.isAgentDevice(l) {
		return
	}
	// A local channel (Local/, loopback/) runs dialplan: it is plumbing or
	// a test caller, not an agent's device.
	if _, _, _, local := parseName(l.anyName()); local {
		return
	}
	l.Role, l.Agent, l.Dialled = roleAgent, l.Ext, true
	c.OrigAgent, c.Outbound = l.Ext, true
	c.Call.Caller = Party{Number: l.Ext, Name: t.agentName(l.Ext)}
	c.Call.Callee = Party{}
	c.Call.Agent = t.agent(l)
	t.dirty[c.ID] = c
}

// customerDialled: a call an agent placed rings its far party. The CRM
// gets call.ringing for that agent with party "customer" (the outbound
// screen pop), once per call.
func (t *Tracker) customerDialled(from, to *leg, ev ChannelEvent) {
	c := from.conv
	if to.Role != roleOther || c.OrigAgent == "" || c.Call.AnsweredAt != nil {
		return
	}
	if from.Role != roleCaller && from.Agent != c.OrigAgent {
		return
	}
	to.Customer = true
	if n := c.Call.Callee.Number; n == "" || n == "s" {
		if x := ev.Channel.Exten; x != "" && x != "s" {
			c.Call.Callee.Number = x
		} else if x := to.Ext; x != "" {
			c.Call.Callee.Number = x
		}
	}
	const key = "\x00customer"
	if c.Rang[key] {
		return
	}
	c.Rang[key] = true
	agent := &Agent{Extension: c.OrigAgent, Name: t.agentName(c.OrigAgent)}
	t.emit(c, EventCallRinging, ev.At, func(e *Event) { e.Agent, e.Party = agent, PartyCustomer })
}

// customerFailed: the far party of a call an agent placed did not answer
// (busy, no answer, unreachable). For a click-to-call that is call.failed.
func (t *Tracker) customerFailed(l *leg, at time.Time, status string) {
	c := l.conv
	if c.Call.AnsweredAt != nil || !c.Outbound || c.Failed || status == "CANCEL" {
		return
	}
	c.Failed = true
	t.emit(c, EventCallFailed, at, nil)
}

// park: the call waits in a parking slot. The CRM sees call.held with
// where it waits; the retrieval is the next answer.
func (t *Tracker) park(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil || l.conv.Ended {
		return
	}
	c := l.conv
	unhold(c)
	c.Parked = &Park{Slot: ev.Exten, Lot: ev.Context}
	c.Call.State = "parked"
	t.emit(c, EventCallHeld, ev.At, func(e *Event) { e.Park = c.Parked })
}

// unpark: Peer took the parked call. Its channel, a call of its own so
// far (an agent dialled the slot), joins the parked conversation and
// answers it.
func (t *Tracker) unpark(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil || l.conv.Ended || ev.Peer == nil {
		return
	}
	c := l.conv
	r := t.channel(*ev.Peer, ev.At)
	if r == nil || r == l {
		return
	}
	t.moveLeg(r, c)
	c.Parked = nil
	unhold(c)
	t.takeCall(r, ev.At)
}

// pickup: Channel picked up the call ringing on Peer (directed or group
// pickup). The ringing device stops ringing; the picker answers.
func (t *Tracker) pickup(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	target := t.legs[ev.Peer.ID]
	if target == nil || target.conv.Ended {
		return
	}
	c := target.conv
	p := t.channel(ev.Channel, ev.At)
	if p == nil || p == target {
		return
	}
	t.moveLeg(p, c)
	t.stopRinging(target, ev.At, "PICKED_UP")
	t.takeCall(p, ev.At)
}

// takeCall makes l, a device that joined c by itself (pickup, park
// retrieval), the agent who answered it.
func (t *Tracker) takeCall(l *leg, at time.Time) {
	c := l.conv
	if l.Role != roleAgent {
		l.Role = roleAgent
		if l.Agent = l.Ext; !t.isAgentDevice(l) {
			l.Role, l.Agent = roleOther, ""
		}
	}
	l.Dialled, l.Ringing, l.Answered = true, false, true
	var a *Agent
	if l.Role == roleAgent {
		a = t.agent(l)
	}
	t.establish(c, at, a)
}
