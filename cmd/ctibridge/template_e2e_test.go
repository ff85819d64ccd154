package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/template/templatetest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// templateBridge runs simulator → ctibridge → the two shipped example
// templates, each aimed at its fake CRM (only the hosts are replaced).
func templateBridge(t *testing.T) (*amitest.Server, *templatetest.Oracle, *templatetest.Zoho, *harness) {
	t.Helper()
	sim := newAsterisk(t)
	ebs, zoho := templatetest.NewOracle(t), templatetest.NewZoho(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Calls.InboundContexts = []string{"inbound", "from-trunk"}
	example := func(file string, r *strings.Replacer) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "connectors", "template", "examples", file))
		if err != nil {
			t.Fatal(err)
		}
		return r.Replace(string(b))
	}
	cfg.Connectors.Templates = []config.TemplateConnector{
		{Name: "ebs", Template: example("oracle-ebs.yaml", strings.NewReplacer("https://ebs-cti.example.com/cctsdk/event", ebs.URL))},
		{Name: "zoho", Template: example("zoho-phonebridge.yaml", strings.NewReplacer(
			"https://www.zohoapis.com/phonebridge/v3/callnotify", zoho.URL,
			"https://accounts.zoho.com/oauth/v2/token", zoho.TokenURL, "1000.YOURCLIENTID", zoho.ClientID))},
	}
	cfg.Connectors.TemplateSecrets = map[string]string{"zoho_client_secret": zoho.ClientSecret, "zoho_refresh_token": zoho.RefreshToken}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	return sim, ebs, zoho, h
}

func tplSeq(cs []templatetest.Call, keys ...string) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Short(keys...))
	}
	return strings.Join(s, " ")
}

var (
	ebsKeys  = []string{"occtANI", "occtDNIS"}
	zohoKeys = []string{"from", "to", "zohouser"}
)

// Each real call reaches both CRMs as the exact sequence their documents
// describe: Oracle's ScreenPop / CallEstablished / CallReleased with one
// occtSourceID (checked by the fake), Zoho's ringing / answered / missed.
func TestTemplateEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		capture   string
		sip       bool
		ebs, zoho string
	}{
		{"inbound-call-basic", false,
			"ScreenPop(occtANI=5551234,occtDNIS=100) CallEstablished() CallReleased()",
			"ringing(from=+15551234,to=100,zohouser=100000001) answered(from=+15551234,to=100,zohouser=100000001)"},
		{"sip-inbound-no-answer", true,
			"ScreenPop(occtANI=5551234,occtDNIS=103) CallReleased()",
			"ringing(from=+15551234,to=103,zohouser=100000004) missed(from=+15551234,to=103,zohouser=100000004)"},
		{"blind-transfer", false,
			"ScreenPop(occtANI=5551234,occtDNIS=101) CallEstablished() CallReleased()",
			"ringing(from=+15551234,to=101,zohouser=100000002) answered(from=+15551234,to=101,zohouser=100000002)"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			sim, ebs, zoho, h := templateBridge(t)
			if tc.sip {
				playSIP(t, sim, tc.capture)
			} else if err := sim.Play(tc.capture, amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			ebs.WaitFor(t, strings.Count(tc.ebs, "("), 20*time.Second)
			zoho.WaitFor(t, strings.Count(tc.zoho, "("), 20*time.Second)
			h.stop() // nothing more can come: every delivery is done or pending
			if got := tplSeq(ebs.Calls(), ebsKeys...); got != tc.ebs {
				t.Errorf("Oracle EBS\n got %s\nwant %s", got, tc.ebs)
			}
			if got := tplSeq(zoho.Calls(), zohoKeys...); got != tc.zoho {
				t.Errorf("Zoho\n got %s\nwant %s", got, tc.zoho)
			}
			ids := map[string]bool{}
			for _, c := range ebs.Calls() {
				ids[c.Params["occtSourceID"]] = true
			}
			for _, c := range zoho.Calls() {
				ids[c.Params["id"]] = true
				if c.Event == "missed" && c.Params["start_time"] == "" {
					t.Errorf("missed without start_time: %v", c.Params)
				}
			}
			if len(ids) != 1 {
				t.Errorf("call ids %v, want the one conversation id", ids)
			}
			if r := append(ebs.Refused(), zoho.Refused()...); len(r) != 0 {
				t.Errorf("refused: %v", r)
			}
			if zoho.Grants() != 1 {
				t.Errorf("%d Zoho tokens granted, want 1 (reused until its expiry)", zoho.Grants())
			}
		})
	}
}

// Both CRMs down (503 with Retry-After) while a ring-all call happens:
// once they are back, each has the exact sequence, nothing lost and nothing
// doubled; the attempt log shows the outage and holds no secret.
func TestTemplateOutageNothingLostNothingDoubled(t *testing.T) {
	sim, ebs, zoho, h := templateBridge(t)
	ebs.SetOutage(true)
	zoho.SetOutage(true)
	playSIP(t, sim, "sip-ring-group")
	deadline := time.Now().Add(20 * time.Second)
	for len(ebs.Refused()) < 2 || len(zoho.Refused()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the connectors never tried during the outage: %v %v", ebs.Refused(), zoho.Refused())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ebs.SetOutage(false)
	zoho.SetOutage(false)
	wantEBS := "ScreenPop(occtANI=5551234,occtDNIS=100) ScreenPop(occtANI=5551234,occtDNIS=101) CallEstablished() CallReleased()"
	wantZoho := "ringing(from=+15551234,to=100,zohouser=100000001) ringing(from=+15551234,to=101,zohouser=100000002) answered(from=+15551234,to=101,zohouser=100000002)"
	ebs.WaitFor(t, 4, 60*time.Second)
	zoho.WaitFor(t, 3, 60*time.Second)
	for _, id := range []string{config.TemplateEndpointID("ebs"), config.TemplateEndpointID("zoho")} {
		as, err := h.run.DB.Attempts(context.Background(), id, 1000, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, a := range as {
			if a.Error != "" {
				failed = append(failed, a.Error)
			}
			for _, s := range []string{zoho.ClientSecret, zoho.RefreshToken, "1000.access-"} {
				if strings.Contains(a.Error, s) {
					t.Errorf("a secret in the attempt log: %s", a.Error)
				}
			}
			if a.Outcome == bridge.DeliveryDead {
				t.Errorf("dead letter %+v", a)
			}
		}
		if all := strings.Join(failed, "\n"); !strings.Contains(all, id+": HTTP 503") {
			t.Errorf("%s attempt log errors:\n%s", id, all)
		}
	}
	h.stop() // nothing more can come: every delivery is done or pending
	if got := tplSeq(ebs.Calls(), ebsKeys...); got != wantEBS {
		t.Errorf("Oracle EBS\n got %s\nwant %s", got, wantEBS)
	}
	if got := tplSeq(zoho.Calls(), zohoKeys...); got != wantZoho {
		t.Errorf("Zoho\n got %s\nwant %s", got, wantZoho)
	}
}
