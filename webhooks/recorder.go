package webhooks

import (
	"context"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// attemptBatcher is a store that records several attempts in one go
// (store.DB): one error per attempt, nil when recorded.
type attemptBatcher interface {
	RecordAttempts(ctx context.Context, as []bridge.Attempt) []error
}

// maxRecordBatch bounds the attempts one store call records.
const maxRecordBatch = 256

// Under a heavy load (a backlog drain: the last batch held gatherAbove
// attempts or more) the recorder gathers attempts for up to gatherFor, or
// until maxRecordBatch wait, before it records them. A transaction costs
// about the same whether it carries 50 attempts or 200 (SQLite writes the
// same few pages), so a drain spends markedly less CPU per delivery; at
// lower rates records go at once, as before.
const (
	gatherAbove = 32
	gatherFor   = 5 * time.Millisecond
)

// queued is an answered attempt waiting for its record.
type queued struct {
	cfg *endpointConfig
	it  *item
	a   bridge.Attempt
	r   result
}

// queueRecord hands an answered attempt to the endpoint's recorder, started
// if none runs. With a store that records in batches, the request's
// goroutine goes back to requests at once instead of waiting for the
// commit: a backlog drain's records then cost one store request and one
// wake-up for every batch rather than for every delivery.
func (e *endpoint) queueRecord(q queued) {
	e.recMu.Lock()
	e.recQ = append(e.recQ, q)
	full := len(e.recQ) >= maxRecordBatch
	start := !e.recording
	e.recording = true
	e.recMu.Unlock()
	if start {
		go e.recordQueued()
	} else if full {
		select {
		case e.recFull <- struct{}{}: // ends a gathering wait
		default:
		}
	}
}

// recordQueued records what is queued, batch after batch, until the queue
// is empty. It runs while attempts come faster than they commit.
func (e *endpoint) recordQueued() {
	var spare []queued
	var gather *time.Timer
	for {
		if len(spare) >= gatherAbove {
			if gather == nil {
				gather = time.NewTimer(gatherFor)
			} else {
				gather.Reset(gatherFor)
			}
			select {
			case <-e.recFull:
				gather.Stop()
			case <-gather.C:
			}
		}
		e.recMu.Lock()
		q := e.recQ
		if len(q) == 0 {
			e.recording = false
			e.recMu.Unlock()
			return
		}
		e.recQ = spare[:0]
		e.recMu.Unlock()
		for rest := q; len(rest) > 0; {
			n := min(len(rest), maxRecordBatch)
			e.recordBatch(rest[:n])
			rest = rest[n:]
		}
		clear(q) // let the items go; len(spare) is the batch's size
		spare = q
	}
}

// recordBatch is record for the queued attempts, then hands their results
// to the scheduler together.
func (e *endpoint) recordBatch(qs []queued) {
	d := e.d
	as := make([]bridge.Attempt, len(qs))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.reqCtx), d.opts.Timeout)
	e.recordMu.RLock()
	for i := range qs {
		e.settle(&qs[i].a, &qs[i].r)
		as[i] = qs[i].a
	}
	for i, err := range d.batch.RecordAttempts(ctx, as) {
		if err != nil {
			e.notRecorded(qs[i].it, qs[i].a, err)
		}
	}
	e.recordMu.RUnlock()
	cancel()
	for i := range qs {
		e.recorded(qs[i].cfg, qs[i].it, qs[i].a, qs[i].r)
	}
	e.doneMu.Lock()
	for i := range qs {
		e.done = append(e.done, qs[i].r)
	}
	e.doneMu.Unlock()
	e.signal()
	for range qs {
		d.workWG.Done()
	}
}
