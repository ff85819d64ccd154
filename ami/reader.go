package ami

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Default limits. Real frames are under 4 KiB; the limits only stop a broken
// or hostile peer from making us buffer without bound.
const (
	DefaultMaxLine  = 64 << 10
	DefaultMaxFrame = 1 << 20
)

const (
	bannerPrefix = "Asterisk Call Manager/"
	endCommand   = "--END COMMAND--"
	initialBuf   = 64 << 10
)

// Reader splits an AMI byte stream into frames: the banner line, then blocks
// of header lines ended by an empty line. It accepts CRLF and bare LF line
// ends. A "Response: Follows" frame (the Command action of Asterisk 13 and
// older) runs to "--END COMMAND--" because its raw output may hold empty
// lines, but only while Follows says a Command waits for its answer: a
// stray one would otherwise swallow every event after it.
//
// A line longer than the line limit or a frame larger than the frame limit is
// an error: memory stays bounded by the frame limit whatever the peer sends.
// The rest of that frame is read and thrown away (ErrFrameSkipped), so one
// huge variable in an event does not cost the connection.
type Reader struct {
	rd       io.Reader
	buf      []byte
	r, w     int // buf[r:w] is unread
	maxLine  int
	maxFrame int
	// Follows reports whether a "Response: Follows" frame may come now (a
	// Command is waiting). Nil: always.
	Follows func() bool
}

// NewReader returns a Reader with the given limits (0 means the default).
func NewReader(rd io.Reader, maxLine, maxFrame int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	maxLine = min(maxLine, maxFrame)
	return &Reader{rd: rd, buf: make([]byte, min(initialBuf, maxFrame+1)), maxLine: maxLine, maxFrame: maxFrame}
}

// ReadBanner reads the greeting line, e.g. "Asterisk Call Manager/11.0.0",
// and returns it without its line end.
func (r *Reader) ReadBanner() (string, error) {
	for {
		if i := bytes.IndexByte(r.buf[r.r:r.w], '\n'); i >= 0 {
			line := bytes.TrimSuffix(r.buf[r.r:r.r+i], []byte("\r"))
			r.r += i + 1
			if !bytes.HasPrefix(line, []byte(bannerPrefix)) {
				return "", fmt.Errorf("%w: greeting %q", ErrNotAMI, truncate(line, 64))
			}
			return string(line), nil
		}
		if r.w-r.r > r.maxLine {
			return "", fmt.Errorf("%w: greeting longer than %d bytes", ErrNotAMI, r.maxLine)
		}
		if err := r.fill(r.r); err != nil {
			if err == io.EOF && r.w > r.r {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// ReadFrame returns the next frame, its terminating empty line included. The
// slice is only valid until the next call. Empty lines between frames are
// skipped. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF if the stream stopped inside a frame.
func (r *Reader) ReadFrame() ([]byte, error) {
	// Offsets relative to the frame start, so they survive compaction.
	var (
		pos     int  // start of the current line
		follows bool // a "Response: Follows" frame
		ended   bool // the last line ended with --END COMMAND--
	)
	for {
		start := r.r
		i := bytes.IndexByte(r.buf[start+pos:r.w], '\n')
		if i < 0 {
			// +1: the line's CR may be here, its LF not yet (a complete
			// line is measured without its CR).
			if r.w-(start+pos) > r.maxLine+1 {
				return nil, r.skip(start, start+pos, start+pos, fmt.Errorf("%w: more than %d bytes without a line break", ErrLineTooLong, r.maxLine))
			}
			if r.w-start > r.maxFrame {
				return nil, r.skip(start, start+pos, start+pos, fmt.Errorf("%w: more than %d bytes without an empty line", ErrFrameTooLarge, r.maxFrame))
			}
			if err := r.fill(start); err != nil {
				if err == io.EOF && r.w > r.r {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			continue
		}
		nl := start + pos + i
		line := r.buf[start+pos : nl]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > r.maxLine {
			return nil, r.skip(start, start+pos, nl, fmt.Errorf("%w: %d bytes, limit %d", ErrLineTooLong, len(line), r.maxLine))
		}
		if nl+1-start > r.maxFrame {
			return nil, r.skip(start, start+pos, nl, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, r.maxFrame))
		}
		switch {
		case len(line) == 0 && pos == 0:
			r.r = nl + 1 // stray empty line between frames
			continue
		case len(line) == 0 && (!follows || ended):
			r.r = nl + 1
			return r.buf[start:r.r], nil
		case pos == 0:
			follows = string(line) == "Response: Follows" && (r.Follows == nil || r.Follows())
		}
		ended = bytes.HasSuffix(line, []byte(endCommand))
		pos = nl + 1 - start
	}
}

// fill reads more bytes, first making room by dropping what precedes keep
// or by growing the buffer up to the frame limit.
func (r *Reader) fill(keep int) error {
	if r.w == len(r.buf) {
		if keep > 0 {
			n := copy(r.buf, r.buf[keep:r.w])
			r.r -= keep
			r.w = n
		} else {
			size := min(2*len(r.buf), r.maxFrame+1)
			if size <= len(r.buf) {
				// Unreachable: callers check the limits first.
				return fmt.Errorf("%w: buffer full", ErrFrameTooLarge)
			}
			buf := make([]byte, size)
			r.w = copy(buf, r.buf[:r.w])
			r.buf = buf
		}
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// skip throws away the oversize frame that starts at start (its oversize
// line at lineStart), scanning on from from for its empty line without keeping what it reads, and returns
// why as a SkippedFrameError naming the frame's event. A read error
// before the empty line is returned instead: the stream ended.
func (r *Reader) skip(start, lineStart, from int, why error) error {
	// Only the lines before the oversize one are named from: however the
	// stream was cut, the same frame is named the same way.
	ev, variable, actionID := peekEvent(r.buf[start:lineStart])
	err := &SkippedFrameError{Event: string(ev), Variable: string(variable), ActionID: actionID, Err: why}
	// An empty line is "\n\n" or "\n\r\n": p1 and p2 are the two bytes
	// before the one scanned.
	var p1, p2 byte
	if from > start {
		p1 = r.buf[from-1]
	}
	if from-1 > start {
		p2 = r.buf[from-2]
	}
	// A frame this far over the limit is no Asterisk's: the session ends.
	budget := skipFrames * r.maxFrame
	for {
		for i := from; i < r.w; i++ {
			b := r.buf[i]
			if b == '\n' && (p1 == '\n' || p1 == '\r' && p2 == '\n') {
				r.r = i + 1
				return err
			}
			p2, p1 = p1, b
		}
		if budget -= r.w - from; budget <= 0 {
			return why
		}
		r.r, r.w, from = 0, 0, 0
		if rerr := r.fill(0); rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return rerr
		}
	}
}

// skipFrames is how many frame limits of an oversize frame are read past
// before it is taken as no frame at all.
const skipFrames = 4

// SkippedFrameError is an oversize frame the Reader threw away: Err is
// ErrLineTooLong or ErrFrameTooLarge; Event and Variable are what its lines
// before the oversize one said ("" if none).
type SkippedFrameError struct {
	Event, Variable string
	ActionID        bool // it answered an action (a list item, a response)
	Err             error
}

func (e *SkippedFrameError) Error() string {
	what := "a frame"
	if e.Event != "" {
		what = strconv.Quote(e.Event) + " event"
	}
	return fmt.Sprintf("%s: %s: %v", ErrFrameSkipped, what, e.Err)
}

// Unwrap lets errors.Is find both ErrFrameSkipped and the limit's error.
func (e *SkippedFrameError) Unwrap() []error { return []error{ErrFrameSkipped, e.Err} }

// Buffered returns how many bytes were read but not yet returned.
func (r *Reader) Buffered() int { return r.w - r.r }

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
