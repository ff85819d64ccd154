package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// harness is the whole product on loopback: a simulated PBX speaking the
// real wire format, ctibridge (serve) with a real SQLite file, and a real
// HTTP receiver verifying signatures.
type harness struct {
	t        *testing.T
	cfg      config.Config
	receiver *webhookstest.Receiver
	run      running
	cancel   context.CancelFunc
	done     chan error

	mu    sync.Mutex
	types []string // every committed event's type
}

func startBridge(t *testing.T, cfg config.Config, receiver *webhookstest.Receiver) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, cfg: cfg, receiver: receiver, cancel: cancel, done: make(chan error, 1)}
	started := make(chan running, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() {
		h.done <- serve(ctx, cfg, log, func(r running) {
			r.Engine.Subscribe(func(recs []bridge.Record) {
				h.mu.Lock()
				defer h.mu.Unlock()
				for _, rec := range recs {
					h.types = append(h.types, rec.Type)
				}
			})
			started <- r
		})
	}()
	select {
	case h.run = <-started:
	case err := <-h.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Error("serve did not stop within 15s of cancel")
	}
}

func (h *harness) waitLink(up bool) {
	h.t.Helper()
	if err := waitFor(context.Background(), 10*time.Second, func() bool { u, _ := h.run.Engine.LinkState(); return u == up }); err != nil {
		h.t.Fatalf("PBX link up=%v never reached", up)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func asteriskConfig(t *testing.T, simAddr string, receiverURL, secret string) config.Config {
	cfg := config.Default()
	cfg.PBX.Address, cfg.PBX.Username, cfg.PBX.Secret = simAddr, "bridge", "bridgepass"
	cfg.PBX.BackoffMax = 200 * time.Millisecond
	cfg.Store.Path = filepath.Join(t.TempDir(), "ctibridge.db")
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Calls.InboundContexts = []string{"inbound"}
	cfg.Webhooks = []config.Webhook{{ID: "crm", URL: receiverURL, Secret: secret, Events: []string{"call.*", "recording.*"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newAsterisk(t *testing.T) *amitest.Server {
	sim, err := amitest.NewServer(amitest.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func typesOf(ds []webhookstest.Delivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Type)
	}
	return strings.Join(s, ",")
}

func field(d webhookstest.Delivery, path string) any {
	var cur any = d.Body
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// TestCapturesEndToEnd replays each real Asterisk capture through the
// simulator, ctibridge and a signature-checking HTTP receiver.
func TestCapturesEndToEnd(t *testing.T) {
	cases := []struct {
		capture string
		types   string
		check   func(t *testing.T, ds []webhookstest.Delivery)
	}{
		{"inbound-call-basic", "call.ringing,call.answered,call.ended", func(t *testing.T, ds []webhookstest.Delivery) {
			for path, want := range map[string]any{
				"call.direction": "inbound", "call.caller.number": "5551234", "call.caller.name": "Test Caller",
				"call.callee.number": "200", "agent.extension": "100",
			} {
				if got := field(ds[0], path); got != want {
					t.Errorf("ringing %s = %v, want %v", path, got, want)
				}
			}
			for path, want := range map[string]any{
				"call.disposition": "answered", "call.hangup_cause.code": 16.0, "call.hangup_cause.text": "Normal Clearing",
				"call.hangup_by": "agent", "call.agent.extension": "100",
			} {
				if got := field(ds[2], path); got != want {
					t.Errorf("ended %s = %v, want %v", path, got, want)
				}
			}
			if field(ds[2], "call.duration_s") == nil || field(ds[2], "call.talk_s") == nil || field(ds[2], "call.answered_at") == nil {
				t.Errorf("ended lacks durations: %s", ds[2].Raw)
			}
		}},
		{"queue-call", "call.queued,call.ringing,call.answered,call.ended", func(t *testing.T, ds []webhookstest.Delivery) {
			if field(ds[0], "call.queue") != "support" || field(ds[1], "agent.name") != "Agent100" {
				t.Errorf("queue fields: %s / %s", ds[0].Raw, ds[1].Raw)
			}
		}},
		{"blind-transfer", "call.ringing,call.answered,call.transferred,call.ended", func(t *testing.T, ds []webhookstest.Delivery) {
			if field(ds[2], "transfer.mode") != "blind" || field(ds[2], "transfer.from.extension") != "101" || field(ds[2], "transfer.to") != "600" {
				t.Errorf("transfer: %s", ds[2].Raw)
			}
		}},
		{"mixmonitor", "recording.started,call.ringing,call.answered,call.ended,recording.ready", func(t *testing.T, ds []webhookstest.Delivery) {
			want := "/srv/pbx1/asterisk/var/spool/asterisk/monitor/call-1795339072.23.wav"
			if field(ds[4], "recording.path") != want || field(ds[3], "call.recording.path") != want {
				t.Errorf("recording path: %s", ds[3].Raw)
			}
		}},
		{"originate-busy", "call.ended", func(t *testing.T, ds []webhookstest.Delivery) {
			if field(ds[0], "call.disposition") != "busy" || field(ds[0], "call.hangup_cause.code") != 17.0 {
				t.Errorf("busy: %s", ds[0].Raw)
			}
		}},
		{"hangup-action", "call.ringing,call.answered,call.ended", func(t *testing.T, ds []webhookstest.Delivery) {
			if field(ds[2], "call.hangup_by") != "caller" {
				t.Errorf("hangup_by: %s", ds[2].Raw)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.capture, func(t *testing.T) {
			sim := newAsterisk(t)
			secret := bridge.NewWebhookSecret()
			rcv := webhookstest.NewReceiver(t, secret)
			h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
			h.waitLink(true)
			if err := sim.Play(tc.capture, amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			want := strings.Count(tc.types, ",") + 1
			ds := rcv.WaitFor(want, 10*time.Second)
			// Nothing more may come: give stragglers a moment.
			time.Sleep(100 * time.Millisecond)
			ds = rcv.Deliveries()
			if got := typesOf(ds); got != tc.types {
				for _, d := range ds {
					t.Logf("%s", d.Raw)
				}
				t.Fatalf("webhooks = %s, want %s", got, tc.types)
			}
			conv := ds[0].ConversationID
			for i, d := range ds {
				if d.Err != nil {
					t.Errorf("webhook %d: bad signature: %v", i, d.Err)
				}
				if d.Sequence != int64(i+1) || d.ConversationID != conv || d.Header.Get("webhook-id") != d.ID || d.ID != field(d, "id") {
					t.Errorf("webhook %d: seq=%d conv=%s id=%s header=%s", i, d.Sequence, d.ConversationID, d.ID, d.Header.Get("webhook-id"))
				}
			}
			tc.check(t, ds)

			// The history has the call with its events.
			resp, err := http.Get("http://" + h.run.HTTPAddr + "/v1/calls/" + conv)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Call   map[string]any    `json:"call"`
				Open   bool              `json:"open"`
				Events []json.RawMessage `json:"events"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /v1/calls/%s: %d %v", conv, resp.StatusCode, err)
			}
			if got.Open || len(got.Events) != len(ds) {
				t.Errorf("history: open=%v events=%d, want closed with %d", got.Open, len(got.Events), len(ds))
			}
		})
	}
}
