package http

import (
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
//
// It judges every event of the stream in commit order, whatever the
// client's types filter, on the stream's own goroutine: a stream resumed
// with Last-Event-ID, or opened in the middle of a call, asks the store
// once whether the agent was named before, so it tells the same story as
// a stream that never broke.
type agentFilter struct {
	agent string
	// earlier reports whether an event of the conversation committed
	// before seq names the agent.
	earlier func(conversationID string, seq int64) (bool, error)
	mine    boundedSet // conversations the agent is in
	others  boundedSet // conversations judged, the agent not (yet) in them
}

// maxAgentConvs bounds the conversations one stream remembers; an agent
// handles one or two at a time, so the oldest are long over when dropped.
// Those judged not the agent's are many more (every call of the PBX).
const (
	maxAgentConvs = 256
	maxOtherConvs = 8192
)

func newAgentFilter(agent string, earlier func(string, int64) (bool, error)) *agentFilter {
	return &agentFilter{agent: agent, earlier: earlier,
		mine: newBoundedSet(maxAgentConvs), others: newBoundedSet(maxOtherConvs)}
}

// admits reports whether the agent may see r; err is the store's when it
// could not say (r is then not sent).
func (f *agentFilter) admits(r bridge.Record) (bool, error) {
	if r.ConversationID == "" {
		// agent.* state: the agent's own only.
		return len(r.Type) > 6 && r.Type[:6] == "agent." && mentionsAgent(r.Payload, f.agent), nil
	}
	if f.mine.has(r.ConversationID) {
		return true, nil
	}
	if mentionsAgent(r.Payload, f.agent) {
		f.mine.add(r.ConversationID)
		f.others.remove(r.ConversationID)
		return true, nil
	}
	if f.others.has(r.ConversationID) || r.Sequence <= 1 {
		// Seen since its start (or judged before): not the agent's yet.
		f.others.add(r.ConversationID)
		return false, nil
	}
	// Begun before this stream saw it: did it name the agent then?
	was, err := f.earlier(r.ConversationID, r.Seq)
	if err != nil {
		return false, err
	}
	if was {
		f.mine.add(r.ConversationID)
	} else {
		f.others.add(r.ConversationID)
	}
	return was, nil
}

// boundedSet is a set of strings that forgets its oldest beyond max.
type boundedSet struct {
	max   int
	in    map[string]struct{}
	order []string
}

func newBoundedSet(max int) boundedSet {
	return boundedSet{max: max, in: map[string]struct{}{}}
}

func (s *boundedSet) has(k string) bool { _, ok := s.in[k]; return ok }

func (s *boundedSet) add(k string) {
	if s.has(k) {
		return
	}
	s.in[k] = struct{}{}
	s.order = append(s.order, k)
	if len(s.order) > s.max {
		delete(s.in, s.order[0])
		s.order = s.order[1:]
	}
}

// remove forgets k; its place in order stays until it ages out (deleting
// a key that is not there, or was added again, is harmless).
func (s *boundedSet) remove(k string) { delete(s.in, k) }
