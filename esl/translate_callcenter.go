package esl

import "github.com/ctibridge/ctibridge/bridge"

// mod_callcenter reports a queue call as CUSTOM callcenter::info events
// with CC-Action. The agent's leg itself (cc_side=agent) is announced with
// its first event, as ChanAgentCalled (see origin).
func (x *txn) callcenter() {
	e := x.e
	member := e.Get("CC-Member-Session-UUID")
	queue, agent := e.Get("CC-Queue"), e.Get("CC-Agent")
	memberState := func() *chanState {
		if member == e.Get("Unique-ID") {
			if st := x.self(); st != nil {
				x.open(st)
				return st
			}
		}
		return x.t.stateOf(member, nil, "")
	}
	switch e.Get("CC-Action") {
	case "member-queue-start":
		if member == "" || x.t.gone.has(member) {
			return
		}
		st := memberState()
		if !st.opened {
			return // a member never seen: joining would open it
		}
		x.emit(bridge.ChanQueueJoin, st, func(ev *bridge.ChannelEvent) { ev.Queue = queue })
	case "agent-offering":
		// Nothing yet: the agent's leg, created right after the offer,
		// carries cc_member_session_uuid, cc_agent and cc_queue, and
		// ChanAgentCalled goes out with its first event, so Peer is always
		// set. Without a leg, bridge-agent-fail follows.
	case "bridge-agent-start":
		leg := e.Get("CC-Agent-UUID")
		if member == "" || leg == "" || x.t.gone.has(member) {
			return
		}
		var agentLeg *chanState
		if leg == e.Get("Unique-ID") {
			agentLeg = x.self()
		}
		if agentLeg == nil {
			agentLeg = x.t.stateOf(leg, nil, "")
		} else {
			x.open(agentLeg)
		}
		x.emit(bridge.ChanAgentConnect, x.t.stateOf(member, nil, ""), func(ev *bridge.ChannelEvent) {
			ev.Peer, ev.Queue, ev.Member, ev.Interface = peer(agentLeg), queue, agent, agentLeg.ch.Name
			ev.Agent = callcenterAgent(agent)
		})
	case "bridge-agent-fail":
		if member == "" {
			return
		}
		leg := x.t.stateOf(e.Get("CC-Agent-UUID"), nil, "")
		x.emit(bridge.ChanAgentRingNoAnswer, x.t.stateOf(member, nil, ""), func(ev *bridge.ChannelEvent) {
			if leg.ch.ID != "" {
				ev.Peer = peer(leg)
			}
			ev.Queue, ev.Member, ev.Interface, ev.Reason = queue, agent, leg.ch.Name, e.Get("CC-Hangup-Cause")
		})
	case "member-queue-end":
		if member == "" {
			return
		}
		kind, reason := x.queueEnd(member)
		x.emit(kind, x.t.stateOf(member, nil, ""), func(ev *bridge.ChannelEvent) { ev.Queue, ev.Reason = queue, reason })
	case "agent-status-change", "agent-state-change":
		if agent == "" {
			return
		}
		a := x.t.ccAgents[agent]
		if v := e.Get("CC-Agent-Status"); v != "" {
			a.status = v
		}
		if v := e.Get("CC-Agent-State"); v != "" {
			a.state = v
		}
		status, paused := agentStatus(a.status, a.state)
		if status == "" {
			return
		}
		if len(x.t.ccAgents) > 10000 { // bounded: names come from the wire
			clear(x.t.ccAgents)
		}
		x.t.ccAgents[agent] = a
		ev := bridge.ChannelEvent{Kind: bridge.ChanAgentState, At: x.at, Member: agent, Agent: callcenterAgent(agent), Status: status, Paused: paused}
		if paused {
			ev.Reason = a.status
		}
		x.out = append(x.out, ev)
	}
}

// ccAgent is a mod_callcenter agent as its events left it.
type ccAgent struct{ status, state string }

// queueEnd reads member-queue-end. CC-Cause Terminated: the member was
// served (its agent's bridge ended). CC-Cause Cancel: it left without an
// agent, for CC-Cancel-Reason: TIMEOUT and NO_AGENT_TIMEOUT (the queue gave
// up), EXIT_WITH_KEY (the caller chose to leave, and goes on in the
// dialplan), BREAK_OUT (the wait was broken: the caller hung up, or a
// transfer took the channel away) and NONE (an agent had been found, but
// the caller was gone). It is an abandon when the caller hung up (the event
// carries the member channel's state, which is then hangup), said with
// AbandonCallerHungUp; else a leave with CC-Cancel-Reason.
func (x *txn) queueEnd(member string) (bridge.ChannelEventKind, string) {
	e := x.e
	reason := e.Get("CC-Cause")
	if reason != "Cancel" {
		return bridge.ChanQueueLeave, reason
	}
	r := e.Get("CC-Cancel-Reason")
	down := x.t.gone.has(member)
	if e.Get("Unique-ID") == member {
		down = down || hangingUp(e)
	}
	if down || r == "" || r == "NONE" {
		return bridge.ChanQueueAbandon, bridge.AbandonCallerHungUp
	}
	return bridge.ChanQueueLeave, r
}

// agentStatus maps mod_callcenter's agent status (availability) and state
// (activity), the last of each the agent's events gave, to the model's
// agent states. mod_callcenter keeps the two apart (cc_agent_update sets
// one or the other) and offers calls only to an Available agent that is
// Waiting: an agent On Break or Logged Out is that whatever its state (a
// call it had ends with state Waiting, which does not make it available),
// and an Available agent still in a call is busy.
func agentStatus(status, state string) (string, bool) {
	switch status {
	case "Logged Out":
		return "logged_out", false
	case "On Break":
		return "paused", true
	}
	switch state {
	case "Waiting":
		return "available", false
	case "Receiving", "In a queue call", "Reserved":
		return "busy", false
	case "Idle":
		return "unavailable", false
	}
	if status == "Available" || status == "Available (On Demand)" {
		return "available", false
	}
	return "", false
}
