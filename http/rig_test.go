package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/esl/esltest"
	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
	"github.com/staskobzar/goami2"
)

// rig is the product wired as serve wires it, on loopback: a simulated
// PBX, the adapter, the engine, a real SQLite store, the dispatcher and a
// signature-checking receiver, and the HTTP server with API keys.
type rig struct {
	t      *testing.T
	db     *store.DB
	engine *bridge.Engine
	srv    *apihttp.Server
	base   string
	rcv    *webhookstest.Receiver
	secret string
	ast    *amitest.Server
	fs     *esltest.Server
	up     func() bool
	keys   map[string]string // scope -> key
	keyIDs map[string]string // scope -> key id

	mu        sync.Mutex
	committed []bridge.Record
}

type rigOptions struct {
	pbx      string // asterisk (default) or freeswitch
	onAction func(r *rig, a *goami2.Message) bool
	api      func(cmd, args string) (string, bool)
	setup    func(s *apihttp.Server)
	noKeys   bool
	// stateHold is the engine's StateHoldMax (0: its default).
	stateHold time.Duration
	listen    string             // default 127.0.0.1:0
	preload   func(db *store.DB) // before the server starts
	esl       esl.CommanderOptions
	// retryWindow is the dispatcher's (default: its own, 72 h).
	retryWindow time.Duration
	// tenants are the call model's tenant rules (tenant_test.go).
	tenants bridge.Tenants
	// publicTenantEndpoints keeps the default delivery policy for
	// endpoints tenants make: public addresses only.
	publicTenantEndpoints bool
}

// scriptedAMI answers Success to actions the simulator has no capture for.
var scriptedAMI = map[string]string{"atxfer": "Atxfer successfully queued", "cancelatxfer": "Attended transfer cancelled",
	"playdtmf": "DTMF successfully queued", "queueadd": "Added interface to queue", "queueremove": "Removed interface from queue",
	"queuepause": "Interface paused successfully"}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, keys: map[string]string{}, keyIDs: map[string]string{}}
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(filepath.Join(t.TempDir(), "ctibridge.db"), store.Options{Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.db = db
	if o.preload != nil {
		o.preload(db)
	}
	r.secret = bridge.NewWebhookSecret()
	r.rcv = webhookstest.NewReceiver(t, r.secret)
	cfgEPs := []bridge.Endpoint{{ID: "crm", URL: r.rcv.URL, Secret: r.secret, Events: []string{"call.*", "recording.*", "agent.*"}, Source: "config"}}

	deliveries := apihttp.NewDeliveryMetrics()
	// Tenants' endpoints reach the loopback receivers here unless the test
	// is about the default (public addresses only).
	policy := webhooks.DefaultPolicy()
	policy.TenantsLikeOperator = !o.publicTenantEndpoints
	disp := webhooks.New(db, webhooks.Options{Logger: log, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		RetryWindow: o.retryWindow, Observer: deliveries, Policy: &policy})
	deliveries.Backlog = disp.Backlogs
	tc := bridge.TrackerConfig{PBX: "pbx1", AgentPattern: regexp.MustCompile(`^[0-9]{2,6}$`), Tenants: o.tenants}
	if o.pbx != "freeswitch" {
		tc.InboundContexts = []string{"inbound"}
	}
	r.engine = bridge.NewEngine(bridge.NewTracker(tc), db, disp, bridge.EngineOptions{Endpoints: cfgEPs, Logger: log, StateHoldMax: o.stateHold})
	r.engine.Subscribe(func(recs []bridge.Record) {
		r.mu.Lock()
		r.committed = append(r.committed, recs...)
		r.mu.Unlock()
	})
	r.srv = apihttp.NewServer(r.engine, db, log)
	r.srv.PBXName, r.srv.Dispatcher = "pbx1", disp
	endpoints := bridge.NewEndpoints(db, cfgEPs, disp.AddressPolicy(), o.tenants)
	r.srv.Endpoints = endpoints
	r.srv.Deliveries = deliveries
	r.srv.Heartbeat = 20 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	var runPBX func(context.Context) error
	var pbx bridge.PBX
	switch o.pbx {
	case "freeswitch":
		sim, err := esltest.NewServer(esltest.Options{API: o.api})
		if err != nil {
			t.Fatal(err)
		}
		r.fs = sim
		client := esl.New(esl.Config{Address: sim.Addr(), Password: "ClueCon", ReorderWindow: 5 * time.Millisecond, Logger: log}, r.engine)
		eo := o.esl
		if eo.AgentDial == "" {
			eo.AgentDial = "loopback/{agent}/default"
		}
		if eo.RecordDir == "" {
			eo.RecordDir = "/rec"
		}
		pbx = esl.NewCommander(client, eo)
		r.engine.Follow(client)
		runPBX = client.Run
	default:
		sim, err := amitest.NewServer(amitest.ServerOptions{OnAction: func(a *goami2.Message) bool {
			if o.onAction != nil && o.onAction(r, a) {
				return true
			}
			if msg, ok := scriptedAMI[strings.ToLower(a.Field("Action"))]; ok {
				_ = r.ast.Reply(a, amitest.Response(a, "Success", "Message", msg))
				return true
			}
			return false
		}})
		if err != nil {
			t.Fatal(err)
		}
		r.ast = sim
		client := ami.New(ami.Config{Address: sim.Addr(), Username: "bridge", Secret: "bridgepass", PingInterval: -1,
			ActionIDPrefix: "t-", Logger: log}, r.engine)
		pbx = ami.NewCommander(client, ami.CommanderOptions{AgentChannel: "Local/{agent}@agents", OutboundContext: "inbound", TransferContext: "inbound"})
		r.engine.Follow(client)
		runPBX = client.Run
	}
	r.up = pbx.Connected
	r.srv.Calls = bridge.NewCallService(r.engine, bridge.CallServiceOptions{PBX: pbx, History: db})
	agents := bridge.NewAgents(pbx)
	r.engine.Subscribe(agents.Apply)
	if err := agents.Restore(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	r.srv.Agents = agents
	if o.setup != nil {
		o.setup(r.srv)
	}
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	if err := r.srv.Listen(o.listen); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(r.srv.Addr())
	r.base = "http://127.0.0.1:" + port

	var wg sync.WaitGroup
	engCtx, stopEngine := context.WithCancel(context.Background())
	dispCtx, stopDisp := context.WithCancel(context.Background())
	wg.Add(4)
	go func() { defer wg.Done(); _ = r.engine.Run(engCtx) }()
	go func() { defer wg.Done(); _ = disp.Run(dispCtx) }()
	go func() { defer wg.Done(); _ = r.srv.Serve() }()
	pbxDone := make(chan struct{})
	go func() { defer wg.Done(); defer close(pbxDone); _ = runPBX(ctx) }()
	t.Cleanup(func() {
		cancel()
		if r.ast != nil {
			r.ast.Close()
		}
		if r.fs != nil {
			r.fs.Close()
		}
		<-pbxDone
		stopEngine()
		stopDisp()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = r.srv.Shutdown(sctx)
		wg.Wait()
		db.Close()
	})
	if err := endpoints.Push(context.Background(), r.engine, disp); err != nil {
		t.Fatal(err)
	}
	r.waitFor("PBX link", r.up)
	// The link is up before the adapter has written its resync request:
	// wait for it, so the bytes a test marks are the test's own.
	r.waitFor("resync request", func() bool {
		if r.ast != nil {
			for _, a := range r.ast.Actions() {
				if a.Field("Action") == "ParkedCalls" {
					return true // the resync's last list, sent after the others completed
				}
			}
			return false
		}
		rcv := r.fs.Received()
		return len(rcv) > 0 && bytes.Contains(rcv[0], []byte("show calls as json"))
	})
	if !o.noKeys {
		for _, scope := range []string{"read", "control", "admin"} {
			key, k, err := db.CreateAPIKey(context.Background(), scope+"-key", []string{scope})
			if err != nil {
				t.Fatal(err)
			}
			r.keys[scope], r.keyIDs[scope] = key, k.ID
		}
	}
	return r
}

// waitFor polls cond (the pieces under test tell no one of their state).
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type resp struct {
	status int
	header nethttp.Header
	body   []byte
}

func (p resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.body, &m); err != nil {
		t.Fatalf("body %q: %v", p.body, err)
	}
	return m
}

// problem checks an RFC 9457 answer.
func (p resp) problem(t *testing.T, status int, field string) map[string]any {
	t.Helper()
	if p.status != status || p.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %s, want %d problem", p.status, p.header.Get("Content-Type"), p.body, status)
	}
	m := p.json(t)
	if m["status"] != float64(status) || m["detail"] == "" || (field != "" && m["field"] != field) {
		t.Fatalf("problem %s, want field %q", p.body, field)
	}
	return m
}

// call makes a request with the key of a scope ("" for none).
func (r *rig) call(method, path, scope string, body any, hdr ...string) resp {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(r.t, b))
	}
	req, err := nethttp.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if scope != "" {
		req.Header.Set("Authorization", "Bearer "+r.keys[scope])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records returns the committed events, in commit order.
func (r *rig) records() []bridge.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Record(nil), r.committed...)
}

// events returns the committed events of one conversation.
func (r *rig) events(conv string) []bridge.Event {
	var out []bridge.Event
	for _, rec := range r.records() {
		if rec.ConversationID == conv {
			var ev bridge.Event
			if err := json.Unmarshal(rec.Payload, &ev); err != nil {
				r.t.Fatal(err)
			}
			out = append(out, ev)
		}
	}
	return out
}

func types(evs []bridge.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type)
	}
	return strings.Join(s, ",")
}

// waitEvents waits until conv has an event of type last.
func (r *rig) waitEvents(conv, last string) []bridge.Event {
	r.t.Helper()
	r.waitFor(last+" of "+conv, func() bool {
		for _, e := range r.events(conv) {
			if e.Type == last {
				return true
			}
		}
		return false
	})
	return r.events(conv)
}

// amiSent returns what the bridge wrote to the simulator since mark.
func (r *rig) amiSent(mark int) string { return string(r.ast.Received()[mark:]) }

// eslSent returns what the bridge wrote to the simulator since mark.
func (r *rig) eslSent(mark int) string { return string(r.fs.Received()[0][mark:]) }

func lines(s ...string) string { return strings.Join(s, "\r\n") + "\r\n\r\n" }

// rewrite replaces whole header values in captured frames (the ids of a
// capture become the ids the bridge pre-assigned).
func rewrite(frames []amitest.Frame, ids map[string]string) []amitest.Frame {
	out := make([]amitest.Frame, len(frames))
	for i, f := range frames {
		ls := strings.Split(string(f.Raw), "\r\n")
		for j, l := range ls {
			if name, v, ok := strings.Cut(l, ": "); ok {
				if n, ok := ids[v]; ok {
					ls[j] = name + ": " + n
				}
			}
		}
		out[i] = amitest.Frame{Raw: []byte(strings.Join(ls, "\r\n"))}
	}
	return out
}

// liveCall plays a capture up to the moment both parties are bridged and
// returns the conversation id and the rest of the frames.
func (r *rig) liveCall(capture string) (string, []amitest.Frame) {
	r.t.Helper()
	frames := r.ast.Rewrite(amitest.EventsOf(amitest.Frames(capture)))
	cut, enters := 0, 0
	for i, f := range frames {
		if f.Event() == "BridgeEnter" {
			if enters++; enters == 2 {
				cut = i + 1
				break
			}
		}
	}
	before := len(r.records())
	if err := r.ast.PlayFrames(frames[:cut], amitest.PlayOptions{}); err != nil {
		r.t.Fatal(err)
	}
	var conv string
	r.waitFor("call.answered", func() bool {
		for _, rec := range r.records()[before:] {
			if rec.Type == bridge.EventCallAnswered {
				conv = rec.ConversationID
				return true
			}
		}
		return false
	})
	return conv, frames[cut:]
}
