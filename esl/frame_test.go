package esl

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var captureNames = []string{"auth-banner", "auth-failure", "basic-call-plain", "basic-call-json", "show-channels",
	"show-channels-control", "blind-transfer", "record", "hold-loopback", "kill", "originate-failure", "callcenter"}

func readCapture(t testing.TB, name, ext string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("esltest", "captures", name+ext))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCaptureFrames reads every capture with ReadFrame and the event
// parsers, counts frames by content type and events by name, and compares
// with the capture's timeline, which was written independently.
func TestCaptureFrames(t *testing.T) {
	for _, name := range captureNames {
		t.Run(name, func(t *testing.T) {
			raw := readCapture(t, name, ".esl")
			got := map[string]int{}
			br := bufio.NewReader(bytes.NewReader(raw))
			for {
				f, err := ReadFrame(br, 0)
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				switch ct := f.ContentType(); ct {
				case typeEventPlain, typeEventJSON:
					parse := ParsePlain
					if ct == typeEventJSON {
						parse = ParseJSON
					}
					e, err := parse(f.Body)
					if err != nil {
						t.Fatalf("%s: %v", ct, err)
					}
					if e.Seq() == 0 || e.Get("Core-UUID") == "" {
						t.Fatalf("%s without sequence or core uuid", e.Name())
					}
					got[e.Get("Event-Name")]++
				default:
					got[ct]++
				}
			}
			want := map[string]int{}
			for _, line := range strings.Split(string(readCapture(t, name, ".timeline.tsv")), "\n")[1:] {
				cols := strings.Split(line, "\t")
				if len(cols) < 5 || cols[1] != "S>C" {
					continue
				}
				if kind, _, _ := strings.Cut(cols[4], " "); kind != "EOF" {
					want[kind]++
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("frames by kind:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		wantErr  error
		wantCT   string
		wantBody string
	}{
		{name: "reply", in: "Content-Type: command/reply\nReply-Text: +OK accepted\n\n", wantCT: typeReply},
		{name: "crlf", in: "Content-Type: api/response\r\nContent-Length: 3\r\n\r\n+OK", wantCT: typeAPIResponse, wantBody: "+OK"},
		{name: "leading blank lines", in: "\n\nContent-Type: auth/request\n\n", wantCT: typeAuthRequest},
		{name: "oversize refused", in: "Content-Length: 1099511627776\nContent-Type: text/event-plain\n\n", wantErr: ErrFrameTooLarge},
		{name: "limit", in: "Content-Length: 11\nContent-Type: text/event-plain\n\n", max: 10, wantErr: ErrFrameTooLarge},
		// An API reply (a big switch's channel list) may be 16 times the
		// limit; an event may not, whichever header comes first.
		{name: "api reply over the event limit", in: "Content-Type: api/response\nContent-Length: 11\n\n" + strings.Repeat("r", 11), max: 10,
			wantCT: typeAPIResponse, wantBody: strings.Repeat("r", 11)},
		{name: "api reply limit", in: "Content-Type: api/response\nContent-Length: 161\n\n", max: 10, wantErr: ErrFrameTooLarge},
		{name: "event with its length first", in: "Content-Type: text/event-plain\nContent-Length: 11\n\n", max: 10, wantErr: ErrFrameTooLarge},
		{name: "no type", in: "Content-Length: 11\n\n", max: 10, wantErr: ErrFrameTooLarge},
		{name: "negative length", in: "Content-Length: -1\n\n", wantErr: ErrMalformedFrame},
		{name: "bad length", in: "Content-Length: x\n\n", wantErr: ErrMalformedFrame},
		{name: "no colon", in: "garbage\n\n", wantErr: ErrMalformedFrame},
		{name: "short body", in: "Content-Length: 10\n\nabc", wantErr: io.ErrUnexpectedEOF},
		{name: "cut envelope", in: "Content-Type: command/reply\nReply-", wantErr: io.ErrUnexpectedEOF},
		{name: "empty", in: "", wantErr: io.EOF},
		{name: "long line", in: "X: " + strings.Repeat("a", readerSize) + "\n\n", wantErr: ErrMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFrame(bufio.NewReaderSize(strings.NewReader(tt.in), readerSize), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if f.ContentType() != tt.wantCT || string(f.Body) != tt.wantBody {
				t.Fatalf("got %q %q", f.ContentType(), f.Body)
			}
		})
	}
}

func TestParsePlain(t *testing.T) {
	body := "Event-Name: BACKGROUND_JOB\nEvent-Sequence: 3384\nJob-Command-Arg: loopback/9999/default%20%26park\n" +
		"Bad-Escape: 100%\nOdd: %zz%4\nContent-Length: 26\n\n-ERR NO_ROUTE_DESTINATION\n"
	e, err := ParsePlain([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Job-Command-Arg": "loopback/9999/default &park", "Bad-Escape": "100%", "Odd": "%zz%4"} {
		if got := e.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if e.Body != "-ERR NO_ROUTE_DESTINATION\n" || e.Seq() != 3384 || e.Name() != "BACKGROUND_JOB" {
		t.Fatalf("body %q seq %d name %q", e.Body, e.Seq(), e.Name())
	}
	for _, bad := range []string{"", "Event-Sequence: 1\n\n", "no colon\n", "Event-Name: X\nContent-Length: 99\n\nshort"} {
		if _, err := ParsePlain([]byte(bad)); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("ParsePlain(%q) err = %v", bad, err)
		}
	}
}

func TestParseJSON(t *testing.T) {
	e, err := ParseJSON([]byte(`{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","Event-Sequence":"7",` +
		`"Dup":"a","Dup":"b","Esc":"a\"b\u00e9","Arr":["x","y"],"Num":12,"_body":"+OK\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Dup": "b", "Esc": "a\"bé", "Arr": "ARRAY::x|:y", "Num": "12"} {
		if got := e.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if e.Name() != "callcenter::info" || e.Body != "+OK\n" || e.Seq() != 7 {
		t.Fatalf("name %q body %q seq %d", e.Name(), e.Body, e.Seq())
	}
	for _, bad := range []string{"", "[]", `{"Event-Sequence":"1"}`, `{"Event-Name":{"x":1}}`} {
		if _, err := ParseJSON([]byte(bad)); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("ParseJSON(%q) err = %v", bad, err)
		}
	}
}

// TestReusedEventBodies reads a whole capture as the session does, every
// event into one reused buffer, and checks that each parsed event still
// holds its own values once the later frames have overwritten the buffer,
// and that a reply's body is never the reused one.
func TestReusedEventBodies(t *testing.T) {
	for _, name := range []string{"basic-call-plain", "basic-call-json", "blind-transfer"} {
		raw := readCapture(t, name, ".esl")
		fresh := bufio.NewReader(bytes.NewReader(raw))
		reused := bufio.NewReader(bytes.NewReader(raw))
		var scratch []byte
		var kept, want []map[string]string
		var replies [][]byte
		for {
			f, err := ReadFrame(fresh, 0)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			g, err := readFrame(reused, 0, &scratch)
			if err != nil {
				t.Fatal(err)
			}
			switch f.ContentType() {
			case typeEventPlain, typeEventJSON:
				we, err1 := parseEvent(f)
				ge, err2 := parseEvent(g)
				if (err1 == nil) != (err2 == nil) {
					t.Fatalf("%s: parse errors differ: %v, %v", name, err1, err2)
				}
				if err1 == nil {
					want, kept = append(want, maps.Clone(we.Headers)), append(kept, ge.Headers)
				}
			default:
				if len(g.Body) > 0 && len(scratch) > 0 && &g.Body[0] == &scratch[:1][0] {
					t.Fatalf("%s: a %s body is the reused buffer", name, f.ContentType())
				}
				replies = append(replies, g.Body)
			}
		}
		if len(kept) < 10 {
			t.Fatalf("%s: only %d events", name, len(kept))
		}
		for i := range kept {
			if !reflect.DeepEqual(kept[i], want[i]) {
				t.Fatalf("%s: event %d changed after later frames were read:\n got %v\nwant %v", name, i, kept[i], want[i])
			}
		}
	}
}

func parseEvent(f *Frame) (*Event, error) {
	if f.ContentType() == typeEventJSON {
		return parseJSONWanted(f.Body, wantedHeaders)
	}
	return parsePlainWanted(f.Body, wantedHeaders)
}
