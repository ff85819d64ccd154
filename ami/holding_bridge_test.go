package ami

import (
	"context"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge/bridgetest"
	"github.com/staskobzar/goami2"
)

// sharedHolding keeps the id of a holding bridge (a parking lot's, the
// agent pool's) the same across copies: the PBX has one per lot.
func sharedHolding(frame string, copy int) string {
	out := freshIDs(frame, copy)
	if !strings.Contains(frame, "BridgeType: parking") && !strings.Contains(frame, "BridgeType: holding") {
		return out
	}
	lines := strings.Split(out, "\r\n")
	orig := strings.Split(frame, "\r\n")
	for i, ln := range lines {
		if strings.HasPrefix(ln, "BridgeUniqueid: ") {
			lines[i] = orig[i]
		}
	}
	return strings.Join(lines, "\r\n")
}

func playTwo(t *testing.T, name string, overlap int) []string {
	a, b := frames(t, name), frames(t, name)
	sink := &recordingSink{t: sipTracker()}
	m := NewMapper(context.Background(), sink, nil, nil)
	var seq []string
	// copy 1 up to frame overlap, then copy 2 wholly, then the rest of 1
	for _, f := range a[:overlap] {
		seq = append(seq, sharedHolding(f, 1))
	}
	for _, f := range b {
		seq = append(seq, sharedHolding(f, 2))
	}
	for _, f := range a[overlap:] {
		seq = append(seq, sharedHolding(f, 1))
	}
	for _, f := range seq {
		msg, err := goami2.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		m.Message(msg)
	}
	sink.checkInvariants(t, true)
	return bridgetest.Stories(sink.events)
}

func TestTwoCallsParkedInOneLot(t *testing.T) {
	for _, name := range []string{"sip-park-retrieve", "testdata/derived/park-timeout-comeback-answered"} {
		fr := frames(t, name)
		// copy 1 paused while parked: right after its parking BridgeEnter
		at := 0
		for i, f := range fr {
			if strings.Contains(f, "Event: BridgeEnter") && strings.Contains(f, "BridgeType: parking") {
				at = i + 1
				break
			}
		}
		sink := &recordingSink{t: sipTracker()}
		feed(t, sink, name+".ami")
		alone := bridgetest.Stories(sink.events)
		got := playTwo(t, name, at)
		want := append(append([]string{}, alone...), alone...)
		if strings.Join(sortCopy(got), "\n") != strings.Join(sortCopy(want), "\n") {
			t.Errorf("%s: got\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func sortCopy(s []string) []string {
	c := append([]string{}, s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}
