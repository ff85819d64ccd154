package esltest

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The captures are byte-exact recordings of FreeSWITCH 1.10.12 (see
// shared/fixtures/freeswitch/README.txt): NAME.esl what it sent, NAME.sent
// what the client sent, NAME.timeline.tsv how they interleave.
//
//go:embed captures
var capturesFS embed.FS

// Capture is one recorded session.
type Capture struct {
	Name   string
	Raw    []byte  // NAME.esl, byte-exact
	Sent   []byte  // NAME.sent, byte-exact
	Frames []Frame // Raw cut into frames, in wire order
}

// Frame is one frame of a capture.
type Frame struct {
	Offset      int           // in Capture.Raw
	Raw         []byte        // the frame's bytes, envelope and body
	ContentType string        // envelope Content-Type
	Body        []byte        // the Content-Length bytes after the envelope
	At          time.Duration // since the session began (from the timeline)
	Event       *Event        // parsed event, for text/event-plain and text/event-json
}

// Event is a parsed event: headers in wire order, values decoded.
type Event struct {
	Headers []Header
	Body    string
}

// Header is one event header.
type Header struct{ Name, Value string }

// Get returns the first value of a header.
func (e *Event) Get(name string) string {
	for _, h := range e.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// Name is Event-Name, or Event-Subclass for CUSTOM events.
func (e *Event) Name() string {
	if n := e.Get("Event-Name"); n != "CUSTOM" {
		return n
	}
	return e.Get("Event-Subclass")
}

// Seq is Event-Sequence.
func (e *Event) Seq() uint64 {
	n, _ := strconv.ParseUint(e.Get("Event-Sequence"), 10, 64)
	return n
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Capture{}
)

// Names lists the embedded captures.
func Names() []string {
	var names []string
	entries, _ := fs.ReadDir(capturesFS, "captures")
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".esl"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Load returns an embedded capture by name ("basic-call-plain"). Captures
// are parsed once and shared: do not modify them.
func Load(name string) (*Capture, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if c := loaded[name]; c != nil {
		return c, nil
	}
	raw, err := capturesFS.ReadFile(path.Join("captures", name+".esl"))
	if err != nil {
		return nil, fmt.Errorf("esltest: no capture %q", name)
	}
	sent, _ := capturesFS.ReadFile(path.Join("captures", name+".sent"))
	c := &Capture{Name: name, Raw: raw, Sent: sent}
	if c.Frames, err = splitFrames(raw); err != nil {
		return nil, fmt.Errorf("esltest: %s: %w", name, err)
	}
	if tl, err := capturesFS.ReadFile(path.Join("captures", name+".timeline.tsv")); err == nil {
		at := timeline(tl)
		for i := range c.Frames {
			c.Frames[i].At = at[c.Frames[i].Offset]
		}
	}
	loaded[name] = c
	return c, nil
}

// Events returns the capture's event frames in wire order.
func (c *Capture) Events() []Frame {
	var out []Frame
	for _, f := range c.Frames {
		if f.Event != nil {
			out = append(out, f)
		}
	}
	return out
}

// splitFrames cuts a byte stream into frames. It is deliberately separate
// from package esl's reader so the two can check each other.
func splitFrames(raw []byte) ([]Frame, error) {
	var out []Frame
	off := 0
	for off < len(raw) {
		end := bytes.Index(raw[off:], []byte("\n\n"))
		if end < 0 {
			return nil, fmt.Errorf("truncated envelope at %d", off)
		}
		f := Frame{Offset: off}
		length := 0
		for _, line := range strings.Split(string(raw[off:off+end]), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "Content-Type":
				f.ContentType = v
			case "Content-Length":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("bad Content-Length at %d", off)
				}
				length = n
			}
		}
		bodyAt := off + end + 2
		if bodyAt+length > len(raw) {
			return nil, fmt.Errorf("truncated body at %d", off)
		}
		f.Body = raw[bodyAt : bodyAt+length]
		f.Raw = raw[off : bodyAt+length]
		off = bodyAt + length
		var err error
		switch f.ContentType {
		case "text/event-plain":
			f.Event, err = parsePlain(f.Body)
		case "text/event-json":
			f.Event, err = parseJSON(f.Body)
		}
		if err != nil {
			return nil, fmt.Errorf("event at %d: %w", f.Offset, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func parsePlain(body []byte) (*Event, error) {
	e := &Event{}
	head, rest, _ := bytes.Cut(body, []byte("\n\n"))
	for _, line := range strings.Split(string(head), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("header line %q", line)
		}
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		e.Headers = append(e.Headers, Header{k, v})
	}
	if n, err := strconv.Atoi(e.Get("Content-Length")); err == nil && n <= len(rest) {
		e.Body = string(rest[:n])
	}
	if e.Get("Event-Name") == "" {
		return nil, errors.New("no Event-Name")
	}
	return e, nil
}

// parseJSON keeps the keys in wire order, which encoding/json's maps lose.
func parseJSON(body []byte) (*Event, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	e := &Event{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		s, _ := v.(string)
		if k == "_body" {
			e.Body = s
			continue
		}
		e.Headers = append(e.Headers, Header{k, s})
	}
	if e.Get("Event-Name") == "" {
		return nil, errors.New("no Event-Name")
	}
	return e, nil
}

// timeline maps a server-to-client byte offset to its time.
func timeline(tsv []byte) map[int]time.Duration {
	at := map[int]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(tsv))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 4 || cols[1] != "S>C" {
			continue
		}
		t, err1 := strconv.ParseFloat(cols[0], 64)
		off, err2 := strconv.Atoi(cols[2])
		if err1 == nil && err2 == nil {
			at[off] = time.Duration(t * float64(time.Second))
		}
	}
	return at
}
