package main

import (
	"fmt"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
)

// tenantEndpoints gives the connectors' endpoints the tenant
// tenants.connectors names (the config's webhooks carry their own); an
// id that names no endpoint is a mistake, not a no-op.
func tenantEndpoints(cfg config.Config, eps []bridge.Endpoint) ([]bridge.Endpoint, error) {
	for id, tn := range cfg.Tenants.Connectors {
		found := false
		for i := range eps {
			if eps[i].ID == id {
				eps[i].Tenant, found = tn, true
			}
		}
		if !found {
			return nil, fmt.Errorf("config: tenants.connectors.%s: no connector, sink or webhook has this id", id)
		}
	}
	return eps, nil
}
