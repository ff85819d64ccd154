package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
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
	// Tenants derive each conversation's tenant (zero: all "").
	Tenants Tenants
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
	gone      map[string]time.Time // when each hung up
	goneOrder []string
	released  int64
	adopted   int64
	// reportsRequests: the PBX reports hangup requests, so a queue
	// abandon without one was the queue's own timeout.
	reportsRequests bool
	dirty           map[string]*conversation // changed since the last Drain
	out             []Event
	// parkAfter holds a park reported while its call was still bridged
	// with the agent parking it, until its call's next event (see park).
	// It is not saved: a crash in those microseconds loses the park's
	// hold, which the retrieval or the hangup settles.
	parkAfter []ChannelEvent
	// resuming are the calls whose hold came off, not yet told (see
	// ResumeSettle); their ResumeAt is saved with them.
	resuming map[string]*conversation
	// agentTenants are the tenants of agents the config does not list,
	// learned from the calls their phones are in.
	agentTenants map[string]string
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
	RingTimeout    time.Duration // how long the agent's phone rings; 0: the adapter's default
	RequestedAt    time.Time
	Tenant         string // the tenant of the key that placed it (or of its agent)
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
	Channels []string     `json:"channels"` // live channel ids
	Names    channelNames `json:"names"`    // channel id -> name
	Role     legRole      `json:"role"`
	Ext      string       `json:"ext,omitempty"`
	Context  string       `json:"context,omitempty"`
	Agent    string       `json:"agent,omitempty"`
	Dialled  bool         `json:"dialled,omitempty"`
	// ByChannel: a channel dialled this leg (Dial, Queue), so its answer
	// counts when the dialler takes it (DialEnd ANSWER, AgentConnect, the
	// bridge), not at its own state change; a leg the PBX originates by
	// itself is answered at its own answer.
	ByChannel bool `json:"by_channel,omitempty"`
	// Service: the leg is a PBX application (Channel.Service), not a party.
	Service bool `json:"service,omitempty"`
	// QueueRung: a queue rang this leg; the queue connects it (AgentConnect).
	QueueRung bool `json:"queue_rung,omitempty"`
	// Customer: the far party of a call an agent placed.
	Customer bool `json:"customer,omitempty"`
	// Far: a party that is no agent, reached by a call put through to it
	// (a transfer or forward to an outside number): it talks in the
	// conversation.
	Far bool `json:"far,omitempty"`
	// External is the outside number this leg is, when a transfer handed
	// the call to it (its ring and answer are told, party external).
	External string `json:"external,omitempty"`
	// Asked: this leg's device or network asked to hang up (HupLeg).
	Asked     bool     `json:"asked,omitempty"`
	Ringing   bool     `json:"ringing,omitempty"`
	Answered  bool     `json:"answered,omitempty"`
	Bridges   []string `json:"bridges,omitempty"`
	Held      bool     `json:"held,omitempty"`
	RecFile   string   `json:"rec_file,omitempty"`
	LastExten string   `json:"last_exten,omitempty"`
	Recording bool     `json:"recording,omitempty"`
	// Redirected: a dialled device left its bridge and runs dialplan of
	// its own (an AMI Redirect, an after-bridge goto): what it dials now
	// is a call of its own.
	Redirected bool `json:"redirected,omitempty"`
	// Served: an agent's device that took this call from a PBX service
	// it waits in (mod_fifo's consumer, AgentLogin): its channel outlives
	// each call it takes.
	Served bool `json:"served,omitempty"`
	// Local: a local/loopback pair (plumbing), as the adapter said.
	Local bool `json:"local,omitempty"`
	Trunk bool `json:"trunk,omitempty"` // a carrier's leg: never an agent's device
	// FollowMe: a local pair ringing the other numbers of the agent whose
	// pair was dialled with it (Channel.FollowMe).
	FollowMe bool `json:"follow_me,omitempty"`
	// MemberQueue: a queue rang this local pair as its member; whom it
	// rings is known when its other half dials (the member's own phone,
	// or other agents' phones: a ring group, no person of its own) or it
	// answers. "-": rung with no queue name.
	MemberQueue string `json:"member_queue,omitempty"`
	// DialledBy: the channel that dialled this local pair (a Follow Me's
	// FMPR and FMGL legs share the one Dial).
	DialledBy string `json:"dialled_by,omitempty"`
	// MemberPair: the channel of a queue member's local pair that dialled
	// this leg (the phone behind the member); MemberUp: the leg answered
	// (or was bridged) behind that pair before the queue connected the
	// pair (AgentConnect), which is when its answer counts.
	MemberPair string `json:"member_pair,omitempty"`
	MemberUp   bool   `json:"member_up,omitempty"`
	// StandIn is the slot this local pair waits in on behalf of the party
	// it stands for (an attended transfer to a parking lot), until that
	// party is swapped in (ParkedCallSwap).
	StandIn *Park `json:"stand_in,omitempty"`
	// DeviceFailed: this local pair's agent's device refused or did not
	// answer (the dial status), and the pair dialled nobody since.
	DeviceFailed string `json:"device_failed,omitempty"`
	// Born is when the leg's first channel was seen.
	Born time.Time `json:"born,omitempty"`
	conv *conversation
}

// conversation is one customer interaction, across transfers.
type conversation struct {
	ID       string   `json:"id"`
	Seq      int64    `json:"seq"`
	Call     Call     `json:"call"`
	Legs     []*leg   `json:"legs"`
	Linked   []string `json:"linked"`
	Rang     agentSet `json:"rang"` // agents popped for the current ring round
	DialFail string   `json:"dial_fail,omitempty"`
	CallerUp bool     `json:"caller_up,omitempty"`
	// Discarded: folded into another conversation before it issued an
	// event; its stored row, if any, goes.
	Discarded bool `json:"discarded,omitempty"`
	// Quiet: what is left of an agent's session in a PBX service once a
	// call it took there ended (releaseServed). It is no call for the
	// CRM: unless it takes another, it ends without a word.
	Quiet     bool       `json:"quiet,omitempty"`
	Dialled   bool       `json:"dialled,omitempty"`
	Queued    bool       `json:"queued,omitempty"`
	QueuedAt  *time.Time `json:"queued_at,omitempty"`
	FirstDown string     `json:"first_down,omitempty"` // role of the first leg to hang up after answer (used when the PBX does not say who asked)
	// HupLeg is who hung up, from the PBX's own account (a hangup request
	// of a talking leg: caller, agent, customer, api); Refused the dialled
	// leg that refused an unanswered call; SourcesUnknown is set when a
	// leg ended without the PBX saying who asked.
	HupLeg string `json:"hup_leg,omitempty"`
	// HupAside: the party of HupLeg asked while it was in no bridge with
	// the caller (a consultation, the caller held or parked elsewhere):
	// its request may only have handed the call on (Asterisk's feature
	// attended transfer completed by the transferer's hangup), which a
	// live transfer or rebridge tells, and a link loss may hide.
	HupAside       bool   `json:"hup_aside,omitempty"`
	Refused        string `json:"refused,omitempty"`
	SourcesUnknown bool   `json:"sources_unknown,omitempty"`
	// CallerCancelled: the caller hung up while an agent rang or the call
	// waited in a queue.
	CallerCancelled bool `json:"caller_cancelled,omitempty"`
	// HadAgent is the agent who had the call before a transfer handed it
	// on: the call's agent at its end if no other agent took it (a
	// transfer to an outside number, a queue nobody answered).
	HadAgent *Agent `json:"had_agent,omitempty"`
	// Parked is the slot the call waits in, while parked.
	Parked *Park `json:"parked,omitempty"`
	// LastTransfer is the blind transfer last told, until a device rings
	// or answers for the call: the PBX may give one transfer two accounts
	// (Asterisk's BlindTransfer before or after the caller's new
	// extension, stasis handing them over on different threads;
	// FreeSWITCH's uuid_transfer -both, one per leg).
	LastTransfer *Transfer `json:"last_transfer,omitempty"`
	// DirectionFixed: the direction was settled by the first event; later
	// legs (a transfer, the caller gone) must not change it.
	DirectionFixed bool         `json:"direction_fixed,omitempty"`
	Cause          *HangupCause `json:"cause,omitempty"`
	Ended          bool         `json:"ended,omitempty"`
	Outbound       bool         `json:"outbound,omitempty"` // placed by click-to-call
	// OrigLocal: the PBX originated the call to a local pair
	// (Channel=Local/100@from-internal): the agent who places it is the
	// device its other half rings first.
	OrigLocal bool `json:"orig_local,omitempty"`
	// PBXDialled: the call's first leg is a party the PBX dialled by
	// itself (an originate to an outside number, a conference's dial-out),
	// not one who called in: the call is outbound and that party its
	// callee.
	PBXDialled bool `json:"pbx_dialled,omitempty"`
	// OrigAgent is the agent who placed the call (an outbound or internal
	// call from an agent's phone, or a click-to-call): the far party's
	// answer establishes it.
	OrigAgent string `json:"orig_agent,omitempty"`
	ActionID  string `json:"action_id,omitempty"`
	// Failed: call.failed was sent (a click-to-call's far party never
	// answered).
	Failed bool `json:"failed,omitempty"`
	// FailPending: the far party's leg failed; call.failed waits for the
	// call's end, as the dialplan may try another route (a second trunk)
	// that rings the same party.
	FailPending bool `json:"fail_pending,omitempty"`
	// PendingRecs are recordings whose channel ended: ready when the call
	// ends.
	PendingRecs []string `json:"pending_recs,omitempty"`
	// APIHangup: a CRM hung the call up through the API.
	APIHangup bool `json:"api_hangup,omitempty"`
	// FeatureHold: the call's hold was made by the PBX's transfer key;
	// ResumeAt is when it came off, until that is told (see ResumeSettle).
	FeatureHold bool       `json:"feature_hold,omitempty"`
	ResumeAt    *time.Time `json:"resume_at,omitempty"`
	lastAt      time.Time  // of the last event told (not saved)
	// CallerGone: the caller's leg left while the call went on.
	CallerGone bool `json:"caller_gone,omitempty"`
	// PartiesFixed: caller and callee are set; channel data must not
	// change them (a stranded agent's leg still carries its customer's id).
	PartiesFixed bool `json:"parties_fixed,omitempty"`
	// TenantFixed: Call.Tenant is settled (a rule matched, or the first
	// event went out with the default); it never changes after.
	TenantFixed bool `json:"tenant_fixed,omitempty"`
	// e164Of are the caller's and callee's numbers last parsed, e164Is
	// what they gave, e164Done whether they were parsed at all (not
	// stored: a restored call parses them again).
	e164Of, e164Is [2]string
	e164Done       [2]bool
}

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.AgentPattern == nil {
		cfg.AgentPattern = regexp.MustCompile(`^[0-9]{2,6}$`)
	}
	return &Tracker{cfg: cfg, convs: map[string]*conversation{}, legs: map[string]*leg{}, byName: map[string]string{}, bridged: map[string][]*leg{},
		byLinked: map[string]*conversation{}, originates: map[string]*Originate{}, agentStates: map[string]string{},
		names: map[string]string{}, gone: map[string]time.Time{}, dirty: map[string]*conversation{},
		resuming: map[string]*conversation{}}
}

// NewID returns a random, time-ordered id with a prefix.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 36)
	return prefix + ts + hex.EncodeToString(b[:])
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
	if c.ResumeAt != nil {
		t.resuming[c.ID] = c
	}
	for _, l := range c.Legs {
		l.conv = c
		for _, ch := range l.Channels {
			t.legs[ch] = l
			if n := l.Names.get(ch); n != "" {
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
		t.learnAgentTenant(ev.Agent, ev.Tenant) // a learned tenant outlives a restart
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

// Handle applies one channel event.
func (t *Tracker) Handle(ev ChannelEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	if len(t.resuming) > 0 {
		t.settleResume(ev)
	}
	if c := t.parkedCall(ev); c != nil && ev.Kind != ChanUnhold {
		// (A phone's REFER may come with an Unhold of the agent's line
		// between the park and the transfer; the park ends the hold.)
		if ev.Kind == ChanTransfer && !ev.Attended {
			// The blind transfer that parks the call: told first.
			t.handle(ev)
			t.parkHeld(c)
			return
		}
		t.parkHeld(c)
	}
	t.handle(ev)
}

// parkedCall is the call ev is about (by its channel or its peer) when that
// call's park is held back, else nil.
func (t *Tracker) parkedCall(ev ChannelEvent) *conversation {
	for _, p := range t.parkAfter {
		pl := t.legs[p.Channel.ID]
		if pl == nil {
			continue
		}
		if l := t.legs[ev.Channel.ID]; l != nil && l.conv == pl.conv {
			return pl.conv
		}
		if ev.Peer != nil {
			if l := t.legs[ev.Peer.ID]; l != nil && l.conv == pl.conv {
				return pl.conv
			}
		}
	}
	return nil
}

func (t *Tracker) handle(ev ChannelEvent) {
	switch ev.Kind {
	case ChanNew:
		t.forgetGone(ev.Channel.ID, ev.At)
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
	case ChanAgentRingNoAnswer:
		// The queue gave up ringing this member (its ring timeout).
		if ev.Peer != nil {
			if l := t.legs[ev.Peer.ID]; l != nil && l.Role == roleAgent {
				t.stopRinging(l, ev.At, "NOANSWER")
			}
		}
	case ChanAgentConnect:
		if ev.Peer != nil {
			if l := t.channel(*ev.Peer, ev.At); l != nil {
				t.followDialler(t.legs[ev.Channel.ID], l, ev.At)
				t.answered(l, ev.At)
				t.memberConnected(l, ev.At)
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
			t.hangupRequest(l, ev.Cause)
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
			if !l.Recording && ev.File != "" && ev.File != l.RecFile && !l.conv.Ended {
				// A recording begun before the link (its start was never
				// seen): the CRM hears of it, and of its file, now.
				t.recordStart(ChannelEvent{Kind: ChanRecordStart, At: ev.At, Channel: ev.Channel, File: ev.File})
			}
			if ev.Reason == RecordStopHangup && l.Recording {
				// Stopped by the call's own end: ready after call.ended,
				// like a recording that stops with its channel.
				if ev.File != "" {
					l.RecFile = ev.File
				}
				l.Recording = false
				l.conv.PendingRecs = append(l.conv.PendingRecs, l.RecFile)
				t.dirty[l.conv.ID] = l.conv
				break
			}
			t.recordReady(l, ev.File, ev.At)
		}
	case ChanOriginateFailed:
		t.originateFailed(ev)
	case ChanAgentState:
		t.agentState(ev)
	}
}

// newUUID returns a random (version 4) UUID: the PBXs take channel ids in
// that form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
