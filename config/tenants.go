package config

import (
	"fmt"
	"regexp"

	"github.com/ctibridge/ctibridge/bridge"
)

// Tenants is the tenants section: how a shared PBX's calls are told apart
// (README "Tenants"). Without rules every call is the operator's.
type Tenants struct {
	// Rules are tried in order on a call's first channel; the first that
	// matches names its tenant.
	Rules []TenantRule `koanf:"rules"`
	// Default is the tenant of a call no rule matches; "" leaves it to the
	// operator (only operator keys and endpoints see it).
	Default string `koanf:"default"`
	// Agents maps an extension to its tenant (an agent not listed takes
	// the tenant of the calls its phone is in).
	Agents map[string]string `koanf:"agents"`
	// Connectors maps a connector's (or sink's) endpoint id, such as
	// crm-bitrix24, to the one tenant whose events it receives.
	Connectors map[string]string `koanf:"connectors"`
}

// TenantRule is one rule: a source and, except for a variable or an
// account code holding the tenant's name itself, a map to tenants.
// Shorthands: context_prefix: {...}, accountcode: {...} and domain: {...}
// are source with map.
type TenantRule struct {
	Source   string            `koanf:"source"`   // accountcode, context_prefix, variable, domain
	Variable string            `koanf:"variable"` // source variable: the channel variable
	Map      map[string]string `koanf:"map"`      // value (context_prefix: prefix) -> tenant

	AccountCode   map[string]string `koanf:"accountcode"`
	ContextPrefix map[string]string `koanf:"context_prefix"`
	Domain        map[string]string `koanf:"domain"`
}

var reVariable = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// validate normalises the shorthands and checks every rule, naming the
// rule's key.
func (t *Tenants) validate(add func(*Error)) {
	if err := bridge.CheckTenant("tenants.default", t.Default); err != nil {
		add(&Error{"tenants.default", bridge.ErrorMessage(err)})
	}
	for ext, tn := range t.Agents {
		key := "tenants.agents." + ext
		if err := bridge.CheckExtension(key, ext); err != nil {
			add(&Error{key, "the key must be an agent's extension"})
		}
		if !bridge.ValidTenant(tn) {
			add(&Error{key, fmt.Sprintf("%q is not a tenant name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit", tn)})
		}
	}
	for id, tn := range t.Connectors {
		if !bridge.ValidTenant(tn) {
			add(&Error{"tenants.connectors." + id, fmt.Sprintf("%q is not a tenant name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit", tn)})
		}
	}
	for i := range t.Rules {
		r := &t.Rules[i]
		key := fmt.Sprintf("tenants.rules[%d]", i)
		short := 0
		for src, m := range map[string]map[string]string{bridge.TenantByAccountCode: r.AccountCode,
			bridge.TenantByContextPrefix: r.ContextPrefix, bridge.TenantByDomain: r.Domain} {
			if m != nil {
				short++
				r.Source, r.Map = src, m
			}
		}
		if short > 1 || short == 1 && r.Source == "" {
			add(&Error{key, "must have one source: accountcode, context_prefix, domain, or source: ... with map"})
			continue
		}
		switch r.Source {
		case bridge.TenantByAccountCode, bridge.TenantByDomain:
		case bridge.TenantByContextPrefix:
			if len(r.Map) == 0 {
				add(&Error{key + ".map", "context_prefix needs a map of prefixes to tenants, such as {\"acme-\": acme}"})
			}
		case bridge.TenantByVariable:
			if !reVariable.MatchString(r.Variable) {
				add(&Error{key + ".variable", fmt.Sprintf("must be a channel variable's name (letters, digits, _), got %q", r.Variable)})
			}
		default:
			add(&Error{key + ".source", fmt.Sprintf("must be accountcode, context_prefix, variable or domain, got %q", r.Source)})
			continue
		}
		if r.Source != bridge.TenantByVariable && r.Variable != "" {
			add(&Error{key + ".variable", "is only for source: variable"})
		}
		for _, k := range sortedKeys(r.Map) {
			if k == "" {
				add(&Error{key + ".map", "has an empty value to match"})
			}
			if !bridge.ValidTenant(r.Map[k]) {
				add(&Error{key + ".map." + k, fmt.Sprintf("%q is not a tenant name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit", r.Map[k])})
			}
		}
	}
}

// validateNamed checks that the webhooks and connectors name tenants the
// rules can give: one no call or agent can ever have receives nothing,
// which hides the typo that made it.
func (t *Tenants) validateNamed(add func(*Error), webhooks []Webhook, endpointIDs map[string]bool) {
	known := t.Bridge()
	for i, w := range webhooks {
		if bridge.ValidTenant(w.Tenant) { // an invalid name is reported already
			if err := known.CheckKnownTenant("tenant", w.Tenant); err != nil {
				add(&Error{fmt.Sprintf("webhooks[%d].tenant", i), bridge.ErrorMessage(err)})
			}
		}
	}
	for _, id := range sortedKeys(t.Connectors) {
		if !endpointIDs[id] {
			add(&Error{"tenants.connectors." + id, "no connector, sink or webhook of this config has this id (crm-bitrix24, crm-zammad, crm-hubspot, crm-tpl-<name>, sink-nats, or a webhook's id)"})
			continue
		}
		if tn := t.Connectors[id]; bridge.ValidTenant(tn) {
			if err := known.CheckKnownTenant("tenant", tn); err != nil {
				add(&Error{"tenants.connectors." + id, bridge.ErrorMessage(err)})
			}
		}
	}
}

// Bridge returns the rules as the call model takes them.
func (t Tenants) Bridge() bridge.Tenants {
	out := bridge.Tenants{Default: t.Default, Agents: t.Agents}
	for _, r := range t.Rules {
		out.Rules = append(out.Rules, bridge.TenantRule{Source: r.Source, Variable: r.Variable, Map: r.Map})
	}
	return out
}
