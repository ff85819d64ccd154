package bridge

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestTenantRulesFirstMatchWins(t *testing.T) {
	ts := Tenants{Rules: []TenantRule{
		{Source: TenantByVariable, Variable: "CTI_TENANT"},
		{Source: TenantByAccountCode, Map: map[string]string{"7001": "acme"}},
		{Source: TenantByContextPrefix, Map: map[string]string{"acme-": "acme", "acme-east-": "east", "globex-": "globex"}},
		{Source: TenantByDomain},
	}}
	for _, c := range []struct {
		name string
		ch   Channel
		want string
		ok   bool
	}{
		{"variable first", Channel{Vars: map[string]string{"CTI_TENANT": "initech"}, AccountCode: "7001"}, "initech", true},
		{"a variable that is no tenant name is no match", Channel{Vars: map[string]string{"CTI_TENANT": "Bad Name"}, AccountCode: "7001"}, "acme", true},
		{"mapped accountcode", Channel{AccountCode: "7001", Context: "globex-in"}, "acme", true},
		{"unmapped accountcode falls through", Channel{AccountCode: "9999", Context: "globex-in"}, "globex", true},
		{"longest prefix", Channel{Context: "acme-east-in"}, "east", true},
		{"home context of a local channel", Channel{Home: "acme-agents"}, "acme", true},
		{"domain as the tenant", Channel{Domain: "umbrella"}, "umbrella", true},
		{"a dotted domain is no tenant name", Channel{Domain: "umbrella.example.com"}, "", false},
		{"nothing", Channel{Context: "inbound"}, "", false},
	} {
		if got, ok := ts.Of(c.ch); got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func tenantTracker() *Tracker {
	return NewTracker(TrackerConfig{PBX: "pbx1", AgentPattern: regexp.MustCompile(`^[0-9]{3}$`),
		InboundContexts: []string{"from-trunk"}, Tenants: Tenants{Default: "house",
			Rules: []TenantRule{{Source: TenantByVariable, Variable: "CTI_TENANT"},
				{Source: TenantByContextPrefix, Map: map[string]string{"acme-": "acme"}}},
			Agents: map[string]string{"202": "acme"}}})
}

// A variable the dialplan sets before the first event decides; without
// any rule matching, the default; the tenant never changes afterwards.
func TestTrackerTenantOnEveryEvent(t *testing.T) {
	for _, c := range []struct {
		name    string
		context string
		vars    []string // set before the agent rings, then after
		want    string
	}{
		{"context prefix", "acme-in", nil, "acme"},
		{"variable before the first event", "from-trunk", []string{"globex"}, "globex"},
		{"default", "from-trunk", nil, "house"},
		{"a variable after the first event changes nothing", "from-trunk", []string{"", "globex"}, "house"},
	} {
		tr := tenantTracker()
		caller := trunk()
		caller.Context = c.context
		a := ch("t.2", "PJSIP/201-00000002")
		evs := []ChannelEvent{{Kind: ChanNew, Channel: caller}}
		if len(c.vars) > 0 && c.vars[0] != "" {
			evs = append(evs, ChannelEvent{Kind: ChanVar, Channel: caller, Name: "CTI_TENANT", Value: c.vars[0]})
		}
		evs = append(evs, ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a})
		if len(c.vars) > 1 {
			evs = append(evs, ChannelEvent{Kind: ChanVar, Channel: caller, Name: "CTI_TENANT", Value: c.vars[1]})
		}
		evs = append(evs, ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &a, DialStatus: "NOANSWER"},
			ChannelEvent{Kind: ChanHangup, Channel: a, Cause: 16}, ChannelEvent{Kind: ChanHangup, Channel: caller, Cause: 16})
		out := run(tr, evs...)
		if typesOf(out) != "call.ringing,call.ring_ended,call.ended" {
			t.Fatalf("%s: %s", c.name, typesOf(out))
		}
		for _, e := range out {
			if e.Tenant != c.want || e.Call.Tenant != c.want {
				t.Errorf("%s: %s has tenant %q (call %q), want %q", c.name, e.Type, e.Tenant, e.Call.Tenant, c.want)
			}
		}
	}
}

// agent.state carries the agent's tenant: configured, else learned from
// its calls, else the default.
func TestAgentStateTenant(t *testing.T) {
	tr := tenantTracker()
	caller := trunk()
	caller.Context = "acme-in"
	a := ch("t.2", "PJSIP/201-00000002")
	run(tr, ChannelEvent{Kind: ChanNew, Channel: caller}, ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &a})
	member := func(ext string) ChannelEvent {
		return ChannelEvent{Kind: ChanAgentState, Queue: "support", Member: ext, Interface: "PJSIP/" + ext, Status: "available"}
	}
	evs := run(tr, member("201"), member("202"), member("203"))
	want := []string{"acme", "acme", "house"}
	for i, e := range evs {
		if e.Type != EventAgentState || e.Tenant != want[i] {
			t.Errorf("%s of %s: tenant %q, want %q", e.Type, e.Agent.Extension, e.Tenant, want[i])
		}
	}
}

// The agent board and the endpoint list follow the key's tenant.
func TestAgentsAndEndpointsByTenant(t *testing.T) {
	a := NewAgents(nil)
	for i, x := range [][2]string{{"201", "acme"}, {"301", "globex"}, {"401", ""}} {
		rec, _ := NewRecord(Event{ID: "evt_" + x[0], Type: EventAgentState, Tenant: x[1], Agent: &Agent{Extension: x[0]}, AgentState: &AgentStat{State: "available"}})
		rec.Seq = int64(i + 1)
		a.Apply([]Record{rec})
	}
	ctx := WithPrincipal(context.Background(), Principal{KeyID: "k", Tenant: "acme"})
	if got := a.Agents(ctx); len(got) != 1 || got[0].Extension != "201" {
		t.Fatalf("acme's agents: %+v", got)
	}
	if got := a.Agents(context.Background()); len(got) != 3 {
		t.Fatalf("the operator's agents: %+v", got)
	}
	if err := a.Act(ctx, QueueOp{Action: "login", Extension: "301"}); ErrorCode(err) != ENOTFOUND {
		t.Fatalf("acme acting on globex's agent: %v", err)
	}
	a.Tenants = Tenants{Agents: map[string]string{"501": "acme"}}.AgentTenant
	if err := a.Act(ctx, QueueOp{Action: "login", Extension: "501"}); ErrorCode(err) == ENOTFOUND {
		t.Fatalf("acme acting on its configured agent: %v", err)
	}

	if !(Endpoint{}).WantsEvent("call.ringing", "acme") || !(Endpoint{Tenant: "acme"}).WantsEvent("call.ringing", "acme") ||
		(Endpoint{Tenant: "acme"}).WantsEvent("call.ringing", "globex") || (Endpoint{Tenant: "acme"}).WantsEvent("call.ringing", "") {
		t.Fatal("WantsEvent: an operator endpoint takes all, a tenant's only its own")
	}
}

// An agent's learned tenant comes back with its last agent.state after a
// restart.
func TestAgentTenantRestored(t *testing.T) {
	tr := tenantTracker()
	rec, err := NewRecord(Event{ID: "evt_1", Type: EventAgentState, Tenant: "globex", Agent: &Agent{Extension: "205"}, AgentState: &AgentStat{Queue: "support", State: "busy"}})
	if err != nil {
		t.Fatal(err)
	}
	tr.RestoreAgentStates([]Record{rec})
	evs := run(tr, ChannelEvent{Kind: ChanAgentState, Queue: "support", Member: "205", Interface: "PJSIP/205", Status: "available"})
	if len(evs) != 1 || evs[0].Tenant != "globex" {
		t.Fatalf("after a restart: %+v", evs)
	}
}

// "default" is the NATS subject token of the operator's events: no tenant
// may take it, from the config or from a call's variable.
func TestTenantNameDefaultReserved(t *testing.T) {
	if ValidTenant(ReservedTenant) || !ValidTenant("acme") {
		t.Fatalf("ValidTenant(%q) = %v, ValidTenant(acme) = %v", ReservedTenant, ValidTenant(ReservedTenant), ValidTenant("acme"))
	}
	if err := CheckTenant("tenant", ReservedTenant); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("CheckTenant(default) = %v", err)
	}
}

// An agent the config does not list takes the tenant of the first call
// its phone is in; a later call of another tenant does not move it.
func TestLearnedAgentTenantFirstWins(t *testing.T) {
	tk := NewTracker(TrackerConfig{PBX: "p", AgentPattern: regexp.MustCompile(`^[0-9]{3}$`)})
	tk.learnAgentTenant(&Agent{Extension: "101"}, "acme")
	tk.learnAgentTenant(&Agent{Extension: "101"}, "globex")
	if tn, ok := tk.knownAgentTenant("101"); !ok || tn != "acme" {
		t.Fatalf("agent 101's tenant = %q (%v), want acme", tn, ok)
	}
}

// The agent service learns an unseen agent's tenant from the call model
// (KnownAgentTenant): with a non-empty default tenant, that tenant must not
// command another tenant's agent that has had calls but no agent.state.
func TestEngineKnownAgentTenant(t *testing.T) {
	tk := newTestTracker()
	tk.learnAgentTenant(&Agent{Extension: "101"}, "globex")
	ob := &fakeOutbox{}
	e := NewEngine(tk, ob, &fakeNotifier{ob: ob}, EngineOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if tn, ok := e.KnownAgentTenant(ctx, "101"); !ok || tn != "globex" {
		t.Fatalf("101: %q %v, want globex", tn, ok)
	}
	if _, ok := e.KnownAgentTenant(ctx, "102"); ok {
		t.Fatal("an agent never seen is known")
	}
	a := NewAgents(nil)
	a.Tenants = func(ext string) string {
		if tn, ok := e.KnownAgentTenant(ctx, ext); ok {
			return tn
		}
		return "acme" // tenants.default
	}
	acme := WithPrincipal(ctx, Principal{KeyID: "k", Scopes: []string{ScopeControl}, Tenant: "acme"})
	if err := a.Act(acme, QueueOp{Action: "pause", Extension: "101"}); ErrorCode(err) != ENOTFOUND {
		t.Fatalf("acme pausing globex's agent: %v, want not found", err)
	}
}
