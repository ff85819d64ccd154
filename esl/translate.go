package esl

import (
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// The mapping, FreeSWITCH event to ChannelEvents:
//
//	CHANNEL_CREATE           ChanNew; ChanDial{Channel: originator, Peer: it} for an
//	                         originated leg, with no Channel when the switch itself
//	                         originated it; ChanLocalPair{-a, -b} once both loopback
//	                         halves (or both ends of a SIP call to itself) are known;
//	                         ChanAgentCalled for a mod_callcenter agent leg
//	CHANNEL_PROGRESS(_MEDIA) ChanUpdate, State Ringing
//	CHANNEL_ANSWER           ChanAnswer
//	CHANNEL_BRIDGE           ChanDialEnd ANSWER for a dialled leg, ChanBridgeEnter for
//	                         Bridge-A and Bridge-B, Bridge = A's uuid
//	CHANNEL_UNBRIDGE         ChanTransfer when it carries a new bl_xfer
//	                         transfer_source, ChanBridgeLeave for both legs
//	CHANNEL_HOLD/UNHOLD      ChanHold/ChanUnhold
//	CHANNEL_HANGUP_COMPLETE  ChanDialEnd for a dialled leg not yet ended, ChanHangup
//	RECORD_START/STOP        ChanRecordStart/Stop, File; the length in Vars
//	BACKGROUND_JOB           ChanOriginateFailed for an originate answering -ERR
//	sofia::transferor        ChanTransfer (sofia::transferee/replaced add nothing)
//	callcenter::info         ChanQueueJoin/Leave/Abandon, ChanAgentConnect,
//	                         ChanAgentRingNoAnswer, ChanAgentState
//
// Translator turns FreeSWITCH events into bridge.ChannelEvents. It keeps a
// little state per channel because FreeSWITCH spreads one fact over several
// events (who dialled whom, the halves of a loopback, the callcenter offer and
// the agent's leg) and because events may still arrive out of order after the
// reorder window. Its rules for order:
//
//   - A channel is final once its CHANNEL_HANGUP_COMPLETE is translated: later
//     events about it (a late ANSWER, PROGRESS, BRIDGE, HOLD, RECORD) are
//     dropped, so nothing brings it back. Only events that close something
//     (ChanDialEnd, queue leave/abandon, agent no-answer) may still name it.
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

	chans     map[string]*chanState
	gone      *lru[bridge.Channel] // channels that hung up, as last seen
	unbridged *lru[uint64]         // "a|b" -> Event-Sequence of the UNBRIDGE
	sipCalls  map[string]string    // SIP Call-ID -> channel, for calls the switch makes to itself
}

// switchDialler is the dialler of a leg the switch originated by itself.
const switchDialler = "\x00switch"

type chanState struct {
	ch        bridge.Channel
	opened    bool   // ChanNew sent
	answered  bool   // ChanAnswer sent
	dialler   string // the channel that dialled this one (ChanDial sent)
	diallerCh bridge.Channel
	dialEnded bool
	loopPeer  string // the other half of a loopback pair
	loopLeg   string // "A" or "B"
	paired    bool   // ChanLocalPair sent
	sipCallID string
	xfer      string // the last variable_transfer_source handled
	sofiaXfer string // target of a transfer announced by sofia::transferor
	ccMember  string // callcenter: the member session this agent leg serves
	ccAgent   string
	ccQueue   string
	ccCalled  bool // ChanAgentCalled sent
	adopted   bool // learnt from a snapshot: its dial and pairing are history
}

// NewTranslator returns a Translator that copies directionVar (may be "")
// into Channel.Vars.
func NewTranslator(directionVar string) *Translator {
	return &Translator{
		DirectionVar: directionVar,
		chans:        map[string]*chanState{},
		gone:         newLRU[bridge.Channel](1 << 14),
		unbridged:    newLRU[uint64](1 << 14),
		sipCalls:     map[string]string{},
	}
}

// Translate maps one event. Most events give none or one ChannelEvent; a
// channel's first event, CREATE, BRIDGE and HANGUP_COMPLETE may give more.
func (t *Translator) Translate(e *Event) []bridge.ChannelEvent {
	at := e.Time()
	if at.IsZero() {
		at = time.Now()
	}
	x := &txn{t: t, e: e, at: at}
	switch e.Get("Event-Name") {
	case "CHANNEL_CREATE":
		if st := x.self(); st != nil && !x.open(st) {
			x.emit(bridge.ChanUpdate, st, nil) // CREATE after the channel's first event
		}
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		if st := x.self(); st != nil {
			x.open(st)
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
		}
	case "CHANNEL_BRIDGE":
		x.bridge()
	case "CHANNEL_UNBRIDGE":
		x.unbridge()
	case "CHANNEL_HOLD", "CHANNEL_UNHOLD":
		if st := x.self(); st != nil {
			x.open(st)
			kind := bridge.ChanHold
			if e.Get("Event-Name") == "CHANNEL_UNHOLD" {
				kind = bridge.ChanUnhold
			}
			x.emit(kind, st, nil)
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
		}
	}
	return x.out
}

// Resync aligns the state with a snapshot of the live channels: channels not
// in it are gone; the ones in it are known (no ChanNew will follow for them).
func (t *Translator) Resync(live []bridge.Channel) {
	alive := make(map[string]bool, len(live))
	for _, ch := range live {
		alive[ch.ID] = true
		st := t.chans[ch.ID]
		if st == nil {
			st = &chanState{opened: true, adopted: true}
			t.chans[ch.ID] = st
		}
		linked := st.ch.LinkedID
		st.ch = ch
		if linked != "" {
			st.ch.LinkedID = linked
		}
		st.answered = st.answered || ch.State == "Up"
	}
	for id, st := range t.chans {
		if !alive[id] {
			delete(t.chans, id)
			t.gone.add(id, st.ch)
		}
	}
	for cid, id := range t.sipCalls {
		if !alive[id] {
			delete(t.sipCalls, cid)
		}
	}
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
	x.out = append(x.out, ev)
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

// open emits ChanNew for a channel's first event, with what follows from
// it: ChanDial when another leg originated it, ChanLocalPair when both
// loopback halves are known, ChanAgentCalled for a callcenter agent leg. It
// reports whether ChanNew was emitted.
func (x *txn) open(st *chanState) bool {
	e, t := x.e, x.t
	first := !st.opened
	if first {
		st.opened = true
		x.emit(bridge.ChanNew, st, nil)
	}
	if st.adopted {
		return first
	}
	// FreeSWITCH has no DialBegin: an originated leg names its originator.
	if o := e.Get("Other-Leg-Unique-ID"); st.dialler == "" && o != "" && e.Get("Other-Type") == "originator" && !t.gone.has(o) {
		by := t.stateOf(o, e, "Other-Leg-")
		st.dialler, st.diallerCh = o, by.ch
		x.emit(bridge.ChanDial, by, func(ev *bridge.ChannelEvent) { ev.Peer = peer(st) })
	}
	// An originate's own leg names no originator on the events that would
	// (CHANNEL_OUTGOING, CHANNEL_CREATE): the switch dials it by itself,
	// as AMI's DialBegin without a Channel says. The tracker rings it when
	// it is a click-to-call's agent leg.
	if name := e.Get("Event-Name"); st.dialler == "" && !st.dialEnded && (name == "CHANNEL_CREATE" || name == "CHANNEL_OUTGOING") &&
		e.Get("Call-Direction") == "outbound" && e.Get("Other-Type") == "" {
		st.dialler = switchDialler
		x.emit(bridge.ChanDial, &chanState{}, func(ev *bridge.ChannelEvent) { ev.Peer = peer(st) })
	}
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
	if e.Get("variable_cc_side") == "agent" && st.ccMember == "" {
		st.ccMember = e.Get("variable_cc_member_session_uuid")
		st.ccAgent, st.ccQueue = e.Get("variable_cc_agent"), e.Get("variable_cc_queue")
	}
	if st.ccMember != "" && !st.ccCalled {
		st.ccCalled = true
		x.emit(bridge.ChanAgentCalled, t.stateOf(st.ccMember, nil, ""), func(ev *bridge.ChannelEvent) {
			ev.Peer, ev.Queue, ev.Member, ev.Interface = peer(st), st.ccQueue, st.ccAgent, st.ch.Name
		})
	}
	return first
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
	if ch, ok := t.gone.get(id); ok {
		return &chanState{ch: ch}
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
	return &chanState{ch: st.diallerCh}
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
	num, name := e.Get("Caller-Caller-ID-Number"), e.Get("Caller-Caller-ID-Name")
	// originate's placeholder callee ("Outbound Call", the dial string's
	// tail) ends up as the caller id of a loopback -a leg once the far end
	// answers: keep the real caller id.
	if name != placeholderName {
		if num != "" {
			ch.CallerNum = num
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
		ch.ConnectedNum, ch.ConnectedName = calleeNum, calleeName
	}
	if v := e.Get("Caller-Context"); v != "" {
		ch.Context = v
	}
	if v := e.Get("Caller-Destination-Number"); v != "" {
		ch.Exten = v
	}
	if v := callState(e.Get("Answer-State"), e.Get("Channel-Call-State")); v != "" {
		ch.State = v
	}
	if v := e.Get("Call-Direction"); v != "" {
		ch.Direction = v
	}
	if t.DirectionVar != "" {
		if v := e.Get("variable_" + t.DirectionVar); v != "" && ch.Vars[t.DirectionVar] != v {
			vars := make(map[string]string, len(ch.Vars)+1)
			for k, x := range ch.Vars {
				vars[k] = x
			}
			vars[t.DirectionVar] = v
			ch.Vars = vars // never mutated in place: events already emitted share the old map
		}
	}
}

const placeholderName = "Outbound Call"

// linkedID is the call's originating leg as far as the event tells.
func linkedID(e *Event) string {
	if e.Get("variable_cc_side") == "agent" {
		if v := e.Get("variable_cc_member_session_uuid"); v != "" {
			return v
		}
	}
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

func (x *txn) bridgeLegs() (a, b string) {
	a, b = x.e.Get("Bridge-A-Unique-ID"), x.e.Get("Bridge-B-Unique-ID")
	if a == "" {
		a = x.e.Get("Unique-ID")
	}
	if b == "" {
		b = x.e.Get("Other-Leg-Unique-ID")
	}
	return a, b
}

// leg returns the live state of one bridge leg, opening it when it is new
// and create is set; nil when it hung up.
func (x *txn) leg(id string, create bool) *chanState {
	if id == "" || x.t.gone.has(id) {
		return nil
	}
	if id == x.e.Get("Unique-ID") {
		st := x.self()
		x.open(st)
		return st
	}
	st := x.t.chans[id]
	if st == nil && create {
		st = x.t.stateOf(id, x.e, "Other-Leg-")
		x.t.chans[id] = st
		st.opened = true
		x.emit(bridge.ChanNew, st, nil)
	}
	return st
}

func (x *txn) bridge() {
	a, b := x.bridgeLegs()
	if seq, ok := x.t.unbridged.get(a + "|" + b); ok && x.e.Seq() < seq {
		return // a late BRIDGE: the UNBRIDGE was already passed on
	}
	la, lb := x.leg(a, true), x.leg(b, true)
	for _, l := range []*chanState{la, lb} {
		if l != nil && l.dialler != "" && !l.dialEnded {
			l.dialEnded = true
			x.emit(bridge.ChanDialEnd, x.t.dialler(l), func(ev *bridge.ChannelEvent) {
				ev.Peer, ev.DialStatus = peer(l), "ANSWER"
			})
		}
	}
	for _, l := range []*chanState{la, lb} {
		if l != nil {
			x.emit(bridge.ChanBridgeEnter, l, func(ev *bridge.ChannelEvent) { ev.Bridge = a })
		}
	}
}

func (x *txn) unbridge() {
	a, b := x.bridgeLegs()
	x.t.unbridged.add(a+"|"+b, x.e.Seq())
	la, lb := x.leg(a, true), x.leg(b, false)
	// A blind transfer has no event of its own: the transferred leg leaves
	// its bridge carrying "<epoch>:<uuid>:bl_xfer:<exten>/<context>/<dialplan>".
	if me := x.e.Get("Unique-ID"); me != "" && x.t.chans[me] != nil {
		other := a
		if me == a {
			other = b
		}
		x.blindTransfer(x.t.chans[me], other)
	}
	for _, l := range []*chanState{la, lb} {
		if l != nil {
			x.emit(bridge.ChanBridgeLeave, l, func(ev *bridge.ChannelEvent) { ev.Bridge = a })
		}
	}
}

func (x *txn) blindTransfer(st *chanState, transferer string) {
	src := x.e.Get("variable_transfer_source")
	_, target, ok := strings.Cut(src, ":bl_xfer:")
	if !ok || src == st.xfer {
		return // not a blind transfer, or one already handled (the variable stays)
	}
	st.xfer = src
	parts := strings.Split(target, "/")
	exten, context := parts[0], ""
	if len(parts) > 1 {
		context = parts[1]
	}
	if st.sofiaXfer != "" && st.sofiaXfer == exten {
		st.sofiaXfer = "" // sofia::transferor already said it
		return
	}
	x.emit(bridge.ChanTransfer, x.t.stateOf(transferer, x.e, "Other-Leg-"), func(ev *bridge.ChannelEvent) {
		ev.Peer, ev.Exten, ev.Context = peer(st), exten, context
	})
}

// transferor handles sofia::transferor, fired on the leg of the phone that
// sent REFER. With att_xfer_* headers the transfer is attended; without, it
// is blind and the target is in variable_transfer_destination.
func (x *txn) transferor() {
	st := x.self()
	if st == nil {
		return
	}
	x.open(st)
	e := x.e
	me := e.Get("Unique-ID")
	orig, dest := e.Get("att_xfer_original_call_id"), e.Get("att_xfer_destination_call_id")
	partner := e.Get("Other-Leg-Unique-ID")
	if partner == "" {
		partner = e.Get("variable_bridge_uuid")
	}
	var transferee, exten string
	attended := orig != "" || dest != ""
	if attended {
		// Fully bridged: orig is the transferer's partner (the transferee),
		// dest the consult target's leg. Half bridged, sofia names the legs
		// the other way round; the transferee is then dest.
		transferee = orig
		if orig == "" || orig == me || (partner != "" && dest == partner) {
			transferee = dest
		}
		for _, id := range []string{e.Get("att_xfer_destination_peer_uuid"), dest} {
			if c := x.t.chans[id]; id != "" && id != transferee && c != nil && c.ch.Exten != "" {
				exten = c.ch.Exten
				break
			}
		}
	} else {
		transferee = partner
		if v, ok := strings.CutPrefix(e.Get("variable_transfer_to"), "blind:"); ok && transferee == "" {
			transferee = v
		}
		exten, _ = strings.CutPrefix(e.Get("variable_transfer_destination"), "blind:")
	}
	if transferee == "" || x.t.gone.has(transferee) {
		return
	}
	tst := x.t.stateOf(transferee, nil, "")
	if !attended {
		tst.sofiaXfer = exten // the transferee's UNBRIDGE will carry bl_xfer: say it once
	}
	x.emit(bridge.ChanTransfer, st, func(ev *bridge.ChannelEvent) {
		ev.Peer, ev.Exten, ev.Context, ev.Attended = peer(tst), exten, st.ch.Context, attended
	})
}

func (x *txn) hangup() {
	e := x.e
	id := e.Get("Unique-ID")
	if id == "" || x.t.gone.has(id) {
		return
	}
	st := x.t.chans[id]
	if st == nil {
		// Never seen: pass the hangup on, but open nothing, or the model
		// would start a call only to end it.
		st = &chanState{}
	}
	x.t.update(st, e)
	st.ch.State = "Down"
	cause := e.Get("Hangup-Cause")
	if st.dialler != "" && !st.dialEnded {
		st.dialEnded = true
		status := "ANSWER"
		if !st.answered {
			status = dialStatus(cause)
		}
		x.emit(bridge.ChanDialEnd, x.t.dialler(st), func(ev *bridge.ChannelEvent) {
			ev.Peer, ev.DialStatus = peer(st), status
		})
	}
	code, err := strconv.Atoi(e.Get("variable_hangup_cause_q850"))
	if err != nil {
		code = Q850(cause)
	}
	x.emit(bridge.ChanHangup, st, func(ev *bridge.ChannelEvent) { ev.Cause, ev.CauseText = code, cause })
	delete(x.t.chans, id)
	if x.t.sipCalls[st.sipCallID] == id {
		delete(x.t.sipCalls, st.sipCallID)
	}
	x.t.gone.add(id, st.ch)
}

func (x *txn) record() {
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
		x.emit(bridge.ChanQueueJoin, memberState(), func(ev *bridge.ChannelEvent) { ev.Queue = queue })
	case "agent-offering":
		// Nothing yet: the agent's leg, created right after the offer,
		// carries cc_member_session_uuid, cc_agent and cc_queue, and
		// ChanAgentCalled goes out with its first event (see open), so Peer
		// is always set. Without a leg, bridge-agent-fail follows.
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
		kind, reason := bridge.ChanQueueLeave, e.Get("CC-Cause")
		if reason == "Cancel" {
			switch r := e.Get("CC-Cancel-Reason"); r {
			case "", "NONE":
				kind = bridge.ChanQueueAbandon // the caller hung up while waiting
			default:
				reason = r // TIMEOUT, NO_AGENT_TIMEOUT, BREAK_OUT, EXIT_WITH_KEY
			}
		}
		x.emit(kind, x.t.stateOf(member, nil, ""), func(ev *bridge.ChannelEvent) { ev.Queue, ev.Reason = queue, reason })
	case "agent-status-change", "agent-state-change":
		status, paused := agentStatus(e.Get("CC-Agent-Status"), e.Get("CC-Agent-State"))
		if agent == "" || status == "" {
			return
		}
		ev := bridge.ChannelEvent{Kind: bridge.ChanAgentState, At: x.at, Member: agent, Status: status, Paused: paused}
		if paused {
			ev.Reason = e.Get("CC-Agent-Status")
		}
		x.out = append(x.out, ev)
	}
}

// agentStatus maps mod_callcenter's agent status (availability) or state
// (activity) to the model's agent states.
func agentStatus(status, state string) (string, bool) {
	switch status {
	case "Logged Out":
		return "logged_out", false
	case "Available", "Available (On Demand)":
		return "available", false
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
	return "", false
}

// lru is a bounded map forgetting the oldest key first.
type lru[V any] struct {
	max  int
	vals map[string]V
	keys []string
	head int
}

func newLRU[V any](max int) *lru[V] { return &lru[V]{max: max, vals: make(map[string]V)} }

func (l *lru[V]) add(k string, v V) {
	if _, ok := l.vals[k]; !ok {
		if len(l.keys) < l.max {
			l.keys = append(l.keys, k)
		} else {
			delete(l.vals, l.keys[l.head])
			l.keys[l.head] = k
			l.head = (l.head + 1) % l.max
		}
	}
	l.vals[k] = v
}

func (l *lru[V]) has(k string) bool { _, ok := l.vals[k]; return ok }

func (l *lru[V]) get(k string) (V, bool) { v, ok := l.vals[k]; return v, ok }
