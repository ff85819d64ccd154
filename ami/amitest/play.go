package amitest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PlayOptions tune a replay.
type PlayOptions struct {
	// Rewrite renames, consistently within the play, every Uniqueid-like id
	// (digits.digits, wherever it appears: Linkedid, DestUniqueid, a
	// recording file name...), every Local channel sequence
	// (Local/200@inbound-0000000f;1) and every bridge UUID to fresh values,
	// so one capture can be played many times as new calls. All other bytes
	// stay as captured.
	Rewrite bool
	// Pace is the delay between frames; 0 sends as fast as the clients read.
	Pace time.Duration
	// ActionIDMap renames captured ActionIDs (e.g. "orig-basic-1" in
	// OriginateResponse) to the ones a client used.
	ActionIDMap map[string]string
	// Lose, when set, names frames the PBX acts on (the live-channel table
	// takes them) but no client receives: an event the bridge never saw.
	Lose func(Frame) bool
}

// Play streams the events of a capture (see EventsOf) to the logged-in
// clients that want them, byte-exact and in order, updating the live-channel
// table as it goes. It returns when all are sent, or ErrRestarted /
// ErrServerClosed.
func (s *Server) Play(name string, opts PlayOptions) error {
	frames := Frames(name)
	if frames == nil {
		return fmt.Errorf("amitest: no capture %q", name)
	}
	return s.PlayFrames(frames, opts)
}

// PlayFrames is Play for a slice of a capture's frames, e.g. to stop at a
// given point of a call and resume later. Rewrite maps ids afresh on every
// call: to play one call in parts, Rewrite the whole capture first.
func (s *Server) PlayFrames(frames []Frame, opts PlayOptions) error {
	evs := EventsOf(frames)
	if opts.Rewrite {
		evs = s.Rewrite(evs)
	}
	s.mu.Lock()
	epoch, restarted := s.epoch, s.restarted
	s.mu.Unlock()

	// Unpaced, frames go out in chunks of about 64 KiB per write, still
	// atomically with the table updates they cause.
	chunk := 1
	if opts.Pace <= 0 {
		chunk = 128
	}
	for i := 0; i < len(evs); i += chunk {
		if i > 0 && opts.Pace > 0 {
			t := time.NewTimer(opts.Pace)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return ErrServerClosed
			case <-restarted:
				t.Stop()
				return ErrRestarted
			}
		}
		if err := s.emitFrames(evs[i:min(i+chunk, len(evs))], opts.ActionIDMap, opts.Lose, epoch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) emitFrames(evs []Frame, idmap map[string]string, lose func(Frame) bool, epoch int) error {
	s.emit.Lock()
	defer s.emit.Unlock()
	s.mu.Lock()
	closed, restarted := s.closed, s.epoch != epoch
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	} else if restarted {
		return ErrRestarted
	}
	conns := s.loggedIn()
	bufs := make([][]byte, len(conns))
	now := time.Now()
	for _, f := range evs {
		raw := f.Raw
		if len(idmap) > 0 {
			if id := f.Header("ActionID"); idmap[id] != "" {
				raw = setActionID(raw, idmap[id])
			}
		}
		if m, err := (Frame{Raw: raw}).Message(); err == nil {
			s.live.apply(m, now)
		}
		if lose != nil && lose(Frame{Raw: raw}) {
			continue
		}
		for i, c := range conns {
			if c.wants(raw) {
				bufs[i] = append(bufs[i], raw...)
			}
		}
	}
	for i, c := range conns {
		if len(bufs[i]) > 0 {
			c.write(bufs[i])
		}
	}
	s.notify()
	return nil
}

var (
	reUniqueid = regexp.MustCompile(`\d+\.\d+`)
	reIsID     = regexp.MustCompile(`^\d+\.\d+$`)
	reLocalSeq = regexp.MustCompile(`(Local/[^;\s]*-)([0-9a-f]{8})(;[12])`)
	reUUID     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

// idGen hands out fresh ids for Rewrite. Uniqueids keep Asterisk's
// "epoch.sequence" shape and their relative order; Local sequences start
// far above the captured ones so the two never collide.
type idGen struct {
	epoch int64
	seq   int
	local int
}

func newIDGen() idGen { return idGen{epoch: time.Now().Unix(), local: 0x10000} }

// Rewrite returns the frames with fresh ids, as PlayOptions.Rewrite does:
// Uniqueid-like ids, Local channel sequences and bridge UUIDs are renamed
// consistently across the frames given, everything else is kept byte for
// byte.
func (s *Server) Rewrite(evs []Frame) []Frame {
	// Uniqueids are known from the headers that carry them; a digits.digits
	// elsewhere (an IP address, a ServicelevelPerf) is left alone unless it
	// is one of them.
	ids := map[string]string{}
	var order []string
	for _, f := range evs {
		for line := range bytes.SplitSeq(f.Raw, []byte("\r\n")) {
			name, v, ok := bytes.Cut(line, []byte(": "))
			n := strings.ToLower(string(name))
			if ok && (strings.HasSuffix(n, "uniqueid") || strings.HasSuffix(n, "linkedid")) && reIsID.Match(v) {
				if _, seen := ids[string(v)]; !seen {
					ids[string(v)] = ""
					order = append(order, string(v))
				}
			}
		}
	}
	slices.SortFunc(order, func(a, b string) int {
		as, aq, _ := strings.Cut(a, ".")
		bs, bq, _ := strings.Cut(b, ".")
		if c := atoi(as) - atoi(bs); c != 0 {
			return c
		}
		return atoi(aq) - atoi(bq)
	})
	s.mu.Lock()
	for _, id := range order {
		ids[id] = fmt.Sprintf("%d.%d", s.ids.epoch, s.ids.seq)
		s.ids.seq++
	}
	s.mu.Unlock()

	locals := map[string]string{}
	uuids := map[string]string{}
	out := make([]Frame, len(evs))
	for i, f := range evs {
		raw := reUniqueid.ReplaceAllFunc(f.Raw, func(m []byte) []byte {
			if n, ok := ids[string(m)]; ok {
				return []byte(n)
			}
			return m
		})
		raw = reLocalSeq.ReplaceAllFunc(raw, func(m []byte) []byte {
			sub := reLocalSeq.FindSubmatch(m)
			n, ok := locals[string(sub[2])]
			if !ok {
				s.mu.Lock()
				n = fmt.Sprintf("%08x", s.ids.local)
				s.ids.local++
				s.mu.Unlock()
				locals[string(sub[2])] = n
			}
			return slices.Concat(sub[1], []byte(n), sub[3])
		})
		raw = reUUID.ReplaceAllFunc(raw, func(m []byte) []byte {
			n, ok := uuids[string(m)]
			if !ok {
				n = newUUID()
				uuids[string(m)] = n
			}
			return []byte(n)
		})
		out[i] = Frame{Raw: raw}
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
