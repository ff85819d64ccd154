package esl

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// TestSnapshotChannels reads the replies captured during a live bridged
// call: show channels as json, then show calls as json.
func TestSnapshotChannels(t *testing.T) {
	br := bufio.NewReader(bytes.NewReader(readCapture(t, "show-channels", ".esl")))
	var replies []string
	for {
		f, err := ReadFrame(br, 0)
		if err != nil {
			break
		}
		if f.ContentType() == typeAPIResponse {
			replies = append(replies, string(f.Body))
		}
	}
	live, err := SnapshotChannels(replies[0], replies[1])
	if err != nil {
		t.Fatal(err)
	}
	const call = "468471fb-2335-4d59-add8-1bde7e35f20a" // loopback/2100-b, which bridged to 1100
	want := []struct{ name, linked, caller, state, exten string }{
		{"loopback/2100-a", "eabad26a-58c5-45d0-bf46-0375ce1867f0", "5552100", "Up", "2100"},
		{"loopback/2100-b", call, "5552100", "Up", "2100"},
		{"loopback/1100-a", call, "5552100", "Up", "1100"},
		{"loopback/1100-b", call, "5552100", "Up", "1100"}, // no call_uuid: its -a half's
	}
	if len(live) != len(want) {
		t.Fatalf("%d channels", len(live))
	}
	for i, w := range want {
		ch := live[i]
		if ch.Name != w.name || ch.LinkedID != w.linked || ch.CallerNum != w.caller || ch.State != w.state ||
			ch.Exten != w.exten || ch.Context != "default" || ch.List().CreatedAt != time.Unix(1795339244, 0) {
			t.Errorf("#%d: %+v", i, ch)
		}
	}
	// A phone's leg the switch called names its directory user by its
	// presence; a caller's presence or a gateway leg names nobody.
	rows := `{"row_count":3,"rows":[
		{"uuid":"b","direction":"outbound","name":"sofia/internal/1000-0x5591f1b07bf0@127.0.0.1:5261","presence_id":"1000@127.0.0.1","dest":"1000-0x5591f1b07bf0","cid_num":"1010","callstate":"ACTIVE"},
		{"uuid":"a","direction":"inbound","name":"sofia/internal/1010@127.0.0.1","presence_id":"1010@127.0.0.1","dest":"2100","cid_num":"1010"},
		{"uuid":"g","direction":"outbound","name":"sofia/gateway/carrier/5551234","presence_id":"1000@127.0.0.1","dest":"5551234","cid_num":"1000"}]}`
	live, err = SnapshotChannels(rows, "")
	if err != nil || len(live) != 3 {
		t.Fatalf("%v %v", live, err)
	}
	// The others are named by their channel names only (named), never by
	// the presence: the gateway leg is not 1000's.
	if live[0].Endpoint != "1000" || live[0].Exten != "1000" || live[0].CallerNum != "1010" || live[1].Endpoint != "1010" || live[2].Endpoint != "5551234" {
		t.Errorf("endpoints: %+v", live)
	}
	if live, err := SnapshotChannels("{\"row_count\": 0}\n", ""); err != nil || len(live) != 0 {
		t.Fatalf("empty: %v %v", live, err)
	}
	if _, err := SnapshotChannels("-ERR no reply\n", ""); err == nil {
		t.Fatal("an -ERR reply parsed")
	}
}

// TestSnapshotLinksQueueOffers: the legs mod_callcenter rings carry their
// own uuid as call uuid; the caller id they present ties them to the one
// caller waiting with that number, never to one of two.
func TestSnapshotLinksQueueOffers(t *testing.T) {
	row := func(uuid, dir, cid, state, app, data string) string {
		return `{"uuid":"` + uuid + `","direction":"` + dir + `","name":"sofia/internal/` + uuid + `@127.0.0.1","cid_num":"` + cid +
			`","callstate":"` + state + `","application":"` + app + `","application_data":"` + data + `","call_uuid":"` + uuid + `"}`
	}
	body := func(rows ...string) string {
		s := `{"row_count":` + string(rune('0'+len(rows))) + `,"rows":[`
		for i, r := range rows {
			if i > 0 {
				s += ","
			}
			s += r
		}
		return s + "]}"
	}
	one, err := SnapshotChannels(body(
		row("cust", "inbound", "1010", "ACTIVE", "callcenter", "support@default"),
		row("agent", "outbound", "1010", "RINGING", "", ""),
	), "")
	if err != nil {
		t.Fatal(err)
	}
	if one[0].List().Queue != "support@default" || one[1].LinkedID != "cust" {
		t.Fatalf("one caller waiting: %+v", one)
	}
	two, err := SnapshotChannels(body(
		row("cust1", "inbound", "1010", "ACTIVE", "callcenter", "support@default"),
		row("cust2", "inbound", "1010", "ACTIVE", "callcenter", "sales@default"),
		row("agent", "outbound", "1010", "RINGING", "", ""),
	), "")
	if err != nil {
		t.Fatal(err)
	}
	if two[2].LinkedID != "agent" {
		t.Fatalf("two callers with the number: the offer is linked to %q", two[2].LinkedID)
	}
}

// TestSnapshotDialledBy: show calls pairs a bridged outbound b-leg with
// the a-leg that originated it (how an att_xfer's completion is known
// after a reconnect); an inbound b-leg was dialled by nobody there.
func TestSnapshotDialledBy(t *testing.T) {
	chans := `{"row_count":3,"rows":[` +
		`{"uuid":"cust","direction":"inbound","name":"sofia/internal/1010@h","callstate":"ACTIVE","call_uuid":"cust"},` +
		`{"uuid":"agent","direction":"outbound","name":"sofia/internal/1000-0x1@h","callstate":"ACTIVE","call_uuid":"cust"},` +
		`{"uuid":"other","direction":"inbound","name":"sofia/internal/1002@h","callstate":"ACTIVE","call_uuid":"other"}]}`
	calls := `{"row_count":2,"rows":[{"uuid":"cust","call_uuid":"cust","b_uuid":"agent"},{"uuid":"agent","call_uuid":"cust","b_uuid":"other"}]}`
	live, err := SnapshotChannels(chans, calls)
	if err != nil {
		t.Fatal(err)
	}
	if live[0].List().DialledBy != "" || live[1].List().DialledBy != "cust" || live[2].List().DialledBy != "" {
		t.Fatalf("dialled by: %q %q %q", live[0].List().DialledBy, live[1].List().DialledBy, live[2].List().DialledBy)
	}
}

// TestSnapshotRingWaitAndDialler: RING_WAIT is an inbound caller still
// waiting, or an outbound leg up that runs an originate of its own; a
// ringing user's leg no show calls row pairs is dialled by the one row
// whose bridge or att_xfer dials that user.
func TestSnapshotRingWaitAndDialler(t *testing.T) {
	chans := `{"row_count":3,"rows":[` +
		`{"uuid":"cust","direction":"inbound","name":"sofia/internal/1010@h","callstate":"RING_WAIT","application":"bridge","application_data":"user/1000@h","call_uuid":"cust"},` +
		`{"uuid":"agent","direction":"outbound","name":"sofia/internal/1000-0x1@h","presence_id":"1000@h","callstate":"RING_WAIT","application":"att_xfer","application_data":"user/1001@h","call_uuid":"cust"},` +
		`{"uuid":"target","direction":"outbound","name":"sofia/internal/1001-0x2@h","presence_id":"1001@h","callstate":"RINGING","call_uuid":"target"}]}`
	live, err := SnapshotChannels(chans, "")
	if err != nil {
		t.Fatal(err)
	}
	if live[0].State != "Ring" || live[1].State != "Up" || live[2].State != "Ringing" {
		t.Fatalf("states %q %q %q", live[0].State, live[1].State, live[2].State)
	}
	if live[1].List().DialledBy != "cust" || live[2].List().DialledBy != "agent" {
		t.Fatalf("dialled by %q %q", live[1].List().DialledBy, live[2].List().DialledBy)
	}
}

// TestSnapshotConference: a conference member's row names its room.
func TestSnapshotConference(t *testing.T) {
	live, err := SnapshotChannels(`{"row_count":1,"rows":[{"uuid":"a","direction":"inbound","name":"sofia/internal/1010@h","callstate":"ACTIVE","application":"conference","application_data":"support-room@default","call_uuid":"a"}]}`, "")
	if err != nil {
		t.Fatal(err)
	}
	if live[0].List().Conference != "support-room@default" || live[0].List().Queue != "" || live[0].List().ParkSlot != "" {
		t.Fatalf("%+v", live[0])
	}
}

// TestSnapshotFifoAndPairs: a caller pushed into a fifo waits in its
// queue (a consumer's "out" does not); show calls pairs name each other.
func TestSnapshotFifoAndPairs(t *testing.T) {
	chans := `{"row_count":2,"rows":[` +
		`{"uuid":"cust","direction":"inbound","name":"sofia/internal/1010@h","callstate":"ACTIVE","application":"fifo","application_data":"5900@127.0.0.1 in","call_uuid":"cust"},` +
		`{"uuid":"cons","direction":"inbound","name":"sofia/internal/1000@h","callstate":"ACTIVE","application":"fifo","application_data":"5900@127.0.0.1 out wait","call_uuid":"cons"}]}`
	calls := `{"row_count":1,"rows":[{"uuid":"cons","call_uuid":"cons","b_uuid":"cust"}]}`
	live, err := SnapshotChannels(chans, calls)
	if err != nil {
		t.Fatal(err)
	}
	if live[0].List().Queue != "5900@127.0.0.1" || live[1].List().Queue != "" {
		t.Fatalf("queues %q %q", live[0].List().Queue, live[1].List().Queue)
	}
	if live[0].List().BridgedWith != "cons" || live[1].List().BridgedWith != "cust" {
		t.Fatalf("pairs %q %q", live[0].List().BridgedWith, live[1].List().BridgedWith)
	}
}

// A list whose row_count does not match its rows, or with a null row, is
// not taken: applied, it would end live calls. None at all is
// {"row_count": 0}, as FreeSWITCH writes it.
func TestSnapshotRowCountChecked(t *testing.T) {
	for _, body := range []string{`{"row_count":2}`, `{}`, `{"row_count":1,"rows":null}`, `{"row_count":1,"rows":[null]}`,
		`{"row_count":0,"rows":[{"uuid":"a","name":"sofia/internal/100@x"}]}`} {
		if chans, err := SnapshotChannels(body, ""); err == nil {
			t.Errorf("%s: taken as %d channels", body, len(chans))
		}
	}
	if chans, err := SnapshotChannels(`{"row_count": 0}`, ""); err != nil || len(chans) != 0 {
		t.Errorf("no channels: %v %v", chans, err)
	}
}
