// Package amitest is an Asterisk manager simulator built from real Asterisk
// 22 sessions, for tests and for the demo command.
//
// The captures in captures/ are the bytes Asterisk sent (NAME.ami) and the
// bytes the client sent (NAME.sent.ami); they are embedded byte-exact. The
// Server answers the login and the common actions with those captured frames,
// the client's ActionID substituted, and replays a capture's events to its
// clients while keeping a live-channel table, so list actions such as
// CoreShowChannels reflect the calls in progress.
package amitest

import (
	"bytes"
	"embed"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/staskobzar/goami2"
)

//go:embed captures/*.ami
var captures embed.FS

// Names returns the capture names, without the ".ami" suffix, sorted. Client
// sides are named "NAME.sent".
func Names() []string {
	ents, _ := fs.ReadDir(captures, "captures")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".ami"))
	}
	slices.Sort(names)
	return names
}

// Capture returns a copy of a capture's bytes, or nil if there is no such
// capture. The ".ami" suffix is optional.
func Capture(name string) []byte {
	b, err := captures.ReadFile(path.Join("captures", strings.TrimSuffix(name, ".ami")+".ami"))
	if err != nil {
		return nil
	}
	return b
}

// Frames splits a capture with SplitFrames, or returns nil if there is no
// such capture.
func Frames(name string) []Frame {
	b := Capture(name)
	if b == nil {
		return nil
	}
	return SplitFrames(b)
}

// Frame is one frame as it was on the wire, terminator included: the banner
// line, or header lines ended by an empty line.
type Frame struct {
	Raw []byte
}

// SplitFrames splits a stream at each "\r\n\r\n", the banner line apart.
// Joining the Raw of the result gives back b exactly; trailing bytes with no
// terminator make a last, partial frame.
func SplitFrames(b []byte) []Frame {
	var frames []Frame
	if bytes.HasPrefix(b, []byte(bannerPrefix)) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			frames = append(frames, Frame{Raw: b[:i+1]})
			b = b[i+1:]
		}
	}
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n\r\n"))
		if i < 0 {
			frames = append(frames, Frame{Raw: b})
			break
		}
		frames = append(frames, Frame{Raw: b[:i+4]})
		b = b[i+4:]
	}
	return frames
}

const bannerPrefix = "Asterisk Call Manager/"

// Banner reports whether the frame is the greeting line.
func (f Frame) Banner() bool {
	return bytes.HasPrefix(f.Raw, []byte(bannerPrefix)) && !bytes.Contains(f.Raw, []byte("\r\n\r\n"))
}

// Header returns the first value of a header (names match without case),
// read straight from the bytes.
func (f Frame) Header(name string) string {
	v, _ := f.lookup(name)
	return v
}

func (f Frame) lookup(name string) (string, bool) {
	for line := range bytes.SplitSeq(f.Raw, []byte("\r\n")) {
		n, v, ok := bytes.Cut(line, []byte(": "))
		if ok && strings.EqualFold(string(n), name) {
			return string(v), true
		}
	}
	return "", false
}

// Event returns the Event header, "" for responses and the banner.
func (f Frame) Event() string { return f.Header("Event") }

// IsEvent reports whether the frame is an event. A frame is classified by
// Event first: OriginateResponse is an event with a Response header too.
func (f Frame) IsEvent() bool { return !f.Banner() && f.Event() != "" }

// IsResponse reports whether the frame answers an action.
func (f Frame) IsResponse() bool {
	_, ok := f.lookup("Response")
	return !f.Banner() && !f.IsEvent() && ok
}

// Message parses the frame with goami2.
func (f Frame) Message() (*goami2.Message, error) {
	// goami2's scanner reads past the end of an unterminated frame.
	if !bytes.HasSuffix(f.Raw, []byte("\r\n\r\n")) {
		return nil, errors.New("amitest: not a complete frame")
	}
	return goami2.Parse(string(f.Raw))
}

// EventsOf returns the frames Play sends: events only, without the login's
// FullyBooted and SuccessfulAuth, and without the items of the capture's own
// list actions (CoreShowChannel, Status... answer an action of the captured
// client, not of ours; the Server renders its own from the live table).
func EventsOf(frames []Frame) []Frame {
	lists := map[string]bool{}
	for _, f := range frames {
		if f.IsResponse() && strings.EqualFold(f.Header("EventList"), "start") {
			lists[f.Header("ActionID")] = true
		}
	}
	var out []Frame
	for _, f := range frames {
		if !f.IsEvent() {
			continue
		}
		switch f.Event() {
		case "FullyBooted", "SuccessfulAuth":
			continue
		}
		if id, ok := f.lookup("ActionID"); ok && lists[id] {
			continue
		}
		out = append(out, f)
	}
	return out
}
