package ami

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/staskobzar/goami2"
)

// Parse turns one frame, as returned by Reader.ReadFrame, into a message.
//
// goami2's scanner does the work for well-formed frames. It refuses header
// names that are not [A-Za-z0-9-]{2,}, yet Asterisk sends names such as
// "Foo(0)" or "Parent/Key" when it flattens JSON into an event, so a frame
// goami2 refuses gets a second, tolerant pass instead of being lost: one odd
// header must not cost us a Hangup. Only a frame with a line that is not
// "Name: value" is an error.
//
// A "Response: Follows" frame (Command on Asterisk 13 and older) becomes
// Response, Privilege and ActionID headers plus one Output header per output
// line, the shape Asterisk 14 and later use.
func Parse(frame []byte) (*goami2.Message, error) { return parseOwned(string(frame)) }

// parseOwned is Parse of a frame already copied into a string of its own:
// goami2 keeps parts of it, so it is not copied again.
func parseOwned(frame string) (*goami2.Message, error) {
	if strings.HasPrefix(frame, "Response: Follows\r\n") || strings.HasPrefix(frame, "Response: Follows\n") {
		return parseFollows(trimTerminator([]byte(frame)))
	}
	// goami2 stops at the first empty line and wants CRLF; it took the whole
	// frame if it returned one header per line.
	if strings.HasSuffix(frame, "\r\n\r\n") {
		m, err := parseGoami2(frame)
		if err == nil && m.Len() > 0 && m.Len() == strings.Count(frame, "\n")-1 {
			return m, nil
		}
	}
	return parseTolerant(trimTerminator([]byte(frame)))
}

// trimTerminator drops the empty line(s) that end a frame, leaving its
// header lines without their last line end.
func trimTerminator(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// parseGoami2 guards goami2.Parse, whose generated scanner indexes past the
// end of some inputs: hostile bytes must not kill the sidecar.
func parseGoami2(s string) (m *goami2.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("ami: goami2 parser panic: %v", r)
		}
	}()
	return goami2.Parse(s)
}

func parseTolerant(b []byte) (*goami2.Message, error) {
	if len(b) == 0 {
		return nil, errors.New("ami: empty frame")
	}
	m := goami2.NewMessage()
	for n := 1; len(b) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil, fmt.Errorf("ami: empty line %d inside a frame", n)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		name = bytes.TrimSpace(name)
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("ami: line %d is not a header", n)
		}
		m.AddField(string(name), string(bytes.TrimLeft(value, " ")))
	}
	return m, nil
}

// parseFollows reads Response/Privilege/ActionID/Message headers, then
// takes every line up to --END COMMAND-- as command output.
func parseFollows(b []byte) (*goami2.Message, error) {
	m := goami2.NewMessage()
	headers := true
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if headers {
			name, value, ok := bytes.Cut(line, []byte(": "))
			switch strings.ToLower(string(name)) {
			case "response", "privilege", "actionid", "message":
				if ok {
					m.AddField(string(name), string(value))
					continue
				}
			}
			headers = false
		}
		if out, ok := bytes.CutSuffix(line, []byte(endCommand)); ok {
			if len(out) > 0 {
				m.AddField("Output", string(out))
			}
			break
		}
		m.AddField("Output", string(line))
	}
	return m, nil
}

// header returns the first value of a header, matching names without case.
// Cheaper than Message.Field on long events: it compares lengths first.
func header(m *goami2.Message, name string) string {
	for _, h := range m.Headers() {
		if len(h.Name) == len(name) && strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}
