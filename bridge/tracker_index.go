package bridge

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// The channel index: which leg and conversation each PBX channel belongs
// to, local pairs folded into one leg, legs moved between conversations.

// unbridge takes a leg out of a bridge.
func (t *Tracker) unbridge(l *leg, bridge string) {
	l.Bridges = slices.DeleteFunc(l.Bridges, func(b string) bool { return b == bridge })
	members := slices.DeleteFunc(t.bridged[bridge], func(x *leg) bool { return x == l })
	if len(members) == 0 {
		delete(t.bridged, bridge)
	} else {
		t.bridged[bridge] = members
	}
}

// dropChannel forgets one channel id of a leg.
func (t *Tracker) dropChannel(l *leg, id string) {
	if t.legs[id] == l {
		delete(t.legs, id)
	}
	if n := l.Names.get(id); n != "" && t.byName[n] == id {
		delete(t.byName, n)
	}
}

func (t *Tracker) findByName(name string) *leg {
	if id, ok := t.byName[name]; ok && name != "" {
		return t.legs[id]
	}
	return nil
}

// setName records a channel's (new) name.
func (t *Tracker) setName(l *leg, id, name string) {
	if old := l.Names.get(id); old != "" && old != name && t.byName[old] == id {
		delete(t.byName, old)
	}
	l.Names.set(id, name)
	t.byName[name] = id
}

// channel returns the leg of ch, creating leg and conversation as needed,
// and refreshes the caller data.
func (t *Tracker) channel(ch Channel, at time.Time) *leg {
	if ch.ID == "" {
		return nil
	}
	l := t.legs[ch.ID]
	if l == nil && t.isGone(ch.ID) {
		// A late event of a channel that hung up: a leg made for it now
		// would keep a call open that has no channel left.
		return nil
	}
	created := l == nil
	if created {
		l = t.newLeg(ch, at)
	}
	if ch.Name != "" && l.Names.get(ch.ID) != ch.Name {
		t.setName(l, ch.ID, ch.Name)
	}
	t.refresh(l, ch)
	if created && l.Role == roleCaller && !l.conv.Outbound {
		// An agent's phone starts the call: theirs from its first event,
		// whether it dials anyone (a conference, an IVR) or not. Checked
		// once, not on every event of every caller (a dial checks again).
		t.placedByAgent(l)
	}
	return l
}

func (t *Tracker) newLeg(ch Channel, at time.Time) *leg {
	if ch.Listed != nil && !ch.Listed.CreatedAt.IsZero() {
		at = ch.Listed.CreatedAt
	}
	// The other half of a local pair already known: same leg.
	if p := t.findByName(ch.Partner); p != nil && !p.conv.Ended {
		p.Channels = append(p.Channels, ch.ID)
		t.legs[ch.ID] = p
		return p
	}
	l := &leg{Channels: []string{ch.ID}, Ext: ch.Endpoint, Context: ch.Home, Local: ch.Local, Trunk: ch.Trunk, FollowMe: ch.FollowMe, Role: roleOther, Born: at}
	if l.Context == "" {
		l.Context = ch.Context
	}
	t.legs[ch.ID] = l

	var c *conversation
	if o := t.originates[ch.ID]; o != nil {
		c = t.convs[o.ConversationID]
		if c == nil {
			c = t.newConversation(o.ConversationID, at)
			c.Outbound, c.ActionID, c.OrigAgent = true, o.ActionID, o.Agent
			c.Call.Callee.Number = o.To
			// The agent places the call: the CRM sees it as the caller.
			c.Call.Caller = Party{Number: o.Agent, Name: t.agentName(o.Agent)}
			c.Call.Variables = o.Variables
			c.Call.Agent = &Agent{Extension: o.Agent, Name: t.agentName(o.Agent)}
			// The key's tenant placed it; the operator's: its agent's.
			c.Call.Tenant, c.TenantFixed = o.Tenant, true
			if o.Tenant == "" {
				c.Call.Tenant = t.agentTenant(o.Agent)
			}
		}
		if ch.ID == o.AgentChannelID {
			l.Role, l.Agent, l.Dialled = roleAgent, o.Agent, true
		}
	} else if ch.LinkedID != "" && ch.LinkedID != ch.ID {
		c = t.byLinked[ch.LinkedID]
		if c == nil {
			if pl := t.legs[ch.LinkedID]; pl != nil {
				c = pl.conv
			}
		}
	}
	if c == nil || c.Ended {
		c = t.newConversation(NewID("conv_"), at)
		l.Role = roleCaller
		t.settleTenant(c, ch)
	}
	if ch.LinkedID != "" {
		t.link(c, ch.LinkedID)
	}
	t.link(c, ch.ID)
	l.conv = c
	c.Legs = append(c.Legs, l)
	t.dirty[c.ID] = c
	return l
}

func (t *Tracker) link(c *conversation, id string) {
	if t.byLinked[id] == nil {
		t.byLinked[id] = c
		c.Linked = append(c.Linked, id)
	}
}

func (t *Tracker) newConversation(id string, at time.Time) *conversation {
	c := &conversation{ID: id}
	c.Call.ID = id
	c.Call.StartedAt = at.UTC()
	c.Call.State = "ringing"
	c.Call.Direction = DirectionUnknown
	t.convs[id] = c
	return c
}

// refresh copies caller data from the caller's channel into the call.
func (t *Tracker) refresh(l *leg, ch Channel) {
	c := l.conv
	if ch.Service != "" && !l.Service {
		l.Service = true
		t.dirty[c.ID] = c
	}
	if !c.TenantFixed && c.Seq == 0 && l.Role == roleCaller {
		t.settleTenant(c, ch)
	}
	if v := ch.Vars[t.cfg.DirectionVar]; t.cfg.DirectionVar != "" && v != "" {
		t.setDirectionVar(c, v)
	}
	if l.Role != roleCaller || c.Outbound || c.PartiesFixed {
		return
	}
	before := c.Call.Caller
	callee, up := c.Call.Callee.Number, c.CallerUp
	// An agent's own phone placed the call: its caller is that agent. The
	// caller id the dialplan sets on the phone's channel afterwards is the
	// one presented to the far party (FreePBX macro-outbound-callerid:
	// Set(CALLERID(all)=<the trunk's or the extension's outbound CID>)),
	// not who called.
	// (Only a phone that called as the agent: a local channel or a leg that
	// had no caller id yet takes the one it is given.)
	agentPlaced := c.OrigAgent != "" && !l.Local && placingAgent(l) == c.OrigAgent && c.Call.Caller.Number == c.OrigAgent
	if n := cleanNum(ch.CallerNum); n != "" && !agentPlaced {
		c.Call.Caller.Number = n
	}
	if n := cleanNum(ch.CallerName); n != "" && !agentPlaced {
		c.Call.Caller.Name = n
	}
	if c.Call.Callee.Number == "" && ch.Exten != "" && ch.Exten != "s" {
		c.Call.Callee.Number = ch.Exten
	} else if n := c.Call.Callee.Number; n != ch.Exten && !c.CallerUp && ch.State != "Up" && ch.Exten != "" && ch.Exten != "s" &&
		!strings.HasPrefix(ch.Exten, "*") && !t.cfg.AgentPattern.MatchString(n) && t.cfg.AgentPattern.MatchString(c.Call.Caller.Number) &&
		dialledExt(c, ch.Exten) {
		// An agent dialled a code (call return *69 / 869, redial 870)
		// that the dialplan turned into a number before anyone answered
		// (FreeSWITCH: a transfer to the number it looked up) and then
		// dialled that number: the code is no destination of its own, the
		// call goes where the dialplan sent it, and its direction is that
		// number's.
		c.Call.Callee.Number = ch.Exten
		if c.Call.Variables["direction"] == "" && c.Call.Direction == DirectionInternal && !t.cfg.AgentPattern.MatchString(ch.Exten) {
			c.Call.Direction, c.DirectionFixed = DirectionUnknown, false
		}
	}
	if !c.CallerUp && ch.State == "Up" {
		c.CallerUp = true
	}
	// Most PBX events repeat what is known: only a change is saved.
	if c.Call.Caller != before || c.Call.Callee.Number != callee || c.CallerUp != up {
		t.dirty[c.ID] = c
	}
}

func cleanNum(s string) string {
	if s == "<unknown>" || s == "unknown" {
		return ""
	}
	return s
}

func (t *Tracker) pair(a, b Channel, at time.Time) {
	la, lb := t.channel(a, at), t.channel(b, at)
	if la == nil || lb == nil || la == lb {
		return
	}
	// b was taken for a separate leg (it arrived without a known partner):
	// fold it into a.
	for _, id := range lb.Channels {
		t.legs[id] = la
		la.Channels = append(la.Channels, id)
		la.Names.set(id, lb.Names.get(id))
	}
	t.dirty[la.conv.ID] = la.conv
	lb.conv.Legs = slices.DeleteFunc(lb.conv.Legs, func(x *leg) bool { return x == lb })
	lb.Channels = nil
	// b's bridges are a's now: the folded leg must not stay a member.
	for _, b := range slices.Clone(lb.Bridges) {
		t.unbridge(lb, b)
		if !slices.Contains(la.Bridges, b) {
			la.Bridges = append(la.Bridges, b)
			t.bridged[b] = append(t.bridged[b], la)
		}
	}
	t.dirty[lb.conv.ID] = lb.conv // its saved row must not claim b's channels any more
	if len(lb.conv.Legs) == 0 && lb.conv != la.conv {
		t.fold(lb.conv, la.conv, at)
	}
}

// fold closes a conversation c whose last leg went to into. One that
// told the CRM nothing yet is discarded, its stored row deleted (it may
// have been saved, e.g. a Local ;2 adopted alone at a resync, and must not
// come back at the next start); one that did is ended.
func (t *Tracker) fold(c, into *conversation, at time.Time) {
	// The PBX's linked ids of c now name into: a later channel of the
	// same call joins it, not a new conversation.
	for _, id := range c.Linked {
		if t.byLinked[id] == c {
			delete(t.byLinked, id)
		}
		t.link(into, id)
	}
	t.dirty[into.ID] = into
	if c.Seq > 0 {
		t.end(c, at, false)
		return
	}
	c.Ended, c.Discarded = true, true
	t.dirty[c.ID] = c
}

func (t *Tracker) isAgentDevice(l *leg) bool {
	if l.Ext == "" || !t.cfg.AgentPattern.MatchString(l.Ext) {
		return false
	}
	if l.Context != "" && slices.Contains(t.cfg.InboundContexts, l.Context) {
		return false
	}
	// A carrier's leg is the far party, whatever number it dials (a short
	// or local number, a branch office's extension): the adapter knows some
	// (FreeSWITCH gateways), the admin's calls.trunk_pattern the rest.
	return !l.Trunk && (t.cfg.TrunkPattern == nil || !l.nameMatches(t.cfg.TrunkPattern))
}

// moveLeg moves a leg to another conversation; a conversation left with no
// live channel ends quietly if it never rang anyone.
func (t *Tracker) moveLeg(l *leg, to *conversation) {
	from := l.conv
	if from == to {
		return
	}
	from.Legs = slices.DeleteFunc(from.Legs, func(x *leg) bool { return x == l })
	l.conv = to
	if l.Role == roleCaller {
		l.Role = roleOther
		if t.isAgentDevice(l) {
			l.Role, l.Agent = roleAgent, l.Ext
		}
	}
	to.Legs = append(to.Legs, l)
	for _, id := range l.Channels {
		t.link(to, id)
	}
	t.dirty[to.ID] = to
	t.dirty[from.ID] = from
	if len(from.Legs) == 0 {
		t.fold(from, to, time.Now())
	}
}

// nameMatches reports whether any of the leg's channel names matches re
// (a local pair's two halves are one leg).
func (l *leg) nameMatches(re *regexp.Regexp) bool {
	for _, n := range l.Names {
		if re.MatchString(n.Name) {
			return true
		}
	}
	return false
}

func (t *Tracker) isGone(id string) bool {
	_, gone := t.gone[id]
	return gone
}

// dialledExt reports whether the call dialled a leg with extension ext.
func dialledExt(c *conversation, ext string) bool {
	for _, l := range c.Legs {
		if l.Dialled && l.Ext == ext {
			return true
		}
	}
	return false
}
