package esl

import (
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// A real FreeSWITCH capture's domain_name reaches the call model (the
// tenant rules' domain source), through the client's header filter.
func TestDomainReachesTheCallModel(t *testing.T) {
	tr := NewTranslator("")
	tracker := bridge.NewTracker(bridge.TrackerConfig{PBX: "pbx1", Tenants: bridge.Tenants{
		Rules: []bridge.TenantRule{{Source: bridge.TenantByDomain, Map: map[string]string{"127.0.0.1": "acme"}}}}})
	domains := 0
	for _, e := range sipEvents(t, "sip-blind-transfer-phone") {
		for _, ev := range tr.Translate(e) {
			if ev.Channel.Domain == "127.0.0.1" {
				domains++
			}
			tracker.Handle(ev)
		}
	}
	evs, _ := tracker.Drain()
	if domains == 0 || len(evs) == 0 {
		t.Fatalf("%d channel events with the domain, %d events", domains, len(evs))
	}
	for _, e := range evs {
		if e.Tenant != "acme" {
			t.Fatalf("%s of %s: tenant %q, want acme (from domain_name)", e.Type, e.ConversationID, e.Tenant)
		}
	}
}

// A tenant rule's variable (here the directory's callgroup) is kept by
// the header filter and copied into Channel.Vars when configured.
func TestTenantVariableReachesTheCallModel(t *testing.T) {
	tr := NewTranslator("")
	tr.Vars = []string{"callgroup"}
	want := wantedHeaders.with("variable_callgroup")
	tracker := bridge.NewTracker(bridge.TrackerConfig{PBX: "pbx1", Tenants: bridge.Tenants{
		Rules: []bridge.TenantRule{{Source: bridge.TenantByVariable, Variable: "callgroup"}}}})
	for _, f := range sipFrames(t, "sip-blind-transfer-phone") {
		if f.ContentType() != typeEventPlain {
			continue
		}
		e, err := parsePlainWanted(f.Body, want)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range tr.Translate(e) {
			tracker.Handle(ev)
		}
	}
	evs, _ := tracker.Drain()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, e := range evs {
		if e.Tenant != "techsupport" {
			t.Fatalf("%s of %s: tenant %q, want techsupport (from callgroup)", e.Type, e.ConversationID, e.Tenant)
		}
	}
}
