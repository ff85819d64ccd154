package esl

import (
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// A leg's release: who asked for it (sofia's account), its cause, the
// dial it ends.

// hangupSource says who released a channel, from sofia's account of the
// SIP exchange that ended it (recv_bye, recv_cancel, recv_refuse: the
// device or network; send_*: the switch). Other technologies, loopback
// halves included, cannot tell.
//
// A refusal that is a timer's expiry is nobody's act: sofia.c
// sofia_handle_sip_r_invite writes recv_refuse for every final answer over
// 299, also for the 408 sofia-sip makes itself when the INVITE got no
// answer at all (its transaction timer), and sofia_glue_sip_cause_to_freeswitch
// maps 408 and 504 to RECOVERY_ON_TIMER_EXPIRE. Nobody on the far side
// refused: the switch gave up, as it does on its own call_timeout.
func hangupSource(e *Event) string {
	if !strings.HasPrefix(e.Get("Channel-Name"), "sofia/") {
		return ""
	}
	d := e.Get("variable_sip_hangup_disposition")
	switch {
	case d == "recv_refuse" && hangupCause(e) == "RECOVERY_ON_TIMER_EXPIRE":
		return bridge.HangupByPBX
	case strings.HasPrefix(d, "recv_"):
		return bridge.HangupByEndpoint
	case strings.HasPrefix(d, "send_"):
		return bridge.HangupByPBX
	}
	return ""
}

// hangupRequest emits ChanHangupRequest as soon as an event shows a sofia
// leg hanging up because its device or network asked (a BYE or CANCEL
// received, or the INVITE refused): sofia writes sip_hangup_disposition
// when the SIP message arrives: a CANCEL or a refusal before the hangup
// (CHANNEL_HANGUP tells), a BYE right after (the events that follow tell:
// an UNBRIDGE, the queue's member-queue-end), all before
// CHANNEL_HANGUP_COMPLETE. A refusal counts only on a leg never answered: a
// refused re-INVITE leaves the same value on a live call.
func (x *txn) hangupRequest(st *chanState) {
	e := x.e
	if st.hupReq || !hangingUp(e) {
		return
	}
	if hangupSource(e) != bridge.HangupByEndpoint && !byeReceived(e) {
		return
	}
	if e.Get("variable_sip_hangup_disposition") == "recv_refuse" && st.answered {
		return // a refused re-INVITE, not the call's end
	}
	st.hupReq = true
	x.t.update(st, e)
	// With its cause, where the event has one: a carrier's refusal (404,
	// 503) is the network's, not the called party's.
	text := hangupCause(e)
	code := causeCode(e, text)
	x.emit(bridge.ChanHangupRequest, st, func(ev *bridge.ChannelEvent) { ev.Cause, ev.CauseText = code, text })
}

// byeReceived reports whether a sofia leg's CHANNEL_HANGUP comes from the
// far end before sofia has written sip_hangup_disposition: for a BYE
// (sofia_handle_sip_i_bye) and a dialog the network ended (the callstate
// terminated), sofia sets sip_term_cause, then hangs up, and only then
// writes recv_bye. The switch hanging a leg up sets neither first. The
// leg's next events, which carry recv_bye, may come much later: a caller
// hanging up while its agent runs att_xfer waits for the consultation to
// end before its hangup completes.
func byeReceived(e *Event) bool {
	return e.Get("Event-Name") == "CHANNEL_HANGUP" && strings.HasPrefix(e.Get("Channel-Name"), "sofia/") &&
		e.Get("variable_sip_hangup_disposition") == "" && e.Get("variable_sip_term_cause") != ""
}

// hangingUp reports whether an event shows its channel hanging up.
func hangingUp(e *Event) bool {
	return e.Get("Answer-State") == "hangup" || e.Get("Channel-Call-State") == "HANGUP" || e.Get("Hangup-Cause") != ""
}

func (x *txn) hangup() {
	e := x.e
	id := e.Get("Unique-ID")
	if id == "" || x.t.gone.has(id) {
		return
	}
	st := x.t.chans[id]
	switch {
	case st == nil:
		// Never seen: pass the hangup on, but open nothing, or the model
		// would start a call only to end it.
		st = &chanState{}
	case !st.opened:
		// An originated leg seen only by its CHANNEL_OUTGOING: it rang (or
		// failed) all the same.
		x.t.update(st, e)
		x.open(st)
	}
	x.t.update(st, e)
	// The far end had answered the INVITE with a provisional (180/183):
	// sofia-sip's INVITE transaction timer no longer runs, so a 408 now is
	// the far side giving up on a party who did not answer (a carrier's
	// no-answer timer), not a destination never reached.
	farRang := st.progress || nonZero(e.Get("Caller-Channel-Progress-Time")) || nonZero(e.Get("Caller-Channel-Progress-Media-Time"))
	st.ch.State = "Down"
	cause := e.Get("Hangup-Cause")
	if cause == "PICKED_OFF" {
		x.pickedOff(st)
	}
	source := hangupSource(e)
	code := causeCode(e, cause)
	mark, hold := len(x.out), false
	if source == bridge.HangupByEndpoint && st.opened && !st.hupReq {
		st.hupReq = true
		x.emit(bridge.ChanHangupRequest, st, func(ev *bridge.ChannelEvent) { ev.Cause, ev.CauseText = code, cause })
	}
	if st.dialler != "" && !st.dialEnded {
		st.dialEnded = true
		status := "ANSWER"
		switch {
		case !st.answered && farRang && cause == "RECOVERY_ON_TIMER_EXPIRE":
			status = "NOANSWER"
		case !st.answered:
			status = dialStatus(cause)
		case !st.bridged && cause == "ORIGINATOR_CANCEL":
			// It answered as the caller gave up: switch_ivr_originate found
			// the caller gone and hung it up unconnected (its 200 OK crossed
			// the caller's CANCEL). Nobody was put through.
			status = "CANCEL"
		case !st.bridged && source != bridge.HangupByEndpoint && originateDropped(cause):
			// It answered, but switch_ivr_originate hung it up unconnected:
			// another peer won (LOSE_RACE: group_confirm_key not pressed
			// while another callee confirmed, two phones answering at
			// once), or its confirmation timed out (check_per_channel_
			// timeouts: ALLOTTED_TIMEOUT). Its answer put nobody through.
			status = dialStatus(cause)
		}
		hold = x.t.holdsFailedDial(st, status)
		x.emit(bridge.ChanDialEnd, x.t.dialler(st), func(ev *bridge.ChannelEvent) {
			ev.Peer, ev.DialStatus = peer(st), status
		})
	}
	x.emit(bridge.ChanHangup, st, func(ev *bridge.ChannelEvent) {
		ev.Cause, ev.CauseText, ev.HangupSource = code, cause, source
	})
	if hold {
		x.t.failedDials[st.dialler] = append(x.t.failedDials[st.dialler], x.out[mark:]...)
		x.out = x.out[:mark]
	}
	x.t.forget(id, st, x.at)
}

// originateDropped reports whether cause is switch_ivr_originate's own
// for a peer it gives up on: another peer won, or the leg's time ran out.
func originateDropped(cause string) bool {
	switch cause {
	case "LOSE_RACE", "ALLOTTED_TIMEOUT", "NO_ANSWER", "PROGRESS_TIMEOUT":
		return true
	}
	return false
}

// holdsFailedDial reports whether the end of st's failed dial waits for its
// dialler's next step: a leg through a gateway (sofia/gateway/...) that
// did not answer, dialled by a channel still up.
func (t *Translator) holdsFailedDial(st *chanState, status string) bool {
	if status == "ANSWER" || st.dialler == "" || st.dialler == switchDialler || !strings.HasPrefix(st.ch.Name, "sofia/gateway/") {
		return false
	}
	d := t.chans[st.dialler]
	return d != nil && d.opened && !t.gone.has(st.dialler)
}

// hangupCause is the cause an event gives for its channel's hangup: the
// Hangup-Cause header (CHANNEL_HANGUP on, and the callstate HANGUP), or
// the hangup_cause variable where the event carries variables.
func hangupCause(e *Event) string {
	if c := e.Get("Hangup-Cause"); c != "" {
		return c
	}
	return e.Get("variable_hangup_cause")
}

// causeCode is the Q.850 code of an event's hangup cause: the switch's own
// hangup_cause_q850 where the event carries variables, else the code of
// its cause name.
func causeCode(e *Event, cause string) int {
	if code, err := strconv.Atoi(e.Get("variable_hangup_cause_q850")); err == nil {
		return code
	}
	return Q850(cause)
}
