package ami

import "bytes"

// mappedEvents are the events the Mapper reads (Message and translate);
// every other event it drops. TestMappedEventsListsEveryCase keeps the two
// in step.
var mappedEvents = map[string]bool{
	"CoreShowChannel": true, "CoreShowChannelsComplete": true, "QueueMember": true,
	"Newchannel": true, "NewCallerid": true, "NewConnectedLine": true, "Newstate": true, "Newexten": true, "VarSet": true,
	"DialBegin": true, "DialEnd": true, "LocalBridge": true, "BridgeEnter": true, "BridgeLeave": true,
	"Hold": true, "MusicOnHoldStart": true, "Unhold": true, "MusicOnHoldStop": true, "HangupRequest": true, "Hangup": true,
	"ParkedCall": true, "ParkedCallSwap": true, "UnParkedCall": true, "Pickup": true, "Rename": true, "BlindTransfer": true, "AttendedTransfer": true,
	"QueueCallerJoin": true, "QueueCallerLeave": true, "QueueCallerAbandon": true, "AgentCalled": true, "AgentConnect": true,
	"MixMonitorStart": true, "MixMonitorStop": true, "OriginateResponse": true,
	"QueueMemberStatus": true, "QueueMemberAdded": true, "QueueMemberRemoved": true, "QueueMemberPause": true,
}

// WantsEvent reports whether the Mapper reads an event (for VarSet: of
// that variable). The Client asks before it parses a frame.
func (m *Mapper) WantsEvent(event, variable string) bool {
	if event == "VarSet" {
		return m.vars[variable]
	}
	return mappedEvents[event]
}

// EventWanter is a Handler that says which events it reads: the Client
// drops the others unparsed.
type EventWanter interface {
	WantsEvent(event, variable string) bool
}

// peekEvent reads a frame's Event and Variable values and whether it has
// an ActionID, without parsing it. Names match in any case, and names and
// values are trimmed as the tolerant parser trims them, so a frame it calls
// unwanted is one the parser would hand the Handler under an unwanted name
// too (FuzzPeekEvent).
func peekEvent(frame []byte) (event, variable []byte, actionID bool) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		// The length first: most of a frame's keys are none of the three,
		// and EqualFold compares them byte by byte before their lengths.
		key := bytes.TrimSpace(line[:colon]) // as the tolerant parser reads a name
		switch len(key) {
		case len("Event"):
			if event == nil && bytes.EqualFold(key, []byte("Event")) {
				event = bytes.TrimSpace(line[colon+1:])
			}
		case len("Variable"): // and len("ActionID")
			switch {
			case variable == nil && bytes.EqualFold(key, []byte("Variable")):
				variable = bytes.TrimSpace(line[colon+1:])
			case bytes.EqualFold(key, []byte("ActionID")):
				actionID = true
			}
		}
	}
	return event, variable, actionID
}

// frameRoute is what the reader does with a frame.
type frameRoute uint8

const (
	routeParse frameRoute = iota // parse now: an answer a waiter may want (an ActionID), or no Event
	routeQueue                   // an event no waiter wants: queue its bytes, the consumer parses them
	routeDrop                    // an event the Handler never reads
)

// route picks a frame's route from a peek at it (w may be nil: every
// event is read).
//
// Dropped: a call sends Asterisk's AMI user more events the model never
// reads than events it reads (1,687 of the captures' 2,740 frames): every
// VarSet of the dialplan, DeviceStateChange, Cdr, the bridges'
// create/destroy. Parsing them (every header, case-insensitive lookups)
// and waking the Handler's goroutine for them is work for nothing, and
// manager.conf's read classes cannot tell them from the events needed. A
// frame with an ActionID is never dropped: an answer to one of our
// actions, for its waiter.
//
// Parsed at once: only what a waiter may want, since only the reader hands
// answers over. Every other event goes to the consumer as bytes, so a
// burst the model is slow to take waits in little memory.
func route(w EventWanter, frame []byte) frameRoute {
	event, variable, actionID := peekEvent(frame)
	switch {
	case event == nil || actionID:
		return routeParse
	case w != nil && !w.WantsEvent(string(event), string(variable)):
		return routeDrop
	}
	return routeQueue
}
