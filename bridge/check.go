package bridge

import (
	"fmt"
	"slices"
	"strings"
)

// CheckInvariants verifies the call model's structure: every tracked
// channel belongs to exactly one leg of one conversation and the indexes
// agree with the legs; an open conversation has a live channel (it ends
// exactly when its last channel goes). Tests run it after every event;
// calls.check_invariants runs it live.
func (t *Tracker) CheckInvariants() error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	owner := map[string]*leg{}
	for id, c := range t.convs {
		if c.ID != id {
			bad("conversation %s filed under %s", c.ID, id)
		}
		live := 0
		for _, l := range c.Legs {
			if l.conv != c {
				bad("%s: a leg points at another conversation", c.ID)
			}
			if len(l.Channels) == 0 && !c.Ended {
				bad("%s: a leg without a live channel stays in the call", c.ID)
			}
			for _, ch := range l.Channels {
				live++
				if o := owner[ch]; o != nil && o != l {
					bad("channel %s is in two legs", ch)
				}
				owner[ch] = l
				if !c.Ended && t.legs[ch] != l {
					bad("%s: channel %s is not indexed to its leg", c.ID, ch)
				}
			}
		}
		if !c.Ended && live == 0 {
			bad("%s: open with no live channel (it should have ended)", c.ID)
		}
		if c.Ended && c.Call.EndedAt == nil && !c.Discarded {
			bad("%s: ended without call.ended", c.ID)
		}
	}
	for ch, l := range t.legs {
		if !slices.Contains(l.Channels, ch) {
			bad("index: channel %s points at a leg that no longer holds it", ch)
		}
		if l.conv == nil || t.convs[l.conv.ID] != l.conv {
			bad("index: channel %s belongs to a conversation the tracker forgot", ch)
		} else if !slices.Contains(l.conv.Legs, l) && !l.conv.Ended {
			bad("index: channel %s's leg is not in its conversation", ch)
		}
	}
	for name, id := range t.byName {
		if l := t.legs[id]; l == nil || l.Names.get(id) != name {
			bad("name index: %s -> %s is stale", name, id)
		}
	}
	for b, ls := range t.bridged {
		for _, l := range ls {
			if !slices.Contains(l.Bridges, b) {
				bad("bridge %s lists a leg that is not in it", b)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs)
	return fmt.Errorf("call model invariants: %s", strings.Join(errs, "; "))
}

// StoryChecker checks the stream of events a CRM receives, conversation
// by conversation: sequence numbers 1, 2, 3 ...; call.ended exactly once
// and only a recording.ready after it; at most one open screen pop per
// agent; held and resumed alternate.
type StoryChecker struct {
	convs map[string]*story
}

type story struct {
	seq    int64
	ended  bool
	held   bool
	popped map[string]bool // agents (and the customer) whose pop is open
}

// Check takes the next event; it returns what the event breaks.
func (k *StoryChecker) Check(e Event) error {
	if e.ConversationID == "" {
		return nil
	}
	if k.convs == nil {
		k.convs = map[string]*story{}
	}
	s := k.convs[e.ConversationID]
	if s == nil {
		s = &story{popped: map[string]bool{}}
		k.convs[e.ConversationID] = s
	}
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%s #%d %s: %s", e.ConversationID, e.Sequence, e.Type, fmt.Sprintf(f, a...))
	}
	if e.Sequence != s.seq+1 {
		return fail("sequence follows %d", s.seq)
	}
	s.seq = e.Sequence
	if s.ended && e.Type != EventRecordingReady {
		return fail("after call.ended")
	}
	who := ""
	if e.Agent != nil {
		who = e.Agent.Extension
	}
	if e.Party != "" {
		who = e.Party
	}
	switch e.Type {
	case EventCallRinging:
		if s.popped[who] {
			return fail("a second open pop for %q", who)
		}
		s.popped[who] = true
	case EventCallRingEnded:
		if !s.popped[who] {
			return fail("ring_ended for %q, who has no open pop", who)
		}
		delete(s.popped, who)
	case EventCallAnswered:
		delete(s.popped, who)
		if e.Call == nil || e.Call.State != "held" {
			// A retrieval from park answers a held call; the consultation's
			// target answering leaves the customer on hold.
			s.held = false
		}
	case EventCallHeld:
		if s.held {
			return fail("held while held")
		}
		s.held = true
	case EventCallResumed:
		if !s.held {
			return fail("resumed while not held")
		}
		s.held = false
	case EventCallTransferred:
		// Pops stay open across a transfer: an agent still ringing keeps
		// its pop until it answers or stops ringing.
		s.held = false
	case EventCallEnded:
		s.ended = true
	}
	return nil
}

// Open returns the conversations that have not ended, sorted.
func (k *StoryChecker) Open() []string {
	var out []string
	for id, s := range k.convs {
		if !s.ended {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// prune forgets ended conversations once many are kept, so a checker that
// runs live stays bounded (a late recording.ready of a forgotten call then
// starts a new story, which the sequence check reports: rare, debug only).
func (k *StoryChecker) prune() {
	if len(k.convs) < 10000 {
		return
	}
	for id, s := range k.convs {
		if s.ended {
			delete(k.convs, id)
		}
	}
}
