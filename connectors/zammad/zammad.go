// Package zammad is the Zammad generic CTI connector: it posts each call to
// Zammad's caller log as newCall at its first pop, answer when an agent (or,
// outbound, the customer) answers, and hangup with Zammad's cause at the end,
// all with callId = the conversation id.
//
// It authenticates with the endpoint URL Zammad shows under Integrations →
// CTI (generic), https://<zammad>/api/v1/cti/<token>, whose token is a
// secret: it is never logged nor put in the attempt log (see Redact).
package zammad

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
)

// Name is the connector's name, in its state rows and errors.
const Name = "zammad"

// Events are the event types the connector needs.
var Events = []string{bridge.EventCallRinging, bridge.EventCallAnswered, bridge.EventCallEnded}

// Zammad documents no limit for the CTI endpoint; this keeps a burst of
// calls from flooding a small instance.
const (
	DefaultBurst = 20
	DefaultRate  = 10.0
)

// Options configure the connector.
type Options struct {
	// URL is the CTI endpoint, https://<zammad>/api/v1/cti/<token>.
	URL string
	// Users maps an agent's extension to the name Zammad shows for it; an
	// extension not in it is sent as it is.
	Users map[string]string
	// Inbound and Outbound say which calls are logged; internal calls never
	// are (Zammad's caller log is for customers).
	Inbound, Outbound bool

	Client  *http.Client // the dispatcher's, which enforces the address policy
	State   bridge.ConnectorStateStore
	Limiter *connectors.Limiter // nil: DefaultBurst, DefaultRate
	// Reject, when set, hangs up a call Zammad answered newCall with
	// {"action":"reject"} (a blocked caller). Nil: the reject is logged only.
	Reject func(ctx context.Context, conversationID string) error
	Logger *slog.Logger
}

// Connector is the Zammad connector.
type Connector struct {
	opts  Options
	token string // the URL's secret part, redacted from every message
	log   *slog.Logger
	lim   *connectors.Limiter
}

var _ bridge.Connector = (*Connector)(nil)

// New checks opts and returns the connector.
func New(opts Options) (*Connector, error) {
	token, err := CheckURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.State == nil {
		return nil, errors.New("zammad: no state store")
	}
	if opts.Client == nil {
		opts.Client = connectors.NewClient()
	}
	if opts.Limiter == nil {
		opts.Limiter = connectors.NewLimiter(DefaultBurst, DefaultRate)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Connector{opts: opts, token: token, lim: opts.Limiter,
		log: opts.Logger.With("connector", Name, "zammad", Redact(opts.URL))}, nil
}

// CheckURL checks a CTI endpoint URL's shape and returns its token. The
// error never contains the URL.
func CheckURL(raw string) (token string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", errors.New("must be the CTI endpoint such as https://<zammad>/api/v1/cti/<token>")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must have no credentials, query or fragment: https://<zammad>/api/v1/cti/<token>")
	}
	i := strings.LastIndex(u.Path, "/api/v1/cti/")
	if i < 0 {
		return "", errors.New("path must end in /api/v1/cti/<token> (Zammad: Integrations → CTI (generic) → Endpoint)")
	}
	token = strings.TrimSuffix(u.Path[i+len("/api/v1/cti/"):], "/")
	if len(token) < 8 || strings.IndexFunc(token, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_'))
	}) >= 0 {
		return "", errors.New("path must end in /api/v1/cti/<token>: the token is letters, digits, - and _")
	}
	return token, nil
}

// Redact returns the endpoint URL with its token replaced, for logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	i := strings.LastIndex(u.Path, "/api/v1/cti/")
	if i < 0 {
		return u.Scheme + "://" + u.Host + "/(path redacted)"
	}
	return u.Scheme + "://" + u.Host + u.Path[:i] + "/api/v1/cti/***"
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return Name }

// callState is what the connector remembers of a call between events.
type callState struct {
	NewCallSent bool   `json:"new_call_sent,omitempty"` // a newCall went out; its answer may have been lost
	NewCall     bool   `json:"new_call,omitempty"`      // Zammad has the call
	Answered    string `json:"answered,omitempty"`      // the answeringNumber sent with answer
	Rejected    bool   `json:"rejected,omitempty"`
	Hungup      bool   `json:"hungup,omitempty"`
}

// Deliver implements bridge.Connector: it takes the call as far as this
// event says, saving the state after each request that changed it.
func (c *Connector) Deliver(ctx context.Context, rec bridge.Record) error {
	if rec.ConversationID == "" {
		return nil
	}
	var ev bridge.Event
	if err := json.Unmarshal(rec.Payload, &ev); err != nil {
		return bridge.PermanentError(fmt.Errorf("zammad: event unreadable: %v", err))
	}
	if ev.Call == nil || c.direction(ev.Call) == "" {
		return nil
	}
	var st callState
	if err := connectors.LoadState(ctx, c.opts.State, Name, rec.ConversationID, &st); err != nil {
		return err
	}
	d := &delivery{c: c, ctx: ctx, ev: &ev, st: &st, conv: rec.ConversationID}
	switch ev.Type {
	case bridge.EventCallRinging:
		return d.ringing()
	case bridge.EventCallAnswered:
		return d.answered()
	case bridge.EventCallEnded:
		return d.ended()
	}
	return nil
}

// direction is Zammad's direction of a call, "" for one not logged.
func (c *Connector) direction(call *bridge.Call) string {
	switch {
	case call.Direction == bridge.DirectionInbound && c.opts.Inbound:
		return "in"
	case call.Direction == bridge.DirectionOutbound && c.opts.Outbound:
		return "out"
	}
	return ""
}

// delivery is one Deliver's work on one call.
type delivery struct {
	c    *Connector
	ctx  context.Context
	ev   *bridge.Event
	st   *callState
	conv string
}

func (d *delivery) save() error {
	return connectors.SaveState(d.ctx, d.c.opts.State, Name, d.conv, d.st)
}

// user is the Zammad name of an agent.
func (c *Connector) user(a *bridge.Agent) string {
	if a == nil {
		return ""
	}
	if u, ok := c.opts.Users[a.Extension]; ok {
		return u
	}
	return a.Extension
}

func (d *delivery) ringing() error {
	if d.st.NewCall || d.st.Hungup {
		return nil // Zammad pops once per call: later ringing agents add nothing
	}
	// A click-to-call rings the agent before the customer's number is
	// dialled: pop when it is known (the customer's ringing, at the latest
	// the end), so the caller log shows whom the call was with.
	if d.customer() == "" {
		return nil
	}
	return d.newCall(d.ev.Agent)
}

func (d *delivery) answered() error {
	if d.ev.Agent == nil || d.st.Answered != "" || d.st.Hungup {
		return nil
	}
	// Inbound, the agent's phone answering is the answer; outbound, the
	// customer's (the agent's own phone answers an originate first).
	if (d.ev.Party == bridge.PartyCustomer) != (d.ev.Call.Direction == bridge.DirectionOutbound) {
		return nil
	}
	if !d.st.NewCall {
		if err := d.newCall(d.ev.Agent); err != nil {
			return err
		}
	}
	return d.answer(d.ev.Agent)
}

func (d *delivery) ended() error {
	if d.st.Hungup {
		return nil
	}
	call := d.ev.Call
	if !d.st.NewCall { // no pop seen (a caller who hung up in the IVR, a restart)
		if d.customer() == "" {
			// A click-to-call the agent never took: no customer to log.
			d.c.log.Debug("call with no customer number not logged", "conversation", d.conv)
			return nil
		}
		if err := d.newCall(call.Agent); err != nil {
			return err
		}
	}
	if call.Disposition == bridge.DispositionAnswered && d.st.Answered == "" && call.Agent != nil {
		if err := d.answer(call.Agent); err != nil {
			return err
		}
	}
	params := d.base("hangup")
	params["cause"] = Cause(call)
	if d.st.Answered != "" {
		params["answeringNumber"] = d.st.Answered
	}
	// A repeated hangup (after a lost answer) only sets the same end again.
	if _, err := d.c.post(d.ctx, params); err != nil {
		return err
	}
	d.st.Hungup = true
	return d.save()
}

// customer is the customer's number, "" while unknown.
func (d *delivery) customer() string {
	if d.ev.Call.Direction == bridge.DirectionOutbound {
		return number(d.ev.Call.Callee)
	}
	return number(d.ev.Call.Caller)
}

// base is the parameters every event of the call carries.
func (d *delivery) base(event string) map[string]any {
	call := d.ev.Call
	return map[string]any{"event": event, "callId": d.conv, "direction": d.c.direction(call),
		"from": number(call.Caller), "to": number(call.Callee)}
}

func number(p bridge.Party) string {
	if p.E164 != "" {
		return p.E164
	}
	return p.Number
}

// newCall sends the call's newCall once: a retry after a lost answer finds
// the call already there (Zammad refuses a second newCall of one callId),
// which counts as done.
func (d *delivery) newCall(agent *bridge.Agent) error {
	params := d.base("newCall")
	if u := d.c.user(agent); u != "" {
		params["user"] = []string{u}
	}
	if q := d.ev.Call.Queue; q != "" {
		params["queue"] = q
	}
	retried := d.st.NewCallSent
	if !retried {
		d.st.NewCallSent = true
		if err := d.save(); err != nil {
			return err
		}
	}
	reply, err := d.c.post(d.ctx, params)
	if err != nil {
		var ae *apiError
		if !(retried && errors.As(err, &ae) && ae.status == http.StatusInternalServerError && strings.Contains(ae.desc, "already exists")) {
			return err
		}
		d.c.log.Info("newCall retried after a lost answer: Zammad already has the call", "conversation", d.conv)
		reply = nil
	}
	d.st.NewCall = true
	var r struct {
		Action   string `json:"action"`
		Reason   string `json:"reason"`
		CallerID string `json:"caller_id"`
		Number   string `json:"number"`
	}
	_ = json.Unmarshal(reply, &r) // {} or no body: nothing to do
	switch r.Action {
	case "reject":
		d.st.Rejected = true
		if err := d.save(); err != nil {
			return err
		}
		if d.c.opts.Reject == nil {
			d.c.log.Warn("Zammad asked to reject the call (a blocked caller); this connector cannot hang calls up yet: block the number on the PBX",
				"conversation", d.conv, "reason", r.Reason)
			return nil
		}
		// Not retried: a second newCall would be refused, and the caller
		// is gone by then anyway.
		if err := d.c.opts.Reject(context.WithoutCancel(d.ctx), d.conv); err != nil {
			d.c.log.Warn("Zammad asked to reject the call; hanging it up failed", "conversation", d.conv, "err", err)
		} else {
			d.c.log.Info("call rejected as Zammad asked", "conversation", d.conv, "reason", r.Reason)
		}
		return nil
	case "dial":
		// Zammad's outbound caller id rewrite applies to a dial it is asked
		// before placing it; ctibridge reports calls already placed.
		d.c.log.Info("Zammad answered newCall with a caller id to dial with: not applicable to a call already placed",
			"conversation", d.conv, "caller_id", r.CallerID)
	case "":
	default:
		d.c.log.Info("Zammad answered newCall with an unknown action: ignored", "conversation", d.conv, "action", connectors.Snippet([]byte(r.Action), d.c.token))
	}
	return d.save()
}

// answer sends the call's answer once.
func (d *delivery) answer(agent *bridge.Agent) error {
	params := d.base("answer")
	params["user"] = d.c.user(agent)
	answering := agent.Extension
	if d.ev.Call.Direction == bridge.DirectionOutbound {
		answering = number(d.ev.Call.Callee)
	}
	params["answeringNumber"] = answering
	if _, err := d.c.post(d.ctx, params); err != nil {
		return err
	}
	d.st.Answered = answering
	return d.save()
}

// Cause is hangup's cause for a call: answered → normalClearing, busy →
// busy, cancelled → cancel, no answer → noAnswer; a failed call by its
// Q.850 cause (17 busy, 21 rejected → busy; 18/19 → noAnswer; 1/3/22/28
// unknown or changed number → notFound; 23 redirected → forwarded), else
// congestion.
func Cause(call *bridge.Call) string {
	switch call.Disposition {
	case bridge.DispositionAnswered:
		return "normalClearing"
	case bridge.DispositionBusy:
		return "busy"
	case bridge.DispositionCancelled:
		return "cancel"
	case bridge.DispositionNoAnswer:
		if call.HangupCause != nil && call.HangupCause.Code == 23 {
			return "forwarded"
		}
		return "noAnswer"
	}
	if call.HangupCause != nil {
		switch call.HangupCause.Code {
		case 17, 21:
			return "busy"
		case 18, 19:
			return "noAnswer"
		case 1, 3, 22, 28:
			return "notFound"
		case 23:
			return "forwarded"
		}
	}
	return "congestion"
}

// apiError is a refused Zammad request.
type apiError struct {
	event  string
	status int
	desc   string
	hint   string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("zammad: %s: HTTP %d", e.event, e.status)
	if e.desc != "" {
		msg += ": " + e.desc
	}
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

// maxResponse bounds what is read of an answer.
const maxResponse = 1 << 20

// post sends one event and returns Zammad's answer. 401 (a wrong token) and
// 422 (CTI disabled or not configured, or a refused direction) are
// configuration errors no retry fixes; other 4xx are permanent too; 5xx,
// 429, redirects (not followed: they could send the token elsewhere) and
// connection errors are retried. No message holds the token.
func (c *Connector) post(ctx context.Context, params map[string]any) (json.RawMessage, error) {
	event := params["event"].(string)
	if err := c.lim.Wait(ctx); err != nil {
		return nil, fmt.Errorf("zammad: %s: waiting for the rate limit: %w", event, err)
	}
	body, err := json.Marshal(params)
	if err != nil {
		return nil, bridge.PermanentError(fmt.Errorf("zammad: %s: %v", event, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(body))
	if err != nil {
		return nil, bridge.PermanentError(fmt.Errorf("zammad: %s: invalid endpoint URL", event))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, token included
		}
		return nil, fmt.Errorf("zammad: %s: %s", event, c.scrub(err.Error()))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode == http.StatusOK {
		return raw, nil
	}
	var env struct {
		Error      string `json:"error"`
		ErrorHuman string `json:"error_human"`
	}
	ae := &apiError{event: event, status: resp.StatusCode}
	if json.Unmarshal(raw, &env) == nil && (env.Error != "" || env.ErrorHuman != "") {
		ae.desc = connectors.Snippet([]byte(strings.TrimSpace(env.Error+" "+env.ErrorHuman)), c.token)
	} else {
		ae.desc = connectors.Snippet(raw, c.token)
	}
	ce := &bridge.ConnectorError{StatusCode: resp.StatusCode, Err: ae}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		ce.Permanent = true
		ae.hint = "Zammad refused the endpoint token: copy the endpoint from Integrations → CTI (generic) into connectors.zammad.url, then replay"
	case resp.StatusCode == http.StatusUnprocessableEntity:
		ce.Permanent = true
		ae.hint = "enable Integrations → CTI (generic) in Zammad and save its settings, then replay"
	case resp.StatusCode/100 == 3:
		ae.hint = "redirect not followed: check connectors.zammad.url"
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		ce.RetryAfter = connectors.RetryAfter(resp.Header.Get("Retry-After"))
	default:
		ce.Permanent = true
	}
	return nil, ce
}

// scrub removes the token from text that may echo the URL.
func (c *Connector) scrub(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "***")
}
