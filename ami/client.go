package ami

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	Address  string // host:port of the manager, e.g. 127.0.0.1:5038
	Username string
	Secret   string      // never logged, never in an error
	TLS      *tls.Config // nil: plain TCP

	DialTimeout   time.Duration // default 10 s
	ActionTimeout time.Duration // wait for a response, and for the login; default 10 s
	// PingInterval is how often a keepalive Ping is sent (default 20 s; < 0
	// disables). A Ping unanswered within ActionTimeout ends the session: it
	// is how a half-open TCP link, which never errors by itself, is found.
	PingInterval time.Duration
	BackoffMin   time.Duration // first reconnect delay, jittered; default 500 ms
	BackoffMax   time.Duration // default 30 s

	// EventMask, when set, is sent after login as "Action: Events" with
	// "EventMask: <value>" (e.g. "on", "off", "call,agent"). Empty leaves the
	// mask manager.conf gives the user.
	EventMask string
	// EventFilters are sent after login, one "Action: Filter" with
	// "Operation: Add" each, e.g. "!Event: VarSet" to drop VarSet events.
	EventFilters []string

	// ActionIDPrefix prefixes generated ActionIDs. The default is random per
	// Client: OriginateResponse events reach every manager session, so two
	// bridges on one PBX must not reuse each other's ids.
	ActionIDPrefix string

	MaxLine  int // longest line accepted; default 64 KiB
	MaxFrame int // largest frame accepted; default 1 MiB

	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 10 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.ActionIDPrefix == "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		c.ActionIDPrefix = "ctib-" + hex.EncodeToString(b[:]) + "-"
	}
	if c.MaxLine <= 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Client is a self-healing manager connection. Run it once; Send and
// SendList may be called from any goroutine, including the Handler's (their
// answers are matched by the reader goroutine, so a slow Handler never delays
// them). A Handler must not call Close: Close waits for the Handler.
//
// Sessions are numbered per connection (ConnInfo.Session, and the login's
// ActionID "login-N"), so a refused login uses up a number.
type Client struct {
	cfg Config
	h   Handler
	log *slog.Logger
	q   *queue

	nextID  atomic.Uint64
	skipped atomic.Int64
	frames  atomic.Int64

	mu      sync.Mutex
	sess    *session // logged-in session, nil while down
	lastErr error
	conns   int
	cancel  context.CancelFunc
	closed  bool
	stopped chan struct{}
}

// NewClient returns a Client that will hand what it reads to h.
func NewClient(cfg Config, h Handler) *Client {
	cfg = cfg.withDefaults()
	return &Client{
		cfg:     cfg,
		h:       h,
		log:     cfg.Logger.With("address", cfg.Address),
		q:       newQueue(),
		stopped: make(chan struct{}),
	}
}

// Run connects, logs in and reads until ctx ends or Close is called,
// reconnecting with jittered exponential backoff. It returns once the
// Handler has seen every frame read and the last Disconnected.
func (c *Client) Run(ctx context.Context) error {
	if c.cfg.Address == "" {
		return bridge.FieldError("Address", "is required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	if c.closed || c.cancel != nil {
		c.mu.Unlock()
		return errors.New("ami: client closed or already running")
	}
	c.cancel = cancel
	c.mu.Unlock()
	defer close(c.stopped)

	consumed := make(chan struct{})
	go c.consume(consumed)

	backoff := c.cfg.BackoffMin
	for ctx.Err() == nil {
		loggedIn, _ := c.connect(ctx)
		if ctx.Err() != nil {
			break
		}
		if loggedIn {
			backoff = c.cfg.BackoffMin
		}
		// Sleep between backoff/2 and backoff: spread, never zero.
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Info("ami: reconnecting", "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if !loggedIn {
			backoff = min(2*backoff, c.cfg.BackoffMax)
		}
	}
	c.q.push(item{kind: itemStop})
	<-consumed
	return nil
}

// Close stops Run, logging off first if connected, and waits for it to
// return.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-c.stopped
	}
	return nil
}

// Connected reports whether a session is logged in.
func (c *Client) Connected() bool { return c.current() != nil }

// Err returns why the last session or connection attempt ended, nil while
// connected or before the first attempt.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// QueueLen is the number of frames read but not yet handled: how far the
// Handler lags behind the PBX.
func (c *Client) QueueLen() int { return c.q.len() }

// Frames is the number of frames read since the Client started.
func (c *Client) Frames() int64 { return c.frames.Load() }

// Skipped is the number of frames that could not be parsed and were dropped.
func (c *Client) Skipped() int64 { return c.skipped.Load() }

func (c *Client) current() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// consume is the only goroutine that calls the Handler.
func (c *Client) consume(done chan struct{}) {
	defer close(done)
	for {
		batch := c.q.take()
		for _, it := range batch {
			switch it.kind {
			case itemMessage:
				c.h.Message(it.msg)
			case itemConnected:
				c.h.Connected(it.info)
			case itemDisconnected:
				c.h.Disconnected(it.err)
			case itemStop:
				c.q.pending.Add(-1)
				c.q.done(batch)
				return
			}
			c.q.pending.Add(-1)
		}
		c.q.done(batch)
	}
}

// connect runs one connection: dial, banner, login, then reads until the
// session ends. loggedIn reports whether the login succeeded.
func (c *Client) connect(ctx context.Context) (loggedIn bool, err error) {
	c.mu.Lock()
	c.conns++
	id := c.conns
	c.mu.Unlock()
	log := c.log.With("session", id)

	conn, err := c.dial(ctx)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("ami: connect to %s: %w", c.cfg.Address, err)
			log.Warn("ami: connect failed", "err", err)
			c.setErr(err)
		}
		return false, err
	}
	rd := NewReader(conn, c.cfg.MaxLine, c.cfg.MaxFrame)
	banner, err := c.login(ctx, conn, rd, id)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, ErrLoginRefused) {
			log.Error(err.Error())
		} else {
			log.Warn("ami: login failed", "err", err)
		}
		c.setErr(err)
		return false, err
	}

	s := &session{id: id, conn: conn, waiters: make(map[string]*waiter), done: make(chan struct{})}
	c.mu.Lock()
	c.sess = s
	c.lastErr = nil
	c.mu.Unlock()
	log.Info("ami: connected", "user", c.cfg.Username, "banner", banner)
	c.q.push(item{kind: itemConnected, info: ConnInfo{Banner: banner, Session: id, Address: c.cfg.Address}})

	var wg sync.WaitGroup
	wg.Go(func() { c.read(s, rd, log) })
	wg.Go(func() { c.maintain(s, log) })

	select {
	case <-s.done:
	case <-ctx.Done():
		// Say goodbye so Asterisk logs a clean logoff, then hang up. The
		// cause is set first: the EOF that follows Goodbye is not news.
		s.setCause(ctx.Err())
		c.logoff(s)
		s.fail(ctx.Err())
	}
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
	wg.Wait()
	c.setErr(s.cause())
	return true, s.cause()
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.DialTimeout}
	if c.cfg.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: c.cfg.TLS}
		return td.DialContext(ctx, "tcp", c.cfg.Address)
	}
	return d.DialContext(ctx, "tcp", c.cfg.Address)
}

// login reads the banner, sends Login with ActionID login-<session> and
// waits for its response, all within ActionTimeout.
func (c *Client) login(ctx context.Context, conn net.Conn, rd *Reader, id int) (string, error) {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(c.cfg.ActionTimeout))

	banner, err := rd.ReadBanner()
	if err != nil {
		return "", fmt.Errorf("ami: read greeting from %s: %w", c.cfg.Address, err)
	}
	actionID := "login-" + strconv.Itoa(id)
	login := goami2.NewAction("Login")
	login.AddField("Username", c.cfg.Username)
	login.AddField("Secret", c.cfg.Secret)
	login.AddField("ActionID", actionID)
	b, err := EncodeAction(login)
	if err != nil {
		return "", fmt.Errorf("ami: login to %s: %w", c.cfg.Address, err)
	}
	if _, err := conn.Write(b); err != nil {
		return "", fmt.Errorf("ami: send login to %s: %w", c.cfg.Address, err)
	}
	for {
		frame, err := rd.ReadFrame()
		if err != nil {
			return "", fmt.Errorf("ami: read login response from %s: %w", c.cfg.Address, err)
		}
		m, err := Parse(frame)
		if err != nil || header(m, "Event") != "" || header(m, "ActionID") != actionID {
			continue // nothing but our response can come before it
		}
		if !strings.EqualFold(header(m, "Response"), "Success") {
			return "", &LoginError{Address: c.cfg.Address, Username: c.cfg.Username, Reason: header(m, "Message")}
		}
		break
	}
	if !stop() {
		return "", ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	return banner, nil
}

// LoginError is Asterisk's refusal of our credentials. It matches
// ErrLoginRefused with errors.Is.
type LoginError struct {
	Address  string
	Username string
	Reason   string // Asterisk's Message, e.g. "Authentication failed"
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("ami: login to %s as %s refused: %s", e.Address, e.Username, e.Reason)
}

func (e *LoginError) Is(target error) bool { return target == ErrLoginRefused }

// read is the session's reader goroutine. It never waits on the Handler.
func (c *Client) read(s *session, rd *Reader, log *slog.Logger) {
	for {
		frame, err := rd.ReadFrame()
		if err != nil {
			s.fail(c.readError(err, log))
			break
		}
		c.frames.Add(1)
		m, err := Parse(frame)
		if err != nil {
			// Never log the frame itself: it is the peer's text, not ours to
			// spill, and may be huge.
			c.skipped.Add(1)
			log.Warn("ami: unparsable frame skipped", "bytes", len(frame), "err", err)
			continue
		}
		s.dispatch(m)
		c.q.push(item{kind: itemMessage, msg: m})
	}
	err := s.cause()
	if errors.Is(err, context.Canceled) {
		log.Info("ami: disconnected", "reason", "shutdown")
	} else {
		log.Warn("ami: disconnected", "err", err)
	}
	c.q.push(item{kind: itemDisconnected, err: err})
}

func (c *Client) readError(err error, log *slog.Logger) error {
	switch {
	case errors.Is(err, ErrLineTooLong), errors.Is(err, ErrFrameTooLarge):
		log.Error("ami: oversize input refused; resetting the connection", "err", err)
		return fmt.Errorf("ami: %s sent %w", c.cfg.Address, err)
	case err == io.EOF:
		return fmt.Errorf("ami: %s closed the connection: %w", c.cfg.Address, err)
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("ami: %s closed the connection inside a frame: %w", c.cfg.Address, err)
	}
	return fmt.Errorf("ami: read from %s: %w", c.cfg.Address, err)
}

// maintain applies the event mask and filters, then pings until the session
// ends.
func (c *Client) maintain(s *session, log *slog.Logger) {
	setup := func(a *goami2.Message) {
		resp, _, err := c.sendOn(context.Background(), s, a, false)
		if err == nil && !strings.EqualFold(header(resp, "Response"), "Success") {
			err = fmt.Errorf("ami: %s refused: %s", header(a, "Action"), header(resp, "Message"))
		}
		if err != nil {
			log.Warn("ami: session setup failed", "action", header(a, "Action"), "err", err)
		}
	}
	if c.cfg.EventMask != "" {
		a := goami2.NewAction("Events")
		a.AddField("EventMask", c.cfg.EventMask)
		setup(a)
	}
	for _, f := range c.cfg.EventFilters {
		a := goami2.NewAction("Filter")
		a.AddField("Operation", "Add")
		a.AddField("Filter", f)
		setup(a)
	}
	if c.cfg.PingInterval < 0 {
		return
	}
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		_, _, err := c.sendOn(context.Background(), s, goami2.NewAction("Ping"), false)
		if bridge.ErrorCode(err) == bridge.ETIMEOUT {
			s.fail(fmt.Errorf("%w from %s within %s: link presumed dead", ErrPingTimeout, c.cfg.Address, c.cfg.ActionTimeout))
			return
		}
	}
}

func (c *Client) logoff(s *session) {
	a := goami2.NewAction("Logoff")
	a.AddField("ActionID", "logoff-"+strconv.Itoa(s.id))
	ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.ActionTimeout, 2*time.Second))
	defer cancel()
	c.sendOn(ctx, s, a, false)
}

// Send writes an action and waits for its Response. It sets a unique
// ActionID on action if it has none (read it back to match later events,
// e.g. OriginateResponse). A "Response: Error" is a response, not an error.
//
// It waits at most ActionTimeout, less if ctx ends sooner; a timeout is a
// bridge.ETIMEOUT error. (A synchronous Originate waits for the call to be
// answered: use Async, whose OriginateResponse event reports the outcome.) While the link is down, or if it drops
// before the answer, it fails at once with bridge.EUNAVAILABLE: an action is
// never queued for later. A header that would inject lines into the stream
// is a bridge.EINVALID error, and nothing is written.
func (c *Client) Send(ctx context.Context, action *goami2.Message) (*goami2.Message, error) {
	resp, _, err := c.send(ctx, action, false)
	return resp, err
}

// SendList is Send for list actions (CoreShowChannels, Status, QueueStatus,
// BridgeList...): it also collects the events that carry the action's
// ActionID, up to the one with "EventList: Complete". A refused action
// returns its response and no items.
func (c *Client) SendList(ctx context.Context, action *goami2.Message) (resp *goami2.Message, items []*goami2.Message, err error) {
	return c.send(ctx, action, true)
}

func (c *Client) send(ctx context.Context, action *goami2.Message, list bool) (*goami2.Message, []*goami2.Message, error) {
	if action != nil && header(action, "ActionID") == "" {
		action.AddField("ActionID", c.cfg.ActionIDPrefix+strconv.FormatUint(c.nextID.Add(1), 10))
	}
	if err := validateAction(action); err != nil {
		return nil, nil, err
	}
	s := c.current()
	if s == nil {
		return nil, nil, &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true,
			Message: fmt.Sprintf("PBX link is down: not connected to %s", c.cfg.Address)}
	}
	return c.sendOn(ctx, s, action, list)
}

func (c *Client) sendOn(ctx context.Context, s *session, action *goami2.Message, list bool) (*goami2.Message, []*goami2.Message, error) {
	if header(action, "ActionID") == "" {
		action.AddField("ActionID", c.cfg.ActionIDPrefix+strconv.FormatUint(c.nextID.Add(1), 10))
	}
	b, err := EncodeAction(action)
	if err != nil {
		return nil, nil, err
	}
	id, name := header(action, "ActionID"), header(action, "Action")
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ActionTimeout)
	defer cancel()

	w := &waiter{list: list, done: make(chan struct{})}
	s.mu.Lock()
	if s.waiters[id] != nil {
		s.mu.Unlock()
		return nil, nil, bridge.FieldError("ActionID", "%q is already waiting for an answer", id)
	}
	s.waiters[id] = w
	s.mu.Unlock()
	defer s.forget(id, w)

	if err := s.write(b, c.cfg.ActionTimeout, c.cfg.Address); err != nil {
		return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "PBX link lost while sending %s", name)
	}
	select {
	case <-w.done:
		return w.resp, w.items, nil
	case <-s.done:
	case <-ctx.Done():
	}
	select { // an answer that raced the failure still counts
	case <-w.done:
		return w.resp, w.items, nil
	default:
	}
	if err := ctx.Err(); err == context.DeadlineExceeded {
		return nil, nil, bridge.Errorf(bridge.ETIMEOUT, "PBX did not answer %s in time", name)
	} else if err != nil {
		return nil, nil, err
	}
	return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "PBX link lost before %s was answered", name)
}

// session is one logged-in connection.
type session struct {
	id   int
	conn net.Conn
	wmu  sync.Mutex // one action on the wire at a time

	mu      sync.Mutex
	waiters map[string]*waiter
	err     error // why the session ended; first cause wins

	done      chan struct{}
	closeOnce sync.Once
}

type waiter struct {
	list  bool
	resp  *goami2.Message
	items []*goami2.Message
	done  chan struct{}
}

func (s *session) setCause(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *session) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail ends the session: it unblocks waiters and the reader.
func (s *session) fail(err error) {
	s.setCause(err)
	s.closeOnce.Do(func() {
		close(s.done)
		s.conn.Close()
	})
}

func (s *session) forget(id string, w *waiter) {
	s.mu.Lock()
	if s.waiters[id] == w {
		delete(s.waiters, id)
	}
	s.mu.Unlock()
}

// write sends one encoded action. A failed or timed-out write may have left
// half an action on the wire, so it ends the session.
func (s *session) write(b []byte, timeout time.Duration, addr string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return net.ErrClosed
	default:
	}
	s.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := s.conn.Write(b); err != nil {
		s.fail(fmt.Errorf("ami: write to %s: %w", addr, err))
		return err
	}
	return nil
}

// dispatch completes the waiter a frame answers, if any. Classification is by
// Event first: OriginateResponse is an event that also has a Response header.
// Waiters get their own copies, so a Handler may not race them.
func (s *session) dispatch(m *goami2.Message) {
	id := header(m, "ActionID")
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[id]
	if w == nil {
		return
	}
	if ev := header(m, "Event"); ev != "" {
		if !w.list || w.resp == nil {
			return
		}
		w.items = append(w.items, clone(m))
		// Asterisk 13+ marks the end with EventList: Complete; older ones
		// only name the event ...Complete.
		if strings.EqualFold(header(m, "EventList"), "Complete") || strings.HasSuffix(ev, "Complete") {
			delete(s.waiters, id)
			close(w.done)
		}
		return
	}
	if header(m, "Response") == "" || w.resp != nil {
		return
	}
	w.resp = clone(m)
	if !w.list || !listFollows(w.resp) {
		delete(s.waiters, id)
		close(w.done)
	}
}

// listFollows reports whether a response announces list items.
func listFollows(resp *goami2.Message) bool {
	if !strings.EqualFold(header(resp, "Response"), "Success") {
		return false
	}
	return strings.EqualFold(header(resp, "EventList"), "start") ||
		strings.Contains(strings.ToLower(header(resp, "Message")), "will follow")
}

func clone(m *goami2.Message) *goami2.Message {
	c := goami2.NewMessage()
	for _, h := range m.Headers() {
		c.AddField(h.Name, h.Value)
	}
	return c
}
