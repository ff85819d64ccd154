package bridge

import (
	"encoding/json"
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
