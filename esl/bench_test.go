package esl

import (
	"bufio"
	"bytes"
	"testing"
)

// BenchmarkReadParse frames and parses every capture: the work of reading
// FreeSWITCH's stream, before translation.
func BenchmarkReadParse(b *testing.B) {
	var all []byte
	for _, name := range captureNames {
		all = append(all, readCapture(b, name, ".esl")...)
	}
	b.SetBytes(int64(len(all)))
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		br := bufio.NewReaderSize(bytes.NewReader(all), readerSize)
		for {
			f, err := ReadFrame(br, 0)
			if err != nil {
				break
			}
			switch f.ContentType() {
			case typeEventPlain:
				_, err = ParsePlain(f.Body)
			case typeEventJSON:
				_, err = ParseJSON(f.Body)
			default:
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTranslate translates the subscribed events of basic-call-plain.
func BenchmarkTranslate(b *testing.B) {
	var evs []*Event
	for _, e := range bySeq(captureEvents(b, "basic-call-plain")) {
		switch e.Get("Event-Name") {
		case "CHANNEL_CREATE", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
			"CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT":
			evs = append(evs, e)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tr := NewTranslator("")
		for _, e := range evs {
			tr.Translate(e)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseWanted parses every plain event of the captures keeping
// only the headers the translator reads (what the Client does).
func BenchmarkParseWanted(b *testing.B) {
	var bodies [][]byte
	for _, name := range captureNames {
		br := bufio.NewReaderSize(bytes.NewReader(readCapture(b, name, ".esl")), readerSize)
		for {
			f, err := ReadFrame(br, 0)
			if err != nil {
				break
			}
			if f.ContentType() == typeEventPlain {
				bodies = append(bodies, f.Body)
			}
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, body := range bodies {
			if _, err := parsePlainWanted(body, wantedHeaders); err != nil {
				b.Fatal(err)
			}
		}
		n += len(bodies)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
