package ami

import (
	"context"
	"time"

	"bytes"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
	"io"
	"testing"
)

// BenchmarkReadParse is the baseline: framing and parsing every captured
// frame from memory, no network, no queue.
func BenchmarkReadParse(b *testing.B) {
	var stream []byte
	for _, raw := range captures(b) {
		if bytes.HasPrefix(raw, []byte(bannerPrefix)) {
			raw = raw[bytes.IndexByte(raw, '\n')+1:]
		}
		stream = append(stream, raw...)
	}
	frames := bytes.Count(stream, []byte("\r\n\r\n"))
	run := func(b *testing.B, parse bool) {
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for b.Loop() {
			r := NewReader(bytes.NewReader(stream), 0, 0)
			n := 0
			for {
				f, err := r.ReadFrame()
				if err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				if parse {
					if _, err := Parse(f); err != nil {
						b.Fatal(err)
					}
				}
				n++
			}
			if n != frames {
				b.Fatalf("%d frames, want %d", n, frames)
			}
		}
		b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	}
	b.Run("frame", func(b *testing.B) { run(b, false) })
	b.Run("frame+parse", func(b *testing.B) { run(b, true) })
}

// countSink counts what the Mapper hands the engine.
type countSink struct{ n int }

func (s *countSink) LinkUp(int)                              {}
func (s *countSink) LinkDown(error)                          {}
func (s *countSink) ChannelEvents(evs []bridge.ChannelEvent) { s.n += len(evs) }
func (s *countSink) Snapshot([]bridge.Channel, time.Time)    {}

// BenchmarkMapper is the Mapper's part of the consumer: every captured
// event it reads, parsed beforehand, mapped to ChannelEvents.
func BenchmarkMapper(b *testing.B) {
	m := NewMapper(context.Background(), nil, nil, nil, "CALL_DIRECTION")
	var msgs []*goami2.Message
	for _, raw := range captures(b) {
		if bytes.HasPrefix(raw, []byte(bannerPrefix)) {
			raw = raw[bytes.IndexByte(raw, '\n')+1:]
		}
		r := NewReader(bytes.NewReader(raw), 0, 0)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				break
			}
			if route(m, f) == routeDrop {
				continue
			}
			if msg, err := Parse(f); err == nil {
				msgs = append(msgs, msg)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		sink := &countSink{}
		m := NewMapper(context.Background(), sink, nil, nil, "CALL_DIRECTION")
		for _, msg := range msgs {
			m.Message(msg)
		}
		if sink.n == 0 {
			b.Fatal("no channel events")
		}
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
