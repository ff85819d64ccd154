package bridge

import (
	"slices"
	"time"
)

// Hold, park and transfers: the call moving between parties.

// hold follows one hold state per conversation: held when its first leg
// goes on hold, resumed when its last comes off (an Asterisk phone's hold
// raises Hold on the agent's channel and MusicOnHoldStart on the
// customer's: one hold).
func (t *Tracker) hold(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		return
	}
	c := l.conv
	on := ev.Kind == ChanHold
	if ev.Music && l.Local && l.Answered && l.Role == roleAgent {
		// Music on the local pair that answered the call for its agent (a
		// queue's or ring group's member Local/.../n) is no hold of its
		// own: the pair plays the music of a hold indicated to it (Local
		// channels intercept hold, core_unreal.c ast_unreal_indicate), a
		// hold the holder's own channel tells (Hold), or the music of a
		// parking lot its half was moved to (ParkedCall tells that).
		return
	}
	if on && !ev.Music {
		// Who holds decides what may end the hold (the music a hold starts
		// follows it).
		c.FeatureHold = ev.FeatureHold
	}
	// Music while queued, parked or in an IVR is not a hold: only a
	// talking call is held.
	if c.Call.AnsweredAt == nil || c.Parked != nil || l.Held == on || (on && len(l.Bridges) == 0 && l.Role != roleAgent) {
		return
	}
	was := anyHeld(c)
	l.Held = on
	t.dirty[c.ID] = c
	if anyHeld(c) == was {
		return
	}
	if !on && c.FeatureHold {
		// The PBX's own transfer key held the call: its end is told once
		// ResumeSettle shows it was no transfer's.
		at := ev.At
		c.ResumeAt = &at
		t.resuming[c.ID] = c
		return
	}
	if !on {
		t.resume(c, ev.At)
		return
	}
	c.Call.State = "held"
	t.emit(c, EventCallHeld, ev.At, func(e *Event) { e.Agent = c.Call.Agent })
}

// ResumeSettle is how long the end of a hold the PBX's own transfer key
// made waits before it is told as call.resumed. That hold ends to hand the
// call on, too: Asterisk's blind transfer key unholds the transferer and
// then transfers the customer (bridge_basic.c feature_blind_transfer), and
// the customer's music stops as an attended transfer merges the bridges.
// The transfer, reported within microseconds to milliseconds, is then the
// event: the customer never heard the agent again. A phone's own hold ends
// at once: its device did resume, even just before its REFER.
const ResumeSettle = 100 * time.Millisecond

// settleResume tells the waiting resume of ev's call once ev shows, by
// the PBX's clock, that ResumeSettle has passed. (Only the call's own
// events: the clocks of events of other calls need not agree, when the
// PBX stamps them on different threads or a test interleaves captures.)
func (t *Tracker) settleResume(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil && ev.Peer != nil {
		l = t.legs[ev.Peer.ID]
	}
	if l == nil || l.conv.ResumeAt == nil {
		return
	}
	if c := l.conv; ev.At.Sub(*c.ResumeAt) > ResumeSettle {
		t.resume(c, *c.ResumeAt)
	}
}

// SettleResumes tells every resume still waiting (see ResumeSettle): the
// engine calls it once ResumeSettle has passed without input, and a
// resync, which no transfer follows.
func (t *Tracker) SettleResumes() {
	var due []*conversation
	for id, c := range t.resuming {
		if c.ResumeAt == nil || c.Ended {
			c.ResumeAt = nil
			delete(t.resuming, id)
			continue
		}
		due = append(due, c)
	}
	slices.SortFunc(due, func(a, b *conversation) int { return a.ResumeAt.Compare(*b.ResumeAt) })
	for _, c := range due {
		t.resume(c, *c.ResumeAt)
	}
}

// Resuming reports whether a resume waits to be told.
func (t *Tracker) Resuming() bool { return len(t.resuming) > 0 }

// resume tells that c's hold ended at at.
func (t *Tracker) resume(c *conversation, at time.Time) {
	if c.ResumeAt != nil {
		c.ResumeAt = nil
		delete(t.resuming, c.ID)
	}
	c.Call.State = "talking"
	t.emit(c, EventCallResumed, at, func(e *Event) { e.Agent = c.Call.Agent })
}

func anyHeld(c *conversation) bool {
	for _, l := range c.Legs {
		if l.Held {
			return true
		}
	}
	return false
}

// unhold clears every hold of c without an event: what ends it (a
// transfer completing, a retrieval) is the event.
func unhold(c *conversation) {
	for _, l := range c.Legs {
		l.Held = false
	}
	c.ResumeAt, c.FeatureHold = nil, false
}

func (t *Tracker) dialplan(l *leg, ev ChannelEvent) {
	c := l.conv
	prev := l.LastExten
	l.LastExten = ev.Exten
	t.clickToCallRouted(l, ev.Exten)
	if l.Role != roleCaller && l.ByChannel && !l.Local && l.Answered && len(l.Bridges) == 0 && ev.Priority == 1 && ev.Exten != "" && c.Parked == nil {
		// A channel a channel dialled (Dial, Queue; not an originate) runs
		// no dialplan in the call; starting at an extension's first step
		// after its bridge, it was sent there (manager.c action_redirect,
		// bridge_after.c's goto). Not a parked call's comeback: the far
		// party of an outbound call parked past the lot's timeout runs
		// park-dial (res_parking parking_duration_callback's comeback goto,
		// bridge_after.c) and rings the parker for the same call.
		l.Redirected = true
	}
	// A talking caller that starts over at another extension was redirected: a blind transfer (AMI Redirect, a feature
	// code). The agent it left is the transferer.
	// A channel in a bridge runs no dialplan, so a new extension at priority
	// 1 while the agent is still there can only be a redirect.
	// So does the far party an agent's call reached (app_dial's peer, no
	// dialplan of its own in the call): a Redirect gives it a pbx at the
	// new place (bridge_after.c ast_bridge_setup_after_goto), while still
	// in the bridge (sip-ami-redirect-agent-leg's order).
	// Only while it is still in the bridge: one that left it runs the
	// dialplan for its own end (a hangup handler, ast_hangup ->
	// ast_pbx_hangup_handler_run) or because the agent hung up (Dial's
	// F() option, app_dial.c OPT_CALLEE_GO_ON): no transfer.
	sentOn := l.Customer && l.ByChannel && l.Answered && !l.Local && len(l.Bridges) > 0
	if l.Role != roleCaller && !sentOn || c.Call.AnsweredAt == nil || ev.Priority != 1 {
		return
	}
	if ev.Exten == "" || ev.Exten == prev {
		return
	}
	if ev.Exten == "h" || l.Asked {
		// A caller that hangs up runs its context's h extension (pbx.c
		// ast_pbx_h_exten_run; FreePBX gives every context one: Macro
		// (hangupcall)) before it is gone, while a Local member's pair
		// (Local/NNN@from-queue/n) may still be up: its hangup, no transfer.
		return
	}
	var from *Agent
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Answered && len(x.Channels) > 0 {
			from = t.agent(x)
		}
	}
	if from == nil && sentOn {
		// The far party of the call an agent placed (a click-to-call): the
		// agent whose phone placed it handed it on.
		for _, x := range c.Legs {
			if a := placingAgent(x); a != "" && len(x.Channels) > 0 {
				from = &Agent{Extension: a, Name: t.agentName(a)}
			}
		}
	}
	if from == nil || (c.Call.Agent != nil && c.Call.Agent.Extension != from.Extension) {
		return
	}
	t.transferred(c, &Transfer{Mode: "blind", From: from, To: ev.Exten}, l, ev.At)
}

// transferred records that c moved from one agent to another party. A
// blind transfer's next agent to answer owns the call; an attended one
// lands on the consultation's target, who already answered.
func (t *Tracker) transferred(c *conversation, tr *Transfer, transferee *leg, at time.Time) {
	popped := c.Rang
	c.Rang = nil
	var target *leg
	if tr.Mode == "attended" {
		if tr.To != "" && tr.To == c.Call.Caller.Number {
			// A phone's REFER sent on the consultation's dialog: Asterisk
			// swaps the target into the customer's bridge and names the
			// customer as the target (SWAP_TO_PEER_BRIDGE). The leg that
			// answered the consultation is the target.
			tr.To = ""
		}
		target = t.transferTarget(c, tr)
	}
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Answered && x != target && x != transferee {
			// The agents who had the call; one moved by the transfer (an
			// internal call's agent handed to a colleague) stays a party.
			x.Role = roleOther
		}
		if tr.From != nil && placingAgent(x) == tr.From.Extension {
			// The agent's phone that placed the call handed it on: its
			// hangup from now on is not the call's caller hanging up.
			x.Role = roleOther
		}
	}
	unhold(c)
	c.Parked = nil
	if c.Call.Agent != nil {
		c.HadAgent = c.Call.Agent
	}
	c.Call.Agent = nil
	c.Call.State = "transferring"
	if target != nil {
		c.Call.Agent = t.agent(target)
		c.Call.State = "talking"
		if tr.To == "" {
			tr.To = target.Agent
		}
	}
	// The conversation goes on: the release that counts is the final one,
	// whatever the transferer's leg did (FreeSWITCH may report its hangup
	// before the transfer itself).
	c.FirstDown, c.Cause, c.OrigAgent, c.HupLeg, c.Refused, c.HupAside = "", nil, "", "", "", false
	t.emit(c, EventCallTransferred, at, func(e *Event) { e.Transfer = tr })
	// A transfer starts a new round of pops. An agent still ringing (the
	// target of a transfer completed before it answered, Asterisk's blond
	// transfer) keeps the pop it has: its phone did not ring again, and its
	// answer or ring end closes that pop. One ringing without a pop in
	// this call yet rings now.
	for _, x := range c.Legs {
		if x.Role != roleAgent || !x.Ringing || x.Answered || x.Agent == "" || c.Rang.has(x.Agent) {
			continue
		}
		if popped.has(x.Agent) {
			c.Rang.add(x.Agent)
			continue
		}
		t.ring(x, at, "")
	}
	// Kept after the re-rings (a ring ends it): the same transfer told
	// again is no new one.
	c.LastTransfer = nil
	if tr.Mode == "blind" {
		c.LastTransfer = tr
	}
}

// transferTarget finds the leg an attended transfer hands the call to:
// the answered agent named by the transfer, else the one who answered
// last other than the transferer.
func (t *Tracker) transferTarget(c *conversation, tr *Transfer) *leg {
	var last *leg
	for _, x := range c.Legs {
		if x.Role != roleAgent || !x.Answered || len(x.Channels) == 0 {
			continue
		}
		if tr.To != "" && x.Agent == tr.To {
			return x
		}
		if tr.From == nil || x.Agent != tr.From.Extension {
			last = x
		}
	}
	return last
}

func (t *Tracker) transfer(ev ChannelEvent) {
	var c *conversation
	var from *Agent
	var transferee *leg
	if l := t.legs[ev.Channel.ID]; l != nil {
		from = t.agent(l)
		if a := placingAgent(l); from == nil && a != "" {
			// The agent transfers the call its own phone placed.
			from = &Agent{Extension: a, Name: t.agentName(a)}
		}
		c = l.conv
	} else if a := ev.Channel.Endpoint; a != "" && t.cfg.AgentPattern != nil && t.cfg.AgentPattern.MatchString(a) {
		// The transferer hung up before the switch joined the two others
		// (FreeSWITCH att_xfer): its device names it.
		from = &Agent{Extension: a, Name: t.agentName(a)}
	}
	if ev.Peer != nil {
		if p := t.legs[ev.Peer.ID]; p != nil {
			c, transferee = p.conv, p
		}
	}
	if c == nil || c.Ended {
		return
	}
	by := ""
	if l := t.legs[ev.Channel.ID]; ev.Named && from == nil && l != nil && l.conv == c && (l.Customer || l.Far || l.Role == roleCaller) {
		// The customer's phone transferred the agent away (a REFER from
		// the far end): no agent handed the call on.
		by = PartyCustomer
	}
	if from == nil && by == "" && c.Call.Agent != nil {
		// The PBX named the transferred party, not the transferer: the
		// agent who had the call moved it.
		a := *c.Call.Agent
		from = &a
	}
	if g := c.LastTransfer; g != nil && !ev.Attended && g.To == ev.Exten {
		return // told already: a second account of the same transfer
	}
	mode := "blind"
	if ev.Attended {
		mode = "attended"
		if l := t.legs[ev.Channel.ID]; l != nil && transferee != nil && !transferee.Held && shareBridge(l, transferee) {
			// The transferer stays with the customer, whose music stopped
			// (Asterisk's threeway key): the customer hears it again.
			switch {
			case c.ResumeAt != nil:
				t.resume(c, *c.ResumeAt)
			case anyHeld(c):
				t.resume(c, ev.At)
			}
		}
	}
	t.transferred(c, &Transfer{Mode: mode, From: from, By: by, To: ev.Exten}, transferee, ev.At)
	if ev.Attended {
		t.standInParked(c, ev.At)
	}
}

func shareBridge(a, b *leg) bool {
	for _, x := range a.Bridges {
		if slices.Contains(b.Bridges, x) {
			return true
		}
	}
	return false
}

// clickToCallRouted: the agent's leg of a click-to-call, answered, is sent
// to the number it calls (FreeSWITCH: originate <agent> <to> XML <context>).
// That number is the callee before anything is dialled, and stays it if
// nothing ever is (no route for it).
func (t *Tracker) clickToCallRouted(l *leg, exten string) {
	c := l.conv
	if !c.Outbound || l.Role != roleAgent || l.Agent != c.OrigAgent || c.Call.Callee.Number != "" ||
		exten == "" || specialExten(exten) || exten == l.Agent || t.cfg.AgentPattern.MatchString(exten) {
		return
	}
	c.Call.Callee.Number = exten
	t.dirty[c.ID] = c
}

// specialExten: the dialplan's own extensions, no number anyone calls
// (pbx.c: s start, i invalid, t/T timeouts, h hangup, e exception, a/o
// voicemail keys; fax detection, talk detection).
func specialExten(exten string) bool {
	switch exten {
	case "s", "i", "t", "T", "h", "e", "a", "o", "fax", "talk":
		return true
	}
	return false
}
