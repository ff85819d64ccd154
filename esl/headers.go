package esl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// wantedHeaders are the headers the Translator and the Client read (the
// translator's literal names, the "Other-Leg-" ones stateOf builds, and
// what Seq, Time and Name read). A FreeSWITCH event carries 100-250
// headers, most of them channel variables nobody here reads; the Client
// keeps only these (plus variable_<DirectionVar>), so an event costs a
// few small strings instead of a map of every header pinning the whole
// body for as long as the call model keeps one of them. TestWantedHeadersTranslateAlike checks that every capture
// translates the same either way: a header the translator starts reading
// must be added here.
var wantedHeaders = setOf(
	"variable_loopback_app", "variable_remote_audio_media_flow",
	"Event-Name", "Event-Subclass", "Event-Sequence", "Event-Date-Timestamp", "Event-Calling-File",
	"Content-Length", "Content-Type", "Job-UUID", "Job-Command",
	"Unique-ID", "Channel-Name", "Channel-Call-State", "Channel-Call-UUID", "Call-Direction",
	"Answer-State", "Hangup-Cause", "Application", "Application-Data", "Action",
	"Caller-Unique-ID", "Caller-Caller-ID-Number", "Caller-Caller-ID-Name", "Caller-Callee-ID-Number",
	"Caller-Callee-ID-Name", "Caller-Destination-Number", "Caller-Context", "Caller-Username",
	"Caller-Channel-Answered-Time", "Caller-Transfer-Source",
	"Other-Type", "Other-Leg-Unique-ID", "Other-Leg-Channel-Name", "Other-Leg-Caller-ID-Number",
	"Other-Leg-Caller-ID-Name", "Other-Leg-Destination-Number", "Other-Leg-Context", "Other-Leg-Direction",
	"Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "Bridge-To-UUID", "Record-File-Path",
	"CC-Action", "CC-Agent", "CC-Agent-State", "CC-Agent-Status", "CC-Agent-UUID", "CC-Cancel-Reason",
	"CC-Cause", "CC-Hangup-Cause", "CC-Member-Session-UUID", "CC-Queue",
	"Valet-Extension", "Valet-Lot-Name", "Conference-Unique-ID", "FIFO-Action", "FIFO-Name",
	"att_xfer_original_call_id", "att_xfer_destination_peer_uuid", "att_xfer_destination_call_id",
	"variable_uuid", "variable_call_uuid", "variable_originator", "variable_originating_leg_uuid",
	"variable_bridge_uuid", "variable_bridge_channel", "variable_loopback_leg",
	"variable_other_loopback_leg_uuid", "variable_dialed_user", "variable_user_name",
	"variable_sip_auth_username", "variable_sip_call_id", "variable_sip_hangup_disposition", "variable_sip_term_cause",
	"variable_hangup_cause_q850", "variable_transfer_source", "variable_transfer_to",
	"variable_transfer_destination", "variable_record_seconds", "variable_record_ms",
	"variable_cc_agent", "variable_cc_queue", "variable_cc_side", "variable_cc_member_session_uuid",
	"variable_domain_name", // a tenant rule's source (Channel.Domain)
)

// headerSet maps a header name to itself, so a kept header's key is the
// set's string, not a copy. An event has 100-250 header lines and keeps
// about 30: maybe answers "not wanted" for most of the others from the
// name's length and last byte, before the map hashes the name.
type headerSet struct {
	names map[string]string
	maybe [64]uint64 // bit last&63 of word len&63: some wanted name ends so
}

func setOf(names ...string) *headerSet {
	s := &headerSet{names: make(map[string]string, len(names))}
	for _, n := range names {
		s.add(n)
	}
	return s
}

func (s *headerSet) add(n string) {
	s.names[n] = n
	if n != "" {
		s.maybe[len(n)&63] |= 1 << (n[len(n)-1] & 63)
	}
}

// with returns a copy of s with more names.
func (s *headerSet) with(names ...string) *headerSet {
	out := setOf()
	for k := range s.names {
		out.add(k)
	}
	for _, n := range names {
		out.add(n)
	}
	return out
}

// lookup returns the set's copy of name.
func (s *headerSet) lookup(name []byte) (string, bool) {
	if len(name) == 0 || s.maybe[len(name)&63]&(1<<(name[len(name)-1]&63)) == 0 {
		return "", false
	}
	n, ok := s.names[string(name)] // no allocation: a map lookup by []byte
	return n, ok
}

// events recycles parsed events' maps: the client returns an event once
// it is translated (recycle), and a map of its size was the largest
// allocation of every event after its body.
var events = sync.Pool{New: func() any { return &Event{Headers: make(map[string]string, 32)} }}

func newEvent() *Event { return events.Get().(*Event) }

// recycle returns e for a later parse. Only the client's own events come
// back, once translated: the translator keeps no *Event, and every value
// it keeps is a string of its own.
func recycle(e *Event) {
	clear(e.Headers)
	e.Body = ""
	events.Put(e)
}

// parsePlainWanted is ParsePlain keeping only the headers in want. Each
// kept value is its own small string: the translator and the tracker keep
// some of them for a channel's life, and they must not pin the frame (or
// an event's worth of values) with them. Skipped lines are only scanned for
// their name.
func parsePlainWanted(b []byte, want *headerSet) (*Event, error) {
	e := newEvent()
	var scratch [256]byte
	rest := b
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		k := bytes.IndexByte(line, ':')
		if k <= 0 {
			return nil, fmt.Errorf("%w: header line %q", ErrMalformedEvent, truncate(string(line), 40))
		}
		name, ok := want.lookup(line[:k])
		if !ok {
			continue
		}
		v := line[k+1:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		if bytes.IndexByte(v, '%') >= 0 {
			v = appendUnescaped(scratch[:0], v)
		}
		e.Headers[name] = string(v)
	}
	if cl, ok := e.Headers["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(rest) {
			return nil, fmt.Errorf("%w: inner Content-Length %q with %d bytes left", ErrMalformedEvent, truncate(cl, 20), len(rest))
		}
		e.Body = string(rest[:n])
	}
	if e.Headers["Event-Name"] == "" {
		return nil, fmt.Errorf("%w: no Event-Name", ErrMalformedEvent)
	}
	return e, nil
}

// appendUnescaped appends v with %XX decoded, as unescape does.
func appendUnescaped(out, v []byte) []byte {
	i := bytes.IndexByte(v, '%')
	if i < 0 {
		return append(out, v...)
	}
	out = append(out, v[:i]...)
	for ; i < len(v); i++ {
		c := v[i]
		if c == '%' && i+2 < len(v) {
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// parseJSONWanted is ParseJSON keeping only the headers in want (and the
// body).
func parseJSONWanted(b []byte, want *headerSet) (*Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	e := newEvent()
	for k, v := range raw {
		name, ok := want.names[k]
		if !ok && k != "_body" {
			continue
		}
		s, err := jsonValue(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, truncate(k, 40), err)
		}
		if k == "_body" {
			e.Body = s
			continue
		}
		e.Headers[name] = strings.Clone(s)
	}
	if e.Headers["Event-Name"] == "" {
		return nil, fmt.Errorf("%w: no Event-Name", ErrMalformedEvent)
	}
	return e, nil
}
