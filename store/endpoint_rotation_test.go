package store

import (
	"errors"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// An endpoint's previous secret (a rotation under way) is stored with it,
// survives a reopen, and is changed or dropped by UpdateEndpoint.
func TestEndpointPreviousSecret(t *testing.T) {
	ctx := t.Context()
	db, path := openTest(t)
	oldSecret, newSecret := bridge.NewWebhookSecret(), bridge.NewWebhookSecret()
	ep := bridge.Endpoint{ID: "api1", URL: "https://crm.example.com/hook", Secret: newSecret, PreviousSecret: oldSecret, Events: []string{"call.*"}}
	if err := db.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path, Options{})
	got, err := db.Endpoint(ctx, "api1")
	if err != nil || got.Secret != newSecret || got.PreviousSecret != oldSecret {
		t.Fatalf("after reopen: %v, secret kept %v, previous kept %v", err, got.Secret == newSecret, got.PreviousSecret == oldSecret)
	}

	// The rotation ends; the URL and filters change with it.
	ep.PreviousSecret, ep.URL, ep.Events = "", "https://crm.example.com/v2/hook", []string{"recording.ready"}
	if err := db.UpdateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	eps, err := db.ListEndpoints(ctx)
	if err != nil || len(eps) != 1 || eps[0].PreviousSecret != "" || eps[0].URL != ep.URL || eps[0].Events[0] != "recording.ready" || !eps[0].CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("after update: %+v, %v", eps, err)
	}

	for _, tc := range []struct {
		ep    bridge.Endpoint
		field string
	}{
		{bridge.Endpoint{ID: "api1", URL: ep.URL, Secret: newSecret, PreviousSecret: newSecret}, "previous_secret"},
		{bridge.Endpoint{ID: "api1", URL: ep.URL, Secret: newSecret, PreviousSecret: "whsec_short"}, "previous_secret"},
		{bridge.Endpoint{ID: "api2", URL: ep.URL, Secret: newSecret}, "id"}, // not found
	} {
		err := db.UpdateEndpoint(ctx, tc.ep)
		var be *bridge.Error
		if !errors.As(err, &be) || be.Field != tc.field {
			t.Errorf("UpdateEndpoint(%s, previous %q): %v, want an error on %s", tc.ep.ID, tc.ep.PreviousSecret, err, tc.field)
		}
	}
	if err := db.CreateEndpoint(ctx, bridge.Endpoint{ID: "api3", URL: ep.URL, Secret: newSecret, PreviousSecret: newSecret}); err == nil {
		t.Error("created an endpoint whose previous secret is its secret")
	}

	// Deleting an endpoint deletes its previous secret: an endpoint created
	// again under the same id does not inherit it.
	ep.PreviousSecret = oldSecret
	if err := db.UpdateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteEndpoint(ctx, "api1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateEndpoint(ctx, bridge.Endpoint{ID: "api1", URL: ep.URL, Secret: newSecret}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Endpoint(ctx, "api1"); err != nil || got.PreviousSecret != "" {
		t.Fatalf("recreated endpoint: %v, previous secret inherited %v", err, got.PreviousSecret != "")
	}
}
