package ami

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// skipResyncAt is when a skipped frame last asked for a resync (unix ns).
	skipResyncAt atomic.Int64
	// skipLogAt is when a skipped frame was last logged (unix ns);
	// skipUnlogged counts the skips since, told with the next one logged.
	skipLogAt    atomic.Int64
	skipUnlogged atomic.Int64
	frames       atomic.Int64
	unread       atomic.Int64 // events the Handler does not read, dropped unparsed

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
		start := time.Now()
		loggedIn, _ := c.connect(ctx)
		if ctx.Err() != nil {
			break
		}
		// Only a session that lasted starts the backoff over: one dropped
		// right after its login (a PBX closing on us, a frame it sends
		// that we refuse) would otherwise reconnect, and resync, twice a
		// second for ever.
		if loggedIn && time.Since(start) >= c.cfg.BackoffMax {
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
		backoff = min(2*backoff, c.cfg.BackoffMax)
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

// Unread is the number of events dropped unparsed because the Handler does
// not read them (EventWanter).
func (c *Client) Unread() int64 { return c.unread.Load() }

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
	bh, batching := c.h.(BatchHandler)
	message := func(m *goami2.Message, more int) {
		if batching {
			bh.Add(m, more)
		} else {
			c.h.Message(m)
		}
	}
	for {
		c0 := c.q.take()
		batch := c0.items[:c0.n]
		// unflushed counts the messages added since the last Flush: they
		// leave QueueLen only once their events are handed on.
		unflushed := 0
		for i, it := range batch {
			isMessage := it.kind == itemMessage || it.kind == itemFrame
			if batching && !isMessage {
				bh.Flush()
				c.q.pending.Add(-int64(unflushed))
				unflushed = 0
			}
			switch it.kind {
			case itemMessage:
				message(it.msg, len(batch)-1-i)
			case itemFrame:
				if m, err := parseOwned(it.frame); err != nil {
					c.unparsable(c.log, len(it.frame), err)
				} else {
					message(m, len(batch)-1-i)
				}
			case itemConnected:
				c.h.Connected(it.info)
			case itemDisconnected:
				c.h.Disconnected(it.err)
			case itemFailed:
				if f, ok := c.h.(AttemptHandler); ok {
					f.AttemptFailed(it.err)
				}
			case itemResync:
				if r, ok := c.h.(bridge.Resyncer); ok {
					r.Resync()
				}
			case itemStop:
				c.q.pending.Add(-1)
				c.q.done(c0)
				return
			}
			if batching && isMessage {
				unflushed++
			} else {
				c.q.pending.Add(-1)
			}
		}
		if batching {
			bh.Flush()
			c.q.pending.Add(-int64(unflushed))
		}
		c.q.done(c0)
	}
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

	if strings.EqualFold(name, "Command") {
		s.commands.Add(1)
		defer s.commands.Add(-1)
	}
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
		return w.listed()
	case <-s.done:
	case <-ctx.Done():
	}
	select { // an answer that raced the failure still counts
	case <-w.done:
		return w.listed()
	default:
	}
	if err := ctx.Err(); err == context.DeadlineExceeded {
		s.mu.Lock()
		began, n, over := w.resp != nil, len(w.items), w.overflow
		s.mu.Unlock()
		if over {
			return nil, nil, bridge.Errorf(bridge.ETIMEOUT, "PBX's answer to %s listed over %d items and did not end in time", name, maxListItems)
		}
		if began {
			return nil, nil, bridge.Errorf(bridge.ETIMEOUT, "PBX answered %s but did not end its list in time (%d items came)", name, n)
		}
		return nil, nil, bridge.Errorf(bridge.ETIMEOUT, "PBX did not answer %s in time", name)
	} else if err != nil {
		return nil, nil, err
	}
	return nil, nil, bridge.Errorf(bridge.EUNAVAILABLE, "PBX link lost before %s was answered", name)
}
