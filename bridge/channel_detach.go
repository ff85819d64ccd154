package bridge

import "strings"

// Detach gives each of the event's strings a copy of its own.
//
// An adapter's parser returns values that share the frame they were read
// from, and the call model keeps some of them for the call's whole life (a
// name, a number, a variable): each one kept a whole frame alive, a few
// kilobytes of memory a call for values of a few bytes. One copy per value,
// not one string shared by all of the event's values: the model keeps a
// value or two of most events, and a shared copy pinned all of them (1.7 KB
// a live call on Asterisk, a third of the model's heap).
func (ev *ChannelEvent) Detach() {
	if ev.Peer != nil {
		p := *ev.Peer
		ev.Peer = &p
	}
	var room [64]*string // every field of the event, its channel and peer: no allocation
	fields := ev.Channel.stringFields(ev.stringFields(room[:0]))
	if ev.Peer != nil {
		fields = ev.Peer.stringFields(fields)
	}
	for _, p := range fields {
		*p = own(*p)
	}
	ev.Channel.detachVars()
	ev.Channel.detachListed()
	if ev.Peer != nil {
		ev.Peer.detachVars()
		ev.Peer.detachListed()
	}
}

// own copies s, except the empty string (no allocation).
func own(s string) string {
	if s == "" {
		return ""
	}
	return strings.Clone(s)
}

func (ev *ChannelEvent) stringFields(fields []*string) []*string {
	return append(fields, &ev.Bridge, &ev.DialStatus, &ev.CauseText, &ev.Name, &ev.Value, &ev.Queue, &ev.Member,
		&ev.Interface, &ev.Agent, &ev.Context, &ev.Exten, &ev.File, &ev.Reason, &ev.Status, &ev.ActionID, &ev.HangupSource)
}

func (c *Channel) stringFields(fields []*string) []*string {
	return append(fields, &c.ID, &c.Name, &c.LinkedID, &c.CallerNum, &c.CallerName, &c.ConnectedNum, &c.ConnectedName,
		&c.Context, &c.Exten, &c.State, &c.Direction, &c.Endpoint, &c.Partner, &c.Home, &c.AccountCode, &c.Domain, &c.Service)
}

// detachListed gives the channel a Listed of its own with copied strings:
// copies of a channel share one.
func (c *Channel) detachListed() {
	if c.Listed == nil {
		return
	}
	l := *c.Listed
	for _, p := range []*string{&l.Queue, &l.Hold, &l.ParkSlot, &l.ParkLot, &l.Conference, &l.BridgedWith, &l.DialledBy} {
		*p = own(*p)
	}
	c.Listed = &l
}

// detachVars rebuilds Vars (the few variables the model reads) with
// copied keys and values.
func (c *Channel) detachVars() {
	if len(c.Vars) == 0 {
		return
	}
	vars := make(map[string]string, len(c.Vars))
	for k, v := range c.Vars {
		vars[own(k)] = own(v)
	}
	c.Vars = vars
}
