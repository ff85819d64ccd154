package ami_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// nullHandler ignores what the client reads.
type nullHandler struct{}

func (nullHandler) Connected(ami.ConnInfo)  {}
func (nullHandler) Message(*goami2.Message) {}
func (nullHandler) Disconnected(error)      {}

// cmdRig is a Commander on a real Client logged in to the simulator. The
// simulator answers Success to the actions it has no capture for (Atxfer,
// PlayDTMF, Queue*), as Asterisk 22 does for valid ones.
type cmdRig struct {
	sim   *amitest.Server
	cl    *ami.Client
	cmd   *ami.Commander
	login int // bytes of the login action
}

var scripted = map[string]string{"atxfer": "Atxfer successfully queued", "playdtmf": "DTMF successfully queued",
	"queueadd": "Added interface to queue", "queueremove": "Removed interface from queue", "queuepause": "Interface paused successfully",
	"hangup": "Channel Hungup", "redirect": "Redirect successful"}

func newCmdRig(t *testing.T, opts ami.CommanderOptions) *cmdRig {
	t.Helper()
	r := &cmdRig{}
	sim, err := amitest.NewServer(amitest.ServerOptions{OnAction: func(a *goami2.Message) bool {
		msg, ok := scripted[strings.ToLower(a.Field("Action"))]
		if !ok {
			return false
		}
		_ = r.sim.Reply(a, amitest.Response(a, "Success", "Message", msg))
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sim = sim
	t.Cleanup(func() { sim.Close() })
	r.cl = ami.NewClient(ami.Config{Address: sim.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1,
		ActionIDPrefix: "t-", Logger: slog.New(slog.DiscardHandler)}, nullHandler{})
	done := make(chan error, 1)
	go func() { done <- r.cl.Run(context.Background()) }()
	t.Cleanup(func() { r.cl.Close(); <-done })
	waitUntil(t, "login", r.cl.Connected)
	r.login = len(sim.Received())
	r.cmd = ami.NewCommander(r.cl, opts)
	return r
}

// sent returns the bytes written since the login (or since the last call).
func (r *cmdRig) sent() string {
	b := r.sim.Received()
	out := string(b[r.login:])
	r.login = len(b)
	return out
}

// waitUntil polls cond: the client's own state changes tell no one.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func lines(s ...string) string { return strings.Join(s, "\r\n") + "\r\n\r\n" }

func TestCommanderOriginateOnTheWire(t *testing.T) {
	r := newCmdRig(t, ami.CommanderOptions{})
	ctx := context.Background()
	o := &bridge.Originate{ConversationID: "conv_1", ActionID: "act-1", AgentChannelID: "chan-a", OtherChannelID: "chan-b",
		Agent: "100", To: "+74954451120", CallerID: `"Sales" <+15550100>`, Variables: map[string]string{"crm_order": "42", "crm_ID": "x y"}}
	o.RingTimeout = 25 * time.Second
	if err := r.cmd.Originate(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := lines("Action: Originate", "ActionID: act-1", "Channel: Local/100@from-internal", "ChannelId: chan-a",
		"OtherChannelId: chan-b", "Async: true", "Context: from-internal", "Exten: +74954451120", "Priority: 1",
		`CallerID: "Sales" <+15550100>`, "Timeout: 25000", "Variable: crm_ID=x y", "Variable: crm_order=42")
	got := r.sent()
	if got != want {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}
	// Asterisk reads it as exactly these headers and variables.
	if err := amitest.CheckAction([]byte(got), amitest.Headers("Action", "Originate", "ActionID", "act-1",
		"Channel", "Local/100@from-internal", "ChannelId", "chan-a", "OtherChannelId", "chan-b", "Async", "true",
		"Context", "from-internal", "Exten", "+74954451120", "Priority", "1", "CallerID", `"Sales" <+15550100>`,
		"Timeout", "25000", "Variable", "crm_ID=x y", "Variable", "crm_order=42"),
		amitest.Vars("crm_ID", "x y", "crm_order", "42")); err != nil {
		t.Fatal(err)
	}
	if n, l := amitest.CallerID(`"Sales" <+15550100>`); n != "Sales" || l != "+15550100" {
		t.Fatalf("caller id read as %q %q", n, l)
	}

	// A device channel has no second half: no OtherChannelId.
	r2 := newCmdRig(t, ami.CommanderOptions{AgentChannel: "PJSIP/{agent}", OutboundContext: "outbound", RingTimeout: 9 * time.Second})
	o2 := &bridge.Originate{ActionID: "act-2", AgentChannelID: "chan-c", OtherChannelID: "chan-d", Agent: "101", To: "5551234"}
	if err := r2.cmd.Originate(ctx, o2); err != nil {
		t.Fatal(err)
	}
	want = lines("Action: Originate", "ActionID: act-2", "Channel: PJSIP/101", "ChannelId: chan-c", "Async: true",
		"Context: outbound", "Exten: 5551234", "Priority: 1", "Timeout: 9000")
	if got := r2.sent(); got != want {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}
}

func TestCommanderActionsOnTheWire(t *testing.T) {
	r := newCmdRig(t, ami.CommanderOptions{TransferContext: "xfer", QueueInterface: "PJSIP/{agent}"})
	ctx := context.Background()
	cust := bridge.Channel{ID: "1.5", Name: "Local/500@inbound-00000005;2"}
	agent := bridge.Channel{ID: "1.7", Name: "PJSIP/101-00000007"}
	steps := []struct {
		name string
		run  func() error
		want string
	}{
		{"hangup", func() error { return r.cmd.Hangup(ctx, cust) },
			lines("Action: Hangup", "Channel: Local/500@inbound-00000005;2", "Cause: 16", "ActionID: t-1")},
		{"blind", func() error { return r.cmd.BlindTransfer(ctx, cust, "600") },
			lines("Action: Redirect", "Channel: Local/500@inbound-00000005;2", "Context: xfer", "Exten: 600", "Priority: 1", "ActionID: t-2")},
		{"attended", func() error { _, err := r.cmd.AttendedTransfer(ctx, agent, "200"); return err },
			lines("Action: Atxfer", "Channel: PJSIP/101-00000007", "Exten: 200", "Context: xfer", "ActionID: t-3")},
		{"complete", func() error { return r.cmd.CompleteAttendedTransfer(ctx, agent, bridge.Channel{}) },
			lines("Action: Hangup", "Channel: PJSIP/101-00000007", "Cause: 16", "ActionID: t-4")},
		{"record", func() error { return r.cmd.Record(ctx, cust, true, "conv_1-17.wav") },
			lines("Action: MixMonitor", "Channel: Local/500@inbound-00000005;2", "File: conv_1-17.wav", "ActionID: t-5")},
		{"stop", func() error { return r.cmd.Record(ctx, cust, false, "") },
			lines("Action: StopMixMonitor", "Channel: Local/500@inbound-00000005;2", "ActionID: t-6")},
		{"dtmf", func() error { return r.cmd.SendDTMF(ctx, cust, "1#") },
			lines("Action: PlayDTMF", "Channel: Local/500@inbound-00000005;2", "Digit: 1", "ActionID: t-7") +
				lines("Action: PlayDTMF", "Channel: Local/500@inbound-00000005;2", "Digit: #", "ActionID: t-8")},
		{"login", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Queue: "support", Extension: "100", Name: "Alice"})
		}, lines("Action: QueueAdd", "Queue: support", "Interface: PJSIP/100", "MemberName: Alice", "ActionID: t-9")},
		{"pause", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "pause", Queue: "support", Extension: "100", Reason: "lunch"})
		}, lines("Action: QueuePause", "Interface: PJSIP/100", "Paused: true", "Queue: support", "Reason: lunch", "ActionID: t-10")},
		{"resume", func() error { return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "resume", Extension: "100"}) },
			lines("Action: QueuePause", "Interface: PJSIP/100", "Paused: false", "ActionID: t-11")},
		{"logout", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "logout", Queue: "support", Extension: "100", Interface: "Local/100@agents"})
		}, lines("Action: QueueRemove", "Queue: support", "Interface: Local/100@agents", "ActionID: t-12")},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := r.sent(); got != s.want {
			t.Fatalf("%s sent\n%q\nwant\n%q", s.name, got, s.want)
		}
	}
}

// Values from CRMs never add a header or an action: they are refused with
// the field at fault and nothing is written.
func TestCommanderRefusesInjection(t *testing.T) {
	r := newCmdRig(t, ami.CommanderOptions{})
	ctx := context.Background()
	ch := bridge.Channel{ID: "1.5", Name: "PJSIP/100-00000001"}
	base := func() *bridge.Originate {
		return &bridge.Originate{ActionID: "a", AgentChannelID: "b", Agent: "100", To: "5551234"}
	}
	cases := []struct {
		field string
		run   func() error
	}{
		{"agent", func() error { o := base(); o.Agent = "100\r\nAction: Hangup"; return r.cmd.Originate(ctx, o) }},
		{"agent", func() error { o := base(); o.Agent = "100@evil"; return r.cmd.Originate(ctx, o) }},
		{"to", func() error { o := base(); o.To = "555\nChannel: x"; return r.cmd.Originate(ctx, o) }},
		{"to", func() error { o := base(); o.To = "555 1234"; return r.cmd.Originate(ctx, o) }},
		{"caller_id", func() error { o := base(); o.CallerID = "\"x\r\n\" <1>"; return r.cmd.Originate(ctx, o) }},
		{"variables", func() error {
			o := base()
			o.Variables = map[string]string{"CDR(accountcode)": "x"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "1,B=2"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "1\r\n\r\nAction: Hangup"}
			return r.cmd.Originate(ctx, o)
		}},
		{"to", func() error { return r.cmd.BlindTransfer(ctx, ch, "600\r\nExten: 1") }},
		{"digits", func() error { return r.cmd.SendDTMF(ctx, ch, "1\r\n") }},
		{"reason", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "pause", Extension: "100", Reason: "x\r\nAction: Logoff"})
		}},
		{"queue", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Extension: "100", Queue: "q\n"})
		}},
		{"channel", func() error { return r.cmd.Hangup(ctx, bridge.Channel{Name: "PJSIP/1\r\nAction: Originate"}) }},
		{"file", func() error { return r.cmd.Record(ctx, ch, true, "../../etc/passwd") }},
	}
	for i, c := range cases {
		err := c.run()
		var be *bridge.Error
		if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field != c.field {
			t.Errorf("case %d: err = %v, want EINVALID on %s", i, err, c.field)
		}
	}
	if got := r.sent(); got != "" {
		t.Fatalf("refused commands reached the wire: %q", got)
	}
	if n := len(r.sim.Actions()); n != 1 { // the login
		t.Fatalf("simulator saw %d actions", n)
	}
}

// Variable names outside the namespace (among them ones Asterisk acts on
// that the old blocklist missed: GOTO_ON_BLINDXFR, TOUCH_MIXMONITOR,
// PICKUPMARK), values with what manager.c, the dialplan or app_queue's
// persistent members read as syntax, and caller id names likewise: each is
// refused naming its field, and nothing reaches the simulator.
func TestCommanderRefusesVariableInjection(t *testing.T) {
	r := newCmdRig(t, ami.CommanderOptions{})
	ctx := context.Background()
	type tc struct {
		field string
		run   func() error
	}
	originate := func(vars map[string]string, cid string) func() error {
		return func() error {
			return r.cmd.Originate(ctx, &bridge.Originate{ActionID: "a", AgentChannelID: "b", Agent: "100", To: "5551234", Variables: vars, CallerID: cid})
		}
	}
	var cases []tc
	for _, name := range []string{"GOTO_ON_BLINDXFR", "TOUCH_MIXMONITOR", "PICKUPMARK", "MONITOR_EXEC", "TRANSFER_CONTEXT",
		"__crm_a", "_crm_a", "CDR(accountcode)", "SHELL(id)", "CRM_A", "crm_"} {
		cases = append(cases, tc{"variables", originate(map[string]string{name: "1"}, "")})
	}
	for _, v := range []string{"a,b", "${SHELL(id)}", "$[1+1]", "f(x", "a[b", `a"b`, `a\b`, "a=b", "a;b", "a|b", "a'b", "a:b",
		"a<b>", "a&b", " a", "a "} {
		cases = append(cases, tc{"variables.crm_x", originate(map[string]string{"crm_x": v}, "")},
			tc{"caller_id", originate(nil, `"`+v+`" <5551234>`)})
	}
	// app_queue stores persistent members as iface;penalty;paused;name;...
	// joined with '|' (split back at ',' '|' ';'), and the reason goes
	// into the '|'-separated queue_log.
	for _, v := range []string{"x;PJSIP/666;0;0", "x|PJSIP/666", "x,y", "a\tb", " x"} {
		cases = append(cases, tc{"name", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Queue: "support", Extension: "100", Name: v})
		}}, tc{"reason", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "pause", Queue: "support", Extension: "100", Reason: v})
		}})
	}
	for i, c := range cases {
		err := c.run()
		var be *bridge.Error
		if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field != c.field {
			t.Errorf("case %d: err = %v, want EINVALID on %s", i, err, c.field)
		}
	}
	if got := r.sent(); got != "" {
		t.Fatalf("refused actions reached the wire: %q", got)
	}
	// Another namespace, and what it lets through, read back exactly.
	r2 := newCmdRig(t, ami.CommanderOptions{VariablePrefix: "acme_"})
	o := &bridge.Originate{ActionID: "a", AgentChannelID: "b", Agent: "100", To: "5551234", Variables: map[string]string{"crm_x": "1"}}
	if err := r2.cmd.Originate(ctx, o); bridge.ErrorCode(err) != bridge.EINVALID || !strings.Contains(err.Error(), `"acme_"`) {
		t.Fatalf("crm_x under acme_: %v", err)
	}
	o.Variables, o.CallerID = map[string]string{"acme_x": "Иван @ Desk #2"}, `"José Núñez" <100>`
	if err := r2.cmd.Originate(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := amitest.CheckAction([]byte(r2.sent()), amitest.Headers("Action", "Originate", "ActionID", "a",
		"Channel", "Local/100@from-internal", "ChannelId", "b", "Async", "true", "Context", "from-internal",
		"Exten", "5551234", "Priority", "1", "CallerID", `"José Núñez" <100>`, "Timeout", "30000",
		"Variable", "acme_x=Иван @ Desk #2"), amitest.Vars("acme_x", "Иван @ Desk #2")); err != nil {
		t.Fatal(err)
	}
}

func TestCommanderErrors(t *testing.T) {
	r := newCmdRig(t, ami.CommanderOptions{})
	ctx := context.Background()
	ch := bridge.Channel{ID: "1.5", Name: "PJSIP/100-00000001"}
	code := func(err error) string { return bridge.ErrorCode(err) }

	// Hold is not something AMI can do: nothing is sent.
	if err := r.cmd.Hold(ctx, ch, true); code(err) != bridge.ENOTIMPLEMENTED {
		t.Fatalf("hold: %v", err)
	}
	if got := r.sent(); got != "" {
		t.Fatalf("hold sent %q", got)
	}
	// The simulator (like Asterisk < 17) does not know CancelAtxfer.
	if err := r.cmd.CancelAttendedTransfer(ctx, ch, bridge.Channel{}); code(err) != bridge.ENOTIMPLEMENTED || !strings.Contains(err.Error(), "CancelAtxfer") {
		t.Fatalf("cancel: %v", err)
	}
	if got := r.sent(); got != lines("Action: CancelAtxfer", "Channel: PJSIP/100-00000001", "ActionID: t-1") {
		t.Fatalf("cancel sent %q", got)
	}
	// The link down: refused at once, nothing queued for later.
	if !r.cmd.Connected() {
		t.Fatal("not connected")
	}
	r.cl.Close()
	if r.cmd.Connected() {
		t.Fatal("connected after close")
	}
	if err := r.cmd.Hangup(ctx, ch); code(err) != bridge.EUNAVAILABLE {
		t.Fatalf("link down: %v", err)
	}
	if bytes.Contains(r.sim.Received(), []byte("Action: Hangup")) {
		t.Fatal("hangup written while down")
	}
}

// The simulator's own Hangup answers "No such channel" for a channel it
// does not have, as Asterisk does: a conflict, not a server error.
func TestCommanderNoSuchChannel(t *testing.T) {
	sim, err := amitest.NewServer(amitest.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cl := ami.NewClient(ami.Config{Address: sim.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1,
		Logger: slog.New(slog.DiscardHandler)}, nullHandler{})
	go cl.Run(context.Background())
	defer cl.Close()
	waitUntil(t, "login", cl.Connected)
	ctx := context.Background()
	cmd := ami.NewCommander(cl, ami.CommanderOptions{})
	err = cmd.Hangup(ctx, bridge.Channel{Name: "Local/500@inbound-00000009;1"})
	if bridge.ErrorCode(err) != bridge.ECONFLICT || !strings.Contains(err.Error(), "No such channel") {
		t.Fatalf("err = %v", err)
	}
}

// encoder is an ActionSender that keeps the bytes the Client would write.
type encoder struct{ sent [][]byte }

func (e *encoder) Connected() bool { return true }
func (e *encoder) Send(_ context.Context, a *goami2.Message) (*goami2.Message, error) {
	b, err := ami.EncodeAction(a)
	if err != nil {
		return nil, err
	}
	e.sent = append(e.sent, b)
	resp := goami2.NewMessage()
	resp.AddField("Response", "Success")
	return resp, nil
}

// FuzzOriginate: a click-to-call is refused naming a field, or Asterisk's
// manager reads exactly the Originate we meant: our headers, one variable
// per Variable header with its value as given, the caller id's name.
func FuzzOriginate(f *testing.F) {
	f.Add("100", "5551234", `"Sales" <+15550100>`, "crm_a", "1", "crm_b", "x y")
	f.Add("100", "5551234", `"a,b" <1>`, "crm_a", "1,CDR(x)=y", "GOTO_ON_BLINDXFR", "evil,s,1")
	f.Add("100", "5551234", `"Иван" <100>`, "crm_a", "${SHELL(id)}", "crm_b", `"q"\`)
	f.Add("100", "5551234", "", "crm_a", "f(x", "crm_A", "[y")
	f.Fuzz(func(t *testing.T, agent, to, callerID, k1, v1, k2, v2 string) {
		e := &encoder{}
		cmd := ami.NewCommander(e, ami.CommanderOptions{})
		vars := map[string]string{k1: v1, k2: v2}
		o := &bridge.Originate{ActionID: "a-1", AgentChannelID: "c-1", Agent: agent, To: to, CallerID: callerID, Variables: vars}
		if err := cmd.Originate(context.Background(), o); err != nil {
			var be *bridge.Error
			if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field == "" || len(e.sent) > 0 {
				t.Fatalf("refusal %#v, sent %q", err, e.sent)
			}
			return
		}
		want := amitest.Headers("Action", "Originate", "ActionID", "a-1", "Channel", "Local/"+agent+"@from-internal",
			"ChannelId", "c-1", "Async", "true", "Context", "from-internal", "Exten", to, "Priority", "1")
		if callerID != "" {
			cid, _ := bridge.ParseCallerID("caller_id", callerID)
			value := "<" + cid.Number + ">"
			if cid.Name != "" {
				value = `"` + cid.Name + `" ` + value
			}
			want = append(want, amitest.Header{Name: "CallerID", Value: value})
			if name, _ := amitest.CallerID(value); name != cid.Name {
				t.Fatalf("caller id name %q read as %q", cid.Name, name)
			}
		}
		want = append(want, amitest.Header{Name: "Timeout", Value: "30000"})
		var wantVars []amitest.Var
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			want = append(want, amitest.Header{Name: "Variable", Value: k + "=" + vars[k]})
			wantVars = append(wantVars, amitest.Var{Name: k, Value: vars[k]})
		}
		if len(e.sent) != 1 {
			t.Fatalf("%d actions", len(e.sent))
		}
		if err := amitest.CheckAction(e.sent[0], want, wantVars); err != nil {
			t.Fatalf("%v: %q", err, e.sent[0])
		}
	})
}
