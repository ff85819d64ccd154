package esl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrMalformedEvent means an event body could not be parsed. The frame
// around it was fine, so the stream goes on.
var ErrMalformedEvent = errors.New("esl: malformed event")

// Event is a FreeSWITCH event with its header values decoded, whichever
// format it came in.
type Event struct {
	Headers map[string]string
	// Body is the event's own body: the inner Content-Length part of a plain
	// event, "_body" of a JSON one (BACKGROUND_JOB results).
	Body string
}

// Get returns a header value, "" when absent.
func (e *Event) Get(name string) string { return e.Headers[name] }

// Name returns Event-Name, or the subclass for CUSTOM events.
func (e *Event) Name() string {
	if n := e.Headers["Event-Name"]; n != "CUSTOM" {
		return n
	}
	return e.Headers["Event-Subclass"]
}

// Seq returns Event-Sequence, FreeSWITCH's global event counter; 0 when
// absent or unparsable.
func (e *Event) Seq() uint64 {
	n, _ := strconv.ParseUint(e.Headers["Event-Sequence"], 10, 64)
	return n
}

// Time returns Event-Date-Timestamp (microseconds since the epoch), or the
// zero time.
func (e *Event) Time() time.Time {
	us, err := strconv.ParseInt(e.Headers["Event-Date-Timestamp"], 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// ParsePlain parses a text/event-plain body: "Name: url-encoded value"
// lines, a blank line, and for some events (BACKGROUND_JOB) an inner
// Content-Length and body. Keys and undecoded values share one copy of the
// body.
func ParsePlain(b []byte) (*Event, error) {
	s := string(b)
	e := &Event{Headers: make(map[string]string, 128)}
	for len(s) > 0 {
		var line string
		if i := strings.IndexByte(s, '\n'); i < 0 {
			line, s = s, ""
		} else {
			line, s = s[:i], s[i+1:]
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		k := strings.IndexByte(line, ':')
		if k <= 0 {
			return nil, fmt.Errorf("%w: header line %q", ErrMalformedEvent, truncate(line, 40))
		}
		v := line[k+1:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		e.Headers[line[:k]] = unescape(v)
	}
	if cl, ok := e.Headers["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(s) {
			return nil, fmt.Errorf("%w: inner Content-Length %q with %d bytes left", ErrMalformedEvent, truncate(cl, 20), len(s))
		}
		e.Body = s[:n]
	}
	if e.Headers["Event-Name"] == "" {
		return nil, fmt.Errorf("%w: no Event-Name", ErrMalformedEvent)
	}
	return e, nil
}

// ParseJSON parses a text/event-json body: one flat object of strings, the
// body in "_body". Repeated keys (FreeSWITCH writes some codec headers
// twice) keep the last value; arrays become FreeSWITCH's ARRAY::a|:b form.
func ParseJSON(b []byte) (*Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	e := &Event{Headers: make(map[string]string, len(raw))}
	for k, v := range raw {
		s, err := jsonValue(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, truncate(k, 40), err)
		}
		if k == "_body" {
			e.Body = s
			continue
		}
		e.Headers[k] = s
	}
	if e.Headers["Event-Name"] == "" {
		return nil, fmt.Errorf("%w: no Event-Name", ErrMalformedEvent)
	}
	return e, nil
}

func jsonValue(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", nil
	}
	switch v[0] {
	case '"':
		// Fast path: no escapes, valid UTF-8.
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), nil
		}
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '[':
		var items []string
		if err := json.Unmarshal(v, &items); err != nil {
			return "", err
		}
		return "ARRAY::" + strings.Join(items, "|:"), nil
	case 'n':
		return "", nil
	case '{':
		return "", errors.New("nested object")
	}
	return string(v), nil // numbers and booleans as written
}

// unescape decodes %XX sequences. FreeSWITCH leaves an existing valid %XX
// alone when encoding, so a lone '%' can only be literal: it is kept, as is
// any invalid sequence, rather than failing the whole value.
func unescape(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	return string(appendUnescaped(make([]byte, 0, len(v)), []byte(v)))
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
