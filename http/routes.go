package http

import "github.com/ctibridge/ctibridge/bridge"

// Scopes of API keys (bridge defines them): admin implies control,
// control implies read.
const (
	scopeRead    = bridge.ScopeRead
	scopeControl = bridge.ScopeControl
	scopeAdmin   = bridge.ScopeAdmin
)

// routes registers the API. Health, readiness, metrics and the OpenAPI
// document are registered in NewServer, without authentication.
func (s *Server) routes() {
	read, control, admin := s.auth(scopeRead), s.auth(scopeControl), s.auth(scopeAdmin)
	a := s.app

	a.Get("/v1/calls", read, s.listCalls)
	a.Post("/v1/calls", control, s.originate)
	a.Get("/v1/calls/:id", read, s.getCall)
	a.Get("/v1/calls/:id/recording", read, s.recording)
	a.Post("/v1/calls/:id/hangup", control, s.hangup)
	a.Post("/v1/calls/:id/hold", control, s.hold(true))
	a.Post("/v1/calls/:id/resume", control, s.hold(false))
	a.Post("/v1/calls/:id/record", control, s.record)
	a.Post("/v1/calls/:id/dtmf", control, s.dtmf)
	a.Post("/v1/calls/:id/transfer", control, s.transfer)
	a.Post("/v1/transfers/:id/complete", control, s.completeTransfer)
	a.Delete("/v1/transfers/:id", control, s.cancelTransfer)
	a.Get("/v1/history", read, s.history)

	a.Get("/v1/agents", read, s.listAgents)
	for _, action := range []string{"login", "logout", "pause", "resume"} {
		a.Post("/v1/agents/:extension/"+action, control, s.agentAction(action))
	}

	a.Get("/v1/events/stream", read, s.stream)
	a.Post("/v1/events/replay", admin, s.replayRange)
	a.Post("/v1/events/:id/replay", admin, s.replayEvent)

	a.Get("/v1/webhooks", admin, s.listWebhooks)
	a.Post("/v1/webhooks", admin, s.createWebhook)
	a.Get("/v1/webhooks/:id", admin, s.getWebhook)
	a.Patch("/v1/webhooks/:id", admin, s.updateWebhook)
	a.Delete("/v1/webhooks/:id", admin, s.deleteWebhook)
	a.Post("/v1/webhooks/:id/test", admin, s.testWebhook)
	a.Get("/v1/webhooks/:id/deliveries", admin, s.webhookDeliveries)
	a.Get("/v1/webhooks/:id/dead", admin, s.webhookDead)

	s.panelRoutes() // the agent panel (panel.go)
}
