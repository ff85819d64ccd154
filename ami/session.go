package ami

// One manager connection, from dial to logoff: the banner and login, the
// reader (which only reads, parses and queues), the keepalive, and the
// action waiters of the session.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

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
			c.q.push(item{kind: itemFailed, err: err})
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
		c.q.push(item{kind: itemFailed, err: err})
		return false, err
	}

	s := &session{id: id, conn: conn, waiters: make(map[string]*waiter), done: make(chan struct{})}
	rd.Follows = func() bool { return s.commands.Load() > 0 }
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
	wanter, _ := c.h.(EventWanter) // nil: every event is read
	for {
		frame, err := rd.ReadFrame()
		var sk *SkippedFrameError
		if errors.As(err, &sk) {
			// The stream goes on past it. An event the model reads (or a
			// frame we cannot name) may have changed a call: the PBX's
			// state is asked again, in wire order.
			c.skipped.Add(1)
			// Not for an action's answer: a list item over the limit makes
			// its list short, which its own check refuses; a resync would
			// ask the same list again, in a loop. And at most one a
			// skipResyncGap: a chatty channel must not resync every event.
			resync := !sk.ActionID && (sk.Event == "" || wanter == nil || wanter.WantsEvent(sk.Event, sk.Variable))
			if resync {
				now := skipNow()
				if last := c.skipResyncAt.Load(); last != 0 && now-last < int64(skipResyncGap) || !c.skipResyncAt.CompareAndSwap(last, now) {
					resync = false
				}
			}
			// One line a skipResyncGap at most (and each that resyncs): a
			// channel with an oversize variable skips one frame an event.
			now := skipNow()
			if last := c.skipLogAt.Load(); resync || last == 0 || now-last >= int64(skipResyncGap) {
				c.skipLogAt.Store(now)
				log.Warn("ami: oversize frame skipped", "event", sk.Event, "variable", sk.Variable, "err", sk.Err, "resync", resync,
					"skipped_unlogged", c.skipUnlogged.Swap(0))
			} else {
				c.skipUnlogged.Add(1)
			}
			if resync {
				c.q.push(item{kind: itemResync})
			}
			continue
		}
		if err != nil {
			s.fail(c.readError(err, log))
			break
		}
		c.frames.Add(1)
		switch route(wanter, frame) {
		case routeDrop:
			c.unread.Add(1) // see prefilter.go
			continue
		case routeQueue:
			c.q.push(item{kind: itemFrame, frame: string(frame)})
			continue
		}
		m, err := Parse(frame)
		if err != nil {
			c.unparsable(log, len(frame), err)
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

// skipResyncGap is the least time between two resyncs a skipped frame
// asks for; pbx.reconcile_interval finds what falls between.
const skipResyncGap = 10 * time.Second

// skipClock, when set (tests only), is the time skipNow gives: the gap's
// checks then hold whatever the machine's speed.
var skipClock atomic.Int64

func skipNow() int64 {
	if t := skipClock.Load(); t != 0 {
		return t
	}
	return time.Now().UnixNano()
}

// unparsable counts and logs a frame Parse refused. The frame itself is
// never logged: it is the peer's text, not ours to spill, and may be huge.
func (c *Client) unparsable(log *slog.Logger, size int, err error) {
	c.skipped.Add(1)
	log.Warn("ami: unparsable frame skipped", "bytes", size, "err", err)
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

// session is one logged-in connection.
type session struct {
	id   int
	conn net.Conn
	wmu  sync.Mutex // one action on the wire at a time

	mu      sync.Mutex
	waiters map[string]*waiter
	err     error // why the session ended; first cause wins
	// commands counts the Command actions waiting: only their answers
	// may be framed as "Response: Follows".
	commands atomic.Int32

	done      chan struct{}
	closeOnce sync.Once
}

type waiter struct {
	list     bool
	resp     *goami2.Message
	items    []*goami2.Message
	overflow bool // more than maxListItems came: the list is cut
	done     chan struct{}
}

// maxListItems bounds what a list action collects, far above any real
// PBX's lists.
var maxListItems = 100_000 // a var: tests lower it

// listed is a finished waiter's answer: a list cut at maxListItems is an
// error, not a short list.
func (w *waiter) listed() (*goami2.Message, []*goami2.Message, error) {
	if w.overflow {
		return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "PBX's list answered to %s had over %d items: not taken", header(w.resp, "ActionID"), maxListItems)
	}
	return w.resp, w.items, nil
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
		if len(w.items) < maxListItems {
			w.items = append(w.items, clone(m))
		} else {
			w.overflow = true // a list that never ends must not take all memory
		}
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
