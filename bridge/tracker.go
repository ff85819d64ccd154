package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NumberNormalizer turns a raw number into E.164, or "" when it cannot.
type NumberNormalizer interface {
	E164(raw string) string
}

// TrackerConfig tells the call model how to read a PBX's channels.
type TrackerConfig struct {
	PBX string
	// AgentPattern matches the extensions of agents' devices.
	AgentPattern *regexp.Regexp
	// InboundContexts are dialplan contexts where trunk calls arrive: a call
	// whose first channel starts there is inbound, and local channels in
	// them are never agents.
	InboundContexts []string
	// TrunkPattern matches channel names of trunks (e.g. ^PJSIP/trunk-).
	TrunkPattern *regexp.Regexp
	// DirectionVar is a channel variable the dialplan may set to inbound,
	// outbound or internal; it wins over every rule.
	DirectionVar string
	// Agents maps an extension to a display name.
	Agents  map[string]string
	Numbers NumberNormalizer
}

// Tracker turns ChannelEvents into conversations and CRM events. It is not
// safe for concurrent use: the Engine feeds it from one goroutine.
type Tracker struct {
	cfg   TrackerConfig
	convs map[string]*conversation // by conversation id
	legs  map[string]*leg          // by channel id (both halves of a local pair)
	// byName maps a live channel's name to its id (finding a local
	// channel's other half must not scan every leg).
	byName map[string]string
	// bridged lists the legs in each PBX bridge.
	bridged map[string][]*leg
	// byLinked maps a PBX linked id to the conversation that owns it.
	byLinked map[string]*conversation
	// originates maps a pre-assigned channel id (click-to-call) to its plan.
	originates map[string]*Originate
	// agentStates is each agent's last reported state per queue, so a
	// device that flaps between calls reports only real changes.
	agentStates map[string]string
	// names are agents' display names as the PBX gave them.
	names map[string]string
	// lostAt is when the PBX link went down (zero while up);
	// resyncReason is set while a snapshot releases calls.
	lostAt       time.Time
	resyncReason string
	// gone remembers recently hung-up channels (goneOrder: oldest first).
	gone      map[string]struct{}
	goneOrder []string
	released  int64
	adopted   int64
	// reportsRequests: the PBX reports hangup requests, so a queue
	// abandon without one was the queue's own timeout.
	reportsRequests bool
	dirty           map[string]*conversation // changed since the last Drain
	out             []Event
}

// Originate is a click-to-call the bridge placed itself: it knows the ids
// of the channels before the PBX announces them.
type Originate struct {
	ConversationID string
	ActionID       string
	AgentChannelID string // pre-assigned id of the agent's leg
	OtherChannelID string // pre-assigned id of the second half, when the PBX uses one
	Agent          string
	To             string
	CallerID       string
	Variables      map[string]string
	RequestedAt    time.Time
}

type legRole string

const (
	roleCaller legRole = "caller"
	roleAgent  legRole = "agent"
	roleOther  legRole = "other"
)

// leg is one logical endpoint of a call. Both halves of a local channel pair
// map to the same leg, so plumbing never counts as a separate party.
type leg struct {
	Channels []string          `json:"channels"` // live channel ids
	Names    map[string]string `json:"names"`    // channel id -> name
	Role     legRole           `json:"role"`
	Ext      string            `json:"ext,omitempty"`
	Context  string            `json:"context,omitempty"`
	Tech     string            `json:"tech,omitempty"`
	Agent    string            `json:"agent,omitempty"`
	Dialled  bool              `json:"dialled,omitempty"`
	// ByChannel: a channel dialled this leg (Dial, Queue), so its answer
	// counts when the dialler takes it (DialEnd ANSWER, AgentConnect, the
	// bridge), not at its own state change; a leg the PBX originates by
	// itself is answered at its own answer.
	ByChannel bool `json:"by_channel,omitempty"`
	// QueueRung: a queue rang this leg; the queue connects it (AgentConnect).
	QueueRung bool `json:"queue_rung,omitempty"`
	// Customer: the far party of a call an agent placed.
	Customer  bool     `json:"customer,omitempty"`
	Ringing   bool     `json:"ringing,omitempty"`
	Answered  bool     `json:"answered,omitempty"`
	Bridges   []string `json:"bridges,omitempty"`
	Held      bool     `json:"held,omitempty"`
	RecFile   string   `json:"rec_file,omitempty"`
	LastExten string   `json:"last_exten,omitempty"`
	Recording bool     `json:"recording,omitempty"`
	// Born is when the leg's first channel was seen.
	Born time.Time `json:"born,omitempty"`
	conv *conversation
}

// conversation is one customer interaction, across transfers.
type conversation struct {
	ID       string          `json:"id"`
	Seq      int64           `json:"seq"`
	Call     Call            `json:"call"`
	Legs     []*leg          `json:"legs"`
	Linked   []string        `json:"linked"`
	Rang     map[string]bool `json:"rang"` // agents popped for the current ring round
	DialFail string          `json:"dial_fail,omitempty"`
	CallerUp bool            `json:"caller_up,omitempty"`
	// Discarded: folded into another conversation before it issued an
	// event; its stored row, if any, goes.
	Discarded bool       `json:"discarded,omitempty"`
	Dialled   bool       `json:"dialled,omitempty"`
	Queued    bool       `json:"queued,omitempty"`
	QueuedAt  *time.Time `json:"queued_at,omitempty"`
	FirstDown string     `json:"first_down,omitempty"` // role of the first leg to hang up after answer (used when the PBX does not say who asked)
	// HupLeg is who hung up, from the PBX's own account (a hangup request
	// of a talking leg: caller, agent, customer, api); Refused the dialled
	// leg that refused an unanswered call; SourcesUnknown is set when a
	// leg ended without the PBX saying who asked.
	HupLeg         string `json:"hup_leg,omitempty"`
	Refused        string `json:"refused,omitempty"`
	SourcesUnknown bool   `json:"sources_unknown,omitempty"`
	// CallerCancelled: the caller hung up while an agent rang or the call
	// waited in a queue.
	CallerCancelled bool `json:"caller_cancelled,omitempty"`
	// Parked is the slot the call waits in, while parked.
	Parked *Park `json:"parked,omitempty"`
	// DirectionFixed: the direction was settled by the first event; later
	// legs (a transfer, the caller gone) must not change it.
	DirectionFixed bool         `json:"direction_fixed,omitempty"`
	Cause          *HangupCause `json:"cause,omitempty"`
	Ended          bool         `json:"ended,omitempty"`
	Outbound       bool         `json:"outbound,omitempty"` // placed by click-to-call
	// OrigAgent is the agent who placed the call (an outbound or internal
	// call from an agent's phone, or a click-to-call): the far party's
	// answer establishes it.
	OrigAgent string `json:"orig_agent,omitempty"`
	ActionID  string `json:"action_id,omitempty"`
	// Failed: call.failed was sent (a click-to-call's far party never
	// answered).
	Failed bool `json:"failed,omitempty"`
	// PendingRecs are recordings whose channel ended: ready when the call
	// ends.
	PendingRecs []string `json:"pending_recs,omitempty"`
	// APIHangup: a CRM hung the call up through the API.
	APIHangup bool `json:"api_hangup,omitempty"`
}

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.AgentPattern == nil {
		cfg.AgentPattern = regexp.MustCompile(`^[0-9]{2,6}$`)
	}
	return &Tracker{cfg: cfg, convs: map[string]*conversation{}, legs: map[string]*leg{}, byName: map[string]string{}, bridged: map[string][]*leg{},
		byLinked: map[string]*conversation{}, originates: map[string]*Originate{}, agentStates: map[string]string{},
		names: map[string]string{}, gone: map[string]struct{}{}, dirty: map[string]*conversation{}}
}

// NewID returns a random, time-ordered id with a prefix.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 36)
	return prefix + ts + hex.EncodeToString(b[:])
}

// ExpectOriginate registers a click-to-call before the PBX is asked to place
// it, so its first channel joins a known conversation and pops as outbound.
func (t *Tracker) ExpectOriginate(o *Originate) {
	if o.AgentChannelID != "" {
		t.originates[o.AgentChannelID] = o
	}
	if o.OtherChannelID != "" {
		t.originates[o.OtherChannelID] = o
	}
	if o.ActionID != "" {
		t.originates["action:"+o.ActionID] = o
	}
}

// Drain returns the events produced since the last call and the
// conversations they changed.
func (t *Tracker) Drain() ([]Event, []ConversationRecord) {
	evs := t.out
	t.out = nil
	recs := make([]ConversationRecord, 0, len(t.dirty))
	for id, c := range t.dirty {
		recs = append(recs, t.record(c))
		delete(t.dirty, id)
		if c.Ended {
			t.forget(c)
		}
	}
	return evs, recs
}

// Live returns snapshots of the conversations in progress.
func (t *Tracker) Live() []Call {
	out := make([]Call, 0, len(t.convs))
	for _, c := range t.convs {
		if !c.Ended {
			out = append(out, c.snapshot())
		}
	}
	slices.SortFunc(out, func(a, b Call) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

func (t *Tracker) record(c *conversation) ConversationRecord {
	state, _ := json.Marshal(c)
	return ConversationRecord{Call: c.snapshot(), LastSeq: c.Seq, Open: !c.Ended, Discard: c.Discarded, State: state, UpdatedAt: time.Now()}
}

// Restore adopts conversations saved before a restart.
func (t *Tracker) Restore(recs []ConversationRecord) {
	var cs []*conversation
	for _, r := range recs {
		var c conversation
		if err := json.Unmarshal(r.State, &c); err != nil || c.ID == "" {
			continue
		}
		cs = append(cs, &c)
	}
	// A process killed between folding a conversation into another and
	// committing that leaves both claiming the same channels. The one that
	// never issued an event is the stale copy: discard it.
	claimed := map[string]*conversation{}
	for _, c := range cs {
		for _, l := range c.Legs {
			for _, ch := range l.Channels {
				if o := claimed[ch]; o == nil || o.Seq == 0 {
					claimed[ch] = c
				}
			}
		}
	}
	// Calls that ended while the process was down end when it last knew
	// them alive.
	for _, r := range recs {
		if r.UpdatedAt.After(t.lostAt) {
			t.lostAt = r.UpdatedAt
		}
	}
	for _, c := range cs {
		if c.Seq == 0 && len(c.Legs) > 0 && !ownsAChannel(c, claimed) {
			c.Ended, c.Discarded = true, true
			t.dirty[c.ID] = c
			continue
		}
		t.restore(c)
	}
}

func ownsAChannel(c *conversation, claimed map[string]*conversation) bool {
	for _, l := range c.Legs {
		for _, ch := range l.Channels {
			if claimed[ch] == c {
				return true
			}
		}
	}
	return false
}

func (t *Tracker) restore(c *conversation) {
	t.convs[c.ID] = c
	for _, l := range c.Legs {
		l.conv = c
		for _, ch := range l.Channels {
			t.legs[ch] = l
			if n := l.Names[ch]; n != "" {
				t.byName[n] = ch
			}
		}
		for _, b := range l.Bridges {
			t.bridged[b] = append(t.bridged[b], l)
		}
	}
	for _, id := range c.Linked {
		t.byLinked[id] = c
	}
}

// RestoreAgentStates takes the agents' states as last reported (agent.state
// records), so the resync reports only what changed meanwhile.
func (t *Tracker) RestoreAgentStates(recs []Record) {
	for _, r := range recs {
		var ev Event
		if json.Unmarshal(r.Payload, &ev) != nil || ev.Agent == nil || ev.AgentState == nil {
			continue
		}
		t.agentStates[ev.Agent.Extension+"\x00"+ev.AgentState.Queue] = ev.AgentState.State + ev.AgentState.Reason
	}
}

func (t *Tracker) forget(c *conversation) {
	delete(t.convs, c.ID)
	for _, id := range c.Linked {
		if t.byLinked[id] == c {
			delete(t.byLinked, id)
		}
	}
	for _, l := range c.Legs {
		for _, id := range l.Channels {
			t.dropChannel(l, id)
		}
		for _, b := range slices.Clone(l.Bridges) {
			t.unbridge(l, b)
		}
	}
}

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
	if n := l.Names[id]; n != "" && t.byName[n] == id {
		delete(t.byName, n)
	}
}

// Handle applies one channel event.
func (t *Tracker) Handle(ev ChannelEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	switch ev.Kind {
	case ChanNew:
		t.channel(ev.Channel, ev.At)
	case ChanUpdate, ChanDialplan:
		l := t.channel(ev.Channel, ev.At)
		if ev.Kind == ChanDialplan && l != nil {
			t.dialplan(l, ev)
		}
	case ChanLocalPair:
		if ev.Peer != nil {
			t.pair(ev.Channel, *ev.Peer, ev.At)
		}
	case ChanDial:
		t.dial(ev)
	case ChanDialEnd:
		t.dialEnd(ev)
	case ChanAgentCalled:
		t.agentCalled(ev)
	case ChanAnswer:
		// A leg a channel dialled is answered when its dialler takes it
		// (DialEnd ANSWER, AgentConnect, the bridge): a queue may still
		// play the member an announcement, a ring group may cancel it.
		if l := t.channel(ev.Channel, ev.At); l != nil && (!l.ByChannel || l.Role == roleCaller) {
			t.answered(l, ev.At)
		}
	case ChanAgentConnect:
		if ev.Peer != nil {
			if l := t.channel(*ev.Peer, ev.At); l != nil {
				t.answered(l, ev.At)
			}
		}
	case ChanBridgeEnter:
		t.bridgeEnter(ev)
	case ChanBridgeLeave:
		if l := t.legs[ev.Channel.ID]; l != nil {
			t.unbridge(l, ev.Bridge)
		}
	case ChanHold, ChanUnhold:
		t.hold(ev)
	case ChanHangupRequest:
		t.reportsRequests = true
		if l := t.legs[ev.Channel.ID]; l != nil {
			t.hangupRequest(l)
		}
	case ChanHangup:
		t.hangup(ev)
	case ChanPark:
		t.park(ev)
	case ChanUnpark:
		t.unpark(ev)
	case ChanPickup:
		t.pickup(ev)
	case ChanRename:
		if l := t.legs[ev.Channel.ID]; l != nil && ev.Name != "" {
			t.setName(l, ev.Channel.ID, ev.Name)
		}
	case ChanVar:
		t.variable(ev)
	case ChanTransfer:
		t.transfer(ev)
	case ChanQueueJoin:
		t.queueJoin(ev)
	case ChanQueueLeave:
		if l := t.legs[ev.Channel.ID]; l != nil && l.conv.Queued {
			l.conv.Queued = false
			t.dirty[l.conv.ID] = l.conv
		}
	case ChanQueueAbandon:
		t.queueAbandon(ev)
	case ChanRecordStart:
		t.recordStart(ev)
	case ChanRecordStop:
		if l := t.legs[ev.Channel.ID]; l != nil {
			t.recordReady(l, ev.File, ev.At)
		}
	case ChanOriginateFailed:
		t.originateFailed(ev)
	case ChanAgentState:
		t.agentState(ev)
	}
}

// parseName splits a channel name into technology, extension and context:
// Local/100@agents-00000001;1, PJSIP/100-0000001a, SIP/trunk-00000001,
// sofia/internal/100@10.0.0.1, loopback/1000/default-a.
func parseName(name string) (tech, ext, ctx string, local bool) {
	tech, rest, ok := strings.Cut(name, "/")
	if !ok {
		return "", "", "", false
	}
	switch strings.ToLower(tech) {
	case "local":
		local = true
		if i := strings.LastIndexByte(rest, '-'); i > 0 {
			rest = rest[:i]
		}
		ext, ctx, _ = strings.Cut(rest, "@")
	case "loopback":
		local = true
		rest = strings.TrimSuffix(strings.TrimSuffix(rest, "-a"), "-b")
		ext, ctx, _ = strings.Cut(rest, "/")
	case "sofia", "verto.rtc":
		if _, r, ok := strings.Cut(rest, "/"); ok { // drop the profile
			rest = r
		}
		ext, _, _ = strings.Cut(rest, "@")
	default:
		if i := strings.LastIndexByte(rest, '-'); i > 0 {
			rest = rest[:i]
		}
		ext = rest
	}
	return tech, ext, ctx, local
}

// partnerName returns the name of the other half of an Asterisk Local
// channel, unique while it lives thanks to its sequence suffix.
func partnerName(name string) string {
	switch {
	case strings.HasSuffix(name, ";1"):
		return strings.TrimSuffix(name, ";1") + ";2"
	case strings.HasSuffix(name, ";2"):
		return strings.TrimSuffix(name, ";2") + ";1"
	}
	// FreeSWITCH names every loopback through one extension alike
	// (loopback/1000-a), so concurrent calls would pair wrongly by name:
	// its halves are paired only by ChanLocalPair, from their uuids.
	return ""
}

func (t *Tracker) findByName(name string) *leg {
	if id, ok := t.byName[name]; ok && name != "" {
		return t.legs[id]
	}
	return nil
}

// setName records a channel's (new) name.
func (t *Tracker) setName(l *leg, id, name string) {
	if old := l.Names[id]; old != "" && old != name && t.byName[old] == id {
		delete(t.byName, old)
	}
	l.Names[id] = name
	t.byName[name] = id
}

// channel returns the leg of ch, creating leg and conversation as needed,
// and refreshes the caller data.
func (t *Tracker) channel(ch Channel, at time.Time) *leg {
	if ch.ID == "" {
		return nil
	}
	l := t.legs[ch.ID]
	if l == nil {
		l = t.newLeg(ch, at)
	}
	if ch.Name != "" && l.Names[ch.ID] != ch.Name {
		t.setName(l, ch.ID, ch.Name)
	}
	t.refresh(l, ch)
	return l
}

func (t *Tracker) newLeg(ch Channel, at time.Time) *leg {
	if !ch.CreatedAt.IsZero() {
		at = ch.CreatedAt
	}
	// The other half of a local pair already known: same leg.
	if p := t.findByName(partnerName(ch.Name)); p != nil && !p.conv.Ended {
		p.Channels = append(p.Channels, ch.ID)
		t.legs[ch.ID] = p
		return p
	}
	tech, ext, ctx, _ := parseName(ch.Name)
	if ch.Endpoint != "" {
		ext = ch.Endpoint
	}
	l := &leg{Names: map[string]string{}, Channels: []string{ch.ID}, Tech: tech, Ext: ext, Context: ctx, Role: roleOther, Born: at}
	if ctx == "" {
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
	c := &conversation{ID: id, Rang: map[string]bool{}}
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
	if v := ch.Vars[t.cfg.DirectionVar]; t.cfg.DirectionVar != "" && v != "" {
		t.setDirectionVar(c, v)
	}
	if l.Role != roleCaller || c.Outbound {
		return
	}
	before := c.Call.Caller
	callee, up := c.Call.Callee.Number, c.CallerUp
	if n := cleanNum(ch.CallerNum); n != "" {
		c.Call.Caller.Number = n
	}
	if n := cleanNum(ch.CallerName); n != "" {
		c.Call.Caller.Name = n
	}
	if c.Call.Callee.Number == "" && ch.Exten != "" && ch.Exten != "s" {
		c.Call.Callee.Number = ch.Exten
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
		la.Names[id] = lb.Names[id]
	}
	t.dirty[la.conv.ID] = la.conv
	lb.conv.Legs = slices.DeleteFunc(lb.conv.Legs, func(x *leg) bool { return x == lb })
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
	return true
}

func (t *Tracker) dial(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	// The PBX dialling on its own (an originate): the dialled channel is the
	// first party of the call, not an agent being rung, unless it is our
	// click-to-call.
	if ev.Channel.ID == "" {
		l := t.channel(*ev.Peer, ev.At)
		if l == nil {
			return
		}
		t.originatedToAgent(l)
		if l.Role == roleAgent && !l.Ringing && !l.Answered {
			t.ring(l, ev.At, "")
		}
		return
	}
	from, to := t.dialled(ev)
	if to == nil {
		return
	}
	to.ByChannel = true
	t.placedByAgent(from)
	if to.Role == roleOther && t.isAgentDevice(to) {
		to.Role = roleAgent
		to.Agent = to.Ext
	}
	if to.Role == roleAgent && !to.Ringing && !to.Answered {
		t.ring(to, ev.At, "")
		return
	}
	t.customerDialled(from, to, ev)
}

func (t *Tracker) agentCalled(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	from, to := t.dialled(ev)
	if to == nil {
		return
	}
	to.ByChannel, to.QueueRung = true, true
	if to.Role != roleCaller {
		to.Role = roleAgent
		if to.Agent == "" {
			to.Agent = to.Ext
			if _, ext, _, _ := parseName(ev.Interface); ext != "" {
				to.Agent = ext
			}
		}
	}
	if ev.Queue != "" {
		from.conv.Call.Queue = ev.Queue
	}
	t.learnName(to.Agent, ev.Member)
	if !to.Ringing && !to.Answered {
		t.ring(to, ev.At, ev.Queue)
	}
}

func (t *Tracker) agent(l *leg) *Agent {
	if l == nil || l.Agent == "" {
		return nil
	}
	return &Agent{Extension: l.Agent, Name: t.agentName(l.Agent)}
}

// ring pops the screen for an agent, once per agent per ring round.
func (t *Tracker) ring(l *leg, at time.Time, queue string) {
	l.Ringing = true
	c := l.conv
	if c.Rang[l.Agent] || t.agentLegAnswered(c, l.Agent) {
		return
	}
	c.Rang[l.Agent] = true
	if queue != "" {
		c.Call.Queue = queue
	}
	t.emit(c, EventCallRinging, at, func(e *Event) { e.Agent = t.agent(l) })
}

func (t *Tracker) agentLegAnswered(c *conversation, agent string) bool {
	for _, x := range c.Legs {
		if x.Agent == agent && x.Answered {
			return true
		}
	}
	return false
}

// agentStillRinging reports whether another leg of the same agent rings.
func (t *Tracker) agentStillRinging(c *conversation, l *leg) bool {
	for _, x := range c.Legs {
		if x != l && x.Agent == l.Agent && x.Ringing {
			return true
		}
	}
	return false
}

func (t *Tracker) stopRinging(l *leg, at time.Time, reason string) {
	if !l.Ringing {
		return
	}
	l.Ringing = false
	c := l.conv
	if l.Answered || t.agentStillRinging(c, l) || !c.Rang[l.Agent] {
		return
	}
	delete(c.Rang, l.Agent)
	if reason != "" {
		c.DialFail = reason
	}
	t.emit(c, EventCallRingEnded, at, func(e *Event) { e.Agent = t.agent(l) })
}

func (t *Tracker) dialEnd(ev ChannelEvent) {
	if ev.Peer == nil {
		return
	}
	to := t.legs[ev.Peer.ID]
	if to == nil {
		return
	}
	status := strings.ToUpper(ev.DialStatus)
	if status == "ANSWER" {
		// A queue connects its member itself (AgentConnect): the member
		// may still hear an announcement and hang up.
		if !to.QueueRung || to.Role == roleCaller {
			t.answered(to, ev.At)
		}
		return
	}
	if to.conv != nil && status != "" && to.Role != roleCaller {
		to.conv.DialFail = status
	}
	if to.Customer {
		t.customerFailed(to, ev.At, status)
	}
	t.stopRinging(to, ev.At, status)
}

// answered marks a leg up; an agent's answer establishes the call.
func (t *Tracker) answered(l *leg, at time.Time) {
	c := l.conv
	switch {
	case l.Role == roleCaller:
		c.CallerUp = true
		return
	case l.Role == roleOther:
		// The far party of a call an agent placed picks up: established.
		if !l.Dialled || l.Answered || c.OrigAgent == "" || c.Call.AnsweredAt != nil {
			return
		}
		l.Answered, l.Customer = true, true
		t.establishBy(c, at, &Agent{Extension: c.OrigAgent, Name: t.agentName(c.OrigAgent)}, PartyCustomer)
		return
	case l.Role != roleAgent || l.Answered:
		return
	}
	l.Ringing, l.Answered = false, true
	// Every device of this agent (a Local and the phone behind it) stops
	// ringing with this answer.
	for _, x := range c.Legs {
		if x.Agent == l.Agent {
			x.Ringing = false
		}
	}
	// Other agents' devices in a ring-all stop ringing.
	defer func() {
		for _, x := range c.Legs {
			if x != l && x.Role == roleAgent && x.Ringing && x.Agent != l.Agent {
				t.stopRinging(x, at, "ANSWERED_ELSEWHERE")
			}
		}
	}()
	if l.Agent == c.OrigAgent && c.Call.AnsweredAt == nil {
		// Click-to-call: the agent took the call; the customer's answer
		// establishes it.
		c.Call.State = "dialing"
		t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
		return
	}
	if c.Call.AnsweredAt != nil && c.Call.Agent != nil && c.Call.Agent.Extension != l.Agent && t.agentOnCall(c, c.Call.Agent.Extension) {
		// A consultation: another agent answers while the one who has the
		// call is still on it (holding the customer). The CRM hears of the
		// answer; the call stays that agent's until a transfer completes.
		t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent = t.agent(l) })
		return
	}
	t.establish(c, at, t.agent(l))
}

// agentOnCall reports whether agent still has a live, answered leg in c.
func (t *Tracker) agentOnCall(c *conversation, agent string) bool {
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Agent == agent && x.Answered && len(x.Channels) > 0 {
			return true
		}
	}
	return false
}

// dialled resolves the dialling and the dialled leg of ev and puts the
// dialled one in the dialler's conversation, whatever the PBX's linked id
// says. to is nil when there is nothing to track.
func (t *Tracker) dialled(ev ChannelEvent) (from, to *leg) {
	from = t.channel(ev.Channel, ev.At)
	to = t.legs[ev.Peer.ID]
	if to == nil {
		p := *ev.Peer
		p.LinkedID = ev.Channel.ID
		to = t.channel(p, ev.At)
	} else {
		t.refresh(to, *ev.Peer)
	}
	if from == nil || to == nil || from == to {
		return nil, nil
	}
	if to.conv != from.conv {
		t.moveLeg(to, from.conv)
	}
	to.Dialled = true
	from.conv.Dialled = true
	return from, to
}

// placedByAgent notes that an agent's own phone started the call (outbound
// or internal) when its first leg dials out: an agent's device whose caller
// id is an extension too (a trunk call landing on a look-alike channel
// carries the customer's number).
func (t *Tracker) placedByAgent(from *leg) {
	c := from.conv
	if from.Role != roleCaller || c.OrigAgent != "" || c.Outbound || !t.isAgentDevice(from) {
		return
	}
	if n := c.Call.Caller.Number; n != "" && !t.cfg.AgentPattern.MatchString(n) {
		return
	}
	c.OrigAgent = from.Ext
	if c.Call.Caller.Number == from.Ext {
		t.learnName(from.Ext, c.Call.Caller.Name)
	}
	c.Call.Agent = &Agent{Extension: from.Ext, Name: t.agentName(from.Ext)}
}

// establish marks the call talking and emits call.answered.
func (t *Tracker) establish(c *conversation, at time.Time, agent *Agent) {
	t.establishBy(c, at, agent, "")
}

// establishBy is establish naming whose answer it was (Event.Party).
func (t *Tracker) establishBy(c *conversation, at time.Time, agent *Agent, party string) {
	if c.Call.AnsweredAt == nil {
		a := at.UTC()
		c.Call.AnsweredAt = &a
		w := int64(a.Sub(c.Call.StartedAt).Seconds())
		c.Call.WaitS = &w
	}
	c.Call.Agent = agent
	c.Call.State = "talking"
	c.Queued = false
	c.Parked = nil
	t.emit(c, EventCallAnswered, at, func(e *Event) { e.Agent, e.Party = agent, party })
}

func (t *Tracker) bridgeEnter(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || ev.Bridge == "" {
		return
	}
	if !slices.Contains(l.Bridges, ev.Bridge) {
		l.Bridges = append(l.Bridges, ev.Bridge)
		t.bridged[ev.Bridge] = append(t.bridged[ev.Bridge], l)
	}
	// A leg of another conversation joining our bridge (an attended transfer
	// completing, a pickup) moves into the older conversation.
	for _, x := range t.bridged[ev.Bridge] {
		if x.conv != l.conv && !x.conv.Ended {
			older, newer := x.conv, l.conv
			if newer.Call.StartedAt.Before(older.Call.StartedAt) {
				older, newer = newer, older
			}
			mover := l
			if mover.conv != newer {
				mover = x
			}
			t.moveLeg(mover, older)
			break
		}
	}
	if l.Role != roleCaller && !l.Answered && l.Dialled {
		t.answered(l, ev.At)
	}
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

// hold follows one hold state per conversation: held when its first leg
// goes on hold, resumed when its last comes off (an Asterisk phone's hold
// raises Hold on the agent's channel and MusicOnHoldStart on the
// customer's: one hold).
func (t *Tracker) hold(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		return
	}
	c := l.conv
	on := ev.Kind == ChanHold
	// Music while queued, parked or in an IVR is not a hold: only a
	// talking call is held.
	if c.Call.AnsweredAt == nil || c.Parked != nil || l.Held == on || (on && len(l.Bridges) == 0 && l.Role != roleAgent) {
		return
	}
	was := anyHeld(c)
	l.Held = on
	t.dirty[c.ID] = c
	if anyHeld(c) == was {
		return
	}
	typ := EventCallResumed
	c.Call.State = "talking"
	if on {
		typ = EventCallHeld
		c.Call.State = "held"
	}
	t.emit(c, typ, ev.At, func(e *Event) { e.Agent = c.Call.Agent })
}

func anyHeld(c *conversation) bool {
	for _, l := range c.Legs {
		if l.Held {
			return true
		}
	}
	return false
}

// unhold clears every hold of c without an event: what ends it (a
// transfer completing, a retrieval) is the event.
func unhold(c *conversation) {
	for _, l := range c.Legs {
		l.Held = false
	}
}

func (t *Tracker) hangup(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		return
	}
	c := l.conv
	if ev.HangupSource != "" {
		t.reportsRequests = true
	}
	switch {
	case ev.HangupSource == HangupByEndpoint:
		t.hangupRequest(l)
	case ev.HangupSource == "" && !ev.Resynced && !c.Ended:
		c.SourcesUnknown = true
	}
	t.dropChannel(l, ev.Channel.ID)
	t.rememberGone(ev.Channel.ID)
	l.Channels = slices.DeleteFunc(l.Channels, func(id string) bool { return id == ev.Channel.ID })
	if c.Ended {
		return
	}
	// The first release with a real cause tells why the call ended, and who
	// ended it once it was talking.
	talking := t.talking(l)
	if c.Cause == nil && ev.Cause != 0 && (c.Call.AnsweredAt == nil || talking) {
		c.Cause = &HangupCause{Code: ev.Cause, Text: causeText(ev.Cause, ev.CauseText)}
	}
	if c.Call.AnsweredAt != nil && c.FirstDown == "" && !ev.Resynced && talking {
		c.FirstDown = t.partyOf(l)
	}
	if len(l.Channels) > 0 {
		return // the other half of a local pair is still up
	}
	if l.Role == roleAgent && l.Ringing {
		reason := "NOANSWER"
		switch ev.Cause {
		case 17:
			reason = "BUSY"
		case 0, 16, 26:
			if c.Call.AnsweredAt != nil || ev.Cause == 26 {
				reason = "ANSWERED_ELSEWHERE"
			}
		}
		t.stopRinging(l, ev.At, reason)
	}
	l.Held = false
	for _, b := range slices.Clone(l.Bridges) {
		t.unbridge(l, b)
	}
	c.Legs = slices.DeleteFunc(c.Legs, func(x *leg) bool { return x == l })
	if l.Recording {
		// The recording stops with its channel; the CRM gets it once the
		// call has ended, attached to the whole call.
		l.Recording = false
		c.PendingRecs = append(c.PendingRecs, l.RecFile)
	}
	if len(c.Legs) == 0 {
		t.end(c, ev.At, ev.Resynced)
	}
	t.dirty[c.ID] = c
}

// talking reports whether l is a party of the conversation as it is now:
// the caller, an agent who answered, the customer an agent reached.
func (t *Tracker) talking(l *leg) bool {
	return l.Role == roleCaller || l.Answered && (l.Role == roleAgent || l.Customer || l.Role == roleOther && l.conv.OrigAgent != "")
}

// partyOf names l's party for HupLeg: caller, origin (the agent who
// placed the call), agent or customer.
func (t *Tracker) partyOf(l *leg) string {
	c := l.conv
	switch {
	case l.Role == roleCaller:
		return "caller"
	case l.Role == roleAgent && l.Agent != "" && l.Agent == c.OrigAgent && c.Outbound:
		return "origin"
	case l.Role == roleAgent:
		return "agent"
	}
	return "customer"
}

// hangupRequest notes that l's own device or network asked to end it:
// the PBX's account of who hung up, whatever order the releases come in.
func (t *Tracker) hangupRequest(l *leg) {
	c := l.conv
	if c.Ended || c.APIHangup {
		return // our own hangup command causes requests on the partners
	}
	t.dirty[c.ID] = c
	if c.Call.AnsweredAt != nil {
		if c.HupLeg == "" && t.talking(l) {
			c.HupLeg = t.partyOf(l)
		}
		return
	}
	switch {
	case l.Role == roleCaller:
		if c.HupLeg == "" {
			c.HupLeg = "caller"
		}
		if c.Queued || t.anyRinging(c) {
			c.CallerCancelled = true
		}
	case l.Role == roleAgent && l.Agent != "" && l.Agent == c.OrigAgent:
		if c.HupLeg == "" {
			c.HupLeg = t.partyOf(l) // the agent gave up calling out
		}
	case l.Role == roleAgent && l.Ringing, l.Customer:
		c.Refused = t.partyOf(l)
	}
}

func (t *Tracker) anyRinging(c *conversation) bool {
	for _, x := range c.Legs {
		if x.Ringing || x.Customer && !x.Answered {
			return true
		}
	}
	return false
}

// hangupBy names who ended c for the CRM, relative to its direction: on
// an internal call both ends are agents, so caller and callee.
func (t *Tracker) hangupBy(c *conversation, party string) string {
	internal := c.Call.Direction == DirectionInternal
	switch party {
	case "caller":
		if c.OrigAgent != "" && !internal {
			return "agent" // the agent's own phone placed it
		}
		return "caller"
	case "origin":
		if internal {
			return "caller"
		}
		return "agent"
	case "agent":
		if internal {
			return "callee"
		}
		return "agent"
	case "customer":
		return "callee"
	}
	return party // api, system
}

// end emits call.ended with the final figures.
func (t *Tracker) end(c *conversation, at time.Time, resynced bool) {
	if c.Ended && c.Call.EndedAt != nil {
		return
	}
	c.Ended = true
	t.dirty[c.ID] = c
	e := at.UTC()
	c.Call.EndedAt = &e
	d := int64(e.Sub(c.Call.StartedAt).Seconds())
	c.Call.DurationS = &d
	if c.Call.AnsweredAt != nil {
		talk := int64(e.Sub(*c.Call.AnsweredAt).Seconds())
		c.Call.TalkS = &talk
	}
	c.Call.State = "ended"
	c.Call.Disposition = t.disposition(c)
	c.Call.HangupCause = c.Cause
	switch {
	case resynced:
		c.Call.HangupBy = "system"
	case c.APIHangup:
		c.Call.HangupBy = "api"
	case c.HupLeg != "":
		c.Call.HangupBy = t.hangupBy(c, c.HupLeg)
	case c.Call.AnsweredAt == nil && c.Refused != "":
		c.Call.HangupBy = t.hangupBy(c, c.Refused)
	case !c.SourcesUnknown:
		c.Call.HangupBy = "system" // the PBX said nobody asked: its dialplan or a timeout did
	case c.FirstDown != "":
		c.Call.HangupBy = t.hangupBy(c, c.FirstDown)
	case c.Call.AnsweredAt == nil && c.OrigAgent != "":
		c.Call.HangupBy = "agent" // the agent gave up calling out
	case c.Call.AnsweredAt == nil:
		c.Call.HangupBy = "caller"
	default:
		c.Call.HangupBy = "system"
	}
	if c.Cause == nil {
		c.Call.HangupCause = &HangupCause{Code: 16, Text: causeText(16, "")}
	}
	if c.Queued {
		c.Queued = false
		if c.CallerCancelled || c.HupLeg == "caller" || c.SourcesUnknown {
			t.emit(c, EventCallAbandoned, at, nil)
		}
	}
	t.emit(c, EventCallEnded, at, func(ev *Event) {
		ev.Resynced = resynced
		if resynced {
			ev.ResyncReason = t.resyncReason
		}
	})
	// A recording is ready once the call has ended and the file is closed.
	for _, l := range c.Legs {
		if l.Recording {
			l.Recording = false
			c.PendingRecs = append(c.PendingRecs, l.RecFile)
		}
	}
	for _, f := range c.PendingRecs {
		c.Call.Recording = &Recording{Path: f}
		t.emit(c, EventRecordingReady, at, func(e *Event) { e.Recording = &Recording{Path: f} })
	}
	c.PendingRecs = nil
}

// disposition says how c ended. answered means a person answered (an
// agent, or the far party of a call an agent placed); a call only the PBX
// answered (IVR, announcement, voicemail) was not answered.
func (t *Tracker) disposition(c *conversation) Disposition {
	if c.Call.AnsweredAt != nil {
		return DispositionAnswered
	}
	cause := 0
	if c.Cause != nil {
		cause = c.Cause.Code
	}
	switch {
	case c.CallerCancelled:
		return DispositionCancelled
	case c.DialFail == "BUSY" || cause == 17:
		return DispositionBusy
	case c.DialFail == "CHANUNAVAIL" || c.DialFail == "CONGESTION" || cause == 1 || cause == 3 || cause == 34 || cause == 38:
		return DispositionFailed
	case c.DialFail == "NOANSWER" || cause == 18 || cause == 19:
		return DispositionNoAnswer
	case c.SourcesUnknown && c.HupLeg == "" && (c.Dialled || c.Queued):
		return DispositionCancelled // no account of who hung up: the caller gave up waiting
	}
	return DispositionNoAnswer
}

func (t *Tracker) dialplan(l *leg, ev ChannelEvent) {
	c := l.conv
	prev := l.LastExten
	l.LastExten = ev.Exten
	// A talking caller that starts over at another extension was redirected: a blind transfer (AMI Redirect, a feature
	// code). The agent it left is the transferer.
	// A channel in a bridge runs no dialplan, so a new extension at priority
	// 1 while the agent is still there can only be a redirect.
	if l.Role != roleCaller || c.Call.AnsweredAt == nil || ev.Priority != 1 {
		return
	}
	if ev.Exten == "" || ev.Exten == prev {
		return
	}
	var from *Agent
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Answered && len(x.Channels) > 0 {
			from = t.agent(x)
		}
	}
	if from == nil || (c.Call.Agent != nil && c.Call.Agent.Extension != from.Extension) {
		return
	}
	t.transferred(c, &Transfer{Mode: "blind", From: from, To: ev.Exten}, ev.At)
}

// transferred records that c moved from one agent to another party. A
// blind transfer's next agent to answer owns the call; an attended one
// lands on the consultation's target, who already answered.
func (t *Tracker) transferred(c *conversation, tr *Transfer, at time.Time) {
	c.Rang = map[string]bool{}
	var target *leg
	if tr.Mode == "attended" {
		target = t.transferTarget(c, tr)
	}
	for _, x := range c.Legs {
		if x.Role == roleAgent && x.Answered && x != target {
			x.Role = roleOther
		}
	}
	unhold(c)
	c.Parked = nil
	c.Call.Agent = nil
	c.Call.State = "transferring"
	if target != nil {
		c.Call.Agent = t.agent(target)
		c.Call.State = "talking"
		if tr.To == "" {
			tr.To = target.Agent
		}
	}
	// The conversation goes on: the release that counts is the final one,
	// whatever the transferer's leg did (FreeSWITCH may report its hangup
	// before the transfer itself).
	c.FirstDown, c.Cause, c.OrigAgent, c.HupLeg, c.Refused = "", nil, "", "", ""
	t.emit(c, EventCallTransferred, at, func(e *Event) { e.Transfer = tr })
}

// transferTarget finds the leg an attended transfer hands the call to:
// the answered agent named by the transfer, else the one who answered
// last other than the transferer.
func (t *Tracker) transferTarget(c *conversation, tr *Transfer) *leg {
	var last *leg
	for _, x := range c.Legs {
		if x.Role != roleAgent || !x.Answered || len(x.Channels) == 0 {
			continue
		}
		if tr.To != "" && x.Agent == tr.To {
			return x
		}
		if tr.From == nil || x.Agent != tr.From.Extension {
			last = x
		}
	}
	return last
}

func (t *Tracker) transfer(ev ChannelEvent) {
	var c *conversation
	var from *Agent
	if l := t.legs[ev.Channel.ID]; l != nil {
		from = t.agent(l)
		c = l.conv
	}
	if ev.Peer != nil {
		if p := t.legs[ev.Peer.ID]; p != nil {
			c = p.conv
		}
	}
	if c == nil || c.Ended {
		return
	}
	if from == nil && c.Call.Agent != nil {
		// The PBX named the transferred party, not the transferer: the
		// agent who had the call moved it.
		a := *c.Call.Agent
		from = &a
	}
	mode := "blind"
	if ev.Attended {
		mode = "attended"
	}
	t.transferred(c, &Transfer{Mode: mode, From: from, To: ev.Exten}, ev.At)
}

func (t *Tracker) variable(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil {
		return
	}
	switch {
	case t.cfg.DirectionVar != "" && ev.Name == t.cfg.DirectionVar:
		t.setDirectionVar(l.conv, ev.Value)
	case ev.Name == "MIXMONITOR_FILENAME":
		l.RecFile = ev.Value
	}
}

func (t *Tracker) setDirectionVar(c *conversation, v string) {
	switch d := Direction(strings.ToLower(strings.TrimSpace(v))); d {
	case DirectionInbound, DirectionOutbound, DirectionInternal:
		if c.Call.Variables == nil {
			c.Call.Variables = map[string]string{}
		}
		c.Call.Variables["direction"] = string(d)
		c.Call.Direction = d
		t.dirty[c.ID] = c
	}
}

func (t *Tracker) queueJoin(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || l.conv.Queued {
		return
	}
	c := l.conv
	c.Queued = true
	at := ev.At.UTC()
	c.QueuedAt = &at
	c.Call.Queue = ev.Queue
	c.Call.State = "queued"
	t.emit(c, EventCallQueued, ev.At, nil)
}

// queueAbandon: the queue gave the caller up. It is an abandon when the
// caller hung up (Asterisk raises QueueCallerAbandon for a queue timeout
// too, where the caller goes on in the dialplan: not abandoned, and if
// nobody answers after, a no_answer).
func (t *Tracker) queueAbandon(ev ChannelEvent) {
	l := t.legs[ev.Channel.ID]
	if l == nil || !l.conv.Queued {
		return
	}
	c := l.conv
	byCaller := ev.Reason == AbandonCallerHungUp || c.CallerCancelled || c.HupLeg == "caller" ||
		!t.reportsRequests && ev.Reason != AbandonTimeout
	if !byCaller {
		c.Queued = false
		t.dirty[c.ID] = c
		return
	}
	c.Queued = false
	t.emit(c, EventCallAbandoned, ev.At, nil)
}

func (t *Tracker) recordStart(ev ChannelEvent) {
	l := t.channel(ev.Channel, ev.At)
	if l == nil || l.Recording {
		return
	}
	if ev.File != "" {
		l.RecFile = ev.File
	}
	l.Recording = true
	c := l.conv
	c.Call.Recording = &Recording{Path: l.RecFile}
	t.emit(c, EventRecordingStarted, ev.At, func(e *Event) { e.Recording = &Recording{Path: l.RecFile} })
}

func (t *Tracker) recordReady(l *leg, file string, at time.Time) {
	if !l.Recording {
		return
	}
	l.Recording = false
	if file != "" {
		l.RecFile = file
	}
	c := l.conv
	c.Call.Recording = &Recording{Path: l.RecFile}
	t.emit(c, EventRecordingReady, at, func(e *Event) { e.Recording = &Recording{Path: l.RecFile} })
}

func (t *Tracker) originateFailed(ev ChannelEvent) {
	o := t.originates["action:"+ev.ActionID]
	if o == nil {
		return
	}
	delete(t.originates, "action:"+ev.ActionID)
	c := t.convs[o.ConversationID]
	if c == nil {
		c = t.newConversation(o.ConversationID, o.RequestedAt)
		c.Outbound, c.ActionID = true, o.ActionID
		c.Call.Callee.Number = o.To
		c.Call.Caller = Party{Number: o.Agent, Name: t.agentName(o.Agent)}
	}
	if c.Ended {
		return
	}
	c.Cause = &HangupCause{Code: ev.Cause, Text: causeText(ev.Cause, ev.CauseText)}
	switch ev.Cause {
	case 17:
		c.DialFail = "BUSY"
	case 18, 19:
		c.DialFail = "NOANSWER"
	default:
		c.DialFail = "CHANUNAVAIL"
	}
	if !c.Failed {
		c.Failed = true
		t.emit(c, EventCallFailed, ev.At, nil)
	}
	if len(c.Legs) == 0 {
		t.end(c, ev.At, false)
	}
}

func (t *Tracker) agentState(ev ChannelEvent) {
	_, ext, _, _ := parseName(ev.Interface)
	if ext == "" {
		ext = ev.Member
	}
	if !t.cfg.AgentPattern.MatchString(ext) {
		// mod_callcenter names agents like "agent1000@default": use the
		// extension inside when there is one, so agent.state and call
		// events name the agent alike.
		if m := digitRun.FindString(ext); m != "" && t.cfg.AgentPattern.MatchString(m) {
			ext = m
		}
	}
	key := ext + "\x00" + ev.Queue
	if t.agentStates[key] == ev.Status+ev.Reason {
		return
	}
	t.agentStates[key] = ev.Status + ev.Reason
	if !t.cfg.AgentPattern.MatchString(ev.Member) && ev.Member != ev.Interface {
		t.learnName(ext, ev.Member)
	}
	name := ev.Member
	if n := t.agentName(ext); n != "" {
		name = n
	}
	t.out = append(t.out, Event{ID: NewID("evt_"), Type: EventAgentState, OccurredAt: ev.At.UTC(), PBX: t.cfg.PBX,
		Agent: &Agent{Extension: ext, Name: name}, AgentState: &AgentStat{Queue: ev.Queue, State: ev.Status, Reason: ev.Reason}})
}

// emit appends an event for c with a fresh id and the next sequence.
func (t *Tracker) emit(c *conversation, typ string, at time.Time, fill func(*Event)) {
	t.direction(c)
	c.Seq++
	snap := c.snapshot()
	e := Event{ID: NewID("evt_"), Type: typ, OccurredAt: at.UTC(), Sequence: c.Seq, PBX: t.cfg.PBX,
		ConversationID: c.ID, Call: &snap}
	if fill != nil {
		fill(&e)
	}
	t.out = append(t.out, e)
	t.dirty[c.ID] = c
}

// direction settles the call's direction from the configured rules, once
// enough is known; a dialplan variable always wins.
func (t *Tracker) direction(c *conversation) {
	if c.Call.Variables["direction"] != "" || c.DirectionFixed {
		t.numbers(c)
		return
	}
	if c.Outbound {
		c.Call.Direction = DirectionOutbound
	} else {
		var caller *leg
		for _, l := range c.Legs {
			if l.Role == roleCaller {
				caller = l
			}
		}
		callerInternal := t.cfg.AgentPattern.MatchString(c.Call.Caller.Number)
		calleeInternal := t.cfg.AgentPattern.MatchString(c.Call.Callee.Number)
		calleeUnknown := c.Call.Callee.Number == "" || c.Call.Callee.Number == "s"
		switch {
		case caller != nil && (slices.Contains(t.cfg.InboundContexts, caller.Context) ||
			(t.cfg.TrunkPattern != nil && t.cfg.TrunkPattern.MatchString(caller.anyName()))):
			c.Call.Direction = DirectionInbound
		case callerInternal && calleeUnknown:
			// An agent's call whose destination is not known yet.
		case callerInternal && calleeInternal:
			c.Call.Direction = DirectionInternal
		case callerInternal:
			c.Call.Direction = DirectionOutbound
		case c.Call.Caller.Number != "":
			c.Call.Direction = DirectionInbound
		}
	}
	// The first event settles it: a caller leg that hangs up first or a
	// transfer must not turn an inbound call internal at its end.
	c.DirectionFixed = c.Call.Direction != DirectionUnknown
	t.numbers(c)
}

func (t *Tracker) numbers(c *conversation) {
	if t.cfg.Numbers != nil {
		c.Call.Caller.E164 = t.cfg.Numbers.E164(c.Call.Caller.Number)
		c.Call.Callee.E164 = t.cfg.Numbers.E164(c.Call.Callee.Number)
	}
}

// anyName returns one of the leg's channel names.
func (l *leg) anyName() string {
	for _, n := range l.Names {
		return n
	}
	return ""
}

// snapshot is the call as a CRM sees it now.
func (c *conversation) snapshot() Call {
	s := c.Call
	if c.Call.Variables != nil {
		s.Variables = make(map[string]string, len(c.Call.Variables))
		for k, v := range c.Call.Variables {
			s.Variables[k] = v
		}
	}
	return s
}

// causeText returns the Q.850 text for a code when the PBX gave none or gave
// a FreeSWITCH cause name.
func causeText(code int, text string) string {
	if text != "" && text != "Unknown" {
		return text
	}
	if s, ok := q850[code]; ok {
		return s
	}
	if text != "" {
		return text
	}
	return "Unknown"
}

var digitRun = regexp.MustCompile(`[0-9]+`)

var q850 = map[int]string{
	1: "Unallocated (unassigned) number", 3: "No route to destination", 16: "Normal Clearing",
	17: "User busy", 18: "No user responding", 19: "No answer from user (user alerted)",
	21: "Call Rejected", 27: "Destination out of order", 28: "Invalid number format (address incomplete)",
	31: "Normal, unspecified", 34: "No circuit/channel available", 38: "Network out of order",
	41: "Temporary failure", 42: "Switching equipment congestion", 127: "Interworking, unspecified",
}
