package ami

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/staskobzar/goami2"
)

// captures returns every capture Asterisk sent, by file name.
func captures(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob("amitest/captures/*.ami")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no captures: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		if strings.HasSuffix(p, ".sent.ami") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func readAll(t *testing.T, r *Reader) [][]byte {
	t.Helper()
	var frames [][]byte
	for {
		f, err := r.ReadFrame()
		if err == io.EOF {
			return frames
		} else if err != nil {
			t.Fatalf("after %d frames: %v", len(frames), err)
		}
		frames = append(frames, bytes.Clone(f))
	}
}

// The Reader cuts every capture where a plain split at CRLFCRLF does, even
// when bytes trickle in one at a time.
func TestReader_Captures(t *testing.T) {
	for name, raw := range captures(t) {
		body := raw
		banner := ""
		if bytes.HasPrefix(raw, []byte(bannerPrefix)) {
			i := bytes.IndexByte(raw, '\n')
			banner, body = string(raw[:i-1]), raw[i+1:]
		}
		want := strings.SplitAfter(string(body), "\r\n\r\n")
		want = want[:len(want)-1] // the empty remainder
		for _, slow := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(raw)
			if slow {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, 0, 0)
			if banner != "" {
				got, err := r.ReadBanner()
				if err != nil || got != banner {
					t.Fatalf("%s: banner %q, %v", name, got, err)
				}
			}
			got := readAll(t, r)
			if len(got) != len(want) {
				t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
			}
			for i := range got {
				if string(got[i]) != want[i] {
					t.Fatalf("%s frame %d: %q, want %q", name, i, got[i], want[i])
				}
			}
		}
	}
}

func TestReader_LineEnds(t *testing.T) {
	in := "\r\n\nEvent: A\nX: 1\n\nEvent: B\r\nY: 2\r\n\nEvent: C\n\r\n"
	got := readAll(t, NewReader(strings.NewReader(in), 0, 0))
	want := []string{"Event: A\nX: 1\n\n", "Event: B\r\nY: 2\r\n\n", "Event: C\n\r\n"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("frame %d: %q", i, got[i])
		}
		m, err := Parse(got[i])
		if err != nil || m.Len() != 2 && i < 2 {
			t.Errorf("frame %d: %v %v", i, m, err)
		}
	}
}

func TestReader_EOF(t *testing.T) {
	r := NewReader(strings.NewReader("Event: A\r\n\r\nEvent: B\r\nUniq"), 0, 0)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("torn frame: %v", err)
	}
	if _, err := NewReader(strings.NewReader(""), 0, 0).ReadFrame(); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	if _, err := NewReader(strings.NewReader("SSH-2.0-OpenSSH_9.6\r\n"), 0, 0).ReadBanner(); !errors.Is(err, ErrNotAMI) {
		t.Fatalf("not AMI: %v", err)
	}
}

// endless yields the same bytes for ever.
type endless []byte

func (e endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e)
	}
	return n, nil
}

// A peer that never ends a line or a frame is refused once the limit is
// reached, and the buffer never grows past it.
func TestReader_Limits(t *testing.T) {
	r := NewReader(endless("x"), 1024, 1<<20)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("endless line: %v", err)
	}
	if cap(r.buf) > initialBuf {
		t.Fatalf("buffer grew to %d for a 1 KiB line limit", cap(r.buf))
	}

	r = NewReader(endless("Header: value\r\n"), 0, 256<<10)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("endless frame: %v", err)
	}
	if cap(r.buf) > 256<<10+1 {
		t.Fatalf("buffer grew to %d for a 256 KiB frame limit", cap(r.buf))
	}

	// A line just under the limit passes.
	line := "Data: " + strings.Repeat("y", 1024-6)
	r = NewReader(strings.NewReader("Event: A\r\n"+line+"\r\n\r\n"), 1024, 0)
	if f, err := r.ReadFrame(); err != nil || !bytes.Contains(f, []byte(line+"\r\n")) {
		t.Fatalf("line at the limit: %v", err)
	}
	r = NewReader(strings.NewReader("Event: A\r\n"+line+"y\r\n\r\n"), 1024, 0)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("line over the limit: %v", err)
	}
}

// Command output on Asterisk 13 and older is raw text, empty lines and all,
// up to --END COMMAND--.
func TestReader_ResponseFollows(t *testing.T) {
	in := "Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-1\r\n" +
		"Channel              Location\n\nLocal/100@agents-0001;1  100@agents:1\n1 active channel\n--END COMMAND--\r\n\r\n" +
		"Response: Follows\r\nPrivilege: Command\r\nno newline at the end--END COMMAND--\r\n\r\n" +
		"Event: Next\r\n\r\n"
	got := readAll(t, NewReader(strings.NewReader(in), 0, 0))
	if len(got) != 3 || string(got[2]) != "Event: Next\r\n\r\n" {
		t.Fatalf("frames %q", got)
	}
	m, err := Parse(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Field("Response") != "Follows" || m.Field("ActionID") != "cmd-1" || m.Field("Privilege") != "Command" {
		t.Fatalf("headers %v", m.Headers())
	}
	wantOut := []string{"Channel              Location", "", "Local/100@agents-0001;1  100@agents:1", "1 active channel"}
	if out := m.FieldValues("Output"); !slices.Equal(out, wantOut) {
		t.Fatalf("output %q", out)
	}
	m, _ = Parse(got[1])
	if out := m.FieldValues("Output"); !slices.Equal(out, []string{"no newline at the end"}) {
		t.Fatalf("output %q", out)
	}
}

// However TCP cuts the stream, a frame reads the same: a line of exactly
// the limit passes even when its CR and LF come apart, and a skipped frame
// is named from the same lines.
func TestReader_SameWhateverTheCuts(t *testing.T) {
	at := "Event: A\r\nData: " + strings.Repeat("y", 1024-6) + "\r\n\r\n"
	over := "Event: VarSet\r\nVariable: BIG\r\nValue: " + strings.Repeat("z", 3000) + "\r\n\r\nEvent: Next\r\n\r\n"
	for _, in := range []string{at, over} {
		var want []string
		for i, rd := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			r := NewReader(rd, 1024, 0)
			var got []string
			for {
				f, err := r.ReadFrame()
				var sk *SkippedFrameError
				if errors.As(err, &sk) {
					got = append(got, "skipped "+sk.Event+" "+sk.Variable)
					continue
				}
				if err != nil {
					break
				}
				got = append(got, string(f))
			}
			if i == 0 {
				want = got
			} else if !slices.Equal(got, want) {
				t.Fatalf("one byte at a time %q, whole %q", got, want)
			}
		}
		if in == at && (len(want) != 1 || want[0] != at) {
			t.Fatalf("a line at the limit: %q", want)
		}
		if in == over && (len(want) != 2 || want[0] != "skipped VarSet BIG") {
			t.Fatalf("an oversize VarSet: %q", want)
		}
	}
}

// A "Response: Follows" while no Command waits (ctibridge sends none) is
// a frame like any other: read as Command output it would swallow every
// event after it up to the frame limit.
func TestReader_StrayFollows(t *testing.T) {
	in := "Response: Follows\r\nPrivilege: Command\r\n\r\n" +
		"Event: Newchannel\r\nUniqueid: 1.1\r\n\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n"
	r := NewReader(strings.NewReader(in), 0, 0)
	r.Follows = func() bool { return false }
	got := readAll(t, r)
	if len(got) != 3 || string(got[1]) != "Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n" {
		t.Fatalf("frames %q", got)
	}
}

// Parse agrees with goami2 on every captured frame.
func TestParse_Captures(t *testing.T) {
	n := 0
	for name, raw := range captures(t) {
		r := NewReader(bytes.NewReader(raw), 0, 0)
		if bytes.HasPrefix(raw, []byte(bannerPrefix)) {
			r.ReadBanner()
		}
		for _, f := range readAll(t, r) {
			got, err := Parse(f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want, err := goami2.Parse(string(f))
			if err != nil {
				t.Fatalf("%s: goami2: %v", name, err)
			}
			if !slices.Equal(got.Headers(), want.Headers()) {
				t.Fatalf("%s: %v != %v", name, got.Headers(), want.Headers())
			}
			n++
		}
	}
	if n < 800 {
		t.Fatalf("only %d frames", n)
	}
}

// Frames goami2 refuses are still read when every line is a header.
func TestParse_Tolerant(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []goami2.Header
	}{
		{"Event: UserEvent\r\nVariable(0): a=1\r\nParent/Key: b\r\nX: c\r\nMy_Var: d\r\n\r\n",
			hs("Event", "UserEvent", "Variable(0)", "a=1", "Parent/Key", "b", "X", "c", "My_Var", "d")},
		{"Event: Bare\nName: v\n\n", hs("Event", "Bare", "Name", "v")},
		{"Event: CR\r\nName: a\rb\r\n\r\n", hs("Event", "CR", "Name", "a\rb")},
		{"Event: Colon\r\nRequestType: Action: X\r\nEmpty:\r\n\r\n", hs("Event", "Colon", "RequestType", "Action: X", "Empty", "")},
	} {
		m, err := Parse([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !slices.Equal(m.Headers(), tc.want) {
			t.Errorf("%q: %q", tc.in, m.Headers())
		}
	}
	for _, in := range []string{"", "\r\n\r\n", "Event: X\r\nno colon here\r\n\r\n", "Event: X\r\n: empty name\r\n\r\n", "Event: X\r\n\r\nEvent: Y\r\n\r\n", "A"} {
		if m, err := Parse([]byte(in)); err == nil {
			t.Errorf("%q parsed as %q", in, m.Headers())
		}
	}
	// Inputs that make goami2's scanner index past the end are survived.
	for _, in := range []string{"Ab: x\r", "Ab: x\r\n\r", "\r"} {
		Parse([]byte(in))
	}
}

func hs(kv ...string) []goami2.Header {
	var out []goami2.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, goami2.Header{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
