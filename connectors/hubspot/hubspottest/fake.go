// Package hubspottest is a fake HubSpot CRM API for tests and the demo,
// built from HubSpot's documented calls engagement and search API:
// Bearer private-app tokens (401 INVALID_AUTHENTICATION otherwise), POST
// /crm/v3/objects/calls with properties and associations, PATCH and GET
// /crm/v3/objects/calls/{id}, POST /crm/v3/objects/{calls,contacts}/search
// (filterGroups OR'd, filters AND'd, EQ), PUT /crm/v4/objects/calls/{id}/
// associations/default/contacts/{contactId}; errors as {status: "error",
// message, correlationId, category}; a rolling 10 s request budget (190 by
// default) answered 429 with X-HubSpot-RateLimit-* headers once spent; and
// a search index that may lag behind creates.
//
// It does not import package testing: ctibridge's demo runs it.
package hubspottest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Op     string // create, update, get, search-calls, search-contacts, associate
	ID     string // the call engagement the request is about ("" for a search)
	Body   map[string]any
	Status int // the status answered
	Found  int // what a search found
}

// Searched is the distinct values a search's filters looked for.
func (r Request) Searched() []string {
	var out []string
	gs, _ := r.Body["filterGroups"].([]any)
	for _, g := range gs {
		gm, _ := g.(map[string]any)
		fs, _ := gm["filters"].([]any)
		for _, f := range fs {
			fm, _ := f.(map[string]any)
			if v := fmt.Sprint(fm["value"]); !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// Props is the request's properties object, as strings.
func (r Request) Props() map[string]string {
	p, _ := r.Body["properties"].(map[string]any)
	out := map[string]string{}
	for k, v := range p {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// Contact is the contact a create associates the call with, "" if none.
func (r Request) Contact() string {
	as, _ := r.Body["associations"].([]any)
	for _, a := range as {
		m, _ := a.(map[string]any)
		to, _ := m["to"].(map[string]any)
		if id, ok := to["id"]; ok {
			return fmt.Sprint(id)
		}
	}
	return ""
}

// short names of properties in Short.
var short = map[string]string{"dir": "hs_call_direction", "status": "hs_call_status", "owner": "hubspot_owner_id",
	"from": "hs_call_from_number", "to": "hs_call_to_number", "recording": "hs_call_recording_url", "title": "hs_call_title"}

// Short is the request in a compact form for sequence assertions, e.g.
// "create(dir=INBOUND,status=RINGING,owner=7)". keys are short names (dir,
// status, owner, from, to, recording, title), "duration" (shown as 0 or
// >0: talk time depends on the clock) or "contact"; only those set show.
func (r Request) Short(keys ...string) string {
	p := r.Props()
	var kv []string
	for _, k := range keys {
		switch k {
		case "duration":
			if v, ok := p["hs_call_duration"]; ok {
				if n, _ := strconv.ParseInt(v, 10, 64); n > 0 {
					kv = append(kv, "duration>0")
				} else {
					kv = append(kv, "duration=0")
				}
			}
		case "contact":
			if c := r.Contact(); c != "" {
				kv = append(kv, "contact="+c)
			}
		default:
			name := short[k]
			if name == "" {
				name = k
			}
			if v, ok := p[name]; ok {
				kv = append(kv, k+"="+v)
			}
		}
	}
	return r.Op + "(" + strings.Join(kv, ",") + ")"
}

// Engagement is a call engagement the fake holds.
type Engagement struct {
	ID         string
	Properties map[string]string
	Contacts   []string
	CreatedAt  time.Time
}

// Server is the fake HubSpot.
type Server struct {
	URL   string // the API base, as connectors.hubspot.api_url
	Token string // the private app token it accepts
	srv   *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	budget    int // requests per window
	daily     int // requests a day (0: no daily limit)
	dailyHits int
	window    time.Duration // HubSpot's: 10 s rolling
	hits      []time.Time
	outage    bool
	lose      map[string]int // op → answers to lose after doing the work
	failing   map[string]bool
	searchLag time.Duration
	owners    map[string]bool // nil: any owner id
	contacts  map[string][]string
	calls     map[string]*Engagement
	order     []string
	nextID    int64
	reqs      []Request
	onRequest func(Request)
}

// New starts a fake HubSpot with a private app's 190 requests per 10 s.
// Close it when done.
func New() *Server {
	s := &Server{Token: "pat-na1-0f4e2c1a-7d3b-4c55-9a1e-5b6c7d8e9f00", now: time.Now, budget: 190, window: 10 * time.Second,
		lose: map[string]int{}, failing: map[string]bool{}, contacts: map[string][]string{}, calls: map[string]*Engagement{}, nextID: 50_000_000_001}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the fake's clock (rate window, search lag).
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// SetBudget sets how many requests the rolling 10 s window allows.
func (s *Server) SetBudget(n int) { s.mu.Lock(); s.budget = n; s.mu.Unlock() }

// SetDailyBudget sets the requests a day (0: none) and starts the day:
// once spent, 429 with policyName DAILY and X-HubSpot-RateLimit-Daily
// headers, as HubSpot answers until midnight in the account's time zone.
func (s *Server) SetDailyBudget(n int) { s.mu.Lock(); s.daily, s.dailyHits = n, 0; s.mu.Unlock() }

// SetOutage makes every request fail with a 503 (HubSpot down).
func (s *Server) SetOutage(down bool) { s.mu.Lock(); s.outage = down; s.mu.Unlock() }

// SetSearchLag hides objects created less than d ago from searches, as
// HubSpot's eventually consistent index does.
func (s *Server) SetSearchLag(d time.Duration) { s.mu.Lock(); s.searchLag = d; s.mu.Unlock() }

// LoseAnswer makes the next n requests of op (create, update, …) do their
// work but answer 504 (a proxy timing out): the caller cannot know it was
// done.
func (s *Server) LoseAnswer(op string, n int) { s.mu.Lock(); s.lose[op] = n; s.mu.Unlock() }

// Fail makes every request of op (create, update, …) fail with a 500
// before doing anything, until turned off.
func (s *Server) Fail(op string, fail bool) { s.mu.Lock(); s.failing[op] = fail; s.mu.Unlock() }

// SetOwners restricts hubspot_owner_id to these ids (HubSpot refuses an
// unknown owner with a 400).
func (s *Server) SetOwners(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owners = map[string]bool{}
	for _, id := range ids {
		s.owners[id] = true
	}
}

// AddContact adds a contact with this phone number and returns its id.
func (s *Server) AddContact(phone string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strconv.FormatInt(s.nextID, 10)
	s.nextID++
	s.contacts[id] = []string{phone}
	return id
}

// OnRequest calls f with each request once answered (the demo prints them).
func (s *Server) OnRequest(f func(Request)) { s.mu.Lock(); s.onRequest = f; s.mu.Unlock() }

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Calls returns the requests HubSpot did the work of (2xx, or an answer
// lost after the work), in order.
func (s *Server) Calls() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Status/100 == 2 || r.Status == http.StatusGatewayTimeout {
			out = append(out, r)
		}
	}
	return out
}

// Refused returns the requests answered with an error (a lost answer is
// not one: the work was done).
func (s *Server) Refused() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Status/100 != 2 && r.Status != http.StatusGatewayTimeout {
			out = append(out, r)
		}
	}
	return out
}

// Engagements returns the call engagements, in the order created.
func (s *Server) Engagements() []Engagement {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Engagement
	for _, id := range s.order {
		e := *s.calls[id]
		e.Properties = cloneMap(e.Properties)
		e.Contacts = slices.Clone(e.Contacts)
		out = append(out, e)
	}
	return out
}

// WaitFor waits until n requests were done and returns them.
func (s *Server) WaitFor(n int, timeout time.Duration) ([]Request, error) {
	deadline := time.Now().Add(timeout)
	for {
		cs := s.Calls()
		if len(cs) >= n {
			return cs, nil
		}
		if time.Now().After(deadline) {
			var sh []string
			for _, c := range cs {
				sh = append(sh, c.Short("status"))
			}
			return cs, fmt.Errorf("hubspot: %d requests done, want %d: %v", len(cs), n, sh)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiErr is HubSpot's error envelope.
type apiErr struct {
	status   int
	category string
	msg      string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPatch) {
		_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body)
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Body: body}
	s.mu.Lock()
	status, reply, hdr := s.handle(r, &req)
	req.Status = status
	s.reqs = append(s.reqs, req)
	hook := s.onRequest
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	if status == http.StatusGatewayTimeout || status == http.StatusServiceUnavailable {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))
	} else if status == http.StatusNoContent {
		w.WriteHeader(status)
	} else {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(reply)
	}
	if hook != nil {
		hook(req)
	}
}

// handle answers one request. s.mu is held.
func (s *Server) handle(r *http.Request, req *Request) (int, any, map[string]string) {
	now := s.now()
	req.Op = opOf(r.Method, r.URL.Path)
	if s.outage {
		return http.StatusServiceUnavailable, nil, nil
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		return s.fail(apiErr{http.StatusUnauthorized, "INVALID_AUTHENTICATION",
			"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"})
	}
	// The rolling window: requests of the last 10 s.
	s.hits = slices.DeleteFunc(s.hits, func(t time.Time) bool { return now.Sub(t) >= s.window })
	hdr := map[string]string{"X-HubSpot-RateLimit-Interval-Milliseconds": strconv.FormatInt(s.window.Milliseconds(), 10),
		"X-HubSpot-RateLimit-Max": strconv.Itoa(s.budget)}
	if s.daily > 0 {
		hdr["X-HubSpot-RateLimit-Daily"] = strconv.Itoa(s.daily)
		hdr["X-HubSpot-RateLimit-Daily-Remaining"] = strconv.Itoa(max(0, s.daily-s.dailyHits))
		if s.dailyHits >= s.daily {
			return http.StatusTooManyRequests, map[string]any{"status": "error", "message": "You have reached your daily limit.",
				"errorType": "RATE_LIMIT", "correlationId": s.corr(), "policyName": "DAILY"}, hdr
		}
	}
	if len(s.hits) >= s.budget {
		hdr["X-HubSpot-RateLimit-Remaining"] = "0"
		return http.StatusTooManyRequests, map[string]any{"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
			"errorType": "RATE_LIMIT", "correlationId": s.corr(), "policyName": "TEN_SECONDLY_ROLLING"}, hdr
	}
	s.hits = append(s.hits, now)
	s.dailyHits++
	if s.failing[req.Op] {
		st, body, _ := s.fail(apiErr{http.StatusInternalServerError, "INTERNAL_ERROR", "internal error"})
		return st, body, hdr
	}
	hdr["X-HubSpot-RateLimit-Remaining"] = strconv.Itoa(s.budget - len(s.hits))
	status, reply := s.route(r, req, now)
	if status/100 == 2 && s.lose[req.Op] > 0 {
		s.lose[req.Op]--
		return http.StatusGatewayTimeout, nil, hdr
	}
	return status, reply, hdr
}

func opOf(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == http.MethodPost && path == "/crm/v3/objects/calls":
		return "create"
	case method == http.MethodPost && path == "/crm/v3/objects/calls/search":
		return "search-calls"
	case method == http.MethodPost && path == "/crm/v3/objects/contacts/search":
		return "search-contacts"
	case len(parts) == 5 && parts[3] == "calls" && method == http.MethodPatch:
		return "update"
	case len(parts) == 5 && parts[3] == "calls" && method == http.MethodGet:
		return "get"
	case len(parts) == 9 && parts[1] == "v4" && parts[3] == "calls" && method == http.MethodPut:
		return "associate"
	}
	return method + " " + path
}

func (s *Server) corr() string {
	return fmt.Sprintf("6b1a9f2c-%04x-4e1d-8c3b-%012x", len(s.reqs)&0xffff, len(s.reqs))
}

func (s *Server) fail(e apiErr) (int, any, map[string]string) {
	return e.status, map[string]any{"status": "error", "message": e.msg, "correlationId": s.corr(), "category": e.category}, nil
}

func (s *Server) route(r *http.Request, req *Request, now time.Time) (int, any) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var e *apiErr
	var reply any
	switch req.Op {
	case "create":
		reply, e = s.create(req.Body, now)
		if e == nil {
			req.ID = reply.(map[string]any)["id"].(string)
		}
	case "update":
		req.ID = parts[4]
		reply, e = s.update(parts[4], req.Body, now)
	case "get":
		req.ID = parts[4]
		c, ok := s.calls[parts[4]]
		if !ok {
			e = notFound(parts[4])
		} else {
			reply = object(c, now)
		}
	case "search-calls", "search-contacts":
		reply, e = s.search(strings.TrimPrefix(req.Op, "search-"), req.Body, now)
		if e == nil {
			req.Found = reply.(map[string]any)["total"].(int)
		}
	case "associate":
		req.ID = parts[4]
		c, ok := s.calls[parts[4]]
		if !ok {
			e = notFound(parts[4])
		} else if _, ok := s.contacts[parts[7]]; !ok || parts[6] != "contacts" {
			e = notFound(parts[7])
		} else {
			if !slices.Contains(c.Contacts, parts[7]) {
				c.Contacts = append(c.Contacts, parts[7])
			}
			reply = map[string]any{"fromObjectTypeId": "0-48", "fromObjectId": parts[4], "toObjectTypeId": "0-1", "toObjectId": parts[7],
				"labels": []string{}}
		}
	default:
		e = &apiErr{http.StatusNotFound, "OBJECT_NOT_FOUND", "Unable to route " + r.Method + " request"}
	}
	if e != nil {
		st, body, _ := s.fail(*e)
		return st, body
	}
	if req.Op == "create" {
		return http.StatusCreated, reply
	}
	return http.StatusOK, reply
}

func notFound(id string) *apiErr {
	return &apiErr{http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found: " + id}
}

var (
	statuses   = []string{"BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING"}
	directions = []string{"INBOUND", "OUTBOUND"}
)

// checkProps validates properties as HubSpot's property types do.
func (s *Server) checkProps(props map[string]string) *apiErr {
	bad := func(msg string) *apiErr { return &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", msg} }
	for k, v := range props {
		switch k {
		case "hs_call_status":
			if !slices.Contains(statuses, v) {
				return bad(fmt.Sprintf("Property values were not valid: %q was not one of the allowed options for hs_call_status", v))
			}
		case "hs_call_direction":
			if !slices.Contains(directions, v) {
				return bad(fmt.Sprintf("Property values were not valid: %q was not one of the allowed options for hs_call_direction", v))
			}
		case "hs_call_duration", "hs_timestamp":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				if _, terr := time.Parse(time.RFC3339, v); k == "hs_call_duration" || terr != nil {
					return bad(fmt.Sprintf("Property values were not valid: %q is not a valid number for %s", v, k))
				}
			}
		case "hubspot_owner_id":
			if s.owners != nil && !s.owners[v] {
				return bad(fmt.Sprintf("Property values were not valid: %s is not a valid owner id", v))
			}
		case "hs_call_title", "hs_call_body", "hs_call_from_number", "hs_call_to_number", "hs_call_recording_url":
		default:
			return bad(fmt.Sprintf("Property values were not valid: Property %q does not exist", k))
		}
	}
	return nil
}

func propsOf(body map[string]any) (map[string]string, *apiErr) {
	p, ok := body["properties"].(map[string]any)
	if !ok {
		return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: properties is required"}
	}
	out := map[string]string{}
	for k, v := range p {
		sv, ok := v.(string)
		if !ok {
			sv = fmt.Sprint(v)
		}
		out[k] = sv
	}
	return out, nil
}

func (s *Server) create(body map[string]any, now time.Time) (any, *apiErr) {
	props, e := propsOf(body)
	if e != nil {
		return nil, e
	}
	if props["hs_timestamp"] == "" {
		return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "Property values were not valid: hs_timestamp is required"}
	}
	if e := s.checkProps(props); e != nil {
		return nil, e
	}
	var contacts []string
	as, _ := body["associations"].([]any)
	for _, a := range as {
		m, _ := a.(map[string]any)
		to, _ := m["to"].(map[string]any)
		id := fmt.Sprint(to["id"])
		types, _ := m["types"].([]any)
		if len(types) != 1 {
			return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "association types are required"}
		}
		t, _ := types[0].(map[string]any)
		if t["associationCategory"] != "HUBSPOT_DEFINED" || fmt.Sprint(t["associationTypeId"]) != "194" {
			return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "invalid association type from calls to contacts"}
		}
		if _, ok := s.contacts[id]; !ok {
			return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "One or more associations are invalid: no contact " + id}
		}
		contacts = append(contacts, id)
	}
	id := strconv.FormatInt(s.nextID, 10)
	s.nextID++
	c := &Engagement{ID: id, Properties: props, Contacts: contacts, CreatedAt: now}
	s.calls[id] = c
	s.order = append(s.order, id)
	return object(c, now), nil
}

func (s *Server) update(id string, body map[string]any, now time.Time) (any, *apiErr) {
	c, ok := s.calls[id]
	if !ok {
		return nil, notFound(id)
	}
	props, e := propsOf(body)
	if e != nil {
		return nil, e
	}
	if e := s.checkProps(props); e != nil {
		return nil, e
	}
	for k, v := range props {
		c.Properties[k] = v
	}
	return object(c, now), nil
}

func object(c *Engagement, now time.Time) map[string]any {
	props := cloneMap(c.Properties)
	props["hs_object_id"] = c.ID
	return map[string]any{"id": c.ID, "properties": props, "createdAt": c.CreatedAt.UTC().Format(time.RFC3339Nano),
		"updatedAt": now.UTC().Format(time.RFC3339Nano), "archived": false}
}

// search answers a CRM search: filterGroups are OR'd, their filters AND'd;
// EQ only (what the connector uses).
func (s *Server) search(kind string, body map[string]any, now time.Time) (any, *apiErr) {
	groups, _ := body["filterGroups"].([]any)
	if len(groups) == 0 || len(groups) > 5 {
		return nil, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "filterGroups: 1 to 5 groups are allowed"}
	}
	match := func(get func(string) string) (bool, *apiErr) {
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			fs, _ := gm["filters"].([]any)
			all := len(fs) > 0
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				if fm["operator"] != "EQ" {
					return false, &apiErr{http.StatusBadRequest, "VALIDATION_ERROR", "this fake supports operator EQ only"}
				}
				if get(fmt.Sprint(fm["propertyName"])) != fmt.Sprint(fm["value"]) {
					all = false
				}
			}
			if all {
				return true, nil
			}
		}
		return false, nil
	}
	var results []any
	switch kind {
	case "calls":
		for _, id := range s.order {
			c := s.calls[id]
			if now.Sub(c.CreatedAt) < s.searchLag {
				continue // not indexed yet
			}
			ok, e := match(func(p string) string { return c.Properties[p] })
			if e != nil {
				return nil, e
			}
			if ok {
				results = append(results, object(c, now))
			}
		}
	case "contacts":
		ids := make([]string, 0, len(s.contacts))
		for id := range s.contacts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			phone := s.contacts[id][0]
			ok, e := match(func(p string) string {
				if p == "phone" || p == "mobilephone" {
					return phone
				}
				return ""
			})
			if e != nil {
				return nil, e
			}
			if ok {
				results = append(results, map[string]any{"id": id, "properties": map[string]string{"phone": phone, "hs_object_id": id},
					"archived": false})
			}
		}
	default:
		return nil, notFound(kind)
	}
	total := len(results)
	if l, ok := body["limit"].(float64); ok && int(l) < len(results) && l > 0 {
		results = results[:int(l)]
	}
	if results == nil {
		results = []any{}
	}
	return map[string]any{"total": total, "results": results}, nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
