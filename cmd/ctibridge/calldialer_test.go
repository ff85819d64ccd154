package main

import (
	"context"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
)

// placeRecorder is a call service that keeps who asked to place a call.
type placeRecorder struct {
	bridge.CallService
	asked []bridge.Principal
}

func (p *placeRecorder) Place(ctx context.Context, req bridge.PlaceCall) (bridge.PlacedCall, error) {
	pr, _ := bridge.PrincipalFrom(ctx)
	p.asked = append(p.asked, pr)
	return bridge.PlacedCall{ID: req.ConversationID}, nil
}

// Bitrix24's click-to-call places the call as that agent's own and, when
// the connector belongs to a tenant, as that tenant's: the call service
// then refuses another tenant's agent or number like for a tenant key.
func TestBitrix24DialerCarriesAgentAndTenant(t *testing.T) {
	rec := &placeRecorder{}
	d := callDialer{calls: rec, tenant: "acme"}
	if _, err := d.Place(t.Context(), bitrix24.PlaceRequest{ConversationID: "conv_1", Agent: "101", To: "+15555550000"}); err != nil {
		t.Fatal(err)
	}
	if len(rec.asked) != 1 || rec.asked[0].Agent != "101" || rec.asked[0].Tenant != "acme" {
		t.Fatalf("placed as %+v, want agent 101 of tenant acme", rec.asked)
	}
}
