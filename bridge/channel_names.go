package bridge

import (
	"encoding/json"
	"slices"
	"strings"
)

// channelNames maps a leg's channel ids to their names. A leg has one
// channel, two for a local pair, rarely more: a short slice, where a Go map
// cost ~400 bytes a leg. It is stored as the JSON object the map was.
type channelNames []channelName

type channelName struct{ ID, Name string }

func (ns channelNames) get(id string) string {
	for _, n := range ns {
		if n.ID == id {
			return n.Name
		}
	}
	return ""
}

func (ns *channelNames) set(id, name string) {
	for i := range *ns {
		if (*ns)[i].ID == id {
			(*ns)[i].Name = name
			return
		}
	}
	*ns = append(*ns, channelName{id, name})
}

// MarshalJSON writes the object a map[string]string gave, keys sorted.
func (ns channelNames) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, len(ns))
	for _, n := range ns {
		m[n.ID] = n.Name
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads that object (null: none), ids in sorted order.
func (ns *channelNames) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(channelNames, 0, len(m))
	for id, name := range m {
		out = append(out, channelName{id, name})
	}
	slices.SortFunc(out, func(a, b channelName) int { return strings.Compare(a.ID, b.ID) })
	*ns = out
	return nil
}
