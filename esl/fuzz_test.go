package esl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/esl/esltest"
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
		// The session's reader, events' bodies in one reused buffer, reads
		// the same frames.
		reused := bufio.NewReaderSize(bytes.NewReader(in), readerSize)
		var scratch []byte
		read := 0
		for {
			fr, err := ReadFrame(br, limit)
			gr, gerr := readFrame(reused, limit, &scratch)
			if (err == nil) != (gerr == nil) || (err == nil && !reflect.DeepEqual(fr, gr)) {
				t.Fatalf("frame %d: ReadFrame %v, %v; with a reused body %v, %v", read, fr, err, gr, gerr)
			}
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
		// The client's parser keeps exactly the wanted headers of it.
		w, err := parsePlainWanted(in, wantedHeaders)
		if err != nil {
			t.Fatalf("ParsePlain took it, parsePlainWanted: %v", err)
		}
		for k, v := range e.Headers {
			if _, ok := wantedHeaders.names[k]; ok && w.Headers[k] != v {
				t.Fatalf("%s: %q, kept %q", k, v, w.Headers[k])
			}
		}
		for k := range w.Headers {
			if _, ok := wantedHeaders.names[k]; !ok {
				t.Fatalf("kept %s, not wanted", k)
			}
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

// cmdLines is a Runner that keeps the command lines a Commander hands over.
type cmdLines struct{ sent []string }

func (l *cmdLines) Connected() bool { return true }
func (l *cmdLines) API(_ context.Context, cmd string) (string, error) {
	l.sent = append(l.sent, cmd)
	return "+OK", nil
}
func (l *cmdLines) BgAPIJob(_ context.Context, cmd, _ string) error {
	l.sent = append(l.sent, cmd)
	return nil
}

// FuzzOriginate: a click-to-call is refused naming a field, or FreeSWITCH
// reads the originate line as we meant it (esltest.CheckOriginate): one
// leg, user/<agent>, exactly our variables with their values, and the
// number, XML and the context as the other arguments.
func FuzzOriginate(f *testing.F) {
	f.Add("1000", "5551234", `"Sales Desk" <+15550100>`, "crm_a", "1", "crm_b", "x y")
	f.Add("1000", "5551234", `"x:_:[api_on_originate=system id]loopback/1/default|" <1>`, "crm_ticket",
		"x:_:[api_on_originate=system touch pwned]loopback/9196/default|", "process_cdr", "false")
	f.Add("1000", "5551234", "", "crm_a", "a,origination_uuid=x", "crm_b", "^^:a:b")
	f.Add("1000", "5551234", `"Иван Петров" <100>`, "crm_a", "'q' ${x} <y> {z} [w]", "crm_A", "1")
	f.Fuzz(func(t *testing.T, agent, to, callerID, k1, v1, k2, v2 string) {
		l := &cmdLines{}
		cmd := NewCommander(l, CommanderOptions{})
		vars := map[string]string{k1: v1, k2: v2}
		o := &bridge.Originate{ActionID: "7cfe2f47-56aa-4987-a393-6d881cc2af22", AgentChannelID: "89b15daf-718f-47e7-bd6f-c3e16c05a48f",
			Agent: agent, To: to, CallerID: callerID, Variables: vars}
		if err := cmd.Originate(context.Background(), o); err != nil {
			var be *bridge.Error
			if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field == "" || len(l.sent) > 0 {
				t.Fatalf("refusal %#v, sent %q", err, l.sent)
			}
			return
		}
		want := esltest.Vars("origination_uuid", o.AgentChannelID, "originate_timeout", "30")
		if callerID != "" {
			cid, _ := bridge.ParseCallerID("caller_id", callerID)
			want = append(want, esltest.Var{Name: "origination_caller_id_number", Value: cid.Number})
			if cid.Name != "" {
				want = append(want, esltest.Var{Name: "origination_caller_id_name", Value: cid.Name})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			want = append(want, esltest.Var{Name: k, Value: vars[k]})
		}
		if len(l.sent) != 1 {
			t.Fatalf("%d commands", len(l.sent))
		}
		if err := esltest.CheckOriginate(l.sent[0], want, "user/"+agent, to, "XML", "default"); err != nil {
			t.Fatal(err)
		}
	})
}
