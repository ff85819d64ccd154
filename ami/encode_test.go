package ami

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// Every action a real client sent in the captures encodes back to the exact
// bytes sent.
func TestEncodeAction_Captures(t *testing.T) {
	paths, _ := filepath.Glob("amitest/captures/*.sent.ami")
	n := 0
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.SplitAfter(string(raw), "\r\n\r\n") {
			if f == "" {
				continue
			}
			m, err := goami2.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeAction(m)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if string(got) != f {
				t.Fatalf("%s: %q, want %q", p, got, f)
			}
			n++
		}
	}
	if n < 30 {
		t.Fatalf("only %d actions", n)
	}
}

func TestEncodeAction_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		field       string
	}{
		{"Channel", "Local/1@x\r\nAction: Hangup", "Channel"},
		{"Channel", "a\nb", "Channel"},
		{"CallerID", "a\rb", "CallerID"},
		{"Data", "a\x00b", "Data"},
		{"Bad Name", "v", `"Bad Name"`},
		{"Bad:Name", "v", `"Bad:Name"`},
		{"CDR(accountcode)", "v", `"CDR(accountcode)"`},
		{"X\r\nAction", "v", `"X\r\nAction"`},
		{"", "v", "header"},
		{"Variable", strings.Repeat("v", MaxActionLine), "Variable"},
	} {
		a := goami2.NewAction("Originate")
		a.AddField(tc.name, tc.value)
		b, err := EncodeAction(a)
		var e *bridge.Error
		if !errors.As(err, &e) || e.Code != bridge.EINVALID || e.Field != tc.field {
			t.Errorf("%q: %q: %v", tc.name, tc.value, err)
		}
		if b != nil {
			t.Errorf("%q: bytes returned", tc.name)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error carries a line break: %q", err)
		}
	}
	if _, err := EncodeAction(goami2.NewMessage()); bridge.ErrorCode(err) != bridge.EINVALID {
		t.Errorf("no Action: %v", err)
	}
	// What is allowed: underscores, dashes, a value with colons and '=' and
	// parentheses, a line exactly at Asterisk's limit.
	a := goami2.NewAction("Originate")
	a.AddField("Variable", "CDR(accountcode)=acct42")
	a.AddField("X_Custom-Header", "a: b")
	a.AddField("Data", strings.Repeat("d", MaxActionLine-len("Data: \r\n")))
	b, err := EncodeAction(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("Action: Originate\r\nVariable: CDR(accountcode)=acct42\r\nX_Custom-Header: a: b\r\n")) || !bytes.HasSuffix(b, []byte("d\r\n\r\n")) {
		t.Fatalf("%q", b)
	}
}
