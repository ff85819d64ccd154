package ami

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/staskobzar/goami2"
)

// A click-to-call placed again with the ChannelId of one that already
// hung up (a CRM that retries with its own ids): Asterisk gives the new
// agent channel the old id (and the call its linkedid). The second call
// is a call of its own, told whole, not a late event of the first.
func TestOriginateReusingChannelID(t *testing.T) {
	first := frames(t, "testdata/sip/sip-click-to-call-originate")
	var agentID string
	for _, f := range first {
		if strings.Contains(f, "Event: Newchannel\r\n") {
			agentID = regexp.MustCompile(`\r\nUniqueid: ([^\r]+)`).FindStringSubmatch(f)[1]
			break
		}
	}
	if agentID == "" {
		t.Fatal("no Newchannel in the capture")
	}
	// Two minutes later: the same agent id; every other channel new (a
	// new id, a new name), as Asterisk numbers them.
	stamp := regexp.MustCompile(`\r\nTimestamp: ([0-9.]+)`)
	ids := regexp.MustCompile(`(Uniqueid|Linkedid|UniqueID): ([0-9]+\.[0-9]+)`)
	names := regexp.MustCompile(`-(0000[0-9a-f]{4})\b`)
	var second []string
	for _, f := range first {
		f = stamp.ReplaceAllStringFunc(f, func(m string) string {
			v, _ := strconv.ParseFloat(stamp.FindStringSubmatch(m)[1], 64)
			return fmt.Sprintf("\r\nTimestamp: %.6f", v+120)
		})
		f = ids.ReplaceAllStringFunc(f, func(m string) string {
			sub := ids.FindStringSubmatch(m)
			if sub[2] == agentID {
				return m
			}
			return sub[1] + ": " + sub[2] + "77"
		})
		f = names.ReplaceAllString(f, "-1$1")
		second = append(second, f)
	}
	sink := &recordingSink{t: sipTracker()}
	m := NewMapper(context.Background(), sink, nil, nil)
	m.Resync()
	for _, f := range append(first, second...) {
		msg, err := goami2.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		m.Message(msg)
	}
	sink.checkInvariants(t, true)
	once := sipStories["sip-click-to-call-originate"][0]
	sameStories(t, sink.events, map[string][]string{"twice": {once, once}}, "twice")
}
