package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/hubspot/hubspottest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

func newHubSpot(t *testing.T) *hubspottest.Server {
	hs := hubspottest.New()
	t.Cleanup(hs.Close)
	hs.SetOwners("7", "8", "9", "10")
	return hs
}

// hubspotBridge runs simulator → ctibridge → fake HubSpot.
func hubspotBridge(t *testing.T, edit func(*config.HubSpot)) (*amitest.Server, *hubspottest.Server, *harness) {
	t.Helper()
	return hubspotBridgeWith(t, func(cfg *config.Config) {
		if edit != nil {
			edit(&cfg.Connectors.HubSpot)
		}
	})
}

func hubspotBridgeWith(t *testing.T, edit func(*config.Config)) (*amitest.Server, *hubspottest.Server, *harness) {
	t.Helper()
	sim := newAsterisk(t)
	hs := newHubSpot(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Calls.InboundContexts = []string{"inbound", "from-trunk"}
	h := &cfg.Connectors.HubSpot
	h.Token, h.APIURL, h.Owners = hs.Token, hs.URL, map[string]string{"100": "7", "101": "8", "102": "10", "103": "9"}
	h.SearchLag = 300 * time.Millisecond
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	hb := startBridge(t, cfg, rcv)
	hb.waitLink(true)
	return sim, hs, hb
}

func hubspotSeq(rs []hubspottest.Request) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Short("dir", "status", "owner", "duration", "contact"))
	}
	return strings.Join(s, " ")
}

// hubspotSeqNoTalk is hubspotSeq without the duration: the captures
// without AMI timestamps are timed by the replay, which plays a call in
// about a millisecond.
func hubspotSeqNoTalk(rs []hubspottest.Request) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Short("dir", "status", "owner", "contact"))
	}
	return strings.Join(s, " ")
}

func waitHubSpot(t *testing.T, hs *hubspottest.Server, n int) {
	t.Helper()
	if _, err := hs.WaitFor(n, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Each real call reaches HubSpot as the exact documented sequence: one
// engagement created at the first pop (RINGING, owner = the ringing
// agent), IN_PROGRESS when answered (owner = who answered), the final
// status with the talk time in ms at the end.
func TestHubSpotEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		capture string
		sip     bool
		want    string
	}{
		{"inbound-call-basic", false, "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED)"},
		{"sip-inbound-busy", true, "create(dir=INBOUND,status=RINGING,owner=7) update(status=BUSY,duration=0)"},
		{"sip-inbound-no-answer", true, "create(dir=INBOUND,status=RINGING,owner=9) update(status=NO_ANSWER,duration=0)"},
		// Ring-all: 100 and 101 ring, 101 answers and owns the call.
		{"sip-ring-group", true, "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS,owner=8) update(status=COMPLETED,duration>0)"},
		{"sip-queue-ringall", true, "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED,duration>0)"},
		{"sip-outbound-trunk", true, "create(dir=OUTBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED,duration>0)"},
		// Click-to-call: the agent's phone rings first; the engagement waits
		// for the customer's number.
		{"sip-click-to-call-originate", true, "create(dir=OUTBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED,duration>0)"},
		{"blind-transfer", false, "create(dir=INBOUND,status=RINGING,owner=8) update(status=IN_PROGRESS) update(status=COMPLETED)"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			sim, hs, h := hubspotBridge(t, nil)
			if tc.sip {
				playSIP(t, sim, tc.capture)
			} else if err := sim.Play(tc.capture, amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			waitHubSpot(t, hs, strings.Count(tc.want, ")"))
			h.stop() // nothing more can come: every delivery is done or pending
			rs := hs.Calls()
			seq := hubspotSeq
			if !tc.sip {
				seq = hubspotSeqNoTalk
			}
			if got := seq(rs); got != tc.want {
				for _, r := range rs {
					t.Logf("%s %s %v", r.Method, r.Path, r.Body)
				}
				t.Fatalf("HubSpot requests\n got %s\nwant %s", got, tc.want)
			}
			es := hs.Engagements()
			if len(es) != 1 {
				t.Fatalf("%d engagements, want 1", len(es))
			}
			p := es[0].Properties
			customer := p["hs_call_from_number"]
			if p["hs_call_direction"] == "OUTBOUND" {
				customer = p["hs_call_to_number"]
			}
			if !strings.HasPrefix(customer, "555") || !strings.Contains(p["hs_call_title"], "(ctibridge conv_") || p["hs_timestamp"] == "" {
				t.Errorf("engagement %v", p) // the customer, never the agent
			}
			for _, r := range rs[1:] {
				if r.ID != es[0].ID || r.Method != "PATCH" || r.Path != "/crm/v3/objects/calls/"+es[0].ID {
					t.Errorf("update of another call: %+v", r)
				}
			}
			if n := len(hs.Refused()); n != 0 {
				t.Errorf("%d requests refused: %v", n, hubspotSeq(hs.Refused()))
			}
		})
	}
}

// associate_contacts: the caller's number finds the contact, and the call
// is created associated with it.
func TestHubSpotAssociatesContact(t *testing.T) {
	sim, hs, h := hubspotBridge(t, func(c *config.HubSpot) { c.AssociateContacts = true })
	// The capture's caller, as the PBX gave it (no region to make it E.164).
	contact := hs.AddContact("5551234")
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHubSpot(t, hs, 4)
	h.stop()
	want := "search-contacts() create(dir=INBOUND,status=RINGING,owner=7,contact=" + contact + ") update(status=IN_PROGRESS) update(status=COMPLETED)"
	if got := hubspotSeqNoTalk(hs.Calls()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if es := hs.Engagements(); len(es) != 1 || len(es[0].Contacts) != 1 || es[0].Contacts[0] != contact {
		t.Fatalf("engagements %+v", es)
	}
}

// A HubSpot outage (503s), then a create whose answer is lost after the
// work was done: nothing is lost and nothing doubled (exactly one
// engagement; the retry finds the lost create by its title and adopts it).
func TestHubSpotOutageNothingLostNothingDoubled(t *testing.T) {
	sim, hs, h := hubspotBridge(t, nil)
	hs.SetOutage(true)
	hs.LoseAnswer("create", 1)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for len(hs.Refused()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the connector never tried during the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hs.SetOutage(false)
	deadline = time.Now().Add(60 * time.Second)
	for {
		es := hs.Engagements()
		if len(es) == 1 && es[0].Properties["hs_call_status"] == "COMPLETED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engagements %+v; requests %s", es, hubspotSeq(hs.Requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	as, err := h.run.DB.Attempts(context.Background(), config.HubSpotEndpointID, 1000, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, a := range as {
		if a.Error != "" {
			failed = append(failed, a.Error)
		}
		if strings.Contains(a.Error, hs.Token) {
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
	// Searches repeat while the index may lag; the writes are exact.
	var writes []hubspottest.Request
	lostThenSearched := false
	for i, r := range hs.Calls() {
		if r.Op == "search-calls" {
			lostThenSearched = lostThenSearched || (i > 0 && len(writes) == 1)
			continue
		}
		writes = append(writes, r)
	}
	if got, want := hubspotSeq(writes), "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS,owner=8) update(status=COMPLETED,duration>0)"; got != want {
		t.Fatalf("writes\n got %s\nwant %s", got, want)
	}
	if !lostThenSearched {
		t.Errorf("the lost create was not looked up before going on: %s", hubspotSeq(hs.Calls()))
	}
	if es := hs.Engagements(); len(es) != 1 || es[0].Properties["hubspot_owner_id"] != "8" {
		t.Fatalf("engagements %+v", es)
	}
}

// HubSpot's 10 s window spent (429 with its X-HubSpot-RateLimit headers):
// the connector waits and goes on; nothing is dead-lettered or doubled.
func TestHubSpotRateLimited(t *testing.T) {
	sim, hs, h := hubspotBridge(t, nil)
	hs.SetBudget(2)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHubSpot(t, hs, 3)
	as, err := h.run.DB.Attempts(context.Background(), config.HubSpotEndpointID, 100, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	h.stop()
	if got, want := hubspotSeqNoTalk(hs.Calls()), "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED)"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	refused := hs.Refused()
	if len(refused) == 0 {
		t.Fatal("no 429: the window was never spent")
	}
	for _, r := range refused {
		if r.Status != 429 {
			t.Errorf("refused %+v", r)
		}
	}
	saw := false
	for _, a := range as {
		saw = saw || strings.Contains(a.Error, "HTTP 429")
		if a.Outcome == bridge.DeliveryDead {
			t.Errorf("dead letter %+v", a)
		}
	}
	if !saw {
		t.Error("the attempt log does not show the 429")
	}
}

// A wrong token (HubSpot's 401) is a configuration error: the events are
// dead letters whose attempt log says what to fix, not retried, and never
// holds the token.
func TestHubSpotWrongTokenDeadLetter(t *testing.T) {
	sim := newAsterisk(t)
	hs := newHubSpot(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	const wrong = "pat-na1-wr0ng-t0ken-0000"
	h := &cfg.Connectors.HubSpot
	h.Token, h.APIURL, h.Owners = wrong, hs.URL, map[string]string{"100": "7"}
	hb := startBridge(t, cfg, rcv)
	hb.waitLink(true)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		as, err := hb.run.DB.Attempts(context.Background(), config.HubSpotEndpointID, 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Outcome != bridge.DeliveryDead || !strings.Contains(a.Error, "HTTP 401 INVALID_AUTHENTICATION") ||
				!strings.Contains(a.Error, "connectors.hubspot.token") || strings.Contains(a.Error, wrong) {
				t.Fatalf("attempt %+v", a)
			}
		}
		if len(as) >= 3 { // ringing, answered, ended: each tried once
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts %+v", as)
		}
		time.Sleep(10 * time.Millisecond)
	}
	hb.stop()
	if n := len(hs.Calls()); n != 0 {
		t.Errorf("%d requests accepted", n)
	}
	if n := len(hs.Refused()); n != 3 {
		t.Errorf("%d requests refused, want 3 (one per event, no retry)", n)
	}
}

// A restart between two steps of a call resumes it from the state in
// SQLite: the engagement created before the restart is updated after it,
// and never created again.
func TestHubSpotRestartResumes(t *testing.T) {
	sim, hs, h := hubspotBridge(t, nil)
	hs.Fail("update", true)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(hubspotSeq(hs.Refused()), "update(") || !slices.Contains(h.committed(), bridge.EventCallEnded) {
		if time.Now().After(deadline) {
			t.Fatalf("update never tried or the call never ended; requests %s", hubspotSeq(hs.Requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	if got := hubspotSeq(hs.Calls()); got != "create(dir=INBOUND,status=RINGING,owner=7)" {
		t.Fatalf("before the restart: %s", got)
	}
	hs.Fail("update", false)
	h2 := startBridge(t, h.cfg, h.receiver)
	waitHubSpot(t, hs, 3)
	h2.stop()
	rs := hs.Calls()
	if got, want := hubspotSeq(rs), "create(dir=INBOUND,status=RINGING,owner=7) update(status=IN_PROGRESS,owner=8) update(status=COMPLETED,duration>0)"; got != want {
		t.Fatalf("requests\n got %s\nwant %s", got, want)
	}
	if es := hs.Engagements(); len(es) != 1 || rs[1].ID != es[0].ID || rs[2].ID != es[0].ID {
		t.Fatalf("engagements %+v", es)
	}
}

// With recording links on, the recording's signed link reaches HubSpot as
// hs_call_recording_url (after the end: an update of its own), and the
// link serves the file.
func TestHubSpotRecordingEndToEnd(t *testing.T) {
	dir := t.TempDir()
	content := []byte("RIFF\x24\x00\x00\x00WAVEfmt a recorded call for HubSpot")
	if err := os.WriteFile(filepath.Join(dir, "call-1795339072.23.wav"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the public URL names the port ctibridge will listen on
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sim, hs, h := hubspotBridgeWith(t, func(cfg *config.Config) {
		cfg.HTTP.Listen, cfg.HTTP.PublicURL, cfg.HTTP.RecordingsDir = addr, "http://"+addr, dir
		cfg.Recordings.LinkSecret = "recording-link-secret-0123456789abcdef"
	})
	var frames []amitest.Frame
	for _, f := range amitest.EventsOf(amitest.Frames("mixmonitor")) {
		raw := strings.ReplaceAll(string(f.Raw), "/srv/pbx1/asterisk/var/spool/asterisk/monitor/", dir+"/")
		frames = append(frames, amitest.Frame{Raw: []byte(raw)})
	}
	if err := sim.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHubSpot(t, hs, 4)
	rs := hs.Calls()
	var got []string
	for _, r := range rs {
		got = append(got, r.Short("status", "owner"))
	}
	if strings.Join(got, " ") != "create(status=RINGING,owner=7) update(status=IN_PROGRESS) update(status=COMPLETED) update()" {
		t.Fatalf("requests %s", strings.Join(got, " "))
	}
	link := rs[3].Props()["hs_call_recording_url"]
	if !strings.HasPrefix(link, "http://"+addr+"/v1/recordings/") || strings.Contains(link, ".wav") || rs[3].ID != rs[0].ID {
		t.Fatalf("recording update %+v", rs[3])
	}
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != string(content) {
		t.Fatalf("the link served %d %q", res.StatusCode, body)
	}
	h.stop()
}
