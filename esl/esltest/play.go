package esltest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// PlayOptions shape a replay.
type PlayOptions struct {
	// Rewrite gives every uuid in the capture a fresh one (consistently
	// within the replay), stamps the server's Core-UUID and renumbers
	// Event-Sequence after the server's counter, so a capture can replay as
	// a new call. Content-Length is recomputed only for frames whose length
	// changed. Without Rewrite frames go out byte-exact.
	Rewrite bool
	// Format picks the capture: "json" plays basic-call-json for
	// basic-call(-plain). Subscribers that asked for the other format get
	// the events re-encoded.
	Format string
	// Pace scales the capture's own timing: 0 streams as fast as possible,
	// 1 in real time, 0.1 ten times faster.
	Pace float64
	// Shuffle permutes the event frames within consecutive windows of this
	// many frames (seeded by Seed), to exercise reordering.
	Shuffle int
	Seed    uint64
	// From and To select the capture's event frames [From, To) (To 0: to
	// the end), e.g. to drop a link mid-call and play the rest later.
	From, To int
}

// replaceUUIDs replaces every lowercase 8-4-4-4-12 uuid in b.
func replaceUUIDs(b []byte, f func(string) string) []byte {
	out := make([]byte, 0, len(b))
	last := 0
	for i := 0; i+36 <= len(b); i++ {
		if b[i+8] != '-' || !isUUID(b[i:i+36]) || (i > 0 && isLowerHex(b[i-1])) {
			continue
		}
		out = append(out, b[last:i]...)
		out = append(out, f(string(b[i:i+36]))...)
		last = i + 36
		i += 35
	}
	return append(out, b[last:]...)
}

func isUUID(b []byte) bool {
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Play streams a capture's event frames to the subscribed clients, keeping
// the channel table that "show channels as json" reports. It returns when
// every frame is written.
func (s *Server) Play(name string, o PlayOptions) error {
	frames, err := s.Prepare(name, o)
	if err != nil {
		return err
	}
	s.Stream(frames, o.Pace)
	return nil
}

// Stream sends frames from Prepare, paced as Play does.
func (s *Server) Stream(frames []Frame, pace float64) {
	var prev time.Duration
	for i, f := range frames {
		if pace > 0 && i > 0 && f.At > prev {
			time.Sleep(time.Duration(float64(f.At-prev) * pace))
		}
		prev = max(prev, f.At)
		s.send(f)
	}
}

// Prepare returns the frames Play would stream, rewritten and shuffled as
// asked, without sending them (benchmarks and tests feed them elsewhere).
// With Rewrite it advances the server's sequence counter.
func (s *Server) Prepare(name string, o PlayOptions) ([]Frame, error) {
	c, err := Load(captureName(name, o.Format))
	if err != nil {
		return nil, err
	}
	evs := c.Events()
	to := o.To
	if to <= 0 || to > len(evs) {
		to = len(evs)
	}
	if o.From < 0 || o.From > to {
		return nil, fmt.Errorf("esltest: bad frame range [%d,%d)", o.From, to)
	}
	evs = append([]Frame(nil), evs[o.From:to]...)
	var lo, hi uint64
	for _, f := range evs {
		if q := f.Event.Seq(); q > 0 {
			if lo == 0 || q < lo {
				lo = q
			}
			hi = max(hi, q)
		}
	}
	s.mu.Lock()
	base, core := s.seq, s.core
	if o.Rewrite {
		s.seq += hi - lo + 1
	} else {
		s.seq = max(s.seq, hi+1)
	}
	s.mu.Unlock()
	if o.Rewrite {
		ids := map[string]string{}
		for i := range evs {
			evs[i] = rewrite(evs[i], ids, core, base, lo)
		}
	}
	if o.Shuffle > 1 {
		r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
		for i := 0; i < len(evs); i += o.Shuffle {
			w := evs[i:min(i+o.Shuffle, len(evs))]
			r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
	}
	return evs, nil
}

func captureName(name, format string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(name, "-plain"), "-json")
	if base == "basic-call" {
		if format == "json" {
			return "basic-call-json"
		}
		return "basic-call-plain"
	}
	return name
}

// rewrite gives a frame fresh uuids, the server's Core-UUID and a sequence
// moved from the capture's range onto the server's counter.
func rewrite(f Frame, ids map[string]string, core string, base, lo uint64) Frame {
	const captured = "d05939fa-6a3f-441f-a32b-0dfa07943349" // the captures' Core-UUID
	body := replaceUUIDs(f.Body, func(id string) string {
		if id == captured {
			return core
		}
		n, ok := ids[id]
		if !ok {
			n = uuid.NewString()
			ids[id] = n
		}
		return n // same length: no Content-Length changes
	})
	if q := f.Event.Seq(); q > 0 {
		old, nu := strconv.FormatUint(q, 10), strconv.FormatUint(base+q-lo, 10)
		if f.ContentType == "text/event-json" {
			body = bytes.Replace(body, []byte(`"Event-Sequence":"`+old+`"`), []byte(`"Event-Sequence":"`+nu+`"`), 1)
		} else {
			body = bytes.Replace(body, []byte("\nEvent-Sequence: "+old+"\n"), []byte("\nEvent-Sequence: "+nu+"\n"), 1)
		}
	}
	out := f
	out.Body = body
	if len(body) == len(f.Body) {
		out.Raw = append(bytes.Clone(f.Raw[:len(f.Raw)-len(f.Body)]), body...)
	} else {
		out.Raw = frameBytes(f.ContentType, body)
	}
	var err error
	if f.ContentType == "text/event-json" {
		out.Event, err = parseJSON(body)
	} else {
		out.Event, err = parsePlain(body)
	}
	if err != nil {
		out.Event = f.Event
	}
	return out
}

// send applies a frame to the channel table and writes it to every client
// subscribed to it: as captured in the capture's format, re-encoded in the
// other.
func (s *Server) send(f Frame) {
	s.mu.Lock()
	s.table.apply(f.Event)
	conns := s.conns
	s.mu.Unlock()
	native := "plain"
	if f.ContentType == "text/event-json" {
		native = "json"
	}
	var other []byte
	for _, c := range conns {
		format, ok := c.wants(f.Event)
		if !ok {
			continue
		}
		if format == native {
			_ = c.write(f.Raw)
			continue
		}
		if other == nil {
			other = encode(f.Event, format)
		}
		_ = c.write(other)
	}
}

// Send writes raw bytes to every subscribed client, for malformed input.
func (s *Server) Send(raw []byte) {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		ok := c.format != "" && !c.closed
		c.mu.Unlock()
		if ok {
			_ = c.write(raw)
		}
	}
}

// SendOversize announces a body of n bytes to every subscribed client and
// sends only a little of it: a client that buffers it waits or dies.
func (s *Server) SendOversize(n int64) {
	s.Send(fmt.Appendf(nil, "Content-Length: %d\nContent-Type: text/event-plain\n\nEvent-Name: CUSTOM\n", n))
}

// DropAll closes every client connection. With midFrame, each first gets
// the first half of an event frame.
func (s *Server) DropAll(midFrame bool) {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	half := []byte("Content-Length: 2566\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_CREATE\nCore-UUID: ")
	for _, c := range conns {
		if midFrame {
			_ = c.write(half)
		}
		c.close()
	}
}

// HalfOpen freezes every current connection: the simulator keeps the
// sockets open and reads (and records) what clients send, but writes
// nothing more, not even replies, like a peer that died without a FIN.
// Connections made afterwards work normally.
func (s *Server) HalfOpen() {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.frozen = true
		c.mu.Unlock()
	}
}

// Restart simulates a FreeSWITCH restart: every connection drops, the
// channel table empties, the Core-UUID is new and Event-Sequence starts
// over.
func (s *Server) Restart() {
	s.mu.Lock()
	s.core = uuid.NewString()
	s.table = newTable()
	s.seq = 1
	s.mu.Unlock()
	s.DropAll(false)
}
