package esl

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// TestWantedHeadersTranslateAlike translates every capture twice, from
// events with all their headers and from events with only the wanted ones
// (what the Client parses): the ChannelEvents must be identical. A header
// the translator starts reading without being added to wantedHeaders
// fails here.
func TestWantedHeadersTranslateAlike(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("esltest", "captures", "*.esl"))
	sip, _ := filepath.Glob(filepath.Join("testdata", "sip", "*.esl"))
	paths = append(paths, sip...)
	if len(paths) < 20 {
		t.Fatalf("only %d captures found", len(paths))
	}
	const dirVar = "cti_direction"
	want := wantedHeaders.with("variable_" + dirVar)
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		full, part := NewTranslator(dirVar), NewTranslator(dirVar)
		var a, b []bridge.ChannelEvent
		var fulls, parts []*Event
		br := bufio.NewReader(bytes.NewReader(raw))
		for {
			f, err := ReadFrame(br, 0)
			if err == io.EOF || err != nil && strings.HasSuffix(path, "-pre.esl") {
				break // the killed switch's capture ends mid-frame
			} else if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var e1, e2 *Event
			var err1, err2 error
			switch f.ContentType() {
			case typeEventPlain:
				e1, err1 = ParsePlain(f.Body)
				e2, err2 = parsePlainWanted(f.Body, want)
			case typeEventJSON:
				e1, err1 = ParseJSON(f.Body)
				e2, err2 = parseJSONWanted(f.Body, want)
			default:
				continue
			}
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%s: full parse %v, wanted parse %v", path, err1, err2)
			}
			if err1 != nil {
				continue
			}
			if e1.Body != e2.Body {
				t.Fatalf("%s: bodies differ: %q, %q", path, e1.Body, e2.Body)
			}
			for k, v := range e2.Headers {
				if e1.Headers[k] != v {
					t.Fatalf("%s: %s is %q, want %q", path, k, v, e1.Headers[k])
				}
			}
			fulls, parts = append(fulls, e1), append(parts, e2)
		}
		for i := range fulls {
			a = append(a, full.Translate(fulls[i])...)
			b = append(b, part.Translate(parts[i])...)
		}
		if len(a) == 0 {
			continue
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: translations differ:\n%s", path, diffLines(DescribeAll(b), DescribeAll(a)))
		}
	}
}

// TestParsePlainWantedMalformed: the wanted parse refuses what ParsePlain
// refuses, whether or not the bad part is a wanted header.
func TestParsePlainWantedMalformed(t *testing.T) {
	for _, body := range []string{
		"Event-Name: X\nno colon here\n\n",
		"Event-Sequence: 4\n\n",
		"Event-Name: BACKGROUND_JOB\nContent-Length: 99\n\nshort",
		"Event-Name: BACKGROUND_JOB\nContent-Length: -1\n\n",
	} {
		if _, err := ParsePlain([]byte(body)); err == nil {
			t.Fatalf("ParsePlain took %q", body)
		}
		if _, err := parsePlainWanted([]byte(body), wantedHeaders); err == nil {
			t.Fatalf("parsePlainWanted took %q", body)
		}
	}
	e, err := parsePlainWanted([]byte("Event-Name: CHANNEL_CREATE\nvariable_foo: x\nChannel-Name: sofia%2Finternal%2F1000\n\n"), wantedHeaders)
	if err != nil || e.Get("Channel-Name") != "sofia/internal/1000" || len(e.Headers) != 2 {
		t.Fatalf("%v %v", e, err)
	}
}
