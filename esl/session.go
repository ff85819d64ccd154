package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// session is one authenticated connection. Its reader goroutine frames
// bytes and nothing else: events go to an unbounded queue for the Client's
// goroutine, replies to the command waiting for them. FreeSWITCH answers
// commands strictly in order, so replies pair with a FIFO of pending calls.
type session struct {
	conn     net.Conn
	br       *bufio.Reader
	maxFrame int
	log      *slog.Logger
	q        queue
	frames   *atomic.Int64
	// parse turns an event frame into an Event on the reader's goroutine,
	// so that reading and parsing overlap the translation and the model.
	parse func(*Frame) (*Event, error)

	wmu     sync.Mutex // one command on the wire at a time, in pending order
	pmu     sync.Mutex
	pending []*call
	closed  bool

	done     chan struct{} // closed when the reader has stopped
	errOnce  sync.Once
	err      error
	lastRead atomic.Int64 // unix nanoseconds of the last frame
}

// call is a command waiting for its reply.
type call struct{ ch chan reply }

// reply is a command's answer and where it fell in the event stream.
type reply struct {
	*Frame
	pos int       // events queued before it
	at  time.Time // when it was read
}

func newSession(conn net.Conn, br *bufio.Reader, maxFrame int, log *slog.Logger, frames *atomic.Int64,
	parse func(*Frame) (*Event, error)) *session {
	s := &session{conn: conn, br: br, maxFrame: maxFrame, log: log, frames: frames, parse: parse, done: make(chan struct{})}
	s.q.wake = make(chan struct{}, 1)
	s.lastRead.Store(time.Now().UnixNano())
	return s
}

func (s *session) start(heartbeat, probeTimeout time.Duration) {
	go s.read()
	go s.watch(heartbeat, probeTimeout)
}

// fail ends the session with err (the first error wins).
func (s *session) fail(err error) {
	s.errOnce.Do(func() { s.err = err })
	s.pmu.Lock()
	s.closed = true
	s.pmu.Unlock()
	_ = s.conn.Close()
}

// Err returns why the session ended.
func (s *session) Err() error {
	<-s.done
	return s.err
}

func (s *session) read() {
	defer close(s.done)
	// Events' bodies, reused: parse copies what it keeps. It keeps the
	// largest body seen, at most maxFrame, for the session's life.
	var body []byte
	for {
		f, err := readFrame(s.br, s.maxFrame, &body)
		if err != nil {
			s.fail(err)
			return
		}
		now := time.Now()
		s.lastRead.Store(now.UnixNano())
		s.frames.Add(1)
		switch ct := f.ContentType(); ct {
		case typeEventPlain, typeEventJSON:
			ev, err := s.parse(f)
			s.q.push(qitem{ev: ev, err: err, size: len(f.Body), at: now})
		case typeReply, typeAPIResponse:
			s.pmu.Lock()
			if len(s.pending) == 0 {
				s.pmu.Unlock()
				s.log.Warn("esl: reply nobody asked for, ignored", "content_type", ct, "reply", truncate(f.Get("Reply-Text"), 60))
				continue
			}
			c := s.pending[0]
			s.pending[0] = nil
			s.pending = s.pending[1:]
			pos := s.q.count()
			s.pmu.Unlock()
			c.ch <- reply{Frame: f, pos: pos, at: now} // buffered: never blocks
		case typeDisconnect:
			s.fail(fmt.Errorf("%w: %s", ErrDisconnected, truncate(string(f.Body), 60)))
		case typeRude:
			s.fail(fmt.Errorf("esl: connection rejected: %s", truncate(string(f.Body), 80)))
		default:
			s.log.Debug("esl: frame ignored", "content_type", ct)
		}
	}
}

// send writes a command (without its terminating blank line) and queues a
// call for its reply.
func (s *session) send(cmd string, timeout time.Duration) (*call, error) {
	c := &call{ch: make(chan reply, 1)}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		return nil, errLinkDown
	}
	s.pending = append(s.pending, c)
	s.pmu.Unlock()
	// A peer that stops reading must not hold the writer forever.
	_ = s.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := s.conn.Write([]byte(cmd + "\n\n")); err != nil {
		s.fail(fmt.Errorf("esl: write: %w", err))
		return nil, errLinkDown
	}
	return c, nil
}

var errLinkDown = errors.New("esl: link down")

// wait waits for the call's reply. A call that gives up stays in the FIFO,
// so its late reply is absorbed there and never handed to another caller.
func (s *session) wait(ctx context.Context, c *call) (reply, error) {
	select {
	case r := <-c.ch:
		return r, nil
	case <-ctx.Done():
		return reply{}, ctx.Err()
	case <-s.done:
		select {
		case r := <-c.ch:
			return r, nil
		default:
			return reply{}, errLinkDown
		}
	}
}

func (s *session) roundtrip(ctx context.Context, cmd string, timeout time.Duration) (reply, error) {
	c, err := s.send(cmd, timeout)
	if err != nil {
		return reply{}, err
	}
	return s.wait(ctx, c)
}

// watch probes a silent link. The reader stops on any error, so silence
// means a half-open TCP connection or a stuck FreeSWITCH.
func (s *session) watch(silence, timeout time.Duration) {
	t := time.NewTicker(min(max(silence/4, 5*time.Millisecond), 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		quiet := time.Since(time.Unix(0, s.lastRead.Load()))
		if quiet < silence {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := s.roundtrip(ctx, "api status", timeout)
		cancel()
		if err != nil {
			s.fail(fmt.Errorf("%w: silent for %s and no answer to a probe within %s", ErrLinkDead, quiet.Round(time.Millisecond), timeout))
			return
		}
	}
}

// exit says goodbye and closes: FreeSWITCH answers +OK bye and a
// disconnect notice, then closes its end.
func (s *session) exit(timeout time.Duration) {
	if c, err := s.send("exit", timeout); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, _ = s.wait(ctx, c)
		cancel()
	}
	s.fail(context.Canceled)
	<-s.done
}

// queue is the unbounded hand-off from the reader to the Client goroutine.
type queue struct {
	mu     sync.Mutex
	items  []qitem
	pushed int // items ever pushed
	taken  int // items ever taken
	wake   chan struct{}
}

type qitem struct {
	ev   *Event
	err  error // the frame was no event
	size int   // its body's bytes
	at   time.Time
}

func (q *queue) push(it qitem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.pushed++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// count returns how many items were ever pushed. Callers hold no lock on q.
func (q *queue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushed
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// take removes the items up to the pos-th ever pushed (all when pos < 0).
func (q *queue) take(pos int) []qitem {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	if pos >= 0 {
		n = min(n, max(pos-q.taken, 0))
	}
	items := q.items[:n:n]
	q.items = q.items[n:]
	q.taken += n
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	return items
}
