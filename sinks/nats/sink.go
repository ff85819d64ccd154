// Package natssink publishes committed events to NATS JetStream. It is a
// bridge.Connector: the webhook dispatcher hands it the outbox's deliveries
// like any endpoint's, with per-conversation order (event N+1 is published
// only once N's PubAck is in), conversations in parallel, retries within the
// retry window, dead letters, replay and the attempt log.
//
// Each event is published once per attempt with Nats-Msg-Id = the event id,
// so JetStream drops a resend (after a crash, or a PubAck lost on the way)
// that arrives within the stream's duplicate window. A resend after the
// window is stored again: a consumer handles events idempotently by id.
package natssink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctibridge/ctibridge/bridge"
)

// Name is the connector's name in logs and the attempt log.
const Name = "nats"

// Headers set on every message besides Nats-Msg-Id.
const (
	HeaderConversation = "Ctibridge-Conversation-Id"
	HeaderSequence     = "Ctibridge-Sequence"
	HeaderType         = "Ctibridge-Event-Type"
	HeaderPBX          = "Ctibridge-Pbx"
	HeaderTenant       = "Ctibridge-Tenant"
)

// Defaults for Options left zero.
const (
	DefaultPublishTimeout  = 5 * time.Second
	DefaultReconnectMax    = 30 * time.Second
	DefaultStreamName      = "CTIBRIDGE"
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultDuplicateWindow = 2 * time.Hour
)

// Options configure a Sink.
type Options struct {
	URLs []string // nats://, tls://, ws:// or wss:// servers; credentials never in them
	PBX  string   // the PBX name: <pbx> in the subject
	// Subject is the template (DefaultSubject when zero).
	Subject Subject
	// Tenant gives an event's tenant (TenantOf when nil).
	Tenant func(bridge.Record) string

	// One way to authenticate, or none.
	CredentialsFile string // a .creds file (JWT and NKey seed)
	NKeySeedFile    string
	User, Password  string
	Token           string

	// TLS: the CA that signs the servers' certificates (else the system
	// pool), and a client certificate for mutual TLS.
	CAFile, CertFile, KeyFile string

	PublishTimeout time.Duration // wait for one PubAck
	ReconnectMax   time.Duration // reconnect backoff cap; reconnects never stop

	// Stream, when set, is the stream publishes must land in (a publish
	// captured by another stream is refused, permanently). CreateStream
	// makes (or updates) it before the first publish.
	Stream          string
	CreateStream    bool
	StreamSubjects  []string      // default: Subject.Filter()
	MaxAge          time.Duration // default DefaultMaxAge
	MaxBytes        int64         // 0: unlimited
	DuplicateWindow time.Duration // default DefaultDuplicateWindow
	Replicas        int           // default 1

	// OnUp, when set, is told each time the connection is (re)made: the
	// dispatcher then sends what waits out a backoff at once
	// (webhooks.Dispatcher.Resume), not an hour after a long outage.
	OnUp func()

	Logger *slog.Logger
}

// Sink publishes events to JetStream. Deliver is safe for concurrent use.
type Sink struct {
	opts Options
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream

	// Publish permission violations the server reported, by subject: a
	// publish to a forbidden subject gets no answer, only this error.
	denyMu  sync.Mutex
	waiting map[string]map[*waiter]struct{}
	denied  map[string]string

	ensureMu sync.Mutex
	ensured  bool

	connected atomic.Bool
	lastErr   atomic.Pointer[string]
	published atomic.Int64 // PubAcks received (duplicates included)
	dupes     atomic.Int64 // PubAcks that said duplicate
	failed    atomic.Int64
	reconns   atomic.Int64
	connFails atomic.Int64
}

type waiter struct{ cancel context.CancelCauseFunc }

var _ bridge.Connector = (*Sink)(nil)

// New connects (in the background: a server that is down is retried
// forever with backoff) and returns the sink. Bad files (credentials, CA,
// certificate) are errors now.
func New(opts Options) (*Sink, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("natssink: no server URL")
	}
	if opts.Subject.tmpl == "" {
		opts.Subject = MustParseSubject(DefaultSubject)
	}
	if opts.Tenant == nil {
		opts.Tenant = TenantOf
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = DefaultReconnectMax
	}
	if opts.CreateStream {
		if opts.Stream == "" {
			opts.Stream = DefaultStreamName
		}
		if len(opts.StreamSubjects) == 0 {
			opts.StreamSubjects = []string{opts.Subject.Filter()}
		}
		if opts.MaxAge <= 0 {
			opts.MaxAge = DefaultMaxAge
		}
		if opts.DuplicateWindow <= 0 {
			opts.DuplicateWindow = DefaultDuplicateWindow
		}
		if opts.Replicas <= 0 {
			opts.Replicas = 1
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sink{opts: opts, log: opts.Logger.With("sink", Name),
		waiting: map[string]map[*waiter]struct{}{}, denied: map[string]string{}}
	s.setErr("not connected yet")

	nopts, err := s.natsOptions()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(opts.URLs, ","), nopts...)
	if err != nil {
		// With RetryOnFailedConnect only a bad option fails here.
		return nil, fmt.Errorf("natssink: %w", err)
	}
	s.nc = nc
	if nc.IsConnected() {
		s.up(nc)
	}
	s.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natssink: %w", err)
	}
	return s, nil
}

func (s *Sink) natsOptions() ([]nats.Option, error) {
	o := s.opts
	max := o.ReconnectMax
	opts := []nats.Option{
		nats.Name("ctibridge " + o.PBX),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// Full-jitter exponential backoff from 100 ms to ReconnectMax, by
		// attempts since the link was lost.
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := 100 * time.Millisecond << min(attempts, 20)
			return time.Duration(rand.Int64N(int64(min(d, max)))) + 50*time.Millisecond
		}),
		// No buffering while disconnected: a publish then fails at once and
		// the dispatcher retries it from the outbox, instead of the client
		// flushing a stale copy after the attempt was already given up.
		nats.ReconnectBufSize(-1),
		// The handlers get the connection: they may run before New has
		// stored it.
		nats.ConnectHandler(func(nc *nats.Conn) { s.up(nc) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.reconns.Add(1); s.up(nc) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.down(err)
		}),
		// The client gives up on a server that refuses the same
		// credentials twice, for good: but an operator fixes them on the
		// server (a rotated password) and ctibridge must then come back.
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { s.attemptFailed(err) }),
		nats.ClosedHandler(func(*nats.Conn) { s.down(nats.ErrConnectionClosed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { s.asyncErr(err) }),
	}
	switch {
	case o.CredentialsFile != "":
		if _, err := os.Stat(o.CredentialsFile); err != nil {
			return nil, fmt.Errorf("natssink: credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.CredentialsFile))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("natssink: NKey seed file: %w", err)
		}
		opts = append(opts, opt)
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	}
	if o.CAFile != "" || o.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("natssink: CA file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("natssink: CA file: no PEM certificate in it")
			}
		}
		if o.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("natssink: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

func (s *Sink) up(nc *nats.Conn) {
	if !s.connected.Swap(true) {
		s.log.Info("NATS connected", "server", nc.ConnectedUrlRedacted())
	}
	s.lastErr.Store(nil)
	if s.opts.OnUp != nil {
		s.opts.OnUp()
	}
}

func (s *Sink) down(err error) {
	if err == nil {
		err = nats.ErrDisconnected
	}
	s.setErr("disconnected: " + err.Error())
	if s.connected.Swap(false) {
		s.log.Warn("NATS disconnected; reconnecting", "err", err)
	}
}

func (s *Sink) setErr(msg string) { s.lastErr.Store(&msg) }

// attemptFailed is a connection attempt that failed. An error other than
// the last one logged is logged (an authorization refusal names what to
// fix); the same one again only updates the state.
func (s *Sink) attemptFailed(err error) {
	if err == nil {
		return
	}
	s.connFails.Add(1)
	msg := "connecting: " + err.Error()
	if p := s.lastErr.Load(); p == nil || *p != msg {
		s.log.Warn("NATS connection attempt failed; retrying", "err", err)
	}
	s.setErr(msg)
}

var rePubDenied = regexp.MustCompile(`(?i)publish to "([^"]+)"`)

// asyncErr sees the server's -ERR lines. A publish permission violation
// names the subject; the publishes waiting on it fail at once, permanently.
func (s *Sink) asyncErr(err error) {
	s.log.Warn("NATS error", "err", err)
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	m := rePubDenied.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	for w := range s.waiting[m[1]] {
		w.cancel(errDenied)
	}
}

var errDenied = errors.New("denied")

// errCodeStreamNotMatch is JetStream's "expected stream does not match".
const errCodeStreamNotMatch jetstream.ErrorCode = 10060

func (s *Sink) watch(subject string) (context.Context, func(), func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &waiter{cancel: cancel}
	s.denyMu.Lock()
	if s.waiting[subject] == nil {
		s.waiting[subject] = map[*waiter]struct{}{}
	}
	s.waiting[subject][w] = struct{}{}
	s.denyMu.Unlock()
	return ctx, func() { cancel(nil) }, func() {
		s.denyMu.Lock()
		delete(s.waiting[subject], w)
		if len(s.waiting[subject]) == 0 {
			delete(s.waiting, subject)
		}
		s.denyMu.Unlock()
	}
}

// Name implements bridge.Connector.
func (s *Sink) Name() string { return Name }

// Close ends the connection.
func (s *Sink) Close() { s.nc.Close() }

// SubjectFor is the subject an event is published to.
func (s *Sink) SubjectFor(rec bridge.Record) string {
	return s.opts.Subject.Render(s.opts.Tenant(rec), s.opts.PBX, rec.Type)
}

// Deliver publishes one event and waits for its PubAck. A nil error means
// the stream holds it (or already held it: a duplicate). No stream for the
// subject, a permission violation, a message over the server's size limit
// or a stream other than Stream are permanent; the rest is retried.
func (s *Sink) Deliver(ctx context.Context, rec bridge.Record) error {
	if !s.nc.IsConnected() {
		s.failed.Add(1)
		return fmt.Errorf("nats: not connected (%s)", s.connErr())
	}
	if err := s.ensureStream(ctx); err != nil {
		s.failed.Add(1)
		return err
	}
	subject := s.SubjectFor(rec)
	msg := nats.NewMsg(subject)
	msg.Data = rec.Payload
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(HeaderType, rec.Type)
	msg.Header.Set(HeaderPBX, s.opts.PBX)
	msg.Header.Set(HeaderTenant, s.opts.Tenant(rec))
	if rec.ConversationID != "" {
		msg.Header.Set(HeaderConversation, rec.ConversationID)
		msg.Header.Set(HeaderSequence, strconv.FormatInt(rec.Sequence, 10))
	}
	popts := []jetstream.PublishOpt{jetstream.WithMsgID(rec.ID)}
	if s.opts.Stream != "" {
		popts = append(popts, jetstream.WithExpectStream(s.opts.Stream))
	}

	denyCtx, done, unwatch := s.watch(subject)
	defer unwatch()
	defer done()
	pctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
	defer cancel()
	stop := context.AfterFunc(denyCtx, cancel)
	defer stop()
	ack, err := s.js.PublishMsg(pctx, msg, popts...)
	if err == nil {
		s.published.Add(1)
		if ack.Duplicate {
			s.dupes.Add(1)
			s.log.Debug("NATS publish was a duplicate (already in the stream)", "event", rec.ID, "stream", ack.Stream, "seq", ack.Sequence)
		}
		return nil
	}
	s.failed.Add(1)
	if errors.Is(context.Cause(denyCtx), errDenied) {
		return bridge.PermanentError(fmt.Errorf("nats: permission denied: this user may not publish to %q (fix the account's publish permissions, then replay)", subject))
	}
	return s.classify(ctx, subject, err)
}

// classify turns a publish error into what the dispatcher does with it.
func (s *Sink) classify(ctx context.Context, subject string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		// Nothing answered: no stream captures the subject, or a stream is
		// between leaders. Only a confirmed absence is permanent.
		lctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
		defer cancel()
		_, lerr := s.js.StreamNameBySubject(lctx, subject)
		if errors.Is(lerr, jetstream.ErrStreamNotFound) {
			if s.opts.CreateStream {
				s.ensureMu.Lock()
				s.ensured = false // deleted under us: make it again next time
				s.ensureMu.Unlock()
				return fmt.Errorf("nats: no stream captures subject %q; stream %s is made again before the next try", subject, s.opts.Stream)
			}
			return bridge.PermanentError(fmt.Errorf("nats: no JetStream stream captures subject %q (create one whose subjects match it, or set sinks.nats.create_stream: true; then replay)", subject))
		}
		return fmt.Errorf("nats: no stream answered for subject %q (stream lookup: %v)", subject, lerr)
	case errors.As(err, &apiErr):
		switch {
		case apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
			return bridge.PermanentError(fmt.Errorf("nats: the event is larger than the stream's max_msg_size: %v", err))
		case apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabledForAccount || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled:
			return bridge.PermanentError(fmt.Errorf("nats: JetStream is not enabled for this account: %v", err))
		case apiErr.ErrorCode == errCodeStreamNotMatch || apiErr.Code == 400 && strings.Contains(strings.ToLower(apiErr.Description), "expected stream"):
			return bridge.PermanentError(fmt.Errorf("nats: subject %q is captured by another stream than %s: %v", subject, s.opts.Stream, err))
		}
		return err // its text starts "nats: " already
	case errors.Is(err, nats.ErrMaxPayload):
		return bridge.PermanentError(fmt.Errorf("nats: the event is larger than the server's max_payload"))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("nats: no PubAck within %s for subject %q", s.opts.PublishTimeout, subject)
	case errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrDisconnected):
		return fmt.Errorf("nats: not connected (%v)", err)
	}
	return fmt.Errorf("nats: %v", err)
}

// ensureStream makes the stream once when CreateStream is set.
func (s *Sink) ensureStream(ctx context.Context) error {
	if !s.opts.CreateStream {
		return nil
	}
	s.ensureMu.Lock()
	defer s.ensureMu.Unlock()
	if s.ensured {
		return nil
	}
	o := s.opts
	cctx, cancel := context.WithTimeout(ctx, o.PublishTimeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:        o.Stream,
		Description: streamDescription,
		Subjects:    o.StreamSubjects,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		MaxBytes:    o.MaxBytes,
		Duplicates:  o.DuplicateWindow,
		Replicas:    o.Replicas,
	}
	if o.MaxBytes <= 0 {
		cfg.MaxBytes = -1
	}
	// A stream ctibridge made (its description says so) follows the
	// config; one someone else made is left as it is (a fleet's operators
	// set its limits and subjects), and must only capture our subjects.
	st, err := s.js.Stream(cctx, o.Stream)
	switch {
	case err == nil && st.CachedInfo().Config.Description != streamDescription:
		info := st.CachedInfo()
		want := o.Subject.Filter()
		if !slices.ContainsFunc(info.Config.Subjects, func(f string) bool { return Covers(f, want) }) {
			return bridge.PermanentError(fmt.Errorf("nats: stream %s exists with subjects %v, which do not capture %s; ctibridge does not change a stream it did not make: add the subject to it, or name another stream, then replay",
				o.Stream, info.Config.Subjects, want))
		}
		s.log.Info("NATS stream found, made by someone else: its settings are left as they are", "stream", o.Stream, "subjects", info.Config.Subjects,
			"max_age", info.Config.MaxAge, "duplicate_window", info.Config.Duplicates)
		s.ensured = true
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("nats: looking up stream %s: %v", o.Stream, err)
	}
	st, err = s.js.CreateOrUpdateStream(cctx, cfg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code == 400 {
			return bridge.PermanentError(fmt.Errorf("nats: stream %s refused: %v", o.Stream, err))
		}
		return fmt.Errorf("nats: making stream %s: %v", o.Stream, err)
	}
	info := st.CachedInfo()
	s.log.Info("NATS stream ready", "stream", o.Stream, "subjects", info.Config.Subjects,
		"max_age", info.Config.MaxAge, "duplicate_window", info.Config.Duplicates)
	s.ensured = true
	return nil
}

// streamDescription marks a stream ctibridge made: only such a stream is
// changed to follow the config.
const streamDescription = "ctibridge events (sinks.nats)"

// State is the connection's state for readiness: connected, or why not.
func (s *Sink) State() (connected bool, reason string) {
	if s.nc.IsConnected() {
		return true, ""
	}
	return false, s.connErr()
}

func (s *Sink) connErr() string {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return s.nc.Status().String()
}

// Stats are the sink's counters, for metrics.
type Stats struct {
	Connected  bool
	Published  int64 // PubAcks received, duplicates included
	Duplicates int64 // PubAcks saying the stream already held the event
	Failed     int64 // publishes that failed (retried or dead-lettered)
	Reconnects int64
	// ConnectFailures counts connection attempts that failed (the server
	// down, or refusing the credentials).
	ConnectFailures int64
}

// Stats returns a snapshot of the counters.
func (s *Sink) Stats() Stats {
	return Stats{Connected: s.nc.IsConnected(), Published: s.published.Load(), Duplicates: s.dupes.Load(),
		Failed: s.failed.Load(), Reconnects: s.reconns.Load(), ConnectFailures: s.connFails.Load()}
}
