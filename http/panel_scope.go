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
	mine    boundedSet[string] // conversations the agent is in
	// others are the conversations judged, the agent not (yet) in them:
	// every call of the PBX, so kept as hashes (a stream holds ~50 KB of
	// them). One forgotten is asked of the store again, no harm done.
	others boundedSet[uint64]
}

// maxAgentConvs bounds the conversations one stream remembers; an agent
// handles one or two at a time, so the oldest are long over when dropped.
// Those judged not the agent's are many more (every call of the PBX).
const (
	maxAgentConvs = 256
	maxOtherConvs = 2048
)

func newAgentFilter(agent string, earlier func(string, int64) (bool, error)) *agentFilter {
	return &agentFilter{agent: agent, earlier: earlier,
		mine: newBoundedSet[string](maxAgentConvs), others: newBoundedSet[uint64](maxOtherConvs)}
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
	other := hashID(r.ConversationID)
	if mentionsAgent(r.Payload, f.agent) {
		f.mine.add(r.ConversationID)
		f.others.remove(other)
		return true, nil
	}
	if f.others.has(other) || r.Sequence <= 1 {
		// Seen since its start (or judged before): not the agent's yet.
		f.others.add(other)
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
		f.others.add(other)
	}
	return was, nil
}

// hashID is a conversation id's FNV-1a hash.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	return h
}

// boundedSet is a set that forgets its oldest beyond max.
type boundedSet[K comparable] struct {
	max   int
	in    map[K]struct{}
	order []K
}

func newBoundedSet[K comparable](max int) boundedSet[K] {
	return boundedSet[K]{max: max, in: map[K]struct{}{}}
}

func (s *boundedSet[K]) has(k K) bool { _, ok := s.in[k]; return ok }

func (s *boundedSet[K]) add(k K) {
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
func (s *boundedSet[K]) remove(k K) { delete(s.in, k) }
