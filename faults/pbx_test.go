package faults

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// Link timers in the child's config: a dead link must be noticed within
// ping_interval + action_timeout, plus the reconnect backoff (300 ms).
const (
	pingInterval  = 500 * time.Millisecond
	actionTimeout = time.Second
	// detectBound is what the suite allows from a fault to the child's
	// "disconnected" / "link down" line: README's ping_interval +
	// action_timeout, doubled plus a second for a loaded 2-core box.
	detectBound = 2*(pingInterval+actionTimeout) + time.Second
	// linkBound is what the suite allows from a fault to a working,
	// resynced link: detection, backoff, login, slack for a loaded CI box.
	linkBound = pingInterval + actionTimeout + 5*time.Second
)

// linkDownLines are the lines the child logs when it finds the link dead.
var linkDownLines = []string{`"msg":"ami: disconnected"`, `"msg":"freeswitch link down"`}

// linkFault is one PBX-side fault and how to heal it.
type linkFault struct {
	name string
	// inject breaks the link; it returns when the fault is in place and
	// the bridge must now recover on its own (heal, if set, runs first).
	inject func(t *testing.T, p *proc)
	heal   func(t *testing.T, p *proc)
	// keep: the link must survive this one (no new connection).
	keep bool
	// stall: the PBX delays rather than drops (its frames may still reach
	// the old connection, and it answers nothing while stalled).
	stall bool
}

// linkEnv is the PBX side of a link scenario.
type linkEnv struct {
	cfg      conf       // PBXType, PBXAddr, PBXSecret set
	sessions func() int // connections that logged in, ever
	work     func() *load
	ami      *amiSim // set for Asterisk: calls are tracked through faults
}

func amiEnv(t *testing.T, sim *amiSim) linkEnv {
	return linkEnv{
		cfg:      conf{PBXType: "asterisk", PBXAddr: sim.Addr(), PBXSecret: "bridgepass"},
		sessions: func() int { return amiSessions(sim.Server) },
		work:     func() *load { return trackedLoad(t, sim, 3, 3*time.Millisecond) },
		ami:      sim,
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
	convs := newConvMap()
	if env.ami != nil {
		convs.watch(t, db)
	}

	var v verdict
	var marks []fault
	var windows []faultWindow // each fault, from its start to the link back
	var maxRecovery, maxDetect time.Duration
	worst := map[string]time.Duration{}
	runs := 0
	for round := range rounds {
		for _, f := range faults {
			calls := work()
			time.Sleep(700 * time.Millisecond) // calls in every state when the fault strikes
			before := sessions()
			start := time.Now()
			start0 := start
			f.inject(t, p)
			// mark notes the calls live now and holds the first and about
			// half of the others still until the link is back, so the
			// resync must adopt them.
			var held []string
			mark := func(name string, live []string, hold bool) {
				m := fault{Name: fmt.Sprintf("round %d, %s", round, name), At: start, Live: live, Held: map[string]bool{}}
				if hold {
					var ids []string
					for j, id := range live {
						if j == 0 || rand.IntN(2) == 0 {
							ids = append(ids, id)
						}
					}
					for _, id := range env.ami.book.hold(ids) {
						m.Held[id] = true
						held = append(held, id)
					}
				}
				marks = append(marks, m)
			}
			track := env.ami != nil && !f.stall
			if track && f.name == "PBX restart" {
				mark(f.name, env.ami.cut, false) // the calls it cut
			} else if track {
				mark(f.name, env.ami.liveCalls(), true)
			}
			healed := start
			if f.heal != nil {
				healed = time.Now() // recovery counts from the fix
				f.heal(t, p)
			}
			if !f.keep {
				// Detection counts from the fault, apart from reconnecting.
				var at time.Time
				ok := waitFor(detectBound+2*time.Second, func() bool {
					var found bool
					at, found = p.logLineAfter(start, linkDownLines...)
					return found
				})
				if d := at.Sub(start); !ok || d > detectBound {
					t.Errorf("round %d, %s: link loss logged %v after the fault (found: %t), want within %s (ping_interval + action_timeout = %s)",
						round, f.name, d.Round(time.Millisecond), ok, detectBound, pingInterval+actionTimeout)
				} else {
					maxDetect = max(maxDetect, d)
				}
				if track {
					// Calls begun while the link was down: only the resync
					// can tell the bridge about them.
					mark(f.name+" (link down)", env.ami.liveCalls(), true)
				}
			}
			start = healed
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
			windows = append(windows, faultWindow{fmt.Sprintf("round %d, %s", round, f.name), start0, time.Now()})
			if len(held) > 0 {
				for _, id := range convs.adopted(db, held, 5*time.Second) {
					v.problem("VANISHED: round %d, %s: call %s held live through the fault, not adopted within 5s", round, f.name, id)
				}
				env.ami.book.releaseAll()
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
	unplanned := unplannedLosses(t, p, windows) // before the shutdown's own line
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
	hits := rcv.snapshot()
	final := analyse(events, hits, allChecks)
	final.Problems = append(v.Problems, final.Problems...)
	var st callStats
	if env.ami != nil {
		if st = checkCalls(t, &final, env.ami, marks, convs, hits, unplanned); st.Held == 0 {
			final.problem("no call was live at any fault: the call checks proved nothing")
		}
	}
	assertVerdict(t, "pbx link "+cfg.PBXType, final)
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
	note := fmt.Sprintf("link loss logged at most %s after a fault; ", maxDetect.Round(time.Millisecond))
	if env.ami != nil {
		note += fmt.Sprintf("%d calls live at a fault (%d held through it, %d filed, %d ended resynced); ", st.Live, st.Held, st.Filed, st.Resynced)
	}
	record(scenario, runs, final, maxRecovery,
		note+"recovery (fault, or its fix, to a new session and /readyz 200): "+strings.Join(notes, ", "))
}

// faultWindow is a fault's time, from its start to the link back.
type faultWindow struct {
	name     string
	from, to time.Time
}

// unplannedLosses are the link losses the child logged outside every
// fault's window.
func unplannedLosses(t *testing.T, p *proc, windows []faultWindow) []time.Time {
	var out []time.Time
	var since time.Time
	for {
		at, ok := p.logLineAfter(since, linkDownLines...)
		if !ok {
			return out
		}
		since = at
		if slices.ContainsFunc(windows, func(w faultWindow) bool { return !at.Before(w.from) && !at.After(w.to) }) {
			continue
		}
		out = append(out, at)
		after := "the start"
		for _, w := range windows {
			if w.to.Before(at) {
				after = fmt.Sprintf("%s (link back %s before)", w.name, at.Sub(w.to).Round(time.Millisecond))
			}
		}
		t.Logf("the link was lost with no fault at %s, after %s: a ping timed out on a busy machine?", at.Format("15:04:05.000"), after)
	}
}

// TestPBXLinkAsterisk: the AMI link torn mid-frame, half-open, the PBX
// restarted (channels forgotten), credentials wrong then fixed, the PBX
// slow to answer (briefly: the link holds; for longer than action_timeout:
// a ping times out and the link is rebuilt).
func TestPBXLinkAsterisk(t *testing.T) {
	t.Parallel()
	sim := newAMISim(t)
	faults := []linkFault{
		{name: "drop mid-frame", inject: func(*testing.T, *proc) { sim.DropMidFrame() }},
		{name: "half-open", inject: func(*testing.T, *proc) { sim.Blackhole() }},
		{name: "PBX restart", inject: func(*testing.T, *proc) { sim.Restart() }},
		{name: "wrong secret, then fixed", inject: func(t *testing.T, p *proc) {
			refused := refusedLogins(sim.Server)
			sim.SetSecret("rotated-secret")
			sim.DropConnections()
			// The bridge keeps retrying with the old secret and is refused,
			// and says so where an operator looks.
			if !waitFor(5*time.Second, func() bool { return refusedLogins(sim.Server) >= refused+2 }) {
				t.Errorf("the bridge did not retry its login (%d refused)", refusedLogins(sim.Server)-refused)
			}
			code, body, err := p.get("/readyz")
			if msg, _ := body["pbx_error"].(string); err != nil || code != 503 || !strings.Contains(msg, "refused") {
				t.Errorf("/readyz during refused logins: %d %v %v", code, body, err)
			}
			if !strings.Contains(p.log.String(), `"level":"ERROR","msg":"ami: login to`) {
				t.Errorf("no ERROR log line for the refused login")
			}
		}, heal: func(*testing.T, *proc) { sim.SetSecret("bridgepass") }},
		{name: "stall shorter than action_timeout", keep: true, stall: true, inject: func(*testing.T, *proc) { sim.Stall(actionTimeout / 3) }},
		{name: "stall longer than action_timeout", stall: true, inject: func(*testing.T, *proc) { sim.Stall(3 * actionTimeout) }},
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
		{name: "wrong password, then fixed", inject: func(t *testing.T, p *proc) {
			mark := p.logMark()
			sim.SetPassword("rotated-password")
			sim.DropAll(false)
			// Refused, retried, and said where an operator looks (in this
			// round: the long run repeats the fault).
			if !p.waitLogSince(mark, "rejected the event socket password", 10*time.Second) {
				t.Errorf("no log line for the refused password")
			}
			code, body, err := p.get("/readyz")
			if msg, _ := body["pbx_error"].(string); err != nil || code != 503 || msg == "" {
				t.Errorf("/readyz during refused logins: %d %v %v", code, body, err)
			}
		}, heal: func(*testing.T, *proc) { sim.SetPassword("ClueCon") }},
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
