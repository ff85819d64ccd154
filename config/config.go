// Package config loads ctibridge's configuration from a YAML file, CTIBRIDGE_*
// environment variables and command-line overrides (koanf), and validates it
// so a mistake fails at start with the key and the reason.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Config is the whole configuration.
type Config struct {
	PBX      PBX       `koanf:"pbx"`
	Store    Store     `koanf:"store"`
	HTTP     HTTP      `koanf:"http"`
	Webhooks []Webhook `koanf:"webhooks"`
	Delivery Delivery  `koanf:"delivery"`
	Calls    Calls     `koanf:"calls"`
	Commands Commands  `koanf:"commands"`
	Log      Log       `koanf:"log"`
	// Connectors are the CRM connectors (config/connectors.go).
	Connectors Connectors `koanf:"connectors"`
	// Sinks publish every event to a message system (config/sinks.go).
	Sinks Sinks `koanf:"sinks"`
	// Recordings are the signed recording links (config/recordings.go).
	Recordings Recordings `koanf:"recordings"`
	// Tenants tell a shared PBX's customers apart (config/tenants.go).
	Tenants Tenants `koanf:"tenants"`
}

// PBX is the Asterisk (AMI) or FreeSWITCH (ESL) to follow.
type PBX struct {
	Name          string        `koanf:"name"`
	Type          string        `koanf:"type"` // asterisk or freeswitch
	Address       string        `koanf:"address"`
	Username      string        `koanf:"username"`
	Secret        string        `koanf:"secret"`
	TLS           bool          `koanf:"tls"`
	TLSSkipVerify bool          `koanf:"tls_skip_verify"`
	PingInterval  time.Duration `koanf:"ping_interval"`
	ActionTimeout time.Duration `koanf:"action_timeout"`
	BackoffMax    time.Duration `koanf:"backoff_max"`
	// ReconcileInterval: how often the PBX's live channels are compared
	// with the call model while the link is up (0 turns it off).
	ReconcileInterval time.Duration `koanf:"reconcile_interval"`
	// ReorderWindow (FreeSWITCH): how long an event after a gap in
	// Event-Sequence waits for the missing ones; 0 passes events on in
	// the order they arrive.
	ReorderWindow time.Duration `koanf:"reorder_window"`
	EventFilters  []string      `koanf:"event_filters"`
}

// Store is the SQLite outbox.
type Store struct {
	Path          string `koanf:"path"`
	Synchronous   string `koanf:"synchronous"` // FULL or NORMAL
	RetentionDays int    `koanf:"retention_days"`
	// MaxQueuedEvents bounds the PBX events held in memory while the
	// store refuses commits; past it they are dropped and the PBX's state
	// is re-read once the store recovers.
	MaxQueuedEvents int `koanf:"max_queued_events"`
}

// HTTP is the REST/metrics listener.
type HTTP struct {
	Listen string `koanf:"listen"`
	// RequestTimeout bounds an API request's work.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// RecordingsDir is where GET /v1/calls/{id}/recording may read files
	// (the PBX's recording directory, mounted here); empty: not served.
	RecordingsDir string `koanf:"recordings_dir"`
	// Anonymous is what requests without an API key may do on a loopback
	// listener: none, read or control (never admin). Empty: read while no
	// key has ever existed, none after.
	Anonymous string `koanf:"anonymous"`
	// AnonymousLoopback is the older spelling: control while no key has
	// ever existed, none after.
	AnonymousLoopback bool `koanf:"anonymous_loopback"`
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed to
	// POST/PUT/PATCH/DELETE; AllowedHosts are Host values besides loopback
	// ones that requests without a key may carry.
	AllowedOrigins []string `koanf:"allowed_origins"`
	AllowedHosts   []string `koanf:"allowed_hosts"`
	// MaxStreams and MaxStreamsPerKey cap the open event streams.
	MaxStreams       int `koanf:"max_streams"`
	MaxStreamsPerKey int `koanf:"max_streams_per_key"`
	// PublicURL is the base URL CRMs reach ctibridge at (recording links,
	// the Bitrix24 event handler); empty: no recording links.
	PublicURL string `koanf:"public_url"`
	// Panel is the agent panel (GET /panel), see panel.go.
	Panel Panel `koanf:"panel"`
}

// Commands map CRM commands onto the dialplan. Empty values take the PBX
// adapter's defaults (see README).
type Commands struct {
	AgentDial       string        `koanf:"agent_dial"`       // Asterisk "Local/{agent}@from-internal", FreeSWITCH "user/{agent}"
	Context         string        `koanf:"context"`          // where the customer's number is dialled
	TransferContext string        `koanf:"transfer_context"` // where transfer targets are looked up (Asterisk)
	QueueInterface  string        `koanf:"queue_interface"`  // Asterisk queue member interface, {agent}
	CallcenterAgent string        `koanf:"callcenter_agent"` // FreeSWITCH mod_callcenter agent name, {agent}
	RecordDir       string        `koanf:"record_dir"`       // FreeSWITCH: where relative recording names go
	RingTimeout     time.Duration `koanf:"ring_timeout"`     // how long the agent's phone rings on click-to-call
	VariablePrefix  string        `koanf:"variable_prefix"`  // click-to-call variables must start with it (namespace), default crm_
}

// Webhook is one endpoint from the file.
type Webhook struct {
	ID     string   `koanf:"id"`
	URL    string   `koanf:"url"`
	Secret string   `koanf:"secret"`
	Events []string `koanf:"events"`
	// PreviousSecret is the secret being retired during a rotation:
	// requests are signed with both until it is removed.
	PreviousSecret string `koanf:"previous_secret"`
	// Tenant: the endpoint receives only this tenant's events ("": all).
	Tenant string `koanf:"tenant"`
}

// Delivery tunes webhook delivery.
type Delivery struct {
	RetryWindow            time.Duration `koanf:"retry_window"`
	Timeout                time.Duration `koanf:"timeout"`
	MaxInFlight            int           `koanf:"max_in_flight"`
	MaxInFlightPerEndpoint int           `koanf:"max_in_flight_per_endpoint"`
	AllowLoopback          bool          `koanf:"allow_loopback"`
	AllowPrivate           bool          `koanf:"allow_private"`
	AllowLinkLocal         bool          `koanf:"allow_link_local"`
	// TenantEndpointsPrivate lets endpoints a tenant makes over the API
	// use the addresses above too (default: public addresses only).
	TenantEndpointsPrivate bool `koanf:"tenant_endpoints_private"`
}

// Calls tells the call model how to read the dialplan.
type Calls struct {
	AgentPattern      string            `koanf:"agent_pattern"`
	InboundContexts   []string          `koanf:"inbound_contexts"`
	TrunkPattern      string            `koanf:"trunk_pattern"`
	DirectionVariable string            `koanf:"direction_variable"`
	DefaultRegion     string            `koanf:"default_region"`
	StripPrefixes     []string          `koanf:"strip_prefixes"`
	Agents            map[string]string `koanf:"agents"`
	// CheckInvariants checks the call model after every batch and logs
	// what breaks (debug; costs a scan of the live calls per batch).
	CheckInvariants bool `koanf:"check_invariants"`
}

// Log sets logging.
type Log struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// Default is the configuration before any file is read.
func Default() Config {
	return Config{
		PBX: PBX{Name: "pbx1", Type: "asterisk", Address: "127.0.0.1:5038", PingInterval: 20 * time.Second, ActionTimeout: 10 * time.Second, BackoffMax: 30 * time.Second,
			ReconcileInterval: 60 * time.Second, ReorderWindow: 5 * time.Millisecond},
		Store:    Store{Path: "./ctibridge.db", Synchronous: "FULL", RetentionDays: 90, MaxQueuedEvents: 1_000_000},
		HTTP:     HTTP{Listen: "127.0.0.1:8080", RequestTimeout: 20 * time.Second, MaxStreams: 1000, MaxStreamsPerKey: 50},
		Commands: Commands{RingTimeout: 30 * time.Second, VariablePrefix: bridge.DefaultVariablePrefix},
		Delivery: Delivery{RetryWindow: 72 * time.Hour, Timeout: 10 * time.Second, MaxInFlight: 256,
			MaxInFlightPerEndpoint: 16, AllowLoopback: true, AllowPrivate: true},
		Calls: Calls{AgentPattern: `^[0-9]{2,6}$`, InboundContexts: []string{"from-trunk", "from-pstn", "inbound", "public"},
			DefaultRegion: "US"},
		Log:        Log{Level: "info", Format: "text"},
		Connectors: defaultConnectors(),
		Sinks:      defaultSinks(),
		Recordings: Recordings{LinkTTL: 24 * time.Hour},
	}
}

// Error is a configuration mistake: the key and the reason.
type Error struct {
	Key    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Reason) }

// Load reads path (optional: "" skips the file), then CTIBRIDGE_* variables
// from environ (CTIBRIDGE_PBX__SECRET sets pbx.secret: a double underscore
// separates levels; EnvVars lists them all), then overrides (key → value),
// and validates. Every problem is returned at once (Errors). Relative path
// keys (store.path, http.recordings_dir) are resolved against the config
// file's directory, or the current one without a file.
func Load(path string, environ []string, overrides map[string]string) (Config, error) {
	k := koanf.New(".")
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return Config{}, &Error{Key: "--config", Reason: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err))}
		}
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, &Error{Key: "--config", Reason: fmt.Sprintf("%s is not valid YAML: %v", path, err)}
		}
	}
	var col collector
	vars := EnvVars()
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "CTIBRIDGE_") {
			continue
		}
		key, ignore, bad := envKey(vars, name)
		if bad != nil {
			col.add(bad)
			continue
		}
		if !ignore {
			if err := k.Set(key, val); err != nil {
				col.add(&Error{Key: name, Reason: err.Error()})
			}
		}
	}
	for key, val := range overrides {
		if err := k.Set(key, val); err != nil {
			col.add(&Error{Key: key, Reason: err.Error()})
		}
	}
	cfg := Default()
	decode("", k.Raw(), reflect.ValueOf(&cfg).Elem(), &col)
	base := "."
	if path != "" {
		base = filepath.Dir(path)
	}
	for i := range cfg.Connectors.Templates {
		if p := &cfg.Connectors.Templates[i].File; *p != "" {
			*p = resolvePath(base, *p) // a template file next to the config
		}
	}
	for _, p := range append([]*string{&cfg.Store.Path, &cfg.HTTP.RecordingsDir}, cfg.Sinks.NATS.files()...) {
		if *p != "" {
			if abs, err := filepath.Abs(resolvePath(base, *p)); err == nil {
				*p = abs
			}
		}
	}
	cfg.validate(col.add)
	return cfg, col.err()
}

// Validate checks every value and names every bad key (Errors).
func (c *Config) Validate() error {
	var col collector
	c.validate(col.add)
	return col.err()
}

// validate reports each problem to add. Enumerated values are read
// case-insensitively and stored in their canonical case.
func (c *Config) validate(add func(*Error)) {
	c.PBX.Type = strings.ToLower(c.PBX.Type)
	c.Log.Level = strings.ToLower(c.Log.Level)
	c.Log.Format = strings.ToLower(c.Log.Format)
	c.HTTP.Anonymous = strings.ToLower(c.HTTP.Anonymous)
	switch c.PBX.Type {
	case "asterisk", "freeswitch":
	default:
		add(&Error{"pbx.type", fmt.Sprintf("must be asterisk or freeswitch, got %q", c.PBX.Type)})
	}
	if c.PBX.Name == "" || strings.ContainsAny(c.PBX.Name, "\r\n\x00") {
		add(&Error{"pbx.name", "must be a non-empty single-line name"})
	}
	if why := hostPortProblem(c.PBX.Address, false); why != "" {
		add(&Error{"pbx.address", fmt.Sprintf("must be host:port (e.g. 127.0.0.1:5038): %s, got %q", why, c.PBX.Address)})
	}
	if c.PBX.Type == "asterisk" && c.PBX.Username == "" {
		add(&Error{"pbx.username", "is required for Asterisk (the [user] of manager.conf)"})
	}
	if c.PBX.Secret == "" {
		add(&Error{"pbx.secret", "is required (the AMI secret or the ESL password)"})
	}
	for _, kv := range []struct {
		key, val string
	}{{"pbx.username", c.PBX.Username}, {"pbx.secret", c.PBX.Secret}} {
		if strings.ContainsAny(kv.val, "\r\n\x00") {
			add(&Error{kv.key, "must not contain line breaks"})
		}
	}
	for key, d := range map[string]time.Duration{"pbx.ping_interval": c.PBX.PingInterval, "pbx.action_timeout": c.PBX.ActionTimeout,
		"pbx.backoff_max": c.PBX.BackoffMax, "delivery.retry_window": c.Delivery.RetryWindow, "delivery.timeout": c.Delivery.Timeout,
		"http.request_timeout": c.HTTP.RequestTimeout, "commands.ring_timeout": c.Commands.RingTimeout} {
		if d <= 0 {
			add(&Error{key, fmt.Sprintf("must be a positive duration such as 10s or 72h, got %s", d)})
		}
	}
	if d := c.PBX.ReconcileInterval; d != 0 && d < time.Second {
		add(&Error{"pbx.reconcile_interval", fmt.Sprintf("must be 0 (off) or at least 1s, such as 60s, got %s", d)})
	}
	if d := c.PBX.ReorderWindow; d < 0 || d > time.Second {
		add(&Error{"pbx.reorder_window", fmt.Sprintf("must be 0 (off) or a duration up to 1s, such as 5ms, got %s", d)})
	}
	if c.Store.Path == "" {
		add(&Error{"store.path", "is required (the SQLite file, e.g. ./ctibridge.db)"})
	}
	c.Store.Synchronous = strings.ToUpper(c.Store.Synchronous)
	if c.Store.Synchronous != "FULL" && c.Store.Synchronous != "NORMAL" {
		add(&Error{"store.synchronous", fmt.Sprintf("must be FULL or NORMAL, got %q", c.Store.Synchronous)})
	}
	if c.Store.MaxQueuedEvents < 1000 {
		add(&Error{"store.max_queued_events", fmt.Sprintf("must be at least 1000, got %d", c.Store.MaxQueuedEvents)})
	}
	if c.Store.RetentionDays < 0 {
		add(&Error{"store.retention_days", "must be 0 (keep forever) or a number of days"})
	}
	if why := hostPortProblem(c.HTTP.Listen, true); why != "" {
		add(&Error{"http.listen", fmt.Sprintf("must be host:port (e.g. 127.0.0.1:8080): %s, got %q", why, c.HTTP.Listen)})
	}
	c.HTTP.check(add)
	c.checkRecordings(add)
	c.checkCommands(add)
	if c.Delivery.MaxInFlight < 1 {
		add(&Error{"delivery.max_in_flight", fmt.Sprintf("must be at least 1, got %d", c.Delivery.MaxInFlight)})
	}
	if c.Delivery.MaxInFlightPerEndpoint < 1 {
		add(&Error{"delivery.max_in_flight_per_endpoint", fmt.Sprintf("must be at least 1, got %d", c.Delivery.MaxInFlightPerEndpoint)})
	}
	ids := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("webhooks[%d]", i)
		if w.ID == "" {
			c.Webhooks[i].ID = fmt.Sprintf("cfg-%d", i+1)
		}
		ep := bridge.Endpoint{ID: c.Webhooks[i].ID, URL: w.URL, Secret: w.Secret, PreviousSecret: w.PreviousSecret, Events: w.Events}
		for _, p := range ep.Problems() {
			add(&Error{key + "." + p.Field, p.Message})
		}
		// An IP literal the delivery policy refuses would be retried for
		// nothing: refuse it here (a name is checked at every connection).
		policy := bridge.AddressPolicy{AllowLoopback: c.Delivery.AllowLoopback, AllowPrivate: c.Delivery.AllowPrivate, AllowLinkLocal: c.Delivery.AllowLinkLocal}
		if err := bridge.CheckWebhookAddress("url", w.URL, policy); err != nil {
			add(&Error{key + ".url", bridge.ErrorMessage(err)})
		}
		if err := bridge.CheckPublishedWebhookSecret("secret", w.Secret); err != nil {
			add(&Error{key + ".secret", bridge.ErrorMessage(err)})
		}
		if err := bridge.CheckTenant("tenant", w.Tenant); err != nil {
			add(&Error{key + ".tenant", bridge.ErrorMessage(err)})
		}
		if ids[c.Webhooks[i].ID] {
			add(&Error{key + ".id", fmt.Sprintf("%q is used twice", c.Webhooks[i].ID)})
		}
		ids[c.Webhooks[i].ID] = true
	}
	c.Connectors.validate(ids, add)
	c.Sinks.validate(add, ids, 3*c.Delivery.Timeout)
	c.Tenants.validate(add)
	c.Tenants.validateNamed(add, c.Webhooks, c.endpointIDs())
	if c.PBX.Type == "asterisk" {
		for i, r := range c.Tenants.Rules {
			if r.Source == bridge.TenantByDomain {
				add(&Error{fmt.Sprintf("tenants.rules[%d]", i), "domain is FreeSWITCH's domain_name: an Asterisk channel has none, so the rule never matches (use context_prefix, accountcode or variable)"})
			}
		}
	}
	c.Connectors.validateTemplates(ids, add)
	if _, err := regexp.Compile(c.Calls.AgentPattern); err != nil || c.Calls.AgentPattern == "" {
		add(&Error{"calls.agent_pattern", fmt.Sprintf("must be a regular expression, got %q", c.Calls.AgentPattern)})
	}
	if c.Calls.TrunkPattern != "" {
		if _, err := regexp.Compile(c.Calls.TrunkPattern); err != nil {
			add(&Error{"calls.trunk_pattern", err.Error()})
		}
	}
	if len(c.Calls.DefaultRegion) != 2 {
		add(&Error{"calls.default_region", fmt.Sprintf("must be a two-letter country code such as US or RU, got %q", c.Calls.DefaultRegion)})
	}
	c.Calls.DefaultRegion = strings.ToUpper(c.Calls.DefaultRegion)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add(&Error{"log.level", fmt.Sprintf("must be debug, info, warn or error, got %q", c.Log.Level)})
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add(&Error{"log.format", fmt.Sprintf("must be text or json, got %q", c.Log.Format)})
	}
}

var reContext = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// checkCommands validates what goes into every command sent to the PBX:
// a line break here would end up inside an AMI header or an ESL command.
func (c *Config) checkCommands(add func(*Error)) {
	cm := c.Commands
	if err := bridge.CheckVariablePrefix("commands.variable_prefix", cm.VariablePrefix); err != nil {
		add(&Error{"commands.variable_prefix", bridge.ErrorMessage(err)})
	}
	for _, kv := range []struct{ key, val string }{{"commands.agent_dial", cm.AgentDial}, {"commands.queue_interface", cm.QueueInterface},
		{"commands.callcenter_agent", cm.CallcenterAgent}, {"commands.record_dir", cm.RecordDir}, {"http.recordings_dir", c.HTTP.RecordingsDir}} {
		if strings.ContainsAny(kv.val, "\r\n\x00") {
			add(&Error{kv.key, "must not contain line breaks"})
		}
	}
	for _, kv := range []struct{ key, val string }{{"commands.agent_dial", cm.AgentDial}, {"commands.queue_interface", cm.QueueInterface},
		{"commands.callcenter_agent", cm.CallcenterAgent}} {
		if kv.val != "" && !strings.Contains(kv.val, "{agent}") {
			add(&Error{kv.key, fmt.Sprintf("must contain {agent} (the extension), got %q", kv.val)})
		}
		// ESL's originate takes space-separated arguments.
		if strings.ContainsAny(kv.val, " \t") {
			add(&Error{kv.key, fmt.Sprintf("must not contain spaces, got %q", kv.val)})
		}
	}
	for _, kv := range []struct{ key, val string }{{"commands.context", cm.Context}, {"commands.transfer_context", cm.TransferContext}} {
		if kv.val != "" && !reContext.MatchString(kv.val) {
			add(&Error{kv.key, fmt.Sprintf("must be a dialplan context name (letters, digits, _ . -), got %q", kv.val)})
		}
	}
	for _, kv := range []struct{ key, val string }{{"commands.record_dir", cm.RecordDir}, {"http.recordings_dir", c.HTTP.RecordingsDir}} {
		if kv.val != "" && !filepath.IsAbs(kv.val) {
			add(&Error{kv.key, fmt.Sprintf("must be an absolute directory, got %q", kv.val)})
		}
	}
}

// check validates the HTTP section's access rules: each refused value
// would otherwise silently open or close the API.
func (h *HTTP) check(add func(*Error)) {
	switch h.Anonymous {
	case "", "none", "read", "control":
	case "admin":
		add(&Error{"http.anonymous", "cannot be admin: requests without an API key never manage webhooks or replay; use none, read or control"})
	default:
		add(&Error{"http.anonymous", fmt.Sprintf("must be none, read or control, got %q", h.Anonymous)})
	}
	if h.AnonymousLoopback && h.Anonymous != "" {
		add(&Error{"http.anonymous_loopback", "is the older spelling of http.anonymous: control (until the first API key): set only http.anonymous"})
	}
	if (h.Anonymous == "read" || h.Anonymous == "control") && !loopbackListen(h.Listen) {
		add(&Error{"http.anonymous", fmt.Sprintf("%s needs http.listen on a loopback address (127.0.0.1, [::1] or localhost), got %q: requests without a key are never served on other interfaces", h.Anonymous, h.Listen)})
	}
	for i, o := range h.AllowedOrigins {
		if want, ok := canonicalOrigin(o); !ok || want != o {
			hint := ""
			if ok {
				hint = fmt.Sprintf(" (did you mean %q?)", want)
			}
			add(&Error{fmt.Sprintf("http.allowed_origins[%d]", i), fmt.Sprintf("must be an origin as browsers send it, scheme://host[:port] in lowercase with no path and no default port, got %q%s", o, hint)})
		}
	}
	for i, host := range h.AllowedHosts {
		if !validHost(host) {
			add(&Error{fmt.Sprintf("http.allowed_hosts[%d]", i), fmt.Sprintf("must be a host name or IP address, optionally with :port (e.g. ctibridge.internal or 10.0.0.5:8080), got %q", host)})
		}
	}
	if h.MaxStreams < 1 {
		add(&Error{"http.max_streams", fmt.Sprintf("must be at least 1, got %d", h.MaxStreams)})
	}
	if h.MaxStreamsPerKey < 1 || h.MaxStreamsPerKey > h.MaxStreams {
		add(&Error{"http.max_streams_per_key", fmt.Sprintf("must be from 1 to http.max_streams (%d), got %d", h.MaxStreams, h.MaxStreamsPerKey)})
	}
	h.Panel.check(add)
}

// reDialName is a name Go's resolver looks up: DNS labels, with the
// underscore container and service names use (a compose service pbx_1).
var reDialName = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$`)

// hostPortProblem says what is wrong with a host:port a socket opens, or
// "": an IP address or a DNS name, and a port number from 1 to 65535 (a
// listen address may leave the host empty, every interface, or use port 0,
// any free port). Caught here, not at the first connect or listen.
func hostPortProblem(v string, listen bool) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "no host:port in it"
	}
	if !validPort(port) && !(listen && port == "0") {
		if listen {
			return "the port must be a number from 0 to 65535"
		}
		return "the port must be a number from 1 to 65535"
	}
	switch h := strings.ToLower(host); {
	case h == "" && listen:
	case h == "":
		return "the host is missing"
	case net.ParseIP(h) == nil && !(reDialName.MatchString(h) && len(h) <= 253):
		return fmt.Sprintf("the host %q is neither an IP address nor a DNS name", host)
	}
	return ""
}

// loopbackListen reports a listen address bound to loopback only.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// canonicalOrigin parses an origin and returns it as a browser serialises
// it (RFC 6454): lowercase scheme and host, no default port, nothing else.
func canonicalOrigin(o string) (string, bool) {
	scheme, rest, ok := strings.Cut(o, "://")
	scheme = strings.ToLower(scheme)
	rest = strings.TrimSuffix(rest, "/")
	if !ok || scheme != "http" && scheme != "https" || rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return "", false
	}
	hostport := strings.ToLower(rest)
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if !validHost(host) || port != "" && !validPort(port) {
		return "", false
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + host, true
	}
	return scheme + "://" + host + ":" + port, true
}

var reHostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// validHost accepts a lowercase DNS name, an IPv4 address or a bracketed
// IPv6 one, each optionally with :port.
func validHost(h string) bool {
	if h == "" || h != strings.ToLower(h) {
		return false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || net.ParseIP(h[1:end]) == nil || strings.Contains(h[1:end], ".") && net.ParseIP(h[1:end]).To4() != nil {
			return false
		}
		rest := h[end+1:]
		return rest == "" || strings.HasPrefix(rest, ":") && validPort(rest[1:])
	}
	if name, port, ok := strings.Cut(h, ":"); ok {
		if !validPort(port) {
			return false
		}
		h = name
	}
	return net.ParseIP(h) != nil && !strings.Contains(h, ":") || reHostName.MatchString(h) && len(h) <= 253
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// endpointIDs are the ids of every endpoint the config makes: its webhooks,
// the connectors and the sink that are on.
func (c *Config) endpointIDs() map[string]bool {
	ids := map[string]bool{}
	for _, w := range c.Webhooks {
		ids[w.ID] = true
	}
	if c.Connectors.Bitrix24.Enabled() {
		ids[Bitrix24EndpointID] = true
	}
	if c.Connectors.Zammad.Enabled() {
		ids[ZammadEndpointID] = true
	}
	if c.Connectors.HubSpot.Enabled() {
		ids[HubSpotEndpointID] = true
	}
	for _, tc := range c.Connectors.Templates {
		ids[TemplateEndpointID(tc.Name)] = true
	}
	if c.Sinks.NATS.Enabled() {
		ids[NATSEndpointID] = true
	}
	return ids
}
