package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ConversationReader reads a conversation from the history (the store).
type ConversationReader interface {
	Conversation(ctx context.Context, id string) (ConversationRecord, error)
}

// CallServiceOptions configure NewCallService.
type CallServiceOptions struct {
	// PBX carries the commands out; nil: every command is EUNAVAILABLE.
	PBX PBX
	// History tells an ended call from one never seen.
	History ConversationReader
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// NewCallService returns the CallService over engine's call model.
func NewCallService(engine *Engine, opts CallServiceOptions) CallService {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &callService{engine: engine, pbx: opts.PBX, history: opts.History, now: opts.Now,
		transfers: map[string]*attended{}}
}

type callService struct {
	engine  *Engine
	pbx     PBX
	history ConversationReader
	now     func() time.Time

	lastPrune atomic.Int64 // unix ns of the last originate prune

	mu        sync.Mutex
	transfers map[string]*attended
}

// originateTTL is how long a click-to-call's pre-assigned ids are kept for
// its channels: far beyond the longest ring (5 minutes).
const originateTTL = time.Hour

// transferTTL bounds an attended transfer nobody finished over the API
// (the agent did, from the phone): it is dropped then, or when its call
// ends, whichever comes first.
const transferTTL = 2 * time.Hour

type attended struct {
	CallTransfer
	agent   Channel
	consult Channel // the adapter's consultation leg, when it names one
	at      time.Time
	// The call and its agents when the transfer began: a key that could
	// not see the call then finds no such transfer, even once the call
	// has ended and left the call model.
	call   Call
	agents []string
}

// link returns the PBX if the link is up: a command is never queued for a
// link that is down.
func (s *callService) link() (PBX, error) {
	if s.pbx == nil {
		return nil, &Error{Code: EUNAVAILABLE, NotSent: true, Message: "commands are not available: no PBX commander is configured"}
	}
	if !s.pbx.Connected() {
		return nil, &Error{Code: EUNAVAILABLE, NotSent: true, Message: "the PBX link is down: command not sent (retry when /readyz says ready)"}
	}
	return s.pbx, nil
}

// do runs fn on the engine goroutine.
func (s *callService) do(ctx context.Context, fn func(*Tracker)) error {
	if err := s.engine.Do(ctx, fn); err != nil {
		return &Error{Code: EUNAVAILABLE, NotSent: true, Message: "the call model did not answer in time (is the store writable?)"}
	}
	return nil
}

// Validate checks a click-to-call's values: the rules every PBX shares.
// The adapter's own (CheckOriginate) come after.
func (r PlaceCall) Validate() error {
	if r.ConversationID != "" {
		if err := CheckText("conversation_id", r.ConversationID, 64, ""); err != nil {
			return err
		}
	}
	if err := CheckExtension("agent", r.Agent); err != nil {
		return err
	}
	if err := CheckNumber("to", r.To); err != nil {
		return err
	}
	if r.CallerID != "" {
		if _, err := ParseCallerID("caller_id", r.CallerID); err != nil {
			return err
		}
	}
	if len(r.Variables) > 32 {
		return FieldError("variables", "must hold at most 32 variables")
	}
	for k, v := range r.Variables {
		if err := CheckVarName("variables", k); err != nil {
			return err
		}
		if err := CheckText("variables."+k, v, 256, ""); err != nil {
			return err
		}
	}
	if r.RingTimeout != 0 && (r.RingTimeout < 5*time.Second || r.RingTimeout > 300*time.Second) {
		return FieldError("timeout_s", "must be from 5 to 300 seconds")
	}
	return nil
}

func (r PlaceCall) originate() *Originate {
	return &Originate{ConversationID: r.ConversationID, Agent: r.Agent, To: r.To, CallerID: r.CallerID,
		Variables: r.Variables, RingTimeout: r.RingTimeout}
}

// Check implements CallService.
func (s *callService) Check(ctx context.Context, req PlaceCall) error {
	if err := req.Validate(); err != nil {
		return err
	}
	if a := agentScope(ctx); a != "" && req.Agent != a {
		return &Error{Code: EFORBIDDEN, Field: "agent", Message: "an agent key places calls for its own extension only (" + a + ")"}
	}
	if tn := TenantOf(ctx); tn != "" {
		// A tenant key dials only for its own tenant's agents; another
		// tenant's extension does not exist for it.
		var at, tt string
		var known bool
		if err := s.do(ctx, func(t *Tracker) {
			at = t.agentTenant(req.Agent)
			tt, known = t.knownAgentTenant(req.To)
		}); err != nil {
			return err
		}
		if at != tn {
			return &Error{Code: ENOTFOUND, Field: "agent", Message: "no agent " + req.Agent + " for this key"}
		}
		// Nor dials another tenant's agent (the PBX's one context).
		if known && tt != tn {
			return &Error{Code: ENOTFOUND, Field: "to", Message: "no agent " + req.To + " for this key"}
		}
	}
	if s.pbx != nil {
		return s.pbx.CheckOriginate(req.originate())
	}
	return nil
}

// Place registers the click-to-call with the call model, with the channel
// ids it will have, before the PBX is asked: the first event of the call
// then already belongs to a known, outbound conversation.
func (s *callService) Place(ctx context.Context, req PlaceCall) (PlacedCall, error) {
	if err := s.Check(ctx, req); err != nil {
		return PlacedCall{}, err
	}
	pbx, err := s.link()
	if err != nil {
		return PlacedCall{}, err
	}
	o := req.originate()
	if o.ConversationID == "" {
		o.ConversationID = NewID("conv_")
	}
	o.ActionID, o.AgentChannelID, o.OtherChannelID = newUUID(), newUUID(), newUUID()
	o.RequestedAt = s.now().UTC()
	o.Tenant = TenantOf(ctx)
	// The tracker never drops what it registers for an originate; prune
	// the stale entries now and then, here, where they are added.
	prune := false
	if last := s.lastPrune.Load(); o.RequestedAt.UnixNano()-last > int64(time.Minute) {
		prune = s.lastPrune.CompareAndSwap(last, o.RequestedAt.UnixNano())
	}
	if err := s.do(ctx, func(t *Tracker) {
		if prune {
			t.pruneOriginates(o.RequestedAt.Add(-originateTTL))
		}
		t.expectOriginate(o)
	}); err != nil {
		return PlacedCall{}, err
	}
	placed := PlacedCall{ID: o.ConversationID, Status: "dialing", Agent: o.Agent, To: o.To}
	if err := pbx.Originate(ctx, o); err != nil {
		// A refusal dialled nothing: no channel of it will come. A lost
		// link or a timeout may have dialled: keep it until pruned.
		if NothingSent(err) {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.do(fctx, func(t *Tracker) { t.forgetOriginate(o) })
			cancel()
			return PlacedCall{}, err
		}
		return placed, err
	}
	return placed, nil
}

// lookup finds the live channels of a call: ENOTFOUND for a call never
// seen (or not the agent's), ECONFLICT for one that has ended or is still
// being dialled.
func (s *callService) lookup(ctx context.Context, id string) (CallChannels, error) {
	var cc CallChannels
	var ok, pending bool
	var o Originate
	if err := s.do(ctx, func(t *Tracker) {
		if cc, ok = t.CallChannels(id); !ok {
			o, pending = t.pendingOriginate(id)
		}
	}); err != nil {
		return cc, err
	}
	notFound := &Error{Code: ENOTFOUND, Field: "id", Message: "no call with id " + id}
	switch {
	case ok && !SeesCall(ctx, cc.Call, cc.Agents):
		return cc, notFound
	case pending && !SeesAgentIn(ctx, o.Agent, o.Tenant):
		return cc, notFound
	case pending:
		return cc, Errorf(ECONFLICT, "call %s is still being dialled: no channel of it exists yet", id)
	case !ok:
		rec, err := s.conversation(ctx, id)
		if err != nil {
			return cc, err
		}
		if !SeesCall(ctx, rec.Call, nil) {
			return cc, notFound
		}
		return cc, Errorf(ECONFLICT, "call %s has ended", id)
	case cc.Ended:
		return cc, Errorf(ECONFLICT, "call %s has ended", id)
	}
	return cc, nil
}

func (s *callService) conversation(ctx context.Context, id string) (ConversationRecord, error) {
	if s.history == nil {
		return ConversationRecord{}, &Error{Code: ENOTFOUND, Field: "id", Message: "no call with id " + id}
	}
	rec, err := s.history.Conversation(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return rec, &Error{Code: ENOTFOUND, Field: "id", Message: "no call with id " + id}
	}
	return rec, err
}

// party is the channel a whole-call command acts on: the customer's, or
// before there is one (a click-to-call still ringing the agent), the
// agent's.
func (cc CallChannels) party() *Channel {
	if cc.Customer != nil {
		return cc.Customer
	}
	return cc.Agent
}

// Hangup releases the call: the customer's release ends the whole call;
// before there is one (a click-to-call still ringing the agent), the
// agent's.
func (s *callService) Hangup(ctx context.Context, id string) error {
	pbx, err := s.link()
	if err != nil {
		return err
	}
	cc, err := s.lookup(ctx, id)
	if err != nil {
		return err
	}
	ch := cc.party()
	if ch == nil && len(cc.All) > 0 {
		ch = &cc.All[0]
	}
	if ch == nil {
		return Errorf(ECONFLICT, "call %s has no live channel", id)
	}
	// Said before the command: the PBX's events may come before its answer.
	if err := s.do(ctx, func(t *Tracker) { t.expectHangup(id) }); err != nil {
		return err
	}
	if err := pbx.Hangup(ctx, *ch); err != nil {
		_ = s.do(context.WithoutCancel(ctx), func(t *Tracker) { t.forgetHangup(id) })
		return err
	}
	return nil
}

// Hold puts the agent's leg on hold (the customer hears music) or takes
// it off; call.held / call.resumed follow from the PBX.
func (s *callService) Hold(ctx context.Context, id string, on bool) error {
	action := map[bool]string{true: "hold", false: "resume"}[on]
	// A PBX that cannot hold says so whatever the call's state: "not yet"
	// would promise that hold works later.
	if s.pbx != nil {
		if err := s.pbx.CanHold(); err != nil {
			return err
		}
	}
	pbx, err := s.link()
	if err != nil {
		return err
	}
	cc, err := s.lookup(ctx, id)
	if err != nil {
		return err
	}
	if cc.Agent == nil {
		return Errorf(ECONFLICT, "no agent has answered call %s yet: nothing to %s", id, action)
	}
	return pbx.Hold(ctx, *cc.Agent, on)
}

// Record starts or stops a recording of the call. The PBX puts a relative
// name in its own recordings directory and reports the full path in
// recording.started.
func (s *callService) Record(ctx context.Context, id string, start bool) (string, error) {
	pbx, err := s.link()
	if err != nil {
		return "", err
	}
	cc, err := s.lookup(ctx, id)
	if err != nil {
		return "", err
	}
	ch := cc.party()
	if ch == nil {
		return "", Errorf(ECONFLICT, "call %s has no party to record yet", id)
	}
	file := id + "-" + s.now().UTC().Format("20060102T150405Z") + ".wav"
	if err := pbx.Record(ctx, *ch, start, file); err != nil {
		return "", err
	}
	if !start {
		file = ""
	}
	return file, nil
}

// SendDTMF plays digits to the customer.
func (s *callService) SendDTMF(ctx context.Context, id, digits string) error {
	if err := CheckDTMF("digits", digits); err != nil {
		return err
	}
	pbx, err := s.link()
	if err != nil {
		return err
	}
	cc, err := s.lookup(ctx, id)
	if err != nil {
		return err
	}
	if cc.Customer == nil {
		return Errorf(ECONFLICT, "call %s has no customer leg to send digits to", id)
	}
	return pbx.SendDTMF(ctx, *cc.Customer, digits)
}

// Validate checks a transfer and fills in the default mode (blind).
func (r *TransferRequest) Validate() error {
	if err := CheckExtension("to", r.To); err != nil {
		return err
	}
	if r.Mode == "" {
		r.Mode = "blind"
	}
	if r.Mode != "blind" && r.Mode != "attended" {
		return FieldError("mode", "must be blind or attended")
	}
	return nil
}

// Transfer moves a call, blind or attended. An attended transfer is kept
// (in memory: after a restart the agent finishes it from the phone) until
// it is finished, its call ends, or transferTTL passes.
func (s *callService) Transfer(ctx context.Context, id string, req TransferRequest) (CallTransfer, error) {
	if err := req.Validate(); err != nil {
		return CallTransfer{}, err
	}
	pbx, err := s.link()
	if err != nil {
		return CallTransfer{}, err
	}
	cc, err := s.lookup(ctx, id)
	if err != nil {
		return CallTransfer{}, err
	}
	if tn := TenantOf(ctx); tn != "" {
		// The transfer context is the PBX's one for every tenant: a tenant
		// key must not ring another tenant's agent (its phone would also be
		// learned as this tenant's, handing that agent over).
		var at string
		var known bool
		if err := s.do(ctx, func(t *Tracker) { at, known = t.knownAgentTenant(req.To) }); err != nil {
			return CallTransfer{}, err
		}
		if known && at != tn {
			return CallTransfer{}, &Error{Code: ENOTFOUND, Field: "to", Message: "no agent " + req.To + " for this key"}
		}
	}
	tr := CallTransfer{CallID: cc.Call.ID, Mode: req.Mode, To: req.To}
	if req.Mode == "blind" {
		if cc.Customer == nil {
			return CallTransfer{}, Errorf(ECONFLICT, "call %s has no customer leg to transfer", id)
		}
		return tr, pbx.BlindTransfer(ctx, *cc.Customer, req.To)
	}
	if cc.Agent == nil {
		return CallTransfer{}, Errorf(ECONFLICT, "no agent has answered call %s: there is no one to consult", id)
	}
	consult, err := pbx.AttendedTransfer(ctx, *cc.Agent, req.To)
	if err != nil {
		return CallTransfer{}, err
	}
	tr.ID = NewID("xfer_")
	a := &attended{CallTransfer: tr, agent: *cc.Agent, consult: consult, at: s.now(), call: cc.Call, agents: cc.Agents}
	// Transfers of calls that ended are dropped as new ones come.
	var ended []string
	s.mu.Lock()
	for tid, x := range s.transfers {
		if s.now().Sub(x.at) > transferTTL {
			delete(s.transfers, tid)
		} else {
			ended = append(ended, tid)
		}
	}
	s.transfers[tr.ID] = a
	s.mu.Unlock()
	s.dropEnded(ctx, ended)
	return tr, nil
}

// dropEnded forgets the transfers among ids whose call has ended.
func (s *callService) dropEnded(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	calls := make(map[string]string, len(ids))
	for _, id := range ids {
		if x := s.transfers[id]; x != nil {
			calls[id] = x.CallID
		}
	}
	s.mu.Unlock()
	gone := map[string]bool{}
	_ = s.do(ctx, func(t *Tracker) {
		for id, call := range calls {
			if cc, ok := t.CallChannels(call); !ok || cc.Ended {
				gone[id] = true
			}
		}
	})
	s.mu.Lock()
	for id := range gone {
		delete(s.transfers, id)
	}
	s.mu.Unlock()
}

// FinishTransfer completes or cancels an attended transfer. The transfer
// is taken, not read: of two concurrent finishes only one reaches the PBX,
// the other gets ENOTFOUND; it is put back when nothing was done.
func (s *callService) FinishTransfer(ctx context.Context, transferID string, complete bool) (CallTransfer, error) {
	notFound := &Error{Code: ENOTFOUND, Field: "id", Message: "no attended transfer with id " + transferID}
	s.mu.Lock()
	a := s.transfers[transferID]
	if a != nil && s.now().Sub(a.at) > transferTTL {
		delete(s.transfers, transferID)
		a = nil
	}
	if a != nil && !SeesCall(ctx, a.call, a.agents) {
		a = nil // left in place: another tenant's or agent's
	}
	if a != nil {
		delete(s.transfers, transferID)
	}
	s.mu.Unlock()
	if a == nil {
		return CallTransfer{}, notFound
	}
	err := s.finish(ctx, a, complete)
	if err != nil && NothingSent(err) && ErrorCode(err) != ECONFLICT && ErrorCode(err) != ENOTFOUND {
		s.mu.Lock()
		s.transfers[a.ID] = a
		s.mu.Unlock()
	}
	if ErrorCode(err) == ENOTFOUND {
		// Another agent's transfer: put back, and say it does not exist.
		s.mu.Lock()
		s.transfers[a.ID] = a
		s.mu.Unlock()
		return CallTransfer{}, notFound
	}
	return a.CallTransfer, err
}

func (s *callService) finish(ctx context.Context, a *attended, complete bool) error {
	var found bool
	var cc CallChannels
	if err := s.do(ctx, func(t *Tracker) { cc, found = t.CallChannels(a.CallID) }); err != nil {
		return err
	}
	if found && !SeesCall(ctx, cc.Call, cc.Agents) {
		return &Error{Code: ENOTFOUND}
	}
	pbx, err := s.link()
	if err != nil {
		return err
	}
	if !found || cc.Ended {
		return Errorf(ECONFLICT, "call %s has ended", a.CallID)
	}
	if complete {
		return pbx.CompleteAttendedTransfer(ctx, a.agent, a.consult)
	}
	return pbx.CancelAttendedTransfer(ctx, a.agent, a.consult)
}

// LiveCalls are the calls in progress that ctx may see.
func (s *callService) LiveCalls(ctx context.Context) []Call {
	all := s.engine.Live()
	a := agentScope(ctx)
	if a == "" {
		if TenantOf(ctx) == "" {
			return all
		}
		out := make([]Call, 0)
		for _, c := range all {
			if SeesTenant(ctx, c.Tenant) {
				out = append(out, c)
			}
		}
		return out
	}
	var agents map[string][]string
	_ = s.do(ctx, func(t *Tracker) {
		agents = make(map[string][]string, len(all))
		for _, c := range all {
			if cc, ok := t.CallChannels(c.ID); ok {
				agents[c.ID] = cc.Agents
			}
		}
	})
	out := make([]Call, 0)
	for _, c := range all {
		if SeesCall(ctx, c, agents[c.ID]) {
			out = append(out, c)
		}
	}
	return out
}

// Call is one call from the history, or a click-to-call still being
// dialled.
func (s *callService) Call(ctx context.Context, id string) (Call, bool, bool, error) {
	notFound := &Error{Code: ENOTFOUND, Field: "id", Message: "no call with id " + id}
	rec, err := s.conversation(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && rec.Open) {
		// A live call's newest state may still wait in the engine for the
		// next commit (state that gave the CRM no event is held up to
		// 0.5 s): the live list can show a call whose row is missing or
		// older. Do writes what is held before it returns.
		var o Originate
		var pending bool
		if derr := s.do(ctx, func(t *Tracker) { o, pending = t.pendingOriginate(id) }); derr == nil {
			rec, err = s.conversation(ctx, id)
		}
		if ErrorCode(err) == ENOTFOUND {
			// A click-to-call whose first channel has not been seen yet:
			// the Location of its answer must not be "not found".
			if pending && SeesAgentIn(ctx, o.Agent, o.Tenant) {
				return Call{ID: id, Tenant: o.Tenant, State: "dialing", Direction: DirectionOutbound, Agent: &Agent{Extension: o.Agent},
					Callee: Party{Number: o.To}, StartedAt: o.RequestedAt}, true, true, nil
			}
			return Call{}, false, false, notFound
		}
	}
	if err != nil {
		return Call{}, false, false, err
	}
	if !SeesTenant(ctx, rec.Call.Tenant) {
		return Call{}, false, false, notFound
	}
	if agentScope(ctx) != "" {
		var agents []string
		_ = s.do(ctx, func(t *Tracker) {
			if cc, ok := t.CallChannels(id); ok {
				agents = cc.Agents
			}
		})
		if !SeesCall(ctx, rec.Call, agents) {
			return Call{}, false, false, notFound
		}
	}
	return rec.Call, rec.Open, false, nil
}
