// Package zammadtest is a fake Zammad for tests, built from the documented
// generic CTI contract (docs.zammad.org "Generic CTI", and what Zammad's
// CTI controller and caller log do): POST /api/v1/cti/<token> with JSON or
// form params; 401 {"error":"Invalid token, …"} for a wrong token; 422
// {"error":"Feature is disabled, …"} when the integration is off or a
// direction is not in|out; newCall answered {} or {"action":"reject",
// "reason":"busy"} for a blocked caller or {"action":"dial",…}; a second
// newCall of one callId and an answer or hangup of an unknown one fail with
// a 500.
package zammadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Call is one request Zammad accepted.
type Call struct {
	Event  string
	Params map[string]any
}

// Short is the call in a compact form for sequence assertions, e.g.
// "newCall(direction=in,user=[Anna])", with only the given keys that are set.
func (c Call) Short(keys ...string) string {
	var kv []string
	for _, k := range keys {
		if v, ok := c.Params[k]; ok && k != "event" {
			kv = append(kv, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return c.Event + "(" + strings.Join(kv, ",") + ")"
}

// Server is the fake Zammad.
type Server struct {
	URL   string // the CTI endpoint: <base>/api/v1/cti/<token>
	Token string
	srv   *httptest.Server

	mu       sync.Mutex
	disabled bool
	outage   bool
	blocked  []string       // caller numbers answered with reject
	dial     string         // caller id answered to outbound newCall, "" for none
	lose     map[string]int // event → answers to lose after doing the work
	calls    []Call
	refused  []Call
	logs     map[string]string // callId → state: newCall, answer, hangup
}

// Cleaner is what New needs of a test (testing.TB has it): the fake does
// not import package testing, so ctibridge's demo can run it.
type Cleaner interface{ Cleanup(func()) }

// Failer is what WaitFor needs of a test (testing.TB has it).
type Failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// New starts a fake Zammad closed when the test ends.
func New(t Cleaner) *Server {
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// Start starts a fake Zammad with the generic CTI integration on; Close
// stops it.
func Start() *Server {
	s := &Server{Token: "Zt0k3n-s3cr3t_42abc", lose: map[string]int{}, logs: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/api/v1/cti/" + s.Token
	return s
}

// SetDisabled turns the CTI (generic) integration off (422).
func (s *Server) SetDisabled(off bool) { s.mu.Lock(); s.disabled = off; s.mu.Unlock() }

// SetOutage makes every request fail with a 503 page (Zammad down).
func (s *Server) SetOutage(down bool) { s.mu.Lock(); s.outage = down; s.mu.Unlock() }

// Block makes newCall from number be answered with reject (Zammad's
// blocked caller list).
func (s *Server) Block(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked = append(s.blocked, number)
}

// DialWith makes outbound newCalls be answered with a caller id to dial with.
func (s *Server) DialWith(callerID string) { s.mu.Lock(); s.dial = callerID; s.mu.Unlock() }

// LoseAnswer makes the next n requests of event do their work but answer
// 504 (a proxy timing out): the caller cannot know it was done.
func (s *Server) LoseAnswer(event string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[event] = n
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
			t.Fatalf("zammad: %d calls, want %d: %v", len(cs), n, cs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage {
		s.refused = append(s.refused, Call{})
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api/v1/cti/") {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "No route matches"})
		return
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	call := Call{Event: str(params, "event"), Params: params}
	refuse := func(status int, msg string) {
		s.refused = append(s.refused, call)
		writeJSON(w, status, map[string]string{"error": msg})
	}
	// The controller checks the integration before the token.
	if s.disabled {
		refuse(http.StatusUnprocessableEntity, "Feature is disabled, please contact your administrator!")
		return
	}
	if strings.TrimPrefix(r.URL.Path, "/api/v1/cti/") != s.Token {
		refuse(http.StatusUnauthorized, "Invalid token, please contact your admin!")
		return
	}
	dir := str(params, "direction")
	if dir != "in" && dir != "out" {
		refuse(http.StatusUnprocessableEntity, "Invalid direction!")
		return
	}
	id := str(params, "callId")
	var reply any = map[string]any{}
	switch call.Event {
	case "newCall":
		if _, ok := s.logs[id]; ok {
			refuse(http.StatusInternalServerError, fmt.Sprintf("call_id %s already exists!", id))
			return
		}
		s.logs[id] = "newCall"
		if dir == "in" && slices.Contains(s.blocked, str(params, "from")) {
			reply = map[string]any{"action": "reject", "reason": "busy"}
		} else if dir == "out" && s.dial != "" {
			reply = map[string]any{"action": "dial", "caller_id": s.dial, "number": str(params, "to")}
		}
	case "answer", "hangup":
		st, ok := s.logs[id]
		if !ok {
			refuse(http.StatusInternalServerError, fmt.Sprintf("No such call_id %s", id))
			return
		}
		if call.Event == "hangup" {
			if !slices.Contains([]string{"normalClearing", "busy", "cancel", "noAnswer", "congestion", "notFound", "forwarded"}, str(params, "cause")) {
				refuse(http.StatusInternalServerError, "unknown cause")
				return
			}
			s.logs[id] = "hangup"
		} else if st != "hangup" { // an answer after the hangup is ignored
			s.logs[id] = "answer"
		}
	default:
		refuse(http.StatusInternalServerError, "unknown event")
		return
	}
	s.calls = append(s.calls, call)
	if s.lose[call.Event] > 0 {
		s.lose[call.Event]--
		w.WriteHeader(http.StatusGatewayTimeout)
		fmt.Fprint(w, "<html><body><h1>504 Gateway Time-out</h1></body></html>")
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readParams reads a JSON body or a form (user may repeat as user[]).
func readParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
			return nil, fmt.Errorf("body is not JSON: %v", err)
		}
		return params, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, v := range r.Form {
		if k == "user[]" {
			params["user"] = v
			continue
		}
		params[k] = v[0]
	}
	return params, nil
}

func str(p map[string]any, k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
