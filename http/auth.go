package http

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

const noKeysHint = "no API key exists yet: create one with `ctibridge apikey create --name crm --scopes read,control --config ctibridge.yaml` and send it as Authorization: Bearer <key>"

// Values of Server.Anonymous.
const (
	AnonymousNone    = "none"
	AnonymousRead    = "read"
	AnonymousControl = "control"
)

// auth admits a request carrying an API key with scope.
//
// A request without a key is served only on a loopback listener and only
// as far as the anonymous policy goes (anonymousScope): never admin. A
// request that carries a key is always judged by it.
func (s *Server) auth(scope string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		if h == "" {
			if cookie := c.Cookies(panelCookie); cookie != "" {
				return s.cookieAuth(c, scope, cookie)
			}
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
		return s.admit(c, key, scope)
	}
}

// admit lets a request authenticated as key through if the key has scope,
// with the key's Principal on the request's context: the services and the
// stream limit an agent key to its own calls and state.
func (s *Server) admit(c *fiber.Ctx, key bridge.APIKey, scope string) error {
	if !key.HasScope(scope) {
		return bridge.Errorf(bridge.EFORBIDDEN, "this API key (%s) lacks the %s scope", key.Name, scope)
	}
	c.Locals(keyLocal, key)
	c.SetUserContext(bridge.WithPrincipal(c.UserContext(), bridge.Principal{KeyID: key.ID, Scopes: key.Scopes, Agent: key.Agent, Tenant: key.Tenant}))
	return c.Next()
}

// cookieAuth authenticates with the agent panel's cookie. The cookie is
// only trusted on requests the panel's own pages make: the browser says so
// with Sec-Fetch-Site: same-origin (older browsers send none; SameSite
// then keeps the cookie off other sites' requests), and a write must carry
// this server's own Origin. A cross-site request carrying the cookie is
// refused, never served anonymously instead.
func (s *Server) cookieAuth(c *fiber.Ctx, scope, plain string) error {
	if site := c.Get("Sec-Fetch-Site"); site != "" && !strings.EqualFold(site, "same-origin") {
		return &bridge.Error{Code: bridge.EFORBIDDEN, Field: "Sec-Fetch-Site",
			Message: "the panel's sign-in cookie is accepted only on the panel's own requests, not from another page (Sec-Fetch-Site: " + quoteHeader(site) + ")"}
	}
	if unsafeMethod(c.Method()) && c.Get(fiber.HeaderOrigin) != selfOrigin(c) {
		return &bridge.Error{Code: bridge.EFORBIDDEN, Field: "Origin",
			Message: "a " + c.Method() + " with the panel's sign-in cookie must come from the panel's own page (Origin " + quoteHeader(selfOrigin(c)) + "), got " + quoteHeader(c.Get(fiber.HeaderOrigin))}
	}
	key, err := s.store.PanelSessionKey(c.UserContext(), plain)
	if err != nil {
		return err
	}
	if key.Agent == "" {
		// Only agent keys ever open a session (POST /panel/session).
		return bridge.Errorf(bridge.EUNAUTHORIZED, "the panel's sign-in is not an agent's: sign in again")
	}
	return s.admit(c, key, scope)
}

// selfOrigin is the origin this request was addressed to, as a browser
// on a page of this server would send it in Origin.
func selfOrigin(c *fiber.Ctx) string {
	return c.Protocol() + "://" + strings.ToLower(string(c.Request().Header.Host()))
}

const keyLocal = "ctibridge.apikey"

func (s *Server) anonymous(c *fiber.Ctx, scope string) error {
	allowed, neverKeyed, err := s.anonymousScope(c)
	if err != nil {
		return err
	}
	if allowed != "" && bridge.ScopeRank(scope) <= bridge.ScopeRank(allowed) {
		c.SetUserContext(bridge.WithPrincipal(c.UserContext(), bridge.Principal{Scopes: []string{allowed}}))
		return c.Next()
	}
	if neverKeyed {
		return bridge.Errorf(bridge.EUNAUTHORIZED, "%s", noKeysHint)
	}
	return bridge.Errorf(bridge.EUNAUTHORIZED, "an API key is required (Authorization: Bearer <key>)")
}

// anonymousScope is the most a request without a key may do ("" for
// nothing), and whether no API key has ever existed (for the hint). Only
// a listener bound to loopback proves every client is local; admin is
// never anonymous, whatever the configuration says. The default opens
// reads only until the first key is created: from then on, even with
// every key revoked, the store remembers (APIKeyEverCreated) and requests
// need a key, so revoking fails closed.
func (s *Server) anonymousScope(c *fiber.Ctx) (scope string, neverKeyed bool, err error) {
	if !s.loopback {
		return "", false, nil
	}
	switch s.Anonymous {
	case AnonymousRead, AnonymousControl:
		return s.Anonymous, false, nil
	case "":
	default: // none, or anything unknown: closed
		return "", false, nil
	}
	if !s.keyExisted.Load() {
		existed, err := s.store.APIKeyEverCreated(c.UserContext())
		if err != nil {
			return "", false, err
		}
		if !existed {
			if s.AnonymousLoopback {
				return scopeControl, true, nil
			}
			return scopeRead, true, nil
		}
		s.keyExisted.Store(true)
	}
	return "", false, nil
}

// unsafeMethod reports a method that may change something.
func unsafeMethod(m string) bool {
	switch m {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return false
	}
	return true // POST, PUT, PATCH, DELETE and anything unknown
}

// checkOrigin refuses a browser's write from a page whose origin is not
// listed in AllowedOrigins: browsers send Origin on every POST, same-site
// or not, even in no-cors mode, so a web page a user visits cannot drive
// the API on their machine. Same-origin is not trusted either: ctibridge
// serves no pages, and under DNS rebinding the attacker's page is
// "same-origin". Requests without Origin (a CRM's server, curl) are not
// browsers' and pass.
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	if !unsafeMethod(c.Method()) {
		return c.Next()
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || slices.Contains(s.AllowedOrigins, origin) {
		return c.Next()
	}
	// The agent panel's own pages: a same-origin write judged by the
	// panel's cookie (cookieAuth), or the sign-in that sets it. The cookie
	// is bound to this host name, so a DNS-rebound name cannot carry it.
	if origin == selfOrigin(c) && c.Get(fiber.HeaderAuthorization) == "" &&
		(c.Cookies(panelCookie) != "" || c.Path() == panelSessionPath) {
		return c.Next()
	}
	return &bridge.Error{Code: bridge.EFORBIDDEN, Field: "Origin",
		Message: "a " + c.Method() + " from the browser page " + quoteHeader(origin) + " is refused: that origin is not in http.allowed_origins"}
}

// checkKeyless guards requests without a key, which only the anonymous
// policy lets in: they must name this host as a loopback one (or one of
// AllowedHosts), so a DNS-rebound name of an attacker's site gets 421, and
// must not come from a cross-site page.
func (s *Server) checkKeyless(c *fiber.Ctx) error {
	if c.Get(fiber.HeaderAuthorization) != "" || c.Cookies(panelCookie) != "" {
		return c.Next() // judged by its key, or by the panel's cookie (cookieAuth)
	}
	hdr := string(c.Request().Header.Host())
	uri := string(c.Request().URI().Host()) // an absolute-form target's host
	if !s.hostAllowed(hdr) || uri != "" && !s.hostAllowed(uri) {
		return &httpError{status: fiber.StatusMisdirectedRequest, code: codeMisdirected, field: "Host",
			detail: "requests without an API key are served only for a loopback Host (localhost, 127.0.0.1, [::1]) or one in http.allowed_hosts, got Host " +
				quoteHeader(hdr) + ": send an API key, or list this name in http.allowed_hosts"}
	}
	if strings.EqualFold(c.Get("Sec-Fetch-Site"), "cross-site") {
		return &bridge.Error{Code: bridge.EFORBIDDEN, Field: "Sec-Fetch-Site",
			Message: "a request without an API key from another site's page is refused (Sec-Fetch-Site: cross-site)"}
	}
	return c.Next()
}

// hostAllowed reports whether a Host value names this machine's loopback
// (localhost, 127.0.0.0/8, [::1], with any port) or matches AllowedHosts
// (an entry without a port matches any port).
func (s *Server) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	name, ok := splitHost(host)
	if !ok {
		return false
	}
	if name == "localhost" || name == "[::1]" {
		return true
	}
	if ip, err := netip.ParseAddr(name); err == nil && ip.Is4() && ip.IsLoopback() {
		return true
	}
	for _, a := range s.AllowedHosts {
		if a = strings.ToLower(a); a == host || a == name {
			return true
		}
	}
	return false
}

// splitHost takes the port off a Host value: "h", "h:port", "[v6]" or
// "[v6]:port"; an IPv6 name keeps its brackets. ok is false for anything
// else (empty, a bad port, an unbracketed IPv6 address).
func splitHost(host string) (name string, ok bool) {
	port := ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		name, port = host[:end+1], host[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i:]
	} else {
		name = host
	}
	if port != "" {
		digits := port[1:]
		if digits == "" || len(digits) > 5 || strings.Trim(digits, "0123456789") != "" {
			return "", false
		}
	}
	return name, name != "" && name != "[]"
}

// quoteHeader quotes a header value for a problem detail, cut short.
func quoteHeader(v string) string {
	if v == "" {
		return "(none)"
	}
	if len(v) > 100 {
		v = v[:100]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
		v += "…"
	}
	return strconv.Quote(v)
}

// callerID names who is calling, to scope idempotency keys and stream
// caps per API key; every request without a key is one caller.
func callerID(c *fiber.Ctx) string {
	if k, ok := c.Locals(keyLocal).(bridge.APIKey); ok {
		return k.ID
	}
	return "anonymous"
}
