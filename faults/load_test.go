package faults

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/esl/esltest"
)

// Call mixes: real captures of calls that pop a screen or end, replayed as
// fresh calls (new uniqueids, Local sequences, bridge ids / uuids).
var (
	amiMix = []string{"inbound-call-basic", "queue-call", "blind-transfer", "mixmonitor", "hangup-action", "originate-busy"}
	eslMix = []string{"basic-call", "blind-transfer", "record", "callcenter", "kill"}
)

// load plays calls on a simulator from a few workers until stopped, so
// calls are live whenever a fault strikes.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	calls   atomic.Int64 // calls started
	stopped sync.Once
	release func() // lets held calls go on; nil when none can be held
}

// Stop lets every worker finish the call it is playing and waits: after
// it, the simulator has no live channel (unless a call was cut by a PBX
// restart, which forgets it anyway).
func (l *load) Stop() {
	l.stopped.Do(func() { close(l.stop) })
	if l.release != nil {
		l.release()
	}
	l.wg.Wait()
}

func (l *load) run(workers int, play func(w int) error) {
	l.stop = make(chan struct{})
	for w := range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.calls.Add(1)
				if err := play(w); err != nil {
					return
				}
			}
		})
	}
}

// amiLoad plays the Asterisk mix with pace between frames. A PBX restart
// cuts the calls in progress (the simulator stops their play); the workers
// then start new ones.
func amiLoad(t testing.TB, sim *amitest.Server, workers int, pace time.Duration) *load {
	l := &load{}
	l.run(workers, func(w int) error {
		name := amiMix[rand.IntN(len(amiMix))]
		err := sim.PlayFrames(amitest.Frames(name), amitest.PlayOptions{Rewrite: true, Pace: pace})
		if errors.Is(err, amitest.ErrServerClosed) {
			return err
		}
		return nil
	})
	t.Cleanup(l.Stop)
	return l
}

// eslSim wraps esltest.Server so that a restart cuts the calls in
// progress, as a real one does: esltest's own Play would go on streaming
// a call's remaining events after Restart, re-creating channels the new
// switch never had.
type eslSim struct {
	*esltest.Server
	mu    sync.RWMutex // held shared while a frame is sent
	epoch atomic.Int64
}

func newESL(t testing.TB, opts esltest.Options) *eslSim {
	s, err := esltest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &eslSim{Server: s}
}

// Restart restarts the switch between two frames of every call.
func (s *eslSim) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch.Add(1)
	s.Server.Restart()
}

// play streams one rewritten capture at pace (a fraction of the captured
// timing), abandoning it if the switch restarts.
func (s *eslSim) play(name string, pace float64) error {
	frames, err := s.Prepare(name, esltest.PlayOptions{Rewrite: true})
	if err != nil {
		return err
	}
	epoch := s.epoch.Load()
	var prev time.Duration
	for i, f := range frames {
		if i > 0 && f.At > prev {
			time.Sleep(time.Duration(float64(f.At-prev) * pace))
		}
		prev = max(prev, f.At)
		s.mu.RLock()
		if s.epoch.Load() != epoch {
			s.mu.RUnlock()
			return nil
		}
		s.Stream([]esltest.Frame{f}, 0)
		s.mu.RUnlock()
	}
	return nil
}

// eslLoad plays the FreeSWITCH mix. Use one worker unless the calls differ:
// FreeSWITCH names loopback channels by extension, so two concurrent plays
// of one capture are two calls through one loopback name.
func eslLoad(t testing.TB, sim *eslSim, workers int, pace float64) *load {
	l := &load{}
	var next atomic.Int64
	l.run(workers, func(int) error {
		return sim.play(eslMix[int(next.Add(1))%len(eslMix)], pace)
	})
	t.Cleanup(l.Stop)
	return l
}
