package bridge

import (
	"slices"
	"time"
)

// Release: who hung up (from the PBX's own account), how the call ended,
// the one call.ended.

func (t *Tracker) hangup(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		// A channel the model never saw (its call began while the link was
		// down): a snapshot taken just before this hangup may still list
		// it, and must not adopt it.
		if !ev.Resynced {
			t.rememberGone(ev.Channel.ID, ev.At)
		}
		return
	}
	c := l.conv
	if ev.HangupSource != "" {
		t.reportsRequests = true
	}
	switch {
	case ev.HangupSource == HangupByEndpoint:
		t.hangupRequest(l, ev.Cause)
	case ev.HangupSource == "" && !ev.Resynced && !c.Ended && !(l.Local && (t.reportsRequests || l.Service)):
		// A PBX that says who asked for its devices' hangups says nothing
		// for its own local pairs (FreeSWITCH's loopback): that silence
		// is no gap in its account. A pair running the PBX's own
		// application (loopback/app=voicemail) is the PBX's, even before
		// any device's hangup has shown that the PBX tells.
		c.SourcesUnknown = true
	}
	t.dropChannel(l, ev.Channel.ID)
	t.rememberGone(ev.Channel.ID, ev.At)
	l.Channels = slices.DeleteFunc(l.Channels, func(id string) bool { return id == ev.Channel.ID })
	if c.Ended {
		return
	}
	// Its saved row must forget the channel too: the PBX may give the id
	// to a new channel (forgetGone), which a restore would otherwise hand
	// to both calls.
	t.dirty[c.ID] = c
	// The first release with a real cause tells why the call ended, and who
	// ended it once it was talking.
	talking := t.talking(l)
	if c.Cause == nil && ev.Cause != 0 && (c.Call.AnsweredAt == nil || talking) {
		c.Cause = &HangupCause{Code: ev.Cause, Text: causeText(ev.Cause, ev.CauseText)}
	}
	if c.Call.AnsweredAt != nil && c.FirstDown == "" && !ev.Resynced && talking {
		c.FirstDown = t.partyOf(l)
	}
	if len(l.Channels) > 0 {
		return // the other half of a local pair is still up
	}
	if l.Role == roleAgent && l.Ringing {
		reason := "NOANSWER"
		switch ev.Cause {
		case 17:
			reason = "BUSY"
		case 0, 16, 26:
			if c.Call.AnsweredAt != nil || ev.Cause == 26 {
				reason = "ANSWERED_ELSEWHERE"
			}
		}
		t.stopRinging(l, ev.At, reason)
	}
	l.Held = false
	for _, b := range slices.Clone(l.Bridges) {
		t.unbridge(l, b)
	}
	c.Legs = slices.DeleteFunc(c.Legs, func(x *leg) bool { return x == l })
	if l.Role == roleCaller && len(c.Legs) > 0 {
		c.CallerGone = true
	}
	if l.Recording {
		// The recording stops with its channel; the CRM gets it once the
		// call has ended, attached to the whole call.
		l.Recording = false
		c.PendingRecs = append(c.PendingRecs, l.RecFile)
	}
	if len(c.Legs) == 0 {
		t.end(c, ev.At, ev.Resynced)
	} else {
		t.agentHandsOver(c, l, ev.At)
		t.releaseServed(c, ev.At)
	}
	t.dirty[c.ID] = c
}

// agentHandsOver: gone, the call's agent's last leg, l, leaves another
// agent's answered device in a bridge with the call's caller (a bridge
// move put it there before l's own bridge dissolved: bridge.c
// ast_bridge_add_channel's bridge_move_locked, then
// bridge_dissolve_check_stolen hanging up what was left): that agent
// takes the call (as bridgeEnter's takesOver in the other order).
func (t *Tracker) agentHandsOver(c *conversation, l *leg, at time.Time) {
	if l.Role != roleAgent || !l.Answered || c.Ended || c.Call.AnsweredAt == nil || c.Call.Agent == nil ||
		c.Call.Agent.Extension != l.Agent || t.agentOnCall(c, l.Agent) {
		return
	}
	for _, y := range c.Legs {
		if y.Role != roleAgent || !y.Answered || len(y.Channels) == 0 || y.Agent == l.Agent || y.Agent == "" {
			continue
		}
		for _, b := range y.Bridges {
			if t.takesOver(y, b) {
				t.takeCall(y, at)
				return
			}
		}
	}
}

// releaseServed ends c when only served agents are left in it, each alone
// in its bridges (none, or a holding bridge): the caller has gone, and the
// agent's channel, still up in the PBX service, would keep the call open
// until the agent logs out. Each such channel goes back to a quiet call of
// its own, which the next caller's bridge takes again (selfServed), and
// which ends unseen if none comes.
func (t *Tracker) releaseServed(c *conversation, at time.Time) {
	if c.Ended || len(c.Legs) == 0 {
		return
	}
	for _, x := range c.Legs {
		if !x.Served || len(x.Channels) == 0 {
			return
		}
		for _, b := range x.Bridges {
			if len(t.bridged[b]) > 1 {
				return
			}
		}
	}
	for _, x := range slices.Clone(c.Legs) {
		t.ownCall(x, at).Quiet = true
	}
	t.dirty[c.ID] = c
	t.end(c, at, false)
}

// talking reports whether l is a party of the conversation as it is now:
// the caller, an agent who answered, the customer an agent reached, an
// outside party the call was put through to.
func (t *Tracker) talking(l *leg) bool {
	return l.Role == roleCaller || l.Answered && (l.Role == roleAgent || l.Customer || l.Far || l.Role == roleOther && l.conv.OrigAgent != "")
}

// partyOf names l's party for HupLeg: caller, origin (the agent who
// placed the call), agent or customer.
func (t *Tracker) partyOf(l *leg) string {
	c := l.conv
	switch {
	case l.Role == roleCaller:
		return "caller"
	case l.Role == roleAgent && l.Agent != "" && l.Agent == c.OrigAgent && c.Outbound:
		return "origin"
	case l.Role == roleAgent:
		return "agent"
	}
	return "customer"
}

// hangupRequest notes that l's own device or network asked to end it:
// the PBX's account of who hung up, whatever order the releases come in.
// cause is the request's hangup cause, 0 when the PBX gave none.
func (t *Tracker) hangupRequest(l *leg, cause int) {
	c := l.conv
	if c.Ended || c.APIHangup {
		return // our own hangup command causes requests on the partners
	}
	if l.Local && (t.deviceBehind(l) || l.Role != roleCaller && !t.connects(l)) {
		// A local channel in front of the agent's phone has no device of
		// its own: its request is plumbing (Asterisk's core_unreal queues
		// one when the other half goes or the pair optimizes away). The
		// phone's own request says who hung up. A dialled pair bridged to
		// no party any more (optimized away: the device it dialled swapped
		// into the caller's bridge) speaks for nobody either.
		return
	}
	t.dirty[c.ID] = c
	if c.Call.AnsweredAt != nil {
		if c.HupLeg == "" && t.talking(l) {
			c.HupLeg = t.partyOf(l)
			c.HupAside = !t.withCaller(l)
			l.Asked = true
		}
		return
	}
	switch {
	case l.Role == roleCaller && c.PBXDialled && networkCause(cause):
		// The party the PBX dialled by itself (an originate to a
		// gateway or a trunk) was never reached: its carrier refused the
		// number (404 -> 1, 503 -> 34 or 41), the network's act, not the
		// callee's.
		if c.HupLeg == "" {
			c.HupLeg = "system"
		}
	case l.Role == roleCaller && c.Refused != "" && !c.Queued && !c.CallerUp && !t.anyRinging(c) && !t.dialling(c):
		// The party rung refused (busy) and nothing rings any more: the
		// refusal ended the call, whatever ends the caller's leg after it
		// (FreePBX's macro-dialout-trunk s-BUSY runs Busy(), whose 486 ends
		// the phone's INVITE: chan_pjsip_session_end queues a hangup
		// request as if the phone had asked). A caller the PBX answered
		// after the refusal (voicemail) hangs up for itself.
	case l.Role == roleCaller:
		if c.HupLeg == "" {
			c.HupLeg = "caller"
		}
		if c.Queued || t.anyRinging(c) {
			c.CallerCancelled = true
		}
	case l.Role == roleAgent && l.Agent != "" && l.Agent == c.OrigAgent:
		if c.HupLeg == "" {
			c.HupLeg = t.partyOf(l) // the agent gave up calling out
		}
		if l.Answered && t.anyRinging(c) {
			// An originated agent's leg, up, gives up on the far party
			// ringing: cancelled, as when the agent's phone dialled it.
			c.CallerCancelled = true
		}
	case l.Customer && networkCause(cause):
		// The far party's carrier refused the number (404 -> 1, 503 -> 34,
		// res_pjsip.c ast_sip_hangup_sip2cause): the network, not the
		// person called, ended that attempt. If nothing else is tried, it
		// ended the call: the caller's leg the dialplan then refuses
		// (Congestion(): chan_pjsip answers the phone's INVITE 503 and
		// queues a hangup request as if the phone had asked) did not.
		if c.Refused == "" {
			c.Refused = "system"
		}
	case l.Role == roleAgent && l.Ringing, l.Customer:
		c.Refused = t.partyOf(l)
	}
}

// withCaller reports whether l is in a bridge with its call's caller,
// directly or through local pairs (a queue's member Local/.../n between the
// agent's phone and the caller).
func (t *Tracker) withCaller(l *leg) bool {
	if l.Role == roleCaller {
		return true
	}
	seen := map[*leg]bool{l: true}
	next := []*leg{l}
	for len(next) > 0 {
		x := next[0]
		next = next[1:]
		for _, b := range x.Bridges {
			for _, y := range t.bridged[b] {
				if seen[y] || len(y.Channels) == 0 {
					continue
				}
				if y.conv == l.conv && y.Role == roleCaller {
					return true
				}
				seen[y] = true
				if y.Local {
					next = append(next, y)
				}
			}
		}
	}
	return false
}

// networkCause reports whether a Q.850 cause says the network could not
// reach the party (no number, no route, congestion, out of order), not
// that the party refused.
func networkCause(cause int) bool {
	switch cause {
	case 1, 2, 3, 27, 28, 34, 38, 41, 42:
		return true
	}
	return false
}

// connects reports whether the local leg l still shares a bridge with
// another live leg: a party it speaks for.
func (t *Tracker) connects(l *leg) bool {
	for _, b := range l.Bridges {
		for _, x := range t.bridged[b] {
			if x != l && len(x.Channels) > 0 {
				return true
			}
		}
	}
	return false
}

// deviceBehind reports whether the agent of the local leg l has a device
// leg of its own in the call (the phone the local channel dialled).
func (t *Tracker) deviceBehind(l *leg) bool {
	if l.Agent == "" {
		return false
	}
	for _, x := range l.conv.Legs {
		if x != l && !x.Local && x.Agent == l.Agent && len(x.Channels) > 0 {
			return true
		}
	}
	return false
}

// dialling reports whether a leg the call dialled is still up unanswered:
// a party rung that is no agent (a forward to a mobile through a trunk).
func (t *Tracker) dialling(c *conversation) bool {
	return slices.ContainsFunc(c.Legs, func(x *leg) bool {
		return x.Role != roleCaller && x.ByChannel && !x.Answered && !x.Service && len(x.Channels) > 0
	})
}

func (t *Tracker) anyRinging(c *conversation) bool {
	for _, x := range c.Legs {
		if x.Ringing || x.Customer && !x.Answered {
			return true
		}
	}
	return false
}

// hangupBy names who ended c for the CRM, relative to its direction: on
// an internal call both ends are agents, so caller and callee.
func (t *Tracker) hangupBy(c *conversation, party string) string {
	internal := c.Call.Direction == DirectionInternal
	switch party {
	case "caller":
		if c.OrigAgent != "" && !internal {
			return "agent" // the agent's own phone placed it
		}
		if c.PBXDialled && !internal {
			return "callee" // the first leg is the party the PBX called
		}
		return "caller"
	case "origin":
		if internal {
			return "caller"
		}
		return "agent"
	case "agent":
		if internal {
			return "callee"
		}
		return "agent"
	case "customer":
		return "callee"
	}
	return party // api, system
}

// end emits call.ended with the final figures.
func (t *Tracker) end(c *conversation, at time.Time, resynced bool) {
	if c.Ended && c.Call.EndedAt != nil {
		return
	}
	if c.Quiet && c.Seq == 0 {
		c.Ended, c.Discarded = true, true
		t.dirty[c.ID] = c
		return
	}
	c.Ended = true
	t.dirty[c.ID] = c
	e := at.UTC()
	c.Call.EndedAt = &e
	d := int64(e.Sub(c.Call.StartedAt).Seconds())
	c.Call.DurationS = &d
	if c.Call.AnsweredAt != nil {
		talk := int64(e.Sub(*c.Call.AnsweredAt).Seconds())
		c.Call.TalkS = &talk
	}
	c.Call.State = "ended"
	if c.Call.Agent == nil && c.Call.AnsweredAt != nil && c.HadAgent != nil {
		// Handed on by a transfer and taken by no other agent: the call
		// was last its transferer's.
		c.Call.Agent = c.HadAgent
	}
	c.Call.Disposition = t.disposition(c)
	c.Call.HangupCause = c.Cause
	// Who hung up is told relative to the direction: settle it first (a
	// call that never rang anyone has emitted nothing that settled it).
	t.direction(c)
	switch {
	case resynced && (c.HupLeg == "" || c.HupAside):
		// Ended unseen while the link was down: nobody's account. A
		// party's own request seen before the loss still tells who hung up
		// if that party was talking with the caller: one asked away from
		// the caller may have handed the call on (a transfer the loss hid).
		c.Call.HangupBy = "system"
	case c.APIHangup:
		c.Call.HangupBy = "api"
	case c.HupLeg != "":
		c.Call.HangupBy = t.hangupBy(c, c.HupLeg)
	case c.Call.AnsweredAt == nil && c.Refused != "":
		c.Call.HangupBy = t.hangupBy(c, c.Refused)
	case !c.SourcesUnknown:
		c.Call.HangupBy = "system" // the PBX said nobody asked: its dialplan or a timeout did
	case c.FirstDown != "":
		c.Call.HangupBy = t.hangupBy(c, c.FirstDown)
	case c.Call.AnsweredAt == nil && c.OrigAgent != "":
		c.Call.HangupBy = "agent" // the agent gave up calling out
	case c.Call.AnsweredAt == nil:
		c.Call.HangupBy = "caller"
	default:
		c.Call.HangupBy = "system"
	}
	if c.Cause == nil {
		c.Call.HangupCause = &HangupCause{Code: 16, Text: causeText(16, "")}
	}
	t.customerRingEnded(c, nil, at)
	t.failEnd(c, at)
	for _, l := range c.Legs {
		t.externalRingEnded(l, at)
	}
	if c.Queued {
		c.Queued = false
		if c.CallerCancelled || c.HupLeg == "caller" || c.SourcesUnknown {
			t.emit(c, EventCallAbandoned, at, nil)
		}
	}
	t.emit(c, EventCallEnded, at, func(ev *Event) {
		ev.Resynced = resynced
		if resynced {
			ev.ResyncReason = t.resyncReason
		}
	})
	// A recording is ready once the call has ended and the file is closed.
	for _, l := range c.Legs {
		if l.Recording {
			l.Recording = false
			c.PendingRecs = append(c.PendingRecs, l.RecFile)
		}
	}
	for _, f := range c.PendingRecs {
		c.Call.Recording = &Recording{Path: f}
		t.emit(c, EventRecordingReady, at, func(e *Event) { e.Recording = &Recording{Path: f} })
	}
	c.PendingRecs = nil
}

// disposition says how c ended. answered means a person answered (an
// agent, or the far party of a call an agent placed); a call only the PBX
// answered (IVR, announcement, voicemail) was not answered.
func (t *Tracker) disposition(c *conversation) Disposition {
	if c.Call.AnsweredAt != nil {
		return DispositionAnswered
	}
	cause := 0
	if c.Cause != nil {
		cause = c.Cause.Code
	}
	switch {
	case c.CallerCancelled && c.Call.Direction == DirectionOutbound:
		// The agent gave up on a customer who never answered: for the
		// customer's record that is no answer (how every unanswered
		// outbound call ends), not a customer giving up.
		return DispositionNoAnswer
	case c.CallerCancelled:
		return DispositionCancelled
	case c.DialFail == "BUSY" || cause == 17:
		return DispositionBusy
	case c.DialFail == "CHANUNAVAIL" || c.DialFail == "CONGESTION" || networkCause(cause):
		if t.direction(c); c.Call.Direction == DirectionInbound {
			// A customer's call that reached no agent (an unregistered
			// phone) is a missed call, as one nobody answered.
			return DispositionNoAnswer
		}
		return DispositionFailed // a number an agent dialled could not be reached
	case c.DialFail == "NOANSWER" || cause == 18 || cause == 19:
		return DispositionNoAnswer
	case c.SourcesUnknown && c.HupLeg == "" && (c.Dialled || c.Queued):
		return DispositionCancelled // no account of who hung up: the caller gave up waiting
	}
	return DispositionNoAnswer
}

// causeText returns the Q.850 text for a code when the PBX gave none or gave
// a FreeSWITCH cause name.
func causeText(code int, text string) string {
	if text != "" && text != "Unknown" {
		return text
	}
	if s, ok := q850[code]; ok {
		return s
	}
	if text != "" {
		return text
	}
	return "Unknown"
}
