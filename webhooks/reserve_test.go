package webhooks

import (
	"sync"
	"testing"
)

// Pushes (one at a time) and page reads (a page at a time) racing for the
// same room never hold more than the cap between them.
func TestReserveNeverPassesTheCap(t *testing.T) {
	const limit, page = 16, 8
	e := &endpoint{d: &Dispatcher{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := range 64 {
		n := 1
		if i%4 == 0 {
			n = page
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e.reserve(n, limit) {
				mu.Lock()
				got += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if q := e.queued.Load(); q > limit || q != int64(got) || e.d.queued.Load() != q {
		t.Fatalf("held %d (endpoint) / %d (dispatcher) after reserving %d, cap %d", q, e.d.queued.Load(), got, limit)
	}
	if e.reserve(1, limit) && e.queued.Load() > limit {
		t.Fatal("reserved past the cap")
	}
}
