package natssink_test

import (
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	natssink "github.com/ctibridge/ctibridge/sinks/nats"
)

// An event's tenant names its subject's tenant token; the operator's
// events (no tenant) are DefaultTenant's.
func TestTenantOfEvent(t *testing.T) {
	for tenant, want := range map[string]string{"acme": "acme", "": natssink.DefaultTenant} {
		rec, err := bridge.NewRecord(bridge.Event{ID: "evt_1", Type: bridge.EventCallRinging, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if got := natssink.TenantOf(rec); got != want {
			t.Errorf("tenant %q: TenantOf = %q, want %q", tenant, got, want)
		}
	}
}
