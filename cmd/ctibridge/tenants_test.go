package main

import (
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
)

// tenants.connectors gives a connector's endpoint its tenant; an id that
// names none stops the start.
func TestTenantEndpoints(t *testing.T) {
	var cfg config.Config
	cfg.Tenants.Connectors = map[string]string{"crm-bitrix24": "acme"}
	eps, err := tenantEndpoints(cfg, []bridge.Endpoint{{ID: "cfg-1"}, {ID: "crm-bitrix24"}})
	if err != nil || eps[0].Tenant != "" || eps[1].Tenant != "acme" {
		t.Fatalf("%+v %v", eps, err)
	}
	cfg.Tenants.Connectors = map[string]string{"crm-zammad": "acme"}
	if _, err := tenantEndpoints(cfg, []bridge.Endpoint{{ID: "cfg-1"}}); err == nil || !strings.Contains(err.Error(), "tenants.connectors.crm-zammad") {
		t.Fatalf("unknown id: %v", err)
	}
}
