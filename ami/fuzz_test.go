package ami

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

func seedCaptures(f *testing.F, whole bool) {
	for _, raw := range captures(f) {
		if whole {
			f.Add(raw, uint16(0))
			continue
		}
		for _, fr := range bytes.SplitAfter(raw, []byte("\r\n\r\n")) {
			f.Add(fr, uint16(0))
		}
	}
	f.Add([]byte("Response: Follows\r\nPrivilege: Command\r\nout\n\n--END COMMAND--\r\n\r\n"), uint16(0))
	f.Add([]byte("Event: A\nB: c\n\n\r\n\r\nEvent: D\r\n"), uint16(3))
}

// FuzzReadFrames: whatever the peer sends, the Reader neither panics nor
// buffers past its limits, and every frame it returns is a terminated slice
// of the input, in order (past the frames it skips).
func FuzzReadFrames(f *testing.F) {
	seedCaptures(f, true)
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		maxLine, maxFrame := 64+int(limit%512), 256+int(limit)
		r := NewReader(bytes.NewReader(data), maxLine, maxFrame)
		rest := data
		if bytes.HasPrefix(data, []byte(bannerPrefix)) {
			if _, err := r.ReadBanner(); err != nil {
				return
			}
		}
		for {
			fr, err := r.ReadFrame()
			if cap(r.buf) > max(initialBuf, maxFrame+1) {
				t.Fatalf("buffer %d over limit %d", cap(r.buf), maxFrame)
			}
			if errors.Is(err, ErrFrameSkipped) {
				continue // the stream goes on after it
			}
			if err != nil {
				if err == io.EOF && r.Buffered() != 0 {
					t.Fatal("EOF with bytes left")
				}
				return
			}
			if len(fr) > maxFrame {
				t.Fatalf("frame of %d bytes, limit %d", len(fr), maxFrame)
			}
			if !bytes.HasSuffix(fr, []byte("\n\n")) && !bytes.HasSuffix(fr, []byte("\n\r\n")) {
				t.Fatalf("unterminated frame %q", fr)
			}
			i := bytes.Index(rest, fr)
			if i < 0 {
				t.Fatalf("frame %q not in the input", fr)
			}
			rest = rest[i+len(fr):]
			Parse(fr) // must not panic
		}
	})
}

// FuzzParse: Parse never panics, and what it accepts survives a round trip
// through the wire format unchanged.
func FuzzParse(f *testing.F) {
	seedCaptures(f, false)
	f.Fuzz(func(t *testing.T, data []byte, _ uint16) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		if m.Len() == 0 {
			t.Fatal("empty message without error")
		}
		var b bytes.Buffer
		for _, h := range m.Headers() {
			b.WriteString(h.Name + ": " + h.Value + "\r\n")
		}
		b.WriteString("\r\n")
		if bytes.HasPrefix(b.Bytes(), []byte("Response: Follows\r\n")) {
			return // Output lines re-read as command output, by design
		}
		m2, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.Bytes(), err)
		}
		if !slices.Equal(m.Headers(), m2.Headers()) {
			t.Fatalf("%q became %q", m.Headers(), m2.Headers())
		}
	})
}

// FuzzEncodeAction: whatever headers an action is given, EncodeAction
// either refuses it naming a header (a bridge.Error) or writes bytes that
// Asterisk's manager reads as exactly that one action: the same headers,
// in order, each value as given (less the blanks the manager skips after
// the colon), nothing more.
func FuzzEncodeAction(f *testing.F) {
	f.Add("Originate", "Channel", "Local/100@from-internal", "Variable", "crm_a=1")
	f.Add("Originate", "Channel", "PJSIP/1\r\nAction: Hangup", "Variable", "a=1,b=2")
	f.Add("Originate", "CallerID", `"A" <1>`, "X: Y", "v")
	f.Add("Hangup", "Channel", " \tx", "Cause", "16\x00")
	f.Add("QueuePause", "Reason", strings.Repeat("r", MaxActionLine), "Variable", "")
	f.Fuzz(func(t *testing.T, action, n1, v1, n2, v2 string) {
		a := goami2.NewAction(action)
		a.AddField(n1, v1)
		a.AddField(n2, v2)
		b, err := EncodeAction(a)
		if err != nil {
			var be *bridge.Error
			if !errors.As(err, &be) || be.Code != bridge.EINVALID || be.Field == "" || strings.ContainsAny(be.Field+be.Message, "\r\n") {
				t.Fatalf("refusal %#v", err)
			}
			if b != nil {
				t.Fatal("bytes with a refusal")
			}
			return
		}
		hs, err := amitest.ParseAction(b)
		if err != nil {
			t.Fatalf("%v: %q", err, b)
		}
		want := []amitest.Header{{Name: "Action", Value: action}, {Name: n1, Value: v1}, {Name: n2, Value: v2}}
		if len(hs) != len(want) {
			t.Fatalf("%d headers read from %q", len(hs), b)
		}
		for i, h := range hs {
			w := want[i]
			if h.Name != w.Name || h.Value != strings.TrimLeft(w.Value, blanks) {
				t.Fatalf("header %d read as %q, written %q: %q", i, h, w, b)
			}
		}
	})
}

// blanks are the bytes the manager skips after a header's colon (below 33).
var blanks = func() string {
	var b []byte
	for c := byte(1); c < 33; c++ {
		b = append(b, c)
	}
	return string(b)
}()
