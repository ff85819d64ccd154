package bridge

import (
	"slices"
	"strings"
	"time"
)

// Resync reasons (Event.ResyncReason of a resynced call.ended).
const (
	// ResyncLinkLost: the call ended while the PBX link was down.
	ResyncLinkLost = "link_lost"
	// ResyncReconciled: the periodic check found the call's channels gone
	// although the link stayed up: an event the model missed.
	ResyncReconciled = "reconciled"
)

// reconcileMargin: a channel first seen this close to a snapshot may be
// newer than the list (its creation raced the PBX's answer): it is not
// released before the next snapshot.
const reconcileMargin = 5 * time.Second

// goneMemory bounds the ids of channels recently hung up, never adopted
// again by a snapshot that listed them just before their hangup.
const goneMemory = 4096

// LinkLost notes that the PBX link went down at at: calls that turn out
// to have ended meanwhile end at the last moment the bridge knew them
// alive, not at the reconnect.
func (t *Tracker) LinkLost(at time.Time) {
	t.parkHeld(nil) // no transfer will come to tell first
	t.SettleResumes()
	if t.lostAt.IsZero() {
		t.lostAt = at
	}
}

// Reconciled returns how many conversations snapshots released and how
// many channels they adopted since the tracker started.
func (t *Tracker) Reconciled() (released, adopted int64) { return t.released, t.adopted }

func (t *Tracker) rememberGone(id string, at time.Time) {
	if _, ok := t.gone[id]; ok {
		return
	}
	if len(t.goneOrder) >= goneMemory {
		delete(t.gone, t.goneOrder[0])
		t.goneOrder = t.goneOrder[1:]
	}
	t.gone[id] = at
	t.goneOrder = append(t.goneOrder, id)
}

// forgetGone lets id be a channel again when the PBX creates a channel
// with a hung-up one's id (an Originate's ChannelId, an origination_uuid a
// client chose again) after that hangup. A creation stamped before the
// hangup is the old channel's own, come late (FreeSWITCH fires events
// from several threads): it stays ignored.
func (t *Tracker) forgetGone(id string, at time.Time) {
	if goneAt, ok := t.gone[id]; !ok || at.Before(goneAt) {
		return
	}
	delete(t.gone, id)
	t.goneOrder = slices.DeleteFunc(t.goneOrder, func(g string) bool { return g == id })
}

// Snapshot reconciles with the PBX's full list of live channels, after a
// (re)connect and periodically: tracked channels that are gone ended
// unseen (while the link was down, or an event the model missed); live
// ones it does not know are adopted without a second screen pop.
func (t *Tracker) Snapshot(live []Channel, at time.Time) {
	t.snapshot(live, at, false)
}

// Reconcile is Snapshot for the periodic check while the link stays up:
// a channel first seen just before the list may be newer than it, so it
// is left for the next check rather than released.
func (t *Tracker) Reconcile(live []Channel, at time.Time) {
	t.snapshot(live, at, true)
}

func (t *Tracker) snapshot(live []Channel, at time.Time, periodic bool) {
	t.parkHeld(nil)
	t.SettleResumes()
	reason, endAt := ResyncReconciled, at
	if !t.lostAt.IsZero() {
		reason = ResyncLinkLost
		if t.lostAt.Before(at) {
			endAt = t.lostAt
		}
	}
	t.lostAt = time.Time{}
	t.resyncReason = reason
	defer func() { t.resyncReason = "" }()

	alive := map[string]Channel{}
	for _, ch := range live {
		alive[ch.ID] = ch
	}
	touched := t.releaseGone(alive, at, endAt, periodic && reason == ResyncReconciled)
	t.answeredUnseen(live, at)
	t.handedOnUnseen(touched, at)
	known := map[string]bool{}
	for _, ch := range live {
		known[ch.ID] = t.legs[ch.ID] != nil
	}
	answered, ringing, waiting := t.adopt(live, at)
	for _, ch := range live {
		// A channel new to the model, bridged with a known call's party
		// and on no call of its own before: it took that call while the
		// link was down (an intercept, a pickup), as a pickup live.
		l, with := t.legs[ch.ID], ch.List().BridgedWith
		if known[ch.ID] || l == nil || l.Role != roleCaller || !known[with] || with == "" {
			continue
		}
		if x := t.legs[with]; x != nil && x.conv != l.conv && !x.conv.Ended && x.conv.Call.AnsweredAt == nil {
			t.pickup(ChannelEvent{Kind: ChanPickup, At: at, Channel: ch, Peer: &Channel{ID: with}, Resynced: true})
		}
	}
	t.joinedUnseen(live, known, alive, at)
	for _, ch := range waiting {
		// A caller in a queue (its application) no agent is up with yet:
		// the CRM hears of the wait, then of the agents it rings.
		if l := t.legs[ch.ID]; l != nil && !l.conv.Queued && !l.conv.Ended &&
			!slices.ContainsFunc(answered, func(x *leg) bool { return x.conv == l.conv }) {
			t.queueJoin(ChannelEvent{Kind: ChanQueueJoin, At: at, Channel: ch, Queue: ch.List().Queue, Resynced: true})
		}
	}
	t.tellAdopted(answered, at)
	// Members of a conference room met there before the link, as live.
	for _, ch := range live {
		if l, room := t.legs[ch.ID], ch.List().Conference; room != "" && l != nil && !l.conv.Ended && len(l.Bridges) == 0 {
			t.bridgeEnter(ChannelEvent{Kind: ChanBridgeEnter, At: at, Channel: ch, Bridge: "conference-room/" + room, Conference: true, Resynced: true})
		}
	}
	// A call on hold when the link came up: held now, so its resume is
	// told when it comes; one whose hold ended while the link was down
	// (where the list says) is resumed.
	for _, ch := range live {
		l, hold := t.legs[ch.ID], ch.List().Hold
		switch {
		case l == nil || l.conv.Ended:
		case hold == HoldOn && !l.Held:
			t.hold(ChannelEvent{Kind: ChanHold, At: at, Channel: ch, Resynced: true})
		case hold == HoldOff && l.Held:
			t.hold(ChannelEvent{Kind: ChanUnhold, At: at, Channel: ch, Resynced: true})
		}
	}
	t.ringListed(ringing, alive, at)
}

// releaseGone ends the tracked channels the list no longer has, in the
// order they were seen (map order would tell a call's ring ends in a
// different order each run), and returns the calls they belonged to.
// While the link stayed up (fresh), a channel seen after the PBX made its
// list is left for the next one.
func (t *Tracker) releaseGone(alive map[string]Channel, at, endAt time.Time, fresh bool) (touched []*conversation) {
	ended := map[*conversation]bool{}
	var ids []string
	for id, l := range t.legs {
		if _, ok := alive[id]; !ok && !l.conv.Ended {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := t.legs[a].Born.Compare(t.legs[b].Born); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids {
		l := t.legs[id]
		if l == nil {
			continue
		}
		if _, ok := alive[id]; ok || l.conv.Ended {
			continue
		}
		// Seen after the PBX made its list: the next one will tell.
		if fresh && !l.Born.IsZero() && l.Born.After(at.Add(-reconcileMargin)) {
			continue
		}
		c := l.conv
		t.Handle(ChannelEvent{Kind: ChanHangup, At: endAt, Channel: Channel{ID: id}, Resynced: true})
		if c.Ended && !ended[c] {
			ended[c] = true
			t.released++
		}
		if !slices.Contains(touched, c) {
			touched = append(touched, c) // in order: their events too
		}
	}
	return touched
}

// handedOnUnseen: the agent who had a call that goes on left it unseen,
// and another agent who answered in it is still there (an attended
// transfer made while the link was down): the CRM hears of that transfer
// now, and the transferer's hold of the customer went with it.
func (t *Tracker) handedOnUnseen(touched []*conversation, at time.Time) {
	for _, c := range touched {
		if c.Ended || c.Call.Agent == nil {
			continue
		}
		var next *leg
		for _, x := range c.Legs {
			if x.Role != roleAgent || !x.Answered || len(x.Channels) == 0 {
				continue
			}
			if x.Agent == c.Call.Agent.Extension {
				next = nil
				break
			}
			next = x
		}
		if next != nil {
			t.transferred(c, &Transfer{Mode: "attended", From: c.Call.Agent, To: next.Agent}, nil, at)
		}
	}
}

// joinedUnseen: a listed channel new to the model is bridged with the
// caller of a known call that was answered and whose agent left it unseen:
// the call was handed on while the link was down. A channel of another
// call (on no call but its own: the consultation an agent placed and then
// joined to the customer) took it by an attended transfer; a party the
// call's own channels dialled and answered (the transferee dialling the
// number it was sent to) by a blind one. Either way the CRM hears of the
// hand-over and of the answer, as it would have live.
func (t *Tracker) joinedUnseen(live []Channel, known map[string]bool, alive map[string]Channel, at time.Time) {
	for _, ch := range live {
		l, with := t.legs[ch.ID], ch.List().BridgedWith
		if known[ch.ID] || l == nil || with == "" || !known[with] || ch.State != "Up" || l.Local || l.Service {
			continue
		}
		x := t.legs[with]
		if x == nil || x.Role != roleCaller || x.conv.Ended {
			continue
		}
		c := x.conv
		if c.Call.AnsweredAt == nil || c.Call.Agent == nil || c.OrigAgent != "" || t.agentOnCall(c, c.Call.Agent.Extension) {
			continue
		}
		mode := "blind"
		switch {
		case l.conv != c && l.Role == roleCaller && len(l.conv.Legs) == 1:
			mode = "attended"
			t.moveLeg(l, c)
		case l.conv != c || l.Role != roleOther || l.Answered:
			continue
		}
		if l.Role == roleAgent {
			if mode == "attended" {
				l.Dialled, l.Answered = true, true
				c.Rang.add(l.Agent) // an answered call pops no more
				// An agent's phone that dialled in itself (the PBX's
				// view: inbound) took the call (FreeSWITCH intercept,
				// a pickup): the answer is its own, as live; nobody
				// handed it over. A consultation the agent placed is a
				// leg the PBX dialled (outbound).
				if ch.Direction != "inbound" {
					tr := &Transfer{Mode: mode, From: c.Call.Agent, To: l.Agent}
					t.transferred(c, tr, l, at)
					c.LastTransfer = tr
				}
				t.establish(c, at, t.agent(l))
			}
			continue // a blind transfer's agent answers in tellAdopted
		}
		// The number: a blind transfer's is where the transferee's dialplan
		// went (its extension now); a consultation's is its own channel's.
		number := ch.CallerNum
		if x := alive[with].Exten; mode == "blind" && x != "" && x != "s" {
			number = x
		}
		if number == "" || t.cfg.AgentPattern.MatchString(number) {
			continue
		}
		tr := &Transfer{Mode: mode, From: c.Call.Agent, To: number}
		t.transferred(c, tr, l, at)
		c.LastTransfer = tr
		l.Dialled, l.ByChannel, l.External = true, true, number
		t.answered(l, at)
	}
}

// answeredUnseen: a known agent leg the PBX lists as up answered while
// the link was down: the CRM has not heard of that answer yet.
func (t *Tracker) answeredUnseen(live []Channel, at time.Time) {
	for _, ch := range live {
		if l := t.legs[ch.ID]; l != nil && ch.State == "Up" && l.Role == roleAgent && !l.Answered && !l.conv.Ended {
			l.Ringing, l.Answered, l.MemberUp = false, true, false
			c := l.conv
			switch {
			case l.Agent == c.OrigAgent:
			case t.agentDeviceAnswered(c, l):
				// The same agent's other leg answered (a queue member's
				// pair and the phone behind it, up before the queue's
				// AgentConnect that the link loss hid): one person, one
				// answer, as answered's.
			case c.Call.AnsweredAt != nil && c.Call.Agent != nil && c.Call.Agent.Extension != l.Agent:
				// A consultation's target answered: told as live, and the
				// hand-over that may have followed is handedOnUnseen's.
				t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
			default:
				t.establish(c, at, t.agent(l))
			}
		}
	}
}

// adopt takes on the listed channels the model does not know, in creation
// order so the oldest channel of a call is its caller (the adapter lists
// them in the PBX's order; CreatedAt, where the PBX gives it, wins: a
// stable sort keeps the adapter's order for ties). It returns the agents'
// legs up, the devices ringing and the callers in a queue, to be told once
// every leg is known.
func (t *Tracker) adopt(live []Channel, at time.Time) (answered []*leg, ringing, waiting []Channel) {
	slices.SortStableFunc(live, func(a, b Channel) int { return a.List().CreatedAt.Compare(b.List().CreatedAt) })
	for _, ch := range live {
		if t.legs[ch.ID] != nil {
			continue
		}
		if _, ok := t.gone[ch.ID]; ok {
			continue // listed, then hung up before the list reached us
		}
		t.adopted++
		l, listed := t.channel(ch, at), ch.List()
		if l.Role == roleCaller && listed.ParkSlot != "" && l.conv.Parked == nil {
			// A caller waiting in a parking slot: held there.
			t.park(ChannelEvent{Kind: ChanPark, At: at, Channel: ch, Exten: listed.ParkSlot, Context: listed.ParkLot, Resynced: true})
		}
		if l.Role == roleCaller && listed.Queue != "" {
			waiting = append(waiting, ch)
		}
		if l.Role == roleCaller && ch.Direction == "outbound" && ch.State == "Ringing" && len(l.conv.Legs) == 1 {
			// A leg the PBX dialled on its own (an originate), ringing: an
			// agent's phone rings for a click-to-call, as live.
			ringing = append(ringing, ch)
			continue
		}
		if l.Role != roleCaller && !l.Local && ch.State == "Ringing" {
			// A device ringing now pops now: its caller dialled it before
			// the link.
			ringing = append(ringing, ch)
			continue
		}
		if l.Role == roleOther && t.isAgentDevice(l) {
			l.Role, l.Agent, l.Dialled = roleAgent, l.Ext, true
			if ch.State == "Up" {
				l.conv.Rang.add(l.Agent) // an answered call pops no more
			}
		}
		switch {
		case ch.State == "Up" && l.Role == roleAgent:
			l.Answered = true
			if !slices.Contains(answered, l) {
				answered = append(answered, l)
			}
		case ch.State == "Up" && l.Role == roleOther && !l.Local && !l.Service && l.conv.OrigAgent != "" && !slices.Contains(answered, l):
			// The far party of a call an agent placed, up: it answered
			// before the link (told in tellAdopted, as its answer is live).
			l.Dialled, l.ByChannel = true, true
			answered = append(answered, l)
		}
	}
	return answered, ringing, waiting
}

// tellAdopted tells the answers of adopted agents' legs. The CRM heard
// nothing of those calls (the bridge started, or the link came back,
// after the answer).
func (t *Tracker) tellAdopted(answered []*leg, at time.Time) {
	told := map[string]bool{} // conversation id + agent: a Local and its phone answer once
	for _, l := range answered {
		c := l.conv
		if l.Role == roleOther {
			t.answered(l, at) // the customer an agent called
			continue
		}
		if c.Ended || len(l.Channels) == 0 || told[c.ID+" "+l.Agent] {
			continue
		}
		told[c.ID+" "+l.Agent] = true
		switch {
		case c.Call.AnsweredAt == nil:
			t.establish(c, at, t.agent(l))
		case c.Call.Agent == nil || !t.agentOnCall(c, c.Call.Agent.Extension):
			// The agent who had the call left it while the link was down,
			// and this one is on it now: the call is this agent's.
			tr := t.handedOnBlind(c, l, l.Agent, at)
			t.establish(c, at, t.agent(l))
			// The PBX's later account of that transfer (FreeSWITCH's
			// transfer_history at the hangup) is told already.
			c.LastTransfer = tr
		case c.Call.Agent.Extension != l.Agent:
			// Another agent up in the call its agent is still on: a
			// consultation under way, as the CRM hears of one live.
			t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
		}
	}
}

// ringListed pops the devices ringing when the list was taken, last: a
// consultation rings after its call's answer. Their callers dialled them
// before the link.
func (t *Tracker) ringListed(ringing []Channel, alive map[string]Channel, at time.Time) {
	for _, ch := range ringing {
		l := t.legs[ch.ID]
		if l == nil || l.conv.Ended {
			continue
		}
		caller := callerOf(l.conv)
		if caller == l {
			t.dial(ChannelEvent{Kind: ChanDial, At: at, Peer: &ch, Resynced: true}) // the PBX dialling on its own
			continue
		}
		if caller == nil {
			continue
		}
		from, ok := alive[caller.Channels[0]]
		if by := ch.List().DialledBy; by != "" {
			if d, known := alive[by]; known {
				from, ok = d, true // the list names who dialled it (a consultation's agent)
			}
		}
		var handed *Transfer
		if c := l.conv; c.Call.Agent != nil && c.Call.AnsweredAt != nil && !t.agentOnCall(c, c.Call.Agent.Extension) {
			to := l.Ext
			if to == "" {
				to = ch.Exten
			}
			handed = t.handedOnBlind(c, l, to, at) // and rings the device it went to
		}
		switch {
		case !ok:
		case l.conv.Queued:
			// The queue rings its members (and connects the one who answers).
			t.agentCalled(ChannelEvent{Kind: ChanAgentCalled, At: at, Channel: from, Peer: &ch, Queue: l.conv.Call.Queue, Resynced: true})
		default:
			t.dial(ChannelEvent{Kind: ChanDial, At: at, Channel: from, Peer: &ch, Resynced: true})
		}
		if handed != nil {
			l.conv.LastTransfer = handed // the PBX's later account of it is told already
		}
	}
}

// handedOnBlind tells the transfer the PBX made while the link was down:
// the agent who had c left it unseen, and l, new to the call, answers or
// rings in that agent's place. Nothing says how it was made; a hand-over
// to a device the model never saw ring is told as blind.
func (t *Tracker) handedOnBlind(c *conversation, l *leg, to string, at time.Time) *Transfer {
	tr := &Transfer{Mode: "blind", From: c.Call.Agent, To: to}
	if c.Call.Agent == nil {
		return tr
	}
	t.transferred(c, tr, l, at)
	return tr
}

// callerOf is c's caller leg still up, if any.
func callerOf(c *conversation) *leg {
	for _, x := range c.Legs {
		if x.Role == roleCaller && len(x.Channels) > 0 {
			return x
		}
	}
	return nil
}
