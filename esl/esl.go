// Package esl connects ctibridge to FreeSWITCH's event socket (inbound
// mode): it logs in, subscribes to the events the call model needs, turns
// them into bridge.ChannelEvents for a bridge.Sink, resyncs after every
// reconnect, and runs API commands for the REST layer.
//
// The wire layer is this package's own. eslgo v1.5.1, which the module
// carries, builds the command lines (its command package) but its Conn is
// not used: it panics the process on a negative Content-Length and buffers
// any positive one, hands every event to a new goroutine (wire order lost),
// drops a message nobody takes within 5 s, pairs replies with whichever
// caller is waiting, stops reading without telling anyone on most errors and
// terminates commands with CRLF CRLF where FreeSWITCH and the captures use
// LF LF. Reading here is one goroutine per connection that only frames bytes
// and queues them, so it keeps up with FreeSWITCH whatever the Sink does.
package esl

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	Address  string // mod_event_socket's host:port, e.g. 127.0.0.1:8021
	Password string
	Format   string // event format: "plain" (default) or "json"

	DialTimeout    time.Duration // default 5s
	CommandTimeout time.Duration // login, resync, API calls, the liveness probe; default 10s
	// HeartbeatTimeout is how long the link may stay silent before it is
	// probed with "api status" (FreeSWITCH sends HEARTBEAT every 20 s); an
	// unanswered probe means the link is dead. Default 45s.
	HeartbeatTimeout time.Duration
	BackoffMin       time.Duration // first reconnect delay, default 500ms
	BackoffMax       time.Duration // reconnect delay cap, default 30s
	// ReorderWindow is how long an event that follows a gap in
	// Event-Sequence is held for the missing ones (see reorder); an event
	// that follows on goes out at once. Default 5ms; negative turns
	// reordering off.
	ReorderWindow time.Duration
	// DirectionVar is a channel variable (e.g. "cti_direction") copied into
	// Channel.Vars when an event carries it.
	DirectionVar string
	MaxFrame     int // largest frame body accepted, default 4 MiB
	Logger       *slog.Logger

	// Vars are more channel variables copied into Channel.Vars (the
	// tenant rules' variables).
	Vars []string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 5*time.Second)
	def(&c.CommandTimeout, 10*time.Second)
	def(&c.HeartbeatTimeout, 45*time.Second)
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.ReorderWindow, 5*time.Millisecond)
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.Format != "json" {
		c.Format = "plain"
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Subscription lists the events the model needs. CUSTOM comes last:
// mod_event_socket reads every word after it as a subclass.
var Subscription = []string{
	"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
	"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_CALLSTATE",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "RECORD_START", "RECORD_STOP", "BACKGROUND_JOB", "HEARTBEAT",
	"CUSTOM", "sofia::transferor", "sofia::transferee", "sofia::replaced", "callcenter::info", "valet_parking::info",
	"conference::maintenance", "fifo::info",
}

var (
	// ErrAuth means FreeSWITCH refused the password.
	ErrAuth = errors.New("esl: authentication failed (wrong event socket password)")
	// ErrLinkDead means the link stayed silent and did not answer a probe.
	ErrLinkDead = errors.New("esl: link dead")
	// ErrDisconnected means FreeSWITCH said goodbye (text/disconnect-notice).
	ErrDisconnected = errors.New("esl: disconnected by freeswitch")
)

// validArg reports whether s can go on the wire: a CR, LF or NUL would end
// the command early and start another one.
func validArg(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }
