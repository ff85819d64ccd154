package main

import (
	"log/slog"
	"net/http"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
	"github.com/ctibridge/ctibridge/connectors/zammad"
)

// crmConnectors builds the configured CRM connectors into conns (by
// endpoint id) and returns their endpoints, which get deliveries like
// webhook endpoints. client is the dispatcher's (address policy enforced).
func crmConnectors(cfg config.Config, state bridge.ConnectorStateStore, client *http.Client, log *slog.Logger,
	conns map[string]bridge.Connector) ([]bridge.Endpoint, error) {
	var eps []bridge.Endpoint
	if b := cfg.Connectors.Bitrix24; b.Enabled() {
		c, err := bitrix24.New(bitrix24.Options{
			WebhookURL: b.WebhookURL, Users: b.Users, DefaultUser: b.DefaultUser, LineNumber: b.LineNumber,
			CRMCreate: b.CRMCreate, Show: b.Show, Client: client, State: state,
			Limiter: connectors.NewLimiter(b.Burst, b.Rate), Logger: log,
			// No recording URL yet: attachRecord is skipped, logged.
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
			Limiter: connectors.NewLimiter(z.Burst, z.Rate), Logger: log,
			// No Reject hook yet: a {"action":"reject"} answer is logged.
		})
		if err != nil {
			return nil, &config.Error{Key: "connectors.zammad.url", Reason: err.Error()}
		}
		conns[config.ZammadEndpointID] = c
		eps = append(eps, bridge.Endpoint{ID: config.ZammadEndpointID, URL: zammad.Redact(z.URL),
			Events: zammad.Events, Source: "config"})
		log.Info("CRM connector on", "connector", zammad.Name, "zammad", zammad.Redact(z.URL), "users", len(z.Users))
	}
	return eps, nil
}
