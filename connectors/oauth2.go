package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// TokenStore keeps one OAuth2 token per connector so that a restart reuses
// it (the store's DB implements it, in its meta table: connector_state rows
// belong to a conversation and are pruned with it, a token belongs to none).
type TokenStore interface {
	ConnectorToken(ctx context.Context, connector string) ([]byte, error)
	SaveConnectorToken(ctx context.Context, connector string, token []byte) error
}

// OAuth2 grants.
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// OAuth2Config configures a TokenSource.
type OAuth2Config struct {
	Connector    string // the state row's connector name
	TokenURL     string
	Grant        string // GrantClientCredentials or GrantRefreshToken
	ClientID     string
	ClientSecret string
	RefreshToken string // the refresh_token grant's token (a rotated one is kept in the state)
	Scopes       []string
	// Margin is how long before the stored expiry a token is renewed
	// (default 2 minutes), so a request never leaves with a token about to
	// expire.
	Margin time.Duration
	Client *http.Client
	Store  TokenStore       // nil: the token is kept in memory only
	Now    func() time.Time // tests
}

// TokenSource hands out an OAuth2 access token, renewed by its stored
// expiry rather than by waiting for a 401.
type TokenSource struct {
	cfg  OAuth2Config
	seed string // fingerprint of the configured credentials

	mu  sync.Mutex
	tok *storedToken
}

type storedToken struct {
	Seed         string    `json:"seed"` // the credentials it came from: new ones make it stale
	AccessToken  string    `json:"access_token"`
	Expiry       time.Time `json:"expiry"`
	RefreshToken string    `json:"refresh_token,omitempty"` // a rotated refresh token
}

// NewTokenSource checks cfg.
func NewTokenSource(cfg OAuth2Config) (*TokenSource, error) {
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return nil, errors.New("oauth2: token_url must be an http(s) URL without credentials")
	}
	switch cfg.Grant {
	case GrantClientCredentials:
	case GrantRefreshToken:
		if cfg.RefreshToken == "" {
			return nil, errors.New("oauth2: the refresh_token grant needs a refresh token")
		}
	default:
		return nil, fmt.Errorf("oauth2: grant must be %s or %s", GrantClientCredentials, GrantRefreshToken)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oauth2: a client id is required")
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 2 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = NewClient()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := sha256.Sum256([]byte(strings.Join([]string{cfg.TokenURL, cfg.Grant, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken, strings.Join(cfg.Scopes, " ")}, "\x00")))
	return &TokenSource{cfg: cfg, seed: hex.EncodeToString(h[:8])}, nil
}

// Secrets are the values to redact from anything shown: the configured
// secrets and the current tokens.
func (s *TokenSource) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{s.cfg.ClientSecret, s.cfg.RefreshToken}
	if s.tok != nil {
		out = append(out, s.tok.AccessToken, s.tok.RefreshToken)
	}
	return out
}

// Token returns a token valid for at least the margin, from memory, the
// state store, or the token endpoint.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		if st, err := s.load(ctx); err != nil {
			return "", err
		} else if st != nil && st.Seed == s.seed {
			s.tok = st
		}
	}
	if s.tok != nil && s.tok.AccessToken != "" && s.cfg.Now().Add(s.cfg.Margin).Before(s.tok.Expiry) {
		return s.tok.AccessToken, nil
	}
	return s.refresh(ctx)
}

// Invalidate drops token after the CRM refused it (a 401): the next Token
// asks the endpoint, unless another request already did.
func (s *TokenSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == token {
		s.tok.AccessToken, s.tok.Expiry = "", time.Time{}
	}
}

// refresh asks the token endpoint. s.mu is held.
func (s *TokenSource) refresh(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {s.cfg.Grant}, "client_id": {s.cfg.ClientID}}
	if s.cfg.ClientSecret != "" {
		form.Set("client_secret", s.cfg.ClientSecret)
	}
	if s.cfg.Grant == GrantRefreshToken {
		rt := s.cfg.RefreshToken
		if s.tok != nil && s.tok.RefreshToken != "" {
			rt = s.tok.RefreshToken // the endpoint rotated it
		}
		form.Set("refresh_token", rt)
	}
	if len(s.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(s.cfg.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", bridge.PermanentError(errors.New("oauth2: invalid token_url"))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("oauth2: token endpoint: %s", s.scrub(err.Error()))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr struct {
		AccessToken  string      `json:"access_token"`
		ExpiresIn    json.Number `json:"expires_in"`
		RefreshToken string      `json:"refresh_token"`
		Error        string      `json:"error"`
		Description  string      `json:"error_description"`
	}
	jerr := json.Unmarshal(raw, &tr)
	if resp.StatusCode != http.StatusOK || jerr != nil || tr.AccessToken == "" {
		desc := strings.TrimSpace(tr.Error + " " + tr.Description)
		if desc == "" {
			desc = Snippet([]byte(s.scrub(string(raw))), "")
		}
		msg := fmt.Errorf("oauth2: token endpoint: HTTP %d: %s", resp.StatusCode, s.scrub(desc))
		ce := &bridge.ConnectorError{StatusCode: resp.StatusCode, Err: msg}
		switch {
		case resp.StatusCode == http.StatusOK && tr.Error != "":
			// Some endpoints (Zoho) refuse with a 200 and an error.
			ce.Permanent = true
			ce.Err = fmt.Errorf("%w (check the client id, client secret and refresh token, then replay)", msg)
		case resp.StatusCode == http.StatusOK:
			// Not the body: a 200 from a token endpoint holds tokens, under
			// names this parser missed (accessToken) or form-encoded.
			ce.Err = fmt.Errorf("oauth2: token endpoint: HTTP 200 without an access_token (%s)", answerShape(resp.Header.Get("Content-Type"), raw))
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			ce.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"))
		default:
			// invalid_client, invalid_grant (a revoked refresh token): the
			// credentials need fixing.
			ce.Permanent = true
			ce.Err = fmt.Errorf("%w (check the client id, client secret and refresh token, then replay)", msg)
		}
		return "", ce
	}
	ttl := time.Hour // RFC 6749 leaves expires_in optional
	if n, err := tr.ExpiresIn.Int64(); err == nil && n > 0 {
		ttl = time.Duration(n) * time.Second
	}
	st := &storedToken{Seed: s.seed, AccessToken: tr.AccessToken, Expiry: s.cfg.Now().Add(ttl)}
	if s.tok != nil {
		st.RefreshToken = s.tok.RefreshToken
	}
	if tr.RefreshToken != "" && s.cfg.Grant == GrantRefreshToken {
		st.RefreshToken = tr.RefreshToken
	}
	s.tok = st
	if s.cfg.Store != nil {
		b, _ := json.Marshal(st)
		if err := s.cfg.Store.SaveConnectorToken(ctx, s.cfg.Connector, b); err != nil {
			// The token works; only a restart would ask for a new one.
			return st.AccessToken, nil
		}
	}
	return st.AccessToken, nil
}

// answerShape describes a token answer without its values: the JSON
// object's keys, or the content type and size.
func answerShape(ctype string, raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil && m != nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, strconv.Quote(Snippet([]byte(k), "")))
		}
		sort.Strings(keys)
		return "a JSON object with keys " + strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%d bytes of %s, not a JSON object", len(raw), strconv.Quote(Snippet([]byte(ctype), "")))
}

func (s *TokenSource) load(ctx context.Context) (*storedToken, error) {
	if s.cfg.Store == nil {
		return nil, nil
	}
	b, err := s.cfg.Store.ConnectorToken(ctx, s.cfg.Connector)
	if err != nil {
		return nil, fmt.Errorf("oauth2: reading the stored token: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var st storedToken
	if json.Unmarshal(b, &st) != nil {
		return nil, nil // unreadable: ask for a new one
	}
	return &st, nil
}

// scrub is called with s.mu held.
func (s *TokenSource) scrub(v string) string {
	secrets := []string{s.cfg.ClientSecret, s.cfg.RefreshToken}
	if s.tok != nil {
		secrets = append(secrets, s.tok.RefreshToken) // a rotated one
	}
	for _, sec := range secrets {
		if sec != "" {
			v = strings.ReplaceAll(v, sec, "***")
		}
	}
	return v
}
