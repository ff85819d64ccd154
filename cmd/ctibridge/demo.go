package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
	"github.com/staskobzar/goami2"
)

// demoCalls is the mix of real captured calls the demo plays.
var demoCalls = map[string][]string{
	"asterisk":   {"inbound-call-basic", "originate-busy", "queue-call", "blind-transfer", "mixmonitor", "hangup-action"},
	"freeswitch": {"basic-call-plain", "blind-transfer", "record", "kill", "callcenter"},
}

// demo runs a simulated PBX, a local CRM receiver and the bridge between
// them, prints what the CRM receives, and exits when every event arrived.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", `Usage: ctibridge demo [--pbx asterisk|freeswitch] [--crm bitrix24|zammad|hubspot] [--calls N] [--keep] [-v]

Runs a simulated PBX, a local CRM receiver and ctibridge between them, plays
real captured calls and prints each webhook the CRM receives. With --crm, a
fake of that CRM runs too, with its connector configured against it, and the
demo ends by printing, per call, the requests your CRM would get. Needs no
setup and leaves nothing behind. Ctrl-C or SIGTERM stops it at once.
`)
	pbxType := fs.String("pbx", "asterisk", "simulated PBX: asterisk or freeswitch")
	rounds := fs.Int("calls", 1, "how many times to play the mix of calls")
	pace := fs.Duration("pace", 15*time.Millisecond, "delay between PBX events")
	verbose := fs.Bool("v", false, "show ctibridge's log")
	crmName := fs.String("crm", "", "also run a fake CRM (bitrix24, zammad or hubspot) with its connector, and print the requests it receives")
	keep := fs.Bool("keep", false, "keep the simulated PBX, ctibridge and the CRM receiver running after the calls, until Ctrl-C")
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	calls, ok := demoCalls[*pbxType]
	if !ok {
		return usageError{fmt.Errorf("--pbx must be asterisk or freeswitch, got %q", *pbxType)}
	}
	if *rounds < 1 {
		return usageError{errors.New("--calls must be at least 1")}
	}
	dir, err := os.MkdirTemp("", "ctibridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	secret := bridge.NewWebhookSecret()
	// The receiver prints from its handlers while demo prints its own lines.
	stdout = &lockedWriter{w: stdout}
	p := &printer{w: stdout, start: time.Now()}
	receiver, err := webhookstest.NewServer("127.0.0.1:0", secret, p.print)
	if err != nil {
		return fmt.Errorf("CRM receiver: %w", err)
	}
	defer receiver.Close()

	cfg := config.Default()
	cfg.PBX.Name = "demo-" + *pbxType
	cfg.PBX.Type = *pbxType
	cfg.PBX.Username, cfg.PBX.Secret = "bridge", randomToken()
	sim, err := newSimPBX(*pbxType, "127.0.0.1:0", cfg.PBX.Username, cfg.PBX.Secret, *pace, 0.2, nil)
	if err != nil {
		return err
	}
	defer sim.close()
	// Ctrl-C or SIGTERM: closing the simulator ends a play at once.
	defer context.AfterFunc(ctx, sim.close)()
	cfg.PBX.Address = sim.addr
	clickToCall := false
	if *pbxType == "asterisk" {
		cfg.Calls.InboundContexts = []string{"inbound"}
		// The dialplan of the captures' Asterisk (shared/fixtures/asterisk/config).
		cfg.Commands.AgentDial, cfg.Commands.Context = "Local/{agent}@agents", "inbound"
		// The simulated Asterisk answers a click-to-call with the real
		// capture of one, under the channel ids ctibridge assigned.
		clickToCall = true
	}
	cfg.Store.Path = filepath.Join(dir, "ctibridge.db")
	cfg.Store.Synchronous = "NORMAL"
	cfg.HTTP.Listen = "127.0.0.1:0"
	// No API key on this loopback-only demo: its own click-to-call, and
	// yours with curl, control calls without one (never webhooks).
	cfg.HTTP.Anonymous = "control"
	cfg.Webhooks = []config.Webhook{{ID: "crm", URL: receiver.URL, Secret: secret}}
	var crm *demoCRM // demo_crm.go
	if *crmName != "" {
		if crm, err = startDemoCRM(*crmName, &cfg); err != nil {
			return err
		}
		defer crm.close()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	stopped := ctx // ends on Ctrl-C or SIGTERM
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	startedc := make(chan running, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, log, func(r running) { startedc <- r }) }()
	// halt stops ctibridge before the deferred clean-up removes its
	// database; on Ctrl-C or SIGTERM the error is the context's (exit 0).
	halt := func(err error) error {
		cancel()
		<-served
		p.stop()
		if stopped.Err() != nil {
			return stopped.Err()
		}
		return err
	}
	var r running
	select {
	case r = <-startedc:
	case err := <-served:
		return err
	}
	// Before the link is up: the resync's first webhooks (agent states)
	// print right after this line.
	fmt.Fprintf(stdout, "ctibridge demo: simulated %s on %s, CRM receiver on %s, API on http://%s\n\n",
		*pbxType, cfg.PBX.Address, receiver.URL, r.HTTPAddr)
	if link, err := panelLoginLink(ctx, r.DB, r.HTTPAddr, "100"); err == nil { // apikey.go
		fmt.Fprintf(stdout, "agent panel, signed in as agent 100 (the link works once, for 10 minutes; add --keep to stay): %s\n\n", link)
	}
	if err := waitFor(ctx, 10*time.Second, func() bool { up, _ := r.Engine.LinkState(); return up }); err != nil {
		return halt(fmt.Errorf("ctibridge did not connect to the simulated PBX: %w", err))
	}

	for i := 0; i < *rounds; i++ {
		for _, name := range calls {
			if err := sim.play(ctx, name); err != nil {
				return halt(fmt.Errorf("playing %s: %w", name, err))
			}
		}
	}
	played := len(calls) * *rounds
	if clickToCall {
		// A CRM's click-to-call: agent 101 first, then 600.
		req, _ := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, "http://"+r.HTTPAddr+"/v1/calls", strings.NewReader(`{"agent":"101","to":"600"}`))
		req.Header.Set("Content-Type", "application/json")
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			return halt(fmt.Errorf("click-to-call: %w", err))
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != nethttp.StatusAccepted {
			return halt(fmt.Errorf("click-to-call: %s %s", res.Status, body))
		}
		fmt.Fprintf(stdout, "\n  CRM → POST /v1/calls {\"agent\":\"101\",\"to\":\"600\"} → %d %s\n", res.StatusCode, strings.TrimSpace(string(body)))
		played++
		var accepted struct{ ID string }
		_ = json.Unmarshal(body, &accepted)
		if err := waitFor(ctx, 30*time.Second, func() bool {
			for _, d := range receiver.Deliveries() {
				if d.ConversationID == accepted.ID && d.Type == "call.ended" {
					return true
				}
			}
			return false
		}); err != nil {
			return halt(fmt.Errorf("the click-to-call %s did not end: %w", accepted.ID, err))
		}
	}
	// Done when every call has ended and every committed event has been
	// acknowledged by the CRM.
	err = waitFor(ctx, 30*time.Second, func() bool {
		return len(r.Engine.Live()) == 0 && r.Engine.QueueLen.Load() == 0 &&
			r.Engine.Emitted.Load() > 0 && int64(len(receiver.Deliveries())) >= r.Engine.Emitted.Load()
	})
	if err != nil {
		return halt(fmt.Errorf("not every event reached the CRM: %d committed, %d delivered", r.Engine.Emitted.Load(), len(receiver.Deliveries())))
	}
	if crm != nil {
		if err := waitFor(ctx, 60*time.Second, func() bool { return crm.settled(ctx, r.DB) }); err != nil {
			return halt(fmt.Errorf("not every event reached %s: %w", crm.title, err))
		}
		crm.report(ctx, stdout, r.DB)
	}
	bad := 0
	for _, d := range receiver.Requests() {
		if d.Err != nil {
			bad++
		}
	}
	fmt.Fprintf(stdout, "\n%d calls, %d webhooks delivered, %d with a bad signature. API was at http://%s/v1/calls\n",
		played, len(receiver.Deliveries()), bad, r.HTTPAddr)
	if *keep {
		fmt.Fprintf(stdout, "\n--keep: still running (simulated %s on %s, API on http://%s); Ctrl-C to stop\n", *pbxType, cfg.PBX.Address, r.HTTPAddr)
		<-ctx.Done()
	}
	cancel()
	serveErr := <-served
	p.stop()
	if stopped.Err() != nil {
		return stopped.Err()
	}
	return serveErr
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// printer shows each webhook the way an agent's CRM would.
// lockedWriter serialises writes; fmt.Fprintf writes a line in one call.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type printer struct {
	mu      sync.Mutex
	w       io.Writer
	start   time.Time
	stopped bool
}

// stop ends printing: a late resend must not write after demo returned.
func (p *printer) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

func (p *printer) print(d webhookstest.Delivery) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	if d.Err != nil {
		fmt.Fprintf(p.w, "!! rejected webhook %s: %v\n", d.ID, d.Err)
		return
	}
	b := d.Body
	call, _ := b["call"].(map[string]any)
	conv := d.ConversationID
	if len(conv) > 12 {
		conv = "…" + conv[len(conv)-6:]
	}
	line := ""
	switch d.Type {
	case "call.ringing":
		line = fmt.Sprintf("SCREEN POP  agent %s: %s call from %s to %s", agentOf(b), str(call, "direction"), party(call, "caller"), party(call, "callee"))
		if q := str(call, "queue"); q != "" {
			line += " via queue " + q
		}
	case "call.ring_ended":
		line = fmt.Sprintf("pop closed  agent %s stopped ringing", agentOf(b))
		if str(b, "party") == "customer" {
			line = fmt.Sprintf("not answered by the customer %s", party(call, "callee"))
		}
	case "call.answered":
		switch {
		case str(b, "party") == "customer":
			line = fmt.Sprintf("ANSWERED    by the customer %s", party(call, "callee"))
		case str(call, "state") == "dialing": // a click-to-call: the agent picked up
			line = fmt.Sprintf("ANSWERED    by agent %s: now dialling %s", agentOf(b), party(call, "callee"))
		default:
			line = fmt.Sprintf("ANSWERED    by agent %s after %ss", agentOf(b), num(call, "wait_s"))
		}
	case "call.held", "call.resumed":
		line = strings.ToUpper(strings.TrimPrefix(d.Type, "call."))
	case "call.transferred":
		t, _ := b["transfer"].(map[string]any)
		line = fmt.Sprintf("TRANSFERRED %s from agent %s to %s", str(t, "mode"), agentOf(t), str(t, "to"))
	case "call.queued":
		line = fmt.Sprintf("queued      %s waits in queue %s", party(call, "caller"), str(call, "queue"))
	case "call.abandoned":
		line = fmt.Sprintf("ABANDONED   %s hung up in queue %s", party(call, "caller"), str(call, "queue"))
	case "call.failed":
		line = "FAILED      click-to-call did not connect"
	case "call.ended":
		hc, _ := call["hangup_cause"].(map[string]any)
		if _, talked := call["talk_s"]; talked {
			line = fmt.Sprintf("RELEASED    %s, talk %ss of %ss, %s (%s), hung up by %s", str(call, "disposition"),
				num(call, "talk_s"), num(call, "duration_s"), str(hc, "text"), num(hc, "code"), str(call, "hangup_by"))
		} else {
			line = fmt.Sprintf("RELEASED    %s, not answered, after %ss, %s (%s)", str(call, "disposition"),
				num(call, "duration_s"), str(hc, "text"), num(hc, "code"))
		}
	case "recording.started", "recording.ready":
		rec, _ := b["recording"].(map[string]any)
		line = fmt.Sprintf("%-11s %s", strings.TrimPrefix(d.Type, "recording."), str(rec, "path"))
		line = "recording " + line
	case "agent.state":
		st, _ := b["agent_state"].(map[string]any)
		line = fmt.Sprintf("agent %s is %s", agentOf(b), str(st, "state"))
		if q := str(st, "queue"); q != "" {
			line += " in queue " + q
		}
		conv = "-"
	default:
		line = d.Type
	}
	fmt.Fprintf(p.w, "%6.2fs  %-8s #%-2d %s  [signature ok]\n", time.Since(p.start).Seconds(), conv, d.Sequence, line)
}

func str(m map[string]any, k string) string {
	if m == nil {
		return ""
	}
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) string {
	if m == nil {
		return "?"
	}
	if f, ok := m[k].(float64); ok {
		return fmt.Sprintf("%d", int64(f))
	}
	return "?"
}

func party(call map[string]any, k string) string {
	p, _ := call[k].(map[string]any)
	s := str(p, "number")
	if s == "" {
		s = "unknown"
	}
	if n := str(p, "name"); n != "" {
		s += fmt.Sprintf(" %q", n)
	}
	return s
}

func agentOf(m map[string]any) string {
	a, _ := m["agent"].(map[string]any)
	if a == nil {
		a, _ = m["from"].(map[string]any)
	}
	s := str(a, "extension")
	if n := str(a, "name"); n != "" {
		s += " (" + n + ")"
	}
	if s == "" {
		return "?"
	}
	return s
}

// playOriginate plays the capture of a click-to-call (originate-exten) as
// the answer to a, with the ids the action asked for in place of the
// captured ones.
func playOriginate(sim *amitest.Server, a *goami2.Message, pace time.Duration) {
	ids := map[string]string{"1795339035.4": a.Field("ChannelId"), "1795339035.5": a.Field("OtherChannelId"),
		"orig-exten-1": a.Field("ActionID")}
	time.Sleep(50 * time.Millisecond) // after the action's own answer
	frames := amitest.EventsOf(amitest.Frames("originate-exten"))
	for i, f := range frames {
		lines := strings.Split(string(f.Raw), "\r\n")
		for j, l := range lines {
			if name, v, ok := strings.Cut(l, ": "); ok && ids[v] != "" {
				lines[j] = name + ": " + ids[v]
			}
		}
		frames[i] = amitest.Frame{Raw: []byte(strings.Join(lines, "\r\n"))}
	}
	_ = sim.PlayFrames(frames, amitest.PlayOptions{Pace: pace})
}
