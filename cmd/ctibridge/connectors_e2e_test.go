package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/bitrix24/bitrix24test"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// bitrixBridge runs simulator → ctibridge → fake Bitrix24 portal.
func bitrixBridge(t *testing.T) (*amitest.Server, *bitrix24test.Server, *harness) {
	t.Helper()
	return bitrixBridgeWith(t, nil)
}

// bitrixBridgeWith is bitrixBridge with the config edited before the start.
func bitrixBridgeWith(t *testing.T, edit func(cfg *config.Config, portal *bitrix24test.Server)) (*amitest.Server, *bitrix24test.Server, *harness) {
	t.Helper()
	sim := newAsterisk(t)
	portal := bitrix24test.New(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Calls.InboundContexts = []string{"inbound", "from-trunk"}
	b := &cfg.Connectors.Bitrix24
	b.WebhookURL, b.Users, b.LineNumber = portal.URL, map[string]int{"100": 7, "101": 8, "102": 10, "103": 9}, "74950000000"
	if edit != nil {
		edit(&cfg, portal)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	return sim, portal, h
}

// playSIP plays a real SIP capture of ami/testdata/sip.
func playSIP(t *testing.T, sim *amitest.Server, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "ami", "testdata", "sip", name+".ami"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.PlayFrames(amitest.SplitFrames(b), amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
}

func callSeq(cs []bitrix24test.Call) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Short("USER_ID", "TYPE", "SHOW", "STATUS_CODE"))
	}
	return strings.Join(s, " ")
}

// Each real call reaches Bitrix24 as the exact documented sequence: one
// register at the first pop (EXTERNAL_CALL_ID = the conversation id), the
// card shown to each ringing agent and hidden from those who did not
// answer, one finish with the status code.
func TestBitrix24EndToEnd(t *testing.T) {
	for _, tc := range []struct {
		capture string
		sip     bool
		want    string
	}{
		{"inbound-call-basic", false, "register(USER_ID=7,TYPE=2,SHOW=1) finish(USER_ID=7,STATUS_CODE=200)"},
		{"queue-call", false, "register(USER_ID=7,TYPE=2,SHOW=1) finish(USER_ID=7,STATUS_CODE=200)"},
		{"sip-ring-group", true, "register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=7) finish(USER_ID=8,STATUS_CODE=200)"},
		{"sip-inbound-busy", true, "register(USER_ID=7,TYPE=2,SHOW=1) hide(USER_ID=7) finish(USER_ID=7,STATUS_CODE=486)"},
		{"sip-inbound-no-answer", true, "register(USER_ID=9,TYPE=2,SHOW=1) hide(USER_ID=9) finish(USER_ID=9,STATUS_CODE=304)"},
		{"sip-queue-ringall", true, "register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=8) finish(USER_ID=7,STATUS_CODE=200)"},
		{"sip-outbound-trunk", true, "register(USER_ID=7,TYPE=1,SHOW=1) finish(USER_ID=7,STATUS_CODE=200)"},
		{"sip-click-to-call-originate", true, "register(USER_ID=7,TYPE=1,SHOW=1) finish(USER_ID=7,STATUS_CODE=200)"},
		// No public_url nor recordings_dir here: the recording is not attached
		// (TestBitrix24RecordingEndToEnd attaches it).
		{"mixmonitor", false, "register(USER_ID=7,TYPE=2,SHOW=1) finish(USER_ID=7,STATUS_CODE=200)"},
		{"blind-transfer", false, "register(USER_ID=8,TYPE=2,SHOW=1) finish(USER_ID=8,STATUS_CODE=200)"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			sim, portal, h := bitrixBridge(t)
			if tc.sip {
				playSIP(t, sim, tc.capture)
			} else if err := sim.Play(tc.capture, amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			want := strings.Count(tc.want, ")")
			portal.WaitFor(t, want, 20*time.Second)
			h.stop() // nothing more can come: every delivery is done or pending
			cs := portal.Calls()
			if got := callSeq(cs); got != tc.want {
				for _, c := range cs {
					t.Logf("%s %v", c.Method, c.Params)
				}
				t.Fatalf("Bitrix24 calls\n got %s\nwant %s", got, tc.want)
			}
			reg := cs[0].Params
			if !strings.HasPrefix(reg["EXTERNAL_CALL_ID"].(string), "conv_") || !strings.HasPrefix(reg["PHONE_NUMBER"].(string), "555") || // the customer, never the agent
				reg["LINE_NUMBER"] != "74950000000" {
				t.Errorf("register params %v", reg)
			}
			if n := len(portal.Refused()); n != 0 {
				t.Errorf("%d requests refused: %v", n, portal.Refused())
			}
		})
	}
}

// A portal outage, then answers lost after the work was done: nothing is
// lost and nothing doubled in Bitrix24 (one call, finished once).
func TestBitrix24OutageNothingLostNothingDoubled(t *testing.T) {
	sim, portal, h := bitrixBridge(t)
	portal.SetOutage(true)
	portal.LoseAnswer("telephony.externalcall.register", 1)
	portal.LoseAnswer("telephony.externalcall.finish", 1)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for len(portal.Refused()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the connector never tried during the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	portal.SetOutage(false)
	// register (answer lost), register again (the same CALL_ID), show,
	// hide, finish (answer lost); the repeated finish is refused (already
	// finished) and taken as done.
	portal.WaitFor(t, 5, 60*time.Second)
	deadline = time.Now().Add(60 * time.Second)
	for !strings.Contains(callSeq(portal.Refused()), "finish(") {
		if time.Now().After(deadline) {
			t.Fatalf("finish never repeated; refused %v", portal.Refused())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The attempt log shows the outage and the lost answers, never the token.
	as, err := h.run.DB.Attempts(context.Background(), "crm-bitrix24", 1000, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, a := range as {
		if a.Error != "" {
			failed = append(failed, a.Error)
		}
		if strings.Contains(a.Error, portal.Token) {
			t.Errorf("token in the attempt log: %s", a.Error)
		}
	}
	if all := strings.Join(failed, "\n"); !strings.Contains(all, "HTTP 503") || !strings.Contains(all, "HTTP 504") {
		t.Errorf("attempt log errors:\n%s", all)
	}
	h.stop()
	cs := portal.Calls()
	if got, want := callSeq(cs), "register(USER_ID=7,TYPE=2,SHOW=1) register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=7) finish(USER_ID=8,STATUS_CODE=200)"; got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	ids := map[any]bool{}
	for _, c := range cs[2:] {
		ids[c.Params["CALL_ID"]] = true
	}
	if len(ids) != 1 {
		t.Errorf("%d Bitrix24 calls, want 1: %v", len(ids), ids)
	}
}

// A restart between two steps of a call resumes it from the state in
// SQLite: the call registered before the restart is shown, hidden and
// finished after it with its CALL_ID, and never registered again.
func TestBitrix24RestartResumes(t *testing.T) {
	sim, portal, h := bitrixBridge(t)
	portal.Fail("telephony.externalcall.show", true)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(callSeq(portal.Refused()), "show(") || !slices.Contains(h.committed(), bridge.EventCallEnded) {
		if time.Now().After(deadline) {
			t.Fatalf("show never tried or the call never ended; calls %v", portal.Calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	if got := callSeq(portal.Calls()); got != "register(USER_ID=7,TYPE=2,SHOW=1)" {
		t.Fatalf("before the restart: %s", got)
	}
	portal.Fail("telephony.externalcall.show", false)
	h2 := startBridge(t, h.cfg, h.receiver)
	portal.WaitFor(t, 4, 60*time.Second)
	h2.stop()
	cs := portal.Calls()
	if got, want := callSeq(cs), "register(USER_ID=7,TYPE=2,SHOW=1) show(USER_ID=8) hide(USER_ID=7) finish(USER_ID=8,STATUS_CODE=200)"; got != want {
		t.Fatalf("calls\n got %s\nwant %s", got, want)
	}
	if cs[1].Params["CALL_ID"] != cs[3].Params["CALL_ID"] || cs[1].Params["CALL_ID"] == nil {
		t.Errorf("CALL_IDs differ: %v %v", cs[1].Params, cs[3].Params)
	}
}

// An agent with no Bitrix24 user: the events about them are dead letters
// whose attempt log names the extension and the config key, not retried.
func TestBitrix24UnmappedAgentDeadLetter(t *testing.T) {
	sim := newAsterisk(t)
	portal := bitrix24test.New(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Connectors.Bitrix24.WebhookURL, cfg.Connectors.Bitrix24.Users = portal.URL, map[string]int{"101": 8}
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	var dead []bridge.Attempt
	deadline := time.Now().Add(20 * time.Second)
	for len(dead) < 3 { // ringing, answered, ended: each about agent 100
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %+v", dead)
		}
		time.Sleep(10 * time.Millisecond)
		as, err := h.run.DB.Attempts(context.Background(), "crm-bitrix24", 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		dead = dead[:0]
		for _, a := range as {
			if a.Outcome != bridge.DeliveryDead || !strings.Contains(a.Error, "agent extension 100 has no Bitrix24 user") ||
				!strings.Contains(a.Error, "connectors.bitrix24.users") {
				t.Fatalf("attempt %+v", a)
			}
			dead = append(dead, a)
		}
	}
	h.stop()
	if n := len(portal.Calls()) + len(portal.Refused()); n != 0 {
		t.Errorf("%d requests reached the portal", n)
	}
}
