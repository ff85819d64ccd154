package esl

import (
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// Bridges, transfers, pickups and parking: what happens to a call between
// its legs. FreeSWITCH has no transfer event of its own: a transfer shows as
// variables (transfer_source) and as the bridges that follow.

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
	if st != nil && !st.opened {
		if !create {
			return nil
		}
		x.open(st) // known by its CHANNEL_OUTGOING only
	}
	if st == nil && create {
		// A leg first named by a bridge: its past (who dialled it, its
		// transfers) happened before we saw it.
		st = x.t.stateOf(id, x.e, "Other-Leg-")
		x.t.chans[id] = st
		st.opened, st.origin = true, true
		x.emit(bridge.ChanNew, st, nil)
	}
	return st
}

func (x *txn) bridge() {
	a, b := x.bridgeLegs()
	if a == b {
		return
	}
	if seq, ok := x.t.unbridged.get(a + "|" + b); ok && x.e.Seq() < seq {
		return // a late BRIDGE: the UNBRIDGE was already passed on
	}
	la, lb := x.leg(a, true), x.leg(b, true)
	var replaced func()
	if la != nil && lb != nil {
		x.pickupBridge(la, lb)
		x.pickupBridge(lb, la)
		x.attended(la, lb)
		x.attended(lb, la)
		if replaced = x.referReplaces(la, lb); replaced == nil {
			replaced = x.referReplaces(lb, la)
		}
	}
	for _, l := range []*chanState{la, lb} {
		if l != nil && l.dialler != "" && !l.dialEnded {
			l.dialEnded = true
			x.emit(bridge.ChanDialEnd, x.t.dialler(l), func(ev *bridge.ChannelEvent) {
				ev.Peer, ev.DialStatus = peer(l), "ANSWER"
			})
		}
	}
	if la != nil && lb != nil {
		la.partner, la.lastPartner, la.leftPartner, la.bridged, la.bridgeSeq = b, b, "", true, x.e.Seq()
		lb.partner, lb.lastPartner, lb.leftPartner, lb.bridged, lb.bridgeSeq = a, a, "", true, x.e.Seq()
		// An attended transfer is said once, up to the bridge that
		// completes it: the same leg's next one (the new agent's own
		// att_xfer) is another.
		la.xferSaid, lb.xferSaid = false, false
	}
	for _, l := range []*chanState{la, lb} {
		if l != nil {
			x.emit(bridge.ChanBridgeEnter, l, func(ev *bridge.ChannelEvent) { ev.Bridge = a })
		}
	}
	if replaced != nil {
		replaced() // after the bridge: the target's leg is in the call by then
	}
}

func (x *txn) unbridge() {
	a, b := x.bridgeLegs()
	x.t.unbridged.add(a+"|"+b, x.e.Seq())
	la, lb := x.leg(a, true), x.leg(b, false)
	me := x.e.Get("Unique-ID")
	for _, p := range [][2]string{{a, b}, {b, a}} {
		l := x.t.chans[p[0]]
		if l == nil || l.partner != p[1] {
			continue
		}
		l.partner = ""
		if p[0] != me {
			// This leg's own next event tells whether it left the bridge
			// because it was transferred.
			l.leftPartner = p[1]
		}
	}
	for _, l := range []*chanState{la, lb} {
		if l != nil {
			x.emit(bridge.ChanBridgeLeave, l, func(ev *bridge.ChannelEvent) { ev.Bridge = a })
		}
	}
}

// follow watches every event carrying a known channel's variables for a
// blind transfer: switch_ivr_session_transfer (REFER, uuid_transfer, the
// transfer application, a feature code) writes a new transfer_source (the
// variable and the caller profile's Transfer-Source)
// "<epoch>:<uuid>:bl_xfer:<exten>/<context>/<dialplan>" on the leg it moves.
// It is a transfer of a call only when that leg was bridged: the partner it
// leaves is the transferer. The same variable after routing before any
// bridge (public -> default, originate ... XML default) is dialplan, not a
// transfer. A bridge A-leg shows the value on its own UNBRIDGE; a B-leg only
// on its next event (its CHANNEL_CALLSTATE), after the A-leg's UNBRIDGE.
func (x *txn) follow() {
	e := x.e
	st := x.t.chans[e.Get("Unique-ID")]
	if st == nil || !st.opened {
		return
	}
	partner := st.partner
	if partner == "" {
		partner = st.leftPartner
	}
	if hasVars(e) || e.Get("Caller-Unique-ID") != "" {
		st.leftPartner = "" // the event shows the leg's state after the bridge
	}
	if hasVars(e) {
		x.hangupRequest(st)
	}
	src := transferSource(e)
	if src == "" || src == st.xferSrc {
		return
	}
	// The first source seen of a leg adopted in a bridge is news when it
	// was written after that bridge began (a REFER since the connect);
	// older ones are the call's routing or transfers before the link.
	at := st.peek().bridgedAt
	known := st.xferKnown || st.adopted && !at.IsZero() && sourceAfter(src, at)
	st.xferSrc, st.xferKnown = src, true
	exten, context, ok := blindTarget(src)
	if ok && partner == "" && st.dialler == switchDialler && !st.bridged && !st.adopted && strings.HasSuffix(src, "/XML") {
		// A leg the switch originated, routed before any bridge: click-to-
		// call's "originate <agent> <to> XML <context>"
		// (mod_commands.c originate_function: switch_ivr_session_transfer
		// once the agent answered). Where it goes is the number the agent
		// calls, even when no party is ever dialled (no route).
		x.emit(bridge.ChanDialplan, st, func(ev *bridge.ChannelEvent) {
			ev.Exten, ev.Context, ev.Priority = exten, context, 1
		})
	}
	if !known || !ok || partner == "" || strings.HasPrefix(exten, "att_xfer:") {
		// An inline att_xfer is run by the transferring party: the leg it
		// moves is a transferer starting a consultation, not a transferee.
		return
	}
	x.t.update(st, e)
	if said := st.peek().sofiaXfer; said != "" && said == exten {
		st.rare().sofiaXfer = "" // sofia::transferor already said it
		return
	}
	x.emit(bridge.ChanTransfer, x.t.stateOf(partner, nil, ""), func(ev *bridge.ChannelEvent) {
		ev.Peer, ev.Exten, ev.Context = peer(st), exten, context
	})
}

// transferSource is the channel's last transfer as its caller profile
// says (Caller-Transfer-Source, on every event with the profile, variables
// or not: a CHANNEL_CALLSTATE tells too), else as its variable does.
func transferSource(e *Event) string {
	if v := e.Get("Caller-Transfer-Source"); v != "" {
		return v
	}
	return e.Get("variable_transfer_source")
}

// sourceAfter reports whether a transfer_source ("<epoch>:<uuid>:...")
// was written after t (whole seconds: the same second is not after).
func sourceAfter(src string, t time.Time) bool {
	epoch, _, _ := strings.Cut(src, ":")
	s, err := strconv.ParseInt(epoch, 10, 64)
	return err == nil && s > t.Unix()
}

// blindTarget parses a bl_xfer transfer_source. The extension may itself
// hold '/' (an inline dialplan's applications), so the dialplan and the
// context are taken from the end.
func blindTarget(src string) (exten, context string, ok bool) {
	_, target, ok := strings.Cut(src, ":bl_xfer:")
	if !ok || target == "" {
		return "", "", false
	}
	rest, _, ok := cutLast(target, "/") // the dialplan
	if !ok {
		return target, "", true
	}
	exten, context, ok = cutLast(rest, "/")
	if !ok {
		return rest, "", true
	}
	return exten, context, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// attended says an attended transfer when x is bridged to c while its
// previous partner a had dialled c: att_xfer (uuid_broadcast, a
// bind_meta_app key, ctibridge's own) consulted c from a, and once a hung
// up, uuid_bridge joined x with c. The transferer is a, the transferee x,
// the target c's user.
func (x *txn) attended(xl, c *chanState) {
	a := xl.lastPartner
	if a == "" || a == c.ch.ID || c.dialler != a || xl.xferSaid {
		return
	}
	if xl.dialler == a && c.lastPartner == a && xl.bridgeSeq > c.bridgeSeq {
		// a dialled both (its own outbound call, then the consultation):
		// the target is the one a talked to last, the transferee the one
		// it put aside.
		return
	}
	x.attendedBy(a, xl, c)()
}

// attendedBy says once that a handed transferee xl to target c, and
// returns the emit of that ChanTransfer.
func (x *txn) attendedBy(a string, xl, c *chanState) func() {
	xl.xferSaid = true
	target := c.endpoint
	if target == "" {
		target = c.ch.Exten
	}
	return func() {
		x.emit(bridge.ChanTransfer, x.t.stateOf(a, nil, ""), func(ev *bridge.ChannelEvent) {
			ev.Peer, ev.Exten, ev.Context, ev.Attended = peer(xl), target, c.ch.Context, true
		})
	}
}

// referReplaces recognises a phone's own attended transfer (REFER with
// Replaces, the transfer key of a desk phone) when sofia's transfer events
// are off, as they are by default (fire-transfer-events): sofia.c
// sofia_handle_sip_i_refer bridges the transferee x, whose partner was the
// phone's first line a, with the target c, whom the phone's second line
// dialled (uuid_bridge of the two far ends). The two lines are one
// directory user; att_xfer (c dialled by a itself) is attended's. It
// returns the emit of the transfer, to run once the bridge is passed on.
func (x *txn) referReplaces(xl, c *chanState) func() {
	a := xl.lastPartner
	if a == "" || a == c.ch.ID || c.dialler == "" || c.dialler == a || c.dialler == switchDialler || xl.xferSaid {
		return nil
	}
	user := x.t.endpointOf(a)
	if user == "" || user != x.t.endpointOf(c.dialler) {
		return nil
	}
	return x.attendedBy(a, xl, c)
}

// endpointOf is the directory user of a live or recently gone channel.
func (t *Translator) endpointOf(id string) string {
	st := t.stateOf(id, nil, "")
	if st.endpoint != "" {
		return st.endpoint
	}
	return st.ch.Endpoint
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
	if attended {
		tst.xferSaid = true // the bridge that completes it says nothing more
	} else {
		tst.rare().sofiaXfer = exten // the transferee's new transfer_source will say it again
	}
	x.emit(bridge.ChanTransfer, st, func(ev *bridge.ChannelEvent) {
		ev.Peer, ev.Exten, ev.Context, ev.Attended, ev.Named = peer(tst), exten, st.ch.Context, attended, true
	})
}

// intercept notes a channel running intercept ("[-bleg] <uuid>"): the
// picker. The call it takes shows as the PICKED_OFF hangup of the leg that
// rang.
func (x *txn) intercept() {
	st := x.t.chans[x.e.Get("Unique-ID")]
	if st == nil || !st.opened {
		return
	}
	args := strings.Fields(x.e.Get("Application-Data"))
	if len(args) > 0 && args[0] == "-bleg" {
		args = args[1:]
	}
	if len(args) == 0 || x.t.gone.has(args[0]) {
		return
	}
	if c := st.peek().intercept; c != "" && x.t.intercepts[c] == st.ch.ID {
		delete(x.t.intercepts, c)
	}
	st.rare().intercept = args[0]
	x.t.intercepts[args[0]] = st.ch.ID
}

// pickedOff handles a leg hung up with PICKED_OFF: another device took the
// call ringing on it (intercept of the leg or of its originator). With the
// picker known (its CHANNEL_EXECUTE intercept, when subscribed), ChanPickup
// goes out before the leg's dial ends; else it waits for the picker's
// bridge with the originator.
func (x *txn) pickedOff(st *chanState) {
	if !st.opened {
		return
	}
	picker := x.t.intercepts[st.ch.ID]
	if picker == "" && st.dialler != "" {
		picker = x.t.intercepts[st.dialler]
	}
	if p := x.t.chans[picker]; p != nil && p.opened {
		x.emit(bridge.ChanPickup, p, func(ev *bridge.ChannelEvent) { ev.Peer = peer(st) })
		return
	}
	if st.dialler != "" && st.dialler != switchDialler {
		x.t.picked[st.dialler] = true
	}
}

// pickupBridge: the call whose ringing leg was picked off meets its picker.
// That leg is gone by now: the pickup names the call's own leg, whose ring
// it was.
func (x *txn) pickupBridge(orig, picker *chanState) {
	if _, ok := x.t.picked[orig.ch.ID]; !ok || picker.dialler == orig.ch.ID {
		return
	}
	delete(x.t.picked, orig.ch.ID)
	x.emit(bridge.ChanPickup, picker, func(ev *bridge.ChannelEvent) { ev.Peer = peer(orig) })
}

// valet handles mod_valet_parking's events, about the parked channel:
// hold (it waits in slot Valet-Extension of lot Valet-Lot-Name), bridge (the
// channel in Bridge-To-UUID retrieves it) and exit (it left the lot, which
// the retrieval or its hangup already say).
func (x *txn) valet() {
	e := x.e
	switch e.Get("Action") {
	case "hold":
		if st := x.self(); st != nil {
			x.open(st)
			x.emit(bridge.ChanPark, st, func(ev *bridge.ChannelEvent) {
				ev.Exten, ev.Context = e.Get("Valet-Extension"), e.Get("Valet-Lot-Name")
			})
		}
	case "bridge":
		r := x.t.chans[e.Get("Bridge-To-UUID")]
		if r == nil || !r.opened {
			return
		}
		if st := x.self(); st != nil {
			x.open(st)
			x.emit(bridge.ChanUnpark, st, func(ev *bridge.ChannelEvent) {
				ev.Peer, ev.Exten, ev.Context = peer(r), e.Get("Valet-Extension"), e.Get("Valet-Lot-Name")
			})
		}
	}
}

// conference passes on a member joining or leaving a mod_conference room
// (conference::maintenance add-member/del-member, fired with the member's
// channel data): the room is a bridge the members share, marked as a
// conference, since no CHANNEL_BRIDGE tells who is in it.
func (x *txn) conference() {
	kind := bridge.ChanBridgeEnter
	switch x.e.Get("Action") {
	case "add-member":
	case "del-member":
		kind = bridge.ChanBridgeLeave
	default:
		return
	}
	room := x.e.Get("Conference-Unique-ID")
	st := x.self()
	if st == nil || room == "" {
		return
	}
	x.open(st)
	x.emit(kind, st, func(ev *bridge.ChannelEvent) { ev.Bridge, ev.Conference = "conference/"+room, true })
}
