package amitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/staskobzar/goami2"
)

// Errors returned by Play.
var (
	ErrServerClosed = errors.New("amitest: server closed")
	ErrRestarted    = errors.New("amitest: server restarted during play")
)

// ServerOptions configures a Server.
type ServerOptions struct {
	Addr     string // listen address; default 127.0.0.1:0
	Username string // default "bridge", as in the captures
	Secret   string // default "bridgepass"
	// WriteTimeout is manager.conf's writetimeout: a client that does not
	// read for that long is dropped, as Asterisk does (default 5 s, the
	// captured config; Asterisk's own default is 100 ms).
	WriteTimeout time.Duration
	// WriteBuffer sets SO_SNDBUF on client connections (0 keeps the
	// kernel's autotuned one). Linux wakes a blocked writer only once half
	// the queued bytes are gone, so with megabytes queued a short
	// WriteTimeout measures how fast the client drains them; a small buffer
	// makes it measure whether the client keeps reading at all.
	WriteBuffer int
	TLS         *tls.Config // serve AMI over TLS when set
	// OnAction, when set, sees every action first (from the connection's
	// goroutine); returning true means it was handled and the Server sends
	// nothing. Answer with Server.Reply.
	OnAction func(action *goami2.Message) (handled bool)
	Logger   *slog.Logger // default: discard
}

// Server is the simulator: a TCP listener speaking AMI like Asterisk 22.
type Server struct {
	opts ServerOptions
	ln   net.Listener
	log  *slog.Logger
	wg   sync.WaitGroup
	quit chan struct{}

	// emit serialises what clients see: events Play sends and the live
	// table it updates, list answers rendered from that table, logins.
	emit sync.Mutex
	live *table // guarded by emit

	mu         sync.Mutex
	conns      []*Conn // every connection accepted, in order
	origin     map[*goami2.Message]*Conn
	secret     string
	epoch      int           // bumped by Restart; a Play of an older epoch stops
	restarted  chan struct{} // closed and replaced by Restart
	stallUntil time.Time
	changed    chan struct{} // closed and replaced on every state change
	closed     bool
	ids        idGen
}

// NewServer starts a Server.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Username == "" {
		opts.Username = "bridge"
	}
	if opts.Secret == "" {
		opts.Secret = "bridgepass"
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	s := &Server{
		opts:      opts,
		ln:        ln,
		log:       opts.Logger,
		quit:      make(chan struct{}),
		live:      newTable(),
		origin:    map[*goami2.Message]*Conn{},
		secret:    opts.Secret,
		changed:   make(chan struct{}),
		restarted: make(chan struct{}),
		ids:       newIDGen(),
	}
	templates() // fail now, not on the first client, if a capture is broken
	s.wg.Go(s.accept)
	return s, nil
}

// TB is the part of testing.TB NewTestServer uses: declared here so the
// product binary, which embeds the simulator (demo, simulate), does not
// link the testing package.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// NewTestServer starts a Server that is closed when the test ends.
func NewTestServer(tb TB, opts ServerOptions) *Server {
	tb.Helper()
	s, err := NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Addr is the address to dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, drops every client and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	conns := s.conns
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok && s.opts.WriteBuffer > 0 {
			tc.SetWriteBuffer(s.opts.WriteBuffer)
		}
		c := &Conn{s: s, nc: nc, id: len(s.conns) + 1, events: true}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.notify()
		s.log.Info("amitest: client connected", "conn", c.id, "remote", nc.RemoteAddr().String())
		s.wg.Go(func() { s.serve(c) })
	}
}

// serve reads a client's actions until it leaves.
func (s *Server) serve(c *Conn) {
	defer s.notify()
	defer c.Close()
	c.write(templates().banner)
	br := bufio.NewReader(io.TeeReader(c.nc, recorder{c}))
	for {
		a, err := readAction(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.origin[a] = c
		s.mu.Unlock()
		c.mu.Lock()
		c.actions = append(c.actions, a)
		c.mu.Unlock()
		s.notify()
		s.handle(c, a)
	}
}

func (s *Server) handle(c *Conn, a *goami2.Message) {
	if c.blackholed() {
		return
	}
	if h := s.opts.OnAction; h != nil && h(a) {
		return
	}
	s.emit.Lock()
	defer s.emit.Unlock()
	if c.LoggedIn() {
		s.answer(c, a)
		return
	}
	t := templates()
	id := a.Field("ActionID")
	switch strings.ToLower(a.Field("Action")) {
	case "login":
		s.mu.Lock()
		ok := a.Field("Username") == s.opts.Username && a.Field("Secret") == s.secret
		s.mu.Unlock()
		if !ok {
			s.log.Info("amitest: login refused", "conn", c.id, "user", a.Field("Username"))
			c.write(setActionID(t.loginFail, id))
			c.Close()
			return
		}
		events := !strings.EqualFold(a.Field("Events"), "off")
		c.mu.Lock()
		c.loggedIn, c.events = true, events
		c.mu.Unlock()
		resp := setActionID(t.loginOK, id)
		if events {
			resp = append(resp, t.booted...)
		}
		c.write(resp)
		s.log.Info("amitest: client logged in", "conn", c.id)
		s.notify()
	case "logoff":
		c.write(setActionID(t.goodbye, id))
		c.Close()
	case "":
		c.write(Response(a, "Error", "Message", "Missing action in request"))
	default:
		c.write(Response(a, "Error", "Message", "Permission denied"))
	}
}

// readAction reads one action: header lines up to an empty line, CRLF or
// LF. Names and values are split at the first colon, as manager.c does.
func readAction(br *bufio.Reader) (*goami2.Message, error) {
	m := goami2.NewMessage()
	size := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, errors.New("amitest: action line too long")
		}
		if err != nil {
			return nil, err
		}
		if size += len(line); size > 1<<20 {
			return nil, errors.New("amitest: action too large")
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if m.Len() == 0 {
				continue
			}
			return m, nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		m.AddField(string(bytes.TrimSpace(name)), string(bytes.TrimLeft(value, " ")))
	}
}

// Reply writes raw bytes to the client that sent action, e.g. an answer
// built with Response from an OnAction hook.
func (s *Server) Reply(action *goami2.Message, raw []byte) error {
	s.mu.Lock()
	c := s.origin[action]
	s.mu.Unlock()
	if c == nil {
		return errors.New("amitest: action did not come from a client")
	}
	return c.write(raw)
}

// SendRaw writes raw bytes to every logged-in client.
func (s *Server) SendRaw(raw []byte) error {
	s.emit.Lock()
	defer s.emit.Unlock()
	var first error
	for _, c := range s.loggedIn() {
		if err := c.write(raw); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) loggedIn() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Conn
	for _, c := range s.conns {
		if c.LoggedIn() {
			out = append(out, c)
		}
	}
	return out
}

// Conns returns every connection accepted so far, in order.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.conns...)
}

// LoggedIn is the number of clients logged in now.
func (s *Server) LoggedIn() int { return len(s.loggedIn()) }

// Received returns every byte clients sent, connection after connection.
func (s *Server) Received() []byte {
	var b []byte
	for _, c := range s.Conns() {
		b = append(b, c.Received()...)
	}
	return b
}

// Actions returns every action clients sent, connection after connection.
func (s *Server) Actions() []*goami2.Message {
	var out []*goami2.Message
	for _, c := range s.Conns() {
		out = append(out, c.Actions()...)
	}
	return out
}

// LiveChannels returns the channels announced and not yet hung up, oldest
// first.
func (s *Server) LiveChannels() []LiveChannel {
	s.emit.Lock()
	defer s.emit.Unlock()
	var out []LiveChannel
	for _, c := range s.live.channels() {
		out = append(out, c.live())
	}
	return out
}

// Wait blocks until cond returns true, re-checking it whenever the Server's
// state changes (a client connects, logs in, sends an action or leaves, an
// event is played), or until ctx ends.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// SetSecret changes the secret for the next logins.
func (s *Server) SetSecret(secret string) {
	s.mu.Lock()
	s.secret = secret
	s.mu.Unlock()
}

// DropConnections closes every client connection at once, as a crash or a
// network cut would.
func (s *Server) DropConnections() {
	for _, c := range s.Conns() {
		c.Close()
	}
}

// DropMidFrame writes the first half of an event to every logged-in client,
// then closes the connections: the client must not hand over the torn frame.
func (s *Server) DropMidFrame() {
	s.emit.Lock()
	defer s.emit.Unlock()
	half := EventsOf(Frames("inbound-call-basic"))[0].Raw
	half = half[:len(half)/2]
	for _, c := range s.loggedIn() {
		c.write(half)
		c.Close()
	}
}

// Stall freezes the Server for d, like a busy Asterisk: nothing is
// answered or written meanwhile (it is delayed, not lost), and connections
// stay open.
func (s *Server) Stall(d time.Duration) {
	s.mu.Lock()
	s.stallUntil = time.Now().Add(d)
	s.mu.Unlock()
}

// Blackhole turns every current connection into a half-open link: the
// client's bytes are still read (and recorded) but nothing is answered or
// written again, and the socket is not closed. New connections are served
// normally, as after a network path comes back.
func (s *Server) Blackhole() {
	for _, c := range s.Conns() {
		c.mu.Lock()
		c.hole = true
		c.mu.Unlock()
	}
}

// Restart is an Asterisk restart: clients are dropped, live channels and
// bridges forgotten, a Play in progress stops with ErrRestarted, and the next
// client gets a fresh banner.
func (s *Server) Restart() {
	s.mu.Lock()
	s.epoch++
	close(s.restarted)
	s.restarted = make(chan struct{})
	s.stallUntil = time.Time{}
	s.mu.Unlock()
	s.emit.Lock()
	s.live = newTable()
	s.emit.Unlock()
	s.DropConnections()
	s.notify()
}

// waitStall blocks while the Server is stalled.
func (s *Server) waitStall() error {
	for {
		s.mu.Lock()
		d := time.Until(s.stallUntil)
		s.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, 10*time.Millisecond))
		select {
		case <-t.C:
		case <-s.quit:
			t.Stop()
			return ErrServerClosed
		}
	}
}

// Conn is one client connection.
type Conn struct {
	s   *Server
	nc  net.Conn
	id  int
	wmu sync.Mutex

	mu       sync.Mutex
	recv     []byte
	actions  []*goami2.Message
	loggedIn bool
	events   bool
	hole     bool
	closed   bool
	include  []*regexp.Regexp
	exclude  []*regexp.Regexp
}

type recorder struct{ c *Conn }

func (r recorder) Write(p []byte) (int, error) {
	r.c.mu.Lock()
	r.c.recv = append(r.c.recv, p...)
	r.c.mu.Unlock()
	return len(p), nil
}

// Received returns the bytes the client sent on this connection.
func (c *Conn) Received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.recv)
}

// Actions returns the actions the client sent on this connection.
func (c *Conn) Actions() []*goami2.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*goami2.Message(nil), c.actions...)
}

// LoggedIn reports whether the client logged in and is still connected.
func (c *Conn) LoggedIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loggedIn && !c.closed
}

// Closed reports whether the connection is closed.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close closes the connection from the server side.
func (c *Conn) Close() error {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	if was {
		return nil
	}
	err := c.nc.Close()
	c.s.mu.Lock()
	for _, a := range c.Actions() {
		delete(c.s.origin, a) // Reply to a gone client has nowhere to go
	}
	c.s.mu.Unlock()
	c.s.notify()
	return err
}

func (c *Conn) blackholed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hole
}

// wants applies the event mask and the client's filters to an event.
func (c *Conn) wants(raw []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.events {
		return false
	}
	if len(c.include) == 0 && len(c.exclude) == 0 {
		return true
	}
	ok := len(c.include) == 0
	for _, re := range c.include {
		if re.Match(raw) {
			ok = true
			break
		}
	}
	for _, re := range c.exclude {
		if ok && re.Match(raw) {
			ok = false
		}
	}
	return ok
}

// write sends bytes to the client. Like Asterisk's carefulwrite, each piece
// must get through within WriteTimeout, or the client is dropped: the limit
// is on a client that stops reading, not on the size of a burst.
func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.s.waitStall(); err != nil {
		return err
	}
	if c.blackholed() {
		return nil
	}
	if c.Closed() {
		return net.ErrClosed
	}
	for len(b) > 0 {
		n := min(len(b), 16<<10)
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		if _, err := c.nc.Write(b[:n]); err != nil {
			c.s.log.Warn("amitest: write failed; dropping the client", "conn", c.id, "err", err)
			c.Close()
			return fmt.Errorf("amitest: conn %d: %w", c.id, err)
		}
		b = b[n:]
	}
	return nil
}
