// Package bridge holds ctibridge's domain: the call model, the events it
// emits, and the interfaces that the adapters (ami, esl, store, webhooks,
// http) implement or consume. It imports none of them.
package bridge

import (
	"encoding/json"
	"time"
)

// Event types sent to CRMs. They are part of the public webhook contract.
const (
	EventCallRinging      = "call.ringing"    // screen pop: an agent's device rings
	EventCallRingEnded    = "call.ring_ended" // that agent's device stopped ringing without answering
	EventCallAnswered     = "call.answered"
	EventCallHeld         = "call.held"
	EventCallResumed      = "call.resumed"
	EventCallTransferred  = "call.transferred"
	EventCallEnded        = "call.ended"
	EventCallFailed       = "call.failed" // an originate (click-to-call) that never connected
	EventCallQueued       = "call.queued"
	EventCallAbandoned    = "call.abandoned"
	EventRecordingStarted = "recording.started"
	EventRecordingReady   = "recording.ready"
	EventAgentState       = "agent.state"
	EventWebhookTest      = "webhook.test"
)

// EventTypes lists every type a subscription filter can match.
var EventTypes = []string{
	EventCallRinging, EventCallRingEnded, EventCallAnswered, EventCallHeld,
	EventCallResumed, EventCallTransferred, EventCallEnded, EventCallFailed,
	EventCallQueued, EventCallAbandoned, EventRecordingStarted,
	EventRecordingReady, EventAgentState, EventWebhookTest,
}

// Event is one moment a CRM cares about. Its ID is stable across retries and
// equals the webhook-id header; Sequence orders the events of one
// conversation (1, 2, 3, ...).
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	OccurredAt     time.Time `json:"occurred_at"`
	Sequence       int64     `json:"sequence"`
	PBX            string    `json:"pbx"`
	ConversationID string    `json:"conversation_id,omitempty"`
	Call           *Call     `json:"call,omitempty"`
	Agent          *Agent    `json:"agent,omitempty"` // the agent this event is about (ringing, ring_ended, answered, agent.state)
	// Party says whose device rings or answers (call.ringing,
	// call.answered): absent for the agent's own device, "customer" for
	// the far party of a call an agent placed (Agent is then the agent
	// who placed it), "external" for an outside number a call was handed
	// to (Number says which).
	Party      string     `json:"party,omitempty"`
	Number     string     `json:"number,omitempty"`
	Park       *Park      `json:"park,omitempty"` // call.held of a parked call: where it waits
	Transfer   *Transfer  `json:"transfer,omitempty"`
	Recording  *Recording `json:"recording,omitempty"`
	AgentState *AgentStat `json:"agent_state,omitempty"`
	// Resynced marks an event the bridge inferred after a PBX link loss or a
	// restart rather than saw happen (e.g. a call that ended while it was
	// disconnected).
	Resynced bool `json:"resynced,omitempty"`
	// ResyncReason says why a resynced call.ended was inferred: link_lost
	// (it ended while the PBX link was down; ended_at is when the link was
	// lost) or reconciled (the periodic check found its channels gone).
	ResyncReason string `json:"resync_reason,omitempty"`
	// Tenant owns the event (its call's, or its agent's); omitted for
	// the operator's.
	Tenant string `json:"tenant,omitempty"`
}

// Direction of a conversation, seen from the organisation.
type Direction string

const (
	DirectionInbound  Direction = "inbound"
	DirectionOutbound Direction = "outbound"
	DirectionInternal Direction = "internal"
	DirectionUnknown  Direction = "unknown"
)

// Disposition is how a conversation ended.
type Disposition string

const (
	DispositionAnswered  Disposition = "answered"
	DispositionNoAnswer  Disposition = "no_answer"
	DispositionBusy      Disposition = "busy"
	DispositionFailed    Disposition = "failed"
	DispositionCancelled Disposition = "cancelled"
)

// Call is the CRM's view of a conversation at the moment of an event.
type Call struct {
	ID          string            `json:"id"`
	Tenant      string            `json:"tenant,omitempty"` // set once, from the tenant rules, before the first event
	Direction   Direction         `json:"direction"`
	State       string            `json:"state"` // ringing, queued, talking, held, ended
	Caller      Party             `json:"caller"`
	Callee      Party             `json:"callee"`
	Agent       *Agent            `json:"agent,omitempty"`
	Queue       string            `json:"queue,omitempty"`
	StartedAt   time.Time         `json:"started_at"`
	AnsweredAt  *time.Time        `json:"answered_at,omitempty"`
	EndedAt     *time.Time        `json:"ended_at,omitempty"`
	DurationS   *int64            `json:"duration_s,omitempty"`
	TalkS       *int64            `json:"talk_s,omitempty"`
	WaitS       *int64            `json:"wait_s,omitempty"`
	Disposition Disposition       `json:"disposition,omitempty"`
	HangupCause *HangupCause      `json:"hangup_cause,omitempty"`
	HangupBy    string            `json:"hangup_by,omitempty"` // caller, callee, agent, system, api (see README)
	Recording   *Recording        `json:"recording,omitempty"`
	Variables   map[string]string `json:"variables,omitempty"`
}

// Party is one end of a call. Number is kept exactly as the PBX gave it;
// E164 is empty when the number cannot be parsed.
type Party struct {
	Number string `json:"number"`
	Name   string `json:"name,omitempty"`
	E164   string `json:"e164"`
}

// Agent is an internal extension (a person's phone).
type Agent struct {
	Extension string `json:"extension"`
	Name      string `json:"name,omitempty"`
}

// HangupCause is the Q.850 cause of a release.
type HangupCause struct {
	Code int    `json:"code"`
	Text string `json:"text"`
}

// Park is where a parked call waits to be retrieved.
type Park struct {
	Slot string `json:"slot"`
	Lot  string `json:"lot,omitempty"`
}

// PartyCustomer marks ringing/answered events about the far party of a
// call an agent placed.
const PartyCustomer = "customer"

// PartyExternal marks ringing/ring_ended/answered events about an outside
// number a call was transferred to (a mobile, another company): no
// agent's device, and its answer does not make the call answered again.
const PartyExternal = "external"

// Transfer describes who moved a call where.
type Transfer struct {
	Mode string `json:"mode"` // blind or attended
	From *Agent `json:"from,omitempty"`
	// By is "customer" when the customer's own phone transferred the call
	// (a REFER from the far end): From is then empty.
	By string `json:"by,omitempty"`
	To string `json:"to"`
}

// Recording is a call recording's file on the PBX.
type Recording struct {
	Path      string `json:"path"`
	DurationS *int64 `json:"duration_s,omitempty"`
}

// AgentStat is an agent's state in a queue.
type AgentStat struct {
	Queue  string `json:"queue,omitempty"`
	State  string `json:"state"` // logged_in, logged_out, paused, available, busy, unavailable
	Reason string `json:"reason,omitempty"`
}

// Record is an event as committed to the outbox: the fields the store
// indexes and the exact body every delivery attempt sends, so a retry is
// byte-identical to the first try.
type Record struct {
	Seq            int64 // outbox position, assigned by the store on commit
	ID             string
	Type           string
	ConversationID string
	Sequence       int64
	OccurredAt     time.Time
	Payload        []byte
}

// NewRecord marshals e once into its wire body.
func NewRecord(e Event) (Record, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return Record{}, err
	}
	return Record{ID: e.ID, Type: e.Type, ConversationID: e.ConversationID,
		Sequence: e.Sequence, OccurredAt: e.OccurredAt, Payload: body}, nil
}
