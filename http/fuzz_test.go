package http

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/staskobzar/goami2"
)

// wire is an AMI ActionSender that encodes each action as the client
// would write it and answers Success.
type wire struct{ sent [][]byte }

func (w *wire) Connected() bool { return true }

func (w *wire) Send(_ context.Context, a *goami2.Message) (*goami2.Message, error) {
	b, err := ami.EncodeAction(a)
	if err != nil {
		return nil, err
	}
	w.sent = append(w.sent, b)
	resp := goami2.NewMessage()
	resp.AddField("Response", "Success")
	return resp, nil
}

// eslWire is an ESL Runner that keeps each command line the Commander
// would send and answers +OK.
type eslWire struct{ sent []string }

func (w *eslWire) Connected() bool { return true }
func (w *eslWire) API(_ context.Context, cmd string) (string, error) {
	w.sent = append(w.sent, cmd)
	return "+OK", nil
}
func (w *eslWire) BgAPIJob(_ context.Context, cmd, _ string) error {
	w.sent = append(w.sent, cmd)
	return nil
}

// checkESL asserts each line is one command of the given name with the
// given number of space-separated arguments (quoted values count as one):
// nothing could make FreeSWITCH read a second command or argument.
func checkESL(t *testing.T, sent []string, name string, args int) {
	t.Helper()
	if len(sent) != 1 {
		t.Fatalf("%d commands, want one %s: %q", len(sent), name, sent)
	}
	cmd := sent[0]
	if strings.ContainsAny(cmd, "\r\n\x00") || !strings.HasPrefix(cmd, name+" ") {
		t.Fatalf("not one %s command: %q", name, cmd)
	}
	n, quoted := 1, false
	for _, r := range cmd {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == ' ' && !quoted:
			n++
		}
	}
	if quoted || n != args+1 {
		t.Fatalf("%s: %d arguments, want %d: %q", name, n-1, args, cmd)
	}
}

// FuzzRequestBodies feeds arbitrary bodies to the decoding and validation
// of the command routes, then what is accepted to the Asterisk commander.
// Invariants: no panic; a refusal is a bridge.Error naming its field; an
// accepted value holds no CR, LF or NUL; on the wire, an accepted request
// is exactly the actions it should be, each with only its own headers.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"agent":"100","to":"+74954451120","caller_id":"\"Sales\" <5551234>","variables":{"CRM_ID":"42"},"timeout_s":30}`},
		{0, `{"agent":"101","to":"600"}`},
		{0, `{"agent":"101","to":"600\r\nAction: Hangup"}`},
		{0, `{"agent":"101","to":"600","variables":{"A":"1,B=2"}}`},
		{0, `{"agent":"101","to":"600","caller_id":"x <1\u0000>"}`},
		{0, `{"agent":"101","to":600}`},
		{1, `{"to":"200","mode":"blind"}`},
		{1, `{"to":"200","mode":"attended"}`},
		{1, `{"to":"200 XML public"}`},
		{2, `{"digits":"1#"}`},
		{2, `{"digits":"12\n"}`},
		{3, `{"queue":"support","reason":"lunch"}`},
		{3, `{"queue":"support@default","reason":"a\rb"}`},
		{4, `{"url":"https://crm.example.com/hook","events":["call.*"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{4, `{"url":"https://crm.example.com/hook","secret":"whsec_MfKQ9r8G\r\nKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{4, `{"id":"crm","url":"http://127.0.0.1:9000/hook","events":"call.*"}`},
		{5, `{"action":"start"}`},
		{5, `[]`},
		{0, `{"agent":"101","to":"600"} {}`},
	} {
		f.Add(s.route, []byte(s.body))
	}
	cust := bridge.Channel{ID: "1795339035.5", Name: "Local/500@inbound-00000005;2"}
	fsCust := bridge.Channel{ID: "0085ebeb-a9d3-4ead-b747-874e997b39c0", Name: "loopback/2000-a"}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		w := &wire{}
		amiCmd := ami.NewCommander(w, ami.CommanderOptions{})
		ew := &eslWire{}
		eslCmd := esl.NewCommander(ew, esl.CommanderOptions{AgentDial: "user/{agent}", CallcenterAgent: "{agent}@default"})
		ctx := context.Background()
		var req any
		var wantActions []string // the Action of each frame, in order
		var err error
		switch route % 6 {
		case 0:
			var r originateRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.validate()
			}
			if err == nil {
				// The HTTP rules let through what one PBX still refuses;
				// that refusal must name its field too.
				if e := eslCmd.CheckOriginate(r.originate()); e != nil {
					checkRefusal(t, e)
				} else {
					o := r.originate()
					o.ActionID, o.AgentChannelID = "7cfe2f47-56aa-4987-a393-6d881cc2af22", "89b15daf-718f-47e7-bd6f-c3e16c05a48f"
					if e := eslCmd.Originate(ctx, o); e != nil {
						t.Fatalf("checked, then refused for FreeSWITCH: %v", e)
					}
					// originate {vars}<dial> <to> XML <context>
					checkESL(t, ew.sent, "originate", 4)
					vars := ew.sent[0][len("originate {"):strings.Index(ew.sent[0], "}")]
					want := 2 + len(r.Variables)
					if r.CallerID != "" {
						cid, _ := bridge.ParseCallerID("caller_id", r.CallerID)
						want++
						if cid.Name != "" {
							want++
						}
					}
					if n := len(strings.Split(vars, ",")); n != want {
						t.Fatalf("%d originate variables, want %d: %q", n, want, ew.sent[0])
					}
				}
				if e := amiCmd.CheckOriginate(r.originate()); e != nil {
					checkRefusal(t, e)
					return
				}
				o := r.originate()
				o.ActionID, o.AgentChannelID, o.OtherChannelID = "a-1", "c-1", "c-2"
				if e := amiCmd.Originate(ctx, o); e != nil {
					t.Fatalf("checked, then refused on the wire: %v", e)
				}
				wantActions = []string{"Originate"}
				if n := bytes.Count(w.sent[0], []byte("\r\nVariable: ")); n != len(r.Variables) {
					t.Fatalf("%d Variable headers for %d variables:\n%q", n, len(r.Variables), w.sent[0])
				}
			}
			req = r
		case 1:
			var r transferRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.validate()
			}
			if err == nil {
				if e := amiCmd.BlindTransfer(ctx, cust, r.To); e != nil {
					t.Fatalf("validated, then refused on the wire: %v", e)
				}
				wantActions = []string{"Redirect"}
				if e := eslCmd.BlindTransfer(ctx, fsCust, r.To); e != nil {
					t.Fatalf("validated, then refused for FreeSWITCH: %v", e)
				}
				checkESL(t, ew.sent, "uuid_transfer", 4) // <uuid> <to> XML <context>
			}
			req = r
		case 2:
			var r dtmfRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.validate()
			}
			if err == nil {
				if e := amiCmd.SendDTMF(ctx, cust, r.Digits); e != nil {
					t.Fatalf("validated, then refused on the wire: %v", e)
				}
				for range r.Digits {
					wantActions = append(wantActions, "PlayDTMF")
				}
				if e := eslCmd.SendDTMF(ctx, fsCust, r.Digits); e != nil {
					t.Fatalf("validated, then refused for FreeSWITCH: %v", e)
				}
				checkESL(t, ew.sent, "uuid_send_dtmf", 2)
			}
			req = r
		case 3:
			var r agentRequest
			if err = decodeJSON(body, "application/json", &r, false); err == nil {
				err = r.validate()
			}
			if err == nil {
				op := bridge.QueueOp{Action: "pause", Queue: r.Queue, Extension: "100", Reason: r.Reason}
				if e := amiCmd.QueueMember(ctx, op); e != nil {
					t.Fatalf("validated, then refused on the wire: %v", e)
				}
				wantActions = []string{"QueuePause"}
				// mod_callcenter pauses agent-wide and keeps no reason: what
				// it cannot keep is refused, naming the field.
				fop := bridge.QueueOp{Action: "pause", Extension: "100"}
				if e := eslCmd.QueueMember(ctx, fop); e != nil {
					t.Fatalf("FreeSWITCH pause refused: %v", e)
				}
				checkESL(t, ew.sent, "callcenter_config", 5) // agent set status <agent> '<status>'
				ew.sent = nil
				fop.Queue, fop.Reason = r.Queue, r.Reason
				if e := eslCmd.QueueMember(ctx, fop); (e == nil) != (r.Queue == "" && r.Reason == "") {
					t.Fatalf("FreeSWITCH pause with queue %q reason %q: %v", r.Queue, r.Reason, e)
				} else if e != nil {
					checkRefusal(t, e)
				}
			}
			req = r
		case 4:
			var r webhookRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.validate()
			}
			if err == nil {
				if u, e := url.Parse(r.URL); e != nil || u.Host == "" {
					t.Fatalf("accepted url %q: %v", r.URL, e)
				}
				if !strings.HasPrefix(r.Secret, "whsec_") || !reEndpointID.MatchString(r.ID) {
					t.Fatalf("accepted secret or id: %+v", r)
				}
			}
			req = r
		case 5:
			var r recordRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.validate()
			}
			req = r
		}
		if err != nil {
			checkRefusal(t, err)
			if len(w.sent) > 0 || len(ew.sent) > 0 {
				t.Fatalf("refused, yet sent %q %q", w.sent, ew.sent)
			}
			return
		}
		walkStrings(reflect.ValueOf(req), func(s string) {
			if strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("accepted %q in %+v", s, req)
			}
		})
		if len(w.sent) != len(wantActions) {
			t.Fatalf("%d actions on the wire, want %d: %q", len(w.sent), len(wantActions), w.sent)
		}
		for i, b := range w.sent {
			checkFrame(t, b, wantActions[i])
		}
	})
}

// checkRefusal asserts err is an invalid-input bridge.Error naming a field.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var be *bridge.Error
	if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field == "" || be.Message == "" {
		t.Fatalf("refusal %#v is not an invalid-input error naming a field", err)
	}
}

// checkFrame asserts b is one AMI action of the given name: "Name: value"
// lines of known headers, one Action, ended by the only blank line.
func checkFrame(t *testing.T, b []byte, action string) {
	t.Helper()
	allowed := map[string]bool{"Action": true, "ActionID": true, "Channel": true, "ChannelId": true, "OtherChannelId": true,
		"Async": true, "Context": true, "Exten": true, "Priority": true, "CallerID": true, "Timeout": true, "Variable": true,
		"Digit": true, "Interface": true, "Paused": true, "Queue": true, "Reason": true}
	if bytes.Index(b, []byte("\r\n\r\n")) != len(b)-4 || bytes.ContainsAny(bytes.ReplaceAll(b, []byte("\r\n"), nil), "\r\n\x00") {
		t.Fatalf("not one frame: %q", b)
	}
	actions := 0
	for _, l := range strings.Split(string(b[:len(b)-4]), "\r\n") {
		name, _, ok := strings.Cut(l, ": ")
		if !ok || !allowed[name] {
			t.Fatalf("line %q of %q", l, b)
		}
		if name == "Action" {
			actions++
		}
	}
	if actions != 1 || !bytes.HasPrefix(b, []byte("Action: "+action+"\r\n")) {
		t.Fatalf("want one %s action: %q", action, b)
	}
}

// walkStrings calls fn for every string in v (fields, map keys and values,
// slice elements).
func walkStrings(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), fn)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walkStrings(it.Key(), fn)
			walkStrings(it.Value(), fn)
		}
	}
}
