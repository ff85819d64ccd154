package bridge

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// AgentView is one agent's latest state, from committed agent.state
// events.
type AgentView struct {
	Extension string       `json:"extension"`
	Name      string       `json:"name,omitempty"`
	State     string       `json:"state"` // the latest state reported, whichever queue
	UpdatedAt time.Time    `json:"updated_at"`
	Queues    []QueueState `json:"queues"`
	Tenant    string       `json:"tenant,omitempty"` // from its latest agent.state
	seq       int64
	byQueue   map[string]*QueueState
}

// QueueState is an agent's state in one queue ("" for a PBX that keeps one
// state per agent).
type QueueState struct {
	Queue  string    `json:"queue,omitempty"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	seq    int64
}

// AgentStateReader reads the latest agent.state records (the store), to
// start the board where the last run left it.
type AgentStateReader interface {
	LatestAgentStates(ctx context.Context) ([]Record, error)
}

// Agents is the AgentService: commands through the PBX, and a board of
// each agent's latest state per queue kept from committed records (Apply).
// Its one lifetime rule: an agent stays on the board for the life of the
// process, with the state the PBX last reported.
type Agents struct {
	pbx PBX
	// Tenants gives the tenant of an agent not on the board yet (the
	// configured tenants.agents); nil: the operator's.
	Tenants func(ext string) string

	mu     sync.Mutex
	agents map[string]*AgentView
}

// NewAgents returns the AgentService; pbx nil answers commands with
// EUNAVAILABLE.
func NewAgents(pbx PBX) *Agents { return &Agents{pbx: pbx, agents: map[string]*AgentView{}} }

// Restore loads the latest states from the store.
func (a *Agents) Restore(ctx context.Context, r AgentStateReader) error {
	recs, err := r.LatestAgentStates(ctx)
	if err != nil {
		return err
	}
	a.Apply(recs)
	return nil
}

// Validate checks an agent command.
func (op QueueOp) Validate() error {
	switch op.Action {
	case "login", "logout", "pause", "resume":
	default:
		return FieldError("action", "must be login, logout, pause or resume")
	}
	if err := CheckExtension("extension", op.Extension); err != nil {
		return err
	}
	if op.Queue != "" {
		if err := CheckQueue("queue", op.Queue); err != nil {
			return err
		}
	}
	return CheckText("reason", op.Reason, 128, "")
}

// Act implements AgentService.
func (a *Agents) Act(ctx context.Context, op QueueOp) error {
	if err := op.Validate(); err != nil {
		return err
	}
	if !SeesAgentIn(ctx, op.Extension, a.tenantOf(op.Extension)) {
		return &Error{Code: ENOTFOUND, Field: "extension", Message: "no agent " + op.Extension + " for this key"}
	}
	if a.pbx == nil {
		return &Error{Code: EUNAVAILABLE, NotSent: true, Message: "commands are not available: no PBX commander is configured"}
	}
	if !a.pbx.Connected() {
		return &Error{Code: EUNAVAILABLE, NotSent: true, Message: "the PBX link is down: command not sent (retry when /readyz says ready)"}
	}
	return a.pbx.QueueMember(ctx, op)
}

// Apply takes committed records (only agent.state ones count); an older
// record (by outbox position) never overwrites a newer one, so the startup
// read from the store and the live feed may overlap.
func (a *Agents) Apply(recs []Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		if r.Type != EventAgentState {
			continue
		}
		var ev Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil || ev.Agent == nil || ev.AgentState == nil || ev.Agent.Extension == "" {
			continue
		}
		v := a.agents[ev.Agent.Extension]
		if v == nil {
			v = &AgentView{Extension: ev.Agent.Extension, byQueue: map[string]*QueueState{}}
			a.agents[v.Extension] = v
		}
		q := v.byQueue[ev.AgentState.Queue]
		if q == nil {
			q = &QueueState{Queue: ev.AgentState.Queue}
			v.byQueue[q.Queue] = q
		}
		if r.Seq <= q.seq && q.seq != 0 {
			continue
		}
		if q.State != ev.AgentState.State {
			q.Since = ev.OccurredAt
		}
		q.State, q.Reason, q.seq = ev.AgentState.State, ev.AgentState.Reason, r.Seq
		if r.Seq > v.seq {
			v.seq, v.State, v.UpdatedAt, v.Tenant = r.Seq, q.State, ev.OccurredAt, ev.Tenant
			if ev.Agent.Name != "" {
				v.Name = ev.Agent.Name
			}
		}
	}
}

// Agents implements AgentService: the agents ctx may see, by extension.
func (a *Agents) Agents(ctx context.Context) []AgentView {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AgentView, 0, len(a.agents))
	for _, v := range a.agents {
		if !SeesAgentIn(ctx, v.Extension, v.Tenant) {
			continue
		}
		cp := *v
		cp.Queues = make([]QueueState, 0, len(v.byQueue))
		names := make([]string, 0, len(v.byQueue))
		for q := range v.byQueue {
			names = append(names, q)
		}
		slices.Sort(names)
		for _, q := range names {
			cp.Queues = append(cp.Queues, *v.byQueue[q])
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Extension, out[j].Extension) < 0 })
	return out
}

// tenantOf is the tenant of agent ext as its latest agent.state said; an
// agent never reported is the configured one's (Tenants), else the
// operator's ("").
func (a *Agents) tenantOf(ext string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v := a.agents[ext]; v != nil {
		return v.Tenant
	}
	if a.Tenants != nil {
		return a.Tenants(ext)
	}
	return ""
}
