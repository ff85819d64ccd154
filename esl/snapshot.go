package esl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// showRows is the reply of "show channels as json" and "show calls as
// json": {"row_count":N,"rows":[{...}]}, or {"row_count": 0} with no rows.
type showRows struct {
	RowCount *int             `json:"row_count"`
	Rows     []map[string]any `json:"rows"`
}

func parseRows(body string) ([]map[string]string, error) {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "-ERR") || strings.HasPrefix(body, "-USAGE") {
		return nil, fmt.Errorf("esl: %s", truncate(body, 80))
	}
	var r showRows
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("esl: show reply: %w", err)
	}
	// FreeSWITCH counts the rows it lists ({"row_count": 0} when none): a
	// list that says otherwise, or has a null row, would release live
	// calls as ended.
	if r.RowCount == nil || *r.RowCount != len(r.Rows) {
		return nil, fmt.Errorf("esl: show reply: row_count %s but %d rows: not trusted", rowCount(r.RowCount), len(r.Rows))
	}
	rows := make([]map[string]string, 0, len(r.Rows))
	for i, raw := range r.Rows {
		if raw == nil {
			return nil, fmt.Errorf("esl: show reply: row %d is null: not trusted", i)
		}
		row := make(map[string]string, len(raw))
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				row[k] = v
			case nil:
			default:
				row[k] = fmt.Sprint(v)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func rowCount(n *int) string {
	if n == nil {
		return "missing"
	}
	return strconv.Itoa(*n)
}

// SnapshotChannels builds the live channel list from the bodies of "show
// channels as json" and, optionally, "show calls as json" (which pairs
// bridged legs and so fills in linked ids show channels leaves empty).
func SnapshotChannels(channelsJSON, callsJSON string) ([]bridge.Channel, error) {
	rows, err := parseRows(channelsJSON)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]map[string]string, len(rows))
	for _, r := range rows {
		byName[r["name"]] = r
	}
	// A bridged b-leg belongs to its a-leg's call.
	bLinked, aLeg, paired := map[string]string{}, map[string]string{}, map[string]string{}
	pairedAt := map[string]time.Time{}
	if callsJSON != "" {
		if calls, err := parseRows(callsJSON); err == nil {
			for _, c := range calls {
				if b := c["b_uuid"]; b != "" {
					bLinked[b] = firstNonEmpty(c["call_uuid"], c["uuid"])
					aLeg[b] = c["uuid"]
					paired[b], paired[c["uuid"]] = c["uuid"], b
					if s, err := strconv.ParseInt(c["call_created_epoch"], 10, 64); err == nil && s > 0 {
						pairedAt[b], pairedAt[c["uuid"]] = time.Unix(s, 0), time.Unix(s, 0)
					}
				}
			}
		}
	}
	live := make([]bridge.Channel, 0, len(rows))
	for _, r := range rows {
		ch := bridge.Channel{
			ID:            r["uuid"],
			Name:          r["name"],
			LinkedID:      r["call_uuid"],
			CallerNum:     r["cid_num"],
			CallerName:    r["cid_name"],
			ConnectedNum:  firstNonEmpty(r["callee_num"], r["dest"]),
			ConnectedName: r["callee_name"],
			Context:       r["context"],
			Exten:         r["dest"],
			State:         snapshotState(r),
			Direction:     r["direction"],
		}
		if ch.ID == "" {
			continue
		}
		switch r["callstate"] {
		case "HELD":
			ch.Listing().Hold = bridge.HoldOn
		case "ACTIVE", "UNHELD":
			ch.Listing().Hold = bridge.HoldOff
		}
		waitingIn(&ch, r["application"], r["application_data"])
		ch.Endpoint = snapshotEndpoint(r)
		named(&ch)
		if c := contactUser(ch.Name); ch.Endpoint != "" && c != ch.Endpoint {
			for _, n := range []*string{&ch.CallerNum, &ch.ConnectedNum, &ch.Exten} {
				if *n == c {
					*n = ch.Endpoint
				}
			}
		}
		// The loopback -a leg shows originate's placeholder as its caller id
		// once answered; the initial one is the real caller.
		if ch.CallerName == placeholderName {
			ch.CallerNum, ch.CallerName = r["initial_cid_num"], r["initial_cid_name"]
		}
		if ch.ConnectedName == placeholderName {
			ch.ConnectedNum, ch.ConnectedName = r["dest"], ""
		}
		if p := paired[ch.ID]; p != ch.ID {
			ch.Listing().BridgedWith, ch.Listing().BridgedAt = p, pairedAt[ch.ID]
		}
		if a := aLeg[ch.ID]; a != "" && a != ch.ID && ch.Direction == "outbound" {
			ch.Listing().DialledBy = a // the a-leg originated it (bridge, att_xfer, originate)
		}
		if v := bLinked[ch.ID]; v != "" && (ch.LinkedID == "" || ch.LinkedID == ch.ID) {
			ch.LinkedID = v
		}
		if ch.LinkedID == "" {
			// A loopback -b leg has no call uuid: its -a half knows the call.
			if p := byName[loopbackPartner(ch.Name)]; p != nil {
				ch.LinkedID = p["call_uuid"]
			}
		}
		if ch.LinkedID == "" {
			ch.LinkedID = ch.ID
		}
		if s, err := strconv.ParseInt(r["created_epoch"], 10, 64); err == nil && s > 0 {
			ch.Listing().CreatedAt = time.Unix(s, 0)
		}
		live = append(live, ch)
	}
	linkQueueOffers(live)
	linkDialled(live, rows)
	return live, nil
}

// waitingIn reads where a row's application keeps its channel: a queue
// (callcenter, a fifo's caller), a parking slot, a conference room.
func waitingIn(ch *bridge.Channel, app, data string) {
	f := strings.Fields(data)
	switch {
	case app == "callcenter":
		ch.Listing().Queue = data
	case app == "fifo" && len(f) >= 2 && f[1] == "in":
		ch.Listing().Queue = f[0] // a caller pushed into the fifo; a consumer runs "out"
	case app == "valet_park" && len(f) == 2 && f[1] != "ask" && f[1] != "auto":
		// valet_park <lot> <slot>: a slot of its own, not the lot's "ask"
		// or "auto" choices, which wait for the caller's digits.
		ch.Listing().ParkLot, ch.Listing().ParkSlot = f[0], f[1]
	case app == "conference":
		ch.Listing().Conference = data
	}
}

// linkDialled names the dialler of a directory user's leg show calls
// pairs with nobody (still ringing): the one row whose bridge or att_xfer
// application dials that user (user/1001@domain), as a consultation's agent
// does.
func linkDialled(live []bridge.Channel, rows []map[string]string) {
	apps := map[string]string{}
	for _, r := range rows {
		if a := r["application"]; a == "bridge" || a == "att_xfer" {
			apps[r["uuid"]] = r["application_data"]
		}
	}
	for i := range live {
		ch := &live[i]
		if ch.List().DialledBy != "" || ch.Endpoint == "" || ch.Direction != "outbound" {
			continue
		}
		by := ""
		for id, data := range apps {
			if id == ch.ID || !strings.Contains(data, "user/"+ch.Endpoint+"@") {
				continue
			}
			if by != "" {
				by = ""
				break
			}
			by = id
		}
		if by != "" {
			ch.Listing().DialledBy = by
		}
	}
}

// linkQueueOffers ties the legs mod_callcenter is ringing to the caller
// they are offered: neither list links them (an agent leg's call uuid is
// its own, show calls pairs nothing before a bridge), but an offer
// presents the member's caller id. Only a single waiting caller with that
// number is taken; otherwise the leg stays on its own until its events
// (cc_member_session_uuid) tell.
func linkQueueOffers(live []bridge.Channel) {
	for i := range live {
		ch := &live[i]
		if ch.Direction != "outbound" || ch.LinkedID != ch.ID || ch.State != "Ringing" || ch.CallerNum == "" {
			continue
		}
		match := ""
		for _, c := range live {
			if c.List().Queue == "" || c.CallerNum != ch.CallerNum {
				continue
			}
			if match != "" {
				match = ""
				break
			}
			match = c.ID
		}
		if match != "" {
			ch.LinkedID = match
		}
	}
}

// snapshotEndpoint names the directory user of a device's leg in a show
// channels row, where the events' dialed_user is not listed: the user/
// endpoint sets a leg's presence_id to dialed_user@domain. It counts only
// on a leg the switch called (a caller chooses its own presence) whose
// registered contact belongs to that user (1000, or baresip's 1000-0x...).
func snapshotEndpoint(r map[string]string) string {
	if r["direction"] != "outbound" {
		return ""
	}
	user, _, _ := strings.Cut(r["presence_id"], "@")
	c := contactUser(r["name"])
	if user == "" || c == "" || (c != user && !strings.HasPrefix(c, user+"-")) {
		return ""
	}
	return user
}

func loopbackPartner(name string) string {
	if !strings.HasPrefix(name, "loopback/") {
		return ""
	}
	if s, ok := strings.CutSuffix(name, "-a"); ok {
		return s + "-b"
	}
	if s, ok := strings.CutSuffix(name, "-b"); ok {
		return s + "-a"
	}
	return ""
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// snapshotState is a row's channel state. RING_WAIT is the dialler's
// callstate while what it originated rings: an inbound caller still
// waiting (Asterisk's "Ring"), or an outbound leg already up that runs an
// originate of its own (an agent's att_xfer consultation).
func snapshotState(r map[string]string) string {
	if r["callstate"] == "RING_WAIT" {
		if r["direction"] == "outbound" {
			return "Up"
		}
		return "Ring"
	}
	return callState("", r["callstate"])
}
