package http

import (
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
		ext := param(c, "extension")
		op := bridge.QueueOp{Action: action, Queue: req.Queue, Extension: ext, Reason: req.Reason}
		if err := s.Agents.Act(c.UserContext(), op); err != nil {
			return err
		}
		body := fiber.Map{"extension": ext, "action": action}
		if req.Queue != "" {
			body["queue"] = req.Queue
		}
		return accepted(c, body)
	}
}

func (s *Server) listAgents(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"agents": s.Agents.Agents(c.UserContext())})
}

type agentRequest struct {
	Queue  string `json:"queue"`
	Reason string `json:"reason"`
}
