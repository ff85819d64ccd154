package main

import (
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/sinks/nats/natstest"
)

// fleetSinks adds the sink-nats endpoint and its connector; sinkState and
// sinkMetrics follow the connection (the hooks /readyz and /metrics can
// take): up, then down with a fixed reason once the server is gone.
func TestFleetSinksStateAndMetrics(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	cfg := config.Default()
	cfg.Sinks.NATS.URLs = []string{srv.URL()}
	conns := map[string]bridge.Connector{}
	resumed := make(chan string, 4)
	eps, err := fleetSinks(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), conns, []bridge.Endpoint{{ID: "crm"}},
		func(id string) { resumed <- id })
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || eps[1].ID != config.NATSEndpointID || conns[config.NATSEndpointID] == nil || eps[1].Source != "config" {
		t.Fatalf("endpoints %+v, connectors %v", eps, conns)
	}
	metric := func(name string) float64 {
		for _, m := range sinkMetrics(conns) {
			if m.Name == name {
				return m.Value
			}
		}
		return -1
	}
	if err := waitFor(t.Context(), 10*time.Second, func() bool { ok, _ := sinkState(conns); return ok }); err != nil {
		t.Fatal("sink never connected")
	}
	if metric("ctibridge_nats_connected") != 1 {
		t.Errorf("ctibridge_nats_connected = %v while connected", metric("ctibridge_nats_connected"))
	}
	// The connection told the dispatcher its endpoint is reachable (backoffs
	// end at a reconnect).
	select {
	case id := <-resumed:
		if id != config.NATSEndpointID {
			t.Errorf("resumed %q, want %s", id, config.NATSEndpointID)
		}
	case <-time.After(30 * time.Second): // a bound on a failure only
		t.Error("the connection never told the dispatcher (Resume)")
	}
	srv.Shutdown()
	if err := waitFor(t.Context(), 10*time.Second, func() bool { ok, _ := sinkState(conns); return !ok }); err != nil {
		t.Fatal("sink never saw the server go")
	}
	if _, reasons := sinkState(conns); len(reasons) != 1 || reasons[0] != "nats: not connected" {
		t.Errorf("reasons %q", reasons)
	}
	if metric("ctibridge_nats_connected") != 0 {
		t.Errorf("ctibridge_nats_connected = %v while down", metric("ctibridge_nats_connected"))
	}

	cfg.Sinks.NATS.Subject = "a.*"
	if _, err := fleetSinks(t.Context(), cfg, slog.Default(), map[string]bridge.Connector{}, nil, func(string) {}); err == nil {
		t.Error("a wildcard subject template was accepted")
	}
	if eps, err := fleetSinks(t.Context(), config.Default(), slog.Default(), conns, nil, func(string) {}); err != nil || len(eps) != 0 {
		t.Errorf("sink off: %v %v", eps, err)
	}
}

// The product links the NATS client only: the server is embedded by tests
// (natstest), never by the binary.
func TestBinaryDoesNotLinkNATSServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/nats-io/nats.go/jetstream") {
		t.Fatal("go list -deps shows no NATS client: the check below proves nothing")
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "nats-server") || strings.HasSuffix(dep, "/natstest") {
			t.Errorf("ctibridge links %s", dep)
		}
	}
}
