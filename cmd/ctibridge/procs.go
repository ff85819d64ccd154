package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"
)

// ctibridge shares its host with the PBX, and at the rates most PBXs see
// it is nearly idle: a PBX event every few milliseconds, each passed
// between a few goroutines. With two or more Ps, every such hand-over
// wakes a second thread that finds nothing to do and sleeps again, and on
// a virtual machine those wake-ups cost more than the work (measured:
// 15-35 % of the CPU per call at 50 calls/s). So serve runs on one P while
// it uses little CPU, and on the runtime's default (the cores it may
// use) as soon as it gets busy: a burst still gets every core. Going back
// is runtime.SetDefaultGOMAXPROCS, so the runtime keeps following the
// container's CPU quota. GOMAXPROCS in the environment is the admin's
// choice and turns this off.

const (
	procsInterval = 250 * time.Millisecond
	// Above this share of one core on one P, latency starts to queue up:
	// take every core at the next tick.
	procsUp = 0.8
	// Below this (in cores, on all Ps) for procsCalm ticks in a row: back
	// to one P, where the same work costs 15-35 % less, so it lands well
	// under procsUp and the two do not flap.
	procsDown = 0.5
	procsCalm = 8
)

// procScaler decides how many Ps to run on from the CPU used per tick.
type procScaler struct {
	max  int // the runtime's default
	cur  int
	calm int // ticks in a row below procsDown
}

// next returns the Ps to run on after a tick in which the process used
// cores (CPU seconds per second); backlog says input is waiting.
func (s *procScaler) next(cores float64, backlog bool) int {
	if s.cur == 1 {
		if cores > procsUp || backlog {
			s.cur, s.calm = s.max, 0
		}
		return s.cur
	}
	if cores < procsDown && !backlog {
		s.calm++
	} else {
		s.calm = 0
	}
	if s.calm >= procsCalm {
		s.cur, s.calm = 1, 0
	}
	return s.cur
}

// scaleProcs runs the scaler until ctx ends; queued reports input waiting
// (the engine's queue).
func scaleProcs(ctx context.Context, log *slog.Logger, queued func() bool) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	s := &procScaler{} // max and cur are read from the runtime at each tick
	defer runtime.SetDefaultGOMAXPROCS()
	tick := time.NewTicker(procsInterval)
	defer tick.Stop()
	forced := false // we set one P; else the runtime's default rules
	last, lastAt := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			used, now := cpuTime(), time.Now()
			cores := float64(used-last) / float64(now.Sub(lastAt))
			last, lastAt = used, now
			if !forced {
				// The default follows the CPU quota, which may change.
				s.max = runtime.GOMAXPROCS(0)
				s.cur = s.max
				if s.max <= 1 {
					continue
				}
			}
			before := runtime.GOMAXPROCS(0)
			switch n := s.next(cores, queued()); {
			case n == 1 && !forced:
				runtime.GOMAXPROCS(1)
				forced = true
			case n != 1 && forced:
				runtime.SetDefaultGOMAXPROCS()
				forced = false
			default:
				continue
			}
			log.Debug("runtime: Ps changed", "from", before, "to", runtime.GOMAXPROCS(0), "cores_used", cores)
		}
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
