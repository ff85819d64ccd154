package bitrix24_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
	"github.com/ctibridge/ctibridge/connectors/bitrix24/bitrix24test"
)

const appToken = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"

// fakeDialer records click-to-calls. As a fast PBX can, it has the
// agent's phone ring before Place returns: the first event is delivered
// from inside Place, to prove the state was kept before dialling.
type fakeDialer struct {
	mu     sync.Mutex
	conn   *bitrix24.Connector
	placed []bitrix24.PlaceRequest
	saved  []string // what delivering the first event from inside Place gave
	err    error
}

func (d *fakeDialer) Place(ctx context.Context, req bitrix24.PlaceRequest) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		d.saved = append(d.saved, "not dialled")
		return "", d.err
	}
	d.placed = append(d.placed, req)
	if d.conn != nil {
		err := d.conn.Deliver(ctx, ev(req.ConversationID, 1, bridge.EventCallRinging, bridge.DirectionOutbound, req.Agent, nil))
		d.saved = append(d.saved, fmt.Sprint(err))
	}
	return req.ConversationID, nil
}

func (d *fakeDialer) calls() []bitrix24.PlaceRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]bitrix24.PlaceRequest(nil), d.placed...)
}

type c2cRig struct {
	fake    *bitrix24test.Server
	conn    *bitrix24.Connector
	dialer  *fakeDialer
	handler string
	now     time.Time
}

func newC2C(t *testing.T) *c2cRig {
	t.Helper()
	r := &c2cRig{fake: bitrix24test.New(t), now: time.Unix(1_800_000_000, 0)}
	state := &memState{}
	r.dialer = &fakeDialer{}
	r.conn = newConnector(t, r.fake, state, &logBuf{}, func(o *bitrix24.Options) { o.Users["102"] = 9; o.Users["202"] = 9 })
	r.dialer.conn = r.conn
	h, err := r.conn.ClickToCall(bitrix24.ClickToCallOptions{ApplicationToken: appToken, Dialer: r.dialer, Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.handler = srv.URL + bitrix24.EventsPath
	return r
}

func (r *c2cRig) post(t *testing.T, e bitrix24test.ExternalCallStart) (int, string) {
	t.Helper()
	e.Handler = r.handler
	code, body, err := r.fake.PostExternalCallStart(e)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// A click on a number: the agent of data[USER_ID] is dialled once with the
// number, under a new conversation whose state already holds Bitrix24's
// CALL_ID; that call's events then show and finish that CALL_ID and never
// register another. A repeat within 30 s dials nothing; after, it does.
func TestClickToCall(t *testing.T) {
	r := newC2C(t)
	callID := r.fake.NewExternalCall()
	ev := bitrix24test.ExternalCallStart{ApplicationToken: appToken, UserID: 8, PhoneNumber: "+1 (555) 555-9876", CallID: callID}
	code, body := r.post(t, ev)
	placed := r.dialer.calls()
	if code != 200 || len(placed) != 1 || placed[0].Agent != "101" || placed[0].To != "+15555559876" || !strings.HasPrefix(placed[0].ConversationID, "conv_") {
		t.Fatalf("%d %s placed %+v", code, body, placed)
	}
	if r.dialer.saved[0] != "<nil>" {
		t.Fatalf("the first event, delivered before Place returned: %s", r.dialer.saved[0])
	}
	conv := placed[0].ConversationID
	r.now = r.now.Add(29 * time.Second)
	if code, body := r.post(t, ev); code != 200 || !strings.Contains(body, "repeated") || len(r.dialer.calls()) != 1 {
		t.Fatalf("repeat: %d %s, %d placed", code, body, len(r.dialer.calls()))
	}

	out := bridge.DirectionOutbound
	deliverAll(t, r.conn, // the agent's ringing was delivered from inside Place
		ev2(conv, 2, bridge.EventCallRinging, out, "101", func(e *bridge.Event) { e.Party = bridge.PartyCustomer }),
		ev2(conv, 3, bridge.EventCallAnswered, out, "101", nil),
		ev2(conv, 4, bridge.EventCallEnded, out, "", ended(bridge.DispositionAnswered, 12, 16, "101")))
	cs := r.fake.Calls()
	if got := shorts(cs, "USER_ID", "STATUS_CODE", "DURATION"); got != "show(USER_ID=8) finish(USER_ID=8,STATUS_CODE=200,DURATION=12)" {
		t.Fatalf("Bitrix24 calls %s", got)
	}
	for _, c := range cs {
		if c.Params["CALL_ID"] != callID {
			t.Errorf("%s with CALL_ID %v, want %s", c.Method, c.Params["CALL_ID"], callID)
		}
	}
	if n := len(r.fake.Refused()); n != 0 {
		t.Errorf("refused %v", r.fake.Refused())
	}

	r.now = r.now.Add(2 * time.Second) // 31 s after the first
	if code, _ := r.post(t, ev); code != 200 || len(r.dialer.calls()) != 2 {
		t.Fatalf("after 30 s: %d, %d placed", code, len(r.dialer.calls()))
	}
}

// ev2 is ev with the default event builder, for a conversation id that is
// not one of the fixed ones.
func ev2(conv string, seq int64, typ string, dir bridge.Direction, agent string, edit func(*bridge.Event)) bridge.Record {
	return ev(conv, seq, typ, dir, agent, edit)
}

// Anything but a well-formed ONEXTERNALCALLSTART with this application's
// token is refused with a 4xx that says why, and dials nothing.
func TestClickToCallRefused(t *testing.T) {
	r := newC2C(t)
	good := func() bitrix24test.ExternalCallStart {
		return bitrix24test.ExternalCallStart{ApplicationToken: appToken, UserID: 8, PhoneNumber: "+15555559876", CallID: r.fake.NewExternalCall()}
	}
	with := func(kv ...string) bitrix24test.ExternalCallStart {
		e := good()
		e.Extra = url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Extra[kv[i]] = append(e.Extra[kv[i]], kv[i+1])
		}
		return e
	}
	for _, tc := range []struct {
		name string
		ev   bitrix24test.ExternalCallStart
		code int
		want string
	}{
		{"wrong token", func() bitrix24test.ExternalCallStart {
			e := good()
			e.ApplicationToken = "b1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
			return e
		}(), 401, "auth[application_token]"},
		{"short token", func() bitrix24test.ExternalCallStart { e := good(); e.ApplicationToken = appToken[:10]; return e }(), 401, "auth[application_token]"},
		{"no token", func() bitrix24test.ExternalCallStart { e := good(); e.ApplicationToken = ""; return e }(), 401, "auth[application_token]"},
		{"other event", with("event", "ONCRMLEADADD"), 400, "ONCRMLEADADD"},
		{"unknown key", with("foo", "1"), 400, `key \"foo\"`},
		{"nested key", with("data[A][B]", "1"), 400, "data[A][B]"},
		{"repeated key", with("data[PHONE_NUMBER]", "+15550000000", "data[PHONE_NUMBER]", "+15550000000"), 400, "data[PHONE_NUMBER] is given 2 times"},
		{"unknown user", func() bitrix24test.ExternalCallStart { e := good(); e.UserID = 55; return e }(), 422, "user 55 has no extension"},
		{"user of two extensions", func() bitrix24test.ExternalCallStart { e := good(); e.UserID = 9; return e }(), 422, "102, 202"},
		{"bad number", func() bitrix24test.ExternalCallStart { e := good(); e.PhoneNumber = "555;Local/1@x"; return e }(), 400, "data[PHONE_NUMBER]"},
		{"long number", func() bitrix24test.ExternalCallStart { e := good(); e.PhoneNumber = strings.Repeat("5", 21); return e }(), 400, "data[PHONE_NUMBER]"},
		{"bad CALL_ID", func() bitrix24test.ExternalCallStart { e := good(); e.CallID = "x y"; return e }(), 400, "data[CALL_ID]"},
	} {
		code, body := r.post(t, tc.ev)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
		if strings.Contains(body, appToken) {
			t.Errorf("%s: the token in the answer", tc.name)
		}
	}
	for _, tc := range []struct {
		method, ctype, body string
		code                int
	}{
		{"GET", "", "", 405},
		{"POST", "application/json", `{"event":"ONEXTERNALCALLSTART"}`, 415},
		{"POST", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", 40<<10), 413},
		{"POST", "application/x-www-form-urlencoded", "event=%zz", 400},
	} {
		req, _ := http.NewRequest(tc.method, r.handler, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.ctype, res.StatusCode, tc.code)
		}
	}
	if n := len(r.dialer.calls()) + len(r.dialer.saved); n != 0 {
		t.Fatalf("dialled %d times", n)
	}
}

// A call the PBX did not take (link down: nothing sent) is refused with
// 503 and may be tried again with the same CALL_ID.
func TestClickToCallDialFails(t *testing.T) {
	r := newC2C(t)
	ev := bitrix24test.ExternalCallStart{ApplicationToken: appToken, UserID: 7, PhoneNumber: "5559876", CallID: r.fake.NewExternalCall()}
	r.dialer.err = &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "the PBX link is down"}
	if code, body := r.post(t, ev); code != 503 || !strings.Contains(body, "the PBX link is down") {
		t.Fatalf("%d %s", code, body)
	}
	r.dialer.err = nil
	if code, _ := r.post(t, ev); code != 200 || len(r.dialer.calls()) != 1 || r.dialer.calls()[0].Agent != "100" ||
		shorts(r.fake.Calls(), "USER_ID") != "show(USER_ID=7)" {
		t.Fatalf("retry: %d %+v", code, r.dialer.calls())
	}
}

func TestClickToCallOptions(t *testing.T) {
	c := newConnector(t, bitrix24test.New(t), &memState{}, &logBuf{}, nil)
	if _, err := c.ClickToCall(bitrix24.ClickToCallOptions{ApplicationToken: "short", Dialer: &fakeDialer{}}); err == nil {
		t.Error("a short token accepted")
	}
	if _, err := c.ClickToCall(bitrix24.ClickToCallOptions{ApplicationToken: appToken}); err == nil {
		t.Error("no dialer accepted")
	}
}

// attachRecord goes out by the signed link when there is one (for this
// conversation), else inline (FILE_CONTENT) for a small file under the
// recordings directory; a file too large, outside the directory or of
// another type is skipped with a log line saying what to set.
func TestAttachRecord(t *testing.T) {
	dir := t.TempDir()
	content := []byte("RIFF-a-small-recording")
	for name, b := range map[string][]byte{"c.wav": content, "big.wav": make([]byte, 100), "c.gsm": content} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "o.wav")
	_ = os.WriteFile(outside, content, 0o600)
	for _, tc := range []struct {
		name, file string
		link       bool
		want, log  string
	}{
		{"link", filepath.Join(dir, "c.wav"), true, "RECORD_URL=https://cti.example/v1/recordings/tok-c", ""},
		{"inline", filepath.Join(dir, "c.wav"), false, "FILE_CONTENT=" + base64.StdEncoding.EncodeToString(content), ""},
		{"too large", filepath.Join(dir, "big.wav"), false, "", "set http.public_url"},
		{"outside", outside, false, "", "outside http.recordings_dir"},
		{"dot-dot", dir + "/../" + filepath.Base(filepath.Dir(outside)) + "/o.wav", false, "", "outside http.recordings_dir"},
		{"not wav or mp3", filepath.Join(dir, "c.gsm"), true, "", ".wav and .mp3"},
	} {
		fake := bitrix24test.New(t)
		logs := &logBuf{}
		var asked []string
		c := newConnector(t, fake, &memState{}, logs, func(o *bitrix24.Options) {
			o.RecordingsDir, o.InlineLimit = dir, 64
			o.RecordingURL = func(conv string) (string, bool) {
				asked = append(asked, conv)
				return "https://cti.example/v1/recordings/tok-" + conv, tc.link
			}
		})
		deliverAll(t, c, ev("c", 1, bridge.EventCallEnded, bridge.DirectionInbound, "", ended(bridge.DispositionAnswered, 3, 16, "100")),
			ev("c", 2, bridge.EventRecordingReady, bridge.DirectionInbound, "", func(e *bridge.Event) { e.Recording = &bridge.Recording{Path: tc.file} }))
		cs := fake.Calls()
		if tc.want == "" {
			if len(cs) != 2 || !strings.Contains(logs.String(), tc.log) {
				t.Errorf("%s: calls %s, log %s", tc.name, shorts(cs), logs)
			}
			if strings.Contains(logs.String(), dir) {
				t.Errorf("%s: the log names the directory", tc.name)
			}
			continue
		}
		if len(cs) != 3 || cs[2].Short("RECORD_URL", "FILE_CONTENT") != "attachRecord("+tc.want+")" || cs[2].Params["FILENAME"] != "c.wav" {
			t.Fatalf("%s: calls %v", tc.name, cs)
		}
		if tc.name == "inline" && string(fake.Recording(cs[2].Params["CALL_ID"].(string))) != string(content) {
			t.Errorf("inline: the portal got %q", fake.Recording(cs[2].Params["CALL_ID"].(string)))
		}
		if len(asked) != 1 || asked[0] != "c" {
			t.Errorf("%s: RecordingURL asked for %v, want the conversation id", tc.name, asked)
		}
	}
}

// The international form of the number, when Bitrix24 sends it, is the one
// dialled; a bad one is refused naming that key.
func TestClickToCallInternationalNumber(t *testing.T) {
	r := newC2C(t)
	ev := bitrix24test.ExternalCallStart{ApplicationToken: appToken, UserID: 8, PhoneNumber: "8 (555) 555-9876",
		CallID: r.fake.NewExternalCall(), Extra: url.Values{"data[PHONE_NUMBER_INTERNATIONAL]": {"+15555559876"}}}
	if code, body := r.post(t, ev); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if placed := r.dialer.calls(); len(placed) != 1 || placed[0].To != "+15555559876" {
		t.Fatalf("placed %+v, want +15555559876", placed)
	}
	ev.CallID, ev.Extra = r.fake.NewExternalCall(), url.Values{"data[PHONE_NUMBER_INTERNATIONAL]": {"+1;Local/1@x"}}
	if code, body := r.post(t, ev); code != 400 || !strings.Contains(body, "data[PHONE_NUMBER_INTERNATIONAL]") {
		t.Fatalf("bad international number: %d %s", code, body)
	}
	if n := len(r.dialer.calls()); n != 1 {
		t.Fatalf("%d placed after a refusal", n)
	}
}
