package bridge

import (
	"errors"
	"fmt"
)

// Application error codes. The HTTP server maps each to a status once.
const (
	ECONFLICT     = "conflict"     // wrong state, e.g. transferring an ended call
	EINTERNAL     = "internal"     // a bug or an unexpected failure
	EINVALID      = "invalid"      // bad input
	ENOTFOUND     = "not_found"    // unknown call, endpoint, event
	EUNAVAILABLE  = "unavailable"  // the PBX link or the store is down
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EFORBIDDEN    = "forbidden"    // credentials lack the scope
	ETIMEOUT      = "timeout"      // the PBX did not answer in time
)

// Error is an application error: a code, a message safe to show a user, and
// the field at fault when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
	// NotSent says a command never left ctibridge (the link was down
	// before it was written), so retrying it cannot do it twice.
	NotSent bool
}

// NothingSent reports whether err proves a PBX command had no effect: it
// was refused before the wire, never written, or refused by the PBX. A
// timeout or a link lost mid-command proves nothing.
func NothingSent(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case EINVALID, ECONFLICT, ENOTFOUND, ENOTIMPLEMENTED, EUNAUTHORIZED, EFORBIDDEN:
		return true
	}
	return e.NotSent
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of an *Error, or a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
