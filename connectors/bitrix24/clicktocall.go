package bitrix24

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// EventsPath is where ctibridge serves the Bitrix24 event handler (the
// application's handler URL is http.public_url + EventsPath).
const EventsPath = "/crm/bitrix24/events"

// PlaceRequest is a click-to-call for the Dialer: the agent's phone rings
// first, then To is dialled. ConversationID is pre-assigned: the call's
// events carry it, and its Bitrix24 state is saved under it first.
type PlaceRequest struct {
	ConversationID string
	Agent          string // extension
	To             string // the customer's number
}

// Dialer places a click-to-call through the PBX (in ctibridge: the call
// service, bridge.CallService.Place).
type Dialer interface {
	Place(ctx context.Context, req PlaceRequest) (conversationID string, err error)
}

// ClickToCallOptions configure the ONEXTERNALCALLSTART handler.
type ClickToCallOptions struct {
	// ApplicationToken is the local application's application_token:
	// every event must carry it in auth[application_token]. It is the
	// handler's only credential (Bitrix24 sends no API key).
	ApplicationToken string
	Dialer           Dialer
	// Repeat is how long a repeated CALL_ID is ignored (default 30 s:
	// Bitrix24 may deliver an event twice).
	Repeat time.Duration
	Now    func() time.Time // tests; nil: time.Now
}

// clickToCall serves ONEXTERNALCALLSTART.
type clickToCall struct {
	c     *Connector
	token [32]byte // SHA-256 of the application token: compared in constant time, whatever the lengths
	opts  ClickToCallOptions
	exts  map[int][]string // Bitrix24 user → extensions (the reverse of Users)

	mu   sync.Mutex
	seen map[string]time.Time // CALL_ID → when it was taken
}

// ClickToCall returns the handler Bitrix24 posts ONEXTERNALCALLSTART to
// (mount it at EventsPath). For each event it checks the application
// token, maps data[USER_ID] to the agent's extension, checks the number,
// ignores a CALL_ID seen within Repeat, keeps the call's state (the
// CALL_ID Bitrix24 already registered) for a new conversation id and only
// then dials: the call's events then show and finish that CALL_ID, never
// register another. The state is kept in memory until the call's first
// event (then in the store): a restart in between, as for any
// click-to-call, loses the link between the two.
func (c *Connector) ClickToCall(opts ClickToCallOptions) (http.Handler, error) {
	if !reAppToken.MatchString(opts.ApplicationToken) {
		return nil, errors.New("bitrix24: the application token must be 16 to 128 letters and digits")
	}
	if opts.Dialer == nil {
		return nil, errors.New("bitrix24: click-to-call needs a dialer")
	}
	if opts.Repeat <= 0 {
		opts.Repeat = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &clickToCall{c: c, token: sha256.Sum256([]byte(opts.ApplicationToken)), opts: opts,
		exts: map[int][]string{}, seen: map[string]time.Time{}}
	for ext, u := range c.opts.Users {
		h.exts[u] = append(h.exts[u], ext)
	}
	for _, e := range h.exts {
		slices.Sort(e)
	}
	return h, nil
}

var (
	reAppToken = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)
	// Keys Bitrix24 posts: event, event_handler_id, ts, and one level of
	// data[NAME] and auth[NAME].
	reEventKey = regexp.MustCompile(`^(?:event|event_handler_id|ts|(?:data|auth)\[[A-Za-z0-9_]{1,64}\])$`)
	reCallID   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	reNumber   = regexp.MustCompile(`^\+?[0-9]{2,20}$`)
)

// maxEventBody bounds an event's body; ONEXTERNALCALLSTART is well under 2 KiB.
const maxEventBody = 32 << 10

// eventError is a refusal: its status and a message naming the field.
type eventError struct {
	status int
	msg    string
}

func refuse(status int, format string, args ...any) *eventError {
	return &eventError{status, fmt.Sprintf(format, args...)}
}

func (h *clickToCall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, e := h.serve(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if e != nil {
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": e.msg})
		return
	}
	_ = json.NewEncoder(w).Encode(res)
}

func (h *clickToCall) serve(r *http.Request) (map[string]any, *eventError) {
	if r.Method != http.MethodPost {
		return nil, refuse(http.StatusMethodNotAllowed, "only POST: this is Bitrix24's event handler")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, refuse(http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded (a Bitrix24 event)")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody+1))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "the body could not be read")
	}
	if len(body) > maxEventBody {
		return nil, refuse(http.StatusRequestEntityTooLarge, "the body is over %d bytes", maxEventBody)
	}
	form, e := parseEvent(string(body))
	if e != nil {
		return nil, e
	}
	// The token before anything else is told about the request.
	got := sha256.Sum256([]byte(form["auth[application_token]"]))
	if subtle.ConstantTimeCompare(got[:], h.token[:]) != 1 {
		h.c.log.Warn("Bitrix24 event refused: wrong or missing auth[application_token]", "remote", r.RemoteAddr)
		return nil, refuse(http.StatusUnauthorized, "auth[application_token] is missing or is not this application's")
	}
	if ev := form["event"]; !strings.EqualFold(ev, "ONEXTERNALCALLSTART") {
		return nil, refuse(http.StatusBadRequest, "event %s is not handled here: bind only ONEXTERNALCALLSTART to this URL", quote(ev))
	}
	user, err := strconv.Atoi(form["data[USER_ID]"])
	if err != nil || user <= 0 {
		return nil, refuse(http.StatusBadRequest, "data[USER_ID] must be a Bitrix24 user id, got %s", quote(form["data[USER_ID]"]))
	}
	exts := h.exts[user]
	switch {
	case len(exts) == 0:
		return nil, refuse(http.StatusUnprocessableEntity, "Bitrix24 user %d has no extension: add it to connectors.bitrix24.users (extension: %d)", user, user)
	case len(exts) > 1:
		return nil, refuse(http.StatusUnprocessableEntity, "Bitrix24 user %d has several extensions in connectors.bitrix24.users (%s): click-to-call cannot choose", user, strings.Join(exts, ", "))
	}
	// Bitrix24 sends the number as the CRM holds it and, when it can read
	// it, in international form too: that one reaches a trunk as it is.
	numberKey := "data[PHONE_NUMBER]"
	if form["data[PHONE_NUMBER_INTERNATIONAL]"] != "" {
		numberKey = "data[PHONE_NUMBER_INTERNATIONAL]"
	}
	number, ok := cleanNumber(form[numberKey])
	if !ok {
		return nil, refuse(http.StatusBadRequest, "%s must be a phone number (digits, an optional leading +, 2 to 20 digits), got %s", numberKey, quote(form[numberKey]))
	}
	callID := form["data[CALL_ID]"]
	if !reCallID.MatchString(callID) {
		return nil, refuse(http.StatusBadRequest, "data[CALL_ID] must be Bitrix24's call id (letters, digits . _ -, up to 128), got %s", quote(callID))
	}
	if !h.take(callID) {
		h.c.log.Info("Bitrix24 click-to-call repeated: not dialled again", "call_id", callID)
		return map[string]any{"status": "repeated", "call_id": callID}, nil
	}
	conv := bridge.NewID("conv_")
	st := callState{CallID: callID, User: user, CRMEntityType: form["data[CRM_ENTITY_TYPE]"]}
	st.CRMEntityID, _ = strconv.ParseInt(form["data[CRM_ENTITY_ID]"], 10, 64)
	// The state first: the call's first event, which may be delivered
	// before Place returns, must find the CALL_ID (it is saved to the
	// store with that event: the store keeps state of known calls only).
	h.c.addPending(conv, st, h.opts.Now())
	if _, err := h.opts.Dialer.Place(r.Context(), PlaceRequest{ConversationID: conv, Agent: exts[0], To: number}); err != nil {
		if bridge.NothingSent(err) {
			h.forget(callID) // nothing dialled: a redelivery may try again
			h.c.dropPending(conv)
		}
		h.c.log.Warn("Bitrix24 click-to-call not placed", "call_id", callID, "agent", exts[0], "err", err)
		status := http.StatusBadGateway
		switch bridge.ErrorCode(err) {
		case bridge.EINVALID:
			status = http.StatusUnprocessableEntity
		case bridge.EUNAVAILABLE, bridge.ETIMEOUT:
			status = http.StatusServiceUnavailable
		}
		return nil, refuse(status, "the call was not placed: %s", bridge.ErrorMessage(err))
	}
	h.c.log.Info("Bitrix24 click-to-call placed", "call_id", callID, "conversation", conv, "agent", exts[0])
	return map[string]any{"status": "dialing", "call_id": callID, "conversation_id": conv}, nil
}

// take claims a CALL_ID; false if it was taken within Repeat.
func (h *clickToCall) take(callID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	for id, at := range h.seen { // a few per minute: a sweep is cheap
		if now.Sub(at) >= h.opts.Repeat {
			delete(h.seen, id)
		}
	}
	if _, ok := h.seen[callID]; ok {
		return false
	}
	h.seen[callID] = now
	return true
}

func (h *clickToCall) forget(callID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.seen, callID)
}

// parseEvent reads a form body strictly: only the keys Bitrix24 posts
// (event, event_handler_id, ts, data[NAME], auth[NAME]), each once.
func parseEvent(body string) (map[string]string, *eventError) {
	vals, err := url.ParseQuery(body)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "the body is not a form: %v", err)
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		if !reEventKey.MatchString(k) {
			return nil, refuse(http.StatusBadRequest, "key %s is not one Bitrix24 posts (event, event_handler_id, ts, data[NAME], auth[NAME])", quote(k))
		}
		if len(v) != 1 {
			return nil, refuse(http.StatusBadRequest, "key %s is given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	return out, nil
}

// cleanNumber takes the separators people type out of a number (spaces,
// dashes, dots, parentheses) and accepts what is left only if it is
// digits with an optional leading +.
func cleanNumber(s string) (string, bool) {
	n := strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(s)
	return n, len(s) <= 64 && reNumber.MatchString(n)
}

// quote quotes a value for a message, cut short.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
