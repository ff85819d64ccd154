package http

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) dispatcher() (Dispatcher, error) {
	if s.Dispatcher == nil {
		return nil, bridge.Errorf(bridge.EUNAVAILABLE, "webhook delivery is not running")
	}
	return s.Dispatcher, nil
}

// endpointJSON is an endpoint as the API shows it: never a secret, and
// "rotating": true while it still signs with a previous secret too.
func endpointJSON(ep bridge.Endpoint) map[string]any {
	body := map[string]any{}
	_ = json.Unmarshal(mustJSON(ep), &body)
	if ep.PreviousSecret != "" {
		body["rotating"] = true
	}
	return body
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	eps, err := s.Endpoints.Endpoints(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(eps))
	for _, ep := range eps {
		out = append(out, endpointJSON(ep))
	}
	return c.JSON(fiber.Map{"webhooks": out})
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	ep, err := s.Endpoints.Endpoint(c.UserContext(), param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(endpointJSON(ep))
}

// createWebhook subscribes an endpoint. Without a secret one is generated
// and shown in this response only.
func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req bridge.EndpointRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	ep, err := s.Endpoints.Create(c.UserContext(), req)
	if err != nil {
		return err
	}
	body := endpointJSON(ep)
	if req.Secret == "" {
		body["secret"] = ep.Secret // shown once
	}
	c.Set(fiber.HeaderLocation, "/v1/webhooks/"+ep.ID)
	return c.Status(fiber.StatusCreated).JSON(body)
}

// updateWebhook changes an endpoint made over the API: its URL, filters
// or secrets (rotation). The id, state and delivery history stay.
func (s *Server) updateWebhook(c *fiber.Ctx) error {
	var req bridge.EndpointUpdate
	if err := decode(c, &req, true); err != nil {
		return err
	}
	ep, generated, err := s.Endpoints.Update(c.UserContext(), param(c, "id"), req)
	if err != nil {
		return err
	}
	body := endpointJSON(ep)
	if generated {
		body["secret"] = ep.Secret // shown once
	}
	return c.JSON(body)
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	if err := s.Endpoints.Delete(c.UserContext(), param(c, "id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// testWebhook sends a signed webhook.test to one endpoint, through the
// outbox like any event, so it is logged, retried and replayable.
func (s *Server) testWebhook(c *fiber.Ctx) error {
	ctx := c.UserContext()
	d, err := s.dispatcher()
	if err != nil {
		return err
	}
	ep, err := s.Endpoints.Endpoint(ctx, param(c, "id"))
	if err != nil {
		return err
	}
	if ep.Disabled {
		return bridge.Errorf(bridge.ECONFLICT, "endpoint %s is disabled (%s)", ep.ID, ep.DisabledReason)
	}
	rec, err := bridge.NewRecord(bridge.Event{ID: bridge.NewID("evt_"), Type: bridge.EventWebhookTest, OccurredAt: time.Now().UTC(), PBX: s.PBXName})
	if err != nil {
		return err
	}
	b := &bridge.Batch{Events: []bridge.PendingEvent{{Record: rec, EndpointIDs: []string{ep.ID}}}}
	if err := s.store.Commit(ctx, b); err != nil {
		return err
	}
	rec = b.Events[0].Record
	d.Notify([]bridge.Delivery{{Record: rec, EndpointID: ep.ID, Status: bridge.DeliveryPending, NextAttemptAt: time.Now()}})
	return accepted(c, fiber.Map{"event_id": rec.ID, "endpoint": ep.ID, "type": rec.Type})
}

func (s *Server) webhookDeliveries(c *fiber.Ctx) error {
	ctx := c.UserContext()
	ep, err := s.Endpoints.Endpoint(ctx, param(c, "id"))
	if err != nil {
		return err
	}
	if err := onlyQuery(c, "limit", "before"); err != nil {
		return err
	}
	limit, err := queryLimit(c, 50, 500)
	if err != nil {
		return err
	}
	before, err := queryTime(c, "before")
	if err != nil {
		return err
	}
	as, err := s.store.Attempts(ctx, ep.ID, limit, before)
	if err != nil {
		return err
	}
	if as == nil {
		as = []bridge.Attempt{}
	}
	body := fiber.Map{"attempts": as}
	if len(as) == limit {
		body["next_before"] = as[len(as)-1].At.Format(time.RFC3339Nano)
	}
	return c.JSON(body)
}

// deadLetter is a dead delivery with its event.
type deadLetter struct {
	EventID        string          `json:"event_id"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id,omitempty"`
	Sequence       int64           `json:"sequence"`
	OccurredAt     time.Time       `json:"occurred_at"`
	Attempts       int             `json:"attempts"`
	FirstTriedAt   time.Time       `json:"first_tried_at"`
	Event          json.RawMessage `json:"event"`
}

func (s *Server) webhookDead(c *fiber.Ctx) error {
	ctx := c.UserContext()
	ep, err := s.Endpoints.Endpoint(ctx, param(c, "id"))
	if err != nil {
		return err
	}
	if err := onlyQuery(c, "limit"); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	ds, err := s.store.DeadLetters(ctx, ep.ID, limit)
	if err != nil {
		return err
	}
	out := make([]deadLetter, 0, len(ds))
	for _, d := range ds {
		out = append(out, deadLetter{EventID: d.ID, Type: d.Type, ConversationID: d.ConversationID, Sequence: d.Sequence,
			OccurredAt: d.OccurredAt, Attempts: d.Attempts, FirstTriedAt: d.FirstTriedAt, Event: d.Payload})
	}
	return c.JSON(fiber.Map{"dead": out})
}

// replayEvent sends one event again, with the same webhook-id, to the
// endpoints named, or to every enabled endpoint that subscribes to it.
func (s *Server) replayEvent(c *fiber.Ctx) error {
	var req struct {
		Endpoints []string `json:"endpoints"`
	}
	if err := decode(c, &req, false); err != nil {
		return err
	}
	ctx := c.UserContext()
	d, err := s.dispatcher()
	if err != nil {
		return err
	}
	rec, err := s.store.Event(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	tenant := recordTenant(rec)
	if !bridge.SeesTenant(ctx, tenant) {
		return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no event with id " + rec.ID}
	}
	ids, err := s.replayTargets(ctx, "endpoints", req.Endpoints, func(ep bridge.Endpoint) bool { return ep.WantsEvent(rec.Type, tenant) })
	if err != nil {
		return err
	}
	if err := s.replayTenant(ctx, ids, tenant); err != nil {
		return err
	}
	ds, pending, err := s.store.Replay(ctx, rec.ID, ids)
	if err != nil {
		return err
	}
	// An endpoint drops pushed deliveries older than what it has seen, so
	// an old event is picked up by re-reading the endpoint's backlog.
	d.Notify(ds)
	sent := make([]string, 0, len(ds))
	for _, dl := range ds {
		sent = append(sent, dl.EndpointID)
		d.Reload(dl.EndpointID)
	}
	// Where it is still pending (on its way, perhaps in flight) nothing
	// changes, and the answer says so rather than "sent again".
	return accepted(c, fiber.Map{"event_id": rec.ID, "endpoints": sent, "already_pending": nonNil(pending)})
}

// replayRange sends again every delivered or dead event of [from, to);
// with missed, also those the named endpoint never had a delivery for.
func (s *Server) replayRange(c *fiber.Ctx) error {
	var req struct {
		From     string `json:"from"`
		To       string `json:"to"`
		Endpoint string `json:"endpoint"`
		// Missed backfills: events committed while the endpoint was
		// disabled, or before it was made, that its filter and tenant take.
		Missed bool `json:"missed"`
	}
	if err := decode(c, &req, true); err != nil {
		return err
	}
	if req.Missed && req.Endpoint == "" {
		return bridge.FieldError("missed", "needs an endpoint: name the one to send the events it never had")
	}
	from, err := parseTime("from", req.From)
	if err != nil {
		return err
	}
	if from.IsZero() {
		return bridge.FieldError("from", "is required (RFC 3339)")
	}
	to, err := parseTime("to", req.To)
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = time.Now()
	}
	if !to.After(from) {
		return bridge.FieldError("to", "must be after from")
	}
	ctx := c.UserContext()
	d, err := s.dispatcher()
	if err != nil {
		return err
	}
	var named []string
	if req.Endpoint != "" {
		named = []string{req.Endpoint}
	}
	ids, err := s.replayTargets(ctx, "endpoint", named, func(bridge.Endpoint) bool { return true })
	if err != nil {
		return err
	}
	var missed func(string, bridge.Record) bool
	if req.Missed {
		ep, err := s.Endpoints.Endpoint(ctx, req.Endpoint)
		if err != nil {
			return err
		}
		missed = func(_ string, rec bridge.Record) bool { return ep.WantsEvent(rec.Type, bridge.RecordTenant(rec)) }
	}
	n, per, err := s.store.ReplayRange(ctx, from, to, ids, missed)
	if err != nil {
		return err
	}
	// Only the endpoints that got something: the others are not told to
	// re-read, nor listed as if they had been sent anything.
	sent := []string{}
	for _, id := range ids {
		if per[id] > 0 {
			sent = append(sent, id)
			d.Reload(id)
		}
	}
	return accepted(c, fiber.Map{"replayed": n, "endpoints": sent, "per_endpoint": per})
}

// nonNil makes an empty list [] in JSON, not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// replayTargets checks named endpoints, or picks the enabled ones that
// want the replay.
func (s *Server) replayTargets(ctx context.Context, field string, named []string, want func(bridge.Endpoint) bool) ([]string, error) {
	eps, err := s.Endpoints.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	if len(named) == 0 {
		for _, ep := range eps {
			if !ep.Disabled && want(ep) {
				ids = append(ids, ep.ID)
			}
		}
		if len(ids) == 0 {
			return nil, bridge.Errorf(bridge.ECONFLICT, "no enabled endpoint subscribes to it")
		}
		return ids, nil
	}
	for _, id := range named {
		i := slices.IndexFunc(eps, func(ep bridge.Endpoint) bool { return ep.ID == id })
		switch {
		case i < 0:
			return nil, &bridge.Error{Code: bridge.ENOTFOUND, Field: field, Message: "no webhook endpoint with id " + id}
		case eps[i].Disabled:
			return nil, &bridge.Error{Code: bridge.ECONFLICT, Field: field, Message: "endpoint " + id + " is disabled"}
		}
		ids = append(ids, id)
	}
	return ids, nil
}
