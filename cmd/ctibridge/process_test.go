package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/internal/serveproc"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// buildBinary compiles ctibridge once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin, err := serveproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBadConfigExitsNonZeroNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("pbx:\n  type: asterisk\n  address: 127.0.0.1:5038\n  username: bridge\n  secret: x\nstore:\n  synchronous: SOMETIMES\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--config", path}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "store.synchronous") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	code = run([]string{"frobnicate"}, &out, &errb)
	if code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

// serve as a real process: an unreachable PBX is not fatal and /readyz says
// why; SIGTERM shuts down cleanly with exit code 0.
func TestServeProcessUnreachablePBXAndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := freePort(t)
	pbx := freePort(t) // nothing listens there
	cfg := "pbx:\n  name: pbx1\n  type: asterisk\n  address: " + pbx + "\n  username: bridge\n  secret: s3cr3t-value\n  backoff_max: 200ms\n" +
		"store:\n  path: " + filepath.Join(dir, "c.db") + "\nhttp:\n  listen: " + listen + "\n"
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	cmd := exec.Command(bin, "serve", "--config", path)
	var logs bytes.Buffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var body map[string]any
	var status int
	err := waitFor(t.Context(), 10*time.Second, func() bool {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &body)
		return body["pbx_error"] != nil
	})
	if err != nil || status != 503 || body["pbx_connected"] != false || body["store_writable"] != true {
		t.Fatalf("readyz: %d %v (%v)\n%s", status, body, err, logs.String())
	}
	// /readyz needs no key: it says what is wrong, never where (the
	// address, the AMI user and the database path are in the log only).
	_, pbxPort, _ := net.SplitHostPort(pbx)
	if msg := body["pbx_error"].(string); msg != "pbx: not connected: connection refused" {
		t.Errorf("pbx_error = %q, want the cause only", msg)
	}
	for _, secret := range []string{pbxPort, "bridge", dir} {
		if raw, _ := json.Marshal(body); strings.Contains(string(raw), secret) {
			t.Errorf("readyz names %q: %s", secret, raw)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10s of SIGTERM\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "s3cr3t-value") {
		t.Fatal("the PBX secret appears in the log")
	}
	// What /readyz leaves out, the log has (read once the process ended).
	if !strings.Contains(logs.String(), pbx) {
		t.Errorf("the log does not name the PBX address %s:\n%s", pbx, logs.String())
	}
	if !strings.Contains(logs.String(), "ctibridge stopped") {
		t.Fatalf("no clean-stop line:\n%s", logs.String())
	}
}

func TestReadyAndMetricsWhenConnected(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	rcv.WaitFor(3, 5*time.Second)
	resp, err := http.Get("http://" + h.run.HTTPAddr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	var text string
	err = waitFor(t.Context(), 5*time.Second, func() bool {
		resp, err := http.Get("http://" + h.run.HTTPAddr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		// serve wires the dispatcher's observer: the three deliveries are
		// in the latency histogram, the ringing one is a screen pop.
		return strings.Contains(text, `ctibridge_deliveries_total{outcome="delivered"} 3`) &&
			strings.Contains(text, `ctibridge_delivery_latency_seconds_count{endpoint="crm"} 3`) &&
			strings.Contains(text, "ctibridge_screen_pop_latency_seconds_count 1") &&
			strings.Contains(text, `ctibridge_endpoint_delivery_backlog{endpoint="crm"} 0`)
	})
	if err != nil {
		t.Fatalf("metrics:\n%s", text)
	}
	for _, want := range []string{"ctibridge_pbx_link_up 1", "ctibridge_events_committed_total 5", "ctibridge_delivery_backlog 0", "# TYPE ctibridge_pbx_events_ingested_total counter"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A wrong secret is logged clearly and retried with backoff, not fatal.
func TestWrongSecretIsReportedNotFatal(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.PBX.Secret = "wrong"
	h := startBridge(t, cfg, rcv)
	err := waitFor(t.Context(), 5*time.Second, func() bool {
		_, e := h.run.Engine.LinkState()
		return strings.Contains(strings.ToLower(e), "auth")
	})
	if err != nil {
		_, e := h.run.Engine.LinkState()
		t.Fatalf("link error = %q", e)
	}
	if _, e := h.run.Engine.LinkState(); strings.Contains(e, "wrong") {
		t.Fatal("the secret leaks into the link error")
	}
}

// An endpoint that answers 410 is disabled: no new deliveries pile up for it.
func TestGoneEndpointStopsReceivingDeliveries(t *testing.T) {
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	rcv.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Status: 410} })
	h := startBridge(t, asteriskConfig(t, sim.Addr(), rcv.URL, secret), rcv)
	h.waitLink(true)
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t.Context(), 5*time.Second, func() bool { return h.run.Engine.Emitted.Load() >= 5 }); err != nil {
		t.Fatal("events not committed")
	}
	if err := sim.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true}); err != nil {
		t.Fatal(err)
	}
	err := waitFor(t.Context(), 5*time.Second, func() bool {
		n, err := h.run.DB.Backlog(t.Context())
		return err == nil && n == 0 && h.run.Engine.Emitted.Load() >= 10
	})
	if err != nil {
		n, _ := h.run.DB.Backlog(t.Context())
		t.Fatalf("backlog for a gone endpoint = %d", n)
	}
	if got := len(rcv.Requests()); got != 1 {
		t.Fatalf("the gone endpoint got %d requests, want 1", got)
	}
}
