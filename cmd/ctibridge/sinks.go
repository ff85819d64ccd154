package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	apihttp "github.com/ctibridge/ctibridge/http"
	natssink "github.com/ctibridge/ctibridge/sinks/nats"
)

// fleetSinks builds the configured sinks into conns (by endpoint id) and
// returns eps with their endpoints added: a sink gets every event's
// delivery like a webhook endpoint (retries, dead letters, replay). The
// connection is made in the background and closed a while after ctx ends,
// once the dispatcher has had its shutdown grace.
//
// resume is told when a sink's connection is (re)made, with its endpoint
// id (the dispatcher's Resume: backoffs end at a reconnect).
func fleetSinks(ctx context.Context, cfg config.Config, log *slog.Logger, conns map[string]bridge.Connector, eps []bridge.Endpoint,
	resume func(endpointID string)) ([]bridge.Endpoint, error) {
	n := cfg.Sinks.NATS
	if !n.Enabled() {
		return eps, nil
	}
	subject, err := natssink.ParseSubject(n.Subject)
	if err != nil {
		return nil, &config.Error{Key: "sinks.nats.subject", Reason: err.Error()}
	}
	sink, err := natssink.New(natssink.Options{
		URLs: n.URLs, PBX: cfg.PBX.Name, Subject: subject, Tenant: natssink.TenantOf,
		CredentialsFile: n.CredentialsFile, NKeySeedFile: n.NKeySeedFile, User: n.User, Password: n.Password, Token: n.Token,
		CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile,
		PublishTimeout: n.PublishTimeout, ReconnectMax: n.ReconnectBackoffMax,
		Stream: n.Stream, CreateStream: n.CreateStream, StreamSubjects: n.StreamSubjects,
		MaxAge: n.MaxAge, MaxBytes: n.MaxBytes, DuplicateWindow: n.DuplicateWindow, Replicas: n.Replicas,
		OnUp:   func() { resume(config.NATSEndpointID) },
		Logger: log,
	})
	if err != nil {
		return nil, &config.Error{Key: "sinks.nats", Reason: err.Error()}
	}
	context.AfterFunc(ctx, func() { time.AfterFunc(10*time.Second, sink.Close) })
	conns[config.NATSEndpointID] = sink
	log.Info("NATS sink on", "servers", strings.Join(n.URLs, ","), "subject", n.Subject, "stream", n.Stream,
		"create_stream", n.CreateStream)
	return append(eps, bridge.Endpoint{ID: config.NATSEndpointID, URL: n.URLs[0], Source: "config"}), nil
}

// sinkState is the sinks' connection state for readiness: ok, or a fixed
// reason per sink that is down (no address: /readyz needs no key).
func sinkState(conns map[string]bridge.Connector) (ok bool, reasons []string) {
	ok = true
	for _, c := range conns {
		if s, isSink := c.(*natssink.Sink); isSink {
			if up, _ := s.State(); !up {
				ok = false
				reasons = append(reasons, "nats: not connected")
			}
		}
	}
	return ok, reasons
}

// sinkMetrics are the sinks' samples for /metrics (Server.Metrics).
func sinkMetrics(conns map[string]bridge.Connector) []apihttp.Metric {
	var ms []apihttp.Metric
	for _, c := range conns {
		s, isSink := c.(*natssink.Sink)
		if !isSink {
			continue
		}
		st := s.Stats()
		up := 0.0
		if st.Connected {
			up = 1
		}
		ms = append(ms,
			apihttp.Metric{Name: "ctibridge_nats_connected", Help: "1 when the NATS sink's connection is up.", Type: "gauge", Value: up},
			apihttp.Metric{Name: "ctibridge_nats_published_total", Help: "Events the NATS sink got a PubAck for (duplicates included).", Type: "counter", Value: float64(st.Published)},
			apihttp.Metric{Name: "ctibridge_nats_duplicates_total", Help: "PubAcks saying the stream already held the event (a resend).", Type: "counter", Value: float64(st.Duplicates)},
			apihttp.Metric{Name: "ctibridge_nats_publish_failures_total", Help: "NATS publishes that failed (retried or dead-lettered).", Type: "counter", Value: float64(st.Failed)},
			apihttp.Metric{Name: "ctibridge_nats_reconnects_total", Help: "Times the NATS sink reconnected.", Type: "counter", Value: float64(st.Reconnects)},
		)
	}
	return ms
}
