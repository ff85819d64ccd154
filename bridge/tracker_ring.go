package bridge

import (
	"slices"
	"strings"
	"time"
)

// Ringing and answering: who is dialled, whose screen pops, whose answer
// establishes the call.

func (t *Tracker) dial(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	// The PBX dialling on its own (an originate): the dialled channel is the
	// first party of the call, not an agent being rung, unless it is our
	// click-to-call.
	if ev.Channel.ID == "" {
		l := t.channel(*ev.Peer, ev.At)
		if l == nil {
			return
		}
		t.originatedToAgent(l)
		if c := l.conv; l.Local && l.Role == roleCaller && len(c.Legs) == 1 && !c.Outbound {
			c.OrigLocal = true
			t.dirty[c.ID] = c
		} else if l.Role == roleCaller && len(c.Legs) == 1 && !c.Outbound && c.Seq == 0 && !t.isAgentDevice(l) {
			// Not an agent's device nor a local pair: the PBX called this
			// party (FreeSWITCH originate/bgdial to a gateway, Asterisk
			// Originate to a trunk). Its caller id is what the PBX
			// presented, not who called.
			c.PBXDialled = true
			if n := c.Call.Callee.Number; (n == "" || n == "s") && ev.Exten != "" {
				// Its number is what the PBX dialled (Asterisk's dial
				// string), not the extension the dialplan later puts it in.
				c.Call.Callee.Number = ev.Exten
			}
			t.dirty[c.ID] = c
		}
		if l.Role == roleAgent && !l.Ringing && !l.Answered {
			t.ring(l, ev.At, "")
		}
		return
	}
	from, to := t.dialled(ev)
	if to == nil {
		return
	}
	t.firstDialsOut(from, to, ev.Channel.Exten)
	t.memberRings(from, to, ev.At)
	t.localRedials(from, to)
	to.ByChannel = true
	if to.Local {
		to.DialledBy = ev.Channel.ID
	}
	if from.Local && from.QueueRung && from.Role != roleCaller && from != to {
		to.MemberPair = ev.Channel.ID
	} else if from.Local && from.MemberPair != "" && from != to {
		// A local pair behind the member dials on (a Follow Me's FMPR or
		// FMGL, a ring group): what it reaches is behind the member too,
		// and answers when the queue connects the member.
		to.MemberPair = from.MemberPair
	}
	t.originatedThroughLocal(from, to)
	t.placedByAgent(from)
	if to.Role == roleOther && t.isAgentDevice(to) {
		to.Role = roleAgent
		to.Agent = to.Ext
	}
	if to.Role == roleOther && to.Local && to.FollowMe {
		// A Follow Me's group leg (the extension's other numbers, a mobile
		// through the trunk) is dialled with the agent's own pair in one
		// Dial: it rings for that agent, and whoever answers on it answers
		// as the agent.
		if a := t.followMeAgent(from, to); a != "" {
			to.Role, to.Agent = roleAgent, a
		}
	}
	if to.Role == roleAgent && !to.Ringing && !to.Answered {
		if to.MemberQueue == "" { // a Local member rings once it shows whom
			t.ring(to, ev.At, "")
		}
		return
	}
	if t.externalDialled(from, to, ev) {
		return
	}
	t.customerDialled(from, to, ev)
}

// externalDialled: a call blind-transferred to an outside number rings it
// (the transferee's channel dials out). The CRM gets call.ringing with
// party "external" and the number: the call left the agents, and whether
// the outside party answered matters to whoever follows it.
//
// An agent consulting an outside number about an established call (an
// attended transfer to a mobile) rings it the same way: the consultation
// belongs to the call it may be handed to.
func (t *Tracker) externalDialled(from, to *leg, ev ChannelEvent) bool {
	c := from.conv
	if c.Call.AnsweredAt == nil || to.Role != roleOther || to.Service || to.Local || to.Answered || to.External != "" {
		return false
	}
	var number string
	switch tr := c.LastTransfer; {
	case tr != nil && tr.Mode == "blind" && from.Role != roleAgent:
		// The transferee dials (an internal call's caller keeps being
		// the call's agent).
		number = tr.To
	case c.Call.Agent != nil && from.Role != roleCaller && !from.Customer && !from.Far:
		for _, n := range []string{ev.Peer.Exten, ev.Channel.Exten, ev.Peer.CallerNum} {
			if n != "" && n != "s" {
				number = n
				break
			}
		}
	}
	if number == "" || t.cfg.AgentPattern.MatchString(number) {
		return false
	}
	to.External = number
	t.emit(c, EventCallRinging, ev.At, func(e *Event) { e.Party, e.Number = PartyExternal, to.External })
	return true
}

// externalRingEnded closes an outside number's ring unanswered.
func (t *Tracker) externalRingEnded(l *leg, at time.Time) {
	if l.External == "" || l.Answered {
		return
	}
	n := l.External
	l.External = ""
	t.emit(l.conv, EventCallRingEnded, at, func(e *Event) { e.Party, e.Number = PartyExternal, n })
}

func (t *Tracker) agentCalled(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	from, to := t.dialled(ev)
	if to == nil {
		return
	}
	t.firstDialsOut(from, to, ev.Channel.Exten)
	to.ByChannel, to.QueueRung = true, true
	if to.Role != roleCaller {
		to.Role = roleAgent
		if to.Agent == "" {
			// The device's own identity first (a FreeSWITCH dialled user,
			// whatever its contact says), then the queue member interface.
			to.Agent = ev.Peer.Endpoint
			if to.Agent == "" {
				to.Agent = ev.Agent
			}
			if to.Agent == "" {
				to.Agent = to.Ext
			}
		}
	}
	if ev.Queue != "" && from.conv.Call.Queue != ev.Queue {
		from.conv.Call.Queue = ev.Queue
		t.dirty[from.conv.ID] = from.conv // shown live even when ring emits nothing
	}
	t.learnName(to.Agent, ev.Member)
	if to.Local && ev.RingsLater && to.Role == roleAgent && !to.Ringing && !to.Answered {
		// A member behind a local pair whose ring waits for what its other
		// half does (the adapter says: Asterisk's Local members;
		// FreeSWITCH's loopback members ring at once, in the queue's order).
		to.MemberQueue = ev.Queue
		if to.MemberQueue == "" {
			to.MemberQueue = "-"
		}
		return
	}
	if !to.Ringing && !to.Answered {
		t.ring(to, ev.At, ev.Queue)
	}
}

// originatedThroughLocal: an originate to a local pair (pbx_outgoing.c
// with Channel=Local/100@from-internal, as FreePBX-style click-to-call
// does) is the click-to-call of the agent whose device the pair's other
// half rings first: the call is outbound, placed by that agent, and its
// callee is whom the pair dials once the agent answered.
func (t *Tracker) originatedThroughLocal(from, to *leg) {
	c := from.conv
	if !c.OrigLocal || !from.Local || from.Role != roleCaller {
		return
	}
	c.OrigLocal = false
	t.dirty[c.ID] = c
	if !c.Outbound && c.Seq == 0 && to.Role == roleOther && !to.Local && !to.Service && !t.isAgentDevice(to) {
		// The pair's other half dials an outside party first (Originate
		// Channel=Local/5551234@callout: a callback that reaches the
		// customer before the agent): the PBX dialled that party by
		// itself, through the pair, as with Channel=PJSIP/5551234@trunk.
		c.PBXDialled = true
		if n := from.Ext; n != "" && n != "s" && !t.cfg.AgentPattern.MatchString(n) {
			c.Call.Callee.Number = n
		}
		return
	}
	if c.Outbound || !t.isAgentDevice(to) || c.OrigAgent != to.Ext {
		// Only the agent's own click-to-call (the pair is the agent's
		// extension, with the agent's caller id: placedByAgent), not a
		// test caller or an originate on some number's behalf (a loopback
		// calling an agent).
		return
	}
	c.Outbound = true
	c.Call.Caller = Party{Number: to.Ext, Name: t.agentName(to.Ext)}
	c.Call.Callee = Party{}
	c.Call.Agent = &Agent{Extension: to.Ext, Name: t.agentName(to.Ext)}
	// The pair stands in front of the agent's phone, as an originated
	// device leg does (originatedToAgent): its own hangup request (the
	// pair optimizing away) is plumbing, not the caller hanging up.
	from.Role, from.Agent, from.Dialled = roleAgent, to.Ext, true
}

// memberRings settles a Local queue member whose ring waited (agentCalled):
// its other half dials to (nil: it answered without dialling, as
// AgentRequest). A member that dials other agents' devices is a ring group,
// whose own number is no person: those devices ring for the call, not it.
func (t *Tracker) memberRings(l, to *leg, at time.Time) {
	q := l.MemberQueue
	if q == "" {
		return
	}
	l.MemberQueue = ""
	if q == "-" {
		q = ""
	}
	if to != nil && t.isAgentDevice(to) && to.Ext != l.Agent {
		l.Role, l.Agent = roleOther, ""
		t.dirty[l.conv.ID] = l.conv
		return
	}
	t.ring(l, at, q)
}

func (t *Tracker) agent(l *leg) *Agent {
	if l == nil || l.Agent == "" {
		return nil
	}
	return &Agent{Extension: l.Agent, Name: t.agentName(l.Agent)}
}

// ring pops the screen for an agent, once per agent per ring round.
func (t *Tracker) ring(l *leg, at time.Time, queue string) {
	l.conv.LastTransfer = nil
	l.Ringing = true
	c := l.conv
	if c.Rang.has(l.Agent) || t.agentLegAnswered(c, l.Agent) {
		return
	}
	c.Rang.add(l.Agent)
	if queue != "" {
		c.Call.Queue = queue
	}
	t.emit(c, EventCallRinging, at, func(e *Event) { e.Agent = t.agent(l) })
}

func (t *Tracker) agentLegAnswered(c *conversation, agent string) bool {
	for _, x := range c.Legs {
		if x.Agent == agent && x.Answered {
			return true
		}
	}
	return false
}

// agentDeviceAnswered reports whether another leg of l's agent that is
// still the agent's (not handed on by a transfer) has answered.
func (t *Tracker) agentDeviceAnswered(c *conversation, l *leg) bool {
	for _, x := range c.Legs {
		if x != l && x.Role == roleAgent && x.Agent == l.Agent && x.Answered && len(x.Channels) > 0 {
			return true
		}
	}
	return false
}

// agentStillRinging reports whether another leg of the same agent rings.
func (t *Tracker) agentStillRinging(c *conversation, l *leg) bool {
	for _, x := range c.Legs {
		if x != l && x.Agent == l.Agent && x.Ringing {
			return true
		}
	}
	return false
}

func (t *Tracker) stopRinging(l *leg, at time.Time, reason string) {
	if !l.Ringing {
		return
	}
	l.Ringing = false
	c := l.conv
	if l.Answered || t.agentStillRinging(c, l) || !c.Rang.has(l.Agent) {
		return
	}
	c.Rang.remove(l.Agent)
	if reason != "" {
		c.DialFail = reason
	}
	t.emit(c, EventCallRingEnded, at, func(e *Event) { e.Agent = t.agent(l) })
}

func (t *Tracker) dialEnd(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	to := t.legs[ev.Peer.ID]
	if to == nil {
		return
	}
	t.followDialler(t.legs[ev.Channel.ID], to, ev.At)
	status := strings.ToUpper(ev.DialStatus)
	if status == "ANSWER" {
		// A queue connects its member itself (AgentConnect): the member
		// may still hear an announcement and hang up.
		if !to.QueueRung || to.Role == roleCaller {
			if t.behindMember(to, "") {
				to.MemberUp = true
				return
			}
			t.answered(to, ev.At)
		}
		return
	}
	if to.conv != nil && status != "" && to.Role != roleCaller {
		to.conv.DialFail = status
	}
	t.localDeviceFailed(t.legs[ev.Channel.ID], to, status)
	if to.Customer {
		t.customerRingEnded(to.conv, to, ev.At)
		t.customerFailed(to, status)
	}
	t.externalRingEnded(to, ev.At)
	t.stopRinging(to, ev.At, status)
}

// followDialler: the PBX names another live channel as the dialler of a
// leg it rang. Asterisk changes a dialling channel only by moving another
// channel into it (channel.c channel_do_masquerade swaps uniqueids: an
// attended transfer to a consultation still waiting in an application,
// AttendedTransfer DestType App): the dial, and the leg it rings, now
// belong to the call of the channel named. A device still ringing rings
// for that call.
func (t *Tracker) followDialler(from, to *leg, at time.Time) {
	if from == nil || to == nil || from == to || from.conv == to.conv || from.conv.Ended || len(from.Channels) == 0 {
		return
	}
	if !to.Dialled || to.Role == roleCaller || len(to.Channels) == 0 {
		return
	}
	t.moveLeg(to, from.conv)
	if to.Role == roleAgent && to.Ringing && !to.Answered {
		t.ring(to, at, from.conv.Call.Queue)
	}
}

// answered marks a leg up; an agent's answer establishes the call.
func (t *Tracker) answered(l *leg, at time.Time) {
	c := l.conv
	switch {
	case l.Role == roleCaller:
		c.CallerUp = true
		return
	case l.Role == roleOther:
		if !l.Dialled || l.Answered || l.Service {
			return // the PBX answering (voicemail) is no person's answer
		}
		if c.OrigAgent == "" || c.Call.AnsweredAt != nil {
			// A party that is no agent, reached by a call put through to
			// it (a blind or attended transfer, a forward to an outside
			// number): it talks in the conversation and its hangup is the
			// callee's, but it does not make the call answered.
			if l.ByChannel && !l.Local {
				l.Answered, l.Far = true, true
				if c.Call.AnsweredAt != nil && c.Call.Agent == nil {
					c.Call.State = "talking"
				}
				t.dirty[c.ID] = c
				if l.External != "" {
					t.emit(c, EventCallAnswered, at, func(e *Event) { e.Party, e.Number = PartyExternal, l.External })
				}
			}
			return
		}
		// The far party of a call an agent placed picks up: established.
		l.Answered, l.Customer = true, true
		t.establishBy(c, at, t.origAgent(c), PartyCustomer)
		return
	case l.Role != roleAgent || l.Answered:
		return
	}
	if t.localAnswerIsPBX(l, at) {
		return
	}
	t.memberRings(l, nil, at)
	if l.Local && l.FollowMe && c.Call.AnsweredAt != nil {
		// A Follow Me group leg answers once what it dialled answered: an
		// extension of the list (a colleague's phone) already answered as
		// its own agent. Only an outside number's answer is the agent's.
		l.Ringing, l.Answered = false, true
		return
	}
	if t.agentDeviceAnswered(c, l) {
		// The same agent's other device already answered (the phone behind
		// a Local member, then the queue's AgentConnect for the Local):
		// one person, one answer.
		l.Ringing, l.Answered = false, true
		return
	}
	l.Ringing, l.Answered = false, true
	// Every device of this agent (a Local and the phone behind it) stops
	// ringing with this answer.
	for _, x := range c.Legs {
		if x.Agent == l.Agent {
			x.Ringing = false
		}
	}
	// Other agents' devices in a ring-all stop ringing.
	defer func() {
		for _, x := range c.Legs {
			if x != l && x.Role == roleAgent && x.Ringing && x.Agent != l.Agent {
				t.stopRinging(x, at, "ANSWERED_ELSEWHERE")
			}
		}
	}()
	if l.Agent == c.OrigAgent && c.Call.AnsweredAt == nil {
		// Click-to-call: the agent took the call; the customer's answer
		// establishes it.
		c.Call.State = "dialing"
		t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
		return
	}
	if c.Call.AnsweredAt != nil && c.Call.Agent != nil && c.Call.Agent.Extension != l.Agent && t.agentOnCall(c, c.Call.Agent.Extension) {
		// A consultation: another agent answers while the one who has the
		// call is still on it (holding the customer). The CRM hears of the
		// answer; the call stays that agent's until a transfer completes.
		if t.customersGone(c) {
			// Unless the customer already hung up (FreeSWITCH completes a
			// caller's hangup only when the agent's att_xfer ends): the
			// answer puts nobody through to the customer. For the call the
			// ring ended unanswered, as on Asterisk, where such a call
			// ends at once.
			l.Answered, l.Ringing = false, true
			t.stopRinging(l, at, "")
			return
		}
		t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
		return
	}
	t.establish(c, at, t.agent(l))
}

// customersGone reports whether every party of c that is no agent (its
// caller, the customer an agent called) has asked to hang up or left, and
// c had one.
func (t *Tracker) customersGone(c *conversation) bool {
	had := false
	for _, x := range c.Legs {
		if x.Role != roleCaller && !x.Customer {
			continue
		}
		had = true
		if len(x.Channels) > 0 && !x.Asked {
			return false
		}
	}
	return had
}

// agentOnCall reports whether agent still has a live, answered leg in c,
// or is the agent whose own phone placed it and is still on it.
func (t *Tracker) agentOnCall(c *conversation, agent string) bool {
	for _, x := range c.Legs {
		if len(x.Channels) == 0 {
			continue
		}
		if x.Role == roleAgent && x.Agent == agent && x.Answered || placingAgent(x) == agent {
			return true
		}
	}
	return false
}

// placingAgent is the agent whose own phone is l, the caller leg of the
// call that agent placed (outbound or internal), or "".
func placingAgent(l *leg) string {
	c := l.conv
	if l.Role != roleCaller || c.OrigAgent == "" || (l.Ext != c.OrigAgent && l.Agent != c.OrigAgent) {
		return ""
	}
	return c.OrigAgent
}

// dialled resolves the dialling and the dialled leg of ev and puts the
// dialled one in the dialler's conversation, whatever the PBX's linked id
// says. to is nil when there is nothing to track.
func (t *Tracker) dialled(ev ChannelEvent) (from, to *leg) {
	from = t.channel(ev.Channel, ev.At)
	to = t.legs[ev.Peer.ID]
	if to == nil {
		p := *ev.Peer
		p.LinkedID = ev.Channel.ID
		to = t.channel(p, ev.At)
	} else {
		t.refresh(to, *ev.Peer)
	}
	if from == nil || to == nil || from == to {
		return nil, nil
	}
	if (t.strandedAgent(from, to) || from.Redirected && from.Role != roleCaller && len(from.Bridges) == 0) && !sentOnByCustomer(from.conv) {
		t.splitOff(from, to, ev.At)
	}
	if to.conv != from.conv {
		t.moveLeg(to, from.conv)
	}
	to.Dialled = true
	from.conv.Dialled = true
	return from, to
}

// sentOnByCustomer reports whether the customer's own phone transferred
// the agent away (a REFER from the far end, told as the call's last
// transfer): what the agent's leg dials then is where the customer put the
// call, the same call, as when the agent's phone placed it.
func sentOnByCustomer(c *conversation) bool {
	return c.LastTransfer != nil && c.LastTransfer.By == PartyCustomer
}

// placedByAgent notes that an agent's own phone started the call (outbound
// or internal) when its first leg dials out: an agent's device whose caller
// id is an extension too (a trunk call landing on a look-alike channel
// carries the customer's number).
func (t *Tracker) placedByAgent(from *leg) {
	c := from.conv
	if from.Role != roleCaller || c.OrigAgent != "" || c.Outbound || !t.isAgentDevice(from) {
		return
	}
	if n := c.Call.Caller.Number; n != "" && !t.cfg.AgentPattern.MatchString(n) {
		return
	}
	c.OrigAgent = from.Ext
	if c.Call.Caller.Number == from.Ext {
		t.learnName(from.Ext, c.Call.Caller.Name)
	}
	c.Call.Agent = &Agent{Extension: from.Ext, Name: t.agentName(from.Ext)}
	t.dirty[c.ID] = c
}

// establish marks the call talking and emits call.answered.
func (t *Tracker) establish(c *conversation, at time.Time, agent *Agent) {
	t.establishBy(c, at, agent, "")
}

// establishBy is establish naming whose answer it was (Event.Party).
func (t *Tracker) establishBy(c *conversation, at time.Time, agent *Agent, party string) {
	if c.Call.AnsweredAt == nil {
		// A ring attempt's release before this answer (busy, no answer, a
		// redirect, a ring-all's loser) is not why the call will end.
		c.Cause = nil
		a := at.UTC()
		c.Call.AnsweredAt = &a
		w := int64(a.Sub(c.Call.StartedAt).Seconds())
		c.Call.WaitS = &w
	}
	c.Call.Agent = agent
	c.Call.State = "talking"
	c.Queued, c.Parked, c.LastTransfer = false, nil, nil
	t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent, e.Party = agent, party })
}

// followMeAgent is the agent of the Follow Me that from dials to alongside
// to: the agent of a local leg from dialled too (Local/FMPR-<ext>).
func (t *Tracker) followMeAgent(from, to *leg) string {
	for _, x := range from.conv.Legs {
		if x != to && x.Local && x.Dialled && x.Role == roleAgent && x.Agent != "" && strings.EqualFold(x.Context, to.Context) &&
			slices.Contains(from.Channels, x.DialledBy) { // dialled with to, in the one Dial
			return x.Agent
		}
	}
	return ""
}

// localDeviceFailed: a local pair standing for an agent (loopback/1001,
// Local/1001@ctx) dialled that agent's device, and the device refused or
// never answered, with no other device of the agent still ringing. Until
// the pair dials someone else (a follow-me's mobile: that answer is still
// the agent's, localRedials), an answer of the pair is its dialplan's own
// (FreeSWITCH's vanilla Local_Extension answers and plays voicemail), not
// the agent's (localAnswerIsPBX).
func (t *Tracker) localDeviceFailed(pair, dev *leg, status string) {
	if pair == nil || pair == dev || !pair.Local || pair.Role != roleAgent || pair.Answered ||
		pair.Agent == "" || pair.Agent != dev.Agent || pair.conv != dev.conv {
		return
	}
	for _, x := range pair.conv.Legs {
		if x != pair && x != dev && x.Agent == pair.Agent && x.Ringing {
			return
		}
	}
	if status == "" {
		status = "NOANSWER"
	}
	pair.DeviceFailed = status
	t.dirty[pair.conv.ID] = pair.conv
}

// localRedials: a pair whose agent's device failed dials a party (not
// another local pair, whose far end is not known yet): it rings on for
// the agent (a follow-me).
func (t *Tracker) localRedials(pair, to *leg) {
	if pair != nil && pair.DeviceFailed != "" && to != nil && !to.Service {
		pair.DeviceFailed = ""
		t.dirty[pair.conv.ID] = pair.conv
	}
}

// localAnswerIsPBX settles the answer of a pair whose agent's device
// failed and which dialled nobody since: the PBX answered (voicemail), the
// agent's ring ended unanswered.
func (t *Tracker) localAnswerIsPBX(l *leg, at time.Time) bool {
	if l.DeviceFailed == "" || !l.Local || l.Role != roleAgent || l.Answered {
		return false
	}
	status := l.DeviceFailed
	l.DeviceFailed = ""
	t.stopRinging(l, at, status)
	l.Role, l.Service = roleOther, true
	t.dirty[l.conv.ID] = l.conv
	return true
}

// firstDialsOut: the party the PBX dialled first (PBXDialled) is sent on
// to an outside number exten (Originate Channel=PJSIP/<mobile>@trunk,
// Exten=<customer>: a click-to-call whose agent is on a phone the PBX
// does not know): it places the call, and the number it dials is the
// callee.
func (t *Tracker) firstDialsOut(from, to *leg, exten string) {
	c := from.conv
	if from.Role != roleCaller || !c.PBXDialled || c.Call.AnsweredAt != nil || to.Role != roleOther || to.Local || to.Service ||
		exten == "" || exten == "s" || t.cfg.AgentPattern.MatchString(exten) || t.isAgentDevice(to) {
		return
	}
	c.PBXDialled = false
	c.Call.Callee.Number = exten
	c.Call.Direction, c.DirectionFixed = DirectionOutbound, true
	t.dirty[c.ID] = c
}
