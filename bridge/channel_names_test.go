package bridge

import (
	"encoding/json"
	"regexp"
	"testing"
)

// channelNames is stored as the JSON object the map was: a state written
// before reads back, and what it writes is what the map wrote.
func TestChannelNamesJSONAsTheMap(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"1700000000.12": "PJSIP/100-0000001a"},
		{"b-uuid": "loopback/100-b", "a-uuid": "loopback/100-a", "c": ""},
	} {
		old, err := json.Marshal(struct {
			Names map[string]string `json:"names"`
		}{m})
		if err != nil {
			t.Fatal(err)
		}
		var l leg
		if err := json.Unmarshal(old, &l); err != nil {
			t.Fatalf("%s: %v", old, err)
		}
		for id, name := range m {
			if got := l.Names.get(id); got != name {
				t.Fatalf("%s: get(%q) = %q, want %q", old, id, got, name)
			}
		}
		if len(l.Names) != len(m) {
			t.Fatalf("%s: %d names read, want %d", old, len(l.Names), len(m))
		}
		again, err := json.Marshal(struct {
			Names channelNames `json:"names"`
		}{l.Names})
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(old) {
			t.Fatalf("written %s, the map wrote %s", again, old)
		}
	}
	var none channelNames
	if b, _ := json.Marshal(none); string(b) != "{}" {
		t.Fatalf("no names written as %s, want {}", b)
	}
	var l leg
	if err := json.Unmarshal([]byte(`{"names":null}`), &l); err != nil || len(l.Names) != 0 {
		t.Fatalf("null names: %v %v", l.Names, err)
	}
}

func TestChannelNamesSet(t *testing.T) {
	var ns channelNames
	ns.set("a", "one")
	ns.set("b", "two")
	ns.set("a", "uno")
	if ns.get("a") != "uno" || ns.get("b") != "two" || ns.get("c") != "" || len(ns) != 2 {
		t.Fatalf("names %v", ns)
	}
}

// A trunk is recognised by any of a leg's channel names, whichever was
// added first (a restored leg reads them in id order).
func TestLegNameMatchesAny(t *testing.T) {
	trunk := regexp.MustCompile(`^PJSIP/trunk-`)
	for _, names := range [][2]string{{"Local/100@in-0001;2", "PJSIP/trunk-00000002"}, {"PJSIP/trunk-00000002", "Local/100@in-0001;2"}} {
		var l leg
		l.Names.set("1.10", names[0])
		l.Names.set("1.9", names[1])
		if !l.nameMatches(trunk) {
			t.Fatalf("%v: no name matched", names)
		}
	}
	var l leg
	l.Names.set("1.1", "PJSIP/100-00000001")
	if l.nameMatches(trunk) {
		t.Fatal("a phone's channel matched the trunk pattern")
	}
}
