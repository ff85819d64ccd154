package amitest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/staskobzar/goami2"
)

// snapshotFields are the channel headers Asterisk puts in every channel
// event, in its order. Prefixed (Dest..., LocalOne...) they describe another
// channel of the same event.
var snapshotFields = []string{
	"Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
	"ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode",
	"Context", "Exten", "Priority", "Uniqueid", "Linkedid",
}

var bridgeFields = []string{
	"BridgeUniqueid", "BridgeType", "BridgeTechnology", "BridgeCreator",
	"BridgeName", "BridgeNumChannels", "BridgeVideoSourceMode",
}

// LiveChannel is a channel the simulator has announced with Newchannel and
// not yet hung up.
type LiveChannel struct {
	Name            string
	Uniqueid        string
	Linkedid        string
	State           string // ChannelStateDesc
	Application     string
	ApplicationData string
	BridgeID        string
}

type channel struct {
	f         map[string]string // latest snapshot
	app, data string
	bridge    string
	created   time.Time
	seq       int
}

type bridgeRec struct {
	f   map[string]string
	seq int
}

// table is the state Play builds from the events it sends, so that list
// actions answer with what a real Asterisk would list at that moment.
type table struct {
	chans   map[string]*channel
	bridges map[string]*bridgeRec
	seq     int
	// members are the queue members the played events described, by
	// queue and interface, as their latest QueueMember* event had them.
	members map[[2]string]map[string]string
	mseq    map[[2]string]int
}

func newTable() *table {
	return &table{chans: map[string]*channel{}, bridges: map[string]*bridgeRec{},
		members: map[[2]string]map[string]string{}, mseq: map[[2]string]int{}}
}

// queueMember is one member for QueueStatus, in the first-seen order.
type queueMember struct {
	f   map[string]string
	seq int
}

// queueMembers returns the members of queue ("" for all), oldest first.
func (t *table) queueMembers(queue string) []queueMember {
	var out []queueMember
	for k, f := range t.members {
		if queue == "" || k[0] == queue {
			out = append(out, queueMember{f: f, seq: t.mseq[k]})
		}
	}
	slices.SortFunc(out, func(a, b queueMember) int { return a.seq - b.seq })
	return out
}

// apply updates the table from one event.
func (t *table) apply(m *goami2.Message, now time.Time) {
	h := make(map[string]string, m.Len())
	for _, hd := range m.Headers() {
		if _, dup := h[hd.Name]; !dup {
			h[hd.Name] = hd.Value
		}
	}
	ev := h["Event"]
	switch ev {
	case "QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMemberPenalty", "QueueMemberRinginuse":
		k := [2]string{h["Queue"], h["Interface"]}
		if _, ok := t.mseq[k]; !ok {
			t.seq++
			t.mseq[k] = t.seq
		}
		t.members[k] = h
		return
	case "QueueMemberRemoved":
		k := [2]string{h["Queue"], h["Interface"]}
		delete(t.members, k)
		delete(t.mseq, k)
		return
	}
	if ev == "Newchannel" && h["Uniqueid"] != "" {
		t.seq++
		t.chans[h["Uniqueid"]] = &channel{f: map[string]string{}, created: now, seq: t.seq}
	}
	if ev == "OriginateResponse" {
		// Not a snapshot: its Context/Exten are the originate's target. It
		// does tell which application the outgoing leg runs once answered,
		// which CoreShowChannel then shows.
		if ch := t.chans[h["Uniqueid"]]; ch != nil && h["Application"] != "" {
			ch.app, ch.data = h["Application"], h["Data"]
		}
		return
	}
	// Every channel snapshot in the event, plain or prefixed, is the latest
	// word on that channel.
	for name, id := range h {
		prefix, ok := strings.CutSuffix(name, "Uniqueid")
		if !ok || prefix == "Bridge" {
			continue
		}
		if ch := t.chans[id]; ch != nil {
			for _, f := range snapshotFields {
				if v, ok := h[prefix+f]; ok {
					ch.f[f] = v
				}
			}
		}
	}
	ch := t.chans[h["Uniqueid"]]
	bid := h["BridgeUniqueid"]
	switch ev {
	case "Newexten":
		if ch != nil {
			ch.app, ch.data = h["Application"], h["AppData"]
		}
	case "Hangup":
		delete(t.chans, h["Uniqueid"])
	case "BridgeCreate":
		t.seq++
		t.bridges[bid] = &bridgeRec{f: map[string]string{}, seq: t.seq}
	case "BridgeEnter":
		if ch != nil {
			ch.bridge = bid
		}
	case "BridgeLeave":
		if ch != nil && ch.bridge == bid {
			ch.bridge = ""
		}
	case "BridgeDestroy":
		delete(t.bridges, bid)
	}
	if b := t.bridges[bid]; b != nil {
		for _, f := range bridgeFields {
			if v, ok := h[f]; ok {
				b.f[f] = v
			}
		}
	}
}

func (t *table) channels() []*channel {
	out := make([]*channel, 0, len(t.chans))
	for _, c := range t.chans {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *channel) int { return a.seq - b.seq })
	return out
}

func (t *table) bridgeList() []*bridgeRec {
	out := make([]*bridgeRec, 0, len(t.bridges))
	for _, b := range t.bridges {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *bridgeRec) int { return a.seq - b.seq })
	return out
}

func (c *channel) live() LiveChannel {
	return LiveChannel{
		Name: c.f["Channel"], Uniqueid: c.f["Uniqueid"], Linkedid: c.f["Linkedid"],
		State: c.f["ChannelStateDesc"], Application: c.app, ApplicationData: c.data,
		BridgeID: c.bridge,
	}
}

// value gives a channel's value for a header of CoreShowChannel or Status.
func (c *channel) value(now time.Time) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := c.f[name]; ok {
			return v, true
		}
		age := now.Sub(c.created)
		switch name {
		case "Application":
			return c.app, true
		case "ApplicationData", "Data":
			return c.data, true
		case "BridgeId", "BridgeID":
			return c.bridge, true
		case "Duration":
			s := int(age.Seconds())
			return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60), true
		case "Seconds":
			return fmt.Sprint(int(age.Seconds())), true
		case "Type":
			tech, _, _ := strings.Cut(c.f["Channel"], "/")
			return tech, true
		case "EffectiveConnectedLineNum":
			return c.f["ConnectedLineNum"], true
		case "EffectiveConnectedLineName":
			return c.f["ConnectedLineName"], true
		}
		return "", false
	}
}

// renderLike writes a frame with exactly the header names and order of a
// captured one: values come from value, or stay as captured when it has
// none. ActionID takes the client's (and is left out without one, as
// Asterisk does).
func renderLike(tmpl Frame, actionID string, value func(string) (string, bool)) []byte {
	var b bytes.Buffer
	for line := range bytes.SplitSeq(bytes.TrimSuffix(tmpl.Raw, []byte("\r\n\r\n")), []byte("\r\n")) {
		name, _, _ := bytes.Cut(line, []byte(": "))
		switch n := string(name); {
		case n == "ActionID":
			if actionID == "" {
				continue
			}
			fmt.Fprintf(&b, "ActionID: %s\r\n", actionID)
		case n == "Event":
			b.Write(line)
			b.WriteString("\r\n")
		default:
			if v, ok := value(n); ok {
				fmt.Fprintf(&b, "%s: %s\r\n", n, v)
			} else {
				b.Write(line)
				b.WriteString("\r\n")
			}
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// setHeader replaces the value of every line of a header; a value of "" for
// ActionID removes the line.
func setHeader(raw []byte, name, value string) []byte {
	var b bytes.Buffer
	b.Grow(len(raw) + len(value))
	prefix := []byte(name + ": ")
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("\r\n"))
		line, rest := raw, []byte(nil)
		if i >= 0 {
			line, rest = raw[:i+2], raw[i+2:]
		}
		if bytes.HasPrefix(line, prefix) {
			if value != "" || name != "ActionID" {
				b.Write(prefix)
				b.WriteString(value)
				b.WriteString("\r\n")
			}
		} else {
			b.Write(line)
		}
		raw = rest
	}
	return b.Bytes()
}

func setActionID(raw []byte, id string) []byte { return setHeader(raw, "ActionID", id) }
