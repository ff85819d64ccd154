package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
	"github.com/ctibridge/ctibridge/phone"
)

// Call mixes: real captures that pop a screen, so every call has a screen
// pop and a release to time.
var mixes = map[string][]string{
	"asterisk":   {"inbound-call-basic", "queue-call", "blind-transfer", "mixmonitor", "hangup-action"},
	"freeswitch": {"basic-call-plain", "blind-transfer", "record", "callcenter", "kill"},
}

// template is one capture as the harness plays it, with what the call
// model makes of it, learnt once by running the same mapper/translator and
// tracker in-process frame by frame (calibrate).
type template struct {
	name   string
	frames [][]byte // event frames as the PBX would send them to ctibridge
	number string   // the external party's number, replaced by a per-call tag
	// trigger maps "type/sequence" of a webhook to the index of the frame
	// after which the tracker emitted it: the frame that causes it.
	trigger map[string]int
	types   []string       // webhook types, in emission order (call.* and recording.*)
	events  []bridge.Event // every event the tracker made, for backlog rows
	// cumChan[i] and cumHooks[i] count the ChannelEvents and wanted
	// webhooks due once frames [0, i) are in.
	cumChan, cumHooks []int
	liveCut           int // frames [0, liveCut) leave the call answered and live
	bytes             int
}

// call is one prepared call: fresh ids, a unique tag, and when each frame
// went out.
type call struct {
	tpl    *template
	tag    string
	frames [][]byte // until finalize joins them into raw
	// skips[i] is how many sequence numbers the switch used between frame
	// i-1 and frame i on events ctibridge does not subscribe to (or that
	// were never fired): finalize leaves those gaps, as FreeSWITCH does.
	skips []uint64
	raw   []byte
	ends  []int          // frame end offsets in raw
	sent  []atomic.Int64 // unix nanos each frame was written, 0 before
	last  int            // frames to play (liveCut for held calls)
	// phase names the part of a scenario the call started in ("burst").
	phase string
}

func (c *call) frame(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.raw[start:c.ends[i]]
}

// wanted is the endpoints' subscription, as in the README example.
func wanted(typ string) bool {
	return strings.HasPrefix(typ, "call.") || strings.HasPrefix(typ, "recording.")
}

var reExternal = regexp.MustCompile(`(?m)^(?:CallerIDNum|Caller-Caller-ID-Number): (555\d{4})\r?$`)

// externalNumber is the capture's most frequent 555-number caller id.
func externalNumber(frames [][]byte) string {
	count := map[string]int{}
	best := ""
	for _, f := range frames {
		for _, m := range reExternal.FindAllSubmatch(f, -1) {
			n := string(m[1])
			count[n]++
			if count[n] > count[best] {
				best = n
			}
		}
	}
	return best
}

// retag replaces every occurrence of number not inside a longer digit run
// by tag, which has the same length (so ESL Content-Length stays right).
func retag(b []byte, number, tag string) []byte {
	if number == "" {
		return b
	}
	var out []byte
	last := 0
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(number))
		if j < 0 {
			break
		}
		j += i
		k := j + len(number)
		if (j == 0 || !isDigit(b[j-1])) && (k == len(b) || !isDigit(b[k])) {
			if out == nil {
				out = make([]byte, 0, len(b))
			}
			out = append(out, b[last:j]...)
			out = append(out, tag...)
			last = k
		}
		i = k
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// subscribed reports whether ctibridge's ESL subscription covers an event,
// with mod_event_socket's rule (CUSTOM needs its subclass too): the
// simulator's raw Send does not filter, FreeSWITCH does.
func subscribed(e *esltest.Event) bool {
	name := e.Get("Event-Name")
	if name == "CUSTOM" {
		return slices.Contains(esl.Subscription, e.Get("Event-Subclass"))
	}
	return name != "" && slices.Contains(esl.Subscription, name)
}

// trackerConfig mirrors cmd/ctibridge's for the config the harness writes.
func trackerConfig(pbx string) bridge.TrackerConfig {
	tc := bridge.TrackerConfig{PBX: "bench", AgentPattern: regexp.MustCompile(`^[0-9]{2,6}$`), Numbers: phone.New("US", nil)}
	if pbx == "asterisk" {
		tc.InboundContexts = []string{"inbound"}
	}
	return tc
}

// calibrate runs one rewritten copy of the capture through the adapter's
// translation and the tracker, frame by frame, and notes which frame
// makes which webhook.
func calibrate(pbx string, t *template, frames [][]byte) error {
	tr := bridge.NewTracker(trackerConfig(pbx))
	t.trigger = map[string]int{}
	t.liveCut = len(frames)
	n := 0
	var feed func(raw []byte) error
	switch pbx {
	case "asterisk":
		sink := &countingSink{t: tr}
		m := ami.NewMapper(context.Background(), sink, nil, slog.New(slog.DiscardHandler))
		feed = func(raw []byte) error {
			msg, err := ami.Parse(raw)
			if err != nil {
				return err
			}
			m.Message(msg)
			n = sink.n
			return nil
		}
	case "freeswitch":
		x := esl.NewTranslator("")
		feed = func(raw []byte) error {
			_, body, _ := bytes.Cut(raw, []byte("\n\n"))
			e, err := esl.ParsePlain(body)
			if err != nil {
				return err
			}
			for _, ce := range x.Translate(e) {
				tr.Handle(ce)
				n++
			}
			return nil
		}
	}
	answered := false
	t.cumChan, t.cumHooks = []int{0}, []int{0}
	for i, raw := range frames {
		if err := feed(raw); err != nil {
			return fmt.Errorf("%s frame %d: %w", t.name, i, err)
		}
		evs, _ := tr.Drain()
		t.events = append(t.events, evs...)
		for _, ev := range evs {
			if ev.Type == bridge.EventCallAnswered {
				answered = true
			}
			if ev.Type == bridge.EventCallEnded && t.liveCut == len(frames) {
				t.liveCut = i // stop before the release
			}
			if !wanted(ev.Type) {
				continue
			}
			k := ev.Type + "/" + strconv.FormatInt(ev.Sequence, 10)
			if _, ok := t.trigger[k]; !ok {
				t.trigger[k] = i
			}
			t.types = append(t.types, ev.Type)
		}
		t.cumChan = append(t.cumChan, n)
		t.cumHooks = append(t.cumHooks, len(t.types))
	}
	// Hold a call open from its first hangup-ish frame on, so no leg of it
	// ends; a call that was never answered is held from its release.
	if answered {
		for i, raw := range frames {
			if i < t.liveCut && isHangup(pbx, raw) {
				t.liveCut = i
				break
			}
		}
	}
	if !slices.Contains(t.types, bridge.EventCallRinging) || !slices.Contains(t.types, bridge.EventCallEnded) {
		return fmt.Errorf("%s: no screen pop or release (%v)", t.name, t.types)
	}
	return nil
}

func isHangup(pbx string, raw []byte) bool {
	if pbx == "asterisk" {
		return bytes.Contains(raw, []byte("Event: Hangup")) || bytes.Contains(raw, []byte("Event: SoftHangupRequest"))
	}
	return bytes.Contains(raw, []byte("\nEvent-Name: CHANNEL_HANGUP"))
}

type countingSink struct {
	t *bridge.Tracker
	n int
}

func (s *countingSink) LinkUp(int)                           {}
func (s *countingSink) LinkDown(error)                       {}
func (s *countingSink) Snapshot([]bridge.Channel, time.Time) {}
func (s *countingSink) ChannelEvents(evs []bridge.ChannelEvent) {
	for _, e := range evs {
		s.t.Handle(e)
	}
	s.n += len(evs)
}

// simulator is the PBX side: an amitest or esltest server, prepared calls
// and raw writes to the logged-in ctibridge.
type simulator struct {
	pbx   string
	ami   *amitest.Server
	esl   *esltest.Server
	tpls  []*template
	seq   atomic.Int64 // tag counter
	write func([]byte) error
}

func newSimulator(pbx string) (*simulator, error) {
	s := &simulator{pbx: pbx}
	switch pbx {
	case "asterisk":
		srv, err := amitest.NewServer(amitest.ServerOptions{})
		if err != nil {
			return nil, err
		}
		s.ami, s.write = srv, srv.SendRaw
	case "freeswitch":
		srv, err := esltest.NewServer(esltest.Options{})
		if err != nil {
			return nil, err
		}
		s.esl = srv
		s.write = func(b []byte) error { srv.Send(b); return nil }
	default:
		return nil, fmt.Errorf("bench: pbx must be asterisk or freeswitch, got %q", pbx)
	}
	for _, name := range mixes[pbx] {
		t := &template{name: name}
		frames, err := s.rewritten(t)
		if err != nil {
			s.close()
			return nil, err
		}
		if s.esl != nil {
			for i := range frames {
				frames[i] = renameLoopback(frames[i], 0)
			}
		}
		t.frames = frames
		t.number = externalNumber(frames)
		for _, f := range frames {
			t.bytes += len(f)
		}
		if err := calibrate(pbx, t, frames); err != nil {
			s.close()
			return nil, err
		}
		s.tpls = append(s.tpls, t)
	}
	return s, nil
}

func (s *simulator) addr() string {
	if s.ami != nil {
		return s.ami.Addr()
	}
	return s.esl.Addr()
}

func (s *simulator) close() {
	if s.ami != nil {
		s.ami.Close()
	}
	if s.esl != nil {
		s.esl.Close()
	}
}

// rewritten returns the capture's frames as ctibridge would get them, with
// fresh ids (the simulator's own Rewrite / Prepare).
func (s *simulator) rewritten(t *template) ([][]byte, error) {
	var out [][]byte
	if s.ami != nil {
		frames := amitest.Frames(t.name)
		if frames == nil {
			return nil, fmt.Errorf("amitest: no capture %q", t.name)
		}
		for _, f := range s.ami.Rewrite(amitest.EventsOf(frames)) {
			out = append(out, f.Raw)
		}
		return out, nil
	}
	frames, err := s.esl.Prepare(t.name, esltest.PlayOptions{Rewrite: true})
	if err != nil {
		return nil, err
	}
	for _, f := range frames {
		if f.Event != nil && subscribed(f.Event) {
			out = append(out, f.Raw)
		}
	}
	return out, nil
}

// prepare makes n fresh calls from the mix, round robin. held calls stop
// before their first hangup.
func (s *simulator) prepare(n int, held bool) ([]*call, error) {
	calls := make([]*call, n)
	for i := range calls {
		t := s.tpls[i%len(s.tpls)]
		frames, err := s.rewritten(t)
		if err != nil {
			return nil, err
		}
		if len(frames) != len(t.frames) {
			return nil, fmt.Errorf("%s: %d frames, calibrated %d", t.name, len(frames), len(t.frames))
		}
		c := &call{tpl: t, tag: fmt.Sprintf("7%06d", s.seq.Add(1)%1_000_000), last: len(frames)}
		if held {
			c.last = t.liveCut
		}
		var prev uint64
		for _, f := range frames[:c.last] {
			var skip uint64
			if m := reSeq.Find(f); m != nil {
				q, _ := strconv.ParseUint(string(bytes.TrimSpace(m[len("\nEvent-Sequence:"):])), 10, 64)
				if prev > 0 && q > prev+1 {
					skip = q - prev - 1
				}
				prev = q
			}
			c.skips = append(c.skips, skip)
			f = retag(f, t.number, c.tag)
			if s.esl != nil {
				f = renameLoopback(f, i)
			}
			c.frames = append(c.frames, f)
		}
		c.sent = make([]atomic.Int64, c.last)
		calls[i] = c
	}
	return calls, nil
}

var reLoopback = regexp.MustCompile(`loopback/([0-9]+)(?:/[a-z]+)?-([ab])`)

// renameLoopback gives a call's loopback channels names of their own
// (loopback/1000/c17-a): FreeSWITCH reuses loopback/1000-a for every
// concurrent call through extension 1000, and the tracker pairs loopback
// halves by name, which merges concurrent calls (see the report). The
// extension stays, so agents are still recognised.
func renameLoopback(b []byte, call int) []byte {
	if !bytes.Contains(b, []byte("loopback/")) {
		return b
	}
	tag := fmt.Appendf(nil, "/c%d-", call)
	return reLoopback.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := reLoopback.FindSubmatch(m)
		return slices.Concat([]byte("loopback/"), sub[1], tag, sub[2])
	})
}

var reSeq = regexp.MustCompile(`\nEvent-Sequence: [0-9]+\n`)

// finalize joins each call's frames for play. For FreeSWITCH it first
// renumbers Event-Sequence in the order play will send the frames, as the
// switch numbers events when it creates them: the reorder window then sees
// what it sees live, instead of treating whole calls as late. The gaps the
// capture had between subscribed events stay (skips): on a real switch the
// events ctibridge does not subscribe to take numbers too, and a gap is
// what makes the reorder buffer wait.
func finalize(pbx string, calls []*call, sch schedule) {
	if pbx == "freeswitch" {
		type ref struct {
			due  time.Duration
			c, f int
		}
		var refs []ref
		for ci, c := range calls {
			start := sch.start(ci)
			for fi := range c.frames {
				refs = append(refs, ref{start + c.offset(fi, sch), ci, fi})
			}
		}
		slices.SortFunc(refs, func(a, b ref) int {
			if a.due != b.due {
				return cmp.Compare(a.due, b.due)
			}
			if a.c != b.c {
				return a.c - b.c
			}
			return a.f - b.f
		})
		var seq uint64
		for _, r := range refs {
			c := calls[r.c]
			seq += 1 + c.skips[r.f]
			c.frames[r.f] = setSeq(c.frames[r.f], seq)
		}
	}
	for _, c := range calls {
		c.raw = c.raw[:0]
		for _, f := range c.frames {
			c.raw = append(c.raw, f...)
			c.ends = append(c.ends, len(c.raw))
		}
		c.frames = nil
	}
}

// setSeq rewrites an event-plain frame's Event-Sequence and its
// Content-Length.
func setSeq(f []byte, seq uint64) []byte {
	head, body, ok := bytes.Cut(f, []byte("\n\n"))
	if !ok {
		return f
	}
	body = reSeq.ReplaceAll(body, fmt.Appendf(nil, "\nEvent-Sequence: %d\n", seq))
	var out []byte
	for line := range strings.SplitSeq(string(head), "\n") {
		if strings.HasPrefix(line, "Content-Length:") {
			line = "Content-Length: " + strconv.Itoa(len(body))
		}
		out = append(append(out, line...), '\n')
	}
	return append(append(out, '\n'), body...)
}

// gap is the time between two frames of the call.
// offset is when frame i of the call goes out, from the call's start: the
// frames spread evenly over the schedule's duration, or, with perBurst,
// the call's frames in consecutive groups of about that many (the PBX's
// bursts) and the groups spread evenly.
func (c *call) offset(i int, sch schedule) time.Duration {
	if c.last <= 1 {
		return 0
	}
	if sch.perBurst <= 0 {
		return time.Duration(i) * (sch.dur / time.Duration(c.last-1))
	}
	bursts := max(1, int(float64(c.last)/sch.perBurst+0.5))
	if bursts == 1 {
		return 0
	}
	return time.Duration(i*bursts/c.last) * (sch.dur / time.Duration(bursts-1))
}
