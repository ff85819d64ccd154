package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/zammad/zammadtest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// zammadBridge runs simulator → ctibridge → fake Zammad.
func zammadBridge(t *testing.T) (*amitest.Server, *zammadtest.Server, *harness) {
	t.Helper()
	sim := newAsterisk(t)
	zm := zammadtest.New(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Calls.InboundContexts = []string{"inbound", "from-trunk"}
	z := &cfg.Connectors.Zammad
	z.URL, z.Users = zm.URL, map[string]string{"100": "Anna", "101": "Ben", "102": "Cleo", "103": "Dan"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	return sim, zm, h
}

func zammadSeq(cs []zammadtest.Call) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Short("direction", "user", "answeringNumber", "cause"))
	}
	return strings.Join(s, " ")
}

// Each real call reaches Zammad's caller log as the exact documented
// sequence: one newCall at the first pop (callId = the conversation id),
// one answer by the agent who answered, one hangup with Zammad's cause.
func TestZammadEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		capture string
		sip     bool
		want    string
	}{
		{"inbound-call-basic", false, "newCall(direction=in,user=[Anna]) answer(direction=in,user=Anna,answeringNumber=100) hangup(direction=in,answeringNumber=100,cause=normalClearing)"},
		{"sip-inbound-busy", true, "newCall(direction=in,user=[Anna]) hangup(direction=in,cause=busy)"},
		{"sip-inbound-no-answer", true, "newCall(direction=in,user=[Dan]) hangup(direction=in,cause=noAnswer)"},
		// Ring-all: 100 and 101 ring, 101 answers; Zammad pops once.
		{"sip-ring-group", true, "newCall(direction=in,user=[Anna]) answer(direction=in,user=Ben,answeringNumber=101) hangup(direction=in,answeringNumber=101,cause=normalClearing)"},
		{"sip-outbound-trunk", true, "newCall(direction=out,user=[Anna]) answer(direction=out,user=Anna,answeringNumber=5551234) hangup(direction=out,answeringNumber=5551234,cause=normalClearing)"},
		// The pop waits for the customer's number: the agent's phone rings first.
		{"sip-click-to-call-originate", true, "newCall(direction=out,user=[Anna]) answer(direction=out,user=Anna,answeringNumber=5551234) hangup(direction=out,answeringNumber=5551234,cause=normalClearing)"},
		{"blind-transfer", false, "newCall(direction=in,user=[Ben]) answer(direction=in,user=Ben,answeringNumber=101) hangup(direction=in,answeringNumber=101,cause=normalClearing)"},
		{"sip-queue-ringall", true, "newCall(direction=in,user=[Anna]) answer(direction=in,user=Anna,answeringNumber=100) hangup(direction=in,answeringNumber=100,cause=normalClearing)"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			sim, zm, h := zammadBridge(t)
			if tc.sip {
				playSIP(t, sim, tc.capture)
			} else if err := sim.Play(tc.capture, amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			want := strings.Count(tc.want, ")")
			zm.WaitFor(t, want, 20*time.Second)
			h.stop() // nothing more can come: every delivery is done or pending
			cs := zm.Calls()
			if got := zammadSeq(cs); got != tc.want {
				for _, c := range cs {
					t.Logf("%s %v", c.Event, c.Params)
				}
				t.Fatalf("Zammad calls\n got %s\nwant %s", got, tc.want)
			}
			for _, c := range cs {
				if id, _ := c.Params["callId"].(string); !strings.HasPrefix(id, "conv_") || id != cs[0].Params["callId"] ||
					c.Params["from"] == "" || c.Params["to"] == "" {
					t.Errorf("callId %v", c.Params)
				}
			}
			customer := cs[0].Params["from"]
			if cs[0].Params["direction"] == "out" {
				customer = cs[0].Params["to"]
			}
			if c, _ := customer.(string); !strings.HasPrefix(c, "555") { // the customer, never the agent
				t.Errorf("newCall params %v", cs[0].Params)
			}
			if n := len(zm.Refused()); n != 0 {
				t.Errorf("%d requests refused: %v", n, zm.Refused())
			}
		})
	}
}

// A Zammad outage (503s), then a newCall answer lost after the work was
// done: nothing is lost and nothing doubled in Zammad's caller log (one
// newCall, one answer, one hangup; the repeated newCall is refused as
// already there and taken as done).
func TestZammadOutageNothingLostNothingDoubled(t *testing.T) {
	sim, zm, h := zammadBridge(t)
	zm.SetOutage(true)
	zm.LoseAnswer("newCall", 1)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for len(zm.Refused()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the connector never tried during the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	zm.SetOutage(false)
	zm.WaitFor(t, 3, 60*time.Second)
	// The attempt log shows the outage and the lost answer, never the token.
	as, err := h.run.DB.Attempts(context.Background(), config.ZammadEndpointID, 1000, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, a := range as {
		if a.Error != "" {
			failed = append(failed, a.Error)
		}
		if strings.Contains(a.Error, zm.Token) {
			t.Errorf("token in the attempt log: %s", a.Error)
		}
		if a.Outcome == bridge.DeliveryDead {
			t.Errorf("dead letter %+v", a)
		}
	}
	if all := strings.Join(failed, "\n"); !strings.Contains(all, "HTTP 503") || !strings.Contains(all, "HTTP 504") {
		t.Errorf("attempt log errors:\n%s", all)
	}
	h.stop() // nothing more can come: every delivery is done or pending
	want := "newCall(direction=in,user=[Anna]) answer(direction=in,user=Ben,answeringNumber=101) hangup(direction=in,answeringNumber=101,cause=normalClearing)"
	if got := zammadSeq(zm.Calls()); got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(zammadSeq(zm.Refused()), "newCall(") {
		t.Errorf("the newCall whose answer was lost was never retried: refused %v", zm.Refused())
	}
}

// A wrong endpoint token (Zammad's 401) is a configuration error: the
// events are dead letters whose attempt log says what to fix, not retried,
// and never holds the token.
func TestZammadWrongTokenDeadLetter(t *testing.T) {
	sim := newAsterisk(t)
	zm := zammadtest.New(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Connectors.Zammad.URL = strings.TrimSuffix(zm.URL, zm.Token) + "wr0ngT0ken99"
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		as, err := h.run.DB.Attempts(context.Background(), config.ZammadEndpointID, 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Outcome != bridge.DeliveryDead || !strings.Contains(a.Error, "HTTP 401") ||
				!strings.Contains(a.Error, "connectors.zammad.url") || strings.Contains(a.Error, "wr0ngT0ken99") {
				t.Fatalf("attempt %+v", a)
			}
		}
		if len(as) >= 3 { // ringing, answered, ended
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts %+v", as)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	if n := len(zm.Calls()); n != 0 {
		t.Errorf("%d requests accepted", n)
	}
}

// Zammad refuses a caller (its answer to newCall is {"action":"reject"}):
// ctibridge hangs the customer's channel up through the PBX.
func TestZammadRejectHangsUp(t *testing.T) {
	sim, zm, _ := zammadBridge(t)
	zm.Block("5551234")
	before, _ := splitAfterAnswer(t, "inbound-call-basic")
	if err := sim.PlayFrames(before, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	zm.WaitFor(t, 1, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var hangup string
		for _, a := range sim.Actions() {
			if a.Field("Action") == "Hangup" {
				hangup = a.Field("Channel")
			}
		}
		if hangup != "" {
			// The caller's Local pair: the half that runs the dialplan.
			if !strings.HasPrefix(hangup, "Local/200@inbound-") || !strings.HasSuffix(hangup, ";2") {
				t.Fatalf("hung up %s, want the customer's channel", hangup)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no Hangup sent after Zammad rejected the call")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
