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

// frames returns a capture's event frames: a SIP capture by name, or a
// path without its .ami suffix.
func frames(t *testing.T, name string) []string {
	t.Helper()
	path := "testdata/sip/" + name + ".ami"
	if strings.Contains(name, "/") {
		path = name + ".ami"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	if i := strings.Index(body, "\r\n"); strings.HasPrefix(body, "Asterisk Call Manager/") {
		body = body[i+2:]
	}
	var out []string
	for _, f := range strings.SplitAfter(body, "\r\n\r\n") {
		if strings.Contains(f, "\r\nEvent: ") || strings.HasPrefix(f, "Event: ") {
			out = append(out, f)
		}
	}
	return out
}

// freshIDs rewrites a frame as if it came from another call: every
// channel id, linked id, bridge id and channel name gets the copy's mark,
// so copies of one capture are distinct calls to the model.
func freshIDs(frame string, copy int) string {
	mark := fmt.Sprintf("c%d", copy)
	lines := strings.Split(frame, "\r\n")
	for i, ln := range lines {
		k, v, ok := strings.Cut(ln, ": ")
		if !ok || v == "" || v == "<unknown>" {
			continue
		}
		switch {
		case strings.HasSuffix(k, "Uniqueid") || strings.HasSuffix(k, "Linkedid"):
			lines[i] = k + ": " + v + mark
		case strings.HasSuffix(k, "Channel") || k == "Source" || k == "Newname":
			if base, half, local := strings.Cut(v, ";"); local {
				lines[i] = k + ": " + base + mark + ";" + half
			} else {
				lines[i] = k + ": " + v + mark
			}
		}
	}
	return strings.Join(lines, "\r\n")
}

// TestInterleavedFlowsKeepTheirStories plays several real flows at once,
// each with fresh ids, their frames interleaved at random (each flow's own
// order kept, as a PBX would send them): every conversation must tell the
// story it tells alone, and the model's invariants must hold after every
// event.
func TestInterleavedFlowsKeepTheirStories(t *testing.T) {
	var names []string
	for name, want := range sipStories {
		if want != nil && interleavable(name) {
			names = append(names, name)
		}
	}
	// The Local-channel captures too: each must tell, interleaved, the
	// story it tells alone.
	alone := map[string][]string{}
	for _, name := range []string{"inbound-call-basic", "queue-call", "blind-transfer", "mixmonitor", "mixmonitor-action",
		"hangup-action", "coreshowchannels", "musiconhold"} {
		key := "amitest/captures/" + name
		sink := &recordingSink{t: sipTracker()}
		feed(t, sink, key+".ami")
		sink.checkInvariants(t, true)
		alone[key] = bridgetest.Stories(sink.events)
		names = append(names, key)
	}
	slices.Sort(names)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		picked := slices.Clone(names)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		picked = picked[:3+rng.IntN(6)]
		// The same flow twice is a fair test of fresh ids too.
		picked = append(picked, picked[0])
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var queues [][]string
			var want []string
			for i, name := range picked {
				var q []string
				for _, f := range frames(t, name) {
					q = append(q, freshIDs(f, i))
				}
				queues = append(queues, q)
				if w, ok := alone[name]; ok {
					want = append(want, w...)
				} else {
					want = append(want, sipStories[name]...)
				}
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
