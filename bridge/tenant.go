package bridge

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// A tenant is one customer of a PBX shared by many (a hosting provider's
// Asterisk or FreeSWITCH). Every conversation, event, endpoint, API key
// and agent belongs to one tenant, or to none (""): the operator's, whose
// keys and endpoints see every tenant.

var reTenant = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidTenant reports whether t is a tenant name: lowercase letters,
// digits, - and _, at most 32, starting with a letter or digit. Names go
// into NATS subjects and URLs, so nothing else is allowed. "default" is
// reserved: NATS subjects use it for the operator's own events.
func ValidTenant(t string) bool { return t != ReservedTenant && reTenant.MatchString(t) }

// ReservedTenant is the subject token of events that belong to no tenant
// (the operator's); no tenant may take the name.
const ReservedTenant = "default"

// CheckTenant checks a tenant field ("" is the operator and passes).
func CheckTenant(field, t string) error {
	if t != "" && !ValidTenant(t) {
		return FieldError(field, "must be a tenant name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit, and not %q (reserved for the operator's events)", ReservedTenant)
	}
	return nil
}

// Sources a tenant rule reads.
const (
	TenantByAccountCode   = "accountcode"    // Asterisk CHANNEL(accountcode)
	TenantByContextPrefix = "context_prefix" // the dialplan context the first channel starts in
	TenantByVariable      = "variable"       // a channel variable
	TenantByDomain        = "domain"         // FreeSWITCH domain_name
)

// TenantRule is one way to read a call's tenant from its channels.
type TenantRule struct {
	Source   string // one of the TenantBy* constants
	Variable string // TenantByVariable: the variable's name
	// Map turns what the channel says into a tenant; for context_prefix
	// it maps a prefix to a tenant (the longest matching prefix wins). Nil
	// (not context_prefix): the value itself is the tenant when it is a
	// valid tenant name.
	Map map[string]string
}

// Tenants are the rules of a shared PBX. Zero: one organisation, every
// tenant "".
type Tenants struct {
	Rules []TenantRule
	// Default is the tenant of a call no rule matches ("": the operator's
	// only).
	Default string
	// Agents maps an extension to its tenant; an agent not listed takes
	// the tenant of the calls its phone is in.
	Agents map[string]string
}

// Names are the tenants the rules, the default and the agents can give:
// sorted, each once. open is true when a rule takes the name from the
// channel itself (a variable, or an account code or domain with no map),
// so any valid name may turn up.
func (ts Tenants) Names() (names []string, open bool) {
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			names = append(names, t)
		}
	}
	add(ts.Default)
	for _, t := range ts.Agents {
		add(t)
	}
	for _, r := range ts.Rules {
		if r.Map == nil && r.Source != TenantByContextPrefix {
			open = true
		}
		for _, t := range r.Map {
			add(t)
		}
	}
	slices.Sort(names)
	return names, open
}

// CheckKnownTenant checks a tenant field against what the rules can give:
// a key or an endpoint of a tenant no call or agent can ever have would
// see nothing, and say nothing of the typo that made it. "" (the
// operator) passes.
func (ts Tenants) CheckKnownTenant(field, t string) error {
	if err := CheckTenant(field, t); err != nil || t == "" {
		return err
	}
	names, open := ts.Names()
	if open || slices.Contains(names, t) {
		return nil
	}
	if len(names) == 0 {
		return FieldError(field, "%q: no call or agent can be a tenant's, as the config's tenants: section has no rules, default or agents; leave it out (the operator's), or see README \"Tenants\"", t)
	}
	return FieldError(field, "%q is not a tenant the config's tenants: section can give a call or agent (it names %s)", t, strings.Join(names, ", "))
}

// Variables are the channel variables the rules read (the PBX adapter
// must pass them on).
func (ts Tenants) Variables() []string {
	var out []string
	for _, r := range ts.Rules {
		if r.Source == TenantByVariable && r.Variable != "" {
			out = append(out, r.Variable)
		}
	}
	return out
}

// Of returns the tenant the first rule that matches ch gives, in rule
// order; false when none does.
func (ts Tenants) Of(ch Channel) (string, bool) {
	for _, r := range ts.Rules {
		if t, ok := r.match(ch); ok {
			return t, true
		}
	}
	return "", false
}

func (r TenantRule) match(ch Channel) (string, bool) {
	var v string
	switch r.Source {
	case TenantByAccountCode:
		v = ch.AccountCode
	case TenantByDomain:
		v = ch.Domain
	case TenantByVariable:
		v = ch.Vars[r.Variable]
	case TenantByContextPrefix:
		best, tenant := -1, ""
		for _, ctx := range []string{ch.Context, ch.Home} {
			if ctx == "" {
				continue
			}
			for p, t := range r.Map {
				if strings.HasPrefix(ctx, p) && len(p) > best {
					best, tenant = len(p), t
				}
			}
			if best >= 0 {
				return tenant, true
			}
		}
		return "", false
	}
	if v == "" {
		return "", false
	}
	if r.Map != nil {
		t, ok := r.Map[v]
		return t, ok
	}
	if ValidTenant(v) {
		return v, true
	}
	return "", false
}

// tenantScope is the tenant a context is limited to, "" for the operator.
func tenantScope(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.Tenant
}

// SeesTenant reports whether ctx may see what belongs to tenant: the
// operator sees every tenant, a tenant key only its own.
func SeesTenant(ctx context.Context, tenant string) bool {
	s := tenantScope(ctx)
	return s == "" || s == tenant
}

// TenantOf is the tenant ctx is limited to ("" for the operator).
func TenantOf(ctx context.Context) string { return tenantScope(ctx) }

// settleTenant gives c the tenant the rules read from ch, if one matches.
func (t *Tracker) settleTenant(c *conversation, ch Channel) {
	if tn, ok := t.cfg.Tenants.Of(ch); ok {
		c.Call.Tenant, c.TenantFixed = tn, true
		t.dirty[c.ID] = c
	}
}

// agentTenant is ext's tenant: the configured one, else the tenant of the
// last call its phone was in, else the default.
func (t *Tracker) agentTenant(ext string) string {
	if tn, ok := t.cfg.Tenants.Agents[ext]; ok {
		return tn
	}
	if tn, ok := t.agentTenants[ext]; ok {
		return tn
	}
	return t.cfg.Tenants.Default
}

// knownAgentTenant is ext's tenant when ext is a known agent (configured
// or learned); false for any other extension (a queue, an IVR).
func (t *Tracker) knownAgentTenant(ext string) (string, bool) {
	if tn, ok := t.cfg.Tenants.Agents[ext]; ok {
		return tn, true
	}
	tn, ok := t.agentTenants[ext]
	return tn, ok
}

// learnAgentTenant remembers the tenant of the first call an agent's
// phone is in (for agents the config does not list). The first wins: a
// later call of another tenant (a transfer to the extension) must not move
// the agent, with its state and its commands, into that tenant. On a
// shared PBX list the agents in tenants.agents.
func (t *Tracker) learnAgentTenant(a *Agent, tenant string) {
	if a == nil || a.Extension == "" || tenant == "" {
		return
	}
	if _, ok := t.cfg.Tenants.Agents[a.Extension]; ok {
		return
	}
	if _, ok := t.agentTenants[a.Extension]; ok {
		return
	}
	if t.agentTenants == nil {
		t.agentTenants = map[string]string{}
	}
	t.agentTenants[a.Extension] = tenant
}

// RecordTenant is the tenant of a committed event ("" for the
// operator's), read from its body: the outbox keeps no column for it.
func RecordTenant(r Record) string {
	var ev struct {
		Tenant string `json:"tenant"`
	}
	if json.Unmarshal(r.Payload, &ev) != nil {
		return ""
	}
	return ev.Tenant
}

// AgentTenant is the configured tenant of agent ext, else the default.
func (ts Tenants) AgentTenant(ext string) string {
	if tn, ok := ts.Agents[ext]; ok {
		return tn
	}
	return ts.Default
}

// KnownAgentTenant is agent ext's tenant when the call model knows it (the
// config lists the agent, or a call of its phone was seen); false for an
// extension it has never seen as an agent.
func (e *Engine) KnownAgentTenant(ctx context.Context, ext string) (tenant string, known bool) {
	_ = e.Do(ctx, func(t *Tracker) { tenant, known = t.knownAgentTenant(ext) })
	return tenant, known
}
