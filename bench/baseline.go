package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ctibridge/ctibridge/ami"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
	"github.com/staskobzar/goami2"
)

// parseBaseline reads and parses the bytes the max scenario sends, over
// loopback TCP, with nothing else: AMI framing + goami2.Parse, ESL framing
// + esl.ParsePlain. Best of three.
func (h *harness) parseBaseline(ctx context.Context, pbx string) error {
	sim, err := h.newSim(pbx)
	if err != nil {
		return err
	}
	defer sim.close()
	calls, err := sim.prepare(h.o.MaxCalls, false)
	if err != nil {
		return err
	}
	finalize(pbx, calls, schedule{start: func(int) time.Duration { return 0 }})
	var stream []byte
	frames := 0
	for _, c := range calls {
		stream = append(stream, c.raw...)
		frames += c.last
	}
	best := 0.0
	for range 3 {
		r, err := readParse(pbx, stream, frames)
		if err != nil {
			return err
		}
		best = max(best, r)
	}
	h.rep.Baselines = append(h.rep.Baselines, Baseline{Name: "read+parse " + pbx, Value: best, Unit: "events/s",
		Note: fmt.Sprintf("%d frames, %.1f MB over loopback TCP, best of 3", frames, mb(int64(len(stream))))})
	h.logf("  raw read+parse %s: %.0f events/s", pbx, best)
	return nil
}

func readParse(pbx string, stream []byte, frames int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for b := stream; len(b) > 0; {
			n := min(len(b), maxWrite)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	n := 0
	switch pbx {
	case "asterisk":
		rd := ami.NewReader(conn, 0, 0)
		for n < frames {
			f, err := rd.ReadFrame()
			if err != nil {
				return 0, err
			}
			if _, err := goami2.Parse(string(f)); err != nil {
				return 0, err
			}
			n++
		}
	default:
		br := bufio.NewReaderSize(conn, 64<<10)
		for n < frames {
			f, err := esl.ReadFrame(br, 0)
			if err != nil {
				return 0, err
			}
			if _, err := esl.ParsePlain(f.Body); err != nil {
				return 0, err
			}
			n++
		}
	}
	return rate(int64(n), time.Since(start)), nil
}

// row is one CRM event as ctibridge makes it.
type row struct {
	ev  bridge.Event
	rec bridge.Record
}

// rows makes n webhook events from the calibrated calls: the tracker's own
// events, renumbered into fresh conversations, marshalled by
// bridge.NewRecord exactly as the engine does. yield gets them in batches.
func rows(tpls []*template, n, batch int, yield func([]row) error) error {
	var out []row
	conv := 0
	for made := 0; made < n; conv++ {
		t := tpls[conv%len(tpls)]
		cid := fmt.Sprintf("conv_bench%016d", conv)
		for _, ev := range t.events {
			if !wanted(ev.Type) || made == n {
				continue
			}
			ev.ID = fmt.Sprintf("evt_bench%019d", made)
			ev.ConversationID = cid
			if ev.Call != nil {
				call := *ev.Call
				call.ID = cid
				ev.Call = &call
			}
			rec, err := bridge.NewRecord(ev)
			if err != nil {
				return err
			}
			out = append(out, row{ev: ev, rec: rec})
			made++
			if len(out) == batch {
				if err := yield(out); err != nil {
					return err
				}
				out = nil
			}
		}
	}
	if len(out) > 0 {
		return yield(out)
	}
	return nil
}

// batchOf is what the engine commits for these rows: events due to one
// endpoint and the conversations they changed.
func batchOf(rs []row, endpoint string) *bridge.Batch {
	b := &bridge.Batch{}
	convs := map[string]int{}
	for _, r := range rs {
		b.Events = append(b.Events, bridge.PendingEvent{Record: r.rec, EndpointIDs: []string{endpoint}})
		if r.ev.Call == nil {
			continue
		}
		state, _ := json.Marshal(r.ev.Call) // stands in for the tracker's snapshot, of like size
		cr := bridge.ConversationRecord{Call: *r.ev.Call, LastSeq: r.ev.Sequence, Open: r.ev.Type != bridge.EventCallEnded,
			State: state, UpdatedAt: time.Now()}
		if i, ok := convs[r.ev.ConversationID]; ok {
			b.Conversations[i] = cr
		} else {
			convs[r.ev.ConversationID] = len(b.Conversations)
			b.Conversations = append(b.Conversations, cr)
		}
	}
	return b
}

// storeBaseline inserts the same kind of rows through store.Open + Commit
// with the same durability, one committer as the engine is, in batches of
// 1 and of 256 events; then records one delivered attempt per event from
// 16 writers, as the dispatcher's requests to one endpoint do.
func (h *harness) storeBaseline(ctx context.Context, mode string, tpls []*template) error {
	var all []row
	if err := rows(tpls, h.o.BaselineRows, h.o.BaselineRows, func(rs []row) error { all = rs; return nil }); err != nil {
		return err
	}
	for _, size := range []int{1, 256} {
		db, err := store.Open(filepath.Join(h.dir(), "raw.db"), store.Options{Synchronous: mode})
		if err != nil {
			return err
		}
		n := len(all)
		if size == 1 {
			n = min(n, 2000) // one fsync per event: a sample is enough
		}
		start := time.Now()
		for i := 0; i < n; i += size {
			if err := db.Commit(ctx, batchOf(all[i:min(i+size, n)], "crm")); err != nil {
				db.Close()
				return err
			}
		}
		r := rate(int64(n), time.Since(start))
		h.rep.Baselines = append(h.rep.Baselines, Baseline{Name: fmt.Sprintf("sqlite commit batch %d", size), Sync: mode, Value: r,
			Unit: "events/s", Note: "store.Commit: event + delivery + conversation rows, one committer"})
		h.logf("  raw sqlite %s commit batch %d: %.0f events/s", mode, size, r)
		if size == 256 {
			start = time.Now()
			var wg sync.WaitGroup
			var failed error
			var mu sync.Mutex
			next := make(chan row)
			for range 16 {
				wg.Go(func() {
					for r := range next {
						err := db.RecordAttempt(ctx, bridge.Attempt{EventID: r.rec.ID, EndpointID: "crm", At: time.Now(),
							StatusCode: 204, Latency: time.Millisecond, Outcome: bridge.DeliveryDelivered})
						if err != nil {
							mu.Lock()
							failed = err
							mu.Unlock()
						}
					}
				})
			}
			for _, r := range all {
				next <- r
			}
			close(next)
			wg.Wait()
			if failed != nil {
				db.Close()
				return failed
			}
			r := rate(int64(len(all)), time.Since(start))
			h.rep.Baselines = append(h.rep.Baselines, Baseline{Name: "sqlite record attempt", Sync: mode, Value: r, Unit: "attempts/s",
				Note: "store.RecordAttempt from 16 writers (group commit)"})
			h.logf("  raw sqlite %s record attempt x16: %.0f attempts/s", mode, r)
		}
		db.Close()
	}
	return nil
}

// postBaseline POSTs the same payloads, signed the same way, to the same
// receiver with plain net/http and the dispatcher's per-endpoint
// concurrency (16). Best of three.
func (h *harness) postBaseline(ctx context.Context, tpls []*template) error {
	var all []row
	if err := rows(tpls, h.o.BaselineRows, h.o.BaselineRows, func(rs []row) error { all = rs; return nil }); err != nil {
		return err
	}
	secret := bridge.NewWebhookSecret()
	best := 0.0
	for range 3 {
		rcv, err := newReceiver(secret, false)
		if err != nil {
			return err
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 16}}
		start := time.Now()
		next := make(chan row)
		var wg sync.WaitGroup
		var failed error
		var mu sync.Mutex
		for range 16 {
			wg.Go(func() {
				for r := range next {
					if err := post(ctx, client, rcv.URL, secret, r.rec); err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				}
			})
		}
		for _, r := range all {
			next <- r
		}
		close(next)
		wg.Wait()
		el := time.Since(start)
		client.CloseIdleConnections()
		rcv.close()
		if failed != nil {
			return failed
		}
		if rcv.count() != int64(len(all)) {
			return fmt.Errorf("bench: POST baseline: %d of %d accepted", rcv.count(), len(all))
		}
		best = max(best, rate(int64(len(all)), el))
	}
	h.rep.Baselines = append(h.rep.Baselines, Baseline{Name: "net/http POST", Value: best, Unit: "webhooks/s",
		Note: "same payloads and signatures, same receiver, 16 concurrent, best of 3"})
	h.logf("  raw net/http POST: %.0f webhooks/s", best)
	return nil
}

func post(ctx context.Context, client *http.Client, url, secret string, rec bridge.Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(rec.Payload))
	if err != nil {
		return err
	}
	now := time.Now()
	sig, err := webhooks.Sign(secret, rec.ID, now, rec.Payload)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.HeaderID, rec.ID)
	req.Header.Set(webhooks.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhooks.HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errors.New("bench: POST baseline: " + resp.Status)
	}
	return nil
}
