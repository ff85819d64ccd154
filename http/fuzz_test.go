package http

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
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
// of the command routes, then what is accepted to both commanders.
// Invariants: no panic; a refusal is a bridge.Error naming its field; an
// accepted value holds no CR, LF or NUL; on the wire, an accepted request
// is exactly the actions or command lines it should be. A click-to-call is
// read back the way each PBX reads it: FreeSWITCH's originate grammar
// (esltest.CheckOriginate: one leg, exactly our variables, the dial target
// and the arguments) and Asterisk's manager (amitest.CheckAction: exactly
// our headers, one variable per Variable header, the caller id's name and
// number), so a character that means something to either cannot slip
// through the allowlists.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"agent":"100","to":"+74954451120","caller_id":"\"Sales\" <5551234>","variables":{"crm_id":"42"},"timeout_s":30}`},
		{0, `{"agent":"101","to":"600"}`},
		{0, `{"agent":"101","to":"600\r\nAction: Hangup"}`},
		{0, `{"agent":"101","to":"600","variables":{"crm_a":"1,B=2"}}`},
		{0, `{"agent":"101","to":"600","variables":{"crm_ticket":"x:_:[api_on_originate=system touch pwned]loopback/9196/default|"}}`},
		{0, `{"agent":"101","to":"600","caller_id":"\"x:_:[api_on_originate=system id]loopback/1/default|\" <600>"}`},
		{0, `{"agent":"101","to":"600","caller_id":"\"Иван Петров\" <+74954451120>","variables":{"crm_a":"a b","crm_B":"T-1@x.com/#*+_"}}`},
		{0, `{"agent":"101","to":"600","variables":{"crm_a":"{a}","crm_b":"^^:x","crm_c":"${x}","crm_d":"a'b","crm_e":"<x>"}}`},
		{0, `{"agent":"101","to":"600","variables":{"GOTO_ON_BLINDXFR":"x","process_cdr":"false"}}`},
		{0, `{"agent":"101","to":"600","caller_id":"x <1\u0000>"}`},
		{0, `{"agent":"101","to":600}`},
		{1, `{"to":"200","mode":"blind"}`},
		{1, `{"to":"200","mode":"attended"}`},
		{1, `{"to":"200 XML public"}`},
		{2, `{"digits":"1#"}`},
		{2, `{"digits":"12\n"}`},
		{3, `{"queue":"support","reason":"lunch"}`},
		{3, `{"queue":"support@default","reason":"a\rb"}`},
		{3, `{"queue":"support","reason":"x|PAUSE;y,z"}`},
		{4, `{"url":"https://crm.example.com/hook","events":["call.*"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{4, `{"url":"https://crm.example.com/hook","secret":"whsec_MfKQ9r8G\r\nKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{4, `{"id":"crm","url":"http://127.0.0.1:9000/hook","events":"call.*"}`},
		{5, `{"action":"start"}`},
		{5, `[]`},
		{0, `{"agent":"101","to":"600"} {}`},
		{0, `{"agent":"100","Agent":"101","to":"600","variables":{"crm_a":"1","CRM_A":"2"}}`},
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
				err = r.placeCall().Validate()
			}
			if err == nil {
				// The HTTP rules let through what one PBX still refuses;
				// that refusal must name its field too.
				if e := eslCmd.CheckOriginate(originateOf(r)); e != nil {
					checkRefusal(t, e)
				} else {
					o := originateOf(r)
					o.ActionID, o.AgentChannelID = "7cfe2f47-56aa-4987-a393-6d881cc2af22", "89b15daf-718f-47e7-bd6f-c3e16c05a48f"
					if e := eslCmd.Originate(ctx, o); e != nil {
						t.Fatalf("checked, then refused for FreeSWITCH: %v", e)
					}
					// originate {vars}<dial> <to> XML <context>
					checkESL(t, ew.sent, "originate", 4)
					want := esltest.Vars("origination_uuid", o.AgentChannelID, "originate_timeout", "30")
					if r.CallerID != "" {
						cid, _ := bridge.ParseCallerID("caller_id", r.CallerID)
						want = append(want, esltest.Var{Name: "origination_caller_id_number", Value: cid.Number})
						if cid.Name != "" {
							want = append(want, esltest.Var{Name: "origination_caller_id_name", Value: cid.Name})
						}
					}
					for _, k := range slices.Sorted(maps.Keys(r.Variables)) {
						want = append(want, esltest.Var{Name: k, Value: r.Variables[k]})
					}
					if e := esltest.CheckOriginate(ew.sent[0], want, "user/"+r.Agent, r.To, "XML", "default"); e != nil {
						t.Fatal(e)
					}
				}
				if e := amiCmd.CheckOriginate(originateOf(r)); e != nil {
					checkRefusal(t, e)
					return
				}
				o := originateOf(r)
				o.ActionID, o.AgentChannelID, o.OtherChannelID = "a-1", "c-1", "c-2"
				if e := amiCmd.Originate(ctx, o); e != nil {
					t.Fatalf("checked, then refused on the wire: %v", e)
				}
				wantActions = []string{"Originate"}
				checkAMIOriginate(t, w.sent[0], r)
			}
			req = r
		case 1:
			var r bridge.TransferRequest
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				err = r.Validate()
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
				err = bridge.CheckDTMF("digits", r.Digits)
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
				err = bridge.QueueOp{Action: "pause", Extension: "100", Queue: r.Queue, Reason: r.Reason}.Validate()
			}
			if err == nil {
				op := bridge.QueueOp{Action: "pause", Queue: r.Queue, Extension: "100", Reason: r.Reason}
				// The reason reaches app_queue's '|'-separated logs: Asterisk
				// takes only safe text, and says so naming the field.
				if e := amiCmd.QueueMember(ctx, op); e != nil {
					if bridge.CheckSafeText("reason", r.Reason, 128) == nil {
						t.Fatalf("validated, then refused on the wire: %v", e)
					}
					if checkRefusal(t, e); len(w.sent) > 0 {
						t.Fatalf("refused, yet sent %q", w.sent)
					}
				} else {
					wantActions = []string{"QueuePause"}
					hs, e := amitest.ParseAction(w.sent[0])
					if e != nil || amitest.Get(hs, "Reason") != r.Reason {
						t.Fatalf("reason %q read as %q (%v): %q", r.Reason, amitest.Get(hs, "Reason"), e, w.sent[0])
					}
				}
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
			var r bridge.EndpointRequest
			var ep bridge.Endpoint
			if err = decodeJSON(body, "application/json", &r, true); err == nil {
				// As the endpoint service fills in what the request omits.
				ep = bridge.Endpoint{ID: r.ID, URL: r.URL, Secret: r.Secret, PreviousSecret: r.PreviousSecret, Events: r.Events}
				if ep.ID == "" {
					ep.ID = bridge.NewID("ep_")
				}
				if ep.Secret == "" {
					ep.Secret = bridge.NewWebhookSecret()
				}
				err = ep.Validate()
			}
			if err == nil {
				if u, e := url.Parse(ep.URL); e != nil || u.Host == "" {
					t.Fatalf("accepted url %q: %v", ep.URL, e)
				}
				if !strings.HasPrefix(ep.Secret, "whsec_") || !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`).MatchString(ep.ID) {
					t.Fatalf("accepted secret or id: %+v", ep)
				}
			}
			req = ep
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

// checkAMIOriginate asserts Asterisk's manager reads the Originate of r
// as exactly the headers we built, one variable per Variable header with
// its value, and the caller id's name and number as given.
func checkAMIOriginate(t *testing.T, frame []byte, r originateRequest) {
	t.Helper()
	want := amitest.Headers("Action", "Originate", "ActionID", "a-1", "Channel", "Local/"+r.Agent+"@from-internal",
		"ChannelId", "c-1", "OtherChannelId", "c-2", "Async", "true", "Context", "from-internal", "Exten", r.To, "Priority", "1")
	if r.CallerID != "" {
		cid, _ := bridge.ParseCallerID("caller_id", r.CallerID)
		value := "<" + cid.Number + ">"
		if cid.Name != "" {
			value = `"` + cid.Name + `" ` + value
		}
		want = append(want, amitest.Header{Name: "CallerID", Value: value})
		// Asterisk drops '-' and a '.' not at the end from a number: its
		// normalisation, not ours.
		wantNumber := strings.ReplaceAll(strings.TrimSuffix(cid.Number, "."), ".", "")
		if strings.HasSuffix(cid.Number, ".") {
			wantNumber += "."
		}
		wantNumber = strings.ReplaceAll(wantNumber, "-", "")
		if name, number := amitest.CallerID(value); name != cid.Name || number != wantNumber {
			t.Fatalf("caller id %q read as %q %q", value, name, number)
		}
	}
	want = append(want, amitest.Header{Name: "Timeout", Value: "30000"})
	var vars []amitest.Var
	for _, k := range slices.Sorted(maps.Keys(r.Variables)) {
		want = append(want, amitest.Header{Name: "Variable", Value: k + "=" + r.Variables[k]})
		vars = append(vars, amitest.Var{Name: k, Value: r.Variables[k]})
	}
	if err := amitest.CheckAction(frame, want, vars); err != nil {
		t.Fatalf("%v: %q", err, frame)
	}
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

// originateOf is the click-to-call a request asks of the PBX adapter.
func originateOf(r originateRequest) *bridge.Originate {
	pc := r.placeCall()
	return &bridge.Originate{Agent: pc.Agent, To: pc.To, CallerID: pc.CallerID, Variables: pc.Variables}
}
