package http

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// The agent panel: plain HTML, CSS and JavaScript, embedded in the binary.
//
//go:embed panel/index.html panel/panel.css panel/panel.js
var panelFS embed.FS

const (
	// panelCookie holds a panel session's token, never the agent's API
	// key: HttpOnly, so no script (not even an injected one) reads it;
	// the session ends at sign-out, after 12 hours, or with its key.
	panelCookie      = "ctb_panel"
	panelSessionPath = "/panel/session"
	// A login link is good once, for loginTicketTTL: it may end up in a
	// chat or a terminal's scrollback, never as a lasting credential.
	loginTicketTTL = 10 * time.Minute
	maxLoginTicket = 1000
	// maxLoginTicketsPerKey keeps one key from taking the whole pool: an
	// agent asking over and over would lock every other agent out.
	maxLoginTicketsPerKey = 20
	// panelCookieTTL is how long a sign-in lasts in the browser; revoking
	// the key ends it at once anyway.
	panelCookieTTL = 12 * time.Hour
)

// PanelConfig is http.panel of the config.
type PanelConfig struct {
	// CRMURL is the "Open in CRM" link of a call: {{e164}}, {{number}},
	// {{dialled}}, {{queue}}, {{call_id}} and {{agent}} are replaced,
	// URL-encoded ("+" too); "" shows no link.
	CRMURL string
	// AutoOpen opens the CRM link by itself: "ring", "answer" or "" (never).
	AutoOpen string
	// FrameAncestors are the CSP frame-ancestors sources: who may show the
	// panel in a frame ('self' when empty). Their origins are also the only
	// ones the panel's postMessage API talks to.
	FrameAncestors []string
}

// panelState holds the one-time login tickets: ticket hash → key.
type panelState struct {
	mu      sync.Mutex
	tickets map[[32]byte]loginTicket
}

type loginTicket struct {
	keyID   string // a ticket opens a session of this key; it never holds the key
	expires time.Time
}

// panelRoutes serves the panel's pages and its sign-in.
func (s *Server) panelRoutes() {
	a := s.app
	a.Get("/panel", s.panelPage) // and /panel/: routing is not strict
	a.Get("/c2c", s.panelPage)
	a.Get("/panel/assets/:name", s.panelAsset)
	a.Post(panelSessionPath, s.panelSignIn)
	a.Delete(panelSessionPath, s.panelSignOut)
	// As the API's: a request without a key or cookie must name a loopback
	// or listed host (checkKeyless).
	a.Get("/panel/me", s.checkKeyless, s.deadline, s.auth(scopeRead), s.panelMe)
	a.Post("/panel/links", s.checkKeyless, s.deadline, s.auth(scopeRead), s.panelLink)
}

// panelHeaders are every panel response's: nothing but its own files may
// run or load, only the configured hosts may frame it, and no Referer
// leaves it (a call's URL carries its id).
func (s *Server) panelHeaders(c *fiber.Ctx) {
	anc := strings.Join(s.Panel.FrameAncestors, " ")
	if anc == "" {
		anc = "'self'"
	}
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
		"media-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors "+anc)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cache-Control", "no-cache")
}

func (s *Server) panelPage(c *fiber.Ctx) error {
	b, err := panelFS.ReadFile("panel/index.html")
	if err != nil {
		return err
	}
	s.panelHeaders(c)
	c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
	return c.Send(b)
}

var panelTypes = map[string]string{
	"panel.css": "text/css; charset=utf-8",
	"panel.js":  "text/javascript; charset=utf-8",
}

func (s *Server) panelAsset(c *fiber.Ctx) error {
	name := c.Params("name")
	ct, ok := panelTypes[name] // an allowlist: nothing else of the FS is served
	if !ok {
		return bridge.Errorf(bridge.ENOTFOUND, "no such panel file")
	}
	b, err := panelFS.ReadFile(path.Join("panel", name))
	if err != nil {
		return err
	}
	s.panelHeaders(c)
	c.Set(fiber.HeaderContentType, ct)
	return c.Send(b)
}

// panelSignIn takes an agent key, pasted into the sign-in form, or a
// one-time ticket from a login link, and opens a panel session whose
// token the cookie holds (the key itself never leaves the form). Only
// a JSON body is read: a cross-site HTML form cannot send one, and
// checkOrigin has already refused any Origin but this server's own.
func (s *Server) panelSignIn(c *fiber.Ctx) error {
	if !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), "application/json") {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: codeUnsupportedMedia, field: "Content-Type",
			detail: "sign in with a JSON body: {\"key\": \"ctb_…\"} or {\"ticket\": \"…\"}"}
	}
	var body struct {
		Key    string `json:"key"`
		Ticket string `json:"ticket"`
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return bridge.FieldError("body", "must be a JSON object {\"key\": \"ctb_…\"} or {\"ticket\": \"…\"}")
	}
	plain := strings.TrimSpace(body.Key)
	var key bridge.APIKey
	var err error
	switch {
	case plain != "" && body.Ticket != "":
		return bridge.FieldError("ticket", "give a key or a ticket, not both")
	case body.Ticket != "":
		id, ok := s.redeemTicket(body.Ticket)
		if !ok {
			return &bridge.Error{Code: bridge.EUNAUTHORIZED, Field: "ticket",
				Message: "this login link was used already or has expired (links are good once, for 10 minutes): ask for a new one, or paste your agent key"}
		}
		if key, err = s.store.APIKeyByID(c.UserContext(), id); bridge.ErrorCode(err) == bridge.ENOTFOUND {
			return &bridge.Error{Code: bridge.EUNAUTHORIZED, Field: "ticket",
				Message: "the agent key this login link was made for has been revoked: ask for a new key"}
		}
	case plain == "":
		return bridge.FieldError("key", "paste your agent key (ctibridge apikey create --agent EXT prints one)")
	default:
		key, err = s.store.AuthenticateAPIKey(c.UserContext(), plain)
	}
	if err != nil {
		return err
	}
	if key.Agent == "" {
		return &bridge.Error{Code: bridge.EFORBIDDEN, Field: "key",
			Message: "the panel signs in agent keys only (ctibridge apikey create --agent EXT): this key is not limited to one agent"}
	}
	if !key.HasScope(scopeRead) {
		return bridge.Errorf(bridge.EFORBIDDEN, "this API key (%s) lacks the read scope", key.Name)
	}
	expires := time.Now().Add(panelCookieTTL)
	token, err := s.store.CreatePanelSession(c.UserContext(), key.ID, expires)
	if err != nil {
		return err
	}
	c.Cookie(s.panelCookie(c, token, expires))
	s.panelHeaders(c)
	return c.JSON(fiber.Map{"agent": key.Agent, "name": key.Name, "scopes": key.Scopes})
}

// panelCookie is the sign-in cookie. Over TLS it is Secure and
// SameSite=None, so the panel also works inside a CRM's frame (a
// third-party context); without TLS it is SameSite=Strict. Either way only
// same-origin requests are judged by it (cookieAuth).
func (s *Server) panelCookie(c *fiber.Ctx, value string, expires time.Time) *fiber.Cookie {
	ck := &fiber.Cookie{Name: panelCookie, Value: value, Path: "/", HTTPOnly: true, Expires: expires, SameSite: fiber.CookieSameSiteStrictMode}
	if c.Protocol() == "https" {
		ck.Secure, ck.SameSite = true, fiber.CookieSameSiteNoneMode
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}

func (s *Server) panelSignOut(c *fiber.Ctx) error {
	if token := c.Cookies(panelCookie); token != "" {
		if err := s.store.DeletePanelSession(c.UserContext(), strings.Clone(token)); err != nil {
			return err
		}
	}
	c.Cookie(s.panelCookie(c, "", time.Unix(1, 0)))
	s.panelHeaders(c)
	return c.SendStatus(fiber.StatusNoContent)
}

// panelMe tells the panel who is signed in and how it is configured.
func (s *Server) panelMe(c *fiber.Ctx) error {
	p, _ := bridge.PrincipalFrom(c.UserContext())
	if p.Agent == "" {
		return bridge.Errorf(bridge.EUNAUTHORIZED, "sign in with an agent key")
	}
	// The origins the panel's postMessage API talks to: those that may
	// frame it ('self' is this server's own).
	var origins []string
	for _, a := range s.Panel.FrameAncestors {
		if strings.Contains(a, "://") {
			origins = append(origins, a)
		}
	}
	if len(s.Panel.FrameAncestors) == 0 || slices.Contains(s.Panel.FrameAncestors, "'self'") {
		origins = append(origins, selfOrigin(c))
	}
	s.panelHeaders(c)
	return c.JSON(fiber.Map{"agent": p.Agent, "scopes": p.Scopes, "crm_url": s.Panel.CRMURL,
		"auto_open": s.Panel.AutoOpen, "host_origins": origins, "pbx": s.PBXName})
}

// panelLink makes a one-time login link for the caller's own agent key:
// whoever holds the key (ctibridge demo, an admin's provisioning script)
// can hand the agent a link instead of the key. The ticket is in the
// URL's fragment, which browsers never send to a server, put in a Referer
// or a proxy's log; the page posts it once and removes it from the
// address bar. A ticket opens one sign-in, within 10 minutes.
func (s *Server) panelLink(c *fiber.Ctx) error {
	p, _ := bridge.PrincipalFrom(c.UserContext())
	k, _ := c.Locals(keyLocal).(bridge.APIKey)
	if p.Agent == "" || k.ID == "" {
		return bridge.Errorf(bridge.EFORBIDDEN, "login links are made for agent keys only (ctibridge apikey create --agent EXT)")
	}
	ticket, expires, err := s.mintTicket(k.ID)
	if err != nil {
		return err
	}
	u := url.URL{Scheme: c.Protocol(), Host: string(c.Request().Header.Host()), Path: "/panel/", Fragment: "ticket=" + ticket}
	if base, err := url.Parse(s.PublicURL); s.PublicURL != "" && err == nil {
		u.Scheme, u.Host, u.Path = base.Scheme, base.Host, strings.TrimSuffix(base.Path, "/")+"/panel/"
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"url": u.String(), "expires_at": expires.UTC().Format(time.RFC3339)})
}

func (s *Server) mintTicket(keyID string) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, err
	}
	ticket := base64.RawURLEncoding.EncodeToString(raw[:])
	now := time.Now()
	st := &s.panel
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tickets == nil {
		st.tickets = map[[32]byte]loginTicket{}
	}
	for h, t := range st.tickets {
		if now.After(t.expires) {
			delete(st.tickets, h)
		}
	}
	mine := 0
	for _, t := range st.tickets {
		if t.keyID == keyID {
			mine++
		}
	}
	if mine >= maxLoginTicketsPerKey {
		return "", time.Time{}, &httpError{status: fiber.StatusTooManyRequests, code: "too_many_links",
			detail: fmt.Sprintf("this key has %d unused login links: use one, or wait until they expire (10 minutes)", mine)}
	}
	if len(st.tickets) >= maxLoginTicket {
		return "", time.Time{}, &httpError{status: fiber.StatusTooManyRequests, code: "too_many_links",
			detail: "too many unused login links: wait until some expire (10 minutes)"}
	}
	exp := now.Add(loginTicketTTL)
	st.tickets[sha256.Sum256([]byte(ticket))] = loginTicket{keyID: keyID, expires: exp}
	return ticket, exp, nil
}

// redeemTicket returns the key id of a ticket and forgets the ticket.
func (s *Server) redeemTicket(ticket string) (string, bool) {
	h := sha256.Sum256([]byte(ticket))
	st := &s.panel
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.tickets[h]
	delete(st.tickets, h)
	if !ok || time.Now().After(t.expires) {
		return "", false
	}
	return t.keyID, true
}
