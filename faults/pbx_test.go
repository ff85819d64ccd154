package faults

import (
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// Link timers in the child's config: a dead link must be noticed within
// ping_interval + action_timeout, plus the reconnect backoff (300 ms).
const (
	pingInterval  = 500 * time.Millisecond
	actionTimeout = time.Second
	// linkBound is what the suite allows from a fault to a working,
	// resynced link: detection, backoff, login, slack for a loaded CI box.
	linkBound = pingInterval + actionTimeout + 5*time.Second
)

// linkFault is one PBX-side fault and how to heal it.
type linkFault struct {
	name string
	// inject breaks the link; it returns when the fault is in place and
	// the bridge must now recover on its own (heal, if set, runs first).
	inject func(t *testing.T, p *proc)
	heal   func(t *testing.T, p *proc)
	// keep: the link must survive this one (no new connection).
	keep bool
}

// linkEnv is the PBX side of a link scenario.
type linkEnv struct {
	cfg      conf       // PBXType, PBXAddr, PBXSecret set
	sessions func() int // connections that logged in, ever
	work     func() *load
}

func amiEnv(t *testing.T, sim *amitest.Server) linkEnv {
	return linkEnv{
		cfg:      conf{PBXType: "asterisk", PBXAddr: sim.Addr(), PBXSecret: "bridgepass"},
		sessions: func() int { return amiSessions(sim) },
		work:     func() *load { return amiLoad(t, sim, 3, 3*time.Millisecond) },
	}
}

// amiSessions counts connections that logged in: a refused login sends
// one action and is closed; a session sends more (resync, pings).
func amiSessions(sim *amitest.Server) int {
	n := 0
	for _, c := range sim.Conns() {
		if c.LoggedIn() || len(c.Actions()) > 1 {
			n++
		}
	}
	return n
}

// refusedLogins counts connections closed after their one Login.
func refusedLogins(sim *amitest.Server) int {
	n := 0
	for _, c := range sim.Conns() {
		if as := c.Actions(); c.Closed() && len(as) == 1 && strings.EqualFold(as[0].Field("Action"), "Login") {
			n++
		}
	}
	return n
}

func eslEnv(t *testing.T, sim *eslSim) linkEnv {
	return linkEnv{
		cfg:      conf{PBXType: "freeswitch", PBXAddr: sim.Addr(), PBXSecret: "ClueCon"},
		sessions: sim.Subscriptions,
		work:     func() *load { return eslLoad(t, sim, 1, 0.05) },
	}
}

// runLinkFaults plays calls, injects each fault, waits for a new logged-in
// connection and /readyz 200, then lets the calls end and checks that the
// bridge holds no open call. At the end everything committed must be
// delivered with one release per conversation and one pop per agent.
func runLinkFaults(t *testing.T, env linkEnv, faults []linkFault, rounds int) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ctibridge.db")
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	cfg := env.cfg
	cfg.DB, cfg.PingInterval, cfg.ActionTimeout = db, pingInterval.String(), actionTimeout.String()
	cfg.Endpoints = []endpoint{{"crm", rcv.URL, secret}}
	sessions, work := env.sessions, env.work
	p := startProc(t, dir, cfg, procOpts{})
	if !waitFor(10*time.Second, p.ready) {
		t.Fatalf("not ready\n%s", p.log.tail(3000))
	}

	var maxRecovery time.Duration
	worst := map[string]time.Duration{}
	runs := 0
	for round := range rounds {
		for _, f := range faults {
			calls := work()
			time.Sleep(700 * time.Millisecond) // calls in every state when the fault strikes
			before := sessions()
			start := time.Now()
			f.inject(t, p)
			if f.heal != nil {
				start = time.Now() // recovery counts from the fix
				f.heal(t, p)
			}
			if f.keep {
				time.Sleep(2 * actionTimeout)
				if n := sessions(); n != before {
					t.Errorf("%s: the link was re-established (%d sessions, %d before): it should have survived", f.name, n, before)
				}
			} else if !waitFor(linkBound, func() bool { return sessions() > before && p.ready() }) {
				t.Fatalf("round %d, %s: no new working link within %s (sessions %d → %d)\n%s", round, f.name, linkBound,
					before, sessions(), p.log.tail(4000))
			} else {
				d := time.Since(start)
				maxRecovery = max(maxRecovery, d)
				worst[f.name] = max(worst[f.name], d)
			}
			runs++
			calls.Stop()
			// Every call has ended on the PBX: the bridge must agree, through
			// the events it saw and the resync for those it missed.
			if !waitFor(10*time.Second, func() bool { return p.liveCalls() == 0 }) {
				t.Errorf("round %d, %s: %d calls still open in /v1/calls after every call ended", round, f.name, p.liveCalls())
			}
		}
	}
	drained := waitFor(30*time.Second, func() bool {
		m := p.metrics()
		return m != nil && m["ctibridge_delivery_backlog"] == 0 && m["ctibridge_engine_queue_length"] == 0
	})
	if err := p.term(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if !drained {
		t.Error("backlog not drained within 30s")
	}
	events, integrity := readStore(t, db, "crm")
	if integrity != "ok" {
		t.Errorf("integrity_check: %s", integrity)
	}
	v := analyse(events, rcv.snapshot(), allChecks)
	assertVerdict(t, "pbx link "+cfg.PBXType, v)
	var notes []string
	for _, f := range faults {
		if f.keep {
			notes = append(notes, f.name+": link kept")
		} else {
			notes = append(notes, fmt.Sprintf("%s %s", f.name, worst[f.name].Round(time.Millisecond)))
		}
	}
	scenario := fmt.Sprintf("pbx link %s: %d faults", cfg.PBXType, len(faults))
	if len(faults) == 1 {
		scenario = fmt.Sprintf("pbx link %s: %s", cfg.PBXType, faults[0].name)
	}
	record(scenario, runs, v, maxRecovery,
		"recovery (fault, or its fix, to a new session and /readyz 200): "+strings.Join(notes, ", "))
}

// TestPBXLinkAsterisk: the AMI link torn mid-frame, half-open, the PBX
// restarted (channels forgotten), credentials wrong then fixed, the PBX
// slow to answer (briefly: the link holds; for longer than action_timeout:
// a ping times out and the link is rebuilt).
func TestPBXLinkAsterisk(t *testing.T) {
	t.Parallel()
	sim := amitest.NewTestServer(t, amitest.ServerOptions{})
	faults := []linkFault{
		{name: "drop mid-frame", inject: func(*testing.T, *proc) { sim.DropMidFrame() }},
		{name: "half-open", inject: func(*testing.T, *proc) { sim.Blackhole() }},
		{name: "PBX restart", inject: func(*testing.T, *proc) { sim.Restart() }},
		{name: "wrong secret, then fixed", inject: func(t *testing.T, p *proc) {
			refused := refusedLogins(sim)
			sim.SetSecret("rotated-secret")
			sim.DropConnections()
			// The bridge keeps retrying with the old secret and is refused,
			// and says so where an operator looks.
			if !waitFor(5*time.Second, func() bool { return refusedLogins(sim) >= refused+2 }) {
				t.Errorf("the bridge did not retry its login (%d refused)", refusedLogins(sim)-refused)
			}
			code, body, err := p.get("/readyz")
			if msg, _ := body["pbx_error"].(string); err != nil || code != 503 || !strings.Contains(msg, "refused") {
				t.Errorf("/readyz during refused logins: %d %v %v", code, body, err)
			}
			if !strings.Contains(p.log.String(), `"level":"ERROR","msg":"ami: login to`) {
				t.Errorf("no ERROR log line for the refused login")
			}
		}, heal: func(*testing.T, *proc) { sim.SetSecret("bridgepass") }},
		{name: "stall shorter than action_timeout", keep: true, inject: func(*testing.T, *proc) { sim.Stall(actionTimeout / 3) }},
		{name: "stall longer than action_timeout", inject: func(*testing.T, *proc) { sim.Stall(3 * actionTimeout) }},
	}
	runLinkFaults(t, amiEnv(t, sim), faults, count("CTIBRIDGE_FAULTS_ROUNDS", 1, 20))
}

// TestPBXLinkFreeSWITCH: the ESL link torn mid-frame and FreeSWITCH
// restarted (new Core-UUID, channels forgotten).
func TestPBXLinkFreeSWITCH(t *testing.T) {
	t.Parallel()
	sim := newESL(t, esltest.Options{})
	faults := []linkFault{
		{name: "drop mid-frame", inject: func(*testing.T, *proc) { sim.DropAll(true) }},
		{name: "FreeSWITCH restart", inject: func(*testing.T, *proc) { sim.Restart() }},
	}
	runLinkFaults(t, eslEnv(t, sim), faults, count("CTIBRIDGE_FAULTS_ROUNDS", 1, 20))
}

// A half-open FreeSWITCH link must be found within ping_interval +
// action_timeout, as README promises for pbx.ping_interval.
func TestPBXLinkFreeSWITCHHalfOpen(t *testing.T) {
	t.Parallel()
	sim := newESL(t, esltest.Options{})
	faults := []linkFault{{name: "half-open", inject: func(*testing.T, *proc) { sim.HalfOpen() }}}
	runLinkFaults(t, eslEnv(t, sim), faults, 1)
}
