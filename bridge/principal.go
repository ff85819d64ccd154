package bridge

import (
	"context"
	"slices"
)

// Principal is who asks for a use case: the API key behind a request (or
// the anonymous caller, KeyID ""). The HTTP layer puts it on the request's
// context; services read it to decide what the caller may see and touch.
type Principal struct {
	KeyID  string
	Scopes []string
	// Agent, when set, is an agent-scoped key: it sees and commands only
	// the calls in which this extension has (or had) a leg, and only this
	// agent's state. Anything else is "not found", never "forbidden": an
	// agent cannot learn which other calls exist.
	Agent string
	// Tenant, when set, limits the key to one tenant's calls, agents,
	// events and endpoints; "" is the operator, who sees every tenant.
	// Another tenant's call is "not found", as for an agent key.
	Tenant string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal on ctx. Without one, the caller is
// trusted code (the wiring, a connector): nothing is filtered.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// agentScope is the agent a context is limited to, "" for none.
func agentScope(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.Agent
}

// SeesAgentIn reports whether ctx may see agent ext of tenant. There is
// no variant without the agent's tenant: assuming the caller's own would
// let a tenant key see every tenant's agents.
func SeesAgentIn(ctx context.Context, ext, tenant string) bool {
	if !SeesTenant(ctx, tenant) {
		return false
	}
	a := agentScope(ctx)
	return a == "" || a == ext
}

// SeesCall reports whether ctx may see a call whose agent legs are agents
// (CallChannels.Agents) and whose current agent is c.Agent.
func SeesCall(ctx context.Context, c Call, agents []string) bool {
	if !SeesTenant(ctx, c.Tenant) {
		return false
	}
	a := agentScope(ctx)
	if a == "" {
		return true
	}
	return c.Agent != nil && c.Agent.Extension == a || slices.Contains(agents, a)
}
