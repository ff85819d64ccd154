package http_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/store"
)

func memberEvent(name, status, paused, reason string) []byte {
	return []byte(strings.Join([]string{"Event: " + name, "Privilege: agent,all", "Queue: support", "MemberName: Agent100",
		"Interface: Local/100@agents", "StateInterface: Local/100@agents", "Membership: dynamic", "Penalty: 0", "CallsTaken: 0",
		"InCall: 0", "Status: " + status, "Paused: " + paused, "PausedReason: " + reason}, "\r\n") + "\r\n\r\n")
}

type agentsBody struct {
	Agents []struct {
		Extension string `json:"extension"`
		Name      string `json:"name"`
		State     string `json:"state"`
		Queues    []struct {
			Queue, State, Reason string
		} `json:"queues"`
	} `json:"agents"`
}

func (r *rig) agents() agentsBody {
	r.t.Helper()
	res := r.call("GET", "/v1/agents", "read", nil)
	var b agentsBody
	if res.status != 200 || json.Unmarshal(res.body, &b) != nil {
		r.t.Fatalf("GET /v1/agents: %d %s", res.status, res.body)
	}
	return b
}

func TestAgentsAsterisk(t *testing.T) {
	// A state from before this start is in the store: the view has it.
	r := newRig(t, rigOptions{preload: func(db *store.DB) {
		ev := bridge.Event{ID: bridge.NewID("evt_"), Type: bridge.EventAgentState, OccurredAt: time.Now().UTC(), PBX: "pbx1",
			Agent: &bridge.Agent{Extension: "200", Name: "Bob"}, AgentState: &bridge.AgentStat{Queue: "sales", State: "available"}}
		rec, _ := bridge.NewRecord(ev)
		if err := db.Commit(context.Background(), &bridge.Batch{Events: []bridge.PendingEvent{{Record: rec}}}); err != nil {
			t.Fatal(err)
		}
	}})
	// Agent 200 is in the store; agent 100 comes from the PBX at once: the
	// resync's QueueStatus (the captured answer: in a call, so busy).
	var b agentsBody
	r.waitFor("stored and resynced agent states", func() bool { b = r.agents(); return len(b.Agents) == 2 })
	if a := b.Agents[0]; a.Extension != "100" || a.State != "busy" || len(a.Queues) != 1 || a.Queues[0].Queue != "support" {
		t.Fatalf("agent from QueueStatus %+v", a)
	}

	steps := []struct {
		path string
		body any
		want string
	}{
		{"/v1/agents/100/login", map[string]any{"queue": "support"}, lines("Action: QueueAdd", "Queue: support", "Interface: Local/100@agents")},
		{"/v1/agents/100/pause", map[string]any{"queue": "support", "reason": "lunch"},
			lines("Action: QueuePause", "Interface: Local/100@agents", "Paused: true", "Queue: support", "Reason: lunch")},
		{"/v1/agents/100/resume", nil, lines("Action: QueuePause", "Interface: Local/100@agents", "Paused: false")},
		{"/v1/agents/100/logout", map[string]any{"queue": "support"}, lines("Action: QueueRemove", "Queue: support", "Interface: Local/100@agents")},
	}
	for _, s := range steps {
		mark := len(r.ast.Received())
		res := r.call("POST", s.path, "control", s.body)
		got := reActionID.ReplaceAllString(r.amiSent(mark), "")
		if res.status != 202 || got != s.want {
			t.Fatalf("%s: %d %s sent\n%q\nwant\n%q", s.path, res.status, res.body, got, s.want)
		}
	}
	// Asterisk adds and removes members per queue.
	r.call("POST", "/v1/agents/100/login", "control", nil).problem(t, 400, "queue")

	// What the PBX then reports is the agent's state.
	for _, ev := range [][]byte{memberEvent("QueueMemberAdded", "1", "0", ""), memberEvent("QueueMemberPause", "1", "1", "lunch")} {
		if err := r.ast.SendRaw(ev); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor("paused agent", func() bool {
		b = r.agents()
		return len(b.Agents) == 2 && b.Agents[0].State == "paused"
	})
	a := b.Agents[0]
	if a.Extension != "100" || a.Name != "Agent100" || len(a.Queues) != 1 || a.Queues[0].Queue != "support" || a.Queues[0].Reason != "lunch" {
		t.Fatalf("agent %+v", a)
	}
	if b.Agents[1].Extension != "200" || b.Agents[1].State != "available" {
		t.Fatalf("stored agent %+v", b.Agents[1])
	}
	// And the CRM got them as agent.state webhooks: busy (resync), then
	// available and paused.
	ds := r.rcv.WaitFor(3, 5*time.Second)
	if len(ds) < 3 || ds[0].Type != "agent.state" || ds[1].Type != "agent.state" || ds[2].Type != "agent.state" || ds[0].Err != nil {
		t.Fatalf("webhooks %+v", ds)
	}
}
