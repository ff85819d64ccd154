// Package hubspot is the HubSpot connector: it logs each call as a calls
// engagement (POST /crm/v3/objects/calls) at its first pop with status
// RINGING, sets it IN_PROGRESS when the call is answered and gives it its
// final status and talk time at the end (PATCH /crm/v3/objects/calls/{id}),
// owned by the agent's HubSpot user and, when configured, associated with
// the contact whose phone number matches.
//
// It authenticates with a private app's access token sent as a Bearer
// token. The token is a secret: it goes in the Authorization header only,
// and is never logged nor put in the attempt log.
package hubspot

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
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
)

// Name is the connector's name, in its state rows and errors.
const Name = "hubspot"

// Events are the event types the connector needs.
var Events = []string{bridge.EventCallRinging, bridge.EventCallAnswered, bridge.EventCallEnded, bridge.EventRecordingReady}

// HubSpot allows a private app 100 requests per rolling 10 s (190 on
// Professional and Enterprise). A bucket of 20 refilled at 8/s never puts
// more than 20 + 8·10 = 100 requests in any 10 s.
const (
	DefaultBurst  = 20
	DefaultRate   = 8.0
	DefaultAPIURL = "https://api.hubapi.com"
	// DefaultSearchLag is how long HubSpot's search may not yet show a
	// call just created (its index is eventually consistent: "several
	// seconds").
	DefaultSearchLag = 10 * time.Second
)

// Call statuses (hs_call_status) the connector sets.
const (
	StatusRinging    = "RINGING"
	StatusInProgress = "IN_PROGRESS"
	StatusCompleted  = "COMPLETED"
	StatusNoAnswer   = "NO_ANSWER"
	StatusBusy       = "BUSY"
	StatusCanceled   = "CANCELED"
	StatusFailed     = "FAILED"
)

// callToContact is HubSpot's association type id of a call to a contact
// (HUBSPOT_DEFINED).
const callToContact = 194

// Options configure the connector.
type Options struct {
	Token  string // the private app's access token
	APIURL string // "" for DefaultAPIURL
	// Owners maps an agent's extension to a HubSpot owner id
	// (hubspot_owner_id).
	Owners map[string]string
	// DefaultOwner owns calls whose agent is not in Owners, and calls no
	// agent took; "" makes an unmapped agent an error and leaves calls
	// without an agent unowned.
	DefaultOwner string
	// AssociateContacts looks the customer's number up among the contacts
	// and associates the call with the first match.
	AssociateContacts bool
	// SearchLag is how long a call just created may be missing from
	// HubSpot's search (0: DefaultSearchLag). See create.
	SearchLag time.Duration

	Client  *http.Client // the dispatcher's, which enforces the address policy
	State   bridge.ConnectorStateStore
	Limiter *connectors.Limiter // nil: DefaultBurst, DefaultRate
	// RecordingURL, when set, gives the URL HubSpot fetches a call's
	// recording from (a signed, expiring ctibridge link,
	// hs_call_recording_url); ok false means none.
	RecordingURL func(conversationID string) (string, bool)
	Logger       *slog.Logger
	Now          func() time.Time // nil: time.Now
}

// Connector is the HubSpot connector.
type Connector struct {
	opts   Options
	base   string
	log    *slog.Logger
	lim    *connectors.Limiter
	search *connectors.Limiter // HubSpot's search endpoints allow 5 requests/s per account
}

var _ bridge.Connector = (*Connector)(nil)

// New checks opts and returns the connector.
func New(opts Options) (*Connector, error) {
	if err := CheckToken(opts.Token); err != nil {
		return nil, err
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" {
		return nil, errors.New("hubspot: api_url must be an http(s) URL with no credentials or query, such as https://api.hubapi.com")
	}
	if opts.State == nil {
		return nil, errors.New("hubspot: no state store")
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SearchLag <= 0 {
		opts.SearchLag = DefaultSearchLag
	}
	return &Connector{opts: opts, base: strings.TrimSuffix(opts.APIURL, "/"), lim: opts.Limiter,
		search: connectors.NewLimiter(4, 4), log: opts.Logger.With("connector", Name, "api", opts.APIURL)}, nil
}

// CheckToken checks a private app token's shape (HubSpot's are
// "pat-<region>-<uuid>"; any printable token without spaces is taken). The
// error never contains the token.
func CheckToken(tok string) error {
	if len(tok) < 8 || len(tok) > 512 || strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return errors.New("must be the private app's access token (Settings → Integrations → Private apps → Auth), printable, without spaces")
	}
	return nil
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return Name }

// callState is what the connector remembers of a call between events.
type callState struct {
	ID string `json:"id,omitempty"` // the engagement id
	// Title is set, and saved, before a create goes out whose outcome is
	// unknown until its answer arrives; CreateAt is when. A retry searches
	// for the title before creating again.
	Title    string    `json:"title,omitempty"`
	CreateAt time.Time `json:"create_at,omitzero"`
	Contact  string    `json:"contact,omitempty"` // the associated contact's id
	Looked   bool      `json:"looked,omitempty"`  // the contact search is done
	Owner    string    `json:"owner,omitempty"`
	Status   string    `json:"status,omitempty"` // the last status HubSpot has
	Ended    bool      `json:"ended,omitempty"`
	// Recording is a recording URL not yet sent; RecordingSent when it is.
	Recording     string `json:"recording,omitempty"`
	RecordingSent bool   `json:"recording_sent,omitempty"`
}

// Deliver implements bridge.Connector: it takes the call as far as this
// event says, saving the state after each request that changed it.
func (c *Connector) Deliver(ctx context.Context, rec bridge.Record) error {
	if rec.ConversationID == "" {
		return nil
	}
	var ev bridge.Event
	if err := json.Unmarshal(rec.Payload, &ev); err != nil {
		return bridge.PermanentError(fmt.Errorf("hubspot: event unreadable: %v", err))
	}
	if ev.Call == nil || (ev.Call.Direction != bridge.DirectionInbound && ev.Call.Direction != bridge.DirectionOutbound) {
		return nil // HubSpot logs calls with customers only
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
	case bridge.EventRecordingReady:
		return d.recording()
	}
	return nil
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

// owner is the HubSpot owner of an agent's call. An unmapped extension is
// a configuration error no retry fixes, unless a default owner is set.
func (c *Connector) owner(a *bridge.Agent) (string, error) {
	if a == nil {
		return c.opts.DefaultOwner, nil
	}
	if id, ok := c.opts.Owners[a.Extension]; ok {
		return id, nil
	}
	if c.opts.DefaultOwner != "" {
		return c.opts.DefaultOwner, nil
	}
	return "", bridge.PermanentError(fmt.Errorf("hubspot: agent extension %s has no HubSpot owner: add it to connectors.hubspot.owners (extension: owner id) or set connectors.hubspot.default_owner, then replay", a.Extension))
}

func (d *delivery) ringing() error {
	if d.st.ID != "" || d.st.Ended {
		return nil // one engagement per call: later ringing agents add nothing
	}
	// A click-to-call rings the agent before the customer's number is
	// dialled: log it once the customer is known.
	if d.customer() == "" {
		return nil
	}
	return d.create(d.ev.Agent, false)
}

func (d *delivery) answered() error {
	if d.ev.Agent == nil || d.st.Ended {
		return nil
	}
	// Inbound, the agent's phone answering is the answer; outbound, the
	// customer's (the agent's own phone answers an originate first).
	if (d.ev.Party == bridge.PartyCustomer) != (d.ev.Call.Direction == bridge.DirectionOutbound) {
		return nil
	}
	owner, err := d.c.owner(d.ev.Agent)
	if err != nil {
		return err
	}
	if d.st.ID == "" {
		if d.customer() == "" {
			return nil
		}
		if err := d.create(d.ev.Agent, false); err != nil {
			return err
		}
	}
	if d.st.Status == StatusInProgress && d.st.Owner == owner {
		return nil
	}
	props := map[string]string{"hs_call_status": StatusInProgress}
	if owner != "" && owner != d.st.Owner { // ring-all: the agent who answered owns it
		props["hubspot_owner_id"] = owner
	}
	if err := d.c.update(d.ctx, d.st.ID, props); err != nil {
		return err
	}
	d.st.Status = StatusInProgress
	if owner != "" {
		d.st.Owner = owner
	}
	return d.save()
}

func (d *delivery) ended() error {
	if d.st.Ended {
		return nil
	}
	call := d.ev.Call
	if d.st.ID == "" {
		if d.customer() == "" {
			// A click-to-call the agent never took: no customer to log.
			d.c.log.Debug("call with no customer number not logged", "conversation", d.conv)
			return nil
		}
		// First seen at its end (an IVR-only call, a restart): create it
		// with its final properties, one request.
		if err := d.create(call.Agent, true); err != nil {
			return err
		}
	} else {
		props := d.final()
		owner := ""
		if call.Agent != nil { // who had the call last (a transfer moves it)
			var err error
			if owner, err = d.c.owner(call.Agent); err != nil {
				return err
			}
		}
		if owner != "" && owner != d.st.Owner {
			props["hubspot_owner_id"] = owner
		}
		// A PATCH repeated after a lost answer sets the same values again.
		if err := d.c.update(d.ctx, d.st.ID, props); err != nil {
			return err
		}
		if owner != "" {
			d.st.Owner = owner
		}
	}
	d.st.Status, d.st.Ended = Status(call), true
	if d.st.Recording != "" {
		d.st.RecordingSent = true
	}
	return d.save()
}

// final is the properties of a call's end.
func (d *delivery) final() map[string]string {
	props := map[string]string{"hs_call_status": Status(d.ev.Call),
		"hs_call_duration": strconv.FormatInt(DurationMS(d.ev.Call), 10)}
	if d.st.Recording != "" && !d.st.RecordingSent {
		props["hs_call_recording_url"] = d.st.Recording
	}
	return props
}

func (d *delivery) recording() error {
	if d.ev.Recording == nil || d.st.RecordingSent {
		return nil
	}
	link, ok := "", false
	if d.c.opts.RecordingURL != nil {
		link, ok = d.c.opts.RecordingURL(d.conv)
	}
	if !ok {
		d.c.log.Info("recording not linked: ctibridge has no URL to serve it from", "conversation", d.conv)
		return nil
	}
	if d.st.ID == "" || !d.st.Ended {
		// Sent with the end: one request fewer.
		if d.st.Recording == link {
			return nil
		}
		d.st.Recording = link
		return d.save()
	}
	if err := d.c.update(d.ctx, d.st.ID, map[string]string{"hs_call_recording_url": link}); err != nil {
		return err
	}
	d.st.Recording, d.st.RecordingSent = link, true
	return d.save()
}

// customer is the customer's number, "" while unknown.
func (d *delivery) customer() string {
	if d.ev.Call.Direction == bridge.DirectionOutbound {
		return number(d.ev.Call.Callee)
	}
	return number(d.ev.Call.Caller)
}

func number(p bridge.Party) string {
	if p.E164 != "" {
		return p.E164
	}
	return p.Number
}

// Title is the engagement's hs_call_title: readable, and unique per call
// (it ends in the conversation id), which is what makes a create whose
// answer was lost findable.
func Title(call *bridge.Call, conv, customer string) string {
	if call.Direction == bridge.DirectionOutbound {
		return fmt.Sprintf("Outbound call to %s (ctibridge %s)", customer, conv)
	}
	return fmt.Sprintf("Inbound call from %s (ctibridge %s)", customer, conv)
}

// create creates the call's engagement once. HubSpot has no idempotency
// key, so the state is saved before the request goes out (with the call's
// unique title): if its answer is lost (a timeout, a 5xx, a restart), the
// retry first searches calls by that title and adopts what it finds. The
// search index lags a few seconds behind a create, so a miss within
// SearchLag of the last create is retried later rather than taken as "not
// created". A create HubSpot refused with a 4xx is known not done.
func (d *delivery) create(agent *bridge.Agent, final bool) error {
	call := d.ev.Call
	owner, err := d.c.owner(agent)
	if err != nil {
		return err
	}
	customer := d.customer()
	if d.c.opts.AssociateContacts && !d.st.Looked {
		id, err := d.c.findContact(d.ctx, call, d.direction())
		if err != nil {
			return err
		}
		d.st.Contact, d.st.Looked = id, true
		if err := d.save(); err != nil {
			return err
		}
	}
	if d.st.Title != "" {
		id, err := d.c.findCall(d.ctx, d.st.Title)
		if err != nil {
			return err
		}
		if id != "" {
			d.c.log.Info("create retried after a lost answer: HubSpot already has the call", "conversation", d.conv, "engagement", id)
			d.st.ID, d.st.Title, d.st.Owner, d.st.Status = id, "", owner, StatusRinging
			if final {
				d.st.Status = ""
			}
			if err := d.save(); err != nil {
				return err
			}
			if final { // found, but its end is not set yet
				props := d.final()
				return d.c.update(d.ctx, id, props)
			}
			return nil
		}
		if wait := d.st.CreateAt.Add(d.c.opts.SearchLag).Sub(d.c.opts.Now()); wait > 0 {
			return &bridge.ConnectorError{RetryAfter: wait, Err: fmt.Errorf(
				"hubspot: the answer to creating the call was lost and HubSpot's search does not show it yet: waiting %s before creating it again", wait.Round(time.Second))}
		}
	}
	props := map[string]string{
		"hs_timestamp":      strconv.FormatInt(call.StartedAt.UnixMilli(), 10),
		"hs_call_direction": d.direction(),
		"hs_call_status":    StatusRinging,
		"hs_call_title":     Title(call, d.conv, customer),
	}
	if call.StartedAt.IsZero() {
		props["hs_timestamp"] = strconv.FormatInt(d.c.opts.Now().UnixMilli(), 10)
	}
	if f := number(call.Caller); f != "" {
		props["hs_call_from_number"] = f
	}
	if t := number(call.Callee); t != "" {
		props["hs_call_to_number"] = t
	}
	if owner != "" {
		props["hubspot_owner_id"] = owner
	}
	if final {
		for k, v := range d.final() {
			props[k] = v
		}
	}
	body := map[string]any{"properties": props}
	if d.st.Contact != "" {
		body["associations"] = []any{map[string]any{"to": map[string]string{"id": d.st.Contact},
			"types": []any{map[string]any{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": callToContact}}}}
	}
	d.st.Title, d.st.CreateAt = props["hs_call_title"], d.c.opts.Now()
	if err := d.save(); err != nil {
		return err
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := d.c.do(d.ctx, "create call", http.MethodPost, "/crm/v3/objects/calls", body, &res); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status/100 == 4 {
			d.st.Title = "" // refused: known not created
			if serr := d.save(); serr != nil {
				return serr
			}
		}
		return err
	}
	if res.ID == "" {
		return errors.New("hubspot: create call: no id in the answer")
	}
	d.st.ID, d.st.Title, d.st.Owner, d.st.Status = res.ID, "", owner, props["hs_call_status"]
	return d.save()
}

func (d *delivery) direction() string {
	if d.ev.Call.Direction == bridge.DirectionOutbound {
		return "OUTBOUND"
	}
	return "INBOUND"
}

// findCall returns the id of the call engagement titled title, "" if none.
func (c *Connector) findCall(ctx context.Context, title string) (string, error) {
	return c.searchOne(ctx, "calls", [][]filter{{{"hs_call_title", "EQ", title}}}, []string{"hs_call_title"})
}

// findContact returns the id of the first contact whose phone or mobile
// phone is the customer's number (as E.164 or as the PBX gave it), "" if
// none.
func (c *Connector) findContact(ctx context.Context, call *bridge.Call, dir string) (string, error) {
	p := call.Caller
	if dir == "OUTBOUND" {
		p = call.Callee
	}
	var groups [][]filter
	for _, n := range []string{p.E164, p.Number} {
		if n == "" || (n == p.Number && n == p.E164 && len(groups) > 0) {
			continue
		}
		groups = append(groups, []filter{{"phone", "EQ", n}}, []filter{{"mobilephone", "EQ", n}})
	}
	if len(groups) == 0 {
		return "", nil
	}
	return c.searchOne(ctx, "contacts", groups, []string{"phone", "mobilephone"})
}

type filter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value"`
}

func (c *Connector) searchOne(ctx context.Context, object string, groups [][]filter, props []string) (string, error) {
	if err := c.search.Wait(ctx); err != nil {
		return "", fmt.Errorf("hubspot: search %s: waiting for the rate limit: %w", object, err)
	}
	type group struct {
		Filters []filter `json:"filters"`
	}
	body := map[string]any{"limit": 1, "properties": props}
	var gs []group
	for _, g := range groups {
		gs = append(gs, group{g})
	}
	body["filterGroups"] = gs
	var res struct {
		Total   int `json:"total"`
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	if err := c.do(ctx, "search "+object, http.MethodPost, "/crm/v3/objects/"+object+"/search", body, &res); err != nil {
		return "", err
	}
	if len(res.Results) == 0 {
		return "", nil
	}
	return res.Results[0].ID, nil
}

func (c *Connector) update(ctx context.Context, id string, props map[string]string) error {
	return c.do(ctx, "update call", http.MethodPatch, "/crm/v3/objects/calls/"+url.PathEscape(id), map[string]any{"properties": props}, nil)
}

// Status is the final hs_call_status of a call: COMPLETED answered, BUSY,
// CANCELED (the caller gave up while it rang), NO_ANSWER; a failed call by
// its Q.850 cause: 17 busy and 21 rejected → BUSY, 18/19 no answer →
// NO_ANSWER, else FAILED.
func Status(call *bridge.Call) string {
	switch call.Disposition {
	case bridge.DispositionAnswered:
		return StatusCompleted
	case bridge.DispositionBusy:
		return StatusBusy
	case bridge.DispositionCancelled:
		return StatusCanceled
	case bridge.DispositionNoAnswer:
		return StatusNoAnswer
	}
	if call.HangupCause != nil {
		switch call.HangupCause.Code {
		case 17, 21:
			return StatusBusy
		case 18, 19:
			return StatusNoAnswer
		}
	}
	return StatusFailed
}

// DurationMS is hs_call_duration: the talk time in milliseconds, 0 for a
// call nobody answered.
func DurationMS(call *bridge.Call) int64 {
	if call.Disposition != bridge.DispositionAnswered {
		return 0
	}
	if call.AnsweredAt != nil && call.EndedAt != nil && call.EndedAt.After(*call.AnsweredAt) {
		return call.EndedAt.Sub(*call.AnsweredAt).Milliseconds()
	}
	if call.TalkS != nil {
		return *call.TalkS * 1000
	}
	return 0
}

// apiError is a refused HubSpot request.
type apiError struct {
	op       string
	status   int
	category string // HubSpot's error category, e.g. VALIDATION_ERROR
	msg      string
	corr     string // correlationId, for HubSpot's support
	hint     string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("hubspot: %s: HTTP %d", e.op, e.status)
	if e.category != "" {
		msg += " " + e.category
	}
	if e.msg != "" {
		msg += ": " + e.msg
	}
	if e.corr != "" {
		msg += " (correlationId " + e.corr + ")"
	}
	if e.hint != "" {
		msg += " — " + e.hint
	}
	return msg
}

// maxResponse bounds what is read of an answer.
const maxResponse = 1 << 20

// do makes one API request and decodes a 2xx answer into out. 401 (a
// wrong or revoked token) and 403 (a missing scope) are dead letters that
// say what to fix; 429 waits as HubSpot asks (Retry-After, else a second)
// and empties the bucket; 5xx, redirects (not followed) and connection
// errors are retried; other 4xx are dead letters. No message holds the
// token.
func (c *Connector) do(ctx context.Context, op, method, path string, body, out any) error {
	if err := c.lim.Wait(ctx); err != nil {
		return fmt.Errorf("hubspot: %s: waiting for the rate limit: %w", op, err)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return bridge.PermanentError(fmt.Errorf("hubspot: %s: %v", op, err))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(b))
	if err != nil {
		return bridge.PermanentError(fmt.Errorf("hubspot: %s: invalid API URL", op))
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return connectors.TransportError("hubspot: "+op, err, c.opts.Token)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("hubspot: %s: answer unreadable: %s", op, connectors.Snippet(raw, c.opts.Token))
		}
		return nil
	}
	var env struct {
		Status        string `json:"status"`
		Message       string `json:"message"`
		CorrelationID string `json:"correlationId"`
		Category      string `json:"category"`
		PolicyName    string `json:"policyName"` // of a 429: TEN_SECONDLY_ROLLING, SECONDLY or DAILY
	}
	ae := &apiError{op: op, status: resp.StatusCode}
	if json.Unmarshal(raw, &env) == nil && env.Message != "" {
		ae.msg = connectors.Snippet([]byte(env.Message), c.opts.Token)
		ae.category = connectors.Snippet([]byte(env.Category), c.opts.Token)
		ae.corr = connectors.Snippet([]byte(env.CorrelationID), c.opts.Token)
	} else {
		ae.msg = connectors.Snippet(raw, c.opts.Token)
	}
	ce := &bridge.ConnectorError{StatusCode: resp.StatusCode, Err: ae}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		ce.Permanent = true
		ae.hint = "HubSpot refused the token: set connectors.hubspot.token to the private app's access token (CTIBRIDGE_CONNECTORS__HUBSPOT__TOKEN), then replay"
	case resp.StatusCode == http.StatusForbidden:
		ce.Permanent = true
		ae.hint = "the private app lacks a scope: give it crm.objects.contacts.read and the calls read/write scopes, then replay"
	case resp.StatusCode == http.StatusTooManyRequests:
		c.lim.Drain() // HubSpot's window is full: ours waits for the refill
		ce.RetryAfter = RateLimitWait(resp.Header)
		if env.PolicyName == "DAILY" || resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining") == "0" {
			// Spent until midnight in the account's time zone, which we do
			// not know: retrying every second would only add refusals.
			ce.RetryAfter = max(ce.RetryAfter, dailyLimitWait)
			ae.hint = "HubSpot's daily API limit is spent; it resets at midnight in the account's time zone, so this endpoint waits and tries again hourly (HubSpot sells a higher limit)"
		}
	case resp.StatusCode/100 == 3:
		ae.hint = "redirect not followed: check connectors.hubspot.api_url"
	case resp.StatusCode >= 500:
		ce.RetryAfter = connectors.RetryAfter(resp.Header.Get("Retry-After"))
	default:
		ce.Permanent = true
	}
	return ce
}

// dailyLimitWait is how long a 429 of the daily limit holds the endpoint.
const dailyLimitWait = time.Hour

// RateLimitWait is how long to wait after a 429: Retry-After when HubSpot
// sends it; else, when its X-HubSpot-RateLimit headers say the window is
// spent, the interval shared out over its requests (at least a second);
// else a second.
func RateLimitWait(h http.Header) time.Duration {
	if d := connectors.RetryAfter(h.Get("Retry-After")); d > 0 {
		return d
	}
	interval, _ := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds"))
	maxReq, _ := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Max"))
	if interval > 0 && maxReq > 0 && interval <= 60_000 {
		return max(time.Second, time.Duration(interval/maxReq)*time.Millisecond)
	}
	return time.Second
}
