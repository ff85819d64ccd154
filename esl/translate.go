package esl

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// The mapping, FreeSWITCH event to ChannelEvents:
//
//	CHANNEL_OUTGOING         nothing yet: the leg's variables (dialed_user, cc_*) come
//	                         with its CHANNEL_CREATE, which opens it
//	CHANNEL_CREATE           ChanNew, with what the leg's origin says: ChanDial{Channel:
//	                         originator, Peer: it} for a leg a channel originated (bridge,
//	                         att_xfer), with no Channel when the switch originated it by
//	                         itself, ChanAgentCalled for a mod_callcenter agent leg;
//	                         ChanLocalPair{-a, -b} once both loopback halves (or both ends
//	                         of a SIP call to itself) are known
//	CHANNEL_PROGRESS(_MEDIA) ChanUpdate, State Ringing
//	CHANNEL_ANSWER           ChanAnswer (the switch answering a caller too: an IVR, a
//	                         queue); ChanDialEnd ANSWER for a leg the switch originated
//	CHANNEL_BRIDGE           ChanTransfer{Attended} when a leg's previous partner had
//	                         dialled its new one (att_xfer completing), ChanPickup when a
//	                         picked-off call meets its picker, ChanDialEnd ANSWER for a
//	                         dialled leg, ChanBridgeEnter for Bridge-A and Bridge-B,
//	                         Bridge = A's uuid
//	CHANNEL_UNBRIDGE         ChanBridgeLeave for both legs
//	any event of a channel   ChanTransfer (blind) when its transfer_source (variable or
//	                         caller profile) names a new bl_xfer while it is bridged (or
//	                         was, up to its own next event): REFER, uuid_transfer, a
//	                         transfer feature code; dialplan routing (public -> default,
//	                         originate ... XML ctx) is not a transfer. ChanHangupRequest
//	                         as soon as its variables show its device released it
//	                         (recv_cancel/recv_refuse on CHANNEL_HANGUP, recv_bye after)
//	CHANNEL_HOLD/UNHOLD,     ChanHold/ChanUnhold, once per change
//	CHANNEL_CALLSTATE HELD/ACTIVE
//	CHANNEL_EXECUTE          intercept: who picks a call up (when subscribed)
//	CHANNEL_HANGUP_COMPLETE  ChanPickup for a leg PICKED_OFF by a known intercept,
//	                         ChanHangupRequest for a leg its device released (recv_*),
//	                         ChanDialEnd for a dialled leg not yet ended, ChanHangup with
//	                         HangupSource
//	RECORD_START/STOP        ChanRecordStart/Stop, File; the length in Vars (call
//	                         recordings only: a voicemail message is not one)
//	BACKGROUND_JOB           ChanOriginateFailed for an originate answering -ERR
//	sofia::transferor        ChanTransfer (sofia::transferee/replaced add nothing)
//	callcenter::info         ChanQueueJoin/Leave/Abandon, ChanAgentConnect,
//	                         ChanAgentRingNoAnswer, ChanAgentState
//	valet_parking::info      ChanPark (hold), ChanUnpark (bridge, Peer = the retriever)
//	fifo::info               ChanQueueJoin (push), ChanQueueAbandon (abort)
//	conference::maintenance  ChanBridgeEnter/Leave with Conference for add-member and
//	                         del-member: a room's members share no bridge of their own
//
// Translator turns FreeSWITCH events into bridge.ChannelEvents. It keeps a
// little state per channel because FreeSWITCH spreads one fact over several
// events (who dialled whom, the halves of a loopback, the callcenter offer and
// the agent's leg, a leg's bridge partner when it is transferred) and because
// events may still arrive out of order after the reorder window. Its rules
// for order:
//
//   - A channel is final once its CHANNEL_HANGUP_COMPLETE is translated: later
//     events about it (a late ANSWER, PROGRESS, BRIDGE, HOLD, RECORD) are
//     dropped, so nothing brings it back. Only events that close something
//     (ChanDialEnd, queue leave/abandon, agent no-answer, a transfer naming
//     the transferer) may still name it.
//   - The first translated event of a channel emits ChanNew before anything
//     else; a CHANNEL_CREATE arriving after that becomes a ChanUpdate.
//   - ChanAnswer is emitted once; a PROGRESS after the answer is dropped.
//   - Every ChanDial gets exactly one ChanDialEnd: ANSWER when the dialled leg
//     bridges (or hangs up after answering), otherwise the hangup cause.
//   - A CHANNEL_BRIDGE whose Event-Sequence is below the UNBRIDGE already seen
//     for the same pair is dropped.
//
// A Translator is not safe for concurrent use.
type Translator struct {
	// DirectionVar is a channel variable copied into Channel.Vars when an
	// event carries it (variable_<name>).
	DirectionVar string
	// Vars are more variables copied the same way (tenant rules).
	Vars []string

	chans     map[string]*chanState
	gone      *lru[goneChan]    // channels that hung up, as last seen (packed: thousands are kept)
	unbridged *lru[uint64]      // "a|b" -> Event-Sequence of the UNBRIDGE
	sipCalls  map[string]string // SIP Call-ID -> channel, for calls the switch makes to itself
	// intercepts maps the uuid an intercept aimed at to the channel that
	// ran it (the picker), while both live.
	intercepts map[string]string
	// picked holds the diallers whose leg was PICKED_OFF by an unseen
	// picker, until the picker's bridge with the dialler names it.
	picked map[string]bool
	// ccAgents holds each mod_callcenter agent's last status (availability)
	// and state (activity), which together say the agent's state.
	ccAgents map[string]ccAgent
	// failedDials holds, per dialler, the end (DialEnd, Hangup) of a leg
	// through a gateway that failed, until the dialler shows what it does
	// next: switch_ivr_originate tries the next entry of a '|' list
	// (another carrier) before the bridge gives up.
	failedDials map[string][]bridge.ChannelEvent
}

// switchDialler is the dialler of a leg the switch originated by itself.
const switchDialler = "\x00switch"

type chanState struct {
	ch        bridge.Channel
	opened    bool            // ChanNew sent
	answered  bool            // ChanAnswer sent
	origin    bool            // its origin (dial, queue, switch) is settled
	dialler   string          // the channel that dialled this one (ChanDial sent)
	diallerCh *bridge.Channel // as it was when it dialled; most channels dial nobody
	dialEnded bool
	progress  bool   // the far end sent a provisional (CHANNEL_PROGRESS)
	loopPeer  string // the other half of a loopback pair
	loopLeg   string // "A" or "B"
	paired    bool   // ChanLocalPair sent
	sipCallID string
	endpoint  string // the directory user, fixed once the channel opens
	held      bool
	holdEvent bool   // the switch reported its hold with CHANNEL_HOLD: CHANNEL_UNHOLD ends it
	hupReq    bool   // ChanHangupRequest sent
	partner   string // the current bridge partner
	// leftPartner is the partner another channel's UNBRIDGE took, kept
	// until this channel's next event with variables: a B-leg's transfer
	// shows only then.
	leftPartner string
	lastPartner string // the partner of its last bridge
	bridgeSeq   uint64 // Event-Sequence of that bridge
	bridged     bool   // ever bridged
	xferSrc     string // the last transfer_source seen
	xferKnown   bool   // xferSrc is the value at opening, or later (not an unseen past)
	xferSaid    bool   // an attended transfer of this leg was said, until its completing bridge
	adopted     bool   // learnt from a snapshot: its dial and pairing are history
	seldom      *chanSeldom
}

// chanSeldom is the state few channels have (a transfer, an intercept, a
// snapshot's bridge), kept apart: a live call holds two to five chanStates.
type chanSeldom struct {
	sofiaXfer string // target of a blind transfer announced by sofia::transferor
	intercept string // the uuid this channel intercepts
	// bridgedAt: when its bridge began, as the snapshot said; a transfer
	// source written after it moved the leg out of that bridge.
	bridgedAt time.Time
}

// rare returns st's seldom state to write, making it first.
func (st *chanState) rare() *chanSeldom {
	if st.seldom == nil {
		st.seldom = &chanSeldom{}
	}
	return st.seldom
}

// peek returns st's seldom state to read: the zero one when it has none.
func (st *chanState) peek() chanSeldom {
	if st.seldom == nil {
		return chanSeldom{}
	}
	return *st.seldom
}

// NewTranslator returns a Translator that copies directionVar (may be "")
// into Channel.Vars.
func NewTranslator(directionVar string) *Translator {
	return &Translator{
		DirectionVar: directionVar,
		chans:        map[string]*chanState{},
		gone:         newLRU[goneChan](1 << 14),
		unbridged:    newLRU[uint64](1 << 14),
		sipCalls:     map[string]string{},
		intercepts:   map[string]string{},
		picked:       map[string]bool{},
		ccAgents:     map[string]ccAgent{},
		failedDials:  map[string][]bridge.ChannelEvent{},
	}
}

// Translate maps one event. Most events give none or one ChannelEvent; a
// channel's first event, CREATE, BRIDGE and HANGUP_COMPLETE may give more.
func (t *Translator) Translate(e *Event) []bridge.ChannelEvent { return t.TranslateAppend(nil, e) }

// TranslateAppend is Translate appending to out: the client translates a
// batch into the one slice it hands the engine, with no copy per event.
func (t *Translator) TranslateAppend(out []bridge.ChannelEvent, e *Event) (res []bridge.ChannelEvent) {
	at := e.Time()
	if at.IsZero() {
		at = time.Now()
	}
	x := &txn{t: t, e: e, at: at, out: out}
	start := len(x.out)
	if id := e.Get("Unique-ID"); len(t.failedDials[id]) > 0 {
		// The dialler goes on (its bridge ended, it hangs up): the failed
		// leg's end first.
		x.out = append(x.out, t.failedDials[id]...)
		delete(t.failedDials, id)
	}
	defer func() {
		// A new dial by a dialler holding a failed leg: the next carrier
		// of its '|' list rings the same party; the failed leg ends after.
		for i := start; i < len(x.out); i++ {
			if ev := x.out[i]; ev.Kind == bridge.ChanDial && len(t.failedDials[ev.Channel.ID]) > 0 {
				held := t.failedDials[ev.Channel.ID]
				delete(t.failedDials, ev.Channel.ID)
				x.out = append(x.out, held...)
			}
		}
		res = x.out
	}()
	x.follow()
	switch name := e.Get("Event-Name"); name {
	case "CHANNEL_OUTGOING":
		// Fired before the leg's variables are set: its origin and
		// directory user come with the CREATE right after.
		x.reborn()
		x.self() // known, not opened: the next event (or the hangup) opens it
	case "CHANNEL_CREATE", "CHANNEL_ORIGINATE":
		if name == "CHANNEL_CREATE" {
			x.reborn()
		}
		if st := x.self(); st != nil && !x.open(st) && name == "CHANNEL_CREATE" {
			x.emit(bridge.ChanUpdate, st, nil) // CREATE after the channel's first event
		}
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		if st := x.self(); st != nil {
			x.open(st)
			st.progress = true
			if !st.answered {
				st.ch.State = "Ringing"
				x.emit(bridge.ChanUpdate, st, nil)
			}
		}
	case "CHANNEL_ANSWER":
		if st := x.self(); st != nil {
			x.open(st)
			st.ch.State = "Up"
			if !st.answered {
				st.answered = true
				x.emit(bridge.ChanAnswer, st, nil)
			}
			// An originate succeeds when its leg answers (its BACKGROUND_JOB
			// says +OK then); a channel's dial, when the legs bridge.
			if st.dialler == switchDialler && !st.dialEnded {
				st.dialEnded = true
				x.emit(bridge.ChanDialEnd, &chanState{}, func(ev *bridge.ChannelEvent) {
					ev.Peer, ev.DialStatus = peer(st), "ANSWER"
				})
			}
		}
	case "CHANNEL_BRIDGE":
		x.bridge()
	case "CHANNEL_UNBRIDGE":
		x.unbridge()
	case "CHANNEL_HOLD", "CHANNEL_UNHOLD":
		if st := x.self(); st != nil {
			x.open(st)
			on := name == "CHANNEL_HOLD"
			if on {
				st.holdEvent = true
			} else if f := e.Get("variable_remote_audio_media_flow"); f == "sendonly" || f == "inactive" {
				// The device still holds: this is the switch clearing the
				// hold as it hangs the channel up or hands it on
				// (switch_channel_perform_hangup marks it unheld), no
				// resume.
				break
			}
			x.hold(st, on)
		}
	case "CHANNEL_CALLSTATE":
		// A phone's re-INVITE to sendonly shows as CALLSTATE HELD (next to
		// CHANNEL_HOLD); ACTIVE or UNHELD after it ends the hold.
		if st := x.known(); st != nil {
			switch e.Get("Channel-Call-State") {
			case "HELD":
				x.hold(st, true)
			case "ACTIVE", "UNHELD":
				// With CHANNEL_HOLD reported, CHANNEL_UNHOLD (which
				// carries the media flow) says whether the hold ended.
				if !st.holdEvent {
					x.hold(st, false)
				}
			}
		}
	case "CHANNEL_EXECUTE":
		if e.Get("Application") == "intercept" {
			x.intercept()
		}
	case "CHANNEL_HANGUP_COMPLETE":
		x.hangup()
	case "RECORD_START", "RECORD_STOP":
		x.record()
	case "BACKGROUND_JOB":
		x.job()
	case "CUSTOM":
		switch e.Get("Event-Subclass") {
		case "sofia::transferor":
			x.transferor()
		case "callcenter::info":
			x.callcenter()
		case "valet_parking::info":
			x.valet()
		case "fifo::info":
			x.fifo()
		case "conference::maintenance":
			x.conference()
		}
	}
	return x.out
}

// Resync aligns the state with a snapshot of the live channels: channels not
// in it are gone; the ones in it are known (no ChanNew will follow for them).
// held are the events of failed dials it was holding (failedDials): the
// caller passes them on before the snapshot.
func (t *Translator) Resync(live []bridge.Channel) (held []bridge.ChannelEvent) {
	alive := make(map[string]bool, len(live))
	for _, ch := range live {
		alive[ch.ID] = true
		st := t.chans[ch.ID]
		if st == nil {
			st = &chanState{opened: true, adopted: true, origin: true}
			t.chans[ch.ID] = st
		}
		linked := st.ch.LinkedID
		endpoint := st.endpoint
		st.ch = ch
		if linked != "" {
			st.ch.LinkedID = linked
		}
		if endpoint != "" {
			st.ch.Endpoint = endpoint
		} else {
			st.endpoint = ch.Endpoint
		}
		st.opened = true
		st.answered = st.answered || ch.State == "Up"
		listed := ch.List()
		if !listed.BridgedAt.IsZero() {
			st.rare().bridgedAt = listed.BridgedAt
		}
		if listed.Hold != "" {
			st.held = listed.Hold == bridge.HoldOn
		}
	}
	// Once every listed leg has its state (a b-leg may be listed before
	// its a-leg): a leg bridged to the one that dialled it, which is what
	// an att_xfer's completion is recognised by.
	for _, ch := range live {
		by := ch.List().DialledBy
		st, ast := t.chans[ch.ID], t.chans[by]
		if ast == nil || st.dialler != "" {
			continue
		}
		st.dialler = by
		if st.partner == "" {
			st.partner, st.lastPartner, st.bridged = by, by, true
		}
		if ast.partner == "" {
			ast.partner, ast.lastPartner, ast.bridged = ch.ID, ch.ID, true
		}
	}
	for id, st := range t.chans {
		if !alive[id] {
			t.forget(id, st, time.Time{}) // when is unknown: never taken for a new channel
		}
	}
	for cid, id := range t.sipCalls {
		if !alive[id] {
			delete(t.sipCalls, cid)
		}
	}
	for target, picker := range t.intercepts {
		if !alive[target] || !alive[picker] {
			delete(t.intercepts, target)
		}
	}
	// What was held for a dialler's next step goes out now: the snapshot
	// the tracker takes next releases the failed legs, and a DialEnd told
	// after that would be lost (a click-to-call's call.failed with it).
	// A dialler still up with a leg of its call still dialled (the next
	// carrier of its '|' list rings) keeps them: that failure is not the
	// call's, and its next event releases them after the ring, as without
	// the loss.
	dialling := map[string]bool{}
	for _, ch := range live {
		if by := ch.List().DialledBy; by != "" {
			dialling[by] = true
		}
		if ch.Direction == "outbound" && ch.LinkedID != "" && ch.LinkedID != ch.ID {
			dialling[ch.LinkedID] = true
		}
	}
	ids := make([]string, 0, len(t.failedDials))
	for id := range t.failedDials {
		if alive[id] && dialling[id] {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		held = append(held, t.failedDials[id]...)
		delete(t.failedDials, id)
	}
	for id := range t.picked {
		if !alive[id] {
			delete(t.picked, id)
		}
	}
	return held
}

// goneChan is a channel that hung up, as last seen, and the switch's time
// of its hangup in microseconds (math.MaxInt64 when unknown).
type goneChan struct {
	ch bridge.PackedChannel
	at int64
}

// forget drops a channel that hung up at at (zero: it vanished from a
// channel list) with what refers to it.
func (t *Translator) forget(id string, st *chanState, at time.Time) {
	delete(t.chans, id)
	p, key := bridge.Pack(st.ch), id
	if p.ID() == id {
		key = p.ID() // shares the packed string: no key of its own to keep
	}
	g := goneChan{ch: p, at: math.MaxInt64}
	if !at.IsZero() {
		g.at = at.UnixMicro()
	}
	t.gone.add(key, g)
	if t.sipCalls[st.sipCallID] == id {
		delete(t.sipCalls, st.sipCallID)
	}
	if c := st.peek().intercept; c != "" && t.intercepts[c] == id {
		delete(t.intercepts, c)
	}
	delete(t.intercepts, id)
	delete(t.picked, id)
}

// Live returns how many channels the translator tracks (for tests and
// metrics).
func (t *Translator) Live() int { return len(t.chans) }

// txn is the translation of one event.
type txn struct {
	t   *Translator
	e   *Event
	at  time.Time
	out []bridge.ChannelEvent
}

func (x *txn) emit(kind bridge.ChannelEventKind, st *chanState, fill func(*bridge.ChannelEvent)) {
	ev := bridge.ChannelEvent{Kind: kind, At: x.at, Channel: st.ch}
	if fill != nil {
		fill(&ev)
	}
	namedEvent(&ev)
	x.out = append(x.out, ev)
}

// reborn lets the event's channel id be a channel again when the switch
// creates one with a hung-up channel's id (an origination_uuid a client
// used again) after that hangup. A creation fired before the hangup is the
// old channel's own, come late from another thread: it stays ignored.
func (x *txn) reborn() {
	id, at := x.e.Get("Unique-ID"), x.e.Time()
	if g, ok := x.t.gone.get(id); ok && !at.IsZero() && at.UnixMicro() > g.at {
		x.t.gone.remove(id)
	}
}

// self returns the state of the event's own channel, updated from the event,
// or nil when the channel already hung up or the event names none.
func (x *txn) self() *chanState {
	id := x.e.Get("Unique-ID")
	if id == "" || x.t.gone.has(id) {
		return nil
	}
	st := x.t.chans[id]
	if st == nil {
		st = &chanState{}
		x.t.chans[id] = st
	}
	x.t.update(st, x.e)
	return st
}

// known is self for a channel already opened: events that only refine a
// channel (its call state) never open one.
func (x *txn) known() *chanState {
	if st := x.t.chans[x.e.Get("Unique-ID")]; st == nil || !st.opened {
		return nil
	}
	return x.self()
}

// hasVars reports whether an event carries the channel's variables (the
// switch adds all of them or none).
func hasVars(e *Event) bool { return e.Get("variable_uuid") != "" }

// open emits ChanNew for a channel's first event, with what follows from
// it: its origin (see origin), ChanLocalPair when both loopback halves are
// known. It reports whether ChanNew was emitted.
func (x *txn) open(st *chanState) bool {
	e, t := x.e, x.t
	first := !st.opened
	if first {
		st.opened = true
		st.xferSrc, st.xferKnown = transferSource(e), true
		x.emit(bridge.ChanNew, st, nil)
	}
	if st.adopted {
		return first
	}
	if app := e.Get("variable_loopback_app"); app != "" && st.ch.Service == "" {
		// loopback/app=voicemail: the switch's own application answers.
		st.ch.Service = app
	}
	x.origin(st)
	if leg := e.Get("variable_loopback_leg"); leg == "A" || leg == "B" {
		st.loopLeg, st.loopPeer = leg, e.Get("variable_other_loopback_leg_uuid")
	}
	if p := t.chans[st.loopPeer]; st.loopPeer != "" && p != nil && p.opened && !st.paired && !p.paired {
		a, b := st, p
		if st.loopLeg == "B" {
			a, b = p, st
		}
		st.paired, p.paired = true, true
		x.emit(bridge.ChanLocalPair, a, func(ev *bridge.ChannelEvent) { ev.Peer = peer(b) })
	}
	// A SIP call the switch makes to itself (another profile, a device
	// looped back) shows as two channels with one Call-ID: like a loopback
	// pair, they are one party. The outbound end is the one that was dialled.
	if cid := e.Get("variable_sip_call_id"); cid != "" && st.sipCallID == "" {
		st.sipCallID = cid
		if o := t.chans[t.sipCalls[cid]]; o != nil && o != st && !o.paired && !st.paired {
			a, b := st, o
			if st.ch.Direction == "inbound" {
				a, b = o, st
			}
			st.paired, o.paired = true, true
			x.emit(bridge.ChanLocalPair, a, func(ev *bridge.ChannelEvent) { ev.Peer = peer(b) })
		} else {
			t.sipCalls[cid] = st.ch.ID
		}
	}
	return first
}

// origin settles who dialled a leg, once, from the first event that can
// tell (one with variables; CHANNEL_OUTGOING has none):
//
//   - a mod_callcenter agent leg (cc_side=agent) is rung by its queue for
//     the member: ChanAgentCalled, and no dial (the queue connects it);
//   - an outbound leg naming its originator (Other-Type originator,
//     originating_leg_uuid, originator) was dialled by that channel;
//   - any other outbound leg was originated by the switch itself (an
//     originate: click-to-call), as AMI's DialBegin without a Channel says.
//
// Only a leg not yet answered nor bridged can be a dial: once up, an
// originator in its caller profile comes from a bridge (uuid_bridge,
// intercept), not from who called it.
func (x *txn) origin(st *chanState) {
	e, t := x.e, x.t
	if st.origin || st.adopted {
		return
	}
	if e.Get("variable_cc_side") == "agent" {
		if m := e.Get("variable_cc_member_session_uuid"); m != "" {
			st.origin = true
			agent, queue := e.Get("variable_cc_agent"), e.Get("variable_cc_queue")
			x.emit(bridge.ChanAgentCalled, t.stateOf(m, nil, ""), func(ev *bridge.ChannelEvent) {
				ev.Peer, ev.Queue, ev.Member, ev.Interface = peer(st), queue, agent, st.ch.Name
			})
			return
		}
	}
	if st.ch.Direction != "outbound" || st.answered || st.bridged || st.dialEnded || e.Get("Answer-State") == "answered" {
		st.origin = st.ch.Direction != "" // an inbound leg is nobody's dial
		return
	}
	if o := originator(e); o != "" && o != st.ch.ID {
		st.origin = true
		if t.gone.has(o) {
			return // its originator is gone: a leg being cancelled, nothing rings
		}
		by := t.stateOf(o, e, "Other-Leg-")
		dialler := by.ch
		st.dialler, st.diallerCh = o, &dialler
		x.emit(bridge.ChanDial, by, func(ev *bridge.ChannelEvent) { ev.Peer = peer(st) })
		return
	}
	if hasVars(e) {
		st.origin = true
		st.dialler = switchDialler
		x.emit(bridge.ChanDial, &chanState{}, func(ev *bridge.ChannelEvent) { ev.Peer = peer(st) })
	}
}

// originator returns the channel an originated leg names as its origin.
func originator(e *Event) string {
	if e.Get("Other-Type") == "originator" {
		if v := e.Get("Other-Leg-Unique-ID"); v != "" {
			return v
		}
	}
	if v := e.Get("variable_originating_leg_uuid"); v != "" {
		return v
	}
	return e.Get("variable_originator")
}

func peer(st *chanState) *bridge.Channel {
	ch := st.ch
	return &ch
}

// stateOf returns the state of another channel: the known one, else one
// built from the event's headers with prefix (e.g. "Other-Leg-"), else a
// bare id. It is not stored.
func (t *Translator) stateOf(id string, e *Event, prefix string) *chanState {
	if st := t.chans[id]; st != nil {
		return st
	}
	if g, ok := t.gone.get(id); ok {
		return &chanState{ch: g.ch.Unpack()}
	}
	st := &chanState{ch: bridge.Channel{ID: id, LinkedID: id}}
	if e != nil && prefix != "" && e.Get(prefix+"Unique-ID") == id {
		st.ch.Name = e.Get(prefix + "Channel-Name")
		st.ch.CallerNum = e.Get(prefix + "Caller-ID-Number")
		st.ch.CallerName = e.Get(prefix + "Caller-ID-Name")
		st.ch.Exten = e.Get(prefix + "Destination-Number")
		st.ch.Context = e.Get(prefix + "Context")
		st.ch.Direction = e.Get(prefix + "Direction")
	}
	if e != nil && st.ch.Name == "" && e.Get("variable_bridge_uuid") == id {
		st.ch.Name = e.Get("variable_bridge_channel")
	}
	return st
}

// dialler returns the state of the channel that dialled st, as known now
// or as it was when it dialled.
func (t *Translator) dialler(st *chanState) *chanState {
	if st.dialler == switchDialler {
		return &chanState{} // no channel: the switch itself
	}
	if d := t.stateOf(st.dialler, nil, ""); d.ch.Name != "" {
		return d
	}
	if st.diallerCh == nil {
		return &chanState{}
	}
	return &chanState{ch: *st.diallerCh}
}

// update refreshes a channel from an event's caller profile.
func (t *Translator) update(st *chanState, e *Event) {
	ch := &st.ch
	ch.ID = e.Get("Unique-ID")
	if v := e.Get("Channel-Name"); v != "" {
		ch.Name = v
	}
	// The linked id is a grouping hint: keep the first one. FreeSWITCH flips
	// variable_call_uuid on loopback legs late in their life.
	if ch.LinkedID == "" {
		ch.LinkedID = linkedID(e)
	}
	if v := e.Get("Call-Direction"); v != "" {
		ch.Direction = v
	}
	if st.endpoint == "" && !st.opened {
		// Learnt up to the event that opens the channel, then fixed: a
		// user set later (set_user, a voicemail login) is not the device's.
		st.endpoint = endpoint(e, st)
		ch.Endpoint = st.endpoint
	}
	num, name := e.Get("Caller-Caller-ID-Number"), e.Get("Caller-Caller-ID-Name")
	// originate's placeholder callee ("Outbound Call", the dial string's
	// tail) ends up as the caller id of a loopback -a leg once the far end
	// answers: keep the real caller id.
	if name != placeholderName {
		if num != "" {
			ch.CallerNum = st.device(num)
		}
		if name != "" {
			ch.CallerName = name
		}
	}
	calleeNum, calleeName := e.Get("Caller-Callee-ID-Number"), e.Get("Caller-Callee-ID-Name")
	if calleeNum == "" || calleeName == placeholderName {
		calleeNum, calleeName = e.Get("Caller-Destination-Number"), ""
	}
	if calleeNum != "" {
		ch.ConnectedNum, ch.ConnectedName = st.device(calleeNum), calleeName
	}
	if v := e.Get("Caller-Context"); v != "" {
		ch.Context = v
	}
	if v := e.Get("variable_domain_name"); v != "" {
		ch.Domain = v // a tenant rule's source
	}
	if v := e.Get("Caller-Destination-Number"); v != "" {
		ch.Exten = st.device(v)
	}
	if v := callState(e.Get("Answer-State"), e.Get("Channel-Call-State")); v != "" {
		ch.State = v
	}
	if t.DirectionVar != "" {
		copyVar(ch, e, t.DirectionVar)
	}
	for _, name := range t.Vars {
		copyVar(ch, e, name)
	}
}

// copyVar copies variable_<name> of e into ch.Vars when it changed.
func copyVar(ch *bridge.Channel, e *Event, name string) {
	if v := e.Get("variable_" + name); v != "" && ch.Vars[name] != v {
		vars := make(map[string]string, len(ch.Vars)+1)
		for k, x := range ch.Vars {
			vars[k] = x
		}
		vars[name] = v
		ch.Vars = vars // never mutated in place: events already emitted share the old map
	}
}

const placeholderName = "Outbound Call"

// linkedID is the call's originating leg as far as the event tells. A
// mod_callcenter agent leg is a call of its own (the queue originates it
// without a session) until its AgentCalled puts it in the member's.
func linkedID(e *Event) string {
	if e.Get("Other-Type") == "originator" {
		if v := e.Get("Other-Leg-Unique-ID"); v != "" {
			return v
		}
	}
	for _, h := range []string{"variable_originating_leg_uuid", "Channel-Call-UUID", "variable_call_uuid"} {
		if v := e.Get(h); v != "" {
			return v
		}
	}
	return e.Get("Unique-ID")
}

// callState maps FreeSWITCH's answer and call states to the Asterisk-style
// names the model uses ("Up" is the one that matters).
func callState(answer, call string) string {
	switch answer {
	case "answered":
		return "Up"
	case "hangup":
		return "Down"
	}
	switch call {
	case "DOWN", "HANGUP":
		return "Down"
	case "DIALING":
		return "Dialing"
	case "RINGING", "EARLY", "RING_WAIT":
		return "Ringing"
	case "ACTIVE", "HELD", "UNHELD":
		return "Up"
	}
	return ""
}

// hold emits ChanHold or ChanUnhold when the channel's hold state changes:
// CHANNEL_HOLD and CALLSTATE HELD say the same thing once.
func (x *txn) hold(st *chanState, on bool) {
	if st.held == on {
		return
	}
	st.held = on
	kind := bridge.ChanUnhold
	if on {
		kind = bridge.ChanHold
	}
	x.emit(kind, st, nil)
}

// record handles RECORD_START/STOP of a call recording (record_session,
// uuid_record: a media bug on the call). The switch fires the same events
// for a blocking recording of what a caller says (the record application,
// a voicemail message): that is a message, not a recording of the call,
// and says nothing here.
func (x *txn) record() {
	if x.e.Get("Event-Calling-File") == "switch_ivr_play_say.c" {
		return
	}
	st := x.self()
	if st == nil {
		return
	}
	x.open(st)
	kind := bridge.ChanRecordStart
	if x.e.Get("Event-Name") == "RECORD_STOP" {
		kind = bridge.ChanRecordStop
	}
	x.emit(kind, st, func(ev *bridge.ChannelEvent) {
		ev.File = x.e.Get("Record-File-Path")
		if kind == bridge.ChanRecordStop && hangingUp(x.e) {
			ev.Reason = bridge.RecordStopHangup // the recording ends with the call
		}
		// ChannelEvent has no duration field: RECORD_STOP's length goes in
		// the channel's Vars, as FreeSWITCH names it.
		secs, ms := x.e.Get("variable_record_seconds"), x.e.Get("variable_record_ms")
		if kind == bridge.ChanRecordStop && (secs != "" || ms != "") {
			vars := make(map[string]string, len(ev.Channel.Vars)+2)
			for k, v := range ev.Channel.Vars {
				vars[k] = v
			}
			if secs != "" {
				vars["record_seconds"] = secs
			}
			if ms != "" {
				vars["record_ms"] = ms
			}
			ev.Channel.Vars = vars
		}
	})
}

// job turns a failed background originate into ChanOriginateFailed.
func (x *txn) job() {
	e := x.e
	if e.Get("Job-Command") != "originate" {
		return
	}
	line, _, _ := strings.Cut(e.Body, "\n")
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "-") {
		return
	}
	cause := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), "-"))
	x.out = append(x.out, bridge.ChannelEvent{Kind: bridge.ChanOriginateFailed, At: x.at,
		ActionID: e.Get("Job-UUID"), CauseText: cause, Cause: Q850(cause)})
}

// nonZero reports whether a time header holds a time (FreeSWITCH writes 0
// for a moment that never came).
func nonZero(v string) bool { return v != "" && v != "0" }
