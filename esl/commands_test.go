package esl_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// cmdSink keeps what the client hands over and says when the resync is in.
type cmdSink struct {
	mu     sync.Mutex
	evs    []bridge.ChannelEvent
	synced bool
}

func (s *cmdSink) LinkUp(int)                           {}
func (s *cmdSink) LinkDown(error)                       {}
func (s *cmdSink) Snapshot([]bridge.Channel, time.Time) { s.mu.Lock(); s.synced = true; s.mu.Unlock() }
func (s *cmdSink) ChannelEvents(evs []bridge.ChannelEvent) {
	s.mu.Lock()
	s.evs = append(s.evs, evs...)
	s.mu.Unlock()
}

func (s *cmdSink) isSynced() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.synced }

func (s *cmdSink) events() []bridge.ChannelEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bridge.ChannelEvent(nil), s.evs...)
}

type eslRig struct {
	sim  *esltest.Server
	cl   *esl.Client
	cmd  *esl.Commander
	sink *cmdSink
	mark int
}

func newESLRig(t *testing.T, api func(cmd, args string) (string, bool), opts esl.CommanderOptions) *eslRig {
	t.Helper()
	sim, err := esltest.NewServer(esltest.Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r := &eslRig{sim: sim, sink: &cmdSink{}}
	r.cl = esl.New(esl.Config{Address: sim.Addr(), Password: "ClueCon", ReorderWindow: -1, Logger: slog.New(slog.DiscardHandler)}, r.sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.cl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.cmd = esl.NewCommander(r.cl, opts)
	waitFor(t, "resync", func() bool { return r.sink.isSynced() && r.cmd.Connected() })
	r.sent()
	return r
}

// sent returns what the client wrote since the last call.
func (r *eslRig) sent() string {
	b := r.sim.Received()[0]
	out := string(b[r.mark:])
	r.mark = len(b)
	return out
}

// waitFor polls: the client's state changes tell no one.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

const (
	agentLeg = "9c1cc113-0321-49dc-86d2-19ef7c225839"
	custLeg  = "f1e0e32b-dbaf-45bf-8157-aa1c40d9de7f"
	jobID    = "3f2b2c1e-8d7a-4f7e-9a51-0c2f6d9e1b10"
)

// okAPI answers the channel commands as FreeSWITCH does for a live channel.
func okAPI(cmd, args string) (string, bool) {
	switch cmd {
	case "uuid_kill", "uuid_transfer", "uuid_broadcast", "uuid_send_dtmf":
		return "+OK\n", true
	case "uuid_hold", "uuid_record":
		return "+OK Success\n", true
	}
	return "", false
}

func TestESLCommanderOriginateOnTheWire(t *testing.T) {
	r := newESLRig(t, nil, esl.CommanderOptions{})
	o := &bridge.Originate{ConversationID: "conv_1", ActionID: jobID, AgentChannelID: agentLeg, Agent: "1000", To: "+74954451120",
		CallerID: `"Sales Desk" <+15550100>`, Variables: map[string]string{"crm_order": "42", "crm_ID": "x y"}}
	o.RingTimeout = 25 * time.Second
	if err := r.cmd.Originate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	want := "bgapi originate {origination_uuid=" + agentLeg + ",originate_timeout=25,origination_caller_id_number=+15550100," +
		"origination_caller_id_name='Sales Desk',crm_ID='x y',crm_order=42}user/1000 +74954451120 XML default\nJob-UUID: " + jobID + "\n\n"
	got := r.sent()
	if got != want {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}
	// FreeSWITCH reads it as one leg with exactly these variables.
	if err := esltest.CheckOriginate(bgapiLine(t, got), esltest.Vars("origination_uuid", agentLeg, "originate_timeout", "25",
		"origination_caller_id_number", "+15550100", "origination_caller_id_name", "Sales Desk", "crm_ID", "x y", "crm_order", "42"),
		"user/1000", "+74954451120", "XML", "default"); err != nil {
		t.Fatal(err)
	}
	// The simulator fails it as the capture did (no route): the job's
	// result names the originate it answers.
	waitFor(t, "BACKGROUND_JOB", func() bool { return len(r.sink.events()) > 0 })
	ev := r.sink.events()[0]
	if ev.Kind != bridge.ChanOriginateFailed || ev.ActionID != jobID || ev.Cause != 3 {
		t.Fatalf("event %+v", ev)
	}
}

func TestESLCommanderActionsOnTheWire(t *testing.T) {
	r := newESLRig(t, okAPI, esl.CommanderOptions{Context: "public", RecordDir: "/rec", CallcenterAgent: "agent{agent}@default"})
	ctx := context.Background()
	agent, cust := bridge.Channel{ID: agentLeg, Name: "sofia/internal/1000@pbx"}, bridge.Channel{ID: custLeg, Name: "loopback/2100-b"}
	steps := []struct {
		name string
		run  func() error
		want string
	}{
		{"hangup", func() error { return r.cmd.Hangup(ctx, cust) }, "api uuid_kill " + custLeg + "\n\n"},
		{"blind", func() error { return r.cmd.BlindTransfer(ctx, cust, "3000") }, "api uuid_transfer " + custLeg + " 3000 XML public\n\n"},
		{"hold", func() error { return r.cmd.Hold(ctx, agent, true) }, "api uuid_hold " + agentLeg + "\n\n"},
		{"resume", func() error { return r.cmd.Hold(ctx, agent, false) }, "api uuid_hold off " + agentLeg + "\n\n"},
		{"record", func() error { return r.cmd.Record(ctx, cust, true, "conv_1-17.wav") },
			"api uuid_record " + custLeg + " start /rec/conv_1-17.wav\n\n"},
		{"stop", func() error { return r.cmd.Record(ctx, cust, false, "") }, "api uuid_record " + custLeg + " stop all\n\n"},
		{"dtmf", func() error { return r.cmd.SendDTMF(ctx, cust, "1#") }, "api uuid_send_dtmf " + custLeg + " 1#\n\n"},
		{"login", func() error {
			return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Queue: "support@default", Extension: "1000"})
		},
			"api callcenter_config tier set state support@default agent1000@default Ready\n\n" +
				"api callcenter_config agent set status agent1000@default 'Available'\n\n"},
		{"pause", func() error { return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "pause", Extension: "1000"}) },
			"api callcenter_config agent set status agent1000@default 'On Break'\n\n"},
		{"logout", func() error { return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "logout", Extension: "1000"}) },
			"api callcenter_config agent set status agent1000@default 'Logged Out'\n\n"},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := r.sent(); got != s.want {
			t.Fatalf("%s sent\n%q\nwant\n%q", s.name, got, s.want)
		}
	}

	// Attended: att_xfer on the agent's leg with a consultation leg whose
	// uuid is returned, and which cancelling then kills; without one there
	// is nothing to cancel.
	consultLeg, err := r.cmd.AttendedTransfer(ctx, agent, "2000")
	if err != nil {
		t.Fatal(err)
	}
	got := r.sent()
	prefix := "api uuid_broadcast " + agentLeg + " att_xfer::{origination_uuid="
	vars, rest, ok := strings.Cut(strings.TrimPrefix(got, prefix), "}")
	consult, bowout, _ := strings.Cut(vars, ",")
	if !strings.HasPrefix(got, prefix) || !ok || rest != "loopback/2000/public aleg\n\n" || len(consult) != 36 || bowout != "loopback_bowout=false" {
		t.Fatalf("att_xfer sent %q", got)
	}
	if consultLeg.ID != consult {
		t.Fatalf("returned consultation %q, dialled %q", consultLeg.ID, consult)
	}
	if err := r.cmd.CancelAttendedTransfer(ctx, agent, consultLeg); err != nil {
		t.Fatal(err)
	}
	if got := r.sent(); got != "api uuid_kill "+consult+"\n\n" {
		t.Fatalf("cancel sent %q", got)
	}
	if err := r.cmd.CancelAttendedTransfer(ctx, agent, bridge.Channel{}); bridge.ErrorCode(err) != bridge.ECONFLICT {
		t.Fatalf("cancel without a consultation: %v", err)
	}
	if consultLeg, err = r.cmd.AttendedTransfer(ctx, agent, "2000"); err != nil {
		t.Fatal(err)
	}
	r.sent()
	if err := r.cmd.CompleteAttendedTransfer(ctx, agent, consultLeg); err != nil {
		t.Fatal(err)
	}
	if got := r.sent(); got != "api uuid_kill "+agentLeg+"\n\n" {
		t.Fatalf("complete sent %q", got)
	}
}

func TestESLCommanderRefusesInjection(t *testing.T) {
	r := newESLRig(t, okAPI, esl.CommanderOptions{})
	ctx := context.Background()
	ch := bridge.Channel{ID: custLeg}
	base := func() *bridge.Originate {
		return &bridge.Originate{ActionID: jobID, AgentChannelID: agentLeg, Agent: "1000", To: "5551234"}
	}
	cases := []struct {
		field string
		run   func() error
	}{
		{"agent", func() error { o := base(); o.Agent = "1000\n\napi hupall"; return r.cmd.Originate(ctx, o) }},
		{"agent", func() error { o := base(); o.Agent = "1000 &park"; return r.cmd.Originate(ctx, o) }},
		{"to", func() error { o := base(); o.To = "555 XML evil"; return r.cmd.Originate(ctx, o) }},
		{"caller_id", func() error { o := base(); o.CallerID = "\"a,b\" <1>"; return r.cmd.Originate(ctx, o) }},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "1,origination_uuid=x"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "1}loopback/9999"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "it's"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "^^:a:b"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables.crm_a", func() error {
			o := base()
			o.Variables = map[string]string{"crm_a": "x\n\nbgapi hupall"}
			return r.cmd.Originate(ctx, o)
		}},
		{"variables", func() error { o := base(); o.Variables = map[string]string{"a b": "x"}; return r.cmd.Originate(ctx, o) }},
		{"to", func() error { return r.cmd.BlindTransfer(ctx, ch, "3000 XML evil") }},
		{"to", func() error { _, err := r.cmd.AttendedTransfer(ctx, ch, "3000\n\napi hupall"); return err }},
		{"digits", func() error { return r.cmd.SendDTMF(ctx, ch, "1 2") }},
		{"channel", func() error { return r.cmd.Hangup(ctx, bridge.Channel{ID: custLeg + "\n\napi hupall"}) }},
		{"extension", func() error { return r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Extension: "1000'\n"}) }},
		{"file", func() error { return r.cmd.Record(ctx, ch, true, "x y.wav") }},
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
}

// bgapiLine is the command of a "bgapi <cmd>\nJob-UUID: ...\n\n" frame.
func bgapiLine(t *testing.T, frame string) string {
	t.Helper()
	line, rest, ok := strings.Cut(frame, "\n")
	cmd, isBg := strings.CutPrefix(line, "bgapi ")
	if !ok || !isBg || !strings.HasPrefix(rest, "Job-UUID: ") || strings.Count(frame, "\n\n") != 1 || !strings.HasSuffix(frame, "\n\n") {
		t.Fatalf("not one bgapi frame: %q", frame)
	}
	return cmd
}

// The originate injection confirmed on FreeSWITCH 1.10.12, and every
// character of the dial-string grammar, in a variable's value or the
// caller id name, and the variable names PBXs act on that the old
// blocklist missed: each is refused naming its field, and nothing reaches
// the socket. (Before the allowlists, the ":_:", '|', '[', '<', "^^" in
// the middle, '$' values and these names went out as they came.)
func TestESLCommanderRefusesDialStringInjection(t *testing.T) {
	r := newESLRig(t, nil, esl.CommanderOptions{})
	const payload = "x:_:[api_on_originate=system touch pwned]loopback/9196/default|"
	type tc struct {
		field     string
		variables map[string]string
		callerID  string
	}
	cases := []tc{
		{field: "variables.crm_ticket", variables: map[string]string{"crm_ticket": payload}},
		{field: "caller_id", callerID: `"` + payload + `" <5551234>`},
		{field: "caller_id", callerID: payload + " <5551234>"},
	}
	for _, v := range []string{"a:_:b", "a|b", "a,b", "a[b]", "a{b", "a}b", "<a>", "a^^:b", "^^:a", "${x}", "$x", "it's",
		`a"b`, `a\b`, "a=b", "a:b", "a;b", "a&b", " a", "a "} {
		cases = append(cases, tc{field: "variables.crm_x", variables: map[string]string{"crm_x": v}},
			tc{field: "caller_id", callerID: `"` + v + `" <5551234>`})
	}
	for _, name := range []string{"process_cdr", "accountcode", "domain_name", "nibble_rate", "nibble_account",
		"api_on_answer", "execute_on_answer", "origination_uuid", "CRM_x"} {
		cases = append(cases, tc{field: "variables", variables: map[string]string{name: "1"}})
	}
	for _, c := range cases {
		o := &bridge.Originate{ActionID: jobID, AgentChannelID: agentLeg, Agent: "100", To: "5551234", Variables: c.variables, CallerID: c.callerID}
		err := r.cmd.Originate(context.Background(), o)
		var be *bridge.Error
		if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field != c.field {
			t.Errorf("%q %q: err = %v, want EINVALID on %s", c.variables, c.callerID, err, c.field)
		}
	}
	if got := r.sent(); got != "" {
		t.Fatalf("refused originates reached the wire: %q", got)
	}
	// A configured namespace replaces the default one.
	r2 := newESLRig(t, nil, esl.CommanderOptions{VariablePrefix: "acme_"})
	o := &bridge.Originate{ActionID: jobID, AgentChannelID: agentLeg, Agent: "100", To: "5551234", Variables: map[string]string{"crm_x": "1"}}
	if err := r2.cmd.Originate(context.Background(), o); bridge.ErrorCode(err) != bridge.EINVALID || !strings.Contains(err.Error(), `"acme_"`) {
		t.Fatalf("crm_x under acme_: %v", err)
	}
	o.Variables = map[string]string{"acme_x": "Иван @ Desk #2"}
	if err := r2.cmd.Originate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := esltest.CheckOriginate(bgapiLine(t, r2.sent()), esltest.Vars("origination_uuid", agentLeg, "originate_timeout", "30",
		"acme_x", "Иван @ Desk #2"), "user/100", "5551234", "XML", "default"); err != nil {
		t.Fatal(err)
	}
}

// The attended transfer's dial string is read by switch_ivr_originate too
// (att_xfer): one leg, only the pre-assigned uuid.
func TestESLAttendedTransferDialString(t *testing.T) {
	r := newESLRig(t, okAPI, esl.CommanderOptions{})
	if _, err := r.cmd.AttendedTransfer(context.Background(), bridge.Channel{ID: agentLeg}, "2000"); err != nil {
		t.Fatal(err)
	}
	got := r.sent()
	dial, ok := strings.CutPrefix(got, "api uuid_broadcast "+agentLeg+" att_xfer::")
	dial, ok2 := strings.CutSuffix(dial, " aleg\n\n")
	if !ok || !ok2 {
		t.Fatalf("sent %q", got)
	}
	o, err := esltest.ParseDialString(dial)
	if err != nil {
		t.Fatal(err)
	}
	// The uuid, and a loopback that never bows out (the consultation must
	// keep that uuid for cancel, and stay up for the completion's bridge).
	if len(o.Legs) != 1 || len(o.Legs[0].Global) != 2 || o.Legs[0].Global[0].Name != "origination_uuid" ||
		o.Legs[0].Global[1].Name != "loopback_bowout" || o.Legs[0].Global[1].Value != "false" {
		t.Fatalf("%+v", o)
	}
	if err := o.CheckSingle(o.Legs[0].Global, "loopback/2000/default"); err != nil {
		t.Fatal(err)
	}
}

func TestESLCommanderErrors(t *testing.T) {
	api := func(cmd, args string) (string, bool) {
		switch {
		case cmd == "uuid_hold" && strings.HasPrefix(args, "off "):
			return "-ERR Operation failed\n", true // a loopback leg (hold-loopback capture)
		case cmd == "callcenter_config":
			return "-ERR callcenter_config Command not found!\n", true
		}
		return "", false
	}
	r := newESLRig(t, api, esl.CommanderOptions{})
	ctx := context.Background()
	ch := bridge.Channel{ID: custLeg}
	if err := r.cmd.Hold(ctx, ch, false); bridge.ErrorCode(err) != bridge.ECONFLICT || !strings.Contains(err.Error(), "Operation failed") {
		t.Fatalf("unhold: %v", err)
	}
	if err := r.cmd.QueueMember(ctx, bridge.QueueOp{Action: "login", Extension: "1000"}); bridge.ErrorCode(err) != bridge.ENOTIMPLEMENTED {
		t.Fatalf("no mod_callcenter: %v", err)
	}
	// The simulator's own uuid_kill: no such channel is a call that ended.
	if err := r.cmd.Hangup(ctx, ch); bridge.ErrorCode(err) != bridge.ECONFLICT {
		t.Fatalf("gone channel: %v", err)
	}
	if err := r.cmd.CompleteAttendedTransfer(ctx, ch, bridge.Channel{}); bridge.ErrorCode(err) != bridge.ECONFLICT {
		t.Fatalf("complete without transfer: %v", err)
	}
	r.sim.Close()
	waitFor(t, "link down", func() bool { return !r.cmd.Connected() })
	if err := r.cmd.Hangup(ctx, ch); bridge.ErrorCode(err) != bridge.EUNAVAILABLE {
		t.Fatalf("link down: %v", err)
	}
}
