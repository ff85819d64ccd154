package bridge

import "time"

// A click-to-call registered before the PBX is asked: its pre-assigned
// channel ids, kept until its first channel appears, it is refused, or it
// is pruned.

// expectOriginate registers a click-to-call before the PBX is asked to place
// it, so its first channel joins a known conversation and pops as outbound.
func (t *Tracker) expectOriginate(o *Originate) {
	if o.AgentChannelID != "" {
		t.originates[o.AgentChannelID] = o
	}
	if o.OtherChannelID != "" {
		t.originates[o.OtherChannelID] = o
	}
	if o.ActionID != "" {
		t.originates["action:"+o.ActionID] = o
	}
}

// forgetOriginate drops a click-to-call registered with expectOriginate
// that the PBX refused: none of its channels will come, and the entries
// would otherwise stay for the life of the process.
func (t *Tracker) forgetOriginate(o *Originate) {
	for _, k := range []string{o.AgentChannelID, o.OtherChannelID, "action:" + o.ActionID} {
		if t.originates[k] == o {
			delete(t.originates, k)
		}
	}
}

// pruneOriginates drops click-to-calls requested before cutoff. An entry
// is looked up only when its channel first appears, which happens while
// the agent's phone rings (at most minutes) or never; the tracker itself
// keeps them forever.
func (t *Tracker) pruneOriginates(cutoff time.Time) int {
	n := 0
	for k, o := range t.originates {
		if o.RequestedAt.Before(cutoff) {
			delete(t.originates, k)
			n++
		}
	}
	return n
}

// pendingOriginate returns the click-to-call registered for a conversation
// that the store does not know yet (no channel of it has been committed).
func (t *Tracker) pendingOriginate(conversationID string) (Originate, bool) {
	for _, o := range t.originates {
		if o.ConversationID == conversationID {
			return *o, true
		}
	}
	return Originate{}, false
}
