package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/bitrix24/bitrix24test"
)

const b24AppToken = "f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8"

func originates(sim *amitest.Server) []map[string]string {
	var out []map[string]string
	for _, a := range sim.Actions() {
		if a.Field("Action") == "Originate" {
			out = append(out, map[string]string{"ActionID": a.Field("ActionID"), "ChannelId": a.Field("ChannelId"),
				"OtherChannelId": a.Field("OtherChannelId"), "Channel": a.Field("Channel"), "Exten": a.Field("Exten")})
		}
	}
	return out
}

// Click-to-call from Bitrix24: the portal posts ONEXTERNALCALLSTART to
// ctibridge (no API key, a non-loopback Host: the application token is
// the credential); the PBX gets exactly one Originate for the agent of
// data[USER_ID]; the call's events reach the portal as show and finish of
// the CALL_ID the portal registered itself, never a register. A repeat of
// the event within 30 s and an event with a wrong token dial nothing.
func TestBitrix24ClickToCallEndToEnd(t *testing.T) {
	sim, portal, h := bitrixBridgeWith(t, func(cfg *config.Config, _ *bitrix24test.Server) {
		cfg.Connectors.Bitrix24.ApplicationToken = b24AppToken
	})
	handler := "http://" + h.run.HTTPAddr + "/crm/bitrix24/events"
	callID := portal.NewExternalCall()
	ev := bitrix24test.ExternalCallStart{Handler: handler, ApplicationToken: b24AppToken, UserID: 8, PhoneNumber: "600", CallID: callID}
	code, body, err := portal.PostExternalCallStart(ev)
	if err != nil || code != 200 || !strings.Contains(body, `"dialing"`) {
		t.Fatalf("ONEXTERNALCALLSTART: %d %s %v", code, body, err)
	}
	// The same event again (Bitrix24 may deliver twice): answered, not dialled.
	if code, body, err := portal.PostExternalCallStart(ev); err != nil || code != 200 || !strings.Contains(body, "repeated") {
		t.Fatalf("repeat: %d %s %v", code, body, err)
	}
	// Another click with a wrong token: refused, not dialled.
	bad := ev
	bad.ApplicationToken, bad.CallID = strings.Repeat("0", 32), portal.NewExternalCall()
	if code, _, _ := portal.PostExternalCallStart(bad); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	// A browser page cannot post it (Origin), even with the token.
	req, _ := http.NewRequest("POST", handler, strings.NewReader("event=ONEXTERNALCALLSTART"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Fatalf("browser POST: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	origs := originates(sim)
	if len(origs) != 1 || origs[0]["Channel"] != "Local/101@from-internal" || origs[0]["Exten"] != "600" || origs[0]["OtherChannelId"] == "" {
		t.Fatalf("originates %v", origs)
	}
	var frames []amitest.Frame
	for _, f := range amitest.EventsOf(amitest.Frames("originate-exten")) {
		raw := strings.NewReplacer(": 1795339035.4\r\n", ": "+origs[0]["ChannelId"]+"\r\n", ": 1795339035.5\r\n", ": "+origs[0]["OtherChannelId"]+"\r\n",
			": orig-exten-1\r\n", ": "+origs[0]["ActionID"]+"\r\n").Replace(string(f.Raw))
		frames = append(frames, amitest.Frame{Raw: []byte(raw)})
	}
	if err := sim.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	portal.WaitFor(t, 2, 20*time.Second)
	h.stop()
	cs := portal.Calls()
	if got := callSeq(cs); !strings.HasPrefix(got, "show(USER_ID=8) finish(USER_ID=8,") || len(cs) != 2 {
		for _, c := range cs {
			t.Logf("%s %v", c.Method, c.Params)
		}
		t.Fatalf("Bitrix24 calls %s, want show then finish", got)
	}
	for _, c := range cs {
		if c.Params["CALL_ID"] != callID {
			t.Errorf("%s CALL_ID %v, want %s", c.Method, c.Params["CALL_ID"], callID)
		}
	}
	if n := len(portal.Refused()); n != 0 {
		t.Errorf("refused: %v", portal.Refused())
	}
	if n := len(originates(sim)); n != 1 {
		t.Fatalf("%d originates", n)
	}
}

// A recorded call: finish, then attachRecord with a signed link to
// ctibridge, which the portal fetches in two ranges, getting the file's
// bytes; nothing else of the directory is reachable through it.
func TestBitrix24RecordingEndToEnd(t *testing.T) {
	dir := t.TempDir()
	content := []byte("RIFF\x24\x00\x00\x00WAVEfmt a recorded call, forty-odd bytes long")
	if err := os.WriteFile(filepath.Join(dir, "call-1795339072.23.wav"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	// The public URL names the port ctibridge will listen on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sim, portal, h := bitrixBridgeWith(t, func(cfg *config.Config, portal *bitrix24test.Server) {
		cfg.HTTP.Listen, cfg.HTTP.PublicURL, cfg.HTTP.RecordingsDir = addr, "http://"+addr, dir
		cfg.Recordings.LinkSecret = "recording-link-secret-0123456789abcdef"
		portal.FetchRecordings(&http.Client{Timeout: 10 * time.Second})
	})
	var frames []amitest.Frame
	for _, f := range amitest.EventsOf(amitest.Frames("mixmonitor")) {
		raw := strings.ReplaceAll(string(f.Raw), "/srv/pbx1/asterisk/var/spool/asterisk/monitor/", dir+"/")
		frames = append(frames, amitest.Frame{Raw: []byte(raw)})
	}
	if err := sim.PlayFrames(frames, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	portal.WaitFor(t, 3, 20*time.Second)
	h.stop()
	cs := portal.Calls()
	if got := callSeq(cs); got != "register(USER_ID=7,TYPE=2,SHOW=1) finish(USER_ID=7,STATUS_CODE=200) attachRecord()" {
		t.Fatalf("Bitrix24 calls %s", got)
	}
	att := cs[2].Params
	link, _ := att["RECORD_URL"].(string)
	if att["FILENAME"] != "call-1795339072.23.wav" || !strings.HasPrefix(link, "http://"+addr+"/v1/recordings/") || att["CALL_ID"] != cs[1].Params["CALL_ID"] {
		t.Fatalf("attachRecord %v", att)
	}
	if strings.Contains(link, dir) || strings.Contains(link, ".wav") {
		t.Errorf("the link names the file: %s", link)
	}
	if got := portal.Recording(att["CALL_ID"].(string)); string(got) != string(content) {
		t.Fatalf("the portal fetched %q, want %q", got, content)
	}
	if got := strings.Join(portal.Ranges(), " "); got != "bytes=0-9 bytes=10-" {
		t.Errorf("ranges %s", got)
	}
	if n := len(portal.Refused()); n != 0 {
		t.Errorf("refused: %v", portal.Refused())
	}
}
