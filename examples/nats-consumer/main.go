// Command nats-consumer is a starting point for a CRM integration that
// reads the events a fleet of ctibridge sidecars publishes to NATS
// JetStream (README "Fleet"). It keeps one durable pull consumer, handles
// each conversation's events in order, conversations in parallel, acks an
// event only once it is handled, and handles each event id once.
//
//	go run ./examples/nats-consumer -url nats://127.0.0.1:4222 -durable crm-acme -filter 'ctibridge.>'
//
// Replace handle with the CRM's calls.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server URL(s), comma-separated")
	creds := flag.String("creds", "", "credentials file (.creds), if the server needs one")
	stream := flag.String("stream", "CTIBRIDGE", "stream ctibridge publishes to")
	durable := flag.String("durable", "crm", "durable consumer name: one per CRM integration")
	filter := flag.String("filter", "ctibridge.>", "subjects to read, e.g. ctibridge.<tenant>.> for one tenant")
	workers := flag.Int("workers", 16, "conversations handled at once")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *creds, Options{Stream: *stream, Durable: *durable, Filter: *filter, Workers: *workers, Logger: log}, handle(log)); err != nil {
		log.Error("nats-consumer", "err", err)
		os.Exit(1)
	}
}

// run connects (reconnecting forever) and consumes until ctx ends.
func run(ctx context.Context, url, creds string, opts Options, h Handler) error {
	nopts := []nats.Option{nats.Name("ctibridge nats-consumer " + opts.Durable), nats.MaxReconnects(-1)}
	if creds != "" {
		nopts = append(nopts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return NewConsumer(js, h, opts).Run(ctx)
}

// handle is where the CRM's work goes. It must be safe to run again for
// the same event only in the sense that Seen already guards it; keep its
// own side effects keyed by ev.ID where the CRM allows (an external id).
func handle(log *slog.Logger) Handler {
	return func(ctx context.Context, ev Event, raw []byte) error {
		log.Info("event", "id", ev.ID, "type", ev.Type, "conversation", ev.ConversationID, "sequence", ev.Sequence)
		return nil
	}
}
