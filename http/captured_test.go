package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// The commands below were captured on a real Asterisk 22 in the middle of a
// call (blind-transfer, hangup-action, mixmonitor-action): each test plays
// the capture up to that moment, sends the command through the API,
// asserts the bytes on the wire, then plays what Asterisk answered with and
// asserts the events the CRM gets.

// liveChannel finds the simulator's live channel by name prefix and suffix
// (the simulator renumbers channels per run).
func (r *rig) liveChannel(prefix, suffix string) string {
	r.t.Helper()
	for _, ch := range r.ast.LiveChannels() {
		if strings.HasPrefix(ch.Name, prefix) && strings.HasSuffix(ch.Name, suffix) {
			return ch.Name
		}
	}
	r.t.Fatalf("no live channel %s…%s in %+v", prefix, suffix, r.ast.LiveChannels())
	return ""
}

// amiCommand makes a control request and returns what reached the PBX,
// without ActionIDs (the client's own counter).
func (r *rig) amiCommand(method, path string, body any) (resp, string) {
	r.t.Helper()
	mark := len(r.ast.Received())
	res := r.call(method, path, "control", body)
	return res, reActionID.ReplaceAllString(r.amiSent(mark), "")
}

func TestBlindTransferAsteriskCaptured(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, rest := r.liveCall("blind-transfer")
	cust := r.liveChannel("Local/500@inbound-", ";2")
	res, got := r.amiCommand("POST", "/v1/calls/"+conv+"/transfer", map[string]any{"to": "600", "mode": "blind"})
	// As captured (redirect-1), but for the ActionID.
	if want := lines("Action: Redirect", "Channel: "+cust, "Context: inbound", "Exten: 600", "Priority: 1"); res.status != 202 || got != want {
		t.Fatalf("transfer: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if types(evs) != "call.ringing,call.answered,call.transferred,call.ended" {
		t.Fatalf("events %s", types(evs))
	}
	if x := evs[2].Transfer; x == nil || x.Mode != "blind" || x.To != "600" || x.From == nil || x.From.Extension != "101" {
		t.Fatalf("transfer %+v", evs[2].Transfer)
	}
	// The call has ended: the issue's own example of a 409, and nothing
	// goes to the PBX.
	res, got = r.amiCommand("POST", "/v1/calls/"+conv+"/transfer", map[string]any{"to": "600"})
	if res.problem(t, 409, ""); got != "" {
		t.Fatalf("sent %q for an ended call", got)
	}
}

func TestHangupAsteriskCaptured(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, rest := r.liveCall("hangup-action")
	// The capture hung up the outward half (;1) of the caller's Local
	// pair; ctibridge hangs up the half that runs the dialplan (;2).
	// Either half ends the pair, and Asterisk reports the same release.
	cust := r.liveChannel("Local/500@inbound-", ";2")
	res, got := r.amiCommand("POST", "/v1/calls/"+conv+"/hangup", nil)
	if want := lines("Action: Hangup", "Channel: "+cust, "Cause: 16"); res.status != 202 || got != want {
		t.Fatalf("hangup: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	end := evs[len(evs)-1]
	// A CRM hung it up through the API: hangup_by says so.
	if types(evs) != "call.ringing,call.answered,call.ended" || end.Call.HangupBy != "api" || end.Call.Disposition != bridge.DispositionAnswered {
		t.Fatalf("events %s, ended %+v", types(evs), end.Call)
	}
	r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 409, "")
}

func TestRecordAsteriskCaptured(t *testing.T) {
	r := newRig(t, rigOptions{})
	conv, rest := r.liveCall("mixmonitor-action")
	cust := r.liveChannel("Local/500@inbound-", ";2")
	res, got := r.amiCommand("POST", "/v1/calls/"+conv+"/record", map[string]any{"action": "start"})
	file, _ := res.json(t)["file"].(string)
	if want := lines("Action: MixMonitor", "Channel: "+cust, "File: "+file); res.status != 202 || got != want || !strings.HasPrefix(file, conv+"-") {
		t.Fatalf("record: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	res, got = r.amiCommand("POST", "/v1/calls/"+conv+"/record", map[string]any{"action": "stop"})
	if want := lines("Action: StopMixMonitor", "Channel: "+cust); res.status != 202 || got != want {
		t.Fatalf("record stop: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	if err := r.ast.PlayFrames(rest, amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	// Asterisk reports the file it chose (the capture's absolute path).
	const path = "/srv/pbx1/asterisk/var/spool/asterisk/monitor/ami-mixmonitor-test.wav"
	if types(evs) != "call.ringing,call.answered,recording.started,recording.ready,call.ended" ||
		evs[2].Recording == nil || evs[2].Recording.Path != path || evs[4].Call.Recording == nil || evs[4].Call.Recording.Path != path {
		t.Fatalf("events %s: %+v", types(evs), evs[len(evs)-1].Call.Recording)
	}
}

// fsScript is a FreeSWITCH capture cut at its api commands: the events
// before the n-th api/response frame happened before that command.
type fsScript struct {
	r      *rig
	events []esltest.Frame // as Prepare gives them, capture uuids kept
	cuts   []int           // per api command: its response's offset
	cmds   []string        // the api commands as captured, "\n\n" ended
	played int
}

func (r *rig) fsScript(capture string) *fsScript {
	r.t.Helper()
	c, err := esltest.Load(capture)
	if err != nil {
		r.t.Fatal(err)
	}
	evs, err := r.fs.Prepare(capture, esltest.PlayOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	s := &fsScript{r: r, events: evs}
	for _, f := range c.Frames {
		if f.ContentType == "api/response" {
			s.cuts = append(s.cuts, f.Offset)
		}
	}
	for _, cmd := range strings.SplitAfter(string(c.Sent), "\n\n") {
		if strings.HasPrefix(cmd, "api ") {
			s.cmds = append(s.cmds, cmd)
		}
	}
	if len(s.cmds) != len(s.cuts) {
		r.t.Fatalf("%s: %d api commands, %d api responses", capture, len(s.cmds), len(s.cuts))
	}
	return s
}

// command returns the captured api command that starts with prefix, and
// plays the events that came before FreeSWITCH answered it.
func (s *fsScript) command(prefix string) string {
	s.r.t.Helper()
	for i, cmd := range s.cmds {
		if strings.HasPrefix(cmd, prefix) {
			s.playUntil(s.cuts[i])
			return cmd
		}
	}
	s.r.t.Fatalf("no captured command %q in %q", prefix, s.cmds)
	return ""
}

func (s *fsScript) playUntil(offset int) {
	n := s.played
	for n < len(s.events) && s.events[n].Offset < offset {
		n++
	}
	s.r.fs.Stream(s.events[s.played:n], 0)
	s.played = n
}

// rest plays the remaining events.
func (s *fsScript) rest() { s.playUntil(int(^uint(0) >> 1)) }

// answered waits for the call.answered of the capture's call.
func (r *rig) answered() string {
	r.t.Helper()
	var conv string
	r.waitFor("call.answered", func() bool {
		for _, rec := range r.records() {
			if rec.Type == bridge.EventCallAnswered {
				conv = rec.ConversationID
				return true
			}
		}
		return false
	})
	return conv
}

// eslCommand makes a control request and returns what reached the switch.
func (r *rig) eslCommand(method, path string, body any) (resp, string) {
	r.t.Helper()
	mark := len(r.fs.Received()[0])
	res := r.call(method, path, "control", body)
	return res, r.eslSent(mark)
}

func TestBlindTransferFreeSWITCHCaptured(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	s := r.fsScript("blind-transfer")
	want := s.command("api uuid_transfer ")
	conv := r.answered()
	// Byte for byte what was sent to the real switch: same leg, same target.
	res, got := r.eslCommand("POST", "/v1/calls/"+conv+"/transfer", map[string]any{"to": "3000"})
	if res.status != 202 || got != want {
		t.Fatalf("transfer: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	s.rest()
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if types(evs) != "call.ringing,call.answered,call.transferred,call.ended" {
		t.Fatalf("events %s", types(evs))
	}
	if x := evs[2].Transfer; x == nil || x.Mode != "blind" || x.To != "3000" {
		t.Fatalf("transfer %+v", evs[2].Transfer)
	}
	res, got = r.eslCommand("POST", "/v1/calls/"+conv+"/transfer", map[string]any{"to": "3000"})
	if res.problem(t, 409, ""); got != "" {
		t.Fatalf("sent %q for an ended call", got)
	}
	res, got = r.eslCommand("POST", "/v1/calls/conv_nope/hangup", nil)
	if res.problem(t, 404, "id"); got != "" {
		t.Fatalf("sent %q for an unknown call", got)
	}
}

func TestHoldFreeSWITCHCaptured(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	s := r.fsScript("hold-loopback")
	captured := s.command("api uuid_hold ")
	conv := r.answered()
	// The capture held the caller's leg (loopback/2100-b). ctibridge holds
	// the agent's (loopback/1100-a): FreeSWITCH plays hold music to the
	// held leg's partner, and the CRM means "the customer waits".
	const caller, agent = "f1e0e32b-dbaf-45bf-8157-aa1c40d9de7f", "dbf4c918-7b3a-4a4e-99ba-6fdf880d1c59"
	want := strings.Replace(captured, caller, agent, 1)
	if want == captured {
		t.Fatalf("captured %q", captured)
	}
	res, got := r.eslCommand("POST", "/v1/calls/"+conv+"/hold", nil)
	if res.status != 202 || got != want {
		t.Fatalf("hold: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	s.rest()
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	// What the switch reported for the captured hold.
	if types(evs) != "call.ringing,call.answered,call.held,call.ended" || evs[2].Call.State != "held" || evs[2].Call.Agent == nil {
		t.Fatalf("events %s", types(evs))
	}
}

func TestHangupFreeSWITCHCaptured(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	s := r.fsScript("kill")
	want := s.command("api uuid_kill ")
	conv := r.answered()
	res, got := r.eslCommand("POST", "/v1/calls/"+conv+"/hangup", nil)
	if res.status != 202 || got != want {
		t.Fatalf("hangup: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	s.rest()
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if end := evs[len(evs)-1]; types(evs) != "call.ringing,call.answered,call.ended" || end.Call.HangupCause == nil || end.Call.HangupCause.Code != 16 {
		t.Fatalf("events %s %+v", types(evs), end.Call)
	}
}

func TestRecordFreeSWITCHCaptured(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	s := r.fsScript("record")
	captured := s.command("api uuid_record ")
	conv := r.answered()
	// The capture named its own file; ctibridge names one per call under
	// commands.record_dir. The leg is the one the capture recorded.
	leg := strings.Fields(captured)[2]
	res, got := r.eslCommand("POST", "/v1/calls/"+conv+"/record", map[string]any{"action": "start"})
	file, _ := res.json(t)["file"].(string)
	if want := "api uuid_record " + leg + " start /rec/" + file + "\n\n"; res.status != 202 || got != want {
		t.Fatalf("record: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	// Until the capture stopped it.
	for i, cmd := range s.cmds {
		if strings.Contains(cmd, " stop ") {
			s.playUntil(s.cuts[i])
		}
	}
	res, got = r.eslCommand("POST", "/v1/calls/"+conv+"/record", map[string]any{"action": "stop"})
	if want := "api uuid_record " + leg + " stop all\n\n"; res.status != 202 || got != want {
		t.Fatalf("record stop: %d %s sent %q, want %q", res.status, res.body, got, want)
	}
	s.rest()
	evs := r.waitEvents(conv, bridge.EventCallEnded)
	if types(evs) != "call.ringing,call.answered,recording.started,recording.ready,call.ended" ||
		evs[3].Recording == nil || !strings.HasSuffix(evs[3].Recording.Path, "uuid_record_"+leg+".wav") {
		t.Fatalf("events %s %+v", types(evs), evs[len(evs)-1].Call.Recording)
	}
}

// Agents on FreeSWITCH: mod_callcenter statuses on the wire, the agent's
// status changes of the callcenter capture as agent.state, GET /v1/agents.
func TestAgentsFreeSWITCHCaptured(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch", esl: esl.CommanderOptions{CallcenterAgent: "agent{agent}@default"}})
	s := r.fsScript("callcenter")
	// The capture's command, but for the quotes: statuses such as
	// 'Logged Out' and 'On Break' need them and FreeSWITCH strips them.
	if c := s.command("api callcenter_config "); c != "api callcenter_config agent set status agent1000@default Available\n\n" {
		t.Fatalf("captured %q", c)
	}
	const status = "api callcenter_config agent set status agent1000@default "
	for _, step := range []struct {
		action string
		body   map[string]any
		want   string
	}{
		{"pause", nil, status + "'On Break'\n\n"},
		{"resume", nil, status + "'Available'\n\n"},
		{"logout", nil, status + "'Logged Out'\n\n"},
		{"login", nil, status + "'Available'\n\n"},
		// A queue is the agent's tier in it.
		{"logout", map[string]any{"queue": "support@default"}, "api callcenter_config tier set state support@default agent1000@default Standby\n\n"},
		{"login", map[string]any{"queue": "support@default"}, "api callcenter_config tier set state support@default agent1000@default Ready\n\n" + status + "'Available'\n\n"},
	} {
		res, got := r.eslCommand("POST", "/v1/agents/1000/"+step.action, step.body)
		if res.status != 202 || got != step.want {
			t.Fatalf("%s %v: %d %s sent %q, want %q", step.action, step.body, res.status, res.body, got, step.want)
		}
	}
	// What mod_callcenter cannot keep is refused, not dropped.
	for _, c := range []struct {
		action, field string
		body          map[string]any
	}{
		{"pause", "reason", map[string]any{"reason": "lunch"}},
		{"pause", "queue", map[string]any{"queue": "support@default"}},
		{"login", "reason", map[string]any{"queue": "support@default", "reason": "x\ny"}},
	} {
		res, got := r.eslCommand("POST", "/v1/agents/1000/"+c.action, c.body)
		if res.problem(t, 400, c.field); got != "" {
			t.Fatalf("sent %q", got)
		}
	}
	s.rest()
	// mod_callcenter's agent changes, as captured: Available, In a queue
	// call, Waiting again after it.
	var states []string
	r.waitFor("three agent.state events", func() bool {
		states = states[:0]
		for _, rec := range r.records() {
			if rec.Type == bridge.EventAgentState {
				var ev bridge.Event
				if err := json.Unmarshal(rec.Payload, &ev); err != nil || ev.Agent == nil || ev.AgentState == nil {
					t.Fatalf("agent.state %s", rec.Payload)
				}
				states = append(states, ev.Agent.Extension+"="+ev.AgentState.State)
			}
		}
		return len(states) >= 3
	})
	if strings.Join(states, ",") != "1000=available,1000=busy,1000=available" {
		t.Fatalf("agent.state events %v", states)
	}
	var b agentsBody
	// The view applies a commit just after the rig sees it; busy was
	// applied already, so available is the last state.
	r.waitFor("agent 1000 available again", func() bool {
		b = r.agents()
		return len(b.Agents) == 1 && b.Agents[0].State == "available"
	})
	if a := b.Agents[0]; len(b.Agents) != 1 || a.Extension != "1000" || a.Name != "agent1000@default" || a.State != "available" ||
		len(a.Queues) != 1 || a.Queues[0].State != "available" {
		t.Fatalf("agent %+v", a)
	}
}

// The link down on FreeSWITCH: 503, and nothing written anywhere.
func TestCommandsWhileLinkDownFreeSWITCH(t *testing.T) {
	r := newRig(t, rigOptions{pbx: "freeswitch"})
	s := r.fsScript("kill")
	s.command("api uuid_kill ")
	conv := r.answered()
	mark := len(r.fs.Received()[0])
	r.fs.Close()
	r.waitFor("link down", func() bool { return !r.up() })
	r.call("POST", "/v1/calls/"+conv+"/hangup", "control", nil).problem(t, 503, "")
	r.call("POST", "/v1/calls/"+conv+"/transfer", "control", map[string]any{"to": "3000"}).problem(t, 503, "")
	r.call("POST", "/v1/calls", "control", map[string]any{"agent": "101", "to": "600"}).problem(t, 503, "")
	r.call("POST", "/v1/agents/1000/login", "control", nil).problem(t, 503, "")
	if got := r.eslSent(mark); got != "" {
		t.Fatalf("sent %q", got)
	}
}
