package ami

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// ListSender sends a list action (the Client does).
type ListSender interface {
	SendList(ctx context.Context, action *goami2.Message) (*goami2.Message, []*goami2.Message, error)
}

// Mapper translates AMI frames into bridge.ChannelEvents for a Sink and runs
// the resync after each login. It implements BatchHandler and is driven by the
// Client's single consumer goroutine, so frames arrive in wire order.
type Mapper struct {
	sink   bridge.Sink
	sender ListSender
	log    *slog.Logger
	// Vars are the channel variables worth passing on (VarSet is the
	// noisiest AMI event: ~25 per call).
	vars map[string]bool

	mu       sync.Mutex
	ctx      context.Context
	resyncID string
	queuesID string // the QueueStatus of the resync: its members are agent states
	snapshot []bridge.Channel
	// inBridge holds the BridgeId of each listed channel in a bridge: two
	// channels of one bridge are paired (Listed.BridgedWith) at the end.
	inBridge map[string]string
	// snapshotAt is the clock CoreShowChannel's Durations count back from:
	// one for the whole list (its items carry no Timestamp), so channels
	// of equal Duration keep the PBX's creation order.
	snapshotAt time.Time
	// listed counts the resync's CoreShowChannel items, each one, to hold
	// against the ListItems Asterisk says it sent.
	listed int
	seq    int
	// requested holds the channels whose HangupRequest was seen, until
	// their Hangup (driven by the one consumer goroutine).
	requested idSet
	// pending holds the events of the batch being added, handed to the
	// sink together at Flush: one slice a burst, not one an event.
	pending []bridge.ChannelEvent
}

// maxPending bounds the events handed to the sink in one slice, so a
// long batch reaches the engine as it is mapped.
const maxPending = 32

// idSet is a set of channel ids, bounded: a HangupRequest whose Hangup
// never comes must not grow it forever.
type idSet map[string]struct{}

func (s *idSet) add(id string) {
	if *s == nil || len(*s) > 100000 {
		*s = idSet{}
	}
	(*s)[id] = struct{}{}
}

func (s idSet) has(id string) bool {
	_, ok := s[id]
	return ok
}

func (s idSet) take(id string) bool {
	_, ok := s[id]
	delete(s, id)
	return ok
}

// NewMapper returns a Mapper feeding sink; sender is used for the resync.
// vars lists extra channel variables to pass on (e.g. the direction var).
func NewMapper(ctx context.Context, sink bridge.Sink, sender ListSender, log *slog.Logger, vars ...string) *Mapper {
	if log == nil {
		log = slog.Default()
	}
	m := &Mapper{sink: sink, sender: sender, log: log, ctx: ctx, vars: map[string]bool{"MIXMONITOR_FILENAME": true}}
	// MixMonitor started by the dialplan names its file only in this
	// variable: it reaches the model as the PBX-neutral recording file.
	for _, v := range vars {
		if v != "" {
			m.vars[v] = true
		}
	}
	return m
}

// AttemptFailed implements AttemptHandler: the link is still down, and
// this is why.
func (m *Mapper) AttemptFailed(err error) {
	m.Flush()
	m.sink.LinkDown(err)
}

// Connected implements Handler: the link is up, ask for the full state. The
// list items come back through Message in wire order, so the snapshot is
// applied exactly where it was taken in the stream.
func (m *Mapper) Connected(info ConnInfo) {
	m.Flush()
	m.sink.LinkUp(info.Session)
	m.Resync()
}

// Resync asks for the live channels and the queue members again, on the
// current session (after the engine dropped events). It does not block.
func (m *Mapper) Resync() {
	m.mu.Lock()
	m.seq++
	id := fmt.Sprintf("ctib-resync-%d", m.seq)
	queues := fmt.Sprintf("ctib-queues-%d", m.seq)
	parked := fmt.Sprintf("ctib-parked-%d", m.seq)
	m.resyncID, m.queuesID, m.snapshot, m.listed, m.inBridge = id, queues, nil, 0, nil
	m.mu.Unlock()
	if m.sender == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
		defer cancel()
		a := goami2.NewAction("CoreShowChannels")
		a.AddField("ActionID", id)
		if err := listErr(m.sender.SendList(ctx, a)); err != nil {
			// No list: nothing is released, and what arrives of this one
			// later is not kept (a list that never completes would grow
			// without end).
			m.dropList(id)
			m.log.Warn("ami resync: CoreShowChannels failed; calls that ended while the link was down stay open until it answers (pbx.reconcile_interval asks again)", "err", err)
		}
		// The queue members' states too: agent.state for whatever changed
		// while the link was down, and GET /v1/agents right after a start.
		q := goami2.NewAction("QueueStatus")
		q.AddField("ActionID", queues)
		if err := listErr(m.sender.SendList(ctx, q)); err != nil {
			m.log.Warn("ami resync: QueueStatus failed; agent states follow their next change", "err", err)
		}
		// The parked calls: no channel list says a call waits in a lot.
		// Each answer is a ParkedCall event, read as the live one (after
		// the channels were adopted).
		p := goami2.NewAction("ParkedCalls")
		p.AddField("ActionID", parked)
		if err := listErr(m.sender.SendList(ctx, p)); err != nil {
			m.log.Warn("ami resync: ParkedCalls failed; parked calls are told when retrieved", "err", err)
		}
	}()
}

// listErr is a list action's failure: no answer, or a refusal, which
// Asterisk gives when the manager user lacks the action's class.
func listErr(resp *goami2.Message, _ []*goami2.Message, err error) error {
	if err == nil && resp != nil && !strings.EqualFold(header(resp, "Response"), "Success") {
		err = fmt.Errorf("refused: %q (a permission refusal means the manager user's write= lacks the action's class: CoreShowChannels needs reporting, ParkedCalls call; README \"PBX setup\")", header(resp, "Message"))
	}
	return err
}

// dropList forgets the resync's channel list id, if it is still ours.
func (m *Mapper) dropList(id string) {
	m.mu.Lock()
	if m.resyncID == id {
		m.resyncID, m.snapshot, m.inBridge = "", nil, nil
	}
	m.mu.Unlock()
}

// Disconnected implements Handler.
func (m *Mapper) Disconnected(err error) {
	m.Flush()
	m.mu.Lock()
	m.resyncID, m.queuesID = "", ""
	m.mu.Unlock()
	m.sink.LinkDown(err)
}

// Message implements Handler: msg's event, if any, reaches the sink now.
func (m *Mapper) Message(msg *goami2.Message) {
	m.Add(msg, 0)
	m.Flush()
}

// Flush implements BatchHandler: the events of the messages added since
// the last Flush go to the sink.
func (m *Mapper) Flush() {
	if len(m.pending) > 0 {
		m.sink.ChannelEvents(m.pending)
	}
	m.pending = nil // the sink keeps it
}

// emit queues ev for the next Flush, detached from its frame (else what
// the model keeps pins the whole frame); more is how many messages the
// client still holds behind this one, to size the slice once.
func (m *Mapper) emit(ev bridge.ChannelEvent, more int) {
	if len(m.pending) == cap(m.pending) {
		m.Flush()
		m.pending = make([]bridge.ChannelEvent, 0, min(more+1, maxPending))
	}
	m.pending = append(m.pending, ev)
	// In its slot: Detach on the local would move ev to the heap.
	m.pending[len(m.pending)-1].Detach()
}

// Add implements BatchHandler: msg is mapped, and its event waits for
// the batch's Flush.
func (m *Mapper) Add(msg *goami2.Message, more int) {
	name := header(msg, "Event")
	if name == "" {
		return // action responses are for the waiting caller
	}
	now := eventTime(msg)
	switch name {
	case "CoreShowChannel":
		m.mu.Lock()
		ours := header(msg, "ActionID") == m.resyncID && m.resyncID != ""
		if ours {
			if m.listed++; m.listed > maxListItems {
				m.resyncID, m.snapshot, m.inBridge = "", nil, nil
				m.mu.Unlock()
				m.log.Warn("ami resync: CoreShowChannels listed over the limit; the list is dropped and no call is released", "limit", maxListItems)
				return
			}
		}
		if b := header(msg, "BridgeId"); ours && b != "" {
			// Every member counts, a conference's announcer too
			// (app_confbridge.c conf_announce_channel_push keeps CBAnn;2 in
			// the room's bridge): a room left with two people and its
			// announcer is no two-party call.
			if m.inBridge == nil {
				m.inBridge = map[string]string{}
			}
			m.inBridge[header(msg, "Uniqueid")] = b
		}
		if ours && !noParty(header(msg, "Channel")) {
			// A conference's media channels are no call's party: their
			// events are dropped (translate), so adopting them here would
			// leave a call that never ends.
			ch := channel(msg, "")
			if m.snapshot == nil {
				m.snapshotAt = now
			}
			switch header(msg, "Application") {
			case "AppDial", "AppDial2", "AppQueue":
				// Dialled by the PBX (Dial, an originate, a queue): its
				// side of the call is outbound, as FreeSWITCH says.
				ch.Direction = "outbound"
			case "Queue":
				ch.Listing().Queue, _, _ = strings.Cut(header(msg, "ApplicationData"), ",")
			}
			if d, ok := parseDuration(header(msg, "Duration")); ok {
				ch.Listing().CreatedAt = m.snapshotAt.Add(-d)
			}
			ev := bridge.ChannelEvent{Channel: ch}
			ev.Detach()
			m.snapshot = append(m.snapshot, ev.Channel)
		}
		m.mu.Unlock()
		return
	case "QueueMember":
		// Only QueueStatus answers carry it; ours is the resync's.
		m.mu.Lock()
		ours := header(msg, "ActionID") == m.queuesID && m.queuesID != ""
		m.mu.Unlock()
		if ours {
			m.emit(queueMember(msg, now), more)
		}
		return
	case "CoreShowChannelsComplete":
		m.mu.Lock()
		if header(msg, "ActionID") != m.resyncID || m.resyncID == "" {
			m.mu.Unlock()
			return
		}
		snap, listed, inBridge := m.snapshot, m.listed, m.inBridge
		m.resyncID, m.snapshot, m.inBridge = "", nil, nil
		m.mu.Unlock()
		if n, err := strconv.Atoi(header(msg, "ListItems")); err == nil && n != listed {
			// Asterisk counts what it sent: an item lost (unreadable,
			// dropped) would release a live call as ended.
			m.log.Warn("ami resync: CoreShowChannels said it listed more or fewer channels than arrived readable; the list is not trusted and no call is released",
				"list_items", n, "arrived", listed)
			return
		}
		if snap == nil {
			snap = []bridge.Channel{}
		}
		pairBridged(snap, inBridge)
		// Creation order: Asterisk ids are "epoch.sequence" (CreatedAt from
		// Duration has whole seconds only).
		slices.SortStableFunc(snap, func(a, b bridge.Channel) int { return compareIDs(a.ID, b.ID) })
		m.Flush() // the events before the list's end come before it
		m.sink.Snapshot(snap, now)
		return
	}
	if ev, ok := m.translate(name, msg, now); ok {
		m.emit(ev, more)
	}
}

// Translate maps one AMI event; ok is false for events the model ignores.
func (m *Mapper) translate(name string, msg *goami2.Message, at time.Time) (bridge.ChannelEvent, bool) {
	ev := bridge.ChannelEvent{At: at, Channel: channel(msg, "")}
	if noParty(ev.Channel.Name) {
		return ev, false
	}
	switch name {
	case "Newchannel":
		ev.Kind = bridge.ChanNew
	case "NewCallerid", "NewConnectedLine":
		ev.Kind = bridge.ChanUpdate
	case "Newstate":
		ev.Kind = bridge.ChanUpdate
		if header(msg, "ChannelStateDesc") == "Up" {
			ev.Kind = bridge.ChanAnswer
		}
	case "Newexten":
		ev.Kind = bridge.ChanDialplan
		ev.Context, ev.Exten = header(msg, "Context"), header(msg, "Exten")
		ev.Priority, _ = strconv.Atoi(header(msg, "Priority"))
	case "VarSet":
		ev.Name = header(msg, "Variable")
		if !m.vars[ev.Name] {
			return ev, false
		}
		ev.Kind, ev.Value = bridge.ChanVar, header(msg, "Value")
		if ev.Name == "MIXMONITOR_FILENAME" {
			ev.Name = bridge.VarRecordingFile
		}
	case "DialBegin", "DialEnd":
		ev.Kind = bridge.ChanDial
		if name == "DialEnd" {
			ev.Kind, ev.DialStatus = bridge.ChanDialEnd, header(msg, "DialStatus")
		}
		peer := channel(msg, "Dest")
		ev.Peer = &peer
		if name == "DialBegin" && header(msg, "Channel") == "" {
			// The PBX dialling on its own (Originate: dial.c begin_dial_channel
			// publishes no caller): the number it dialled is only in the dial
			// string (PJSIP/5551234@trunk, PJSIP/trunk/sip:5551234@host); the
			// channel's caller id is the Originate's CallerID.
			ev.Exten = dialledNumber(header(msg, "DialString"))
		}
	case "LocalBridge":
		ev.Kind = bridge.ChanLocalPair
		ev.Channel = channel(msg, "LocalOne")
		peer := channel(msg, "LocalTwo")
		ev.Peer = &peer
	case "BridgeEnter", "BridgeLeave":
		if header(msg, "BridgeTechnology") == "holding_bridge" {
			// A holding bridge (a parking lot's, app_agent_pool's, BridgeWait's)
			// holds channels that hear music or an announcer, never each
			// other: one per lot or pool, shared by unrelated calls, it
			// joins none and connects nobody (ParkedCall tells of a park).
			return ev, false
		}
		ev.Kind = bridge.ChanBridgeEnter
		if name == "BridgeLeave" {
			ev.Kind = bridge.ChanBridgeLeave
		}
		ev.Bridge = header(msg, "BridgeUniqueid")
		// app_confbridge creates its rooms with itself as the creator
		// (ast_bridge_base_new(..., app, conference_name, ...)).
		ev.Conference = header(msg, "BridgeCreator") == "ConfBridge"
	case "Hold", "MusicOnHoldStart":
		ev.Kind = bridge.ChanHold
		// A device's hold names the music it asks for (chan_pjsip passes
		// the endpoint's moh_suggest); the transfer keys' hold names none
		// (bridge_basic.c: ast_bridge_channel_write_hold(..., NULL)).
		ev.FeatureHold = name == "Hold" && header(msg, "MusicClass") == ""
		ev.Music = name == "MusicOnHoldStart"
	case "Unhold", "MusicOnHoldStop":
		ev.Kind = bridge.ChanUnhold
		ev.Music = name == "MusicOnHoldStop"
	case "HangupRequest":
		// Raised when the channel's own driver queues a hangup: its device
		// or network ended the call (BYE, CANCEL, a refusal). A hangup the
		// PBX decides is a SoftHangupRequest or none at all.
		ev.Kind = bridge.ChanHangupRequest
		// Cause: the channel's hangup cause when the driver queued it
		// (channel.c ast_queue_hangup), a refusal's mapped SIP response.
		ev.Cause, _ = strconv.Atoi(header(msg, "Cause"))
		m.requested.add(strings.Clone(ev.Channel.ID)) // kept until its Hangup: not the frame
	case "Hangup":
		ev.Kind = bridge.ChanHangup
		ev.Cause, _ = strconv.Atoi(header(msg, "Cause"))
		ev.CauseText = header(msg, "Cause-txt")
		ev.HangupSource = bridge.HangupByPBX
		if m.requested.take(ev.Channel.ID) {
			ev.HangupSource = bridge.HangupByEndpoint
		}
	case "ParkedCall", "ParkedCallSwap":
		// ParkedCallSwap: the channel parked on the call's behalf (the
		// Local channel of an attended transfer to the lot) was swapped
		// for the party it stood for (res_parking's parking_channel_swap).
		ev.Kind = bridge.ChanPark
		ev.Channel = channel(msg, "Parkee")
		ev.Exten, ev.Context = header(msg, "ParkingSpace"), header(msg, "Parkinglot")
	case "UnParkedCall":
		ev.Kind = bridge.ChanUnpark
		ev.Channel = channel(msg, "Parkee")
		peer := channel(msg, "Retriever")
		ev.Peer = &peer
	case "Pickup":
		ev.Kind = bridge.ChanPickup
		peer := channel(msg, "Target")
		ev.Peer = &peer
	case "Rename":
		ev.Kind, ev.Name = bridge.ChanRename, header(msg, "Newname")
	case "BlindTransfer":
		ev.Kind, ev.Named = bridge.ChanTransfer, true
		ev.Channel = channel(msg, "Transferer")
		peer := channel(msg, "Transferee")
		ev.Peer = &peer
		ev.Exten, ev.Context = header(msg, "Extension"), header(msg, "Context")
		if r := header(msg, "Result"); r != "" && r != "Success" {
			// Fail, Invalid, Not Permitted (stasis_bridges.c): nothing
			// moved. The feature reports Invalid when its transferee hung
			// up while the transferer keyed the number.
			return ev, false
		}
	case "AttendedTransfer":
		ev.Kind, ev.Attended, ev.Named = bridge.ChanTransfer, true, true
		ev.Channel = channel(msg, "OrigTransferer")
		peer := channel(msg, "Transferee")
		ev.Peer = &peer
		// The target: the party the second transferer was talking to (its
		// connected line), when the PBX does not name a target channel.
		// A number Asterisk does not know is "<unknown>" on the wire
		// (manager.c ast_manager_build_channel_state_string): no number.
		for _, f := range []string{"TransferTargetCallerIDNum", "SecondTransfererConnectedLineNum", "SecondTransfererExten", "TransferTargetExten"} {
			if v := header(msg, f); v != "" && v != "<unknown>" {
				ev.Exten = v
				break
			}
		}
		if header(msg, "Result") != "" && header(msg, "Result") != "Success" {
			return ev, false
		}
	case "QueueCallerJoin":
		ev.Kind, ev.Queue = bridge.ChanQueueJoin, header(msg, "Queue")
	case "QueueCallerLeave":
		ev.Kind, ev.Queue = bridge.ChanQueueLeave, header(msg, "Queue")
	case "QueueCallerAbandon":
		ev.Kind, ev.Queue = bridge.ChanQueueAbandon, header(msg, "Queue")
		// app_queue reports the same abandon whoever ended the wait. A
		// caller that hung up has its HangupRequest first (its driver
		// queued the hangup app_queue then read); without one the PBX
		// ended it (the queue's timeout, a manager Hangup, a Redirect
		// away), even on a link too young to have shown any request.
		ev.Reason = bridge.AbandonTimeout
		if m.requested.has(ev.Channel.ID) {
			ev.Reason = bridge.AbandonCallerHungUp
		}
	case "AgentCalled", "AgentConnect":
		ev.Kind = bridge.ChanAgentCalled
		if name == "AgentConnect" {
			ev.Kind = bridge.ChanAgentConnect
		}
		peer := channel(msg, "Dest")
		ev.Peer = &peer
		ev.Queue, ev.Member, ev.Interface = header(msg, "Queue"), header(msg, "MemberName"), header(msg, "Interface")
		ev.Agent = memberAgent(ev.Interface)
		ev.RingsLater = strings.HasPrefix(ev.Interface, "Local/")
	case "MixMonitorStart":
		ev.Kind = bridge.ChanRecordStart
	case "MixMonitorStop":
		ev.Kind = bridge.ChanRecordStop
	case "OriginateResponse":
		if strings.EqualFold(header(msg, "Response"), "Success") {
			return ev, false
		}
		ev.Kind, ev.ActionID = bridge.ChanOriginateFailed, header(msg, "ActionID")
		ev.Cause, ev.CauseText = originateCause(header(msg, "Reason"))
	case "QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause":
		ev.Kind = bridge.ChanAgentState
		ev.Queue, ev.Member = header(msg, "Queue"), header(msg, "MemberName")
		ev.Interface = header(msg, "Interface")
		ev.Agent = memberAgent(ev.Interface)
		ev.Paused = header(msg, "Paused") == "1"
		ev.Reason = header(msg, "PausedReason")
		ev.Status = memberState(name, header(msg, "Status"), ev.Paused)
	default:
		return ev, false
	}
	return ev, true
}

// noParty reports whether name is a channel that is never a party of a
// call: a conference's media channels, or the Surrogate/<name> of a yank.
// channel.c ast_channel_yank (AMI Bridge, Bridge(), ast_bridge_add_channel
// of a channel in no bridge) allocates "Surrogate/<name>" and masquerades
// the channel into it: the live channel keeps its name and uniqueid, and
// the old object, renamed Surrogate/<name> with the surrogate's uniqueid,
// only hangs up (a zombie). Taken for a leg, it joins the call by its
// linked id and makes the call look like two parties for a moment.
func noParty(name string) bool {
	return confMedia(name) || strings.HasPrefix(name, "Surrogate/")
}

// confMedia reports whether name is one of app_confbridge's own media
// channels (CBAnn announcer, CBRec recorder: conf_chan_announce.c,
// conf_chan_record.c): the room's plumbing, never a party of a call.
func confMedia(name string) bool {
	return strings.HasPrefix(name, "CBAnn/") || strings.HasPrefix(name, "CBRec/")
}

// channel reads the channel fields with a prefix ("", "Dest", "LocalOne").
func channel(msg *goami2.Message, prefix string) bridge.Channel {
	ch := bridge.Channel{
		ID:            header(msg, prefix+"Uniqueid"),
		Name:          header(msg, prefix+"Channel"),
		LinkedID:      header(msg, prefix+"Linkedid"),
		CallerNum:     header(msg, prefix+"CallerIDNum"),
		CallerName:    header(msg, prefix+"CallerIDName"),
		ConnectedNum:  header(msg, prefix+"ConnectedLineNum"),
		ConnectedName: header(msg, prefix+"ConnectedLineName"),
		Context:       header(msg, prefix+"Context"),
		Exten:         header(msg, prefix+"Exten"),
		State:         header(msg, prefix+"ChannelStateDesc"),
		AccountCode:   header(msg, prefix+"AccountCode"), // a tenant rule's source
	}
	if ch.ID == "<unknown>" {
		ch.ID = ""
	}
	named(&ch)
	return ch
}

// eventTime reads the Timestamp header (timestampevents=yes), else now.
func eventTime(msg *goami2.Message) time.Time {
	if ts := header(msg, "Timestamp"); ts != "" {
		if f, err := strconv.ParseFloat(ts, 64); err == nil && f > 0 {
			sec := int64(f)
			return time.Unix(sec, int64((f-float64(sec))*1e9))
		}
	}
	return time.Now()
}

// pairBridged pairs the two channels a listed bridge holds (a two-party
// call: CoreShowChannel's BridgeId): each one's BridgedWith is the other.
// A bridge of one or of three and more listed members (a conference with
// its announcer, a three-way) pairs nobody.
func pairBridged(snap []bridge.Channel, inBridge map[string]string) {
	count := map[string]int{}
	for _, b := range inBridge {
		count[b]++ // every listed member, those that are no party too
	}
	members := map[string][]int{}
	for i := range snap {
		if b := inBridge[snap[i].ID]; b != "" {
			members[b] = append(members[b], i)
		}
	}
	for b, m := range members {
		if len(m) == 2 && count[b] == 2 {
			snap[m[0]].Listing().BridgedWith = snap[m[1]].ID
			snap[m[1]].Listing().BridgedWith = snap[m[0]].ID
		}
	}
}

// dialledNumber is the number a dial string names: the user part of
// number@endpoint or of a URI (endpoint/sip:number@host, endpoint/number).
// A dial string that names no number (an endpoint alone: 100, trunk) gives
// itself when it is digits, else "".
func dialledNumber(ds string) string {
	if i := strings.LastIndexByte(ds, '/'); i >= 0 {
		ds = ds[i+1:]
	}
	for _, p := range []string{"sip:", "sips:", "tel:"} {
		ds = strings.TrimPrefix(ds, p)
	}
	if i := strings.IndexAny(ds, "@;"); i >= 0 {
		ds = ds[:i]
	}
	if n := strings.TrimPrefix(ds, "+"); n == "" || strings.Trim(n, "0123456789*#") != "" {
		return ""
	}
	return ds
}

// parseDuration reads CoreShowChannel's HH:MM:SS.
func parseDuration(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var total int
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, false
		}
		total = total*60 + n
	}
	return time.Duration(total) * time.Second, true
}

// originateCause maps OriginateResponse's Reason (an AST_CONTROL value) to
// a Q.850 cause.
func originateCause(reason string) (int, string) {
	switch reason {
	case "1":
		return 16, "Hangup before answer"
	case "3":
		return 19, "No answer from user (user alerted)"
	case "5":
		return 17, "User busy"
	case "8":
		return 34, "Congestion"
	}
	return 3, "No route to destination"
}

// queueMember reads one member of a QueueStatus answer, which names its
// fields unlike the QueueMember* events (Name, Location).
func queueMember(msg *goami2.Message, at time.Time) bridge.ChannelEvent {
	ev := bridge.ChannelEvent{Kind: bridge.ChanAgentState, At: at, Queue: header(msg, "Queue"),
		Member: header(msg, "Name"), Interface: header(msg, "Location"), Paused: header(msg, "Paused") == "1",
		Reason: header(msg, "PausedReason"), Agent: memberAgent(header(msg, "Location"))}
	ev.Status = memberState("QueueMember", header(msg, "Status"), ev.Paused)
	return ev
}

// memberState maps a queue member's device status to an agent state.
func memberState(event, status string, paused bool) string {
	switch {
	case event == "QueueMemberRemoved":
		return "logged_out"
	case paused:
		return "paused"
	}
	switch status {
	case "1":
		return "available"
	case "2", "3", "6", "7", "8":
		return "busy"
	case "4", "5":
		return "unavailable"
	}
	return "logged_in"
}

// compareIDs orders Asterisk "epoch.seq" ids numerically (creation
// order), others as strings.
func compareIDs(a, b string) int {
	ae, as, aok := strings.Cut(a, ".")
	be, bs, bok := strings.Cut(b, ".")
	if aok && bok {
		x, e1 := strconv.ParseInt(ae, 10, 64)
		y, e2 := strconv.ParseInt(be, 10, 64)
		p, e3 := strconv.ParseInt(as, 10, 64)
		q, e4 := strconv.ParseInt(bs, 10, 64)
		if e1 == nil && e2 == nil && e3 == nil && e4 == nil {
			if x != y {
				return cmp.Compare(x, y)
			}
			return cmp.Compare(p, q)
		}
	}
	return strings.Compare(a, b)
}
