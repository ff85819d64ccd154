package ami

import (
	"context"
	"log/slog"

	"github.com/ctibridge/ctibridge/bridge"
)

// Link is the Asterisk adapter as the bridge runs it: a Client whose frames
// a Mapper translates for the sink, the Mapper resyncing through the same
// Client. It is what esl.New is for FreeSWITCH.
type Link struct {
	*Client
	mapper *Mapper
}

// New returns the adapter for cfg, feeding sink. vars lists channel
// variables to pass on beyond the ones the model reads (the direction
// variable).
func New(cfg Config, sink bridge.Sink, vars ...string) *Link {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := NewMapper(context.Background(), sink, nil, log, vars...)
	c := NewClient(cfg, m)
	m.sender = c
	return &Link{Client: c, mapper: m}
}

// Run runs the Client until ctx ends; the resyncs it starts end with ctx.
func (l *Link) Run(ctx context.Context) error {
	l.mapper.ctx = ctx // before the Client can call the Mapper
	return l.Client.Run(ctx)
}

// Resync asks Asterisk for its live channels and queue members again
// (bridge.Resyncer).
func (l *Link) Resync() { l.mapper.Resync() }
