package bridge

import "time"

// APIKey is an API key as stored: its secret is kept only as a hash.
type APIKey struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Agent, when set, limits the key to one extension: its calls and its
	// state (the agent panel signs in with such a key). Never admin.
	Agent      string     `json:"agent,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Tenant, when set, limits the key to one tenant: its calls, agents,
	// events and webhook endpoints ("": the operator, every tenant).
	Tenant string `json:"tenant,omitempty"`
}

// Scopes an API key can hold, weakest first; each implies those before it.
const (
	ScopeRead    = "read"
	ScopeControl = "control"
	ScopeAdmin   = "admin"
)

// Scopes lists the scopes in rank order.
var Scopes = []string{ScopeRead, ScopeControl, ScopeAdmin}

// ScopeRank is 1, 2, 3 for read, control, admin and 0 for anything else.
func ScopeRank(s string) int {
	for i, x := range Scopes {
		if x == s {
			return i + 1
		}
	}
	return 0
}

// HasScope reports whether the key grants scope: admin implies control,
// control implies read.
func (k APIKey) HasScope(scope string) bool {
	want := ScopeRank(scope)
	if want == 0 {
		return false
	}
	for _, s := range k.Scopes {
		if ScopeRank(s) >= want {
			return true
		}
	}
	return false
}
