package http

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/ctibridge/ctibridge/bridge"
)

// agentFilter limits an agent key's event stream to what that agent may
// see: the events of conversations in which it has (had) a leg, and its own
// agent.* state. A conversation counts from the first event naming the
// agent (its phone rang, it placed or answered the call, it transferred
// it); later events of that conversation follow even when they name
// someone else (a transfer's end, recording.ready). Earlier events of it,
// from before the agent was involved (the caller waiting in a queue), are
// not this agent's business and are not sent.
type agentFilter struct {
	agent string
	mu    sync.Mutex
	convs map[string]struct{}
	order []string // conversations in the order they were admitted, to bound convs
}

// maxAgentConvs bounds the conversations one stream remembers; an agent
// handles one or two at a time, so the oldest are long over when dropped.
const maxAgentConvs = 256

func newAgentFilter(agent string) *agentFilter {
	return &agentFilter{agent: agent, convs: map[string]struct{}{}}
}

// admits reports whether the agent may see r. It is called from the hub
// and from a stream's backlog reader at once, hence the lock.
func (f *agentFilter) admits(r bridge.Record) bool {
	var ev struct {
		Agent *bridge.Agent `json:"agent"`
		Call  *struct {
			Agent *bridge.Agent `json:"agent"`
		} `json:"call"`
		Transfer *bridge.Transfer `json:"transfer"`
	}
	if json.Unmarshal(r.Payload, &ev) != nil {
		return false
	}
	if strings.HasPrefix(r.Type, "agent.") {
		return ev.Agent != nil && ev.Agent.Extension == f.agent
	}
	if r.ConversationID == "" {
		return false
	}
	mine := ev.Agent != nil && ev.Agent.Extension == f.agent ||
		ev.Call != nil && ev.Call.Agent != nil && ev.Call.Agent.Extension == f.agent ||
		ev.Transfer != nil && ev.Transfer.From != nil && ev.Transfer.From.Extension == f.agent
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.convs[r.ConversationID]; ok {
		return true
	}
	if !mine {
		return false
	}
	f.convs[r.ConversationID] = struct{}{}
	f.order = append(f.order, r.ConversationID)
	if len(f.order) > maxAgentConvs {
		delete(f.convs, f.order[0])
		f.order = f.order[1:]
	}
	return true
}
