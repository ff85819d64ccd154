package ami

import (
	"bytes"
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
