package http

import (
	"context"

	"github.com/ctibridge/ctibridge/bridge"
)

// recordTenant is the tenant a committed event belongs to.
func recordTenant(r bridge.Record) string { return bridge.RecordTenant(r) }

// replayTenant refuses to send an event of tenant to another tenant's
// endpoint, even when an operator names it.
func (s *Server) replayTenant(ctx context.Context, ids []string, tenant string) error {
	for _, id := range ids {
		ep, err := s.Endpoints.Endpoint(ctx, id)
		if err != nil {
			return err
		}
		if ep.Tenant != "" && ep.Tenant != tenant {
			return &bridge.Error{Code: bridge.EINVALID, Field: "endpoints", Message: "endpoint " + id + " belongs to tenant " + ep.Tenant + ", not to the event's"}
		}
	}
	return nil
}
