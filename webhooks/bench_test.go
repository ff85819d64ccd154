package webhooks_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// memStore is a DeliveryStore indexed for speed, so that BenchmarkDrain
// measures the dispatcher and its HTTP, not the test double.
type memStore struct {
	mu   sync.Mutex
	rows []*bridge.Delivery // one endpoint, by Seq
	byID map[string]*bridge.Delivery
}

func (s *memStore) PendingDeliveries(_ context.Context, _ string, afterSeq int64, limit int) ([]bridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.rows), func(i int) bool { return s.rows[i].Seq > afterSeq })
	var out []bridge.Delivery
	for ; i < len(s.rows) && len(out) < limit; i++ {
		if s.rows[i].Status == bridge.DeliveryPending {
			out = append(out, *s.rows[i])
		}
	}
	return out, nil
}

func (s *memStore) RecordAttempt(_ context.Context, a bridge.Attempt) error {
	s.mu.Lock()
	d := s.byID[a.EventID]
	d.Attempts++
	d.Status = a.Outcome
	s.mu.Unlock()
	return nil
}

// RecordAttempts makes the dispatcher record in batches, as with store.DB.
func (s *memStore) RecordAttempts(ctx context.Context, as []bridge.Attempt) []error {
	for _, a := range as {
		s.RecordAttempt(ctx, a)
	}
	return make([]error, len(as))
}

func (s *memStore) DisableEndpoint(context.Context, string, string) error { return nil }

// BenchmarkDrain drains a backlog of b.N deliveries over 200 conversations
// to a signature-checking receiver on loopback: the dispatcher's cost per
// delivery (scheduling, signing, the request, the attempt's record).
func BenchmarkDrain(b *testing.B) {
	rx := webhookstest.NewReceiver(b, testSecret)
	s := &memStore{byID: make(map[string]*bridge.Delivery, b.N)}
	for i := range b.N {
		r, err := bridge.NewRecord(bridge.Event{
			ID: fmt.Sprintf("evt_%d", i), Type: bridge.EventCallAnswered, Sequence: int64(i / 200), PBX: "bench",
			ConversationID: fmt.Sprintf("conv_%d", i%200), OccurredAt: time.Unix(1700000000, 0).UTC(),
		})
		if err != nil {
			b.Fatal(err)
		}
		r.Seq = int64(i + 1)
		d := &bridge.Delivery{Record: r, EndpointID: "ep", Status: bridge.DeliveryPending}
		s.rows = append(s.rows, d)
		s.byID[r.ID] = d
	}
	done := make(chan struct{})
	var attempted atomic.Int64
	d := webhooks.New(s, webhooks.Options{
		Logger: slog.New(slog.DiscardHandler),
		OnAttempt: func(bridge.Attempt) {
			if attempted.Add(1) == int64(b.N) { // exactly one caller sees b.N
				close(done)
			}
		},
	})
	d.SetEndpoints([]bridge.Endpoint{endpoint("ep", rx.URL)})
	ctx, cancel := context.WithCancel(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	<-done
	b.StopTimer()
	cancel()
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
	if got := d.Stats().Delivered; got != int64(b.N) {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
