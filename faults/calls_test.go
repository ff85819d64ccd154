package faults

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
)

// The store alone cannot show a call that was live at a fault and then
// vanished: if the bridge never adopted it, it left no row. So the AMI
// scenarios keep their own book of the calls they played (by Linkedid, one
// per capture), note which were live at each kill or link fault, and hold
// some of them still across the fault so that adoption can be observed.

// playedCall is one call the harness played on the AMI simulator.
type playedCall struct {
	Linked string
	Ended  time.Time     // last frame emitted, or the PBX forgot the call; zero while live
	held   chan struct{} // non-nil while held: closed on release
	// emit is held while a frame is sent, so that once hold returns no
	// frame of the call is in flight and a held live call has one left.
	emit sync.Mutex
}

// callBook is the harness's record of the calls it played.
type callBook struct {
	mu    sync.Mutex
	calls map[string]*playedCall
}

func (b *callBook) start(linked string) *playedCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &playedCall{Linked: linked}
	b.calls[linked] = c
	return c
}

func (b *callBook) end(c *playedCall, at time.Time) {
	b.mu.Lock()
	if c.Ended.IsZero() {
		c.Ended = at
	}
	b.mu.Unlock()
}

func (b *callBook) endAll(linked []string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range linked {
		if c := b.calls[id]; c != nil && c.Ended.IsZero() {
			c.Ended = at
		}
	}
}

// lockFrame waits while c is held, then locks it for sending a frame.
func (b *callBook) lockFrame(c *playedCall) {
	for {
		c.emit.Lock()
		b.mu.Lock()
		ch := c.held
		b.mu.Unlock()
		if ch == nil {
			return
		}
		c.emit.Unlock()
		<-ch
	}
}

// hold freezes the calls named (their next frame waits) and returns those
// that were still live.
func (b *callBook) hold(linked []string) []string {
	var out []string
	for _, id := range linked {
		b.mu.Lock()
		c := b.calls[id]
		b.mu.Unlock()
		if c == nil {
			continue
		}
		c.emit.Lock() // no frame in flight
		b.mu.Lock()
		if c.Ended.IsZero() && c.held == nil {
			c.held = make(chan struct{})
			out = append(out, id)
		}
		b.mu.Unlock()
		c.emit.Unlock()
	}
	return out
}

func (b *callBook) releaseAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c.held != nil {
			close(c.held)
			c.held = nil
		}
	}
}

func (b *callBook) get(linked string) (playedCall, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[linked]
	if c == nil {
		return playedCall{}, false
	}
	return playedCall{Linked: c.Linked, Ended: c.Ended}, true
}

// amiSim is the Asterisk simulator with the harness's bookkeeping: every
// login's time (a call whose last frame went out before the bridge's next
// login cannot have been seen ending), and restarts that cut the calls in
// progress at a known moment.
type amiSim struct {
	*amitest.Server
	book   *callBook
	mu     sync.RWMutex // held shared while a frame is sent
	epoch  atomic.Int64
	loginM sync.Mutex
	logins []time.Time
	cut    []string // calls live at the last Restart
}

func newAMISim(t testing.TB) *amiSim {
	s := &amiSim{book: &callBook{calls: map[string]*playedCall{}}}
	s.Server = amitest.NewTestServer(t, amitest.ServerOptions{Logger: slog.New(loginHandler{s})})
	return s
}

// loginHandler notes when the simulator accepted a login. The simulator
// logs it holding its emit lock, so a frame either went out before that
// time or reaches the new session.
type loginHandler struct{ s *amiSim }

func (h loginHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h loginHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h loginHandler) WithGroup(string) slog.Handler            { return h }
func (h loginHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "amitest: client logged in" {
		h.s.loginM.Lock()
		h.s.logins = append(h.s.logins, time.Now())
		h.s.loginM.Unlock()
	}
	return nil
}

// loginAfter is the first login after t (zero if none).
func (s *amiSim) loginAfter(t time.Time) time.Time {
	s.loginM.Lock()
	defer s.loginM.Unlock()
	for _, l := range s.logins {
		if l.After(t) {
			return l
		}
	}
	return time.Time{}
}

// Restart is an Asterisk restart between two frames: the calls in progress
// end now, as far as the PBX is concerned.
func (s *amiSim) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.cut = s.liveCalls()
	s.book.endAll(s.cut, now)
	s.epoch.Add(1)
	s.Server.Restart()
}

// liveCalls is the Linkedid of every call with a live channel.
func (s *amiSim) liveCalls() []string {
	var out []string
	for _, ch := range s.LiveChannels() {
		if !slices.Contains(out, ch.Linkedid) {
			out = append(out, ch.Linkedid)
		}
	}
	return out
}

// play streams one rewritten capture a frame at a time, waiting while the
// call is held and abandoning it if the PBX restarts.
func (s *amiSim) play(name string, pace time.Duration) error {
	frames := s.Rewrite(amitest.EventsOf(amitest.Frames(name)))
	linked := ""
	for _, f := range frames {
		if linked = f.Header("Linkedid"); linked != "" {
			break
		}
	}
	c := s.book.start(linked)
	epoch := s.epoch.Load()
	for i, f := range frames {
		if i > 0 {
			time.Sleep(pace)
		}
		s.book.lockFrame(c)
		s.mu.RLock()
		if s.epoch.Load() != epoch {
			s.mu.RUnlock()
			c.emit.Unlock()
			return nil
		}
		err := s.PlayFrames([]amitest.Frame{f}, amitest.PlayOptions{})
		if i == len(frames)-1 {
			s.book.end(c, time.Now()) // under the locks: a Restart or hold sees it ended
		}
		s.mu.RUnlock()
		c.emit.Unlock()
		if errors.Is(err, amitest.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// trackedLoad plays the Asterisk mix through the book. Stop releases any
// held call first, so every call can finish.
func trackedLoad(t testing.TB, sim *amiSim, workers int, pace time.Duration) *load {
	l := &load{release: sim.book.releaseAll}
	l.run(workers, func(int) error { return sim.play(amiMix[rand.IntN(len(amiMix))], pace) })
	t.Cleanup(l.Stop)
	return l
}

// fault is one kill or link fault: the calls live right after it struck
// and those the harness held still until the bridge was back.
type fault struct {
	Name string
	At   time.Time
	Live []string
	Held map[string]bool
	// Late: the old connection may still deliver frames sent during the
	// fault (a stall delays, it does not drop), so an end need not be
	// resynced.
	Late bool
}

// convMap maps a Linkedid to the conversation the bridge filed it under,
// learnt from the open conversations' saved state (an ended conversation
// keeps no state, so the map is filled while calls are live).
type convMap struct {
	path string // the store, as last read
	mu   sync.Mutex
	m    map[string][]string // every conversation seen holding the Linkedid
}

func newConvMap() *convMap { return &convMap{m: map[string][]string{}} }

// read adds what the store holds now; errors (no file yet, locked) are
// ignored: the next read will do.
func (cm *convMap) read(path string) {
	cm.mu.Lock()
	cm.path = path
	cm.mu.Unlock()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=2000")
	if err != nil {
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, state FROM conversations WHERE state IS NOT NULL`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var state []byte
		if rows.Scan(&id, &state) != nil {
			return
		}
		var s struct {
			Linked []string `json:"linked"`
		}
		if json.Unmarshal(state, &s) != nil {
			continue
		}
		cm.mu.Lock()
		for _, l := range s.Linked {
			if !slices.Contains(cm.m[l], id) {
				cm.m[l] = append(cm.m[l], id)
			}
		}
		cm.mu.Unlock()
	}
}

// prune forgets the conversations no longer in the store: the bridge
// discards one folded into another before it issued an event (the other
// then holds its linked ids too).
func (cm *convMap) prune(t testing.TB) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.path == "" {
		return
	}
	db, err := sql.Open("sqlite3", "file:"+cm.path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exists := map[string]bool{}
	rows, err := db.Query(`SELECT id FROM conversations`)
	if err != nil {
		t.Fatalf("reading conversations: %v", err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		exists[id] = true
	}
	rows.Close()
	for l, ids := range cm.m {
		cm.m[l] = slices.DeleteFunc(ids, func(id string) bool { return !exists[id] })
	}
}

// get returns the last conversation seen holding linked (one folded into
// another was seen before the one that took it over).
func (cm *convMap) get(linked string) (string, bool) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	ids := cm.m[linked]
	if len(ids) == 0 {
		return "", false
	}
	return ids[len(ids)-1], true
}

func (cm *convMap) all(linked string) []string {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return slices.Clone(cm.m[linked])
}

// watch reads the store every 100 ms until the test ends.
func (cm *convMap) watch(t testing.TB, path string) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				cm.read(path)
			}
		}
	})
	t.Cleanup(func() { close(done); wg.Wait() })
}

// adopted waits until every held call is filed under a conversation (the
// bridge adopted or restored it after the fault) and returns those that
// were not within timeout.
func (cm *convMap) adopted(path string, held []string, timeout time.Duration) []string {
	var missing []string
	waitFor(timeout, func() bool {
		cm.read(path)
		missing = missing[:0]
		for _, id := range held {
			if _, ok := cm.get(id); !ok {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	return missing
}

// callStats is what checkCalls found, for the table.
type callStats struct {
	Live, Filed, Held, Resynced int
}

// checkCalls asserts that every call live at a fault, once filed under a
// conversation, has exactly one call.ended delivered, at most one pop per
// agent, and a call.ended marked resynced exactly when the bridge could not
// have seen it end: required when the call's last frame went out before
// the bridge's next login, refused for a held call unless another fault
// came after its end (it was live when the bridge came back, so its end
// was seen, unless a later kill took the bridge before it was committed).
// Held calls must all be filed.
//
// unplanned are the link losses the bridge logged that no fault caused (a
// ping that timed out on a starved machine): a held call that ended after
// one, before the next login, was rightly ended by a resync.
func checkCalls(t testing.TB, v *verdict, sim *amiSim, faults []fault, convs *convMap, hits []hit, unplanned []time.Time) callStats {
	convs.prune(t)
	type convHits struct {
		ended []hit
		pops  map[string]int
		types []string // for the report
	}
	byConv := map[string]*convHits{}
	seen := map[string]bool{}
	for _, h := range hits {
		if !h.ok() || seen[h.ID] || h.Conv == "" {
			continue
		}
		seen[h.ID] = true
		ch := byConv[h.Conv]
		if ch == nil {
			ch = &convHits{pops: map[string]int{}}
			byConv[h.Conv] = ch
		}
		ch.types = append(ch.types, fmt.Sprintf("#%d %s resynced=%t", h.Seq, h.Type, h.Resynced))
		switch h.Type {
		case "call.ended":
			ch.ended = append(ch.ended, h)
		case "call.ringing":
			ch.pops[h.Agent]++
		}
	}
	var st callStats
	for _, f := range faults {
		login := sim.loginAfter(f.At)
		for _, linked := range f.Live {
			st.Live++
			held := f.Held[linked]
			if held {
				st.Held++
			}
			pc, ok := sim.book.get(linked)
			if !ok {
				v.problem("%s: live channel of call %s the harness never played", f.Name, linked)
				continue
			}
			conv, ok := convs.get(linked)
			if !ok {
				if held {
					v.problem("VANISHED: %s: call %s was held live through the fault but never filed under a conversation", f.Name, linked)
				}
				continue // never committed: the CRM never heard of it
			}
			st.Filed++
			if all := convs.all(linked); len(all) > 1 {
				// One call, two open conversations: the second never pops
				// or ends right, or is a second record of the same call.
				v.problem("%s: call %s filed under %d conversations %v", f.Name, linked, len(all), all)
			}
			ch := byConv[conv]
			if ch == nil || len(ch.ended) != 1 {
				n := 0
				if ch != nil {
					n = len(ch.ended)
				}
				v.problem("VANISHED: %s: call %s (conversation %s), live at the fault, got %d call.ended (want 1)", f.Name, linked, conv, n)
				continue
			}
			for agent, n := range ch.pops {
				if n > 1 {
					v.problem("DUPLICATE POP: %s: call %s (conversation %s) popped agent %s %d times", f.Name, linked, conv, agent, n)
				}
			}
			end := ch.ended[0]
			if end.Resynced {
				st.Resynced++
			}
			switch {
			case held && end.Resynced && !faultAfter(faults, pc.Ended, f.At) && !lostBefore(sim, unplanned, f.At, pc.Ended):
				// Held through this fault, so the bridge was back before
				// the call ended; with no later fault it saw the end.
				v.problem("%s: call %s (conversation %s) was live when the bridge came back, but its call.ended is resynced: %s",
					f.Name, linked, conv, strings.Join(ch.types, ", "))
			case !held && !f.Late && !pc.Ended.IsZero() && (login.IsZero() || pc.Ended.Before(login)) && !end.Resynced:
				v.problem("%s: call %s (conversation %s) ended while the bridge was away (%s before its next login) without resynced: true: %s",
					f.Name, linked, conv, loginGap(pc.Ended, login), strings.Join(ch.types, ", "))
			}
		}
	}
	return st
}

// lostBefore reports whether the link was lost unplanned after the fault
// at from, with the call's end before the login that followed the loss.
func lostBefore(sim *amiSim, unplanned []time.Time, from, ended time.Time) bool {
	return slices.ContainsFunc(unplanned, func(u time.Time) bool {
		next := sim.loginAfter(u)
		return u.After(from) && (next.IsZero() || ended.Before(next))
	})
}

// faultAfter reports whether another fault came after a call ended (or,
// with no recorded end, after the fault at from): a kill before the end
// was committed makes a resynced end right.
func faultAfter(faults []fault, ended, from time.Time) bool {
	if ended.IsZero() {
		ended = from
	}
	for _, f := range faults {
		if f.At.After(ended) {
			return true
		}
	}
	return false
}

func loginGap(ended, login time.Time) string {
	if login.IsZero() {
		return "no login since"
	}
	return fmt.Sprint(login.Sub(ended).Round(time.Millisecond))
}
