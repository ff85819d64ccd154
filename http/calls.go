package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// timedOriginator is a PBX that honours a per-call ring timeout (both
// commanders are).
type timedOriginator interface {
	OriginateWithin(ctx context.Context, o *bridge.Originate, ring time.Duration) error
}

// TransferFinisher is a PBX that can complete or cancel an attended
// transfer it started from the agent's channel.
type TransferFinisher interface {
	CompleteAttendedTransfer(ctx context.Context, agent bridge.Channel) error
	CancelAttendedTransfer(ctx context.Context, agent bridge.Channel) error
}

// pbx returns the commander if the link is up: a command is never queued
// for a link that is down.
func (s *Server) pbx() (bridge.PBX, error) {
	if s.PBX == nil {
		return nil, &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "commands are not available: no PBX commander is configured"}
	}
	if !s.PBX.Connected() {
		return nil, &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "the PBX link is down: command not sent (retry when /readyz says ready)"}
	}
	return s.PBX, nil
}

type originateRequest struct {
	Agent     string            `json:"agent"`
	To        string            `json:"to"`
	CallerID  string            `json:"caller_id,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	TimeoutS  int               `json:"timeout_s,omitempty"`
}

func (r originateRequest) validate() error {
	if err := bridge.CheckExtension("agent", r.Agent); err != nil {
		return err
	}
	if err := bridge.CheckNumber("to", r.To); err != nil {
		return err
	}
	if r.CallerID != "" {
		if _, err := bridge.ParseCallerID("caller_id", r.CallerID); err != nil {
			return err
		}
	}
	if len(r.Variables) > 32 {
		return bridge.FieldError("variables", "must hold at most 32 variables")
	}
	for k, v := range r.Variables {
		if err := bridge.CheckVarName("variables", k); err != nil {
			return err
		}
		if err := bridge.CheckText("variables."+k, v, 256, ""); err != nil {
			return err
		}
	}
	if r.TimeoutS != 0 && (r.TimeoutS < 5 || r.TimeoutS > 300) {
		return bridge.FieldError("timeout_s", "must be from 5 to 300 seconds")
	}
	return nil
}

// originate is click-to-call: ring the agent, then dial the customer. It
// answers 202 once the PBX took the request; what happens next comes as
// events (call.ringing, call.answered, or call.failed).
//
// With an Idempotency-Key the first response is kept and every retry with
// that key gets it back: the key never dials twice. The key is claimed
// before dialling, so a retry after a crash between the claim and the
// answer gets a 409 saying the outcome is unknown rather than a second call.
// Invalid requests and a link that is down are answered before the claim:
// they dialled nothing and can be retried with the same key.
func (s *Server) originate(c *fiber.Ctx) error {
	var req originateRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	// The adapter's own rules (FreeSWITCH refuses more in variables than
	// Asterisk) are checked now, so a refused value never claims the key
	// or registers a call.
	if ck, ok := s.PBX.(originateChecker); ok {
		if err := ck.CheckOriginate(req.originate()); err != nil {
			return err
		}
	}
	key := c.Get("Idempotency-Key")
	if key == "" {
		pbx, err := s.pbx()
		if err != nil {
			return err
		}
		r, _ := s.placeCall(c, pbx, req)
		return s.respond(c, r)
	}
	if err := bridge.CheckText("Idempotency-Key", key, 255, ""); err != nil {
		return err
	}
	ctx, scope := c.UserContext(), "POST /v1/calls "+callerID(c)
	unlock := s.idem.lock(scope + "\x00" + key)
	defer unlock()
	sum := sha256.Sum256(mustJSON(req))
	fingerprint := hex.EncodeToString(sum[:])
	// The claim is taken before dialling and the answer stored after, so
	// a retry finds one or the other, whatever the link's state: a call
	// placed is reported as placed even while the link is down now.
	claim, first, err := s.store.PutIdempotency(ctx, key, "claim "+scope, []byte(fingerprint))
	if err != nil {
		return err
	}
	if !first {
		if string(claim) != fingerprint {
			return bridge.FieldError("Idempotency-Key", "was already used for a different request")
		}
		// The answer of the first request, or, when it never stored one
		// (ctibridge stopped mid-request), a 409 kept from now on.
		status, body := s.problem(c.Path(), bridge.Errorf(bridge.ECONFLICT,
			"the first request with this Idempotency-Key did not finish (ctibridge stopped?): its outcome is unknown; look the call up or use a new key"))
		unknown := storedResponse{Status: status, Body: body}
		stored, created, err := s.store.PutIdempotency(ctx, key, scope, mustJSON(unknown))
		if err != nil {
			return err
		}
		r := unknown
		if !created {
			if err := json.Unmarshal(stored, &r); err != nil {
				return fmt.Errorf("idempotency key %q: stored answer unreadable: %w", key, err)
			}
		}
		c.Set("Idempotent-Replayed", "true")
		return s.respond(c, r)
	}
	// Refusals before the PBX saw the request release the key: the CRM
	// retries with it once the cause is gone. The PBX's own refusal is an
	// answer, kept like a success.
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.store.DeleteIdempotency(rctx, key, "claim "+scope); err != nil {
			s.log.Error("idempotency claim not released", "err", err)
		}
	}
	pbx, err := s.pbx()
	if err != nil {
		release()
		return err
	}
	r, placeErr := s.placeCall(c, pbx, req)
	if refusedBeforePBX(placeErr) {
		release()
		return s.respond(c, r)
	}
	// Kept even if the request's own deadline passed: the call was placed.
	if _, _, err := s.store.PutIdempotency(context.WithoutCancel(ctx), key, scope, mustJSON(r)); err != nil {
		s.log.Error("idempotency result not stored", "err", err)
	}
	return s.respond(c, r)
}

// refusedBeforePBX reports an error raised before anything reached the
// PBX: invalid input or a command never written.
func refusedBeforePBX(err error) bool {
	var e *bridge.Error
	return errors.As(err, &e) && (e.NotSent || e.Code == bridge.EINVALID)
}

// originateChecker is a PBX that validates a click-to-call's values by its
// own rules (both commanders are).
type originateChecker interface {
	CheckOriginate(o *bridge.Originate) error
}

func (r originateRequest) originate() *bridge.Originate {
	return &bridge.Originate{Agent: r.Agent, To: r.To, CallerID: r.CallerID, Variables: r.Variables}
}

// storedResponse is a response as kept for an idempotency key.
type storedResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

func (s *Server) respond(c *fiber.Ctx, r storedResponse) error {
	ct := fiber.MIMEApplicationJSON
	if r.Status >= 400 {
		ct = "application/problem+json"
		if r.Status == fiber.StatusUnauthorized {
			c.Set("WWW-Authenticate", `Bearer realm="ctibridge"`)
		}
	} else if id := callIDOf(r.Body); id != "" {
		c.Set(fiber.HeaderLocation, "/v1/calls/"+id)
	}
	c.Set(fiber.HeaderContentType, ct)
	return c.Status(r.Status).Send(r.Body)
}

func callIDOf(body []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &v)
	return v.ID
}

// placeCall registers the click-to-call with the call model, with the
// channel ids it will have, before the PBX is asked: the first event of
// the call then already belongs to a known, outbound conversation.
// It returns the answer and, for a failure, the error behind it.
func (s *Server) placeCall(c *fiber.Ctx, pbx bridge.PBX, req originateRequest) (storedResponse, error) {
	var o *bridge.Originate
	fail := func(err error) (storedResponse, error) {
		status, body := s.problem(c.Path(), err)
		if !bridge.NothingSent(err) && o != nil {
			// The call may ring all the same: give the CRM its id, to
			// match the events that follow or to hang it up.
			body = withField(body, "id", o.ConversationID)
		}
		return storedResponse{Status: status, Body: body}, err
	}
	o = req.originate()
	o.ConversationID, o.ActionID, o.AgentChannelID, o.OtherChannelID = bridge.NewID("conv_"), uuid.NewString(), uuid.NewString(), uuid.NewString()
	o.RequestedAt = time.Now().UTC()
	ctx := c.UserContext()
	// The tracker never drops what ExpectOriginate registers; prune the
	// stale entries now and then, here, where they are added.
	prune := false
	if last := s.lastPrune.Load(); o.RequestedAt.UnixNano()-last > int64(time.Minute) {
		prune = s.lastPrune.CompareAndSwap(last, o.RequestedAt.UnixNano())
	}
	if err := s.do(ctx, func(t *bridge.Tracker) {
		if prune {
			t.PruneOriginates(o.RequestedAt.Add(-originateTTL))
		}
		t.ExpectOriginate(o)
	}); err != nil {
		o = nil // not registered: nothing will come of it
		return fail(err)
	}
	var err error
	if p, ok := pbx.(timedOriginator); ok && req.TimeoutS > 0 {
		err = p.OriginateWithin(ctx, o, time.Duration(req.TimeoutS)*time.Second)
	} else {
		err = pbx.Originate(ctx, o)
	}
	if err != nil {
		// A refusal dialled nothing: no channel of it will come. A lost
		// link or a timeout may have dialled: keep it until pruned.
		if bridge.NothingSent(err) {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.do(fctx, func(t *bridge.Tracker) { t.ForgetOriginate(o) })
			cancel()
		}
		return fail(err)
	}
	return storedResponse{Status: fiber.StatusAccepted, Body: mustJSON(fiber.Map{
		"id": o.ConversationID, "status": "dialing", "agent": o.Agent, "to": o.To})}, nil
}

// withField adds one member to a JSON object.
func withField(body []byte, name string, v any) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	m[name] = v
	return mustJSON(m)
}

// originateTTL is how long a click-to-call's pre-assigned ids are kept
// for its channels: far beyond the longest ring (timeout_s is at most 300).
const originateTTL = time.Hour

// do runs fn on the engine goroutine.
func (s *Server) do(ctx context.Context, fn func(*bridge.Tracker)) error {
	if err := s.engine.Do(ctx, fn); err != nil {
		return &bridge.Error{Code: bridge.EUNAVAILABLE, NotSent: true, Message: "the call model did not answer in time (is the store writable?)"}
	}
	return nil
}

// lookup finds the live channels of a call: 404 for a call never seen, 409
// for one that has ended.
func (s *Server) lookup(c *fiber.Ctx) (bridge.CallChannels, error) {
	id := c.Params("id")
	var cc bridge.CallChannels
	var ok bool
	if err := s.do(c.UserContext(), func(t *bridge.Tracker) { cc, ok = t.CallChannels(id) }); err != nil {
		return cc, err
	}
	if !ok {
		var pending bool
		_ = s.do(c.UserContext(), func(t *bridge.Tracker) { _, pending = t.PendingOriginate(id) })
		if pending {
			return cc, bridge.Errorf(bridge.ECONFLICT, "call %s is still being dialled: no channel of it exists yet", id)
		}
		switch _, err := s.store.Conversation(c.UserContext(), id); bridge.ErrorCode(err) {
		case "":
			return cc, bridge.Errorf(bridge.ECONFLICT, "call %s has ended", id)
		case bridge.ENOTFOUND:
			return cc, &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no call with id " + id}
		default:
			return cc, err
		}
	}
	if cc.Ended {
		return cc, bridge.Errorf(bridge.ECONFLICT, "call %s has ended", id)
	}
	return cc, nil
}

func (s *Server) hangup(c *fiber.Ctx) error {
	if err := decode(c, &struct{}{}, false); err != nil {
		return err
	}
	pbx, err := s.pbx()
	if err != nil {
		return err
	}
	cc, err := s.lookup(c)
	if err != nil {
		return err
	}
	// The customer's release ends the whole call; before there is one
	// (a click-to-call still ringing the agent), the agent's.
	ch := cc.Customer
	if ch == nil {
		ch = cc.Agent
	}
	if ch == nil && len(cc.All) > 0 {
		ch = &cc.All[0]
	}
	if ch == nil {
		return bridge.Errorf(bridge.ECONFLICT, "call %s has no live channel", cc.Call.ID)
	}
	// Said before the command: the PBX's events may come before its answer.
	id := cc.Call.ID
	if err := s.do(c.UserContext(), func(t *bridge.Tracker) { t.ExpectHangup(id) }); err != nil {
		return err
	}
	if err := pbx.Hangup(c.UserContext(), *ch); err != nil {
		_ = s.do(context.WithoutCancel(c.UserContext()), func(t *bridge.Tracker) { t.ForgetHangup(id) })
		return err
	}
	return accepted(c, fiber.Map{"id": cc.Call.ID, "action": "hangup"})
}

// holdChecker is a PBX that may be unable to hold at all (Asterisk).
type holdChecker interface {
	CanHold() error
}

// hold puts the agent's leg on hold (the customer hears music) or takes it
// off; call.held / call.resumed follow from the PBX.
func (s *Server) hold(on bool) fiber.Handler {
	action := map[bool]string{true: "hold", false: "resume"}[on]
	return func(c *fiber.Ctx) error {
		if err := decode(c, &struct{}{}, false); err != nil {
			return err
		}
		if h, ok := s.PBX.(holdChecker); ok {
			if err := h.CanHold(); err != nil {
				return err
			}
		}
		pbx, err := s.pbx()
		if err != nil {
			return err
		}
		cc, err := s.lookup(c)
		if err != nil {
			return err
		}
		if cc.Agent == nil {
			return bridge.Errorf(bridge.ECONFLICT, "no agent has answered call %s yet: nothing to %s", cc.Call.ID, action)
		}
		if err := pbx.Hold(c.UserContext(), *cc.Agent, on); err != nil {
			return err
		}
		return accepted(c, fiber.Map{"id": cc.Call.ID, "action": action})
	}
}

type recordRequest struct {
	Action string `json:"action"`
}

func (r recordRequest) validate() error {
	if r.Action != "start" && r.Action != "stop" {
		return bridge.FieldError("action", "must be start or stop")
	}
	return nil
}

func (s *Server) record(c *fiber.Ctx) error {
	var req recordRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	pbx, err := s.pbx()
	if err != nil {
		return err
	}
	cc, err := s.lookup(c)
	if err != nil {
		return err
	}
	ch := cc.Customer
	if ch == nil {
		ch = cc.Agent
	}
	if ch == nil {
		return bridge.Errorf(bridge.ECONFLICT, "call %s has no party to record yet", cc.Call.ID)
	}
	// The PBX puts a relative name in its own recordings directory and
	// reports the full path in recording.started.
	file := cc.Call.ID + "-" + time.Now().UTC().Format("20060102T150405Z") + ".wav"
	if err := pbx.Record(c.UserContext(), *ch, req.Action == "start", file); err != nil {
		return err
	}
	body := fiber.Map{"id": cc.Call.ID, "action": "record." + req.Action}
	if req.Action == "start" {
		body["file"] = file
	}
	return accepted(c, body)
}

type dtmfRequest struct {
	Digits string `json:"digits"`
}

func (r dtmfRequest) validate() error { return bridge.CheckDTMF("digits", r.Digits) }

func (s *Server) dtmf(c *fiber.Ctx) error {
	var req dtmfRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	pbx, err := s.pbx()
	if err != nil {
		return err
	}
	cc, err := s.lookup(c)
	if err != nil {
		return err
	}
	if cc.Customer == nil {
		return bridge.Errorf(bridge.ECONFLICT, "call %s has no customer leg to send digits to", cc.Call.ID)
	}
	if err := pbx.SendDTMF(c.UserContext(), *cc.Customer, req.Digits); err != nil {
		return err
	}
	return accepted(c, fiber.Map{"id": cc.Call.ID, "action": "dtmf", "digits": req.Digits})
}

// transfer moves a call: blind (the customer goes to the target; the
// agent is released) or attended (the agent consults the target while the
// customer waits; finish with /v1/transfers/{id}/complete or cancel with
// DELETE /v1/transfers/{id}).
func (s *Server) transfer(c *fiber.Ctx) error {
	var req transferRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	pbx, err := s.pbx()
	if err != nil {
		return err
	}
	cc, err := s.lookup(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if req.Mode == "blind" {
		if cc.Customer == nil {
			return bridge.Errorf(bridge.ECONFLICT, "call %s has no customer leg to transfer", cc.Call.ID)
		}
		if err := pbx.BlindTransfer(ctx, *cc.Customer, req.To); err != nil {
			return err
		}
		return accepted(c, fiber.Map{"id": cc.Call.ID, "mode": "blind", "to": req.To})
	}
	if _, ok := pbx.(TransferFinisher); !ok {
		return bridge.Errorf(bridge.ENOTIMPLEMENTED, "this PBX adapter cannot finish an attended transfer")
	}
	if cc.Agent == nil {
		return bridge.Errorf(bridge.ECONFLICT, "no agent has answered call %s: there is no one to consult", cc.Call.ID)
	}
	if err := pbx.AttendedTransfer(ctx, *cc.Agent, req.To); err != nil {
		return err
	}
	tr := s.transfers.add(cc.Call.ID, req.To, *cc.Agent)
	return accepted(c, fiber.Map{"id": cc.Call.ID, "mode": "attended", "to": req.To, "transfer_id": tr.ID})
}

type transferRequest struct {
	To   string `json:"to"`
	Mode string `json:"mode"`
}

// validate checks the body and fills in the default mode (blind).
func (r *transferRequest) validate() error {
	if err := bridge.CheckExtension("to", r.To); err != nil {
		return err
	}
	if r.Mode == "" {
		r.Mode = "blind"
	}
	if r.Mode != "blind" && r.Mode != "attended" {
		return bridge.FieldError("mode", "must be blind or attended")
	}
	return nil
}

func (s *Server) completeTransfer(c *fiber.Ctx) error { return s.finishTransfer(c, true) }
func (s *Server) cancelTransfer(c *fiber.Ctx) error   { return s.finishTransfer(c, false) }

func (s *Server) finishTransfer(c *fiber.Ctx, complete bool) error {
	if err := decode(c, &struct{}{}, false); err != nil {
		return err
	}
	// Taken, not read: of two concurrent finishes only one reaches the
	// PBX; the other gets 404. It is put back when nothing was done.
	tr, ok := s.transfers.take(c.Params("id"))
	if !ok {
		return &bridge.Error{Code: bridge.ENOTFOUND, Field: "id", Message: "no attended transfer with id " + c.Params("id")}
	}
	err := s.finishTaken(c, tr, complete)
	if err != nil && bridge.NothingSent(err) && bridge.ErrorCode(err) != bridge.ECONFLICT {
		s.transfers.put(tr)
	}
	if err != nil {
		return err
	}
	action := "cancel"
	if complete {
		action = "complete"
	}
	return accepted(c, fiber.Map{"transfer_id": tr.ID, "id": tr.CallID, "action": action})
}

func (s *Server) finishTaken(c *fiber.Ctx, tr *attended, complete bool) error {
	pbx, err := s.pbx()
	if err != nil {
		return err
	}
	fin, ok := pbx.(TransferFinisher)
	if !ok {
		return bridge.Errorf(bridge.ENOTIMPLEMENTED, "this PBX adapter cannot finish an attended transfer")
	}
	var found bool
	var cc bridge.CallChannels
	if err := s.do(c.UserContext(), func(t *bridge.Tracker) { cc, found = t.CallChannels(tr.CallID) }); err != nil {
		return err
	}
	if !found || cc.Ended {
		return bridge.Errorf(bridge.ECONFLICT, "call %s has ended", tr.CallID)
	}
	if complete {
		return fin.CompleteAttendedTransfer(c.UserContext(), tr.Agent)
	}
	return fin.CancelAttendedTransfer(c.UserContext(), tr.Agent)
}

// transfers are the attended transfers under way, by id. They live in
// memory: after a restart the agent finishes them from the phone.
type transfers struct {
	mu sync.Mutex
	m  map[string]*attended
}

type attended struct {
	ID, CallID, To string
	Agent          bridge.Channel
	At             time.Time
}

func newTransfers() *transfers { return &transfers{m: map[string]*attended{}} }

// transferTTL drops transfers nobody finished (the agent did, from the
// phone, or the call ended).
const transferTTL = 2 * time.Hour

func (t *transfers) add(callID, to string, agent bridge.Channel) *attended {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for id, a := range t.m {
		if now.Sub(a.At) > transferTTL {
			delete(t.m, id)
		}
	}
	a := &attended{ID: bridge.NewID("xfer_"), CallID: callID, To: to, Agent: agent, At: now}
	t.m[a.ID] = a
	return a
}

// take removes and returns a transfer.
func (t *transfers) take(id string) (*attended, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.m[id]
	delete(t.m, id)
	return a, ok
}

// put returns a transfer taken but not finished.
func (t *transfers) put(a *attended) {
	t.mu.Lock()
	t.m[a.ID] = a
	t.mu.Unlock()
}

// keyLocks serialises requests that share an idempotency key within this
// process; the store's claim covers restarts.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
