package bridge

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// liveSet is the engine's published view of the calls in progress.
//
// Rebuilding it from the tracker costs a snapshot of every live call, and
// at a low event rate nearly every PBX event is a batch of its own: with a
// few hundred calls up that was most of the engine's CPU. So the engine
// applies only the conversations a batch changed (their records already
// carry the snapshot), and a reader sorts the set only when it asks after
// a change.
type liveSet struct {
	mu   sync.Mutex
	byID map[string]Call
	list []Call // sorted by StartedAt; nil once a change makes it stale
	n    atomic.Int64
}

func newLiveSet() *liveSet { return &liveSet{byID: map[string]Call{}, list: []Call{}} }

// apply takes the conversations a batch committed.
func (s *liveSet) apply(recs []ConversationRecord) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if r.Open && !r.Discard {
			s.byID[r.Call.ID] = r.Call
		} else {
			delete(s.byID, r.Call.ID)
		}
	}
	s.list = nil
	s.n.Store(int64(len(s.byID)))
}

// reset replaces the set (after a restore, a snapshot or a command: rare
// inputs that may change conversations the batch did not record).
func (s *liveSet) reset(calls []Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byID)
	for _, c := range calls {
		s.byID[c.ID] = c
	}
	s.list = nil
	s.n.Store(int64(len(s.byID)))
}

// calls returns the live calls, oldest first. The slice is shared by the
// readers until the next change: callers must not modify it.
func (s *liveSet) calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil {
		s.list = make([]Call, 0, len(s.byID))
		for _, c := range s.byID {
			s.list = append(s.list, c)
		}
		slices.SortFunc(s.list, func(a, b Call) int {
			if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
	}
	return s.list
}

func (s *liveSet) len() int { return int(s.n.Load()) }

// diff reports how the set differs from the tracker's own list (the
// invariant check: a conversation changed without being marked dirty).
func (s *liveSet) diff(want []Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return DiffLive(s.byID, want)
}

// DiffLive compares the live calls as published (by id) with the
// tracker's Live(), and names the first call that differs.
func DiffLive(published map[string]Call, tracker []Call) error {
	if len(tracker) != len(published) {
		return fmt.Errorf("live calls: %d published, the tracker has %d", len(published), len(tracker))
	}
	for _, c := range tracker {
		got, ok := published[c.ID]
		if !ok {
			return fmt.Errorf("live calls: %s is live in the tracker but not published", c.ID)
		}
		if !reflect.DeepEqual(got, c) {
			return fmt.Errorf("live calls: %s changed without being marked dirty:\n got %+v\nwant %+v", c.ID, got, c)
		}
	}
	return nil
}
