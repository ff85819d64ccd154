package ami

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge/bridgetest"
	"github.com/staskobzar/goami2"
)

// playEdited plays one real capture with frames edited by edit (return ""
// to drop a frame) and returns its stories.
func playEdited(t *testing.T, path string, edit func(frame string) string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{t: sipTracker()}
	m := NewMapper(context.Background(), sink, nil, nil)
	for _, f := range strings.SplitAfter(string(raw), "\r\n\r\n") {
		if !strings.Contains(f, "\r\nEvent: ") && !strings.HasPrefix(f, "Event: ") {
			continue
		}
		for _, g := range strings.SplitAfter(edit(f), "\r\n\r\n") {
			if !strings.Contains(g, "Event: ") {
				continue
			}
			msg, err := goami2.Parse(g)
			if err != nil {
				t.Fatalf("parse %q: %v", g, err)
			}
			m.Message(msg)
		}
	}
	got := bridgetest.Stories(sink.events)
	for _, s := range got {
		t.Logf("GOT  %s", s)
	}
	return got
}

func wantStory(t *testing.T, got []string, want string) {
	t.Helper()
	if strings.Join(got, "\n") != want {
		t.Errorf("want\n%s", want)
	}
}

// newextenBefore returns f preceded by a Newexten of the same channel at
// ctx,exten,1 (app) when f is the given event of channel ch.
func newextenBefore(f, event, ch, ctx, exten, app string) string {
	if !strings.Contains(f, "Event: "+event+"\r\n") || !strings.Contains(f, "Channel: "+ch+"\r\n") {
		return f
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(f, "\r\n\r\n"), "\r\n") {
		k, _, _ := strings.Cut(line, ": ")
		switch k {
		case "Event":
			line = "Event: Newexten"
		case "Context":
			line = "Context: " + ctx
		case "Exten":
			line = "Exten: " + exten
		case "Priority":
			line = "Priority: 1"
		case "Cause", "Cause-txt":
			continue
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString("Extension: " + exten + "\r\nApplication: " + app + "\r\nAppData: \r\n\r\n")
	return b.String() + f
}

// The customer leg an agent's phone dialled carries a hangup handler
// (CHANNEL(hangup_handler_push), e.g. pushed by a b() pre-dial handler for
// CDR/CRM posting). The agent hangs up: app_dial ast_hangup(peer) runs
// ast_pbx_hangup_handler_run on the customer's channel (Newexten
// handler,s,1) before the agent's own Hangup. Not a blind transfer.
func TestCustomerHangupHandlerIsNoTransfer(t *testing.T) {
	got := playEdited(t, "testdata/sip/sip-outbound-trunk.ami", func(f string) string {
		return newextenBefore(f, "Hangup", "PJSIP/trunk-00000031", "crm-hangup", "s", "NoOp")
	})
	wantStory(t, got, "outbound caller=100 callee=5551234: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)")
}

// Dial(PJSIP/trunk,60,F(survey^s^1)): the agent hangs up and the
// customer goes on to a survey (app_dial.c OPT_CALLEE_GO_ON). The agent
// did not transfer the call: the agent's hangup ended the agent's part.
func TestDialGoOnAfterAgentIsNoTransfer(t *testing.T) {
	left := false
	got := playEdited(t, "testdata/sip/sip-outbound-trunk.ami", func(f string) string {
		if strings.Contains(f, "Event: BridgeLeave\r\n") && strings.Contains(f, "Channel: PJSIP/trunk-00000031\r\n") {
			left = true
			return f
		}
		if !left {
			return f
		}
		g := newextenBefore(f, "VarSet", "PJSIP/trunk-00000031", "survey", "s", "Playback")
		if g != f {
			left = false
		}
		return g
	})
	wantStory(t, got, "outbound caller=100 callee=5551234: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)")
}

// Dial(PJSIP/trunk/...,60,U(outbound-confirm)): the answered customer
// leg runs a pre-bridge Gosub (app_dial.c OPT_CALLEE_GOSUB) at its
// priority 1 before the bridge: the call's start, no transfer.
func TestCustomerPreBridgeGosubIsNoTransfer(t *testing.T) {
	got := playEdited(t, "testdata/sip/sip-outbound-trunk.ami", func(f string) string {
		return newextenBefore(f, "BridgeEnter", "PJSIP/trunk-00000031", "outbound-confirm", "s", "Playback")
	})
	wantStory(t, got, "outbound caller=100 callee=5551234: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)")
}
