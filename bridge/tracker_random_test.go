package bridge

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRandomStreams plays random, malformed and partial event streams over
// a few channels (unknown channels, a leave before an enter, conference
// events, missing peers), restoring the tracker from its saved rows now and
// then: no panic, the invariants hold, and once every channel hung up no
// call is left live.
func TestRandomStreams(t *testing.T) {
	names := []string{"PJSIP/100-1", "PJSIP/101-2", "PJSIP/trunk-3", "Local/100@agents-4;1", "Local/100@agents-4;2", "PJSIP/102-5", "PJSIP/trunk-6"}
	seeds := []uint64{10744} // a pair announced after its ;2 half joined a bridge
	for i := range uint64(3000) {
		seeds = append(seeds, i)
	}
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 11))
		tr := newTestTracker()
		saved := map[string]ConversationRecord{}
		save := func() {
			_, recs := tr.Drain()
			for _, r := range recs {
				if r.Open && !r.Discard {
					saved[r.Call.ID] = r
				} else {
					delete(saved, r.Call.ID)
				}
			}
		}
		chs := make([]Channel, len(names))
		for i, n := range names {
			ctx := "from-internal"
			if i == 2 || i == 6 {
				ctx = "from-trunk"
			}
			chs[i] = adaptName(Channel{ID: fmt.Sprintf("%d.%d", seed, i), Name: n, LinkedID: fmt.Sprintf("%d.%d", seed, rng.IntN(3)), Context: ctx,
				Exten: []string{"200", "5551234", "8000", "s"}[rng.IntN(4)], CallerNum: []string{"100", "5551234", "101"}[rng.IntN(3)]})
		}
		at := t0
		var log []string
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d: panic %v after\n%v", seed, r, log)
				}
			}()
			for step := 0; step < 40; step++ {
				at = at.Add(time.Second)
				ev := ChannelEvent{At: at, Kind: ChannelEventKind(1 + rng.IntN(int(ChanPickup))), Channel: chs[rng.IntN(len(chs))]}
				if rng.IntN(2) == 0 {
					p := chs[rng.IntN(len(chs))]
					ev.Peer = &p
				}
				if rng.IntN(8) == 0 {
					ev.Channel = Channel{ID: fmt.Sprintf("unknown.%d", rng.IntN(3))}
				}
				ev.Bridge = []string{"", "b1", "b2", "room"}[rng.IntN(4)]
				ev.Conference = ev.Bridge == "room"
				ev.DialStatus = []string{"ANSWER", "BUSY", "NOANSWER", "CANCEL", ""}[rng.IntN(5)]
				ev.Cause = []int{0, 16, 17, 19, 26}[rng.IntN(5)]
				if rng.IntN(2) == 0 {
					ev.HangupSource = HangupByEndpoint
				}
				ev.Exten = []string{"", "700", "101", "5559876"}[rng.IntN(4)]
				ev.Priority = 1 + rng.IntN(2)
				ev.Attended = rng.IntN(2) == 0
				ev.Queue = []string{"", "q1"}[rng.IntN(2)]
				log = append(log, fmt.Sprintf("%v %s peer=%v br=%s", ev.Kind, ev.Channel.ID, ev.Peer != nil, ev.Bridge))
				tr.Handle(ev)
				if err := tr.CheckInvariants(); err != nil {
					t.Fatalf("seed %d: %v after\n%v", seed, err, log)
				}
				save()
				if err := savedConsistent(saved); err != "" {
					t.Fatalf("seed %d: saved rows: %s after\n%v", seed, err, log)
				}
				if rng.IntN(10) == 0 {
					// a crash: a new tracker from the saved rows
					var recs []ConversationRecord
					for _, r := range saved {
						recs = append(recs, r)
					}
					tr = newTestTracker()
					tr.Restore(recs)
					log = append(log, "restore")
					if err := tr.CheckInvariants(); err != nil {
						t.Fatalf("seed %d: after restore: %v\n%v", seed, err, log)
					}
				}
			}
			for i := range 3 {
				tr.Handle(ChannelEvent{At: at.Add(time.Minute), Kind: ChanHangup, Channel: Channel{ID: fmt.Sprintf("unknown.%d", i)}, Cause: 16})
			}
			for _, c := range chs {
				tr.Handle(ChannelEvent{At: at.Add(time.Minute), Kind: ChanHangup, Channel: c, Cause: 16})
			}
			save()
			if live := tr.Live(); len(live) > 0 {
				t.Fatalf("seed %d: %d calls live after every channel hung up: %+v\n%v", seed, len(live), live[0], log)
			}
		}()
	}
}

func savedConsistent(saved map[string]ConversationRecord) string {
	owner := map[string]string{}
	for id, r := range saved {
		var c conversation
		if err := json.Unmarshal(r.State, &c); err != nil {
			return err.Error()
		}
		for _, l := range c.Legs {
			for _, ch := range l.Channels {
				if o, ok := owner[ch]; ok {
					return fmt.Sprintf("channel %s in %s and %s", ch, o, id)
				}
				owner[ch] = id
			}
		}
	}
	return ""
}
