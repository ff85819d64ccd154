package main

import "testing"

func TestProcScalerGoesUpAtOnceAndDownWhenCalm(t *testing.T) {
	s := &procScaler{max: 4, cur: 4}
	steps := []struct {
		cores   float64
		backlog bool
		want    int
	}{
		{0.9, false, 4}, // busy: stays on every core
		{0.1, false, 4}, {0.1, false, 4}, {0.1, false, 4}, {0.1, false, 4},
		{0.1, false, 4}, {0.1, false, 4}, {0.7, false, 4}, // a busy tick restarts the count
		{0.1, false, 4}, {0.1, false, 4}, {0.1, false, 4}, {0.1, false, 4},
		{0.1, false, 4}, {0.1, false, 4}, {0.1, false, 4},
		{0.1, false, 1}, // calm for procsCalm ticks: one P
		{0.7, false, 1}, // under procsUp on one P: stays
		{0.1, true, 4},  // input waiting: every core at once
		{0.1, false, 4},
	}
	for i, st := range steps {
		if got := s.next(st.cores, st.backlog); got != st.want {
			t.Fatalf("step %d (%.1f cores, backlog %v): %d Ps, want %d", i, st.cores, st.backlog, got, st.want)
		}
	}
	s = &procScaler{max: 2, cur: 1}
	if got := s.next(0.85, false); got != 2 {
		t.Fatalf("one P at 0.85 cores: %d Ps, want 2", got)
	}
}
