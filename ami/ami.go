// Package ami connects to the Asterisk Manager Interface and hands every
// frame it receives, in wire order, to a Handler.
//
// It uses goami2 only to parse a frame and as the message type. Framing,
// login, keepalive, action correlation and reconnection are done here,
// because the one rule that matters for a sidecar that must not lose events
// is: never drop a frame, and never stop reading the socket. Asterisk drops
// a manager session that does not read within its writetimeout, so the
// reader goroutine only reads, parses and queues; a separate goroutine calls
// the Handler, which may block for as long as it likes.
package ami

import (
	"errors"

	"github.com/staskobzar/goami2"
)

// AttemptHandler is a Handler that also hears of connection attempts that
// failed before a login (refused, timed out, bad credentials), so the
// link's state can say why it is down.
type AttemptHandler interface {
	AttemptFailed(err error)
}

// Handler receives what a Client reads. All calls come from one goroutine,
// in wire order.
type Handler interface {
	// Connected is called after each successful login, before any frame of
	// that session.
	Connected(info ConnInfo)
	// Message is called for every frame after the login response: events
	// and responses alike, including list items and responses that an
	// action waiter also received. m is shared: do not modify it.
	Message(m *goami2.Message)
	// Disconnected is called when a session ends (EOF, read error, ping
	// timeout, shutdown), after its last Message.
	Disconnected(err error)
}

// A BatchHandler takes the messages of a burst together. For each batch
// the Client takes off its queue it calls Add per message (more: how many
// items it still holds behind that one), then Flush at the batch's end and
// before any other call, so what the messages produce travels as one.
type BatchHandler interface {
	Handler
	Add(m *goami2.Message, more int)
	Flush()
}

// ConnInfo describes a logged-in session.
type ConnInfo struct {
	// Banner is the greeting line, e.g. "Asterisk Call Manager/11.0.0". It
	// names the AMI protocol version, not the Asterisk version (CoreSettings
	// has that).
	Banner string
	// Session counts logins since the Client started, from 1.
	Session int
	// Address is the dialled address.
	Address string
}

// Protocol errors. They end the session; the Client reconnects.
var (
	ErrNotAMI        = errors.New("ami: peer is not an Asterisk manager")
	ErrLineTooLong   = errors.New("ami: line too long")
	ErrFrameTooLarge = errors.New("ami: frame too large")
	// ErrFrameSkipped wraps ErrLineTooLong or ErrFrameTooLarge when the
	// reader discarded the rest of that frame: the stream goes on.
	ErrFrameSkipped = errors.New("ami: oversize frame skipped")
	ErrPingTimeout  = errors.New("ami: no answer to Ping")
	ErrLoginRefused = errors.New("ami: login refused")
)
