package http

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// endpoints returns the config endpoints and the API ones, with the
// disabled state the store keeps (a 410 Gone disables either kind).
func (s *Server) endpoints(ctx context.Context) ([]bridge.Endpoint, error) {
	runtime, err := s.store.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	disabled, err := s.store.DisabledEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	eps := make([]bridge.Endpoint, 0, len(s.ConfigEndpoints)+len(runtime))
	for _, ep := range s.ConfigEndpoints {
		if reason, ok := disabled[ep.ID]; ok {
			ep.Disabled, ep.DisabledReason = true, reason
		}
		eps = append(eps, ep)
	}
	return append(eps, runtime...), nil
}

// SyncEndpoints hands the current endpoints to the engine (which creates
// deliveries) and the dispatcher (which makes them): after an API change
// and after the dispatcher disabled one.
func (s *Server) SyncEndpoints(ctx context.Context) error {
	s.epMu.Lock()
	defer s.epMu.Unlock()
	eps, err := s.endpoints(ctx)
	if err != nil {
		return err
	}
	s.engine.SetEndpoints(eps)
	if s.Dispatcher != nil {
		s.Dispatcher.SetEndpoints(eps)
	}
	return nil
}

func (s *Server) dispatcher() (Dispatcher, error) {
	if s.Dispatcher == nil {
		return nil, bridge.Errorf(bridge.EUNAVAILABLE, "webhook delivery is not running")
	}
	return s.Dispatcher, nil
}

// endpoint finds one endpoint by id.
func (s *Server) endpoint(ctx context.Context, id string) (bridge.Endpoint, error) {
	eps, err := s.endpoints(ctx)
	if err != nil {
		return bridge.Endpoint{}, err
	}
	for _, ep := range eps {
		if ep.ID == id {
			return ep, nil
		}
	}
	return bridge.Endpoint{}, &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no webhook endpoint with id " + id}
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
	eps, err := s.endpoints(c.UserContext())
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
	ep, err := s.endpoint(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(endpointJSON(ep))
}

// addressPolicy is the delivery policy of the running dispatcher (the
// config's delivery.allow_*), or the default one without a dispatcher.
func (s *Server) addressPolicy() bridge.AddressPolicy {
	if d, ok := s.Dispatcher.(interface{ AddressPolicy() bridge.AddressPolicy }); ok {
		return d.AddressPolicy()
	}
	return bridge.DefaultAddressPolicy()
}

// checkWebhookSecurity refuses what validate cannot know alone: a URL the
// delivery policy would refuse at every attempt, and a published secret.
func (s *Server) checkWebhookSecurity(url, secret string) error {
	if err := bridge.CheckWebhookAddress("url", url, s.addressPolicy()); err != nil {
		return err
	}
	return bridge.CheckPublishedWebhookSecret("secret", secret)
}

var reEndpointID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// createWebhook subscribes an endpoint. Without a secret one is generated
// and shown in this response only.
func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req webhookRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	generated := req.Secret == ""
	if err := req.validate(); err != nil {
		return err
	}
	if err := s.checkWebhookSecurity(req.URL, req.Secret); err != nil {
		return err
	}
	if slices.ContainsFunc(s.ConfigEndpoints, func(ep bridge.Endpoint) bool { return ep.ID == req.ID }) {
		return &bridge.Error{Code: bridge.ECONFLICT, Field: "id", Message: "endpoint " + req.ID + " is defined in the config file"}
	}
	ep := bridge.Endpoint{ID: req.ID, URL: req.URL, Secret: req.Secret, PreviousSecret: req.PreviousSecret, Events: req.Events,
		Source: "api", CreatedAt: time.Now().UTC()}
	if ep.Events == nil {
		ep.Events = []string{}
	}
	ctx := c.UserContext()
	if err := s.store.CreateEndpoint(ctx, ep); err != nil {
		var be *bridge.Error
		if errors.As(err, &be) && be.Code == bridge.EINVALID && be.Field == "id" {
			return &bridge.Error{Code: bridge.ECONFLICT, Field: "id", Message: be.Message}
		}
		return err
	}
	if err := s.SyncEndpoints(ctx); err != nil {
		return err
	}
	body := endpointJSON(ep)
	if generated {
		body["secret"] = ep.Secret // shown once
	}
	c.Set(fiber.HeaderLocation, "/v1/webhooks/"+ep.ID)
	return c.Status(fiber.StatusCreated).JSON(body)
}

type webhookRequest struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events"`
	// PreviousSecret keeps a secret the receivers still hold valid while
	// they move to Secret: requests carry a signature for each.
	PreviousSecret string `json:"previous_secret"`
}

// validate checks the body and fills in a generated id and secret.
func (r *webhookRequest) validate() error {
	if r.ID == "" {
		r.ID = bridge.NewID("ep_")
	} else if !reEndpointID.MatchString(r.ID) {
		return bridge.FieldError("id", "must be 1 to 64 of A-Z a-z 0-9 _ . -")
	}
	if err := bridge.CheckWebhookURL("url", r.URL); err != nil {
		return err
	}
	if r.Secret == "" {
		r.Secret = bridge.NewWebhookSecret()
	} else if _, err := bridge.WebhookSecretKey(r.Secret); err != nil {
		return bridge.FieldError("secret", "%v (omit it to have one generated)", err)
	}
	if err := checkPreviousSecret(r.PreviousSecret, r.Secret); err != nil {
		return err
	}
	return checkEventFilters(r.Events)
}

func checkPreviousSecret(previous, secret string) error {
	if previous == "" {
		return nil
	}
	if _, err := bridge.WebhookSecretKey(previous); err != nil {
		return bridge.FieldError("previous_secret", "%v", err)
	}
	if previous == secret {
		return bridge.FieldError("previous_secret", "is the same as secret")
	}
	return nil
}

func checkEventFilters(events []string) error {
	if len(events) > 64 {
		return bridge.FieldError("events", "must hold at most 64 filters")
	}
	for _, f := range events {
		if err := bridge.CheckValue("events", f); err != nil {
			return err
		}
		if !bridge.ValidEventFilter(f) {
			return bridge.FieldError("events", "%q matches no event type (e.g. call.*, recording.ready, agent.state)", f)
		}
	}
	return nil
}

// webhookUpdate changes an API endpoint; omitted fields keep their value.
type webhookUpdate struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	// Secret replaces the secret ("" generates one, shown in this answer
	// only). Unless PreviousSecret is given too, the replaced secret
	// becomes the previous one: a rotation starts, and requests carry both
	// signatures until PreviousSecret is set to "".
	Secret         *string `json:"secret"`
	PreviousSecret *string `json:"previous_secret"`
}

// endpointUpdater is the store's UpdateEndpoint (*store.DB has it).
type endpointUpdater interface {
	UpdateEndpoint(ctx context.Context, ep bridge.Endpoint) error
}

// updateWebhook changes an endpoint made over the API: its URL, filters
// or secrets (rotation). The id, state and delivery history stay.
func (s *Server) updateWebhook(c *fiber.Ctx) error {
	var req webhookUpdate
	if err := decode(c, &req, true); err != nil {
		return err
	}
	id, ctx := c.Params("id"), c.UserContext()
	if slices.ContainsFunc(s.ConfigEndpoints, func(ep bridge.Endpoint) bool { return ep.ID == id }) {
		return bridge.Errorf(bridge.ECONFLICT, "endpoint %s is defined in the config file: change it there (webhooks[].secret, previous_secret)", id)
	}
	// The store's Endpoint row, previous secret included (s.endpoint
	// merges in the config's endpoints, which are not changed here).
	ep, err := s.endpoint(ctx, id)
	if err != nil {
		return err
	}
	updater, ok := s.store.(endpointUpdater)
	if !ok {
		return bridge.Errorf(bridge.EINTERNAL, "this store cannot change webhook endpoints")
	}
	if req.URL != nil {
		if err := bridge.CheckWebhookURL("url", *req.URL); err != nil {
			return err
		}
		ep.URL = *req.URL
	}
	if req.Events != nil {
		if err := checkEventFilters(*req.Events); err != nil {
			return err
		}
		ep.Events = *req.Events
		if ep.Events == nil {
			ep.Events = []string{}
		}
	}
	generated := false
	if req.Secret != nil {
		secret := *req.Secret
		if secret == "" {
			secret, generated = bridge.NewWebhookSecret(), true
		} else if _, err := bridge.WebhookSecretKey(secret); err != nil {
			return bridge.FieldError("secret", "%v (send \"\" to have one generated)", err)
		}
		if secret != ep.Secret {
			ep.PreviousSecret, ep.Secret = ep.Secret, secret
		}
	}
	if req.PreviousSecret != nil {
		ep.PreviousSecret = *req.PreviousSecret
	}
	if err := checkPreviousSecret(ep.PreviousSecret, ep.Secret); err != nil {
		return err
	}
	if err := bridge.CheckWebhookAddress("url", ep.URL, s.addressPolicy()); err != nil {
		return err
	}
	if req.Secret != nil {
		if err := bridge.CheckPublishedWebhookSecret("secret", ep.Secret); err != nil {
			return err
		}
	}
	if err := updater.UpdateEndpoint(ctx, ep); err != nil {
		return err
	}
	if err := s.SyncEndpoints(ctx); err != nil {
		return err
	}
	body := endpointJSON(ep)
	if generated {
		body["secret"] = ep.Secret // shown once
	}
	return c.JSON(body)
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	id := c.Params("id")
	ctx := c.UserContext()
	if slices.ContainsFunc(s.ConfigEndpoints, func(ep bridge.Endpoint) bool { return ep.ID == id }) {
		return bridge.Errorf(bridge.ECONFLICT, "endpoint %s is defined in the config file: remove it there", id)
	}
	if err := s.store.DeleteEndpoint(ctx, id); err != nil {
		return err
	}
	if err := s.SyncEndpoints(ctx); err != nil {
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
	ep, err := s.endpoint(ctx, c.Params("id"))
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
	ep, err := s.endpoint(ctx, c.Params("id"))
	if err != nil {
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
	ep, err := s.endpoint(ctx, c.Params("id"))
	if err != nil {
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
	ids, err := s.replayTargets(ctx, "endpoints", req.Endpoints, func(ep bridge.Endpoint) bool { return ep.Wants(rec.Type) })
	if err != nil {
		return err
	}
	ds, err := s.store.Replay(ctx, rec.ID, ids)
	if err != nil {
		return err
	}
	// An endpoint drops pushed deliveries older than what it has seen, so
	// an old event is picked up by re-reading the endpoint's backlog.
	d.Notify(ds)
	for _, id := range ids {
		d.Reload(id)
	}
	return accepted(c, fiber.Map{"event_id": rec.ID, "endpoints": ids})
}

// replayRange sends again every delivered or dead event of [from, to).
func (s *Server) replayRange(c *fiber.Ctx) error {
	var req struct {
		From     string `json:"from"`
		To       string `json:"to"`
		Endpoint string `json:"endpoint"`
	}
	if err := decode(c, &req, true); err != nil {
		return err
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
	n, err := s.store.ReplayRange(ctx, from, to, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		d.Reload(id)
	}
	return accepted(c, fiber.Map{"replayed": n, "endpoints": ids})
}

// replayTargets checks named endpoints, or picks the enabled ones that
// want the replay.
func (s *Server) replayTargets(ctx context.Context, field string, named []string, want func(bridge.Endpoint) bool) ([]string, error) {
	eps, err := s.endpoints(ctx)
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
