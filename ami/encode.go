package ami

import (
	"strconv"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// MaxActionLine is the longest action line Asterisk accepts, CRLF included:
// manager.c reads into a 1025-byte buffer and discards the whole action when
// a line does not fit.
const MaxActionLine = 1024

// EncodeAction returns the exact bytes of an action: "Name: value\r\n" per
// header, in order, then "\r\n".
//
// Values come from CRMs, so every header is checked first: a CR, LF or NUL in
// a value would let a caller smuggle extra headers (or a whole second action)
// into the stream, and is refused with a bridge.FieldError naming the header.
// Names must be [A-Za-z0-9_-]+. Parentheses are refused too: no manager
// action takes a header such as "CDR(accountcode)" — that goes in a value,
// "Variable: CDR(accountcode)=acct42" — and Asterisk splits a header line at
// its first colon, so anything looser in a name is a way to confuse it.
func EncodeAction(action *goami2.Message) ([]byte, error) {
	if err := validateAction(action); err != nil {
		return nil, err
	}
	n := 2
	for _, h := range action.Headers() {
		n += len(h.Name) + len(h.Value) + 4
	}
	b := make([]byte, 0, n)
	for _, h := range action.Headers() {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...), nil
}

func validateAction(action *goami2.Message) error {
	if action == nil || header(action, "Action") == "" {
		return bridge.FieldError("Action", "is required")
	}
	for _, h := range action.Headers() {
		if err := checkHeader(h.Name, h.Value); err != nil {
			return err
		}
	}
	return nil
}

func checkHeader(name, value string) error {
	if name == "" {
		return bridge.FieldError("header", "has an empty name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			// Quote the name: it may itself hold a line break.
			return bridge.FieldError(quoteName(name), "is not a valid header name: only letters, digits, '_' and '-' are allowed")
		}
	}
	if strings.ContainsAny(value, "\r\n") {
		return bridge.FieldError(name, "contains a line break: refused, it would inject headers into the action")
	}
	if strings.IndexByte(value, 0) >= 0 {
		return bridge.FieldError(name, "contains a NUL byte: refused")
	}
	if len(name)+len(value)+4 > MaxActionLine {
		return bridge.FieldError(name, "is too long: Asterisk reads at most %d bytes a line", MaxActionLine)
	}
	return nil
}

func quoteName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strconv.Quote(s)
}
