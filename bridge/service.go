package bridge

import (
	"context"
	"time"
)

// CallService is every command a CRM gives about calls, and the live view
// of them. The HTTP layer and the connectors call it; it validates each
// command once, keeps the call model's bookkeeping (a click-to-call's
// pre-assigned ids, a hangup asked over the API) and drives the PBX.
//
// A context carrying an agent-scoped Principal sees and touches only that
// agent's calls: any other call is ENOTFOUND.
type CallService interface {
	// Place is click-to-call: ring req.Agent, then dial req.To. It returns
	// once the PBX took the request; what follows comes as events. On an
	// error that does not prove nothing was sent (NothingSent), the
	// returned PlacedCall still carries the id the call would have.
	Place(ctx context.Context, req PlaceCall) (PlacedCall, error)
	// Check validates a click-to-call in full (the shared rules, then the
	// PBX adapter's) without registering or dialling anything.
	Check(ctx context.Context, req PlaceCall) error
	Hangup(ctx context.Context, callID string) error
	Hold(ctx context.Context, callID string, on bool) error
	// Record starts or stops recording the call; a start returns the file
	// name asked of the PBX.
	Record(ctx context.Context, callID string, start bool) (file string, err error)
	SendDTMF(ctx context.Context, callID, digits string) error
	Transfer(ctx context.Context, callID string, req TransferRequest) (CallTransfer, error)
	// FinishTransfer completes (joins the customer to the consulted party)
	// or cancels an attended transfer started with Transfer.
	FinishTransfer(ctx context.Context, transferID string, complete bool) (CallTransfer, error)
	// LiveCalls are the calls in progress.
	LiveCalls(ctx context.Context) []Call
	// Call is one call, live, ended or still being dialled (pending: no
	// channel of it exists yet).
	Call(ctx context.Context, callID string) (c Call, open, pending bool, err error)
}

// AgentService is agents' queue membership and their state.
type AgentService interface {
	// Act logs an agent in or out of a queue or (un)pauses it; the new
	// state arrives later as agent.state.
	Act(ctx context.Context, op QueueOp) error
	// Agents are the agents' latest states.
	Agents(ctx context.Context) []AgentView
}

// PlaceCall is a click-to-call request.
type PlaceCall struct {
	// ConversationID is a pre-assigned id (a CRM registered the call
	// before asking for it); "" gets a new one.
	ConversationID string
	Agent          string
	To             string
	CallerID       string
	Variables      map[string]string
	// RingTimeout is how long the agent's phone rings (5 s to 5 min); 0:
	// the adapter's default.
	RingTimeout time.Duration
}

// PlacedCall is a click-to-call the PBX took.
type PlacedCall struct {
	ID     string `json:"id"`
	Status string `json:"status"` // dialing
	Agent  string `json:"agent"`
	To     string `json:"to"`
}

// TransferRequest moves a call: blind (the customer goes to To, the agent
// is released) or attended (the agent consults To while the customer
// waits).
type TransferRequest struct {
	To   string `json:"to"`
	Mode string `json:"mode"` // blind (default) or attended
}

// CallTransfer is a transfer under way or done.
type CallTransfer struct {
	ID     string `json:"transfer_id,omitempty"` // attended only
	CallID string `json:"id"`
	Mode   string `json:"mode"`
	To     string `json:"to"`
}
