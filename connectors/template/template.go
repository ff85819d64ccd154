package template

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
)

// Defaults of a template's rate bucket.
const (
	DefaultBurst = 10
	DefaultRate  = 5.0
)

// EndpointPrefix starts a template connector's endpoint id: crm-tpl-<name>.
const EndpointPrefix = "crm-tpl-"

// Template is a compiled, validated template.
type Template struct {
	Name     string
	Spec     Spec
	secrets  map[string]string // name → value, only those the template uses
	when     *part
	url      *part
	body     *part
	headers  map[string]*part
	capture  map[string]Path
	success  []int
	remember map[string]*part
}

var (
	reHeader  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	reCapture = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// reserved headers the request sets itself.
var reservedHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"}

// Compile checks spec and parses its templates. secrets are the configured
// secret values by name. Every problem is returned (Errors), each naming the
// template, the field and, for template syntax, the line and column.
func Compile(name string, spec Spec, secrets map[string]string) (*Template, error) {
	var errs Errors
	bad := func(field, format string, a ...any) {
		errs = append(errs, &Error{Template: name, Field: field, Problem: fmt.Sprintf(format, a...)})
	}
	t := &Template{Name: name, Spec: spec, secrets: map[string]string{}, headers: map[string]*part{}, capture: map[string]Path{}, remember: map[string]*part{}}
	if !ReName.MatchString(name) {
		bad("name", "must be 1..32 lower-case letters, digits, - and _ starting with a letter or digit")
	}
	if len(spec.On) == 0 {
		bad("on", "list the event types to send, e.g. [call.ringing, call.answered, call.ended]")
	}
	for _, ev := range spec.On {
		if !slices.Contains(bridge.EventTypes, ev) {
			bad("on", "%q is not an event type (one of %s)", ev, strings.Join(bridge.EventTypes, ", "))
		}
	}
	if strings.TrimSpace(spec.When) != "" {
		if strings.Contains(spec.When, "{{") {
			bad("when", "write the condition without {{ }}, e.g. when: 'eq .Call.Direction \"inbound\"'")
		} else if p, err := parsePart("when", "{{if "+spec.When+"}}1{{end}}", ctxNone); err != nil {
			bad("when", "%v", err)
		} else {
			t.when = p
		}
	}
	r := &t.Spec.Request
	r.Method = strings.ToUpper(strings.TrimSpace(r.Method))
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	if !slices.Contains(Methods, r.Method) {
		bad("request.method", "%q is not allowed (one of %s)", r.Method, strings.Join(Methods, ", "))
	}
	if r.Encoding == "" {
		r.Encoding = "json"
	}
	if _, ok := Encodings[r.Encoding]; !ok {
		bad("request.encoding", "%q is not an encoding (json, form or xml)", r.Encoding)
	}
	if strings.TrimSpace(r.Body) != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete) {
		bad("request.body", "a %s request has no body: put the values in the URL's query", r.Method)
	}
	if err := checkURLTemplate(r.URL); err != "" {
		bad("request.url", "%s", err)
	} else if p, err := parsePart("request.url", r.URL, ctxURL); err != nil {
		bad("request.url", "%v", err)
	} else {
		t.url = p
	}
	if p, err := parsePart("request.body", r.Body, ctxByEncoding(r.Encoding)); err != nil {
		bad("request.body", "%v", err)
	} else {
		t.body = p
	}
	for _, h := range sortedKeys(r.Headers) {
		field := "request.headers." + h
		switch {
		case !reHeader.MatchString(h):
			bad(field, "is not a header name (letters, digits and -)")
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, h) }):
			bad(field, "is set by ctibridge itself")
		case strings.EqualFold(h, "Authorization") && spec.Auth.Kind != "" && spec.Auth.Kind != "none":
			bad(field, "is set by auth (kind %s): remove it", spec.Auth.Kind)
		default:
			if p, err := parsePart(field, r.Headers[h], ctxHeader); err != nil {
				bad(field, "%v", err)
			} else {
				t.headers[h] = p
			}
		}
	}
	t.checkAuth(secrets, bad)
	for _, code := range spec.Response.Success {
		if code < 200 || code > 399 {
			bad("response.success", "%d is not a success status (200..399)", code)
		}
	}
	t.success = spec.Response.Success
	for _, k := range sortedKeys(spec.Response.Capture) {
		if !reCapture.MatchString(k) {
			bad("response.capture", "%q is not a name (letters, digits and _): later requests read it as .State.<name>", k)
			continue
		}
		p, err := ParsePath(spec.Response.Capture[k])
		if err != nil {
			bad("response.capture."+k, "%v", err)
			continue
		}
		t.capture[k] = p
	}
	for _, k := range sortedKeys(spec.Remember) {
		field := "remember." + k
		if !reCapture.MatchString(k) {
			bad("remember", "%q is not a name (letters, digits and _): later requests read it as .State.<name>", k)
		} else if _, dup := t.capture[k]; dup {
			bad(field, "is also captured from the answer: use one name for one value")
		} else if p, err := parsePart(field, spec.Remember[k], ctxHeader); err != nil {
			bad(field, "%v", err)
		} else {
			t.remember[k] = p
		}
	}
	rt := &t.Spec.Rate
	if rt.Burst == 0 {
		rt.Burst = DefaultBurst
	}
	if rt.Rate == 0 {
		rt.Rate = DefaultRate
	}
	if rt.Burst < 1 || rt.Burst > 10000 {
		bad("rate.burst", "must be 1..10000, got %d", rt.Burst)
	}
	if !(rt.Rate > 0 && rt.Rate <= 1000) {
		bad("rate.rate", "must be above 0 and at most 1000 requests per second, got %v", rt.Rate)
	}
	for m, kv := range spec.Maps {
		if !reCapture.MatchString(m) {
			bad("maps."+m, "is not a name (letters, digits and _)")
		}
		_ = kv
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// A trial render of every event type the template takes catches a
	// misspelt field (.Call.Caler) now rather than at the first call.
	for _, ev := range spec.On {
		d := Sample(ev)
		for k := range t.capture {
			d.State[k] = "sample"
		}
		for k := range t.remember {
			d.State[k] = "sample"
		}
		if _, err := t.render(d, true); err != nil {
			// Scrubbed: a helper given a secret by mistake quotes it.
			errs = append(errs, &Error{Template: name, Field: fieldOf(err), Problem: t.scrub(fmt.Sprintf("with a sample %s event: %v", ev, err))})
			break
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// fieldOf reads the field a render error is about.
func fieldOf(err error) string {
	var re *renderError
	if errors.As(err, &re) {
		return re.field
	}
	return ""
}

type renderError struct {
	field string
	err   error
}

func (e *renderError) Error() string { return e.err.Error() }

func ctxByEncoding(enc string) where {
	switch enc {
	case "form":
		return ctxForm
	case "xml":
		return ctxXML
	}
	return ctxJSON
}

// checkURLTemplate makes sure the scheme and host are written out, not
// printed from a value: an event's field cannot choose where the request
// (and its credentials) go.
func checkURLTemplate(raw string) string {
	if raw == "" {
		return "is required (https://crm.example.com/api/calls)"
	}
	lit, _, _ := strings.Cut(raw, "{{")
	u, err := url.Parse(lit)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "must start with http(s)://host written out (a value cannot choose the host)"
	}
	if u.User != nil {
		return "must hold no credentials: use auth"
	}
	if strings.Contains(raw, "{{") && !strings.Contains(strings.TrimPrefix(lit, u.Scheme+"://"), "/") {
		return "the host must be followed by / before the first {{ }} (a value cannot choose the host)"
	}
	return ""
}

func (t *Template) checkAuth(secrets map[string]string, bad func(field, format string, a ...any)) {
	a := &t.Spec.Auth
	need := func(field, name string) {
		switch {
		case name == "":
			bad("auth."+field, "is required for kind %s: the name of a secret in connectors.template_secrets", a.Kind)
		case !reSecretName.MatchString(name):
			// Not repeated: it may be a secret pasted here by mistake.
			bad("auth."+field, "must be the NAME of a secret (lower-case letters, digits, _), set as connectors.template_secrets.<name> (CTIBRIDGE_CONNECTORS__TEMPLATE_SECRETS__<NAME>)")
		case secrets[name] == "":
			bad("auth."+field, "secret %q is not set: set connectors.template_secrets.%s (CTIBRIDGE_CONNECTORS__TEMPLATE_SECRETS__%s)", name, name, strings.ToUpper(name))
		default:
			t.secrets[name] = secrets[name]
		}
	}
	if a.Kind == "" {
		a.Kind = "none"
	}
	switch a.Kind {
	case "none":
	case "basic":
		if a.Username == "" {
			bad("auth.username", "is required for kind basic")
		}
		need("password", a.Password)
	case "bearer":
		need("token", a.Token)
	case "oauth2":
		if a.Grant != connectors.GrantClientCredentials && a.Grant != connectors.GrantRefreshToken {
			bad("auth.grant", "must be client_credentials or refresh_token, got %q", a.Grant)
		}
		if u, err := url.Parse(a.TokenURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
			bad("auth.token_url", "must be the token endpoint's http(s) URL, without credentials")
		}
		if a.ClientID == "" {
			bad("auth.client_id", "is required for kind oauth2")
		}
		need("client_secret", a.ClientSecret)
		if a.Grant == connectors.GrantRefreshToken {
			need("refresh_token", a.RefreshToken)
		}
	case "hmac":
		need("secret", a.Secret)
		if !reHeader.MatchString(a.Header) {
			bad("auth.header", "is required for kind hmac: the signature header's name, e.g. X-Signature")
		}
		if a.Algorithm == "" {
			a.Algorithm = "sha256"
		}
		if _, ok := hmacs[a.Algorithm]; !ok {
			bad("auth.algorithm", "%q is not sha256, sha512 or sha1", a.Algorithm)
		}
	default:
		bad("auth.kind", "%q is not none, basic, bearer, oauth2 or hmac", a.Kind)
	}
	if a.Scheme == "" {
		a.Scheme = "Bearer"
	}
	if !reHeader.MatchString(a.Scheme) {
		bad("auth.scheme", "must be one word, e.g. Bearer or Zoho-oauthtoken")
	}
	// The secret helper may name only configured secrets.
	for _, src := range append([]string{t.Spec.Request.URL, t.Spec.Request.Body}, mapValues(t.Spec.Request.Headers)...) {
		for _, m := range reSecretCall.FindAllStringSubmatch(src, -1) {
			need("(secret \""+m[1]+"\")", m[1])
		}
	}
}

var reSecretCall = regexp.MustCompile(`secret\s+"([^"]*)"`)

var hmacs = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New, "sha1": sha1.New}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// Target is where the requests go, scheme://host (the URL's written-out
// part, which holds no secret), for logs and the endpoint list.
func (t *Template) Target() string {
	lit, _, _ := strings.Cut(t.Spec.Request.URL, "{{")
	u, err := url.Parse(lit)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// Rendered is a request as it will be sent, before auth.
type Rendered struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Matches reports whether the template sends something for d.
func (t *Template) Matches(d *Data) (bool, error) {
	if !slices.Contains(t.Spec.On, d.Type) {
		return false, nil
	}
	if t.when == nil {
		return true, nil
	}
	out, err := t.when.exec(d, t.funcs(false))
	if err != nil {
		return false, &renderError{field: "when", err: err}
	}
	return out == "1", nil
}

// funcs are the helpers bound to this template.
func (t *Template) funcs(trial bool) template.FuncMap {
	fm := staticFuncs()
	fm["lookup"] = func(m string, key any) (string, error) {
		k := text(key)
		if v, ok := t.Spec.Maps[m][k]; ok {
			return v, nil
		}
		if trial {
			return "sample", nil
		}
		if _, ok := t.Spec.Maps[m]; !ok {
			return "", fmt.Errorf("lookup: no map %q under maps", m)
		}
		return "", fmt.Errorf("lookup: %q is not in maps.%s", k, m)
	}
	fm["secret"] = func(n string) (string, error) {
		if v, ok := t.secrets[n]; ok {
			return v, nil
		}
		return "", fmt.Errorf("secret %q is not configured", n)
	}
	return fm
}

// Render renders the request for d (without auth).
func (t *Template) Render(d *Data) (*Rendered, error) { return t.render(d, false) }

func (t *Template) render(d *Data, trial bool) (*Rendered, error) {
	fm := t.funcs(trial)
	if trial && t.when != nil {
		if _, err := t.when.exec(d, fm); err != nil {
			return nil, &renderError{field: "when", err: err}
		}
	}
	if trial {
		for _, k := range sortedKeys(t.remember) {
			if _, err := t.remember[k].exec(d, fm); err != nil {
				return nil, &renderError{field: "remember." + k, err: err}
			}
		}
	}
	u, err := t.url.exec(d, fm)
	if err != nil {
		return nil, &renderError{field: "request.url", err: err}
	}
	u = dropSpace(u) // printed values are escaped: raw spaces are layout
	// The host was written out: whatever was printed cannot have moved it.
	if pu, err := url.Parse(u); err != nil || pu.Host == "" {
		return nil, &renderError{field: "request.url", err: errors.New("the rendered URL is not a URL")}
	}
	body, err := t.body.exec(d, fm)
	if err != nil {
		return nil, &renderError{field: "request.body", err: err}
	}
	if t.Spec.Request.Encoding == "form" {
		// Every printed value is encoded, so raw whitespace can only be
		// the template's layout (one parameter a line): drop it.
		body = dropSpace(body)
	}
	if err := checkBody(t.Spec.Request.Encoding, []byte(body)); err != nil {
		return nil, &renderError{field: "request.body", err: err}
	}
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", Encodings[t.Spec.Request.Encoding])
	}
	h.Set("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
	for _, k := range sortedKeys(t.headers) {
		v, err := t.headers[k].exec(d, fm)
		if err != nil {
			return nil, &renderError{field: "request.headers." + k, err: err}
		}
		h.Set(k, v)
	}
	return &Rendered{Method: t.Spec.Request.Method, URL: u, Header: h, Body: []byte(body)}, nil
}

func dropSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

// scrub replaces every secret value in s.
func (t *Template) scrub(s string, extra ...string) string {
	for _, v := range append(mapValues(t.secrets), extra...) {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
			if q := url.QueryEscape(v); q != v {
				s = strings.ReplaceAll(s, q, "***")
			}
		}
	}
	return s
}

// sign returns the hmac auth's header value for body.
func (t *Template) sign(body []byte) string {
	a := t.Spec.Auth
	m := hmac.New(hmacs[a.Algorithm], []byte(t.secrets[a.Secret]))
	m.Write(body)
	return a.Prefix + hex.EncodeToString(m.Sum(nil))
}

// DryRun renders the request for the event ev and returns it as text:
// method, URL, headers and body, with every secret replaced by ***. Nothing
// is sent; an oauth2 token is shown as a placeholder.
func (t *Template) DryRun(ev bridge.Event, state map[string]string) (string, error) {
	d := &Data{Event: ev, State: state}
	if d.State == nil {
		d.State = map[string]string{}
	}
	var sb strings.Builder
	ok, err := t.Matches(d)
	if err != nil {
		return "", errors.New(t.scrub(err.Error()))
	}
	if !ok {
		if slices.Contains(t.Spec.On, ev.Type) {
			fmt.Fprintf(&sb, "# %s: the when condition is false for this event: nothing would be sent\n", t.Name)
		} else {
			fmt.Fprintf(&sb, "# %s: %s is not in on (%s): nothing would be sent\n", t.Name, ev.Type, strings.Join(t.Spec.On, ", "))
		}
		return sb.String(), nil
	}
	r, err := t.Render(d)
	if err != nil {
		return "", errors.New(t.scrub(err.Error()))
	}
	a := t.Spec.Auth
	switch a.Kind {
	case "basic":
		r.Header.Set("Authorization", "Basic *** (user "+a.Username+")")
	case "bearer":
		r.Header.Set("Authorization", a.Scheme+" ***")
	case "oauth2":
		r.Header.Set("Authorization", a.Scheme+" *** (an access token from "+a.TokenURL+")")
	case "hmac":
		r.Header.Set(a.Header, a.Prefix+"*** (HMAC-"+strings.ToUpper(a.Algorithm)+" of the body)")
	}
	fmt.Fprintf(&sb, "%s %s\n", r.Method, t.scrub(r.URL))
	for _, k := range sortedKeys(r.Header) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&sb, "%s: %s\n", k, t.scrub(v))
		}
	}
	sb.WriteString("\n")
	sb.WriteString(t.scrub(string(r.Body)))
	if len(r.Body) > 0 && !bytes.HasSuffix(r.Body, []byte("\n")) {
		sb.WriteString("\n")
	}
	return sb.String(), nil
}

// Sample is a fully populated event of type typ, for the trial render at
// load (every optional field set, so a misspelt one is found).
func Sample(typ string) *Data {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	ans, end := at.Add(5*time.Second), at.Add(65*time.Second)
	n := func(v int64) *int64 { return &v }
	agent := &bridge.Agent{Extension: "101", Name: "Anna Agent"}
	ev := bridge.Event{ID: "evt_sample", Type: typ, OccurredAt: at, Sequence: 1, PBX: "pbx1", ConversationID: "conv_sample",
		Agent: agent, Party: "",
		Call: &bridge.Call{ID: "conv_sample", Direction: bridge.DirectionInbound, State: "ringing",
			Caller: bridge.Party{Number: "05551234", Name: "Carl Caller", E164: "+495551234"},
			Callee: bridge.Party{Number: "101", Name: "Anna Agent"}, Agent: agent, Queue: "sales",
			StartedAt: at, AnsweredAt: &ans, EndedAt: &end, DurationS: n(65), TalkS: n(60), WaitS: n(5),
			Disposition: bridge.DispositionAnswered, HangupCause: &bridge.HangupCause{Code: 16, Text: "Normal Clearing"},
			HangupBy: "caller", Recording: &bridge.Recording{Path: "/rec/x.wav", DurationS: n(60)},
			Variables: map[string]string{"sample": "1"}},
		Park:       &bridge.Park{Slot: "701", Lot: "default"},
		Transfer:   &bridge.Transfer{Mode: "blind", From: agent, To: "102"},
		Recording:  &bridge.Recording{Path: "/rec/x.wav", DurationS: n(60)},
		AgentState: &bridge.AgentStat{Queue: "sales", State: "available"},
	}
	return &Data{Event: ev, State: map[string]string{}}
}

// Options configure a template connector.
type Options struct {
	Template *Template
	Client   *http.Client // the dispatcher's, which enforces the address policy
	State    bridge.ConnectorStateStore
	Tokens   connectors.TokenStore // where an oauth2 token is kept; nil: memory only
	Limiter  *connectors.Limiter   // nil: from the template's rate
	Logger   *slog.Logger
	Now      func() time.Time // tests (the oauth2 expiry)
}

// Connector sends a template's requests.
type Connector struct {
	t     *Template
	opts  Options
	lim   *connectors.Limiter
	oauth *connectors.TokenSource
	log   *slog.Logger
}

var _ bridge.Connector = (*Connector)(nil)

// New returns the connector of a compiled template.
func New(opts Options) (*Connector, error) {
	if opts.Template == nil || opts.State == nil {
		return nil, errors.New("template connector: a template and a state store are required")
	}
	if opts.Client == nil {
		opts.Client = connectors.NewClient()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := opts.Template
	if opts.Limiter == nil {
		opts.Limiter = connectors.NewLimiter(t.Spec.Rate.Burst, t.Spec.Rate.Rate)
	}
	c := &Connector{t: t, opts: opts, lim: opts.Limiter, log: opts.Logger.With("connector", c0(t))}
	if a := t.Spec.Auth; a.Kind == "oauth2" {
		ts, err := connectors.NewTokenSource(connectors.OAuth2Config{Connector: c.Name(), TokenURL: a.TokenURL, Grant: a.Grant,
			ClientID: a.ClientID, ClientSecret: t.secrets[a.ClientSecret], RefreshToken: t.secrets[a.RefreshToken],
			Scopes: a.Scopes, Client: opts.Client, Store: opts.Tokens, Now: opts.Now})
		if err != nil {
			return nil, err
		}
		c.oauth = ts
	}
	return c, nil
}

func c0(t *Template) string { return EndpointPrefix + t.Name }

// Name implements bridge.Connector: the state rows' connector name.
func (c *Connector) Name() string { return c0(c.t) }

// callState is what the connector keeps of a call.
type callState struct {
	Captured map[string]string `json:"captured,omitempty"`
	Done     []string          `json:"done,omitempty"` // event ids already sent (a replay or a retry after a lost commit sends nothing twice)
}

const maxDone = 64

// Deliver implements bridge.Connector.
func (c *Connector) Deliver(ctx context.Context, rec bridge.Record) error {
	if !slices.Contains(c.t.Spec.On, rec.Type) {
		return nil
	}
	var ev bridge.Event
	if err := json.Unmarshal(rec.Payload, &ev); err != nil {
		return bridge.PermanentError(fmt.Errorf("%s: event unreadable: %v", c.Name(), err))
	}
	var st callState
	conv := rec.ConversationID
	if conv != "" {
		if err := connectors.LoadState(ctx, c.opts.State, c.Name(), conv, &st); err != nil {
			return err
		}
		if slices.Contains(st.Done, rec.ID) {
			return nil
		}
	}
	if st.Captured == nil {
		st.Captured = map[string]string{}
	}
	d := &Data{Event: ev, State: st.Captured}
	ok, err := c.t.Matches(d)
	if err != nil {
		return bridge.PermanentError(fmt.Errorf("%s: when: %s", c.Name(), c.t.scrub(err.Error())))
	}
	if !ok {
		return nil
	}
	r, err := c.t.Render(d)
	if err != nil {
		return bridge.PermanentError(fmt.Errorf("%s: %s: %s", c.Name(), fieldOf(err), c.t.scrub(err.Error())))
	}
	answer, err := c.send(ctx, r, true)
	if err != nil {
		return err
	}
	if len(c.t.capture) > 0 {
		var doc any
		dec := json.NewDecoder(bytes.NewReader(answer))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil && c.allCaptured(st.Captured) {
			// A later step's answer (a 204, "OK"): what it would capture
			// came with an earlier one. An error here would dead-letter a
			// request the CRM took, and a replay would send it twice.
			doc = nil
		} else if err != nil {
			// The CRM did the work but its answer holds no id: retrying
			// would do it twice.
			return bridge.PermanentError(fmt.Errorf("%s: the answer is not JSON, so nothing could be captured (%v): %s",
				c.Name(), err, connectors.Snippet([]byte(c.t.scrub(string(answer), c.tokens()...)), "")))
		}
		var missing []string
		for _, k := range sortedKeys(c.t.capture) {
			if doc == nil {
				break
			}
			if v, ok := c.t.capture[k].Get(doc); ok {
				st.Captured[k] = v
			} else {
				missing = append(missing, k+" ("+c.t.Spec.Response.Capture[k]+")")
			}
		}
		if len(missing) > 0 {
			c.log.Warn("the CRM's answer lacks a value to capture", "conversation", conv, "missing", strings.Join(missing, ", "),
				"answer", connectors.Snippet([]byte(c.t.scrub(string(answer), c.tokens()...)), ""))
		}
	}
	for _, k := range sortedKeys(c.t.remember) {
		v, err := c.t.remember[k].exec(d, c.t.funcs(false))
		if err != nil {
			c.log.Warn("a value to remember could not be rendered", "conversation", conv, "field", "remember."+k, "err", c.t.scrub(err.Error()))
			continue
		}
		if v != "" {
			st.Captured[k] = v
		}
	}
	if conv == "" {
		return nil
	}
	st.Done = append(st.Done, rec.ID)
	if len(st.Done) > maxDone {
		st.Done = st.Done[len(st.Done)-maxDone:]
	}
	return connectors.SaveState(ctx, c.opts.State, c.Name(), conv, &st)
}

// allCaptured reports whether every capture already has a value.
func (c *Connector) allCaptured(captured map[string]string) bool {
	for k := range c.t.capture {
		if _, ok := captured[k]; !ok {
			return false
		}
	}
	return true
}

func (c *Connector) tokens() []string {
	if c.oauth == nil {
		return nil
	}
	return c.oauth.Secrets()
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 1 << 20

// send sends r with the auth and classifies the answer: success statuses
// return the body; 401 with oauth2 renews the token once and retries once;
// 408, 429 and 5xx are retried (after Retry-After); other statuses are
// permanent. No message holds a secret.
func (c *Connector) send(ctx context.Context, r *Rendered, firstTry bool) ([]byte, error) {
	if err := c.lim.Wait(ctx); err != nil {
		return nil, fmt.Errorf("%s: waiting for the rate limit: %w", c.Name(), err)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, bridge.PermanentError(fmt.Errorf("%s: request.url: %s", c.Name(), c.t.scrub(err.Error())))
	}
	if len(r.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header = r.Header.Clone()
	a := c.t.Spec.Auth
	var token string
	switch a.Kind {
	case "basic":
		req.SetBasicAuth(a.Username, c.t.secrets[a.Password])
	case "bearer":
		req.Header.Set("Authorization", a.Scheme+" "+c.t.secrets[a.Token])
	case "oauth2":
		if token, err = c.oauth.Token(ctx); err != nil {
			return nil, prefixErr(c.Name(), err)
		}
		req.Header.Set("Authorization", a.Scheme+" "+token)
	case "hmac":
		req.Header.Set(a.Header, c.t.sign(r.Body))
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL
		}
		return nil, fmt.Errorf("%s: %s", c.Name(), c.t.scrub(err.Error(), c.tokens()...))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if c.success(resp.StatusCode) {
		return raw, nil
	}
	if resp.StatusCode == http.StatusUnauthorized && c.oauth != nil && firstTry {
		// The token was revoked or expired early: one renewal, one retry.
		c.oauth.Invalidate(token)
		c.log.Info("the CRM refused the OAuth2 token: renewing it once")
		return c.send(ctx, r, false)
	}
	msg := fmt.Sprintf("%s: HTTP %d", c.Name(), resp.StatusCode)
	if s := connectors.Snippet([]byte(c.t.scrub(string(raw), c.tokens()...)), ""); s != "" {
		msg += ": " + s
	}
	ce := &bridge.ConnectorError{StatusCode: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		ce.RetryAfter = connectors.RetryAfter(resp.Header.Get("Retry-After"))
		if code == http.StatusTooManyRequests {
			c.lim.Drain()
		}
	case code == http.StatusRequestTimeout, code >= 500:
	case code/100 == 3:
		ce.Permanent = true
		msg += " (a redirect is not followed: fix request.url)"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		ce.Permanent = true
		msg += " (the CRM refused the credentials: check auth and the secrets, then replay)"
	default:
		ce.Permanent = true
	}
	ce.Err = errors.New(msg)
	return nil, ce
}

func (c *Connector) success(code int) bool {
	if len(c.t.success) == 0 {
		return code/100 == 2
	}
	return slices.Contains(c.t.success, code)
}

// prefixErr names the connector in err, keeping its classification.
func prefixErr(name string, err error) error {
	var ce *bridge.ConnectorError
	if errors.As(err, &ce) {
		return &bridge.ConnectorError{StatusCode: ce.StatusCode, RetryAfter: ce.RetryAfter, Permanent: ce.Permanent,
			Err: fmt.Errorf("%s: %w", name, ce.Err)}
	}
	return fmt.Errorf("%s: %w", name, err)
}
