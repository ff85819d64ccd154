package esl

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// seedFrames adds every capture, and every event body of them, to a corpus.
func seedBodies(f *testing.F, contentType string) {
	for _, name := range captureNames {
		br := bufio.NewReader(bytes.NewReader(readCapture(f, name, ".esl")))
		for {
			fr, err := ReadFrame(br, 0)
			if err != nil {
				break
			}
			if fr.ContentType() == contentType {
				f.Add(fr.Body)
			}
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, name := range captureNames {
		raw := readCapture(f, name, ".esl")
		f.Add(raw[:min(len(raw), 4<<10)]) // small seeds keep minimisation quick
	}
	f.Add([]byte("Content-Length: -1\n\n"))
	f.Add([]byte("Content-Length: 99999999999999999999\n\n"))
	f.Add([]byte("Content-Type: command/reply\r\nReply-Text: +OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1 << 16
		br := bufio.NewReaderSize(bytes.NewReader(in), readerSize)
		read := 0
		for {
			fr, err := ReadFrame(br, limit)
			if err != nil {
				if err == io.EOF && read > len(in) {
					t.Fatalf("read %d frames from %d bytes", read, len(in))
				}
				return
			}
			read++
			if len(fr.Body) > limit || len(fr.Body) > len(in) {
				t.Fatalf("body of %d bytes from %d", len(fr.Body), len(in))
			}
		}
	})
}

func FuzzParsePlain(f *testing.F) {
	seedBodies(f, typeEventPlain)
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParsePlain(in)
		if err != nil {
			return
		}
		if e.Get("Event-Name") == "" || len(e.Body) > len(in) {
			t.Fatalf("event %v body %d bytes from %d", e.Headers, len(e.Body), len(in))
		}
		// Whatever parses must translate without panicking.
		tr := NewTranslator("x")
		tr.Translate(e)
		tr.Translate(e)
	})
}

func FuzzParseJSON(f *testing.F) {
	seedBodies(f, typeEventJSON)
	f.Add([]byte(`{"Event-Name":"CHANNEL_CREATE","Unique-ID":["a","b"],"x":null,"y":1.5}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseJSON(in)
		if err != nil {
			return
		}
		if e.Get("Event-Name") == "" {
			t.Fatal("no Event-Name")
		}
		tr := NewTranslator("x")
		tr.Translate(e)
		tr.Translate(e)
	})
}
