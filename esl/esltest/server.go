// Package esltest is a FreeSWITCH event socket simulator built on real
// captures: it speaks mod_event_socket's inbound protocol byte for byte as
// captured (auth, event subscriptions, api, bgapi, exit), replays captured
// calls to subscribed clients, answers "show channels as json" from the
// channels those calls left live, records every byte each client sends, and
// injects faults (drops, half-open links, restarts, oversize frames).
//
// Its core API takes no testing.TB so the ctibridge demo can run it too.
package esltest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Options configure a Server.
type Options struct {
	Password string // default "ClueCon"
	// Heartbeat sends a HEARTBEAT event this often to subscribers, as
	// FreeSWITCH does every 20 s. Zero sends none.
	Heartbeat time.Duration
	// API, when set, answers an api or bgapi command before the built-in
	// handlers: ok=false falls through to them.
	API func(cmd, args string) (reply string, ok bool)
}

// Server is a simulated FreeSWITCH event socket on 127.0.0.1.
type Server struct {
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup
	stop chan struct{}

	mu         sync.Mutex
	cond       *sync.Cond
	conns      []*conn
	core       string // Core-UUID
	seq        uint64 // next Event-Sequence the simulator hands out
	table      *table
	subscribed int // event subscriptions accepted, ever
	closed     bool

	// templates cut from the captures
	status, version string
	heartbeat, job  *Event
}

// NewServer listens on 127.0.0.1:0 and serves until Close.
func NewServer(opts Options) (*Server, error) {
	if opts.Password == "" {
		opts.Password = "ClueCon"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, ln: ln, stop: make(chan struct{}), core: uuid.NewString(), seq: 1, table: newTable()}
	s.cond = sync.NewCond(&s.mu)
	if err := s.loadTemplates(); err != nil {
		ln.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.accept()
	if opts.Heartbeat > 0 {
		s.wg.Add(1)
		go s.heartbeats(opts.Heartbeat)
	}
	return s, nil
}

// Addr is the host:port to dial.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, drops every connection and waits for the
// server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	conns := s.conns
	s.cond.Broadcast()
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return err
}

// CoreUUID is the simulated switch's Core-UUID (new after Restart).
// SetPassword changes the password later logins need (a rotated
// event_socket.conf.xml); sessions already in keep theirs.
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	s.opts.Password = p
	s.mu.Unlock()
}

func (s *Server) CoreUUID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core
}

// Received returns the bytes each connection has sent so far, in the
// order the connections were accepted.
func (s *Server) Received() [][]byte {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	out := make([][]byte, len(conns))
	for i, c := range conns {
		c.mu.Lock()
		out[i] = bytes.Clone(c.recv.Bytes())
		c.mu.Unlock()
	}
	return out
}

// Connections returns how many connections were accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Subscriptions returns how many event subscriptions were accepted so far.
func (s *Server) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed
}

// WaitSubscribed waits until n event subscriptions were accepted in all
// (the n-th client session is ready for events).
func (s *Server) WaitSubscribed(ctx context.Context, n int) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.subscribed < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed {
			return net.ErrClosed
		}
		s.cond.Wait()
	}
	return nil
}

// Channels returns the live channel table, in creation order.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.live()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{s: s, nc: nc}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

// conn is one client connection.
type conn struct {
	s   *Server
	nc  net.Conn
	wmu sync.Mutex // frames are written whole

	mu     sync.Mutex
	recv   bytes.Buffer
	authed bool
	format string // "" until subscribed
	all    bool
	events map[string]bool
	custom map[string]bool
	frozen bool // half-open: writes nothing, still reads
	closed bool
}

// Write records what the client sent (conn is the io.Writer of a TeeReader).
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.recv.Write(p)
	c.mu.Unlock()
	return len(p), nil
}

func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.nc.Close()
}

// write sends whole frames unless the connection is frozen or closed.
func (c *conn) write(frames ...[]byte) error {
	c.mu.Lock()
	skip := c.frozen || c.closed
	c.mu.Unlock()
	if skip {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A client that stops reading would block the simulator for good.
	_ = c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for _, f := range frames {
		if _, err := c.nc.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// wants reports whether the connection is subscribed to the event, and in
// which format, with mod_event_socket's rule: ALL, or the event's name, and
// for CUSTOM also the subclass.
func (c *conn) wants(e *Event) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.format == "" || c.closed || c.frozen {
		return "", false
	}
	if c.all {
		return c.format, true
	}
	name := e.Get("Event-Name")
	if !c.events[name] {
		return "", false
	}
	if name == "CUSTOM" && !c.custom[e.Get("Event-Subclass")] {
		return "", false
	}
	return c.format, true
}

func (c *conn) serve() {
	defer c.close()
	if c.write([]byte("Content-Type: auth/request\n\n")) != nil {
		return
	}
	r := bufio.NewReader(io.TeeReader(c.nc, c))
	for {
		cmd, hdrs, err := readCommand(r)
		if err != nil {
			return
		}
		if !c.handle(cmd, hdrs) {
			return
		}
	}
}

// readCommand reads one command: lines up to a blank line, the first the
// command, the others headers (e.g. bgapi's Job-UUID).
func readCommand(r *bufio.Reader) (string, map[string]string, error) {
	var cmd string
	hdrs := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if cmd == "" {
				continue
			}
			return cmd, hdrs, nil
		}
		if cmd == "" {
			cmd = line
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		hdrs[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
}

// handle answers one command; false ends the connection.
func (c *conn) handle(cmd string, hdrs map[string]string) bool {
	s := c.s
	verb, rest, _ := strings.Cut(cmd, " ")
	c.mu.Lock()
	authed := c.authed
	c.mu.Unlock()
	switch {
	case strings.EqualFold(verb, "exit"):
		_ = c.write(replyFrame("+OK bye"), disconnectFrame)
		return false
	case !authed:
		s.mu.Lock()
		password := s.opts.Password
		s.mu.Unlock()
		if strings.EqualFold(verb, "auth") && rest == password {
			c.mu.Lock()
			c.authed = true
			c.mu.Unlock()
			return c.write(replyFrame("+OK accepted")) == nil
		}
		_ = c.write(replyFrame("-ERR invalid"), disconnectFrame)
		return false
	case strings.EqualFold(verb, "event"):
		return c.write(replyFrame(c.subscribe(rest))) == nil
	case strings.EqualFold(verb, "noevents"):
		c.mu.Lock()
		c.format = ""
		c.mu.Unlock()
		return c.write(replyFrame("+OK no longer listening for events")) == nil
	case strings.EqualFold(verb, "api"):
		name, args, _ := strings.Cut(rest, " ")
		return c.write(apiFrame(s.api(name, args))) == nil
	case strings.EqualFold(verb, "bgapi"):
		job := hdrs["job-uuid"]
		if job == "" {
			job = uuid.NewString()
		}
		if c.write([]byte(fmt.Sprintf("Content-Type: command/reply\nReply-Text: +OK Job-UUID: %s\nJob-UUID: %s\n\n", job, job))) != nil {
			return false
		}
		name, args, _ := strings.Cut(rest, " ")
		s.wg.Add(1) // safe: this connection's goroutine holds the group above zero
		go func() {
			defer s.wg.Done()
			s.backgroundJob(job, name, args)
		}()
		return true
	}
	return c.write(replyFrame("-ERR command not found")) == nil
}

// subscribe parses "plain|json NAME... [CUSTOM subclass...]" and returns
// the reply text.
func (c *conn) subscribe(args string) string {
	words := strings.Fields(args)
	format := "plain"
	if len(words) > 0 && (words[0] == "plain" || words[0] == "json" || words[0] == "xml") {
		format, words = words[0], words[1:]
	}
	if len(words) == 0 {
		return "-ERR no keywords supplied"
	}
	c.mu.Lock()
	if c.events == nil {
		c.events, c.custom = map[string]bool{}, map[string]bool{}
	}
	custom := false
	for _, w := range words {
		switch {
		case custom:
			c.custom[w] = true // every word after CUSTOM is a subclass
		case w == "ALL" || w == "all":
			c.all = true
		case w == "CUSTOM":
			custom = true
			c.events[w] = true
		default:
			c.events[w] = true
		}
	}
	c.format = format
	c.mu.Unlock()
	s := c.s
	s.mu.Lock()
	s.subscribed++
	s.cond.Broadcast()
	s.mu.Unlock()
	return "+OK event listener enabled " + format
}

// api answers an api command the way the captured FreeSWITCH did.
func (s *Server) api(name, args string) string {
	if s.opts.API != nil {
		if r, ok := s.opts.API(name, args); ok {
			return r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := func(id string) bool { return s.table.rows[id] != nil }
	first, _, _ := strings.Cut(args, " ")
	switch name {
	case "status":
		return s.status
	case "version":
		return s.version
	case "show":
		switch args {
		case "channels as json":
			return s.table.showChannels()
		case "calls as json":
			return s.table.showCalls(false)
		case "bridged_calls as json":
			return s.table.showCalls(true)
		case "channels count":
			return fmt.Sprintf("\n%d total.\n", s.table.count(false))
		case "calls count":
			return fmt.Sprintf("\n%d total.\n", s.table.count(true))
		}
		return "-USAGE: show <channels|calls|bridged_calls> [as json|count]\n"
	case "uuid_kill", "uuid_transfer", "uuid_bridge":
		if !live(first) {
			return "-ERR No such channel!\n"
		}
		return "+OK\n"
	case "uuid_hold", "uuid_record":
		target := first
		if first == "off" || first == "toggle" {
			target, _, _ = strings.Cut(strings.TrimPrefix(strings.TrimPrefix(args, first), " "), " ")
		}
		if !live(target) {
			return "-ERR No such channel!\n"
		}
		// A loopback leg never enters HELD, so unhold fails (hold-loopback).
		if name == "uuid_hold" && first == "off" && strings.HasPrefix(s.table.rows[target]["name"], "loopback/") {
			return "-ERR Operation failed\n"
		}
		return "+OK Success\n"
	case "callcenter_config":
		return "+OK\n"
	case "originate":
		return "-ERR NO_ROUTE_DESTINATION\n"
	}
	return fmt.Sprintf("-ERR %s Command not found!\n", name)
}

// backgroundJob runs a bgapi command and fires its BACKGROUND_JOB event.
func (s *Server) backgroundJob(job, name, args string) {
	result := s.api(name, args)
	e := &Event{Body: result}
	s.mu.Lock()
	for _, h := range s.job.Headers {
		switch h.Name {
		case "Job-UUID":
			h.Value = job
		case "Job-Command":
			h.Value = name
		case "Job-Command-Arg":
			h.Value = args
		}
		e.Headers = append(e.Headers, h)
	}
	s.mu.Unlock()
	s.fire(e)
}

// fire stamps a generated event with the current Core-UUID, date and the
// next sequence, and sends it to the subscribers that want it.
func (s *Server) fire(e *Event) {
	now := time.Now()
	s.mu.Lock()
	seq := s.seq
	s.seq++
	core := s.core
	conns := s.conns
	s.mu.Unlock()
	for i, h := range e.Headers {
		switch h.Name {
		case "Core-UUID":
			e.Headers[i].Value = core
		case "Event-Sequence":
			e.Headers[i].Value = fmt.Sprint(seq)
		case "Event-Date-Timestamp":
			e.Headers[i].Value = fmt.Sprint(now.UnixMicro())
		case "Event-Date-Local":
			e.Headers[i].Value = now.Format("2006-01-02 15:04:05")
		case "Event-Date-GMT":
			e.Headers[i].Value = now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
		}
	}
	enc := map[string][]byte{}
	for _, c := range conns {
		if format, ok := c.wants(e); ok {
			if enc[format] == nil {
				enc[format] = encode(e, format)
			}
			_ = c.write(enc[format])
		}
	}
}

func (s *Server) heartbeats(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			e := &Event{Headers: append([]Header(nil), s.heartbeat.Headers...)}
			s.fire(e)
		}
	}
}

// loadTemplates cuts the api replies and generated events from captures.
func (s *Server) loadTemplates() error {
	sc, err := Load("show-channels")
	if err != nil {
		return err
	}
	// show-channels.sent asks, in order: show channels as json, show calls
	// as json, show bridged_calls as json, show channels, show calls count,
	// status, version.
	var replies []string
	for _, f := range sc.Frames {
		if f.ContentType == "api/response" {
			replies = append(replies, string(f.Body))
		}
	}
	if len(replies) != 7 {
		return errors.New("esltest: show-channels capture: want 7 api replies")
	}
	s.status, s.version = replies[5], replies[6]
	find := func(capture, name string) (*Event, error) {
		c, err := Load(capture)
		if err != nil {
			return nil, err
		}
		for _, f := range c.Events() {
			if f.Event.Get("Event-Name") == name {
				return f.Event, nil
			}
		}
		return nil, fmt.Errorf("esltest: no %s in %s", name, capture)
	}
	if s.heartbeat, err = find("basic-call-plain", "HEARTBEAT"); err != nil {
		return err
	}
	s.job, err = find("originate-failure", "BACKGROUND_JOB")
	return err
}
