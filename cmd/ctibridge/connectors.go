package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
	"github.com/ctibridge/ctibridge/connectors/hubspot"
	"github.com/ctibridge/ctibridge/connectors/template"
	"github.com/ctibridge/ctibridge/connectors/zammad"
	apihttp "github.com/ctibridge/ctibridge/http"
)

// crmConnectors builds the configured CRM connectors into conns (by
// endpoint id) and returns their endpoints, which get deliveries like
// webhook endpoints. client is the dispatcher's (address policy enforced).
//
// reject hangs a call up when a CRM refuses it (Zammad's answer to newCall).
func crmConnectors(cfg config.Config, state bridge.ConnectorStateStore, client *http.Client, log *slog.Logger,
	conns map[string]bridge.Connector, reject func(ctx context.Context, conversationID string) error) ([]bridge.Endpoint, error) {
	var eps []bridge.Endpoint
	if b := cfg.Connectors.Bitrix24; b.Enabled() {
		c, err := bitrix24.New(bitrix24.Options{
			WebhookURL: b.WebhookURL, Users: b.Users, DefaultUser: b.DefaultUser, LineNumber: b.LineNumber,
			CRMCreate: b.CRMCreate, Show: b.Show, Client: client, State: state,
			Limiter: connectors.NewLimiter(b.Burst, b.Rate), Logger: log,
			RecordingURL: recordingLinks(cfg).URL, RecordingsDir: cfg.HTTP.RecordingsDir,
		})
		if err != nil {
			return nil, &config.Error{Key: "connectors.bitrix24.webhook_url", Reason: err.Error()}
		}
		conns[config.Bitrix24EndpointID] = c
		eps = append(eps, bridge.Endpoint{ID: config.Bitrix24EndpointID, URL: bitrix24.Redact(b.WebhookURL),
			Events: bitrix24.Events, Source: "config"})
		log.Info("CRM connector on", "connector", bitrix24.Name, "portal", bitrix24.Redact(b.WebhookURL), "users", len(b.Users))
	}
	if z := cfg.Connectors.Zammad; z.Enabled() {
		c, err := zammad.New(zammad.Options{
			URL: z.URL, Users: z.Users, Inbound: z.Inbound, Outbound: z.Outbound, Client: client, State: state,
			Limiter: connectors.NewLimiter(z.Burst, z.Rate), Logger: log, Reject: reject,
		})
		if err != nil {
			return nil, &config.Error{Key: "connectors.zammad.url", Reason: err.Error()}
		}
		conns[config.ZammadEndpointID] = c
		eps = append(eps, bridge.Endpoint{ID: config.ZammadEndpointID, URL: zammad.Redact(z.URL),
			Events: zammad.Events, Source: "config"})
		log.Info("CRM connector on", "connector", zammad.Name, "zammad", zammad.Redact(z.URL), "users", len(z.Users))
	}
	if h := cfg.Connectors.HubSpot; h.Enabled() {
		c, err := hubspot.New(hubspot.Options{
			Token: h.Token, APIURL: h.APIURL, Owners: h.Owners, DefaultOwner: h.DefaultOwner,
			AssociateContacts: h.AssociateContacts, SearchLag: h.SearchLag, Client: client, State: state,
			Limiter: connectors.NewLimiter(h.Burst, h.Rate), Logger: log, RecordingURL: recordingLinks(cfg).URL,
		})
		if err != nil {
			return nil, &config.Error{Key: "connectors.hubspot", Reason: err.Error()}
		}
		conns[config.HubSpotEndpointID] = c
		eps = append(eps, bridge.Endpoint{ID: config.HubSpotEndpointID, URL: h.APIURL, Events: hubspot.Events, Source: "config"})
		log.Info("CRM connector on", "connector", hubspot.Name, "api", h.APIURL, "owners", len(h.Owners))
	}
	for _, tc := range cfg.Connectors.Templates {
		key := "connectors.templates(" + tc.Name + ")"
		tp, err := compileTemplate(tc.Name, tc.Source, cfg.Connectors.TemplateSecrets)
		if err != nil {
			return nil, &config.Error{Key: key, Reason: err.Error()}
		}
		tokens, _ := state.(connectors.TokenStore) // the store keeps an OAuth2 token across restarts
		c, err := template.New(template.Options{Template: tp, Client: client, State: state, Tokens: tokens, Logger: log})
		if err != nil {
			return nil, &config.Error{Key: key, Reason: err.Error()}
		}
		id := config.TemplateEndpointID(tc.Name)
		conns[id] = c
		eps = append(eps, bridge.Endpoint{ID: id, URL: tp.Target(), Events: tp.Spec.On, Source: "config"})
		log.Info("CRM connector on", "connector", id, "crm", tp.Target(), "auth", tp.Spec.Auth.Kind)
	}
	return eps, nil
}

// hangUpRefused hangs up call id (a CRM refused it) through the call
// service, as the API's hangup does: it is reported hangup_by api. A call
// that has ended is left alone.
func hangUpRefused(ctx context.Context, calls bridge.CallService, id string) error {
	if calls == nil {
		return errors.New("no PBX to hang the call up on")
	}
	if err := calls.Hangup(ctx, id); err != nil && bridge.ErrorCode(err) != bridge.ECONFLICT && bridge.ErrorCode(err) != bridge.ENOTFOUND {
		return err
	}
	return nil
}

// recordingLinks signs the recording links CRMs fetch recordings from (GET
// /v1/recordings/<token>); nil, which gives no links, unless
// http.public_url, http.recordings_dir and recordings.link_secret are set.
// The key comes from the secret, so links outlive a restart.
func recordingLinks(cfg config.Config) *bridge.RecordingLinks {
	if !cfg.LinksEnabled() {
		return nil
	}
	l, err := bridge.NewRecordingLinks(cfg.Recordings.LinkSecret, cfg.HTTP.PublicURL, cfg.Recordings.LinkTTL)
	if err != nil { // config.Validate checked the same values
		return nil
	}
	return l
}

// crmHandlers gives srv what CRMs call in on: the recording links, and the
// Bitrix24 event handler (click-to-call) at /crm/bitrix24/events when
// connectors.bitrix24.application_token is set, dialling through calls.
func crmHandlers(cfg config.Config, srv *apihttp.Server, conns map[string]bridge.Connector, calls bridge.CallService, log *slog.Logger) error {
	srv.RecordingLinks = recordingLinks(cfg)
	b24, ok := conns[config.Bitrix24EndpointID].(*bitrix24.Connector)
	if !ok || cfg.Connectors.Bitrix24.ApplicationToken == "" {
		return nil
	}
	h, err := b24.ClickToCall(bitrix24.ClickToCallOptions{ApplicationToken: cfg.Connectors.Bitrix24.ApplicationToken, Dialer: callDialer{calls: calls, tenant: cfg.Tenants.Connectors[config.Bitrix24EndpointID]}})
	if err != nil {
		return &config.Error{Key: "connectors.bitrix24.application_token", Reason: err.Error()}
	}
	if err := srv.Mount(bitrix24.EventsPath, h); err != nil {
		return err
	}
	log.Info("Bitrix24 click-to-call handler on", "path", bitrix24.EventsPath, "public_url", cfg.HTTP.PublicURL)
	return nil
}

// callDialer places Bitrix24's click-to-calls through the call service,
// as the agent's own: the principal may place calls for that extension
// only, and, when the connector belongs to a tenant
// (tenants.connectors.crm-bitrix24), for that tenant's agents only.
type callDialer struct {
	calls  bridge.CallService
	tenant string
}

func (d callDialer) Place(ctx context.Context, req bitrix24.PlaceRequest) (string, error) {
	if d.calls == nil {
		return "", &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "no PBX to place the call on"}
	}
	ctx = bridge.WithPrincipal(ctx, bridge.Principal{KeyID: config.Bitrix24EndpointID, Scopes: []string{"control"}, Agent: req.Agent,
		Tenant: d.tenant})
	p, err := d.calls.Place(ctx, bridge.PlaceCall{ConversationID: req.ConversationID, Agent: req.Agent, To: req.To})
	return p.ID, err
}
