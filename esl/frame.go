package esl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Content types FreeSWITCH's mod_event_socket sends.
const (
	typeAuthRequest = "auth/request"
	typeReply       = "command/reply"
	typeAPIResponse = "api/response"
	typeEventPlain  = "text/event-plain"
	typeEventJSON   = "text/event-json"
	typeDisconnect  = "text/disconnect-notice"
	typeRude        = "text/rude-rejection"
)

// DefaultMaxFrame is the largest body ReadFrame accepts unless told
// otherwise. The biggest event in the captures is under 7 KiB. An API
// reply may be replyFrames times as large: "show channels as json" takes
// about 1 KB a channel, so a switch with 5,000 channels answers in 5 MB,
// and a limit that refuses the resync's list keeps the link down.
const DefaultMaxFrame = 4 << 20

// replyFrames is how many times the frame limit an api/response may be.
const replyFrames = 16

const (
	maxHeaderLines = 64
	readerSize     = 64 << 10 // also the longest envelope header line
)

var (
	// ErrFrameTooLarge means a frame announced a body over the limit. The
	// body is never read: the stream cannot be trusted after it.
	ErrFrameTooLarge = errors.New("esl: frame body over the size limit")
	// ErrMalformedFrame means the envelope could not be parsed, so the next
	// frame boundary is unknown.
	ErrMalformedFrame = errors.New("esl: malformed frame")
)

// Header is one envelope header line.
type Header struct{ Name, Value string }

// Frame is one message of the ESL wire protocol: envelope headers, then
// Content-Length bytes of body.
type Frame struct {
	Headers []Header
	Body    []byte
}

// Get returns the value of the first header with the name (case-insensitive).
func (f *Frame) Get(name string) string {
	for _, h := range f.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ContentType returns the frame's Content-Type.
func (f *Frame) ContentType() string { return f.Get("Content-Type") }

// ReadFrame reads one frame. Envelope lines end in LF (a CR before it is
// dropped); a blank line ends the envelope. A body over max bytes is refused
// with ErrFrameTooLarge before anything is allocated for it. io.EOF is
// returned only on a clean end between frames.
func ReadFrame(r *bufio.Reader, max int) (*Frame, error) { return readFrame(r, max, nil) }

// readFrame is ReadFrame; with scratch, an event's body is read into
// *scratch (grown as needed) instead of a fresh slice. The session's reader
// parses an event into strings of its own before the next frame, so the
// 1-4 KB body of every event need not be allocated (it was the client's
// largest allocation, and so most of its collector's work).
func readFrame(r *bufio.Reader, max int, scratch *[]byte) (*Frame, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	f := &Frame{}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				return nil, fmt.Errorf("%w: header line over %d bytes", ErrMalformedFrame, r.Size())
			case err == io.EOF && len(line) == 0 && len(f.Headers) == 0:
				return nil, io.EOF
			case err == io.EOF:
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = trimEOL(line)
		if len(line) == 0 {
			if len(f.Headers) == 0 {
				continue // stray blank line between frames
			}
			break
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: header line %q", ErrMalformedFrame, truncate(string(line), 40))
		}
		value = strings.TrimLeft(value, " ")
		if strings.EqualFold(name, "Content-Length") {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: Content-Length %q", ErrMalformedFrame, truncate(value, 20))
			}
			if n > int64(max)*replyFrames {
				return nil, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, max*replyFrames)
			}
			length = int(n)
		}
		if len(f.Headers) == maxHeaderLines {
			return nil, fmt.Errorf("%w: over %d header lines", ErrMalformedFrame, maxHeaderLines)
		}
		f.Headers = append(f.Headers, Header{Name: name, Value: value})
	}
	if length > max && f.ContentType() != typeAPIResponse {
		return nil, fmt.Errorf("%w: %s of %d > %d bytes", ErrFrameTooLarge, f.ContentType(), length, max)
	}
	if length > 0 {
		if ct := f.ContentType(); scratch != nil && (ct == typeEventPlain || ct == typeEventJSON) {
			if cap(*scratch) < length {
				*scratch = make([]byte, length)
			}
			f.Body = (*scratch)[:length]
		} else {
			f.Body = make([]byte, length)
		}
		if _, err := io.ReadFull(r, f.Body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return f, nil
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
