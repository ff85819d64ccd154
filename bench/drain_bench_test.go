package bench

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
)

// BenchmarkDrain is the backlog scenario in this process: b.N pending
// deliveries of the Asterisk mix pre-loaded into a SQLite file, then
// drained by the dispatcher to a receiver that checks every signature. It
// shows where a drain's time goes, store included, with -cpuprofile:
//
//	go test -run '^$' -bench Drain/FULL -benchtime 50000x -cpuprofile cpu.out ./bench/
//
// Each op is one delivery; the CPU figure includes the receiver's.
func BenchmarkDrain(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run(sync, func(b *testing.B) { drain(b, sync) })
	}
}

func drain(b *testing.B, sync string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	sim, err := newSimulator("asterisk")
	if err != nil {
		b.Fatal(err)
	}
	sim.close() // only its templates are needed
	path := filepath.Join(b.TempDir(), "ctibridge.db")
	pre, err := store.Open(path, store.Options{Synchronous: "NORMAL", Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	err = rows(sim.tpls, b.N, 5000, func(rs []row) error { return pre.Commit(ctx, batchOf(rs, "crm")) })
	if cerr := pre.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}

	secret := bridge.NewWebhookSecret()
	rcv, err := newReceiver(secret, false)
	if err != nil {
		b.Fatal(err)
	}
	defer rcv.close()
	db, err := store.Open(path, store.Options{Synchronous: sync, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	d := webhooks.New(db, webhooks.Options{Logger: log})
	d.SetEndpoints([]bridge.Endpoint{{ID: "crm", URL: rcv.URL, Secret: secret, Source: "config"}})
	tx0, cpu0 := db.Transactions.Load(), selfCPU()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for d.Stats().Delivered < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if n := rcv.count(); n < int64(b.N) || rcv.bad.Load() != 0 {
		b.Fatalf("receiver: %d good, %d bad signatures, want %d good", n, rcv.bad.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/delivery")
	b.ReportMetric(float64(b.N)/float64(max(1, db.Transactions.Load()-tx0)), "deliveries/tx")
}
