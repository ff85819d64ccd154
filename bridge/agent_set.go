package bridge

import (
	"encoding/json"
	"slices"
)

// agentSet is a small set of agent extensions (a call's agents popped in
// the current ring round: one or a few). A slice, where a Go map cost ~250
// bytes a call; stored as the JSON object {"100": true} the map was.
type agentSet []string

func (s agentSet) has(agent string) bool { return slices.Contains(s, agent) }

func (s *agentSet) add(agent string) {
	if !s.has(agent) {
		*s = append(*s, agent)
	}
}

func (s *agentSet) remove(agent string) {
	*s = slices.DeleteFunc(*s, func(a string) bool { return a == agent })
}

// MarshalJSON writes the object a map[string]bool gave, keys sorted.
func (s agentSet) MarshalJSON() ([]byte, error) {
	m := make(map[string]bool, len(s))
	for _, a := range s {
		m[a] = true
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads that object (null: none); a key set false is not in
// the set, as it was not for the map's readers.
func (s *agentSet) UnmarshalJSON(b []byte) error {
	var m map[string]bool
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(agentSet, 0, len(m))
	for a, in := range m {
		if in {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	*s = out
	return nil
}
