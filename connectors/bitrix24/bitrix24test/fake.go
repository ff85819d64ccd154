// Package bitrix24test is a fake Bitrix24 portal for tests, built from the
// documented REST contract of the telephony methods: the
// {"result":…,"time":{…}} envelope, {"error","error_description"} errors,
// the inbound webhook's token in the path, the 50-request burst then 2/s
// with 503 QUERY_LIMIT_EXCEEDED, the 30-minute register dedup (same user,
// number, type, line and EXTERNAL_CALL_ID give the same CALL_ID),
// attachRecord refused before finish, its RECORD_URL fetched once while the
// method runs (an error if that fails) or its FILE_CONTENT decoded, and the
// ONEXTERNALCALLSTART event a click on a number posts to the application's
// handler (form-encoded, PHP-style keys data[…] and auth[…]).
package bitrix24test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call is one request the portal accepted.
type Call struct {
	Method string
	Params map[string]any
}

// Short is the call in a compact form for sequence assertions, e.g.
// "register(USER_ID=7,TYPE=2)", with only the given keys that are set.
func (c Call) Short(keys ...string) string {
	var kv []string
	for _, k := range keys {
		if v, ok := c.Params[k]; ok {
			kv = append(kv, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(c.Method, "telephony.externalcall."), "telephony.externalCall.") + "(" + strings.Join(kv, ",") + ")"
}

// Server is the fake portal.
type Server struct {
	URL   string // the inbound webhook URL: <base>/rest/1/<token>/
	Token string
	srv   *httptest.Server

	mu      sync.Mutex
	now     func() time.Time
	burst   float64
	rate    float64
	tokens  float64
	at      time.Time
	outage  bool
	lose    map[string]int // method → answers to lose after doing the work
	failing map[string]bool
	calls   []Call
	refused []Call // requests answered with an error
	ids     int
	open    map[string]*extCall // by CALL_ID
	dedup   map[string]dedupEntry
	fetch   *http.Client // set: RECORD_URL is fetched
	ranges  []string     // Range headers of the fetches, in order
}

type extCall struct {
	finished bool
	attached int
	record   []byte // the attached recording's bytes
}

type dedupEntry struct {
	callID string
	at     time.Time
}

// Cleaner is what New needs of a test (testing.TB has it): the fake does
// not import package testing, so ctibridge's demo can run it.
type Cleaner interface{ Cleanup(func()) }

// Failer is what WaitFor needs of a test (testing.TB has it).
type Failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// New starts a fake portal closed when the test ends.
func New(t Cleaner) *Server {
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Close stops the portal.
func (s *Server) Close() { s.srv.Close() }

// Start starts a fake portal with Bitrix24's limits; Close stops it.
func Start() *Server {
	s := &Server{Token: "k3y5ecr3tt0k3n42", now: time.Now, burst: 50, rate: 2, tokens: 50,
		open: map[string]*extCall{}, dedup: map[string]dedupEntry{}, lose: map[string]int{}, failing: map[string]bool{}}
	s.at = s.now()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/rest/1/" + s.Token + "/"
	return s
}

// SetClock freezes or moves the portal's clock (the limiter and dedup).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now, s.at = now, now()
}

// SetLimits changes the bucket (burst, refill per second) and fills it.
func (s *Server) SetLimits(burst int, rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.burst, s.rate, s.tokens, s.at = float64(burst), rate, float64(burst), s.now()
}

// SetOutage makes every request fail with a 503 page (the portal down).
func (s *Server) SetOutage(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = down
}

// LoseAnswer makes the next n requests of method do their work but answer
// 504 (a proxy timing out): the caller cannot know it was done.
func (s *Server) LoseAnswer(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[method] = n
}

// Fail makes requests of method fail (503 page) until called with false.
func (s *Server) Fail(method string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[method] = fail
}

// Calls returns the accepted requests in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Refused returns the requests answered with an error.
func (s *Server) Refused() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.refused...)
}

// WaitFor waits until n requests were accepted and returns them.
func (s *Server) WaitFor(t Failer, n int, timeout time.Duration) []Call {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cs := s.Calls()
		if len(cs) >= n {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("bitrix24: %d calls, want %d: %v", len(cs), n, cs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type apiErr struct {
	status int
	code   string
	desc   string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage {
		s.refused = append(s.refused, Call{Method: r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]})
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "rest" || parts[1] != "1" || parts[2] != s.Token {
		writeErr(w, apiErr{401, "INVALID_CREDENTIALS", "Invalid request credentials"})
		return
	}
	method := strings.TrimSuffix(parts[3], ".json")
	params, err := readParams(r)
	if err != nil {
		writeErr(w, apiErr{400, "INVALID_REQUEST", err.Error()})
		return
	}
	// The leaky bucket: the request is counted whatever its method.
	now := s.now()
	s.tokens = min(s.burst, s.tokens+now.Sub(s.at).Seconds()*s.rate)
	s.at = now
	if s.tokens < 1 {
		s.refused = append(s.refused, Call{method, params})
		writeErr(w, apiErr{503, "QUERY_LIMIT_EXCEEDED", "Too many requests"})
		return
	}
	s.tokens--
	if s.failing[method] {
		s.refused = append(s.refused, Call{method, params})
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
		return
	}
	result, e := s.handle(method, params, now)
	if e != nil {
		s.refused = append(s.refused, Call{method, params})
		writeErr(w, *e)
		return
	}
	s.calls = append(s.calls, Call{method, params})
	if s.lose[method] > 0 {
		s.lose[method]--
		w.WriteHeader(http.StatusGatewayTimeout)
		fmt.Fprint(w, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
		return
	}
	end := time.Now()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"result": result, "time": map[string]any{
		"start": float64(start.UnixNano()) / 1e9, "finish": float64(end.UnixNano()) / 1e9,
		"duration": end.Sub(start).Seconds(), "processing": end.Sub(start).Seconds(),
		"date_start": start.Format(time.RFC3339), "date_finish": end.Format(time.RFC3339),
	}})
}

func writeErr(w http.ResponseWriter, e apiErr) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
}

// readParams reads a JSON body or a form (flat keys only).
func readParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		d := json.NewDecoder(r.Body)
		d.UseNumber()
		if err := d.Decode(&params); err != nil {
			return nil, fmt.Errorf("body is not JSON: %v", err)
		}
		return params, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, v := range r.Form {
		params[k] = v[0]
	}
	return params, nil
}

func str(p map[string]any, k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func isInt(p map[string]any, k string) bool {
	_, err := strconv.Atoi(str(p, k))
	return err == nil
}

func (s *Server) handle(method string, p map[string]any, now time.Time) (any, *apiErr) {
	bad := func(desc string) *apiErr { return &apiErr{400, "ERROR_ARGUMENT", desc} }
	notFound := &apiErr{400, "ERROR_NOT_FOUND", "Call is not found or finished"}
	call := func() *extCall {
		c := s.open[str(p, "CALL_ID")]
		if c == nil || c.finished {
			return nil
		}
		return c
	}
	switch method {
	case "telephony.externalcall.register":
		if !isInt(p, "USER_ID") && str(p, "USER_PHONE_INNER") == "" {
			return nil, bad("USER_ID or USER_PHONE_INNER is required")
		}
		if str(p, "PHONE_NUMBER") == "" {
			return nil, bad("PHONE_NUMBER is required")
		}
		if t, _ := strconv.Atoi(str(p, "TYPE")); t < 1 || t > 5 {
			return nil, bad("TYPE must be 1..5")
		}
		if _, err := time.Parse(time.RFC3339, str(p, "CALL_START_DATE")); err != nil {
			return nil, bad("CALL_START_DATE must be an ISO 8601 date with a zone")
		}
		key := strings.Join([]string{str(p, "USER_ID"), str(p, "USER_PHONE_INNER"), str(p, "PHONE_NUMBER"),
			str(p, "TYPE"), str(p, "LINE_NUMBER"), str(p, "EXTERNAL_CALL_ID")}, "\x00")
		id := ""
		if d, ok := s.dedup[key]; ok && now.Sub(d.at) < 30*time.Minute {
			id = d.callID // the documented dedup: the same call again
		} else {
			s.ids++
			id = fmt.Sprintf("externalCall.%08x.%d", s.ids*2654435761, s.ids)
			s.open[id] = &extCall{}
			s.dedup[key] = dedupEntry{id, now}
		}
		return map[string]any{"CALL_ID": id, "CRM_CREATED_LEAD": nil, "CRM_ENTITY_TYPE": "CONTACT",
			"CRM_ENTITY_ID": 1, "LEAD_CREATION_ERROR": nil}, nil
	case "telephony.externalcall.show", "telephony.externalcall.hide":
		if call() == nil {
			return nil, notFound
		}
		if p["USER_ID"] == nil {
			return nil, bad("USER_ID is required")
		}
		return true, nil
	case "telephony.externalcall.finish":
		c := call()
		if c == nil {
			return nil, notFound
		}
		if !isInt(p, "USER_ID") || !isInt(p, "DURATION") {
			return nil, bad("USER_ID and DURATION are required")
		}
		c.finished = true
		return map[string]any{"CALL_ID": str(p, "CALL_ID"), "CALL_DURATION": str(p, "DURATION"),
			"CALL_FAILED_CODE": str(p, "STATUS_CODE"), "PORTAL_USER_ID": str(p, "USER_ID")}, nil
	case "telephony.externalCall.attachRecord", "telephony.externalcall.attachRecord":
		c := s.open[str(p, "CALL_ID")]
		if c == nil {
			return nil, notFound
		}
		if !c.finished {
			return nil, &apiErr{400, "ERROR_CALL_NOT_FINISHED", "Call is not finished yet"}
		}
		name := str(p, "FILENAME")
		if !strings.HasSuffix(name, ".mp3") && !strings.HasSuffix(name, ".wav") {
			return nil, bad("FILENAME must end in .mp3 or .wav")
		}
		var data []byte
		if fc := str(p, "FILE_CONTENT"); fc != "" {
			var err error
			if data, err = base64.StdEncoding.Strict().DecodeString(fc); err != nil {
				return nil, bad("FILE_CONTENT is not base64")
			}
		} else if u, err := url.Parse(str(p, "RECORD_URL")); err != nil || u.Host == "" {
			return nil, bad("RECORD_URL or FILE_CONTENT is required")
		} else if s.fetch != nil {
			// One attempt, while the method runs (the documented behaviour).
			if data, err = s.download(u.String()); err != nil {
				return nil, &apiErr{400, "ERROR_RECORD_DOWNLOAD", "Could not download the record: " + err.Error()}
			}
		}
		c.attached++
		c.record = data
		return map[string]any{"FILE_ID": c.attached}, nil
	}
	return nil, &apiErr{404, "ERROR_METHOD_NOT_FOUND", "Method not found!"}
}

// FetchRecordings makes attachRecord download RECORD_URL with client, as
// the portal does, in two ranges (bytes=0-9, then bytes=10-) the way a
// resuming downloader would.
func (s *Server) FetchRecordings(client *http.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetch = client
}

// Recording returns the bytes attached to a call (fetched or inline).
func (s *Server) Recording(callID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.open[callID]; c != nil {
		return c.record
	}
	return nil
}

// Ranges returns the Range headers of the recording downloads.
func (s *Server) Ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// download fetches u in two ranges and checks each answer's Content-Range.
func (s *Server) download(u string) ([]byte, error) {
	get := func(rng string) ([]byte, int64, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Range", rng)
		s.ranges = append(s.ranges, rng)
		resp, err := s.fetch.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			return nil, 0, fmt.Errorf("HTTP %d for Range %s", resp.StatusCode, rng)
		}
		var first, last, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err != nil || last-first+1 != int64(len(b)) {
			return nil, 0, fmt.Errorf("bad Content-Range %q for %d bytes", resp.Header.Get("Content-Range"), len(b))
		}
		return b, total, nil
	}
	head, total, err := get("bytes=0-9")
	if err != nil || total <= int64(len(head)) {
		return head, err
	}
	rest, _, err := get("bytes=" + strconv.Itoa(len(head)) + "-")
	if err != nil {
		return nil, err
	}
	return append(head, rest...), nil
}

// NewExternalCall registers a call as the portal does itself when a user
// clicks a number (before it posts ONEXTERNALCALLSTART) and returns its
// CALL_ID: the bridge must only show and finish it, never register it.
func (s *Server) NewExternalCall() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids++
	id := fmt.Sprintf("externalCall.%08x.%d", s.ids*2654435761, s.ids)
	s.open[id] = &extCall{}
	return id
}

// ExternalCallStart is the event a click on a number posts.
type ExternalCallStart struct {
	Handler          string // the application's handler URL
	ApplicationToken string
	UserID           int
	PhoneNumber      string
	CallID           string
	Extra            url.Values // more keys, or overrides
}

// PostExternalCallStart posts ONEXTERNALCALLSTART to the handler as the
// portal's event queue does: application/x-www-form-urlencoded with
// PHP-style keys. It returns the status and body of the answer.
func (s *Server) PostExternalCallStart(e ExternalCallStart) (int, string, error) {
	form := url.Values{
		"event":                   {"ONEXTERNALCALLSTART"},
		"event_handler_id":        {"7"},
		"data[USER_ID]":           {strconv.Itoa(e.UserID)},
		"data[PHONE_NUMBER]":      {e.PhoneNumber},
		"data[CALL_ID]":           {e.CallID},
		"data[CRM_ENTITY_TYPE]":   {"CONTACT"},
		"data[CRM_ENTITY_ID]":     {"42"},
		"data[LINE_NUMBER]":       {""},
		"data[IS_MOBILE]":         {"N"},
		"ts":                      {strconv.FormatInt(time.Now().Unix(), 10)},
		"auth[domain]":            {"portal.bitrix24.test"},
		"auth[client_endpoint]":   {"https://portal.bitrix24.test/rest/"},
		"auth[server_endpoint]":   {"https://oauth.bitrix.info/rest/"},
		"auth[member_id]":         {"a223c6b3710f85df22e9377d6c4f7553"},
		"auth[application_token]": {e.ApplicationToken},
	}
	for k, v := range e.Extra {
		form[k] = v
	}
	resp, err := http.Post(e.Handler, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
