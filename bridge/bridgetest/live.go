package bridgetest

import (
	"fmt"
	"reflect"

	"github.com/ctibridge/ctibridge/bridge"
)

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
func (v *LiveView) Diff(live []bridge.Call) error {
	if len(live) != len(v.calls) {
		return fmt.Errorf("live view: %d calls, tracker has %d", len(v.calls), len(live))
	}
	for _, c := range live {
		got, ok := v.calls[c.ID]
		if !ok {
			return fmt.Errorf("live view: %s is live in the tracker but was never drained", c.ID)
		}
		if !reflect.DeepEqual(got, c) {
			return fmt.Errorf("live view: %s changed without being marked dirty:\n got %+v\nwant %+v", c.ID, got, c)
		}
	}
	return nil
}
