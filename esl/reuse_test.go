package esl

import (
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/ctibridge/ctibridge/bridge/bridgetest"
)

// A click-to-call placed again with the origination_uuid of one that
// already hung up (a CRM that retries with its own ids): the switch gives
// the new agent leg the old uuid. The second call is a call of its own,
// told whole, not a late event of the first; the first call's own events
// stay ignored once it hung up.
func TestOriginateReusingUUID(t *testing.T) {
	const name, agentLeg = "sip-click-to-call-originate", "6b191b69-636c-49fc-8bf4-c2dcbfdcdd32"
	first := bySeq(sipEvents(t, name))
	// Two minutes later, later in the switch's numbering: the agent leg
	// has the old uuid; every other leg a new one.
	uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	var second []*Event
	for _, e := range first {
		c := &Event{Headers: map[string]string{}, Body: e.Body}
		for k, v := range e.Headers {
			switch k {
			case "Event-Date-Timestamp":
				us, _ := strconv.ParseInt(v, 10, 64)
				v = strconv.FormatInt(us+120_000_000, 10)
			case "Event-Sequence":
				n, _ := strconv.ParseUint(v, 10, 64)
				v = strconv.FormatUint(n+100_000, 10)
			case "Core-UUID":
			default:
				v = uuid.ReplaceAllStringFunc(v, func(u string) string {
					if u == agentLeg {
						return u
					}
					return u[:len(u)-4] + "beef"
				})
			}
			c.Headers[k] = v
		}
		second = append(second, c)
	}
	var used bool
	for _, e := range second {
		used = used || e.Get("Unique-ID") == agentLeg
	}
	if !used {
		t.Fatalf("the capture's agent leg is not %s", agentLeg)
	}
	tr, tk, ck := NewTranslator(""), sipTracker(), &modelCheck{}
	for _, ce := range translateAll(tr, slices.Concat(first, second)) {
		tk.Handle(ce)
		ck.after(tk)
	}
	for _, err := range ck.broken {
		t.Error(err)
	}
	if open := ck.stories.Open(); len(open) > 0 || len(tk.Live()) > 0 {
		t.Errorf("calls never ended: %v", open)
	}
	once := sipFlows[name].want[0]
	if got := bridgetest.Stories(ck.events); !slices.Equal(got, []string{once, once}) {
		t.Fatalf("got\n  %v\nwant the capture's story twice:\n  %s", got, once)
	}
}

// The agent leg's own CHANNEL_CREATE coming after its hangup (fired
// before it, by another thread, delayed past the reorder window) opens
// nothing.
func TestLateCreateOfHungUpLeg(t *testing.T) {
	const name = "sip-click-to-call-originate"
	evs := bySeq(sipEvents(t, name))
	var late []*Event
	for _, e := range evs {
		if e.Get("Event-Name") == "CHANNEL_CREATE" {
			late = append(late, e)
		}
	}
	if len(late) == 0 {
		t.Fatal("no CHANNEL_CREATE in the capture")
	}
	tr, tk, ck := NewTranslator(""), sipTracker(), &modelCheck{}
	for _, ce := range translateAll(tr, slices.Concat(evs, late)) {
		tk.Handle(ce)
		ck.after(tk)
	}
	if got := bridgetest.Stories(ck.events); !slices.Equal(got, sipFlows[name].want) || len(tk.Live()) > 0 {
		t.Fatalf("got %v, %d live", got, len(tk.Live()))
	}
}
