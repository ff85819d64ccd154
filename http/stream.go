package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// Attach subscribes the event stream to the engine's commits. Serve calls
// it; it runs once.
func (s *Server) Attach() {
	s.attachOnce.Do(func() {
		if s.engine != nil {
			s.unsubscribe = s.engine.Subscribe(s.hub.publish)
		}
		close(s.attached)
	})
}

// hub fans committed events out to stream clients. publish runs on the
// engine goroutine and never blocks: a client whose buffer is full is cut
// off (it resumes with Last-Event-ID).
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch      chan bridge.Record
	cut     chan struct{}
	cutOnce sync.Once
	types   []string     // filters such as call.* ; empty: all
	agent   string       // extension; empty: all
	scope   *agentFilter // an agent key's stream: only that agent's calls and state
	tenant  string       // a tenant key's stream: only that tenant's events
	keyID   string       // the key it was opened with ("": none): checked at each heartbeat
	session string       // the panel session it was opened with, if any: checked instead
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) subscribe(sub *subscriber) {
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

func (h *hub) publish(recs []bridge.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		for _, r := range recs {
			if !sub.early(r) {
				continue
			}
			select {
			case sub.ch <- r:
			default:
				sub.cutOnce.Do(func() { close(sub.cut) })
				delete(h.subs, sub)
			}
		}
	}
}

// early is what the hub checks on the engine's goroutine: nothing that
// reads the store. An agent key's stream gets every event of its tenant
// here; its scope, then its types and agent filters, are applied in commit
// order on the stream's goroutine (late).
func (sub *subscriber) early(r bridge.Record) bool {
	if r.Type == bridge.EventWebhookTest {
		return false // addressed to one endpoint, not an event of the PBX
	}
	if sub.tenant != "" && recordTenant(r) != sub.tenant {
		return false
	}
	return sub.scope != nil || sub.filters(r)
}

// late is the rest, on the stream's goroutine, for an agent key's stream.
func (sub *subscriber) late(r bridge.Record) (bool, error) {
	if sub.scope == nil {
		return true, nil
	}
	ok, err := sub.scope.admits(r) // every event, so a conversation is known from its start
	return ok && sub.filters(r), err
}

// filters are the client's own: ?types= and ?agent=.
func (sub *subscriber) filters(r bridge.Record) bool {
	if len(sub.types) > 0 && !(bridge.Endpoint{Events: sub.types}).Wants(r.Type) {
		return false
	}
	return sub.agent == "" || mentionsAgent(r.Payload, sub.agent)
}

// mentionsAgent reports whether an event is about an agent: the agent it
// names (ringing, agent.state, ...), the agent who has the call, or the
// one who transferred it.
func mentionsAgent(payload []byte, ext string) bool {
	if plainExtension(ext) && !bytes.Contains(payload, []byte(`"extension":"`+ext+`"`)) {
		// encoding/json writes an extension's characters as they are:
		// an event without these bytes names no such agent. Most events a
		// stream sees are other agents', and this spares their decoding.
		return false
	}
	var ev struct {
		Agent *bridge.Agent `json:"agent"`
		Call  *struct {
			Agent *bridge.Agent `json:"agent"`
		} `json:"call"`
		Transfer *bridge.Transfer `json:"transfer"`
	}
	if json.Unmarshal(payload, &ev) != nil {
		return false
	}
	return ev.Agent != nil && ev.Agent.Extension == ext ||
		ev.Call != nil && ev.Call.Agent != nil && ev.Call.Agent.Extension == ext ||
		ev.Transfer != nil && ev.Transfer.From != nil && ev.Transfer.From.Extension == ext
}

// plainExtension reports whether encoding/json writes ext unescaped (an
// extension's allowed characters are).
func plainExtension(ext string) bool {
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// namedBefore reports whether an event of conversation committed before
// seq names agent: what an agent stream that opened after the call began
// asks once of it.
func (s *Server) namedBefore(agent string) func(string, int64) (bool, error) {
	return func(conversationID string, seq int64) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		recs, err := s.store.ConversationEvents(ctx, conversationID)
		if err != nil {
			return false, err
		}
		for _, r := range recs {
			if r.Seq < seq && mentionsAgent(r.Payload, agent) {
				return true, nil
			}
		}
		return false, nil
	}
}

// stream serves committed events as Server-Sent Events. Each event's id
// is its event id: a client that reconnects with Last-Event-ID gets what
// it missed from the store, then the live feed, with nothing twice.
func (s *Server) stream(c *fiber.Ctx) error {
	if err := onlyQuery(c, "types", "agent", "last_event_id"); err != nil {
		return err
	}
	sub := &subscriber{cut: make(chan struct{})}
	if t := c.Query("types"); t != "" {
		for _, f := range strings.Split(t, ",") {
			f = strings.TrimSpace(f)
			if !bridge.ValidEventFilter(f) {
				return bridge.FieldError("types", "%q matches no event type", f)
			}
			sub.types = append(sub.types, f)
		}
	}
	if a := c.Query("agent"); a != "" {
		if err := bridge.CheckExtension("agent", a); err != nil {
			return err
		}
		sub.agent = a
	}
	if p, _ := bridge.PrincipalFrom(c.UserContext()); p.Agent != "" {
		sub.scope = newAgentFilter(p.Agent, s.namedBefore(p.Agent)) // filtered here, server-side: never sent
	}
	// A tenant key's stream: filtered server-side too.
	sub.tenant = bridge.TenantOf(c.UserContext())
	if p, _ := bridge.PrincipalFrom(c.UserContext()); p.KeyID != "" {
		sub.keyID = p.KeyID
		if c.Get(fiber.HeaderAuthorization) == "" {
			sub.session = strings.Clone(c.Cookies(panelCookie)) // fiber reuses its strings
		}
	}
	after := int64(-1) // live only
	last := c.Get("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	if last != "" {
		rec, err := s.store.Event(c.UserContext(), last)
		if err == nil && !bridge.SeesTenant(c.UserContext(), recordTenant(rec)) {
			err = &bridge.Error{Code: bridge.ENOTFOUND} // another tenant's event: as unknown
		}
		if bridge.ErrorCode(err) == bridge.ENOTFOUND {
			return &bridge.Error{Code: bridge.ENOTFOUND, Field: "Last-Event-ID",
				Message: "event " + last + " is unknown (pruned, or from another ctibridge): reconnect without Last-Event-ID"}
		} else if err != nil {
			return err
		}
		after = rec.Seq
	}
	select {
	case <-s.attached:
	case <-c.UserContext().Done():
		return bridge.Errorf(bridge.EUNAVAILABLE, "the event stream is not ready yet")
	}
	release, err := s.streamCount.acquire(callerID(c), s.MaxStreams, s.MaxStreamsPerKey)
	if err != nil {
		c.Set(fiber.HeaderRetryAfter, "10")
		return err
	}
	buf := s.StreamBuffer
	if buf <= 0 {
		buf = 1024
	}
	sub.ch = make(chan bridge.Record, buf)
	// Subscribed before reading the backlog, so nothing falls between the
	// two; what both hold is skipped by position.
	s.hub.subscribe(sub)
	s.streams.Add(1)
	fc := c.Context()
	fc.HijackSetNoResponse(true)
	fc.Hijack(func(conn net.Conn) {
		defer s.streams.Done()
		defer release()
		defer s.hub.unsubscribe(sub)
		s.serveStream(conn, sub, after)
	})
	return nil
}

// Default caps on open event streams: each holds a connection, a
// goroutine pair and a buffer of StreamBuffer events.
const (
	defaultMaxStreams       = 1000
	defaultMaxStreamsPerKey = 50
)

// streamCounts counts the open event streams, in all and per caller.
type streamCounts struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

// acquire takes a stream slot for caller, or refuses with 429 when the
// total or the caller's share is used up; release gives it back (once).
// The slot is released when the hijacked connection's handler ends.
func (sc *streamCounts) acquire(caller string, maxTotal, maxPer int) (release func(), err error) {
	if maxTotal <= 0 {
		maxTotal = defaultMaxStreams
	}
	if maxPer <= 0 {
		maxPer = defaultMaxStreamsPerKey
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.per == nil {
		sc.per = map[string]int{}
	}
	who := "this API key has"
	if caller == "anonymous" {
		who = "requests without an API key have"
	}
	switch {
	case sc.per[caller] >= maxPer:
		return nil, &httpError{status: fiber.StatusTooManyRequests, code: codeTooManyStreams,
			detail: fmt.Sprintf("%s %d event streams open already, the most http.max_streams_per_key allows: close one first", who, maxPer)}
	case sc.total >= maxTotal:
		return nil, &httpError{status: fiber.StatusTooManyRequests, code: codeTooManyStreams,
			detail: fmt.Sprintf("ctibridge already serves %d event streams, the most http.max_streams allows: retry later", maxTotal)}
	}
	sc.total++
	sc.per[caller]++
	var once sync.Once
	return func() {
		once.Do(func() {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			sc.total--
			if sc.per[caller]--; sc.per[caller] <= 0 {
				delete(sc.per, caller)
			}
		})
	}, nil
}

// keyLive reports whether a stream may go on: no key (anonymous on
// loopback), a key not revoked, or a panel session still open. A store
// that cannot say keeps it.
func (s *Server) keyLive(sub *subscriber) bool {
	if sub.keyID == "" {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sub.session != "" {
		// The panel's: its session ends at sign-out, after 12 h, or with
		// its key.
		_, err := s.store.PanelSessionKey(ctx, sub.session)
		return bridge.ErrorCode(err) != bridge.EUNAUTHORIZED
	}
	ok, err := s.store.APIKeyExists(ctx, sub.keyID)
	return ok || err != nil
}

// serveStream writes the response on the hijacked connection: fasthttp's
// write timeout covers a whole response, which a stream never finishes, so
// each write gets its own deadline here instead.
func (s *Server) serveStream(conn net.Conn, sub *subscriber, after int64) {
	gone := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, conn); close(gone) }() // EOF: the client left
	// fasthttp hands the connection's buffered reader to its pool as soon
	// as this returns (its Close of a hijacked connection does nothing): the
	// reader above must be done by then, or it reads a released reader
	// (a nil dereference that killed the process in a test) or another
	// connection's bytes. Closing the socket ends its Read.
	raw := conn
	if u, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	defer func() {
		_ = raw.Close()
		<-gone
	}()
	w := bufio.NewWriter(conn)
	wt := s.StreamWriteTimeout
	if wt <= 0 {
		wt = 10 * time.Second
	}
	flush := func() error {
		_ = conn.SetWriteDeadline(time.Now().Add(wt))
		return w.Flush()
	}
	w.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"Connection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n")
	if flush() != nil {
		return
	}
	lastSeq := after
	// send writes r if the stream takes it; each event is judged once, in
	// commit order (the live feed repeats what the backlog read).
	send := func(r bridge.Record) error {
		if r.Seq <= lastSeq {
			return nil
		}
		ok, err := sub.late(r)
		if err != nil {
			return err
		}
		lastSeq = r.Seq
		if ok {
			w.WriteString("id: " + r.ID + "\nevent: " + r.Type + "\ndata: ")
			w.Write(r.Payload) // one line: JSON as encoding/json writes it
			w.WriteString("\n\n")
		}
		return nil
	}
	// storeFailed ends the stream at the event the store could not judge:
	// the client resumes from the last it got, and nothing is skipped.
	storeFailed := func(err error) {
		s.log.Warn("event stream: the store could not say whether an agent may see an event; the stream ends so the client resumes", "err", err)
		w.WriteString(": the store is unavailable: reconnect with Last-Event-ID\n\n")
		_ = flush()
	}
	if after >= 0 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-gone:
			case <-s.quit:
			case <-ctx.Done():
			}
			cancel()
		}()
		for {
			recs, err := s.store.EventsAfter(ctx, lastSeq, 500)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					s.log.Warn("event stream: backlog read failed", "err", err)
				}
				return
			}
			for _, r := range recs {
				if !sub.early(r) {
					lastSeq = r.Seq
				} else if err := send(r); err != nil {
					storeFailed(err)
					return
				}
			}
			if flush() != nil || len(recs) < 500 {
				break
			}
		}
	}
	hb := s.Heartbeat
	if hb <= 0 {
		hb = 15 * time.Second
	}
	tick := time.NewTicker(hb)
	defer tick.Stop()
	for {
		select {
		case r := <-sub.ch:
			err := send(r)
			for more := err == nil; more; { // everything already queued, one flush
				select {
				case r := <-sub.ch:
					err = send(r)
					more = err == nil
				default:
					more = false
				}
			}
			if err != nil {
				storeFailed(err)
				return
			}
		case <-tick.C:
			if !s.keyLive(sub) {
				// Revoked (perhaps by the CLI, another process): a stream is
				// one request, so it ends here; the reconnect is refused.
				w.WriteString(": the API key was revoked\n\n")
				_ = flush()
				return
			}
			w.WriteString(": ping\n\n")
		case <-sub.cut:
			// Fell behind: what is queued goes out, then the client
			// resumes from its last id.
			for len(sub.ch) > 0 {
				if err := send(<-sub.ch); err != nil {
					break
				}
			}
			w.WriteString(": too slow: reconnect with Last-Event-ID\n\n")
			_ = flush()
			return
		case <-gone:
			return
		case <-s.quit:
			return
		}
		if flush() != nil {
			return
		}
	}
}
