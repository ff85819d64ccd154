package bridgetest

import "github.com/ctibridge/ctibridge/bridge"

// LiveView follows the live calls the way bridge.Engine publishes them:
// only from the conversations each Drain returns. Diff against the
// tracker's own list shows a conversation that changed without being
// marked dirty (the engine would then show a stale call).
type LiveView struct{ calls map[string]bridge.Call }

// Apply takes the conversations one Drain returned.
func (v *LiveView) Apply(recs []bridge.ConversationRecord) {
	if v.calls == nil {
		v.calls = map[string]bridge.Call{}
	}
	for _, r := range recs {
		if r.Open && !r.Discard {
			v.calls[r.Call.ID] = r.Call
		} else {
			delete(v.calls, r.Call.ID)
		}
	}
}

// Diff compares the view with the tracker's Live().
func (v *LiveView) Diff(live []bridge.Call) error { return bridge.DiffLive(v.calls, live) }
