package amitest

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/staskobzar/goami2"
)

// tmpl holds the captured frames the Server answers with.
type tmpl struct {
	banner         []byte
	loginOK        []byte // the login response alone
	booted         []byte // FullyBooted and SuccessfulAuth, as captured
	loginFail      []byte
	goodbye        []byte
	ping           []byte
	coreSettings   []byte
	coreStatus     []byte
	command        []byte
	events         []byte
	unknown        []byte
	originate      []byte
	redirect       []byte
	hangupOK       []byte
	noSuchChannel  []byte
	mixMonitor     []byte
	stopMixMonitor []byte

	cscResp, cscItem, cscDone Frame
	stResp, stItem, stDone    Frame
	blResp, blItem, blDone    Frame
	queueStatus               []Frame
}

var templates = sync.OnceValue(func() *tmpl {
	// byID returns the frames of a capture that carry an ActionID.
	byID := func(name, id string) []Frame {
		var out []Frame
		for _, f := range Frames(name) {
			if f.Header("ActionID") == id {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			panic("amitest: capture " + name + " has no frame with ActionID " + id)
		}
		return out
	}
	one := func(name, id string) []byte { return byID(name, id)[0].Raw }
	event := func(name, ev string) []byte {
		for _, f := range Frames(name) {
			if f.Event() == ev {
				return f.Raw
			}
		}
		panic("amitest: capture " + name + " has no " + ev)
	}
	t := &tmpl{
		banner:         Frames("login-banner")[0].Raw,
		loginOK:        one("login-banner", "login-1"),
		booted:         append(bytes.Clone(event("login-banner", "FullyBooted")), event("login-banner", "SuccessfulAuth")...),
		loginFail:      one("login-failure", "login-1"),
		goodbye:        one("login-banner", "logoff-1"),
		ping:           one("misc-actions", "ping-1"),
		coreSettings:   one("misc-actions", "coresettings-1"),
		coreStatus:     one("misc-actions", "corestatus-1"),
		command:        one("misc-actions", "cmd-1"),
		events:         one("misc-actions", "events-1"),
		unknown:        one("misc-actions", "bogus-1"),
		originate:      one("inbound-call-basic", "orig-basic-1"),
		redirect:       one("blind-transfer", "redirect-1"),
		hangupOK:       one("hangup-action", "hangup-1"),
		noSuchChannel:  one("hangup-action", "hangup-2"),
		mixMonitor:     one("mixmonitor-action", "mm-1"),
		stopMixMonitor: one("mixmonitor-action", "smm-1"),
		queueStatus:    byID("queue-status-response-only", "qs-during"),
	}
	csc := byID("coreshowchannels-response-only", "csc-1")
	t.cscResp, t.cscItem, t.cscDone = csc[0], csc[1], csc[len(csc)-1]
	st := byID("status-response-only", "status-1")
	t.stResp, t.stItem, t.stDone = st[0], st[1], st[len(st)-1]
	bl := byID("coreshowchannels", "bl-1")
	t.blResp, t.blItem, t.blDone = bl[0], bl[1], bl[len(bl)-1]
	return t
})

// Response builds a response frame for a scripted answer: "Response: ...",
// the action's ActionID, then the name/value pairs in kv.
func Response(action *goami2.Message, response string, kv ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Response: %s\r\n", response)
	if id := action.Field("ActionID"); id != "" {
		fmt.Fprintf(&b, "ActionID: %s\r\n", id)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[i], kv[i+1])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// answer is the built-in behaviour for an action of a logged-in client. It
// runs under s.emit, so a list answer and the events Play sends never
// interleave.
func (s *Server) answer(c *Conn, a *goami2.Message) {
	t := templates()
	id := a.Field("ActionID")
	reply := func(raw []byte) { c.write(setActionID(raw, id)) }
	now := time.Now()

	switch name := a.Field("Action"); strings.ToLower(name) {
	case "ping":
		reply(setHeader(t.ping, "Timestamp", fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)))
	case "logoff":
		reply(t.goodbye)
		c.Close()
	case "coresettings":
		reply(t.coreSettings)
	case "corestatus":
		reply(t.coreStatus)
	case "command":
		if strings.EqualFold(strings.TrimSpace(a.Field("Command")), "core show version") {
			reply(t.command)
			return
		}
		cmd := a.Field("Command")
		// Not captured: the text Asterisk 22 gives for an unknown command.
		c.write(Response(a, "Error", "Message", "Command output follows",
			"Output", fmt.Sprintf("No such command '%s' (type 'core show help %s' for other possible commands)", cmd, cmd)))
	case "events":
		on := !strings.EqualFold(a.Field("EventMask"), "off")
		c.mu.Lock()
		c.events = on
		c.mu.Unlock()
		if on {
			reply(t.events)
		} else {
			reply(setHeader(t.events, "Events", "Off"))
		}
	case "filter":
		s.filter(c, a)
	case "coreshowchannels":
		var b bytes.Buffer
		b.Write(setActionID(t.cscResp.Raw, id))
		chans := s.live.channels()
		for _, ch := range chans {
			b.Write(renderLike(t.cscItem, id, ch.value(now)))
		}
		b.Write(renderLike(t.cscDone, id, count(len(chans), "ListItems")))
		c.write(b.Bytes())
	case "status":
		var chans []*channel
		want := a.Field("Channel")
		for _, ch := range s.live.channels() {
			if want == "" || ch.f["Channel"] == want {
				chans = append(chans, ch)
			}
		}
		if want != "" && len(chans) == 0 {
			reply(t.noSuchChannel)
			return
		}
		var b bytes.Buffer
		b.Write(setActionID(t.stResp.Raw, id))
		for _, ch := range chans {
			b.Write(renderLike(t.stItem, id, ch.value(now)))
		}
		b.Write(renderLike(t.stDone, id, count(len(chans), "ListItems", "Items")))
		c.write(b.Bytes())
	case "bridgelist":
		var b bytes.Buffer
		b.Write(setActionID(t.blResp.Raw, id))
		bridges := s.live.bridgeList()
		for _, br := range bridges {
			b.Write(renderLike(t.blItem, id, func(n string) (string, bool) { v, ok := br.f[n]; return v, ok }))
		}
		b.Write(renderLike(t.blDone, id, count(len(bridges), "ListItems")))
		c.write(b.Bytes())
	case "queuestatus":
		// The members as the events played so far left them, in the
		// captured answer's format; before any, the captured queue as
		// captured (another queue name lists nothing).
		var b bytes.Buffer
		q := a.Field("Queue")
		if members := s.live.queueMembers(q); len(members) > 0 {
			b.Write(setActionID(t.queueStatus[0].Raw, id))
			params, member := t.queueStatus[1], t.queueStatus[2]
			items, last := 0, ""
			for _, m := range members {
				if m.f["Queue"] != last {
					last = m.f["Queue"]
					b.Write(renderLike(params, id, func(n string) (string, bool) {
						if n == "Queue" {
							return last, true
						}
						return "", false
					}))
					items++
				}
				b.Write(renderLike(member, id, func(n string) (string, bool) {
					switch n {
					case "Name":
						n = "MemberName"
					case "Location":
						n = "Interface"
					}
					v, ok := m.f[n]
					return v, ok
				}))
				items++
			}
			b.Write(renderLike(t.queueStatus[len(t.queueStatus)-1], id, count(items, "ListItems")))
			c.write(b.Bytes())
			return
		}
		if q == "" || q == "support" {
			for _, f := range t.queueStatus {
				b.Write(setActionID(f.Raw, id))
			}
		} else {
			b.Write(setActionID(t.queueStatus[0].Raw, id))
			b.Write(renderLike(t.queueStatus[len(t.queueStatus)-1], id, count(0, "ListItems")))
		}
		c.write(b.Bytes())
	case "parkedcalls":
		// The simulator keeps no parking lot: an empty list, in
		// res_parking's framing (parking_manager.c).
		var b bytes.Buffer
		b.Write(Response(a, "Success", "EventList", "start", "Message", "Parked calls will follow"))
		fmt.Fprintf(&b, "Event: ParkedCallsComplete\r\n")
		if id != "" {
			fmt.Fprintf(&b, "ActionID: %s\r\n", id)
		}
		b.WriteString("EventList: Complete\r\nListItems: 0\r\nTotal: 0\r\n\r\n")
		c.write(b.Bytes())
	case "originate":
		reply(t.originate)
	case "redirect":
		if s.findChannel(a.Field("Channel")) == nil {
			c.write(Response(a, "Error", "Message", "Channel does not exist: "+a.Field("Channel")))
			return
		}
		reply(t.redirect)
	case "hangup":
		if s.findChannel(a.Field("Channel")) == nil {
			reply(t.noSuchChannel)
			return
		}
		reply(t.hangupOK)
	case "mixmonitor":
		reply(t.mixMonitor)
	case "stopmixmonitor":
		reply(t.stopMixMonitor)
	default:
		reply(bytes.Replace(t.unknown, []byte("NoSuchAction"), []byte(name), 1))
	}
}

func count(n int, names ...string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, x := range names {
			if x == name {
				return fmt.Sprint(n), true
			}
		}
		return "", false
	}
}

func (s *Server) findChannel(name string) *channel {
	for _, ch := range s.live.chans {
		if ch.f["Channel"] == name {
			return ch
		}
	}
	return nil
}

// filter implements Action: Filter the way manager.c applies it: with no
// include filter every event passes unless an exclude ("!regex") matches;
// with include filters an event must match one of them. Go's RE2 stands in
// for POSIX regex; the filter is matched against the whole event text.
func (s *Server) filter(c *Conn, a *goami2.Message) {
	if !strings.EqualFold(a.Field("Operation"), "Add") {
		c.write(Response(a, "Error", "Message", "Unknown operation"))
		return
	}
	f := a.Field("Filter")
	exclude := strings.HasPrefix(f, "!")
	re, err := regexp.Compile(strings.TrimPrefix(f, "!"))
	if err != nil || f == "" {
		c.write(Response(a, "Error", "Message", "Filter Not Added"))
		return
	}
	c.mu.Lock()
	if exclude {
		c.exclude = append(c.exclude, re)
	} else {
		c.include = append(c.include, re)
	}
	c.mu.Unlock()
	c.write(Response(a, "Success", "Message", "Filter Added Successfully"))
}
