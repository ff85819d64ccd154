// Package bridgetest helps tests of the call model: it renders the events a
// CRM receives as one line per conversation, in the vocabulary of the
// capture READMEs' EXPECT lines, so a flow's whole story compares at once.
package bridgetest

import (
	"fmt"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// Story renders one conversation's events:
//
//	inbound caller=5551234 callee=200: ringing(100) answered(100) ended(disposition=answered, hangup_by=caller)
//
// The header takes direction and parties from the last event (call.ended
// carries the final view). agent.state events are not part of a story.
func Story(evs []bridge.Event) string {
	var items []string
	var last *bridge.Call
	for _, e := range evs {
		if e.Call != nil {
			last = e.Call
		}
		if s := item(e); s != "" {
			items = append(items, s)
		}
	}
	head := "?"
	if last != nil {
		head = fmt.Sprintf("%s caller=%s callee=%s", last.Direction, last.Caller.Number, last.Callee.Number)
	}
	return head + ": " + strings.Join(items, " ")
}

func item(e bridge.Event) string {
	ext := func() string {
		if e.Party == bridge.PartyCustomer {
			return "customer"
		}
		if e.Party == bridge.PartyExternal {
			return e.Number
		}
		if e.Agent != nil {
			return e.Agent.Extension
		}
		return ""
	}
	switch e.Type {
	case bridge.EventCallRinging:
		return "ringing(" + ext() + ")"
	case bridge.EventCallRingEnded:
		return "ring_ended(" + ext() + ")"
	case bridge.EventCallAnswered:
		return "answered(" + ext() + ")"
	case bridge.EventCallHeld:
		if e.Park != nil {
			return "held(parked " + e.Park.Slot + ")"
		}
		return "held"
	case bridge.EventCallResumed:
		return "resumed"
	case bridge.EventCallQueued:
		return "queued"
	case bridge.EventCallAbandoned:
		return "abandoned"
	case bridge.EventCallFailed:
		return "failed"
	case bridge.EventRecordingStarted:
		return "recording_started"
	case bridge.EventRecordingReady:
		return "recording_ready"
	case bridge.EventCallTransferred:
		t := e.Transfer
		if t == nil {
			return "transferred(?)"
		}
		from := ""
		if t.From != nil {
			from = t.From.Extension
		} else if t.By != "" {
			from = t.By
		}
		return fmt.Sprintf("transferred(%s, from %s, to %s)", t.Mode, from, t.To)
	case bridge.EventCallEnded:
		if e.Call == nil {
			return "ended(?)"
		}
		return fmt.Sprintf("ended(disposition=%s, hangup_by=%s)", e.Call.Disposition, e.Call.HangupBy)
	}
	return ""
}

// Stories renders every conversation in evs, in the order of their first
// event, one story each.
func Stories(evs []bridge.Event) []string {
	var order []string
	by := map[string][]bridge.Event{}
	for _, e := range evs {
		if e.ConversationID == "" {
			continue
		}
		if _, ok := by[e.ConversationID]; !ok {
			order = append(order, e.ConversationID)
		}
		by[e.ConversationID] = append(by[e.ConversationID], e)
	}
	out := make([]string, len(order))
	for i, id := range order {
		out[i] = Story(by[id])
	}
	return out
}
