package bridge

import (
	"slices"
	"time"
)

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
	if l.Role != roleCaller || len(c.Legs) != 1 || c.OrigAgent != "" && c.OrigAgent != l.Ext || c.Outbound || !t.isAgentDevice(l) {
		return
	}
	// A local channel (Local/, loopback/) runs dialplan: it is plumbing or
	// a test caller, not an agent's device.
	if l.Local {
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
	if to.Role != roleOther || to.Service || c.OrigAgent == "" || c.Call.AnsweredAt != nil {
		return
	}
	if from.Role != roleCaller && from.Agent != c.OrigAgent {
		return
	}
	to.Customer = true
	if n := c.Call.Callee.Number; n == "" || n == "s" {
		// What the agent's leg dialled; an originated agent leg's own
		// extension is the agent, not the destination: then the dialled
		// leg's identity.
		for _, x := range []string{ev.Channel.Exten, ev.Peer.Endpoint, ev.Peer.Exten, ev.Peer.CallerNum, to.Ext} {
			if x != "" && x != "s" && x != c.OrigAgent {
				c.Call.Callee.Number = x
				t.dirty[c.ID] = c
				break
			}
		}
	}
	if c.FailPending {
		c.FailPending = false // another route to the far party: not failed yet
		t.dirty[c.ID] = c
	}
	if c.Rang.has(customerPop) {
		return
	}
	c.Rang.add(customerPop)
	agent := t.origAgent(c)
	t.emit(c, EventCallRinging, ev.At, func(e *Event) { e.Agent, e.Party = agent, PartyCustomer })
}

// origAgent is the agent who placed c, as its customer events name them.
func (t *Tracker) origAgent(c *conversation) *Agent {
	return &Agent{Extension: c.OrigAgent, Name: t.agentName(c.OrigAgent)}
}

// customerPop keys the far party's pop in a conversation's Rang.
const customerPop = "\x00customer"

// customerRingEnded closes the far party's pop of a call an agent placed
// when it stops ringing unanswered (busy, no answer, the agent gave up):
// call.ring_ended with party "customer". l is the leg that stopped; the
// pop stays open while another of the far party's legs still rings. A
// nil l closes it whatever rings (the call ends).
func (t *Tracker) customerRingEnded(c *conversation, l *leg, at time.Time) {
	if !c.Rang.has(customerPop) || c.Call.AnsweredAt != nil {
		return
	}
	if l != nil && slices.ContainsFunc(c.Legs, func(x *leg) bool {
		return x != l && x.Customer && !x.Answered && len(x.Channels) > 0
	}) {
		return
	}
	c.Rang.remove(customerPop)
	agent := t.origAgent(c)
	t.emit(c, EventCallRingEnded, at, func(e *Event) { e.Agent, e.Party = agent, PartyCustomer })
}

// customerFailed: the far party of a call an agent placed did not answer
// (busy, no answer, unreachable). For a click-to-call that is call.failed,
// told when the call ends (failEnd): until then the dialplan may try the
// party again by another route (Asterisk's next Dial to a second trunk,
// FreeSWITCH's next gateway of a '|' list), and a CRM told "failed" must
// not then hear "answered".
func (t *Tracker) customerFailed(l *leg, status string) {
	c := l.conv
	if c.Call.AnsweredAt != nil || !c.Outbound || c.Failed || status == "CANCEL" {
		return
	}
	if slices.ContainsFunc(c.Legs, func(x *leg) bool {
		return x != l && x.Customer && !x.Answered && len(x.Channels) > 0
	}) {
		return // another route to the far party still rings (a second carrier)
	}
	c.FailPending = true
	t.dirty[c.ID] = c
}

// failEnd tells a click-to-call's pending failure as the call ends.
func (t *Tracker) failEnd(c *conversation, at time.Time) {
	if c.FailPending && !c.Failed && c.Call.AnsweredAt == nil {
		c.Failed = true
		t.emit(c, EventCallFailed, at, nil)
	}
	c.FailPending = false
}

// park: the call waits in a parking slot. The CRM sees call.held with
// where it waits; the retrieval is the next answer.
func (t *Tracker) park(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil || l.conv.Ended {
		return
	}
	if l.Local && !l.Answered {
		// A local channel parked on the call's behalf (an attended transfer
		// to the lot, its half running the lot's dialplan): the party it
		// stands for is swapped in when the pair optimizes away, and that
		// park (ParkedCallSwap) is the call's. A pair that answered the
		// call (a queue's or ring group's member Local/.../n, bridged to the
		// caller on one half) carries the call itself: a transfer or the
		// park feature of its agent parks that half (res_parking
		// parking_blind_transfer_park parks the other channel of the
		// agent's bridge), and no swap follows: the pair never optimizes.
		// The transfer that joins it to the call tells the park (the party
		// may hang up before the swap: standInParked).
		l.StandIn = &Park{Slot: ev.Exten, Lot: ev.Context}
		return
	}
	if t.bridgedWithAgent(l) {
		// Parked while still in its agent's bridge: a blind transfer to
		// the lot whose report Asterisk may publish just after the park
		// (res_parking parks the transferee inside the transfer). The
		// next event says: the transfer, told first, or anything else.
		t.parkAfter = append(t.parkAfter, ev)
		return
	}
	t.parked(l, ev)
}

// standInParked: an attended transfer joined c to a local pair parked on
// its behalf (bridge.c's merge of the transferer's two bridges, before the
// pair optimizes and res_parking's parking_channel_swap puts the party
// itself in the lot): from now on the call waits in that slot, whether
// the swap comes or its party hangs up first (ParkedCallGiveUp of the
// stand-in).
func (t *Tracker) standInParked(c *conversation, at time.Time) {
	for _, x := range c.Legs {
		if p := x.StandIn; p != nil && len(x.Channels) > 0 && !c.Ended {
			x.StandIn = nil
			t.parked(x, ChannelEvent{At: at, Exten: p.Slot, Context: p.Lot})
		}
	}
}

// parkHeld tells the parks held back for their transfer: c's, or every
// call's when c is nil.
func (t *Tracker) parkHeld(c *conversation) {
	var keep []ChannelEvent
	for _, ev := range t.parkAfter {
		l := t.legs[ev.Channel.ID]
		switch {
		case l == nil || l.conv.Ended:
		case c != nil && l.conv != c:
			keep = append(keep, ev)
		default:
			t.parked(l, ev)
		}
	}
	t.parkAfter = keep
}

// bridgedWithAgent reports whether l shares a bridge with an agent on the
// call (an answered agent, or the agent whose phone placed it).
func (t *Tracker) bridgedWithAgent(l *leg) bool {
	for _, b := range l.Bridges {
		for _, x := range t.bridged[b] {
			if x != l && len(x.Channels) > 0 && (x.Role == roleAgent && x.Answered || placingAgent(x) != "") {
				return true
			}
		}
	}
	return false
}

// parked: the call waits in the lot's slot.
func (t *Tracker) parked(l *leg, ev ChannelEvent) {
	c := l.conv
	if p := c.Parked; p != nil && p.Slot == ev.Exten && p.Lot == ev.Context {
		return // the same park told again (a resync's list of parked calls)
	}
	unhold(c)
	if l.Local && l.Role == roleAgent {
		// The pair that answered for its agent (a member Local/.../n) now
		// carries only the caller into the lot: it is no longer that
		// agent's device, so the lot's comeback ringing the agent (the
		// parked half's own Dial, res_parking comeback_goto) rings and
		// answers the agent again.
		l.Role, l.Agent = roleOther, ""
		t.dirty[c.ID] = c
	}
	// The call left its agent for the lot: the next ring of an agent (the
	// lot's comeback to the parker, res_parking comebacktoorigin) is a new
	// pop. Pops of devices still ringing stay.
	c.Rang = slices.DeleteFunc(c.Rang, func(k string) bool {
		return !slices.ContainsFunc(c.Legs, func(x *leg) bool { return x.Ringing && x.Agent == k })
	})
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
	if p.Answered {
		// The picker already took the call (a ring group's other legs
		// report the same pickup): only this ring ends.
		t.stopRinging(target, ev.At, "PICKED_UP")
		return
	}
	// Picking a call up ends its ring: every device still ringing for it
	// stops (FreeSWITCH hangs each ringing leg up PICKED_OFF).
	for _, x := range slices.Clone(c.Legs) {
		if x != p && x.Ringing {
			t.stopRinging(x, ev.At, "PICKED_UP")
		}
	}
	t.takeCall(p, ev.At)
}

// strandedAgent: l is an agent's leg left alone in its call, the caller
// gone and nothing bridged to it (the switch dropped the customer under a
// transfer): whatever it dials now is a call of its own.
func (t *Tracker) strandedAgent(l, dialled *leg) bool {
	c := l.conv
	if l.Role != roleAgent || !l.Answered || !c.CallerGone || len(l.Bridges) > 0 || c.Ended {
		return false
	}
	for _, x := range c.Legs {
		if x != l && x != dialled && len(x.Channels) > 0 {
			return false
		}
	}
	return true
}

// splitOff moves l out of its conversation into a new one it starts as
// the caller; the old conversation, left without channels, ends.
func (t *Tracker) splitOff(l, dialled *leg, at time.Time) {
	old := l.conv
	c := t.ownCall(l, at)
	c.Call.Callee = Party{Number: dialled.Ext}
	t.dirty[old.ID] = old
	if len(old.Legs) == 0 {
		t.end(old, at, false)
	}
}

// ownCall moves l out of its conversation into a new one in which it is
// the caller, an agent's call: the leg's own caller id still names the
// customer it had, so the caller is the agent.
func (t *Tracker) ownCall(l *leg, at time.Time) *conversation {
	old := l.conv
	c := t.newConversation(NewID("conv_"), at)
	old.Legs = slices.DeleteFunc(old.Legs, func(x *leg) bool { return x == l })
	l.conv = c
	l.Role, l.Answered, l.Ringing, l.Dialled, l.ByChannel, l.QueueRung = roleCaller, false, false, false, false, false
	l.Redirected, l.Served, l.Far, l.Asked, l.Customer = false, false, false, false, false
	c.Legs = append(c.Legs, l)
	for _, id := range l.Channels {
		if t.byLinked[id] == old {
			delete(t.byLinked, id)
		}
		t.link(c, id)
	}
	ext := l.Agent
	if ext == "" {
		ext = l.Ext
	}
	c.Call.Caller = Party{Number: ext, Name: t.agentName(ext)}
	c.PartiesFixed = true
	t.placedByAgent(l)
	t.dirty[c.ID] = c
	return c
}

// takeCall makes l, a device that joined c by itself (pickup, park
// retrieval), the agent who answered it.
func (t *Tracker) takeCall(l *leg, at time.Time) {
	c := l.conv
	if l.Role == roleAgent && l.Answered && c.Call.Agent != nil && c.Call.Agent.Extension == l.Agent {
		// This leg took the call already (its bridge with the parked call
		// came before the retrieval's report): one answer.
		return
	}
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
	if a != nil && c.Call.AnsweredAt != nil && c.Call.Agent != nil && c.Call.Agent.Extension == a.Extension && t.agentDeviceAnswered(c, l) {
		// The agent who answered, still in the call, joins with another
		// of its channels (an AgentLogin channel moved into the bridge of
		// the Local that reached it): one person, one answer. The agent
		// taking back a call it parked (its answered leg gone, the call
		// held in a slot) answers it again.
		return
	}
	t.establish(c, at, a)
}
