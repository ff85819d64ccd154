package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// fakeStore is an in-memory bridge.DeliveryStore with the semantics the
// SQLite store promises, plus checks the tests read back.
type fakeStore struct {
	mu       sync.Mutex
	seq      int64
	rows     map[string][]*bridge.Delivery // by endpoint, in Seq order
	attempts []bridge.Attempt
	disabled map[string]string
	// resent counts attempts recorded for deliveries already delivered: a
	// delivery sent again without a crash in between.
	resent   int
	maxLimit int
	pages    int
	failRead error
	// failRecord makes RecordAttempt fail (a full disk).
	failRecord error
	// batches counts RecordAttempts calls. plain hides RecordAttempts from
	// the dispatcher (see start), so that it records attempt by attempt.
	batches int
	plain   bool
	// maxBatch is RecordAttempts' largest batch; onBatch, when set, runs
	// first in every RecordAttempts call.
	maxBatch int
	onBatch  func([]bridge.Attempt)
}

// plainStores makes newFakeStore's stores plain (TestUnbatchedRecords).
var plainStores bool

func newFakeStore() *fakeStore {
	return &fakeStore{rows: make(map[string][]*bridge.Delivery), disabled: make(map[string]string), plain: plainStores}
}

// plainStore is a DeliveryStore without RecordAttempts.
type plainStore struct{ bridge.DeliveryStore }

// deliveryStore is what the dispatcher is given.
func (s *fakeStore) deliveryStore() bridge.DeliveryStore {
	if s.plain {
		return plainStore{s}
	}
	return s
}

// commit stores records as the outbox would and returns the deliveries the
// engine would pass to Notify, in the same order.
func (s *fakeStore) commit(recs []bridge.Record, endpointIDs ...string) []bridge.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ds []bridge.Delivery
	for _, r := range recs {
		s.seq++
		r.Seq = s.seq
		for _, ep := range endpointIDs {
			d := bridge.Delivery{Record: r, EndpointID: ep, Status: bridge.DeliveryPending, NextAttemptAt: time.Now()}
			s.rows[ep] = append(s.rows[ep], &d)
			ds = append(ds, d)
		}
	}
	return ds
}

// put stores a delivery as is (a retry scheduled before a restart).
func (s *fakeStore) put(d bridge.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	d.Seq = s.seq
	s.rows[d.EndpointID] = append(s.rows[d.EndpointID], &d)
}

func (s *fakeStore) PendingDeliveries(ctx context.Context, endpointID string, afterSeq int64, limit int) ([]bridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRead != nil {
		return nil, s.failRead
	}
	s.pages++
	s.maxLimit = max(s.maxLimit, limit)
	rows := s.rows[endpointID]
	i := sort.Search(len(rows), func(i int) bool { return rows[i].Seq > afterSeq })
	var out []bridge.Delivery
	for ; i < len(rows) && len(out) < limit; i++ {
		if rows[i].Status == bridge.DeliveryPending {
			out = append(out, *rows[i])
		}
	}
	return out, nil
}

func (s *fakeStore) find(endpointID, eventID string) *bridge.Delivery {
	for _, d := range s.rows[endpointID] {
		if d.ID == eventID {
			return d
		}
	}
	return nil
}

func (s *fakeStore) RecordAttempt(ctx context.Context, a bridge.Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRecord != nil {
		return s.failRecord
	}
	d := s.find(a.EndpointID, a.EventID)
	if d == nil {
		return errors.New("fake store: no such delivery")
	}
	if d.Status == bridge.DeliveryDelivered {
		s.resent++
	}
	s.attempts = append(s.attempts, a)
	d.Attempts++
	if d.FirstTriedAt.IsZero() {
		d.FirstTriedAt = a.At
	}
	d.Status, d.NextAttemptAt = a.Outcome, a.NextAttemptAt
	return nil
}

func (s *fakeStore) RecordAttempts(ctx context.Context, as []bridge.Attempt) []error {
	s.mu.Lock()
	s.batches++
	s.maxBatch = max(s.maxBatch, len(as))
	hook := s.onBatch
	s.mu.Unlock()
	if hook != nil {
		hook(as)
	}
	errs := make([]error, len(as))
	for i, a := range as {
		errs[i] = s.RecordAttempt(ctx, a)
	}
	return errs
}

func (s *fakeStore) DisableEndpoint(ctx context.Context, endpointID, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[endpointID] = reason
	for _, d := range s.rows[endpointID] {
		if d.Status == bridge.DeliveryPending {
			d.Status = bridge.DeliveryDisabled
		}
	}
	return nil
}

func (s *fakeStore) status(endpointID, eventID string) bridge.DeliveryStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.find(endpointID, eventID); d != nil {
		return d.Status
	}
	return ""
}

func (s *fakeStore) attemptsOf(eventID string) []bridge.Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	var as []bridge.Attempt
	for _, a := range s.attempts {
		if a.EventID == eventID {
			as = append(as, a)
		}
	}
	return as
}

func (s *fakeStore) counts(endpointID string) map[bridge.DeliveryStatus]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[bridge.DeliveryStatus]int)
	for _, d := range s.rows[endpointID] {
		m[d.Status]++
	}
	return m
}

// event returns a committed-to-be record of one conversation event; an
// empty conv makes an independent event.
func event(conv string, seq int64) bridge.Record {
	id := fmt.Sprintf("evt_%s_%d", conv, seq)
	if conv == "" {
		id = fmt.Sprintf("evt_free_%d", seq)
	}
	r, err := bridge.NewRecord(bridge.Event{
		ID: id, Type: bridge.EventCallAnswered, Sequence: seq, PBX: "test",
		ConversationID: conv, OccurredAt: time.Unix(1700000000, 0).UTC(),
	})
	if err != nil {
		panic(err)
	}
	return r
}

func TestFakeStorePages(t *testing.T) {
	s := newFakeStore()
	s.commit([]bridge.Record{event("a", 1), event("a", 2), event("b", 1)}, "ep")
	ds, _ := s.PendingDeliveries(context.Background(), "ep", 1, 1)
	if len(ds) != 1 || ds[0].Seq != 2 {
		t.Fatalf("page after 1: %+v", ds)
	}
}
