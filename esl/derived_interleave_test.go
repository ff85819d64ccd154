package esl

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge/bridgetest"
)

var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// freshEvents copies a flow's events as another call's: every uuid in
// every header gets the copy's mark.
func freshEvents(evs []*Event, copy int) []*Event {
	out := make([]*Event, 0, len(evs))
	for _, e := range evs {
		h := maps.Clone(e.Headers)
		for k, v := range h {
			h[k] = uuidRE.ReplaceAllStringFunc(v, func(u string) string { return fmt.Sprintf("%02x", copy%256) + u[2:] })
			if lk := strings.ToLower(k); strings.Contains(lk, "call_id") || strings.Contains(lk, "call-id") {
				h[k] = fmt.Sprintf("%s-c%d", h[k], copy)
			}
		}
		out = append(out, &Event{Headers: h, Body: e.Body})
	}
	return out
}

// TestInterleavedDerivedFlows plays derived flows and SIP captures
// interleaved at random (each flow's own order kept), fresh uuids each.
func TestInterleavedDerivedFlows(t *testing.T) {
	flows := map[string][]*Event{}
	alone := map[string][]string{}
	for name := range derivedStories {
		if name == "callcenter-agent-status-changes" || len(derivedSegments(t, name)) > 1 {
			continue // no call; or a link loss, which is the whole link's, not one flow's
		}
		evs := bySeq(subscribed(derivedEvents(t, name)))
		got, _ := playDerived(t, name, func([]*Event) []*Event { return evs })
		flows["d/"+name], alone["d/"+name] = evs, got
	}
	for _, name := range []string{"sip-inbound-answer-customer-hangs-up", "sip-inbound-busy", "sip-ring-group", "sip-callcenter-ringall",
		"sip-callcenter-abandon", "sip-blind-transfer-phone", "sip-attended-transfer-att_xfer-broadcast", "sip-hold-phone",
		"sip-pickup", "sip-outbound", "sip-internal-call", "sip-conference", "sip-ivr-only", "sip-voicemail", "sip-record-session-dialplan"} {
		evs := bySeq(subscribed(sipEvents(t, name)))
		tr, tk := NewTranslator(""), sipTracker()
		ck := &modelCheck{}
		for _, ce := range translateAll(tr, evs) {
			tk.Handle(ce)
			ck.after(tk)
		}
		flows["s/"+name], alone["s/"+name] = evs, bridgetest.Stories(ck.events)
	}
	names := slices.Sorted(maps.Keys(flows))
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 3))
		picked := slices.Clone(names)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		picked = picked[:4+rng.IntN(10)]
		picked = append(picked, picked[0])
		concat := seed%4 == 3
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var queues [][]*Event
			var want []string
			for i, name := range picked {
				queues = append(queues, freshEvents(flows[name], i+1))
				want = append(want, alone[name]...)
			}
			tr, tk := NewTranslator(""), sipTracker()
			ck := &modelCheck{}
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
				e := queues[i][0]
				queues[i] = queues[i][1:]
				for _, ce := range tr.Translate(e) {
					tk.Handle(ce)
					ck.after(tk)
				}
			}
			for _, err := range ck.broken {
				t.Error(err)
			}
			if open := ck.stories.Open(); len(open) > 0 || len(tk.Live()) > 0 {
				t.Errorf("calls never ended: %v (%d live)", open, len(tk.Live()))
			}
			got := bridgetest.Stories(ck.events)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("flows %v\ngot:\n%s\nwant:\n%s", picked, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
