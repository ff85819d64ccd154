package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Sinks publish every committed event to a message system, for fleets of
// sidecars feeding one integration (README "Fleet").
type Sinks struct {
	NATS NATS `koanf:"nats"`
}

// NATS is the JetStream sink. It is on when URLs is set.
type NATS struct {
	// URLs are the servers (nats://, tls://, ws://, wss://), without
	// credentials: URLs are logged.
	URLs []string `koanf:"urls"`
	// Subject is the template, from <tenant>, <pbx> and <type> and
	// subject-safe literals (letters, digits, - and _ between dots).
	Subject string `koanf:"subject"`

	// One way to authenticate, or none. Password and token are secrets:
	// set them from the environment (CTIBRIDGE_SINKS__NATS__PASSWORD).
	CredentialsFile string  `koanf:"credentials_file"`
	NKeySeedFile    string  `koanf:"nkey_seed_file"`
	User            string  `koanf:"user"`
	Password        string  `koanf:"password"`
	Token           string  `koanf:"token"`
	TLS             NATSTLS `koanf:"tls"`

	// Stream, when set, is the stream every publish must land in.
	// CreateStream makes or updates it (default name CTIBRIDGE) with the
	// settings below; otherwise the operator manages the stream.
	Stream         string        `koanf:"stream"`
	CreateStream   bool          `koanf:"create_stream"`
	StreamSubjects []string      `koanf:"stream_subjects"` // default: the template with wildcards
	MaxAge         time.Duration `koanf:"max_age"`
	MaxBytes       int64         `koanf:"max_bytes"` // 0: no limit
	// DuplicateWindow is how long JetStream drops a resend of an event
	// (same Nats-Msg-Id). A resend after it (an ack lost in a NATS outage
	// longer than the window) is stored again, same event id: consumers
	// de-duplicate by id. Exact only if it exceeds delivery.retry_window.
	DuplicateWindow time.Duration `koanf:"duplicate_window"`
	Replicas        int           `koanf:"replicas"`

	PublishTimeout      time.Duration `koanf:"publish_timeout"`       // wait for one PubAck
	ReconnectBackoffMax time.Duration `koanf:"reconnect_backoff_max"` // reconnects never stop
}

// NATSTLS is the sink's TLS: the CA of the servers' certificates (else the
// system's) and a client certificate for mutual TLS.
type NATSTLS struct {
	CAFile   string `koanf:"ca_file"`
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// minDuplicateWindow is the least duplicate_window: less than the time a
// restart or a reconnect takes makes every resend a second copy.
const minDuplicateWindow = time.Minute

// Enabled reports whether the sink is configured.
func (n NATS) Enabled() bool { return len(n.URLs) > 0 }

// NATSEndpointID is the sink's delivery endpoint id (attempt log, replay).
const NATSEndpointID = "sink-nats"

func defaultSinks() Sinks {
	return Sinks{NATS: NATS{Subject: "ctibridge.<tenant>.<pbx>.<type>", MaxAge: 7 * 24 * time.Hour,
		DuplicateWindow: 2 * time.Hour, Replicas: 1, PublishTimeout: 5 * time.Second, ReconnectBackoffMax: 30 * time.Second}}
}

var (
	reStreamName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reSubjectLevel = regexp.MustCompile(`^(?:[A-Za-z0-9_-]|<tenant>|<pbx>|<type>)+$`)
	reFilterLevel  = regexp.MustCompile(`^(?:[A-Za-z0-9_-]+|\*|>)$`)
)

// validate checks the sinks. webhookIDs are the configured webhook ids;
// connectorBudget is how long the dispatcher lets one delivery run.
func (s *Sinks) validate(add func(*Error), webhookIDs map[string]bool, connectorBudget time.Duration) {
	n := &s.NATS
	const key = "sinks.nats"
	if !n.Enabled() {
		if n.CreateStream || n.Stream != "" || n.CredentialsFile != "" || n.NKeySeedFile != "" || n.User != "" || n.Token != "" {
			add(&Error{key + ".urls", "is required when sinks.nats is configured (e.g. [nats://nats:4222])"})
		}
		return
	}
	for i, raw := range n.URLs {
		k := fmt.Sprintf("%s.urls[%d]", key, i)
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "":
			add(&Error{k, "must be a server URL such as nats://nats:4222 (schemes nats, tls, ws, wss)"})
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			add(&Error{k, fmt.Sprintf("scheme %q: must be nats, tls, ws or wss", u.Scheme)})
		case u.User != nil:
			// The reason never repeats the URL: it holds the credentials.
			add(&Error{k, "must not hold credentials (URLs are logged): use user/password, token, credentials_file or nkey_seed_file"})
		case u.RawQuery != "" || u.Fragment != "":
			add(&Error{k, "must have no query or fragment"})
		}
	}
	if msg := checkSubjectTemplate(n.Subject); msg != "" {
		add(&Error{key + ".subject", msg})
	}
	auth := 0
	for _, set := range []bool{n.CredentialsFile != "", n.NKeySeedFile != "", n.User != "", n.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		add(&Error{key, "set one of credentials_file, nkey_seed_file, user (with password) or token, not several"})
	}
	if n.User != "" && n.Password == "" {
		add(&Error{key + ".password", "is required with user (set it from the environment: CTIBRIDGE_SINKS__NATS__PASSWORD)"})
	}
	if n.Password != "" && n.User == "" {
		add(&Error{key + ".user", "is required with password"})
	}
	for k, v := range map[string]string{key + ".user": n.User, key + ".password": n.Password, key + ".token": n.Token} {
		if strings.ContainsAny(v, "\r\n\x00 ") {
			add(&Error{k, "must not contain spaces or line breaks"})
		}
	}
	for k, path := range map[string]string{key + ".credentials_file": n.CredentialsFile, key + ".nkey_seed_file": n.NKeySeedFile,
		key + ".tls.ca_file": n.TLS.CAFile, key + ".tls.cert_file": n.TLS.CertFile, key + ".tls.key_file": n.TLS.KeyFile} {
		if path == "" {
			continue
		}
		if st, err := os.Stat(path); err != nil {
			add(&Error{k, fmt.Sprintf("cannot read %s: %v", path, unwrapPathErr(err))})
		} else if !st.Mode().IsRegular() {
			add(&Error{k, fmt.Sprintf("%s is not a file", path)})
		}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		add(&Error{key + ".tls", "cert_file and key_file go together (the client certificate and its key)"})
	}
	if n.Stream == "" && n.CreateStream {
		n.Stream = "CTIBRIDGE"
	}
	if n.Stream != "" && !reStreamName.MatchString(n.Stream) {
		add(&Error{key + ".stream", fmt.Sprintf("%q: must be 1..64 letters, digits, - or _", n.Stream)})
	}
	for i, f := range n.StreamSubjects {
		if msg := checkSubjectFilter(f); msg != "" {
			add(&Error{fmt.Sprintf("%s.stream_subjects[%d]", key, i), msg})
		}
	}
	if len(n.StreamSubjects) > 0 && !n.CreateStream {
		add(&Error{key + ".stream_subjects", "is used only with create_stream: true"})
	}
	if want := subjectFilter(n.Subject); len(n.StreamSubjects) > 0 && checkSubjectTemplate(n.Subject) == "" &&
		!slices.ContainsFunc(n.StreamSubjects, func(f string) bool { return subjectCovers(f, want) }) {
		add(&Error{key + ".stream_subjects", fmt.Sprintf("%q capture none of the subjects events go to (%s): the stream would take nothing", n.StreamSubjects, want)})
	}
	for k, d := range map[string]time.Duration{key + ".max_age": n.MaxAge, key + ".duplicate_window": n.DuplicateWindow,
		key + ".publish_timeout": n.PublishTimeout, key + ".reconnect_backoff_max": n.ReconnectBackoffMax} {
		if d <= 0 {
			add(&Error{k, fmt.Sprintf("must be a positive duration such as 5s or 2h, got %s", d)})
		}
	}
	if n.DuplicateWindow > 0 && n.DuplicateWindow < minDuplicateWindow {
		add(&Error{key + ".duplicate_window", fmt.Sprintf("must be at least %s, got %s: a publish whose ack was lost is sent again after a restart or a reconnect, and a shorter window stores it twice", minDuplicateWindow, n.DuplicateWindow)})
	}
	if n.DuplicateWindow > n.MaxAge {
		add(&Error{key + ".duplicate_window", fmt.Sprintf("must not exceed max_age (%s): JetStream refuses it", n.MaxAge)})
	}
	if n.MaxBytes < 0 {
		add(&Error{key + ".max_bytes", "must be 0 (no limit) or a number of bytes"})
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		add(&Error{key + ".replicas", fmt.Sprintf("must be 1..5, got %d", n.Replicas)})
	}
	if connectorBudget > 0 && n.PublishTimeout >= connectorBudget {
		add(&Error{key + ".publish_timeout", fmt.Sprintf("must be shorter than 3 × delivery.timeout (%s), the time one delivery may take", connectorBudget)})
	}
	if webhookIDs[NATSEndpointID] {
		add(&Error{"webhooks", fmt.Sprintf("the id %q is the NATS sink's: use another", NATSEndpointID)})
	}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkSubjectTemplate mirrors natssink.ParseSubject (config imports no
// adapter): levels of letters, digits, - and _ and the three placeholders.
func checkSubjectTemplate(t string) string {
	if t == "" || len(t) > 200 {
		return "must be 1..200 characters, e.g. ctibridge.<tenant>.<pbx>.<type>"
	}
	for _, level := range strings.Split(t, ".") {
		if !reSubjectLevel.MatchString(level) {
			return fmt.Sprintf("%q: each level between dots is letters, digits, - and _ and the placeholders <tenant>, <pbx>, <type> (no wildcards, no empty level)", t)
		}
	}
	return ""
}

// subjectFilter and subjectCovers mirror natssink.Subject.Filter and
// natssink.Covers (config imports no adapter): the template with its
// placeholder levels as *, and whether a stream filter captures it.
func subjectFilter(tmpl string) string {
	levels := strings.Split(tmpl, ".")
	for i, l := range levels {
		if strings.Contains(l, "<") {
			levels[i] = "*"
		}
	}
	return strings.Join(levels, ".")
}

func subjectCovers(filter, pattern string) bool {
	f, p := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, tok := range p {
		switch {
		case i >= len(f):
			return false
		case f[i] == ">":
			return true
		case tok == ">":
			return false
		case f[i] != "*" && f[i] != tok:
			return false
		}
	}
	return len(f) == len(p)
}

func checkSubjectFilter(f string) string {
	levels := strings.Split(f, ".")
	for i, l := range levels {
		if !reFilterLevel.MatchString(l) || l == ">" && i != len(levels)-1 {
			return fmt.Sprintf("%q is not a subject filter (levels of letters, digits, - and _, or * , or > last)", f)
		}
	}
	return ""
}

// files are the sink's path keys, resolved against the config file's
// directory like store.path.
func (n *NATS) files() []*string {
	return []*string{&n.CredentialsFile, &n.NKeySeedFile, &n.TLS.CAFile, &n.TLS.CertFile, &n.TLS.KeyFile}
}
