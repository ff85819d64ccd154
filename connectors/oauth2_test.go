package connectors_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
	"github.com/ctibridge/ctibridge/store"
)

// tokenEndpoint is a fake OAuth2 token endpoint (RFC 6749 §4.4 and §6):
// form-encoded grants, JSON answers, errors as {"error": …} with 400/401.
type tokenEndpoint struct {
	srv *httptest.Server

	mu       sync.Mutex
	grants   []string // grant_type of each request
	refresh  string   // the refresh token it accepts (rotated on use when rotate)
	rotate   bool
	status   int // answer every request with this status when set
	expireIn int
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{refresh: "rt-0-s3cret", expireIn: 3600}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if e.status != 0 {
			w.WriteHeader(e.status)
			fmt.Fprintf(w, `{"error":"server_error","error_description":"echo %s"}`, r.PostForm.Get("client_secret"))
			return
		}
		if r.PostForm.Get("client_id") != "cid" || r.PostForm.Get("client_secret") != "cs-s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		g := r.PostForm.Get("grant_type")
		e.grants = append(e.grants, g)
		n := len(e.grants)
		switch g {
		case "client_credentials":
		case "refresh_token":
			if r.PostForm.Get("refresh_token") != e.refresh {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"invalid_grant"}`)
				return
			}
			if e.rotate {
				e.refresh = fmt.Sprintf("rt-%d-s3cret", n)
				fmt.Fprintf(w, `{"access_token":"at-%d","expires_in":%d,"refresh_token":%q}`, n, e.expireIn, e.refresh)
				return
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":%d}`, n, e.expireIn)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) count() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.grants) }

func openDB(t *testing.T) *store.DB {
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }
func tok(t *testing.T, s *connectors.TokenSource) string {
	t.Helper()
	v, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A token is reused until its stored expiry minus the margin, then renewed
// before it expires (not after a 401); it survives a restart (the state
// store); a 401 forces one renewal.
func TestTokenSourceRenewsByExpiry(t *testing.T) {
	for _, grant := range []string{connectors.GrantClientCredentials, connectors.GrantRefreshToken} {
		t.Run(grant, func(t *testing.T) {
			ep := newTokenEndpoint(t)
			ep.rotate = true
			db, clk := openDB(t), newClock()
			cfg := connectors.OAuth2Config{Connector: "crm-tpl-x", TokenURL: ep.srv.URL + "/token", Grant: grant, ClientID: "cid",
				ClientSecret: "cs-s3cret", RefreshToken: "rt-0-s3cret", Margin: time.Minute, Store: db, Now: clk.now}
			s, err := connectors.NewTokenSource(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok(t, s); got != "at-1" {
				t.Fatalf("token %s", got)
			}
			clk.add(58 * time.Minute) // 2 min left: still good
			if got := tok(t, s); got != "at-1" || ep.count() != 1 {
				t.Fatalf("token %s after %d grants", got, ep.count())
			}
			clk.add(90 * time.Second) // 30 s left, inside the margin: renewed before it expires
			if got := tok(t, s); got != "at-2" {
				t.Fatalf("token %s, want a renewal inside the margin", got)
			}
			// A restart: the stored token (and a rotated refresh token) is used.
			s2, _ := connectors.NewTokenSource(cfg)
			if got := tok(t, s2); got != "at-2" || ep.count() != 2 {
				t.Fatalf("after a restart: token %s, %d grants", got, ep.count())
			}
			s2.Invalidate("at-2") // the CRM said 401
			if got := tok(t, s2); got != "at-3" {
				t.Fatalf("after a 401: token %s", got)
			}
			s2.Invalidate("at-2") // a stale 401 does not renew again
			if got := tok(t, s2); got != "at-3" || ep.count() != 3 {
				t.Fatalf("token %s, %d grants", got, ep.count())
			}
			raw, _ := db.ConnectorToken(context.Background(), "crm-tpl-x")
			if !strings.Contains(string(raw), `"access_token":"at-3"`) {
				t.Errorf("stored %s", raw)
			}
		})
	}
}

// New credentials in the config are not shadowed by a token stored for the
// old ones.
func TestTokenSourceNewCredentials(t *testing.T) {
	ep := newTokenEndpoint(t)
	db := openDB(t)
	cfg := connectors.OAuth2Config{Connector: "c", TokenURL: ep.srv.URL, Grant: connectors.GrantClientCredentials, ClientID: "cid", ClientSecret: "cs-s3cret", Store: db}
	s, _ := connectors.NewTokenSource(cfg)
	tok(t, s)
	cfg.Scopes = []string{"calls.write"}
	s2, _ := connectors.NewTokenSource(cfg)
	if got := tok(t, s2); got != "at-2" {
		t.Errorf("token %s, want a new one for the new scopes", got)
	}
}

// Refused credentials are permanent and name what to check; an endpoint
// outage is retried; no message holds a secret.
func TestTokenSourceErrors(t *testing.T) {
	ep := newTokenEndpoint(t)
	db := openDB(t)
	s, _ := connectors.NewTokenSource(connectors.OAuth2Config{Connector: "c", TokenURL: ep.srv.URL, Grant: connectors.GrantRefreshToken,
		ClientID: "cid", ClientSecret: "cs-s3cret", RefreshToken: "wrong-s3cret", Store: db})
	_, err := s.Token(context.Background())
	if _, _, perm := bridge.ConnectorOutcome(err); !perm || !strings.Contains(err.Error(), "HTTP 400: invalid_grant") ||
		!strings.Contains(err.Error(), "refresh token") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("invalid grant: %v", err)
	}
	ep.mu.Lock()
	ep.status = http.StatusServiceUnavailable
	ep.mu.Unlock()
	_, err = s.Token(context.Background())
	if code, _, perm := bridge.ConnectorOutcome(err); perm || code != 503 || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("outage: %v", err)
	}
	for _, bad := range []connectors.OAuth2Config{
		{TokenURL: "ftp://x", Grant: "client_credentials", ClientID: "c", Store: db},
		{TokenURL: "https://x/t", Grant: "password", ClientID: "c", Store: db},
		{TokenURL: "https://x/t", Grant: "refresh_token", ClientID: "c", Store: db},
	} {
		if _, err := connectors.NewTokenSource(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// A 200 without access_token (a token under another name, a form-encoded
// answer) never reaches the error, which goes to the attempt log: the
// error names the answer's keys, not its values.
func TestTokenSourceOddAnswerNotEchoed(t *testing.T) {
	for _, tc := range []struct{ ctype, body string }{
		{"application/json", `{"accessToken":"at-LEAK-1","expires_in":3600}`},
		{"application/x-www-form-urlencoded", `access_token=at-LEAK-1&token_type=bearer`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.ctype)
			fmt.Fprint(w, tc.body)
		}))
		s, err := connectors.NewTokenSource(connectors.OAuth2Config{Connector: "c", TokenURL: srv.URL,
			Grant: connectors.GrantClientCredentials, ClientID: "cid", ClientSecret: "cs-s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Token(context.Background())
		srv.Close()
		if err == nil || strings.Contains(err.Error(), "LEAK") || !strings.Contains(err.Error(), "without an access_token") {
			t.Errorf("%s: %v", tc.ctype, err)
		}
	}
}
