package bridge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// EndpointService owns the webhook endpoints: the fixed ones (the config
// file's and the connectors') and those created over the API. It keeps
// the engine (which creates deliveries) and the dispatcher (which makes
// them) on the same list: every change, and a 410 Gone that disabled one,
// pushes the whole list to both.
type EndpointService interface {
	Endpoints(ctx context.Context) ([]Endpoint, error)
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// Create subscribes an endpoint; a missing id and secret are
	// generated (the secret is returned in this answer only).
	Create(ctx context.Context, req EndpointRequest) (Endpoint, error)
	Update(ctx context.Context, id string, upd EndpointUpdate) (ep Endpoint, generatedSecret bool, err error)
	Delete(ctx context.Context, id string) error
	// Disabled is told that an endpoint was disabled (it answered 410);
	// the list is pushed again.
	Disabled(ctx context.Context, id string) error
}

// EndpointStore keeps the endpoints made over the API and every
// endpoint's disabled state (*store.DB).
type EndpointStore interface {
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	CreateEndpoint(ctx context.Context, ep Endpoint) error
	UpdateEndpoint(ctx context.Context, ep Endpoint) error
	DeleteEndpoint(ctx context.Context, id string) error
	DisabledEndpoints(ctx context.Context) (map[string]string, error)
	EnableEndpoint(ctx context.Context, id string) error
}

// EndpointSink takes the endpoint list (the engine, the dispatcher).
type EndpointSink interface {
	SetEndpoints(eps []Endpoint)
}

// EndpointRequest is an endpoint asked for over the API.
type EndpointRequest struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events"`
	// PreviousSecret keeps a secret the receivers still hold valid while
	// they move to Secret: requests carry a signature for each.
	PreviousSecret string `json:"previous_secret"`
	// Tenant: only this tenant's events ("" every tenant's). A tenant
	// key's endpoint is always of its own tenant.
	Tenant string `json:"tenant"`
}

// EndpointUpdate changes an API endpoint; nil fields keep their value.
type EndpointUpdate struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	// Secret replaces the secret ("" generates one, shown in this answer
	// only). Unless PreviousSecret is given too, the replaced secret
	// becomes the previous one: a rotation starts, and requests carry both
	// signatures until PreviousSecret is set to "".
	Secret         *string `json:"secret"`
	PreviousSecret *string `json:"previous_secret"`
	// Enabled true turns an endpoint a 410 Gone disabled back on: events
	// from then on are delivered (those committed while it was disabled
	// have no delivery to it; a range replay naming it with missed, or a
	// replay of each event naming it, makes one).
	// Only true is taken.
	Enabled *bool `json:"enabled"`
}

// Endpoints is the EndpointService.
type Endpoints struct {
	store  EndpointStore
	fixed  []Endpoint
	policy AddressPolicy
	// tenants are the config's rules: an operator may only name a tenant
	// they can give a call or agent.
	tenants Tenants
	now     func() time.Time

	mu    sync.Mutex // serialises changes and pushes
	sinks []EndpointSink
}

// NewEndpoints returns the EndpointService over store. fixed are the
// config file's and the connectors' endpoints (Source "config"): the API
// neither changes nor deletes them. policy is the delivery address policy
// a new URL must pass; tenants the config's tenant rules, which name the
// tenants an endpoint may be made for.
func NewEndpoints(store EndpointStore, fixed []Endpoint, policy AddressPolicy, tenants Tenants) *Endpoints {
	return &Endpoints{store: store, fixed: fixed, policy: policy, tenants: tenants, now: time.Now}
}

// Load reads the list as it starts: a 410 disables an endpoint for good,
// but the config file is the admin's declared intent, so its endpoints
// start enabled again (onReenable is told), while API ones stay disabled
// until re-enabled.
func (s *Endpoints) Load(ctx context.Context, onReenable func(id, reason string)) ([]Endpoint, error) {
	disabled, err := s.store.DisabledEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, ep := range s.fixed {
		if reason, ok := disabled[ep.ID]; ok {
			if onReenable != nil {
				onReenable(ep.ID, reason)
			}
			if err := s.store.EnableEndpoint(ctx, ep.ID); err != nil {
				return nil, err
			}
		}
	}
	return s.all(ctx)
}

// Push sends the list to sinks now and after every change.
func (s *Endpoints) Push(ctx context.Context, sinks ...EndpointSink) error {
	s.mu.Lock()
	s.sinks = append(s.sinks, sinks...)
	s.mu.Unlock()
	return s.sync(ctx)
}

func (s *Endpoints) sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps, err := s.all(ctx)
	if err != nil {
		return err
	}
	for _, sink := range s.sinks {
		sink.SetEndpoints(eps)
	}
	return nil
}

// Endpoints are the fixed endpoints then the API's, with the disabled
// state the store keeps: those of ctx's tenant (all for the operator).
func (s *Endpoints) Endpoints(ctx context.Context) ([]Endpoint, error) {
	eps, err := s.all(ctx)
	if err != nil || TenantOf(ctx) == "" {
		return eps, err
	}
	return slices.DeleteFunc(eps, func(ep Endpoint) bool { return !SeesTenant(ctx, ep.Tenant) }), nil
}

// all are every tenant's endpoints (what the engine and dispatcher get).
func (s *Endpoints) all(ctx context.Context) ([]Endpoint, error) {
	runtime, err := s.store.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	disabled, err := s.store.DisabledEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	eps := make([]Endpoint, 0, len(s.fixed)+len(runtime))
	for _, ep := range s.fixed {
		if reason, ok := disabled[ep.ID]; ok {
			ep.Disabled, ep.DisabledReason = true, reason
		}
		eps = append(eps, ep)
	}
	return append(eps, runtime...), nil
}

// Endpoint finds one endpoint by id.
func (s *Endpoints) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	eps, err := s.Endpoints(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	for _, ep := range eps {
		if ep.ID == id {
			return ep, nil
		}
	}
	return Endpoint{}, &Error{Code: ENOTFOUND, Field: "id", Message: "no webhook endpoint with id " + id}
}

func (s *Endpoints) isFixed(id string) bool {
	return slices.ContainsFunc(s.fixed, func(ep Endpoint) bool { return ep.ID == id })
}

// Create implements EndpointService.
func (s *Endpoints) Create(ctx context.Context, req EndpointRequest) (Endpoint, error) {
	ep := Endpoint{ID: req.ID, URL: req.URL, Secret: req.Secret, PreviousSecret: req.PreviousSecret, Events: req.Events,
		Source: "api", CreatedAt: s.now().UTC(), Tenant: req.Tenant}
	if err := CheckTenant("tenant", req.Tenant); err != nil {
		return Endpoint{}, err
	}
	if TenantOf(ctx) == "" {
		if err := s.tenants.CheckKnownTenant("tenant", req.Tenant); err != nil {
			return Endpoint{}, err
		}
	}
	if tn := TenantOf(ctx); tn != "" {
		if req.Tenant != "" && req.Tenant != tn {
			return Endpoint{}, &Error{Code: EFORBIDDEN, Field: "tenant", Message: "a tenant key creates endpoints of its own tenant (" + tn + ") only"}
		}
		ep.Tenant = tn
	}
	if ep.ID == "" {
		ep.ID = NewID("ep_")
	}
	if ep.Secret == "" {
		ep.Secret = NewWebhookSecret()
	} else if _, err := WebhookSecretKey(ep.Secret); err != nil {
		return Endpoint{}, FieldError("secret", "%v (omit it to have one generated)", err)
	}
	if ep.Events == nil {
		ep.Events = []string{}
	}
	if err := ep.Validate(); err != nil {
		return Endpoint{}, err
	}
	if err := CheckWebhookAddress("url", ep.URL, s.policy.For(ep)); err != nil {
		return Endpoint{}, err
	}
	if err := CheckPublishedWebhookSecret("secret", ep.Secret); err != nil {
		return Endpoint{}, err
	}
	if s.isFixed(ep.ID) {
		if TenantOf(ctx) != "" { // the store's words: a tenant learns nothing of the config
			return Endpoint{}, &Error{Code: ECONFLICT, Field: "id", Message: "a webhook endpoint with id " + ep.ID + " exists"}
		}
		return Endpoint{}, &Error{Code: ECONFLICT, Field: "id", Message: "endpoint " + ep.ID + " is defined in the config file"}
	}
	if err := s.store.CreateEndpoint(ctx, ep); err != nil {
		if e, ok := err.(*Error); ok && e.Code == EINVALID && e.Field == "id" {
			return Endpoint{}, &Error{Code: ECONFLICT, Field: "id", Message: e.Message}
		}
		return Endpoint{}, err
	}
	return ep, s.sync(ctx)
}

// Update implements EndpointService: the URL, the filters or the secrets
// (rotation) of an API endpoint; its id, state and history stay.
func (s *Endpoints) Update(ctx context.Context, id string, upd EndpointUpdate) (Endpoint, bool, error) {
	ep, err := s.Endpoint(ctx, id) // first: another tenant's is not found, whatever it is
	if err != nil {
		return Endpoint{}, false, err
	}
	if s.isFixed(id) {
		return Endpoint{}, false, Errorf(ECONFLICT, "endpoint %s is defined in the config file: change it there (webhooks[].secret, previous_secret)", id)
	}
	if upd.URL != nil {
		ep.URL = *upd.URL
	}
	if upd.Events != nil {
		ep.Events = *upd.Events
		if ep.Events == nil {
			ep.Events = []string{}
		}
	}
	generated := false
	if upd.Secret != nil {
		secret := *upd.Secret
		if secret == "" {
			secret, generated = NewWebhookSecret(), true
		} else if _, err := WebhookSecretKey(secret); err != nil {
			return Endpoint{}, false, FieldError("secret", "%v (send \"\" to have one generated)", err)
		}
		if secret != ep.Secret {
			ep.PreviousSecret, ep.Secret = ep.Secret, secret
		}
	}
	if upd.PreviousSecret != nil {
		ep.PreviousSecret = *upd.PreviousSecret
	}
	if upd.Enabled != nil && !*upd.Enabled {
		return Endpoint{}, false, FieldError("enabled", "can only be true, to turn on an endpoint a 410 Gone disabled; DELETE an endpoint you no longer want")
	}
	if err := ep.Validate(); err != nil {
		return Endpoint{}, false, err
	}
	if err := CheckWebhookAddress("url", ep.URL, s.policy.For(ep)); err != nil {
		return Endpoint{}, false, err
	}
	if upd.Secret != nil {
		if err := CheckPublishedWebhookSecret("secret", ep.Secret); err != nil {
			return Endpoint{}, false, err
		}
	}
	if err := s.store.UpdateEndpoint(ctx, ep); err != nil {
		return Endpoint{}, false, err
	}
	if upd.Enabled != nil && ep.Disabled {
		if err := s.store.EnableEndpoint(ctx, id); err != nil {
			return Endpoint{}, false, err
		}
		ep.Disabled, ep.DisabledReason = false, ""
	}
	return ep, generated, s.sync(ctx)
}

// Delete implements EndpointService.
func (s *Endpoints) Delete(ctx context.Context, id string) error {
	if _, err := s.Endpoint(ctx, id); err != nil {
		return err // another tenant's is not found
	}
	if s.isFixed(id) {
		return Errorf(ECONFLICT, "endpoint %s is defined in the config file: remove it there", id)
	}
	if err := s.store.DeleteEndpoint(ctx, id); err != nil {
		return err
	}
	return s.sync(ctx)
}

// Disabled implements EndpointService.
func (s *Endpoints) Disabled(ctx context.Context, id string) error {
	if err := s.sync(ctx); err != nil {
		return fmt.Errorf("endpoint %s disabled, but the list was not pushed: %w", id, err)
	}
	return nil
}
