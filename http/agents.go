package http

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// agentAction logs an agent in or out of a queue or (un)pauses it. The
// answer is 202: the agent's new state arrives as agent.state once the PBX
// reports it.
func (s *Server) agentAction(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req agentRequest
		if err := decode(c, &req, false); err != nil {
			return err
		}
		ext := c.Params("extension")
		if err := bridge.CheckExtension("extension", ext); err != nil {
			return err
		}
		if err := req.validate(); err != nil {
			return err
		}
		pbx, err := s.pbx()
		if err != nil {
			return err
		}
		op := bridge.QueueOp{Action: action, Queue: req.Queue, Extension: ext, Reason: req.Reason}
		if err := pbx.QueueMember(c.UserContext(), op); err != nil {
			return err
		}
		body := fiber.Map{"extension": ext, "action": action}
		if req.Queue != "" {
			body["queue"] = req.Queue
		}
		return accepted(c, body)
	}
}

type agentRequest struct {
	Queue  string `json:"queue"`
	Reason string `json:"reason"`
}

func (r agentRequest) validate() error {
	if r.Queue != "" {
		if err := bridge.CheckQueue("queue", r.Queue); err != nil {
			return err
		}
	}
	return bridge.CheckText("reason", r.Reason, 128, "")
}

func (s *Server) listAgents(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"agents": s.agents.list()})
}

// agentView is each agent's latest state per queue, from committed
// agent.state events.
type agentView struct {
	mu     sync.Mutex
	agents map[string]*AgentView
}

// AgentView is one agent as GET /v1/agents shows it.
type AgentView struct {
	Extension string       `json:"extension"`
	Name      string       `json:"name,omitempty"`
	State     string       `json:"state"` // the latest state reported, whichever queue
	UpdatedAt time.Time    `json:"updated_at"`
	Queues    []QueueState `json:"queues"`
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

func newAgentView() *agentView { return &agentView{agents: map[string]*AgentView{}} }

// apply takes agent.state records; an older record (by outbox position)
// never overwrites a newer one, so the startup read from the store and the
// live feed may overlap.
func (v *agentView) apply(recs []bridge.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range recs {
		if r.Type != bridge.EventAgentState {
			continue
		}
		var ev bridge.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil || ev.Agent == nil || ev.AgentState == nil || ev.Agent.Extension == "" {
			continue
		}
		a := v.agents[ev.Agent.Extension]
		if a == nil {
			a = &AgentView{Extension: ev.Agent.Extension, byQueue: map[string]*QueueState{}}
			v.agents[a.Extension] = a
		}
		q := a.byQueue[ev.AgentState.Queue]
		if q == nil {
			q = &QueueState{Queue: ev.AgentState.Queue}
			a.byQueue[q.Queue] = q
		}
		if r.Seq <= q.seq && q.seq != 0 {
			continue
		}
		if q.State != ev.AgentState.State {
			q.Since = ev.OccurredAt
		}
		q.State, q.Reason, q.seq = ev.AgentState.State, ev.AgentState.Reason, r.Seq
		if r.Seq > a.seq {
			a.seq, a.State, a.UpdatedAt = r.Seq, q.State, ev.OccurredAt
			if ev.Agent.Name != "" {
				a.Name = ev.Agent.Name
			}
		}
	}
}

func (v *agentView) list() []AgentView {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]AgentView, 0, len(v.agents))
	for _, a := range v.agents {
		cp := *a
		cp.Queues = make([]QueueState, 0, len(a.byQueue))
		for _, q := range sortedKeys(a.byQueue) {
			cp.Queues = append(cp.Queues, *a.byQueue[q])
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Extension < out[j].Extension })
	return out
}
