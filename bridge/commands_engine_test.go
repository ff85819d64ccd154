package bridge

import (
	"testing"
	"time"
)

// A refused click-to-call leaves nothing behind, and a stale one is
// pruned; a channel that comes after either is an ordinary call.
func TestForgetAndPruneOriginates(t *testing.T) {
	tr := newTestTracker()
	refused := &Originate{ConversationID: "conv_r", ActionID: "o-r", AgentChannelID: "r.1", OtherChannelID: "r.2", Agent: "201", To: "600", RequestedAt: t0}
	old := &Originate{ConversationID: "conv_o", ActionID: "o-o", AgentChannelID: "o.1", Agent: "201", To: "600", RequestedAt: t0}
	live := &Originate{ConversationID: "conv_l", ActionID: "o-l", AgentChannelID: "l.1", Agent: "202", To: "601", RequestedAt: t0.Add(2 * time.Hour)}
	for _, o := range []*Originate{refused, old, live} {
		tr.ExpectOriginate(o)
	}
	tr.ForgetOriginate(refused)
	if n := tr.PruneOriginates(t0.Add(time.Hour)); n != 2 { // old's channel and action entries
		t.Fatalf("pruned %d entries, want 2", n)
	}
	if len(tr.originates) != 2 || tr.originates["l.1"] != live || tr.originates["action:o-l"] != live {
		t.Fatalf("left %v", tr.originates)
	}
	// Forgetting an originate never drops another one's entries.
	tr.ForgetOriginate(&Originate{AgentChannelID: "l.1", ActionID: "o-l"})
	if len(tr.originates) != 2 {
		t.Fatalf("forgot another originate's entries: %v", tr.originates)
	}
	run(tr, ChannelEvent{Kind: ChanNew, Channel: Channel{ID: "r.1", Name: "PJSIP/201-00000001", LinkedID: "r.1"}})
	if tr.convs["conv_r"] != nil {
		t.Fatal("a forgotten originate still claims its channel")
	}
	run(tr, ChannelEvent{Kind: ChanNew, Channel: Channel{ID: "l.1", Name: "PJSIP/202-00000002", LinkedID: "l.1"}})
	if tr.convs["conv_l"] == nil {
		t.Fatal("a kept originate does not claim its channel")
	}
	evs := run(tr, ChannelEvent{Kind: ChanOriginateFailed, ActionID: "o-o", Cause: 17})
	if len(evs) != 0 {
		t.Fatalf("a pruned originate still fails: %s", typesOf(evs))
	}
}
