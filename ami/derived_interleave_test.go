package ami

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge/bridgetest"
	"github.com/staskobzar/goami2"
)

// TestInterleavedDerivedFlows plays the derived flows (and the SIP
// captures) interleaved at random, each with fresh ids: every flow must
// tell the story it tells alone, every call must end, and the invariants
// hold after every event.
func TestInterleavedDerivedFlows(t *testing.T) {
	alone := map[string][]string{}
	var names []string
	for name := range derivedStories {
		key := "testdata/derived/" + name
		if raw, err := os.ReadFile(key + ".ami"); err == nil && strings.Count(string(raw), "Asterisk Call Manager/") > 1 {
			continue // a link loss is the whole link's, not one flow's
		}
		sink := &recordingSink{t: sipTracker()}
		feed(t, sink, key+".ami")
		alone[key] = bridgetest.Stories(sink.events)
		names = append(names, key)
	}
	for name, want := range sipStories {
		if want != nil && interleavable(name) {
			sink := &recordingSink{t: sipTracker()}
			playSIP(t, sink, name)
			alone[name] = bridgetest.Stories(sink.events)
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		picked := slices.Clone(names)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		picked = picked[:4+rng.IntN(10)]
		picked = append(picked, picked[0])
		concat := seed%4 == 3 // flows one after another on one tracker
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var queues [][]string
			var want []string
			for i, name := range picked {
				var q []string
				for _, f := range frames(t, name) {
					q = append(q, freshIDs(f, i))
				}
				queues = append(queues, q)
				want = append(want, alone[name]...)
			}
			sink := &recordingSink{t: sipTracker()}
			m := NewMapper(context.Background(), sink, nil, nil)
			for {
				var live []int
				for i, q := range queues {
					if len(q) > 0 {
						live = append(live, i)
					}
				}
				if len(live) == 0 {
					break
				}
				i := live[rng.IntN(len(live))]
				if concat {
					i = live[0]
				}
				msg, err := goami2.Parse(queues[i][0])
				if err != nil {
					t.Fatal(err)
				}
				queues[i] = queues[i][1:]
				m.Message(msg)
			}
			sink.checkInvariants(t, true)
			got := bridgetest.Stories(sink.events)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("flows %v\ngot:\n%s\nwant:\n%s", picked, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
