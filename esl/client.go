package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/percipia/eslgo/command"

	"github.com/ctibridge/ctibridge/bridge"
)

// Client keeps a link to FreeSWITCH's event socket and feeds a Sink.
type Client struct {
	cfg  Config
	sink bridge.Sink
	log  *slog.Logger
	tr   *Translator
	want *headerSet // the headers parsed: wantedHeaders and the direction variable
	sess atomic.Pointer[session]
	n    int // sessions that reached LinkUp

	// sleep waits out a backoff; tests replace it to see the delays.
	sleep func(ctx context.Context, d time.Duration) error
	// resyncReq asks the session's loop for another resync.
	resyncReq chan struct{}

	frames    atomic.Int64
	events    atomic.Int64
	delivered atomic.Int64
	malformed atomic.Int64
	late      atomic.Int64
	sessions  atomic.Int64
}

// New returns a Client that will feed sink once Run is called.
func New(cfg Config, sink bridge.Sink) *Client {
	cfg = cfg.withDefaults()
	want := wantedHeaders
	if cfg.DirectionVar != "" {
		want = want.with("variable_" + cfg.DirectionVar)
	}
	for _, v := range cfg.Vars {
		want = want.with("variable_" + v)
	}
	tr := NewTranslator(cfg.DirectionVar)
	tr.Vars = cfg.Vars
	return &Client{cfg: cfg, sink: sink, log: cfg.Logger, tr: tr, want: want, sleep: sleepCtx,
		resyncReq: make(chan struct{}, 1)}
}

// Resync asks for the live channels again on the current session (after
// the engine dropped events); the snapshot is applied where it is taken in
// the stream. It does not block; with no session up the next one resyncs
// anyway.
func (c *Client) Resync() {
	select {
	case c.resyncReq <- struct{}{}:
	default:
	}
}

// Stats are the Client's counters.
type Stats struct {
	Frames          int64 // frames read, all kinds
	Events          int64 // events parsed
	ChannelEvents   int64 // ChannelEvents handed to the Sink
	MalformedEvents int64 // events skipped because they did not parse
	LateEvents      int64 // events that came after a higher sequence was released
	Sessions        int64 // sessions that reached LinkUp
	Queued          int   // frames read but not yet handled
	LinkUp          bool
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	st := Stats{Frames: c.frames.Load(), Events: c.events.Load(), ChannelEvents: c.delivered.Load(),
		MalformedEvents: c.malformed.Load(), LateEvents: c.late.Load(), Sessions: c.sessions.Load()}
	if s := c.sess.Load(); s != nil {
		st.Queued, st.LinkUp = s.q.len(), true
	}
	return st
}

// Run connects, logs in, subscribes, resyncs and feeds the Sink, and
// reconnects with jittered exponential backoff until ctx ends; then it says
// goodbye to FreeSWITCH and returns ctx's error. Every session that ends is
// reported with Sink.LinkDown, and so is every failed attempt (without a
// LinkUp before it), so health checks can show why the link is down. The
// Sink is only ever called from Run's goroutine. Call Run once.
func (c *Client) Run(ctx context.Context) error {
	attempt := 0
	for {
		start := time.Now()
		up, err := c.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if up && time.Since(start) >= c.cfg.BackoffMax {
			attempt = 0
		}
		d := backoff(c.cfg.BackoffMin, c.cfg.BackoffMax, attempt)
		attempt++
		if errors.Is(err, ErrAuth) {
			// Never log the password; the address says which switch.
			c.log.Error("freeswitch rejected the event socket password", "address", c.cfg.Address, "retry_in", d.Round(time.Millisecond))
		} else {
			c.log.Warn("freeswitch link down", "address", c.cfg.Address, "err", err, "retry_in", d.Round(time.Millisecond))
		}
		if err := c.sleep(ctx, d); err != nil {
			return ctx.Err()
		}
	}
}

// backoff returns a delay in [d/2, d] where d doubles per attempt from min
// up to max.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// session runs one connection; up reports whether it reached LinkUp.
func (c *Client) session(ctx context.Context) (up bool, err error) {
	s, err := c.connect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.sink.LinkDown(err) // so health shows why the link is not up
		}
		return false, err
	}
	s.start(c.cfg.HeartbeatTimeout, c.cfg.CommandTimeout)
	c.n++
	c.sessions.Add(1)
	c.sink.LinkUp(c.n)
	c.sess.Store(s)
	c.log.Info("freeswitch link up", "address", c.cfg.Address, "session", c.n)
	err = c.serve(ctx, s)
	c.sess.CompareAndSwap(s, nil)
	if ctx.Err() != nil {
		err = nil // we hung up
	}
	c.sink.LinkDown(err)
	return true, err
}

// connect dials, logs in and subscribes, reading synchronously: nothing
// else can arrive before the subscription is acknowledged.
func (c *Client) connect(ctx context.Context) (*session, error) {
	if !validArg(c.cfg.Password) {
		return nil, fmt.Errorf("esl %s: %w: the password contains CR, LF or NUL", c.cfg.Address, ErrAuth)
	}
	d := net.Dialer{Timeout: c.cfg.DialTimeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("esl: dial %s: %w", c.cfg.Address, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(c.cfg.CommandTimeout))
	br := bufio.NewReaderSize(conn, readerSize)
	fail := func(err error) (*session, error) {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("esl %s: %w", c.cfg.Address, err)
	}
	f, err := ReadFrame(br, c.cfg.MaxFrame)
	if err != nil {
		return fail(fmt.Errorf("waiting for auth/request: %w", err))
	}
	switch ct := f.ContentType(); ct {
	case typeAuthRequest:
	case typeRude:
		// mod_event_socket's answer to an address its ACL refuses.
		return fail(fmt.Errorf("connection rejected by the switch's ACL (apply-inbound-acl in event_socket.conf.xml must allow this host): %s", truncate(string(f.Body), 80)))
	default:
		return fail(fmt.Errorf("expected auth/request, got %q %s", ct, truncate(string(f.Body), 60)))
	}
	exchange := func(line string) (string, error) {
		if _, err := conn.Write([]byte(line + "\n\n")); err != nil {
			return "", err
		}
		f, err := ReadFrame(br, c.cfg.MaxFrame)
		if err != nil {
			return "", err
		}
		if ct := f.ContentType(); ct != typeReply {
			return "", fmt.Errorf("expected command/reply, got %q", ct)
		}
		return f.Get("Reply-Text"), nil
	}
	reply, err := exchange(command.Auth{Password: c.cfg.Password}.BuildMessage())
	if err != nil {
		return fail(fmt.Errorf("auth: %w", err))
	}
	if !strings.HasPrefix(reply, "+OK") {
		return fail(ErrAuth)
	}
	reply, err = exchange(command.Event{Format: c.cfg.Format, Listen: Subscription}.BuildMessage())
	if err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	if !strings.HasPrefix(reply, "+OK") {
		return fail(fmt.Errorf("subscribe: %s", reply))
	}
	_ = conn.SetDeadline(time.Time{})
	if !stop() {
		return fail(ctx.Err())
	}
	return newSession(conn, br, c.cfg.MaxFrame, c.log, &c.frames, c.parseEvent), nil
}

// serve resyncs, then moves events from the session's queue through the
// reorder window and the translator to the Sink until the session ends.
func (c *Client) serve(ctx context.Context, s *session) error {
	ro := newReorder(c.cfg.ReorderWindow)
	if err := c.resync(ctx, s, ro); err != nil {
		s.fail(err)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.process(s.q.take(-1), ro, false)
		var due <-chan time.Time
		if at, ok := ro.next(); ok {
			timer.Reset(time.Until(at))
			due = timer.C
		}
		select {
		case <-s.q.wake:
		case <-c.resyncReq:
			if err := c.resync(ctx, s, ro); err != nil {
				s.fail(err)
			}
		case <-due:
		case <-s.done:
			// Everything read before the link died happened: pass it on.
			c.process(s.q.take(-1), ro, true)
			return s.Err()
		case <-ctx.Done():
			s.exit(min(c.cfg.CommandTimeout, time.Second))
			c.process(s.q.take(-1), ro, true)
			return nil
		}
	}
}

// resync asks for the live channels right after the subscription. The
// events read before the answer are passed on first, then the snapshot, so
// the Sink sees it where it was taken in the stream.
func (c *Client) resync(ctx context.Context, s *session, ro *reorder) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	chans, err := s.send(apiLine(false, "show channels as json"), c.cfg.CommandTimeout)
	if err != nil {
		return err
	}
	calls, err := s.send(apiLine(false, "show calls as json"), c.cfg.CommandTimeout)
	if err != nil {
		return err
	}
	rch, err := s.wait(ctx, chans)
	if err != nil {
		return fmt.Errorf("esl: resync: show channels: %w", err)
	}
	var callsBody string
	if r, err := s.wait(ctx, calls); err == nil {
		callsBody = string(r.Body)
	}
	c.process(s.q.take(rch.pos), ro, true)
	live, err := SnapshotChannels(string(rch.Body), callsBody)
	if err != nil {
		c.log.Warn("freeswitch resync failed; live calls are adopted as their events arrive", "err", err)
		return nil
	}
	if held := c.tr.Resync(live); len(held) > 0 {
		c.sink.ChannelEvents(held)
	}
	c.sink.Snapshot(live, rch.at)
	return nil
}

// parseEvent parses an event frame, keeping only the headers the model
// reads. The session's reader calls it.
func (c *Client) parseEvent(f *Frame) (*Event, error) {
	if f.ContentType() == typeEventJSON {
		return parseJSONWanted(f.Body, c.want)
	}
	return parsePlainWanted(f.Body, c.want)
}

// process takes parsed events, runs them through the reorder window and
// hands the translation to the Sink in one batch.
func (c *Client) process(items []qitem, ro *reorder, flush bool) {
	ready := make([]*Event, 0, len(items))
	for _, it := range items {
		if it.err != nil {
			c.malformed.Add(1)
			c.log.Warn("freeswitch event skipped", "err", it.err, "bytes", it.size)
			continue
		}
		c.events.Add(1)
		ready = ro.push(it.ev, it.at, ready)
	}
	if flush {
		ready = ro.flush(ready)
	} else {
		ready = ro.due(time.Now(), ready)
	}
	c.late.Store(ro.late)
	out := make([]bridge.ChannelEvent, 0, len(ready)+len(ready)/2)
	for _, ev := range ready {
		out = c.tr.TranslateAppend(out, ev)
		recycle(ev)
	}
	// No Detach (see bridge.ChannelEvent): every header value the parsers
	// keep is a string of its own, never a slice of the frame.
	if len(out) > 0 {
		c.delivered.Add(int64(len(out)))
		c.sink.ChannelEvents(out)
	}
}

// Connected reports whether a session is up (logged in and subscribed).
func (c *Client) Connected() bool { return c.sess.Load() != nil }

// API runs a synchronous API command ("uuid_kill <uuid>", "status") and
// returns its reply text. A reply starting with -ERR or -USAGE is returned
// with a *bridge.Error: ENOTFOUND for a missing channel, EINVALID for an
// unknown command or bad usage, ECONFLICT otherwise.
func (c *Client) API(ctx context.Context, cmd string) (string, error) {
	if err := checkCommand("command", cmd); err != nil {
		return "", err
	}
	r, err := c.roundtrip(ctx, apiLine(false, cmd))
	if err != nil {
		return "", err
	}
	body := string(r.Body)
	return body, replyError(body)
}

// BgAPI runs an API command in the background and returns its Job-UUID,
// which it picks itself; the result arrives as a BACKGROUND_JOB event (a
// failed originate becomes ChanOriginateFailed with ActionID = Job-UUID).
func (c *Client) BgAPI(ctx context.Context, cmd string) (string, error) {
	job := uuid.NewString()
	if err := c.BgAPIJob(ctx, cmd, job); err != nil {
		return "", err
	}
	return job, nil
}

// BgAPIJob is BgAPI with a Job-UUID chosen by the caller, who can then
// expect the job's outcome before sending it.
func (c *Client) BgAPIJob(ctx context.Context, cmd, jobUUID string) error {
	if err := checkCommand("command", cmd); err != nil {
		return err
	}
	if _, err := uuid.Parse(jobUUID); err != nil || !validArg(jobUUID) {
		return bridge.FieldError("job_uuid", "must be a UUID")
	}
	r, err := c.roundtrip(ctx, apiLine(true, cmd)+"\nJob-UUID: "+jobUUID)
	if err != nil {
		return err
	}
	return replyError(r.Get("Reply-Text"))
}

func (c *Client) roundtrip(ctx context.Context, line string) (reply, error) {
	s := c.sess.Load()
	if s == nil {
		return reply{}, &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "the freeswitch link is down"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	r, err := s.roundtrip(ctx, line, c.cfg.CommandTimeout)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, context.DeadlineExceeded):
		return reply{}, bridge.Errorf(bridge.ETIMEOUT, "freeswitch did not answer within %s", c.cfg.CommandTimeout)
	case errors.Is(err, errLinkDown):
		return reply{}, bridge.Errorf(bridge.EUNAVAILABLE, "the freeswitch link went down")
	}
	return reply{}, err
}

// apiLine builds "api cmd args" / "bgapi cmd args" with eslgo's builder,
// which leaves a trailing space when there are no arguments.
func apiLine(bg bool, cmd string) string {
	name, args, _ := strings.Cut(cmd, " ")
	line := command.API{Command: name, Arguments: args, Background: bg}.BuildMessage()
	if args == "" {
		line = strings.TrimSuffix(line, " ")
	}
	return line
}

func checkCommand(field, cmd string) error {
	switch {
	case strings.TrimSpace(cmd) == "":
		return bridge.FieldError(field, "is required")
	case !validArg(cmd):
		return bridge.FieldError(field, "must not contain CR, LF or NUL")
	}
	return nil
}

// replyError turns a -ERR / -USAGE reply into a *bridge.Error.
func replyError(text string) error {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "-") {
		return nil
	}
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(text, "-ERR"), "-"))
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "no such channel"):
		return bridge.Errorf(bridge.ENOTFOUND, "freeswitch: %s", msg)
	case strings.HasPrefix(text, "-USAGE"), strings.Contains(lower, "command not found"):
		return bridge.Errorf(bridge.EINVALID, "freeswitch: %s", msg)
	}
	return bridge.Errorf(bridge.ECONFLICT, "freeswitch: %s", msg)
}
