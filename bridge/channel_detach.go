package bridge

import "strings"

// Detach gives the event's strings one backing string of their own.
//
// An adapter's parser returns values that share the frame they were read
// from, and the call model keeps some of them for the call's whole life (a
// name, a number, a variable): each one kept a whole frame alive, a few
// kilobytes of memory a call for values of a few bytes. Detached, the
// event's values share one small string instead, whatever the model keeps.
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
	n := 0
	for _, p := range fields {
		n += len(*p)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range fields {
		b.WriteString(*p)
	}
	all := b.String()
	for _, p := range fields {
		*p, all = all[:len(*p)], all[len(*p):]
	}
	ev.Channel.detachVars()
	if ev.Peer != nil {
		ev.Peer.detachVars()
	}
}

func (ev *ChannelEvent) stringFields(fields []*string) []*string {
	return append(fields, &ev.Bridge, &ev.DialStatus, &ev.CauseText, &ev.Name, &ev.Value, &ev.Queue, &ev.Member,
		&ev.Interface, &ev.Agent, &ev.Context, &ev.Exten, &ev.File, &ev.Reason, &ev.Status, &ev.ActionID, &ev.HangupSource)
}

func (c *Channel) stringFields(fields []*string) []*string {
	return append(fields, &c.ID, &c.Name, &c.LinkedID, &c.CallerNum, &c.CallerName, &c.ConnectedNum, &c.ConnectedName,
		&c.Context, &c.Exten, &c.State, &c.Direction, &c.Endpoint, &c.Partner, &c.Home, &c.AccountCode, &c.Domain, &c.Service, &c.Queue, &c.ParkSlot, &c.ParkLot, &c.DialledBy, &c.Hold, &c.Conference, &c.BridgedWith)
}

// detachVars rebuilds Vars (the few variables the model reads) over a
// string of its own.
func (c *Channel) detachVars() {
	if len(c.Vars) == 0 {
		return
	}
	n := 0
	for k, v := range c.Vars {
		n += len(k) + len(v)
	}
	var b strings.Builder
	b.Grow(n)
	type kv struct{ k, v int }
	lens := make([]kv, 0, len(c.Vars))
	for k, v := range c.Vars {
		b.WriteString(k)
		b.WriteString(v)
		lens = append(lens, kv{len(k), len(v)})
	}
	all := b.String()
	vars := make(map[string]string, len(c.Vars))
	for _, l := range lens {
		k, v := all[:l.k], all[l.k:l.k+l.v]
		all = all[l.k+l.v:]
		vars[k] = v
	}
	c.Vars = vars
}
