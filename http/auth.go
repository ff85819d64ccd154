package http

import (
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

const noKeysHint = "no API key exists yet: create one with `ctibridge apikey create --name crm --scopes read,control --config ctibridge.yaml` and send it as Authorization: Bearer <key>"

// auth admits a request carrying an API key with scope.
//
// Without a key, a request is refused (401), except while the store holds
// no API key at all and the listener is bound to loopback: then reads are
// served, as they were before API keys existed, and commands are refused
// with the hint to create a key, unless AnonymousLoopback opens everything.
// A request that carries a key is always judged by it.
func (s *Server) auth(scope string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		if h == "" {
			return s.anonymous(c, scope)
		}
		kind, token, ok := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(kind, "Bearer") || token == "" {
			return bridge.Errorf(bridge.EUNAUTHORIZED, "Authorization must be: Bearer <API key>")
		}
		key, err := s.store.AuthenticateAPIKey(c.UserContext(), token)
		if err != nil {
			return err
		}
		if !key.HasScope(scope) {
			return bridge.Errorf(bridge.EFORBIDDEN, "this API key (%s) lacks the %s scope", key.Name, scope)
		}
		c.Locals(keyLocal, key)
		return c.Next()
	}
}

const keyLocal = "ctibridge.apikey"

func (s *Server) anonymous(c *fiber.Ctx, scope string) error {
	if !s.loopback {
		return bridge.Errorf(bridge.EUNAUTHORIZED, "an API key is required (Authorization: Bearer <key>)")
	}
	keys, err := s.store.ListAPIKeys(c.UserContext())
	if err != nil {
		return err
	}
	switch {
	case len(keys) > 0:
		return bridge.Errorf(bridge.EUNAUTHORIZED, "an API key is required (Authorization: Bearer <key>)")
	case scope == scopeRead || s.AnonymousLoopback:
		return c.Next()
	}
	return bridge.Errorf(bridge.EUNAUTHORIZED, "%s", noKeysHint)
}

// callerID names who is calling, to scope idempotency keys per API key.
func callerID(c *fiber.Ctx) string {
	if k, ok := c.Locals(keyLocal).(bridge.APIKey); ok {
		return k.ID
	}
	return "anonymous"
}
