package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// BenchmarkCommit measures outbox throughput as the engine uses it: each
// event brings one delivery and an upsert of its conversation. One op is
// one Commit of a batch; committers call Commit concurrently, so group
// commit can share an fsync between them.
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		for _, size := range []int{1, 100} {
			for _, committers := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/batch=%d/committers=%d", mode, size, committers), func(b *testing.B) {
					benchCommit(b, mode, size, committers)
				})
			}
		}
	}
}

func benchCommit(b *testing.B, mode string, size, committers int) {
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: mode})
	answered := t0.Add(4 * time.Second)
	call := bridge.Call{ID: "conv_x", Direction: bridge.DirectionInbound, State: "talking",
		Caller: bridge.Party{Number: "+12025550143", Name: "ACME Corp", E164: "+12025550143"},
		Callee: bridge.Party{Number: "5000", E164: ""}, Agent: &bridge.Agent{Extension: "201", Name: "Alice"},
		Queue: "support", StartedAt: t0, AnsweredAt: &answered}
	payload, _ := json.Marshal(bridge.Event{ID: "evt_x", Type: bridge.EventCallAnswered, OccurredAt: answered, Sequence: 2,
		PBX: "pbx1", ConversationID: call.ID, Call: &call, Agent: call.Agent})
	state := []byte(`{"legs":[{"role":"caller","channels":["1700000000.1"]},{"role":"agent","channels":["1700000000.2"]}]}`)

	var next atomic.Int64
	var wg sync.WaitGroup
	tx0 := db.Transactions.Load()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	cpu0 := time.Duration(ru0.Utime.Nano() + ru0.Stime.Nano())
	b.ResetTimer()
	start := time.Now()
	for range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Ids are time-ordered like bridge.NewID's; a call is four
			// events (ringing, answered, ..., ended) updating its record.
			var seq int
			var conv string
			for next.Add(1) <= int64(b.N) {
				batch := &bridge.Batch{Events: make([]bridge.PendingEvent, size)}
				for i := range size {
					if seq%4 == 0 {
						conv = bridge.NewID("conv_")
					}
					seq++
					c := call
					c.ID = conv
					batch.Events[i] = bridge.PendingEvent{Record: bridge.Record{ID: bridge.NewID("evt_"), Type: bridge.EventCallAnswered,
						ConversationID: c.ID, Sequence: int64(seq%4 + 1), OccurredAt: answered, Payload: payload}, EndpointIDs: []string{"crm"}}
					batch.Conversations = append(batch.Conversations, bridge.ConversationRecord{Call: c, LastSeq: int64(seq%4 + 1), Open: seq%4 != 0, State: state, UpdatedAt: answered})
				}
				if err := db.Commit(ctx, batch); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	events := float64(b.N * size)
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b.ReportMetric(float64((cpu-cpu0).Microseconds())/events, "cpu-us/event")
	if txs := db.Transactions.Load() - tx0; txs > 0 {
		b.ReportMetric(events/float64(txs), "events/tx")
	}
}

// BenchmarkPendingDeliveries is the dispatcher's backlog read.
func BenchmarkPendingDeliveries(b *testing.B) {
	db := openAt(b, filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: "NORMAL"})
	var batch bridge.Batch
	for i := range 10000 {
		batch.Events = append(batch.Events, newEvent("c"+strconv.Itoa(i%100), int64(i), "call.ringing", t0, "crm"))
	}
	commit(b, db, &batch)
	// Half delivered, interleaved: the partial index must skip them.
	for i := 0; i < len(batch.Events); i += 2 {
		db.RecordAttempt(ctx, bridge.Attempt{EventID: batch.Events[i].ID, EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ds, err := db.PendingDeliveries(ctx, "crm", batch.Events[(i*100)%9000].Seq, 100)
		if err != nil || len(ds) != 100 {
			b.Fatal(len(ds), err)
		}
	}
}

// BenchmarkRecordAttempt is the backlog drain's write side: 64 request
// slots record a delivered attempt each, concurrently (group commit).
func BenchmarkRecordAttempt(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		b.Run(mode, func(b *testing.B) {
			db := openAt(b, filepath.Join(b.TempDir(), "bench.db"), Options{Synchronous: mode})
			var evs []bridge.PendingEvent
			for i := range b.N {
				evs = append(evs, newEvent("c"+strconv.Itoa(i%100), int64(i), "call.ringing", t0, "crm"))
				if len(evs) == 5000 || i == b.N-1 {
					commit(b, db, &bridge.Batch{Events: evs})
					evs = nil
				}
			}
			var ids []string
			ds, err := db.PendingDeliveries(ctx, "crm", 0, b.N)
			if err != nil || len(ds) != b.N {
				b.Fatal(len(ds), err)
			}
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			tx0 := db.Transactions.Load()
			b.ResetTimer()
			start := time.Now()
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						if err := db.RecordAttempt(ctx, bridge.Attempt{EventID: ids[i], EndpointID: "crm", At: t0, StatusCode: 200, Outcome: bridge.DeliveryDelivered}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "attempts/s")
			if txs := db.Transactions.Load() - tx0; txs > 0 {
				b.ReportMetric(float64(b.N)/float64(txs), "attempts/tx")
			}
		})
	}
}
