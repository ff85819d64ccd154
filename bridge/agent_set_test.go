package bridge

import (
	"encoding/json"
	"testing"
)

// agentSet is stored as the JSON object the map was: a state written
// before reads back, and what it writes is what the map wrote.
func TestAgentSetJSONAsTheMap(t *testing.T) {
	for _, m := range []map[string]bool{{}, {"100": true}, {"101": true, "100": true, customerPop: true}} {
		old, err := json.Marshal(struct {
			Rang map[string]bool `json:"rang"`
		}{m})
		if err != nil {
			t.Fatal(err)
		}
		var c conversation
		if err := json.Unmarshal(old, &c); err != nil {
			t.Fatalf("%s: %v", old, err)
		}
		for a := range m {
			if !c.Rang.has(a) {
				t.Fatalf("%s: %q not read", old, a)
			}
		}
		if len(c.Rang) != len(m) {
			t.Fatalf("%s: %d read, want %d", old, len(c.Rang), len(m))
		}
		again, err := json.Marshal(struct {
			Rang agentSet `json:"rang"`
		}{c.Rang})
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(old) {
			t.Fatalf("written %s, the map wrote %s", again, old)
		}
	}
	var none agentSet // a call's set after a transfer's ring round (c.Rang = nil)
	if b, _ := json.Marshal(none); string(b) != "{}" {
		t.Fatalf("no agents written as %s, want {}", b)
	}
	var c conversation
	if err := json.Unmarshal([]byte(`{"rang":{"100":false,"101":true}}`), &c); err != nil || c.Rang.has("100") || !c.Rang.has("101") {
		t.Fatalf("a false key: %v %v", c.Rang, err)
	}
	if err := json.Unmarshal([]byte(`{"rang":null}`), &c); err != nil || len(c.Rang) != 0 {
		t.Fatalf("null: %v %v", c.Rang, err)
	}
	c.Rang.add("100") // a set read as null takes adds (a nil map would panic)
	if !c.Rang.has("100") {
		t.Fatal("add after null")
	}
}

func TestAgentSetAddRemove(t *testing.T) {
	var s agentSet
	s.add("100")
	s.add("101")
	s.add("100")
	s.remove("100")
	s.remove("102")
	if s.has("100") || !s.has("101") || len(s) != 1 {
		t.Fatalf("set %v", s)
	}
}
