package esltest

import (
	"bytes"
	"fmt"
	"strconv"
)

// channelKeys is the column order of "show channels as json" in the capture.
var channelKeys = []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
	"ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec", "read_rate",
	"read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id",
	"presence_data", "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid",
	"sent_callee_name", "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr",
	"initial_dest", "initial_dialplan", "initial_context"}

// callKeys is the a-leg part of a "show calls as json" row; the b-leg
// repeats bCallKeys with a "b_" prefix, then call_created_epoch.
var callKeys = []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
	"ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num",
	"callee_direction", "call_uuid", "hostname", "sent_callee_name", "sent_callee_num"}

var bCallKeys = []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
	"ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num",
	"callee_direction", "sent_callee_name", "sent_callee_num"}

// Channel is a row of the simulator's channel table, keyed like the
// columns of "show channels".
type Channel map[string]string

// table is the switch's live channels, kept from the events it plays, the
// way FreeSWITCH keeps its core db.
type table struct {
	order   []string // uuids in creation order
	rows    map[string]Channel
	bridged map[string]string // a-leg uuid -> b-leg uuid
}

func newTable() *table {
	return &table{rows: map[string]Channel{}, bridged: map[string]string{}}
}

func (t *table) apply(e *Event) {
	id := e.Get("Unique-ID")
	if id == "" {
		return
	}
	row := t.rows[id]
	switch e.Get("Event-Name") {
	case "CHANNEL_CREATE":
		if row != nil {
			break
		}
		row = Channel{"uuid": id, "direction": e.Get("Call-Direction"), "created": e.Get("Event-Date-Local"),
			"hostname": e.Get("FreeSWITCH-Hostname"), "dialplan": e.Get("Caller-Dialplan"),
			"read_codec": e.Get("Channel-Read-Codec-Name"), "read_rate": e.Get("Channel-Read-Codec-Rate"),
			"read_bit_rate": e.Get("Channel-Read-Codec-Bit-Rate"), "write_codec": e.Get("Channel-Write-Codec-Name"),
			"write_rate": e.Get("Channel-Write-Codec-Rate"), "write_bit_rate": e.Get("Channel-Write-Codec-Bit-Rate"),
			"initial_cid_name": e.Get("Caller-Caller-ID-Name"), "initial_cid_num": e.Get("Caller-Caller-ID-Number"),
			"initial_ip_addr": e.Get("Caller-Network-Addr"), "initial_dest": e.Get("Caller-Destination-Number"),
			"initial_dialplan": e.Get("Caller-Dialplan"), "initial_context": e.Get("Caller-Context")}
		if us, err := strconv.ParseInt(e.Get("Event-Date-Timestamp"), 10, 64); err == nil {
			row["created_epoch"] = strconv.FormatInt(us/1e6, 10)
		}
		t.rows[id] = row
		t.order = append(t.order, id)
	case "CHANNEL_DESTROY":
		if row != nil {
			delete(t.rows, id)
			delete(t.bridged, id)
			for i, x := range t.order {
				if x == id {
					t.order = append(t.order[:i:i], t.order[i+1:]...)
					break
				}
			}
		}
		return
	case "CHANNEL_BRIDGE":
		if a, b := e.Get("Bridge-A-Unique-ID"), e.Get("Bridge-B-Unique-ID"); a != "" && b != "" {
			t.bridged[a] = b
		}
	case "CHANNEL_UNBRIDGE":
		delete(t.bridged, e.Get("Bridge-A-Unique-ID"))
	case "CHANNEL_EXECUTE":
		if row != nil {
			row["application"], row["application_data"] = e.Get("Application"), e.Get("Application-Data")
		}
	}
	if row == nil {
		return
	}
	set := func(k, v string) {
		if v != "" {
			row[k] = v
		}
	}
	set("name", e.Get("Channel-Name"))
	set("state", e.Get("Channel-State"))
	set("callstate", e.Get("Channel-Call-State"))
	set("cid_name", e.Get("Caller-Caller-ID-Name"))
	set("cid_num", e.Get("Caller-Caller-ID-Number"))
	set("callee_name", e.Get("Caller-Callee-ID-Name"))
	set("callee_num", e.Get("Caller-Callee-ID-Number"))
	set("dest", e.Get("Caller-Destination-Number"))
	set("context", e.Get("Caller-Context"))
	set("call_uuid", e.Get("Channel-Call-UUID"))
	set("ip_addr", e.Get("Caller-Network-Addr"))
}

func (t *table) live() []Channel {
	out := make([]Channel, 0, len(t.order))
	for _, id := range t.order {
		row := Channel{}
		for k, v := range t.rows[id] {
			row[k] = v
		}
		out = append(out, row)
	}
	return out
}

// showChannels renders "show channels as json".
func (t *table) showChannels() string {
	if len(t.order) == 0 {
		return "{\"row_count\": 0}\n"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"row_count":%d,"rows":[`, len(t.order))
	for i, id := range t.order {
		if i > 0 {
			b.WriteByte(',')
		}
		writeRow(&b, t.rows[id], "", channelKeys, true, true)
	}
	b.WriteString("]}")
	return b.String()
}

// showCalls renders "show calls as json" (bridgedOnly: "show
// bridged_calls as json"): a row per channel that is not another's b-leg.
func (t *table) showCalls(bridgedOnly bool) string {
	isB := map[string]bool{}
	for _, b := range t.bridged {
		isB[b] = true
	}
	var rows []string
	for _, id := range t.order {
		if isB[id] || (bridgedOnly && t.bridged[id] == "") {
			continue
		}
		rows = append(rows, id)
	}
	if len(rows) == 0 {
		return "{\"row_count\": 0}\n"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"row_count":%d,"rows":[`, len(rows))
	for i, id := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		writeRow(&b, t.rows[id], "", callKeys, true, false)
		bRow := t.rows[t.bridged[id]]
		if bRow == nil {
			bRow = Channel{}
		}
		b.WriteByte(',')
		writeRow(&b, bRow, "b_", bCallKeys, false, false)
		fmt.Fprintf(&b, `,"call_created_epoch":`)
		writeJSONString(&b, bRow["created_epoch"])
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.String()
}

func writeRow(b *bytes.Buffer, row Channel, prefix string, keys []string, open, closeRow bool) {
	if open {
		b.WriteByte('{')
	}
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, prefix+k)
		b.WriteByte(':')
		writeJSONString(b, row[k])
	}
	if closeRow {
		b.WriteByte('}')
	}
}

func (t *table) count(calls bool) int {
	if !calls {
		return len(t.order)
	}
	isB := 0
	for _, b := range t.bridged {
		if t.rows[b] != nil {
			isB++
		}
	}
	return len(t.order) - isB
}
