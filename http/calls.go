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
)

type originateRequest struct {
	Agent     string            `json:"agent"`
	To        string            `json:"to"`
	CallerID  string            `json:"caller_id,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	TimeoutS  int               `json:"timeout_s,omitempty"`
}

// placeCall is the request as the call service takes it.
func (r originateRequest) placeCall() bridge.PlaceCall {
	return bridge.PlaceCall{Agent: r.Agent, To: r.To, CallerID: r.CallerID, Variables: r.Variables,
		RingTimeout: time.Duration(r.TimeoutS) * time.Second}
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
	// Checked in full now (the shared rules and the PBX's own), so a
	// refused value never claims the key.
	if err := s.Calls.Check(c.UserContext(), req.placeCall()); err != nil {
		return err
	}
	key := c.Get("Idempotency-Key")
	if key == "" {
		r, _ := s.placeCall(c, req)
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
	r, placeErr := s.placeCall(c, req)
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

// placeCall asks the call service and shapes its answer as kept for an
// idempotency key. It returns the answer and, for a failure, the error
// behind it.
func (s *Server) placeCall(c *fiber.Ctx, req originateRequest) (storedResponse, error) {
	placed, err := s.Calls.Place(c.UserContext(), req.placeCall())
	if err != nil {
		status, body := s.problem(c.Path(), err)
		if placed.ID != "" {
			// The call may ring all the same: give the CRM its id, to
			// match the events that follow or to hang it up.
			body = withField(body, "id", placed.ID)
		}
		return storedResponse{Status: status, Body: body}, err
	}
	return storedResponse{Status: fiber.StatusAccepted, Body: mustJSON(fiber.Map{
		"id": placed.ID, "status": placed.Status, "agent": placed.Agent, "to": placed.To})}, nil
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

func (s *Server) hangup(c *fiber.Ctx) error {
	if err := decode(c, &struct{}{}, false); err != nil {
		return err
	}
	id := param(c, "id")
	if err := s.Calls.Hangup(c.UserContext(), id); err != nil {
		return err
	}
	return accepted(c, fiber.Map{"id": id, "action": "hangup"})
}

// hold puts the agent's leg on hold (the customer hears music) or takes it
// off; call.held / call.resumed follow from the PBX.
func (s *Server) hold(on bool) fiber.Handler {
	action := map[bool]string{true: "hold", false: "resume"}[on]
	return func(c *fiber.Ctx) error {
		if err := decode(c, &struct{}{}, false); err != nil {
			return err
		}
		id := param(c, "id")
		if err := s.Calls.Hold(c.UserContext(), id, on); err != nil {
			return err
		}
		return accepted(c, fiber.Map{"id": id, "action": action})
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
	id := param(c, "id")
	file, err := s.Calls.Record(c.UserContext(), id, req.Action == "start")
	if err != nil {
		return err
	}
	body := fiber.Map{"id": id, "action": "record." + req.Action}
	if req.Action == "start" {
		body["file"] = file
	}
	return accepted(c, body)
}

type dtmfRequest struct {
	Digits string `json:"digits"`
}

func (s *Server) dtmf(c *fiber.Ctx) error {
	var req dtmfRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	id := param(c, "id")
	if err := s.Calls.SendDTMF(c.UserContext(), id, req.Digits); err != nil {
		return err
	}
	return accepted(c, fiber.Map{"id": id, "action": "dtmf", "digits": req.Digits})
}

// transfer moves a call: blind (the customer goes to the target; the
// agent is released) or attended (the agent consults the target while the
// customer waits; finish with /v1/transfers/{id}/complete or cancel with
// DELETE /v1/transfers/{id}).
func (s *Server) transfer(c *fiber.Ctx) error {
	var req bridge.TransferRequest
	if err := decode(c, &req, true); err != nil {
		return err
	}
	tr, err := s.Calls.Transfer(c.UserContext(), param(c, "id"), req)
	if err != nil {
		return err
	}
	body := fiber.Map{"id": tr.CallID, "mode": tr.Mode, "to": tr.To}
	if tr.ID != "" {
		body["transfer_id"] = tr.ID
	}
	return accepted(c, body)
}

func (s *Server) completeTransfer(c *fiber.Ctx) error { return s.finishTransfer(c, true) }
func (s *Server) cancelTransfer(c *fiber.Ctx) error   { return s.finishTransfer(c, false) }

func (s *Server) finishTransfer(c *fiber.Ctx, complete bool) error {
	if err := decode(c, &struct{}{}, false); err != nil {
		return err
	}
	tr, err := s.Calls.FinishTransfer(c.UserContext(), param(c, "id"), complete)
	if err != nil {
		return err
	}
	action := "cancel"
	if complete {
		action = "complete"
	}
	return accepted(c, fiber.Map{"transfer_id": tr.ID, "id": tr.CallID, "action": action})
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
