// Package bitrix24 is the Bitrix24 telephony connector: it registers each
// call with telephony.externalcall.register at its first pop, shows and
// hides the call card per ringing agent, finishes the call with its
// duration and status, and attaches the recording after the finish (by a
// signed ctibridge link, or inline when small). ClickToCall serves the
// ONEXTERNALCALLSTART event of a click on a number in Bitrix24.
//
// It authenticates with an inbound webhook URL
// (https://<portal>/rest/<user>/<token>/), whose token is a secret: it is
// never logged nor put in the attempt log (see Redact).
package bitrix24

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors"
)

// Name is the connector's name, in its state rows and errors.
const Name = "bitrix24"

// Events are the event types the connector needs.
var Events = []string{bridge.EventCallRinging, bridge.EventCallRingEnded, bridge.EventCallAnswered,
	bridge.EventCallEnded, bridge.EventRecordingReady}

// Bitrix24's documented REST limits: a leaky bucket of 50 requests drained
// at 2 per second per portal (Enterprise plans: 250 and 5).
const (
	DefaultBurst = 50
	DefaultRate  = 2.0
)

// Options configure the connector.
type Options struct {
	// WebhookURL is the inbound webhook, https://<portal>/rest/<user>/<token>/.
	WebhookURL string
	// Users maps an agent's extension to the Bitrix24 user id.
	Users map[string]int
	// DefaultUser, when not 0, is the user of calls no agent took part in
	// (an IVR-only call, a caller who hung up in the queue), so they are
	// logged too. 0 leaves such calls out.
	DefaultUser int
	LineNumber  string // LINE_NUMBER: the number or line the call came in on, as Bitrix24 knows it
	CRMCreate   bool   // CRM_CREATE: create a lead for an unknown number
	Show        bool   // show the call card to ringing agents

	Client  *http.Client // the dispatcher's, which enforces the address policy
	State   bridge.ConnectorStateStore
	Limiter *connectors.Limiter // nil: DefaultBurst, DefaultRate
	// RecordingURL, when set, gives the URL Bitrix24 fetches a call's
	// recording from (a signed, expiring ctibridge link, RECORD_URL); ok
	// false means none.
	RecordingURL func(conversationID string) (string, bool)
	// RecordingsDir, when there is no RecordingURL, is where a recording is
	// read from to be sent inline (FILE_CONTENT, base64), if it is at most
	// InlineLimit bytes (0: DefaultInlineLimit). Files outside it are not read.
	RecordingsDir string
	InlineLimit   int64
	Logger        *slog.Logger
}

// Connector is the Bitrix24 connector.
type Connector struct {
	opts  Options
	base  string // WebhookURL with a trailing slash
	token string // the URL's secret part, redacted from every message
	log   *slog.Logger
	lim   *connectors.Limiter

	// pending holds the state of click-to-calls dialled whose first event
	// has not come yet: the store keeps state only for conversations it
	// has, so it is saved at that event (adoptPending).
	pmu     sync.Mutex
	pending map[string]pendingCall
}

type pendingCall struct {
	st callState
	at time.Time
}

var _ bridge.Connector = (*Connector)(nil)

// New checks opts and returns the connector.
func New(opts Options) (*Connector, error) {
	token, err := CheckWebhookURL(opts.WebhookURL)
	if err != nil {
		return nil, err
	}
	if opts.State == nil {
		return nil, errors.New("bitrix24: no state store")
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
	base := opts.WebhookURL
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &Connector{opts: opts, base: base, token: token, lim: opts.Limiter,
		log: opts.Logger.With("connector", Name, "portal", Redact(opts.WebhookURL))}, nil
}

// CheckWebhookURL checks an inbound webhook URL's shape and returns its
// token. The error never contains the URL.
func CheckWebhookURL(raw string) (token string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", errors.New("must be an inbound webhook URL such as https://<portal>.bitrix24.com/rest/<user id>/<token>/")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must have no credentials, query or fragment: https://<portal>/rest/<user id>/<token>/")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "rest" {
		return "", errors.New("path must be /rest/<user id>/<token>/ (Bitrix24: Developer resources → Other → Inbound webhook)")
	}
	if _, err := strconv.Atoi(parts[1]); err != nil {
		return "", errors.New("path must be /rest/<user id>/<token>/: the user id is a number")
	}
	if len(parts[2]) < 8 || strings.IndexFunc(parts[2], func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) >= 0 {
		return "", errors.New("path must be /rest/<user id>/<token>/: the token is letters and digits")
	}
	return parts[2], nil
}

// Redact returns the webhook URL with its token replaced, for logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "rest" {
		return u.Scheme + "://" + u.Host + "/(path redacted)"
	}
	parts[2] = "***"
	return u.Scheme + "://" + u.Host + "/" + strings.Join(parts, "/") + "/"
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return Name }

// callState is what the connector remembers of a call between events.
type callState struct {
	CallID        string `json:"call_id,omitempty"` // Bitrix24's CALL_ID
	User          int    `json:"user,omitempty"`    // registered with
	CRMEntityType string `json:"crm_entity_type,omitempty"`
	CRMEntityID   int64  `json:"crm_entity_id,omitempty"`
	Shown         []int  `json:"shown,omitempty"` // users the card is shown to
	AnsweredBy    int    `json:"answered_by,omitempty"`
	FinishSent    bool   `json:"finish_sent,omitempty"` // a finish went out; its answer may have been lost
	Finished      bool   `json:"finished,omitempty"`
	Recording     string `json:"recording,omitempty"` // ready before the finish: attach after it
	Attached      bool   `json:"attached,omitempty"`
}

// Deliver implements bridge.Connector: it takes the call as far as this
// event says, saving the state after each request that changed it.
func (c *Connector) Deliver(ctx context.Context, rec bridge.Record) error {
	if rec.ConversationID == "" {
		return nil
	}
	var ev bridge.Event
	if err := json.Unmarshal(rec.Payload, &ev); err != nil {
		return bridge.PermanentError(fmt.Errorf("bitrix24: event unreadable: %v", err))
	}
	if ev.Call == nil || ev.Call.Direction == bridge.DirectionInternal {
		return nil // Bitrix24 logs calls with customers only
	}
	var st callState
	if err := connectors.LoadState(ctx, c.opts.State, Name, rec.ConversationID, &st); err != nil {
		return err
	}
	d := &delivery{c: c, ctx: ctx, ev: &ev, st: &st, conv: rec.ConversationID}
	if st.CallID == "" {
		if err := d.adoptPending(); err != nil {
			return err
		}
	}
	switch ev.Type {
	case bridge.EventCallRinging:
		return d.ringing()
	case bridge.EventCallRingEnded:
		return d.ringEnded()
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

// adoptPending takes a click-to-call's state (Bitrix24's CALL_ID) for the
// conversation's first event, saving it now that the store has the
// conversation.
func (d *delivery) adoptPending() error {
	d.c.pmu.Lock()
	p, ok := d.c.pending[d.conv]
	d.c.pmu.Unlock()
	if !ok {
		return nil
	}
	*d.st = p.st
	if err := d.save(); err != nil {
		return err
	}
	d.c.pmu.Lock()
	delete(d.c.pending, d.conv)
	d.c.pmu.Unlock()
	return nil
}

// addPending keeps a click-to-call's state until its first event; entries
// whose call never showed up are dropped after an hour.
func (c *Connector) addPending(conv string, st callState, now time.Time) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.pending == nil {
		c.pending = map[string]pendingCall{}
	}
	for id, p := range c.pending {
		if now.Sub(p.at) > time.Hour {
			delete(c.pending, id)
		}
	}
	c.pending[conv] = pendingCall{st, now}
}

func (c *Connector) dropPending(conv string) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	delete(c.pending, conv)
}

func (d *delivery) save() error {
	return connectors.SaveState(d.ctx, d.c.opts.State, Name, d.conv, d.st)
}

// user maps an agent to a Bitrix24 user; an unmapped extension is a
// configuration error no retry fixes.
func (c *Connector) user(a *bridge.Agent) (int, error) {
	if id, ok := c.opts.Users[a.Extension]; ok {
		return id, nil
	}
	return 0, bridge.PermanentError(fmt.Errorf("bitrix24: agent extension %s has no Bitrix24 user: add it to connectors.bitrix24.users (extension: user id), then replay", a.Extension))
}

func (d *delivery) ringing() error {
	if d.ev.Agent == nil {
		return nil
	}
	u, err := d.c.user(d.ev.Agent)
	if err != nil {
		return err
	}
	if d.st.CallID == "" {
		return d.register(u, d.c.opts.Show)
	}
	// The far party of an agent's own call rings: nobody else to show.
	if d.ev.Party == bridge.PartyCustomer || !d.c.opts.Show || slices.Contains(d.st.Shown, u) || d.st.FinishSent {
		return nil
	}
	if _, err := d.c.call(d.ctx, "telephony.externalcall.show", map[string]any{"CALL_ID": d.st.CallID, "USER_ID": u}); err != nil {
		return err
	}
	d.st.Shown = append(d.st.Shown, u)
	return d.save()
}

func (d *delivery) ringEnded() error {
	// The far party of an agent's outbound call stopping ringing closes
	// no card: the agent's call card stays until the call is finished.
	if d.ev.Agent == nil || d.ev.Party == bridge.PartyCustomer || d.st.CallID == "" || d.st.FinishSent {
		return nil
	}
	u, err := d.c.user(d.ev.Agent)
	if err != nil {
		return err
	}
	if u == d.st.AnsweredBy {
		return nil
	}
	return d.hide([]int{u})
}

func (d *delivery) answered() error {
	if d.ev.Agent == nil {
		return nil
	}
	u, err := d.c.user(d.ev.Agent)
	if err != nil {
		return err
	}
	if d.st.CallID == "" { // answered without a ring seen (e.g. adopted after a restart)
		if err := d.register(u, d.c.opts.Show); err != nil {
			return err
		}
	}
	if d.st.AnsweredBy != u {
		d.st.AnsweredBy = u
		if err := d.save(); err != nil {
			return err
		}
	}
	// Ring-all: the others who still see the card lose it.
	return d.hide(others(d.st.Shown, u))
}

func (d *delivery) ended() error {
	if d.st.Finished {
		// A retry of this event after the finish went through: the
		// attach that failed after it is what is left.
		if d.st.Recording != "" && !d.st.Attached {
			return d.attach(d.st.Recording)
		}
		return nil
	}
	call := d.ev.Call
	u := d.st.AnsweredBy
	if u == 0 && call.Agent != nil {
		var err error
		if u, err = d.c.user(call.Agent); err != nil {
			return err
		}
	}
	if u == 0 {
		u = d.st.User
	}
	if u == 0 {
		u = d.c.opts.DefaultUser
	}
	if u == 0 {
		d.c.log.Debug("call with no agent not logged: set connectors.bitrix24.default_user to log such calls", "conversation", d.conv)
		return nil
	}
	if d.st.CallID == "" {
		if err := d.register(u, false); err != nil {
			return err
		}
	}
	// finish hides the card of its own user only.
	if err := d.hide(others(d.st.Shown, u)); err != nil {
		return err
	}
	code := StatusCode(call)
	params := map[string]any{"CALL_ID": d.st.CallID, "USER_ID": u, "DURATION": duration(call), "STATUS_CODE": code}
	if code != "200" && call.HangupCause != nil {
		params["FAILED_REASON"] = fmt.Sprintf("%s (Q.850 %d)", call.HangupCause.Text, call.HangupCause.Code)
	}
	// FinishSent: a finish may have reached the portal (saved before it is
	// sent, so a crash counts as maybe). Only then may a "not found" answer
	// mean the call is finished already.
	maybeSent := d.st.FinishSent
	if !maybeSent {
		d.st.FinishSent = true
		if err := d.save(); err != nil {
			return err
		}
	}
	if _, err := d.c.call(d.ctx, "telephony.externalcall.finish", params); err != nil {
		var ae *apiError
		switch {
		case maybeSent && errors.As(err, &ae) && ae.notFound():
			// A finish whose answer was lost: Bitrix24 no longer knows the
			// call as open, which is what we wanted.
			d.c.log.Info("finish retried after a lost answer: the call is already finished", "conversation", d.conv, "err", err)
		case errors.As(err, &ae) && ae.refused() && !maybeSent:
			// The portal answered and did nothing, and no earlier finish
			// may have reached it: a later "not found" is a real error.
			d.st.FinishSent = false
			if serr := d.save(); serr != nil {
				return serr
			}
			return err
		default:
			return err
		}
	}
	d.st.Finished, d.st.Shown = true, nil
	if err := d.save(); err != nil {
		return err
	}
	if d.st.Recording != "" && !d.st.Attached {
		return d.attach(d.st.Recording)
	}
	return nil
}

func (d *delivery) recording() error {
	if d.ev.Recording == nil || d.st.Attached {
		return nil
	}
	if !d.st.Finished {
		// attachRecord fails before the finish: keep it for then.
		if d.st.Recording == d.ev.Recording.Path {
			return nil
		}
		d.st.Recording = d.ev.Recording.Path
		return d.save()
	}
	return d.attach(d.ev.Recording.Path)
}

// DefaultInlineLimit bounds a recording sent inline: base64 makes it a
// third larger, in one JSON request the portal must take whole.
const DefaultInlineLimit = 5 << 20

// attach attaches the recording after the finish: by a signed link
// (RECORD_URL) when ctibridge has a public URL, else inline (FILE_CONTENT)
// when the file is small enough; otherwise it is skipped and logged.
// Bitrix24 takes .wav and .mp3 only.
func (d *delivery) attach(file string) error {
	if d.st.CallID == "" {
		return nil
	}
	name := path.Base(file)
	if ext := strings.ToLower(path.Ext(name)); ext != ".wav" && ext != ".mp3" {
		d.c.log.Info("recording not attached: Bitrix24 takes .wav and .mp3 files only", "conversation", d.conv, "call_id", d.st.CallID, "file", name)
		return nil
	}
	params := map[string]any{"CALL_ID": d.st.CallID, "FILENAME": name}
	if link, ok := d.c.recordingURL(d.conv); ok {
		params["RECORD_URL"] = link
	} else {
		data, err := d.c.readRecording(file)
		if err != nil {
			d.c.log.Info("recording not attached", "conversation", d.conv, "call_id", d.st.CallID, "reason", err.Error())
			return nil
		}
		params["FILE_CONTENT"] = base64.StdEncoding.EncodeToString(data)
	}
	if _, err := d.c.call(d.ctx, "telephony.externalCall.attachRecord", params); err != nil {
		return err
	}
	d.st.Attached = true
	return d.save()
}

func (c *Connector) recordingURL(conv string) (string, bool) {
	if c.opts.RecordingURL == nil {
		return "", false
	}
	return c.opts.RecordingURL(conv)
}

// readRecording reads a recording to send inline: only a regular file
// under RecordingsDir (os.Root refuses '..' and symlinks out of it), at
// most InlineLimit bytes. Errors say what to configure, never the path.
func (c *Connector) readRecording(file string) ([]byte, error) {
	dir := c.opts.RecordingsDir
	if dir == "" {
		return nil, errors.New("no recording link (set http.public_url) and no http.recordings_dir to send it inline from")
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(file))
	if !filepath.IsAbs(file) || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, errors.New("the recording is outside http.recordings_dir")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errors.New("http.recordings_dir cannot be read")
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO would otherwise block the open.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.New("the recording file cannot be opened (missing, or a link out of http.recordings_dir)")
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return nil, errors.New("the recording is not a regular file")
	}
	limit := c.opts.InlineLimit
	if limit <= 0 {
		limit = DefaultInlineLimit
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("the recording is %d bytes, over the %d sent inline: set http.public_url to attach it by link", info.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil || int64(len(data)) > limit {
		return nil, errors.New("the recording file cannot be read whole")
	}
	return data, nil
}

// register registers the call with u as its user and saves the CALL_ID.
// EXTERNAL_CALL_ID is always the conversation id: Bitrix24 merges two
// registers of one user, number and type within 30 minutes otherwise
// (b24-rest-docs #175), which would merge overlapping calls from one
// number; with it, a register repeated after a lost answer returns the
// same CALL_ID.
func (d *delivery) register(u int, show bool) error {
	call := d.ev.Call
	typ := 2
	customer := call.Caller
	if call.Direction == bridge.DirectionOutbound {
		typ, customer = 1, call.Callee
	}
	number := customer.E164
	if number == "" {
		number = customer.Number
	}
	if number == "" {
		return bridge.PermanentError(errors.New("bitrix24: the call has no customer number to register"))
	}
	params := map[string]any{
		"USER_ID": u, "PHONE_NUMBER": number, "TYPE": typ,
		"CALL_START_DATE": call.StartedAt.Format(time.RFC3339), "CRM_CREATE": boolInt(d.c.opts.CRMCreate),
		"SHOW": boolInt(show), "EXTERNAL_CALL_ID": d.conv,
	}
	if d.c.opts.LineNumber != "" {
		params["LINE_NUMBER"] = d.c.opts.LineNumber
	}
	res, err := d.c.call(d.ctx, "telephony.externalcall.register", params)
	if err != nil {
		return err
	}
	var r struct {
		CallID        string          `json:"CALL_ID"`
		CRMEntityType string          `json:"CRM_ENTITY_TYPE"`
		CRMEntityID   json.RawMessage `json:"CRM_ENTITY_ID"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.CallID == "" {
		return fmt.Errorf("bitrix24: telephony.externalcall.register: no CALL_ID in the answer %s", connectors.Snippet(res, d.c.token))
	}
	d.st.CallID, d.st.User, d.st.CRMEntityType = r.CallID, u, r.CRMEntityType
	d.st.CRMEntityID, _ = strconv.ParseInt(strings.Trim(string(r.CRMEntityID), `"`), 10, 64)
	if show {
		d.st.Shown = []int{u}
	}
	return d.save()
}

// hide hides the card from users who see it.
func (d *delivery) hide(users []int) error {
	var hide []int
	for _, u := range users {
		if slices.Contains(d.st.Shown, u) {
			hide = append(hide, u)
		}
	}
	if len(hide) == 0 {
		return nil
	}
	var uid any = hide
	if len(hide) == 1 {
		uid = hide[0]
	}
	if _, err := d.c.call(d.ctx, "telephony.externalcall.hide", map[string]any{"CALL_ID": d.st.CallID, "USER_ID": uid}); err != nil {
		return err
	}
	d.st.Shown = slices.DeleteFunc(d.st.Shown, func(u int) bool { return slices.Contains(hide, u) })
	return d.save()
}

func others(users []int, u int) []int {
	return slices.DeleteFunc(slices.Clone(users), func(x int) bool { return x == u })
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// duration is the talk time of an answered call, at least 1 (talk_s
// counts whole seconds, and Bitrix24 reads a DURATION above 0 as a
// conversation), 0 otherwise.
func duration(call *bridge.Call) int64 {
	if call.Disposition != bridge.DispositionAnswered {
		return 0
	}
	if call.TalkS == nil {
		return 1
	}
	return max(*call.TalkS, 1)
}

// StatusCode is finish's STATUS_CODE for a call: 200 answered; otherwise
// from the Q.850 cause (17 busy → 486, 21 rejected → 603, 1 unallocated
// number → 404, 3/28 no route/invalid number → 484, 34/38/41/42 network
// trouble → 503), else 304 (missed) for an inbound call and 480 (no answer)
// for an outbound one.
func StatusCode(call *bridge.Call) string {
	if call.Disposition == bridge.DispositionAnswered {
		return "200"
	}
	if call.Disposition == bridge.DispositionBusy {
		return "486"
	}
	if call.HangupCause != nil {
		switch call.HangupCause.Code {
		case 17:
			return "486"
		case 21:
			return "603"
		case 1:
			return "404"
		case 3, 28:
			return "484"
		case 34, 38, 41, 42:
			return "503"
		}
	}
	if call.Direction == bridge.DirectionOutbound && call.Disposition == bridge.DispositionNoAnswer {
		return "480"
	}
	return "304"
}

// apiError is a refused Bitrix24 request.
type apiError struct {
	method string
	status int
	code   string // Bitrix24's error, e.g. QUERY_LIMIT_EXCEEDED
	desc   string
}

// notFound: the portal does not know the call as open (the answer to a
// finish of a call finished already). Another 400, such as a USER_ID it
// refuses, is a real error.
func (e *apiError) notFound() bool {
	desc := strings.ToLower(e.desc)
	return e.status == http.StatusBadRequest && (strings.Contains(e.code, "NOT_FOUND") ||
		strings.Contains(desc, "call") && (strings.Contains(desc, "not found") || strings.Contains(desc, "finished")))
}

// refused: the portal answered with an error, so it did not do what was
// asked (a rate limit, a refused parameter or token). A 5xx other than
// the rate limit, or a 200 without a result, may come after the work.
func (e *apiError) refused() bool {
	return e.status/100 == 4 || e.status == http.StatusServiceUnavailable && e.code == "QUERY_LIMIT_EXCEEDED"
}

func (e *apiError) Error() string {
	if e.status == http.StatusOK {
		return fmt.Sprintf("bitrix24: %s: HTTP 200 without a result: %s", e.method, e.desc)
	}
	msg := fmt.Sprintf("bitrix24: %s: HTTP %d", e.method, e.status)
	if e.code != "" {
		msg += " " + e.code
	}
	if e.desc != "" {
		msg += ": " + e.desc
	}
	return msg
}

// maxResponse bounds what is read of an answer.
const maxResponse = 1 << 20

// call makes one REST request and returns its result. Errors say whether a
// retry can help: rate limits (503 QUERY_LIMIT_EXCEEDED, 429
// OPERATION_TIME_LIMIT), server errors, connection errors and
// authorization errors (a token an admin can fix) are retried; other 4xx
// (refused parameters) are permanent. No message holds the token.
func (c *Connector) call(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	if err := c.lim.Wait(ctx); err != nil {
		return nil, fmt.Errorf("bitrix24: %s: waiting for the rate limit: %w", method, err)
	}
	body, err := json.Marshal(params)
	if err != nil {
		return nil, bridge.PermanentError(fmt.Errorf("bitrix24: %s: %v", method, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method+".json", bytes.NewReader(body))
	if err != nil {
		return nil, bridge.PermanentError(fmt.Errorf("bitrix24: %s: invalid webhook URL", method))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, token included
		}
		return nil, fmt.Errorf("bitrix24: %s: %s", method, c.scrub(err.Error()))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
		Desc   string          `json:"error_description"`
	}
	jsonErr := json.Unmarshal(raw, &env)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && env.Error == "" && env.Result != nil {
		return env.Result, nil
	}
	ae := &apiError{method: method, status: resp.StatusCode, code: c.scrub(env.Error), desc: c.scrub(env.Desc)}
	if jsonErr != nil || (env.Error == "" && env.Desc == "") {
		ae.desc = connectors.Snippet(raw, c.token)
	}
	ce := &bridge.ConnectorError{StatusCode: resp.StatusCode, Err: ae}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && env.Error == "QUERY_LIMIT_EXCEEDED":
		c.lim.Drain() // the portal's bucket is empty: ours waits for its refill
		ce.RetryAfter = connectors.RetryAfter(resp.Header.Get("Retry-After"))
	case resp.StatusCode/100 == 3:
		// Not followed (it could send the token elsewhere); the admin
		// fixes the URL within the retry window.
		ae.desc = "redirect not followed: check connectors.bitrix24.webhook_url"
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500, resp.StatusCode == http.StatusOK,
		resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
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
