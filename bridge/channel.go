package bridge

import (
	"strconv"
	"time"
)

// ChannelEvent is the PBX-neutral vocabulary the adapters translate AMI and
// ESL events into. The Tracker turns a stream of them into conversations and
// Events. Adapters leave fields they do not know empty.
type ChannelEvent struct {
	Kind ChannelEventKind
	At   time.Time
	// Channel is the channel the event is about (AMI Channel/Uniqueid, ESL
	// Unique-ID). For Dial events it is the dialling channel.
	Channel Channel
	// Peer is the other channel: the dialled one (Dial*), the partner of a
	// local pair (LocalPair), the transferee (Transfer*), the agent's channel
	// (Agent*), the channel that replaces Channel (Rename uses NewName).
	Peer *Channel

	Bridge string // bridge id for BridgeEnter/BridgeLeave
	// Conference: Bridge is a multi-party conference room (Asterisk
	// ConfBridge), not a call between parties: sharing it joins no calls.
	Conference bool
	DialStatus string // ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL
	Cause      int    // Q.850 hangup cause
	CauseText  string
	Name       string // variable name (Var), new channel name (Rename)
	Value      string // variable value (Var)
	Queue      string
	Member     string // queue member name, e.g. "Agent100"
	Interface  string // queue member interface, e.g. "Local/100@agents" or "PJSIP/100"
	Agent      string // the agent's extension a queue member event names (read by the adapter from Interface or Member)
	Context    string // dialplan context (Dialplan, Transfer target)
	// Exten: the dialplan extension (Dialplan, Transfer target); for a
	// Dial with no dialling channel (the PBX's own, an originate), the
	// number it dialled where the adapter can read it.
	Exten    string
	Priority int    // dialplan priority (Dialplan)
	File     string // recording file (Record*)
	Attended bool   // Transfer: attended (true) or blind
	// Named (Transfer): the PBX itself names Channel as the party that
	// transferred (Asterisk's Transferer, sofia's transferor), rather than
	// the adapter inferring it from the leg a transfer left behind.
	Named bool
	// FeatureHold (Hold): the PBX's own transfer key holds the call, not a
	// device (Asterisk: a Hold without MusicClass, bridge_basic.c).
	FeatureHold bool
	// Music (Hold, Unhold): the PBX's music starting or stopping on the
	// channel, which another's hold caused.
	Music bool
	// RingsLater (AgentCalled): the member is a local pair whose other
	// half then dials whom it rings (Asterisk Local/100@agents/n, or a
	// ring group Local/grp@ringgroups/n): its ring waits for that dial,
	// which shows whether it is the member's own phone.
	RingsLater bool
	Reason     string // free text (AgentState pause reason, QueueLeave reason)
	Paused     bool   // AgentState
	Status     string // AgentState: logged_in, logged_out, available, busy, unavailable
	ActionID   string // the originate/command this event answers, when known
	Resynced   bool   // produced by a resync, not seen live
	// HangupSource says who ended the channel, where the PBX tells
	// (ChanHangup): HangupByEndpoint when the device or network on this
	// channel asked (a BYE, CANCEL or refusal: Asterisk HangupRequest,
	// FreeSWITCH sip_hangup_disposition recv_*), HangupByPBX when the PBX
	// decided (dialplan end, bridge partner gone, timeout, command,
	// shutdown), "" when the adapter cannot tell (local/loopback halves).
	HangupSource string
}

// Listed.Hold values.
const (
	HoldOn  = "held"
	HoldOff = "active"
)

// Reasons of a ChanQueueAbandon, where the PBX says: the caller hung up
// while waiting, or the caller did not (the queue gave up: a timeout, no
// agent; or the PBX was told to end the wait). Without one,
// the tracker asks whether the caller's hangup was requested.
const (
	AbandonCallerHungUp = "caller_hangup"
	AbandonTimeout      = "timeout"
)

// VarRecordingFile is the ChanVar naming the file a recording of the
// channel writes, when the PBX tells it apart from the start event (an
// Asterisk MixMonitor started by the dialplan: MIXMONITOR_FILENAME).
const VarRecordingFile = "recording_file"

// RecordStopHangup is the Reason of a ChanRecordStop the channel's hangup
// caused (the recording ends with the call).
const RecordStopHangup = "hangup"

// Hangup sources (ChannelEvent.HangupSource).
const (
	HangupByEndpoint = "endpoint"
	HangupByPBX      = "pbx"
)

// ChannelEventKind enumerates ChannelEvent kinds.
type ChannelEventKind int

const (
	ChanNew               ChannelEventKind = iota + 1 // a channel appeared
	ChanUpdate                                        // caller id, connected line or state changed
	ChanDialplan                                      // the channel runs a dialplan step (Context/Exten/Priority)
	ChanDial                                          // Channel starts dialling Peer
	ChanDialEnd                                       // Channel's dial of Peer ended with DialStatus
	ChanAnswer                                        // Channel is answered (state Up)
	ChanBridgeEnter                                   // Channel joined Bridge
	ChanBridgeLeave                                   // Channel left Bridge
	ChanHold                                          // Channel put on hold
	ChanUnhold                                        // Channel taken off hold
	ChanHangup                                        // Channel is gone (Cause)
	ChanRename                                        // Channel's name became Name (masquerade)
	ChanLocalPair                                     // Channel (;1 / -a) and Peer (;2 / -b) are two halves of one local channel
	ChanVar                                           // Channel variable Name set to Value
	ChanTransfer                                      // Channel (transferer) moved Peer (transferee) to Exten/Context, or to a consult leg
	ChanQueueJoin                                     // Channel entered Queue
	ChanQueueLeave                                    // Channel left Queue (answered or not)
	ChanQueueAbandon                                  // Channel hung up while waiting in Queue
	ChanAgentCalled                                   // Queue rings Member on Peer for Channel
	ChanAgentConnect                                  // Member on Peer answered Channel from Queue
	ChanAgentRingNoAnswer                             // Member on Peer did not answer
	ChanRecordStart                                   // recording of Channel to File started
	ChanRecordStop                                    // recording of Channel to File stopped
	ChanOriginateFailed                               // an originate (ActionID) failed: Cause/Reason
	ChanAgentState                                    // queue member Interface/Member state changed
	ChanHangupRequest                                 // Channel's own device or network asked to end it (BYE, CANCEL, refusal): its party hung up
	ChanPark                                          // Channel was parked at slot Exten of lot Context
	ChanUnpark                                        // Channel was taken from its parking slot by Peer (the retriever)
	ChanPickup                                        // Channel (the picker) took the call ringing on Peer
)

// Channel identifies a PBX channel and carries its latest caller data.
type Channel struct {
	ID            string // Uniqueid / Unique-ID: unique per PBX lifetime
	Name          string // e.g. PJSIP/100-0000001a, Local/100@agents-00000001;1, sofia/internal/100@host
	LinkedID      string // Asterisk Linkedid / FreeSWITCH call uuid, a hint only
	CallerNum     string
	CallerName    string
	ConnectedNum  string
	ConnectedName string
	Context       string
	Exten         string
	State         string // Down, Ring, Ringing, Up, Busy ...
	// Direction is the PBX's own view where it has one (FreeSWITCH
	// Call-Direction: inbound/outbound from the switch's side).
	Direction string
	// Endpoint is the device's user as the PBX dialled or authenticated it
	// (FreeSWITCH dialed_user, an Asterisk PJSIP endpoint), when known. It
	// names the agent whatever the registered contact is called
	// (sofia/internal/1000-0x5591f1b07bf0@host is 1000's phone).
	Endpoint string
	// Local marks a half of a local channel (Asterisk Local/, FreeSWITCH
	// loopback/): dialplan plumbing, never a phone itself. Partner is the
	// name of its other half where the PBX's naming ties them (Asterisk's
	// ;1/;2); Home the context it was created for (Local/100@agents:
	// agents). The adapters read these from their PBX's channel names: the
	// call model knows no PBX's naming.
	Local bool
	// Trunk marks a leg through a carrier (FreeSWITCH sofia/gateway/...):
	// the far party, never an agent's device, whatever number it dials (a
	// short local number, a branch office's extension).
	Trunk bool
	// FollowMe marks a local pair that rings the other numbers of the
	// agent whose own pair is dialled in the same Dial (FreePBX Follow
	// Me's Local/FMGL-<numbers>): an outside answer on it is that agent's.
	FollowMe bool
	// Service names the PBX application a dialled channel runs itself
	// (a FreeSWITCH loopback/app=voicemail): the PBX, not a person, so its
	// answer answers nobody's call.
	Service string
	Partner string
	Home    string
	// Vars are channel variables the adapter read with the event (only the
	// ones the model uses, e.g. the configured direction variable).
	Vars map[string]string
	// AccountCode is Asterisk's CHANNEL(accountcode), Domain FreeSWITCH's
	// domain_name: what the tenant rules read besides Context and Vars.
	AccountCode string
	Domain      string
	// Listed is what a resync's channel list said of a channel that was up
	// before the link (the events that told it came before it); nil for a
	// channel known from live events. Behind a pointer because nearly no
	// channel has it and a Channel is copied into every ChannelEvent.
	Listed *Listed
}

// Listed is what a PBX's channel list says of a channel beyond what its
// events carry. Adapters fill it while they build a snapshot and never
// change it once a channel is handed on (copies of the channel share it).
type Listed struct {
	// CreatedAt is when the channel appeared, when the PBX says.
	CreatedAt time.Time
	// Queue is the queue a caller's channel waits in (the application it
	// runs).
	Queue string
	// Hold is what the list says of the channel's hold: HoldOn or HoldOff
	// (FreeSWITCH's callstate), empty where the list cannot tell
	// (Asterisk's).
	Hold string
	// ParkSlot and ParkLot: the parking slot (and lot) the channel waits
	// in (the application it runs).
	ParkSlot, ParkLot string
	// Conference is the conference room the channel is in (its members
	// share no bridge the list names).
	Conference string
	// BridgedWith is the channel the list pairs this one with in a bridge
	// (FreeSWITCH's show calls), when known, and BridgedAt when that
	// bridge began.
	BridgedWith string
	BridgedAt   time.Time
	// DialledBy is the channel that dialled this one, where the list pairs
	// them (FreeSWITCH's show calls: a bridged outbound b-leg and the
	// a-leg that originated it).
	DialledBy string
}

// List returns what a channel list said of c: the zero Listed for a
// channel known from live events.
func (c *Channel) List() Listed {
	if c.Listed == nil {
		return Listed{}
	}
	return *c.Listed
}

// Listing returns c's Listed for an adapter building a snapshot to fill,
// making it first. Only for a channel not yet handed on: copies of a
// channel share its Listed, so filling it through one changes them all.
func (c *Channel) Listing() *Listed {
	if c.Listed == nil {
		c.Listed = &Listed{}
	}
	return c.Listed
}

// Sink receives what a PBX adapter learns, in order. The bridge's Engine
// implements it; the ami and esl adapters call it from one goroutine each.
type Sink interface {
	// LinkUp is called after each (re)connect and login, before any event of
	// that session.
	LinkUp(session int)
	// ChannelEvents hands over translated events in the order they happened.
	ChannelEvents(evs []ChannelEvent)
	// Snapshot is the PBX's full list of live channels (CoreShowChannels,
	// show channels), taken after LinkUp: calls the bridge tracks that are
	// not in it ended while the link was down; live ones are adopted.
	Snapshot(live []Channel, at time.Time)
	// LinkDown is called when a session ends, after its last event.
	LinkDown(err error)
}

var kindNames = [...]string{
	ChanNew: "New", ChanUpdate: "Update", ChanDialplan: "Dialplan", ChanDial: "Dial",
	ChanDialEnd: "DialEnd", ChanAnswer: "Answer", ChanBridgeEnter: "BridgeEnter",
	ChanBridgeLeave: "BridgeLeave", ChanHold: "Hold", ChanUnhold: "Unhold",
	ChanHangup: "Hangup", ChanRename: "Rename", ChanLocalPair: "LocalPair",
	ChanVar: "Var", ChanTransfer: "Transfer",
	ChanQueueJoin: "QueueJoin", ChanQueueLeave: "QueueLeave", ChanQueueAbandon: "QueueAbandon",
	ChanAgentCalled: "AgentCalled", ChanAgentConnect: "AgentConnect",
	ChanAgentRingNoAnswer: "AgentRingNoAnswer", ChanRecordStart: "RecordStart",
	ChanRecordStop: "RecordStop", ChanOriginateFailed: "OriginateFailed", ChanAgentState: "AgentState",
	ChanHangupRequest: "HangupRequest", ChanPark: "Park", ChanUnpark: "Unpark", ChanPickup: "Pickup",
}

// String names a kind (logs, test descriptions).
func (k ChannelEventKind) String() string {
	if k > 0 && int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "ChannelEventKind(" + strconv.Itoa(int(k)) + ")"
}
