package bridgetest

import (
	"fmt"

	"github.com/ctibridge/ctibridge/bridge"
)

// FirstEndedAgent is the agent of the first conversation's call.ended
// (agent.state events belong to no conversation).
func FirstEndedAgent(evs []bridge.Event) string {
	first := ""
	for _, e := range evs {
		if e.ConversationID != "" {
			first = e.ConversationID
			break
		}
	}
	if first == "" {
		return ""
	}
	for _, e := range evs {
		if e.Type == bridge.EventCallEnded && e.ConversationID == first && e.Call != nil && e.Call.Agent != nil {
			return e.Call.Agent.Extension
		}
	}
	return ""
}

// AnsweredWithRingCause names the answered calls whose call.ended carries
// a ring attempt's cause (busy, no answer, a redirect, answered
// elsewhere): why a device did not take the call, not why it ended.
func AnsweredWithRingCause(evs []bridge.Event) []string {
	var bad []string
	for _, e := range evs {
		if e.Type != bridge.EventCallEnded || e.Call == nil || e.Call.AnsweredAt == nil || e.Call.HangupCause == nil {
			continue
		}
		switch e.Call.HangupCause.Code {
		case 17, 18, 19, 21, 23, 26:
			bad = append(bad, fmt.Sprintf("%s: answered, ended with cause %d %s", e.ConversationID, e.Call.HangupCause.Code, e.Call.HangupCause.Text))
		}
	}
	return bad
}
