// Package templatetest holds fake CRMs for the shipped example templates,
// each checking a request the way the CRM documents it:
//
//   - Oracle EBS Basic Telephony (CCTSDK): events POSTed as XML
//     <CCTSDK><event name="…"><data name="…" value="…"/>…</event></CCTSDK>;
//     ScreenPop needs occtSourceID, occtANI and occtDNIS; CallEstablished
//     and CallReleased carry the occtSourceID of an earlier ScreenPop.
//     A refused message is answered <CCTSDK><event name="Error"><data
//     name="occtErrorMsg" …/></event></CCTSDK>.
//   - Zoho PhoneBridge v3: POST /phonebridge/v3/callnotify, form-encoded,
//     Authorization: Zoho-oauthtoken <access token>; type=received,
//     state=ringing|answered|missed, id, from and to (E.164, the + encoded),
//     zohouser, start_time (yyyy-MM-dd HH:mm:ss GMT, required for missed);
//     400 REQUIRED_PARAM_MISSING, 401 for a bad token; the token endpoint
//     (accounts.zoho.com/oauth/v2/token) grants refresh_token.
package templatetest

import (
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Call is one request a fake accepted.
type Call struct {
	Event  string            // ScreenPop, CallEstablished … or ringing, answered, missed
	Params map[string]string // data name → value, or form key → value
}

// Short is the call in a compact form for sequence assertions, with only
// the given keys: "ScreenPop(occtDNIS=100)".
func (c Call) Short(keys ...string) string {
	var kv []string
	for _, k := range keys {
		if v, ok := c.Params[k]; ok {
			kv = append(kv, k+"="+v)
		}
	}
	return c.Event + "(" + strings.Join(kv, ",") + ")"
}

// base is what both fakes share: the log, the refusals and an outage.
type base struct {
	srv     *httptest.Server
	mu      sync.Mutex
	outage  bool
	calls   []Call
	refused []string
}

// SetOutage makes every request fail with 503 and Retry-After: 1.
func (b *base) SetOutage(down bool) { b.mu.Lock(); b.outage = down; b.mu.Unlock() }

// Calls are the accepted requests, in order.
func (b *base) Calls() []Call { b.mu.Lock(); defer b.mu.Unlock(); return slices.Clone(b.calls) }

// Refused are the refused requests' reasons (an outage's 503 included).
func (b *base) Refused() []string { b.mu.Lock(); defer b.mu.Unlock(); return slices.Clone(b.refused) }

// WaitFor waits until n requests were accepted.
func (b *base) WaitFor(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(b.Calls()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests accepted, want %d: %v (refused %v)", len(b.Calls()), n, b.Calls(), b.Refused())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *base) refuse(w http.ResponseWriter, code int, reason, body string) {
	b.refused = append(b.refused, fmt.Sprintf("%d %s", code, reason))
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// Oracle is the fake Oracle EBS CCTSDK event receiver.
type Oracle struct {
	base
	URL  string // the event URL
	pops map[string]bool
}

// NewOracle starts the fake.
func NewOracle(t testing.TB) *Oracle {
	o := &Oracle{pops: map[string]bool{}}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	o.URL = o.srv.URL + "/cctsdk/event"
	t.Cleanup(o.srv.Close)
	return o
}

type cctsdk struct {
	XMLName xml.Name `xml:"CCTSDK"`
	Events  []struct {
		Name string `xml:"name,attr"`
		Data []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"data"`
	} `xml:"event"`
}

func (o *Oracle) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	oops := func(msg string) {
		var sb strings.Builder
		_ = xml.EscapeText(&sb, []byte(msg))
		o.refuse(w, http.StatusBadRequest, msg, `<CCTSDK><event name="Error"><data name="occtErrorMsg" value="`+sb.String()+`"/></event></CCTSDK>`)
	}
	if o.outage {
		o.refuse(w, http.StatusServiceUnavailable, "outage", "down")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/cctsdk/event" {
		oops("events are POSTed to the event URL")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/xml" && mt != "application/xml" {
		oops("Content-Type " + mt + " is not XML")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var doc cctsdk
	if err := xml.Unmarshal(raw, &doc); err != nil {
		oops("not a CCTSDK message: " + err.Error())
		return
	}
	if len(doc.Events) != 1 {
		oops(fmt.Sprintf("%d events in one message", len(doc.Events)))
		return
	}
	ev := doc.Events[0]
	params := map[string]string{}
	for _, d := range ev.Data {
		if _, dup := params[d.Name]; dup {
			oops("data " + d.Name + " twice")
			return
		}
		params[d.Name] = d.Value
	}
	id := params["occtSourceID"]
	if id == "" {
		oops("occtSourceID missing")
		return
	}
	switch ev.Name {
	case "ScreenPop":
		if params["occtANI"] == "" || params["occtDNIS"] == "" {
			oops("ScreenPop needs occtANI and occtDNIS")
			return
		}
		o.pops[id] = true
	case "CallEstablished", "CallReleased":
		if !o.pops[id] {
			oops(ev.Name + ": occtSourceID matches no ScreenPop")
			return
		}
		if len(params) != 1 {
			oops(ev.Name + " carries occtSourceID only")
			return
		}
	default:
		oops("unknown event " + ev.Name)
		return
	}
	o.calls = append(o.calls, Call{Event: ev.Name, Params: params})
	w.WriteHeader(http.StatusOK)
}

// Zoho is the fake Zoho PhoneBridge API and accounts (token) server.
type Zoho struct {
	base
	URL          string // the callnotify URL
	TokenURL     string
	ClientID     string
	ClientSecret string
	RefreshToken string

	token     string // the access token granted last
	grants    int
	revokeAll bool
}

// NewZoho starts the fake with one client and refresh token.
func NewZoho(t testing.TB) *Zoho {
	z := &Zoho{ClientID: "1000.FAKECLIENT", ClientSecret: "zoho-client-s3cret", RefreshToken: "1000.refresh-s3cret"}
	z.srv = httptest.NewServer(http.HandlerFunc(z.serve))
	z.URL = z.srv.URL + "/phonebridge/v3/callnotify"
	z.TokenURL = z.srv.URL + "/oauth/v2/token"
	t.Cleanup(z.srv.Close)
	return z
}

// Grants is how many access tokens were granted.
func (z *Zoho) Grants() int { z.mu.Lock(); defer z.mu.Unlock(); return z.grants }

// RevokeTokens makes the current access token invalid (401 until renewed).
func (z *Zoho) RevokeTokens() { z.mu.Lock(); z.token = "revoked"; z.mu.Unlock() }

var (
	reE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	reID   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func (z *Zoho) serve(w http.ResponseWriter, r *http.Request) {
	z.mu.Lock()
	defer z.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/oauth/v2/token" {
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("client_id") != z.ClientID ||
			r.PostForm.Get("client_secret") != z.ClientSecret || r.PostForm.Get("refresh_token") != z.RefreshToken {
			z.refused = append(z.refused, "token: invalid_client")
			io.WriteString(w, `{"error":"invalid_client"}`) // Zoho answers 200 with an error
			return
		}
		z.grants++
		z.token = fmt.Sprintf("1000.access-%d", z.grants)
		fmt.Fprintf(w, `{"access_token":%q,"api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}`, z.token)
		return
	}
	missing := func(why string) {
		z.refuse(w, http.StatusBadRequest, why, `{"code":"REQUIRED_PARAM_MISSING","message":"`+why+`"}`)
	}
	if z.outage {
		z.refuse(w, http.StatusServiceUnavailable, "outage", `{"code":"INTERNAL_ERROR"}`)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/phonebridge/v3/callnotify" {
		z.refuse(w, http.StatusNotFound, "not callnotify", `{"code":"URL_NOT_FOUND"}`)
		return
	}
	if r.Header.Get("Authorization") != "Zoho-oauthtoken "+z.token || z.token == "" || z.token == "revoked" {
		z.refuse(w, http.StatusUnauthorized, "bad token", `{"code":"INVALID_TOKEN","message":"invalid oauth token"}`)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		missing("not form-encoded: " + mt)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		missing("form: " + err.Error())
		return
	}
	params := map[string]string{}
	for k, v := range form {
		if len(v) != 1 {
			missing(k + " given twice")
			return
		}
		params[k] = v[0]
	}
	if params["type"] != "received" {
		missing("type must be received")
		return
	}
	state := params["state"]
	if state != "ringing" && state != "answered" && state != "missed" {
		missing("state " + state)
		return
	}
	if !reID.MatchString(params["id"]) || !reE164.MatchString(params["from"]) || params["to"] == "" {
		missing("id, from (E.164) and to are mandatory")
		return
	}
	if state == "missed" {
		if _, err := time.Parse("2006-01-02 15:04:05", params["start_time"]); err != nil {
			missing("start_time yyyy-MM-dd HH:mm:ss is mandatory for missed")
			return
		}
	}
	z.calls = append(z.calls, Call{Event: state, Params: params})
	io.WriteString(w, `{"code":"SUCCESS","status":"success"}`)
}
