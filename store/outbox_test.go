package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

func convRec(id string, start time.Time, open bool, caller, agent string, disp bridge.Disposition) bridge.ConversationRecord {
	c := bridge.Call{ID: id, Direction: bridge.DirectionInbound, StartedAt: start, Caller: bridge.Party{Number: caller},
		Callee: bridge.Party{Number: "5000"}, Agent: &bridge.Agent{Extension: agent}, Disposition: disp}
	if !open {
		end := start.Add(time.Minute)
		c.EndedAt, c.State = &end, "ended"
	}
	return bridge.ConversationRecord{Call: c, Open: open, LastSeq: 3, State: []byte(`{"id":"` + id + `"}`), UpdatedAt: start}
}

func TestCommitFillsSeqInOrder(t *testing.T) {
	db, _ := openTest(t)
	var last int64
	for round := range 3 {
		b := &bridge.Batch{}
		for i := range 5 {
			b.Events = append(b.Events, newEvent("c", int64(round*5+i+1), "call.ringing", t0, "crm"))
		}
		commit(t, db, b)
		for _, e := range b.Events {
			if e.Seq <= last {
				t.Fatalf("round %d: seq %d after %d", round, e.Seq, last)
			}
			last = e.Seq
		}
	}
	recs, err := db.ConversationEvents(ctx, "c")
	if err != nil || len(recs) != 15 {
		t.Fatalf("%d events, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Sequence != int64(i+1) || (i > 0 && r.Seq <= recs[i-1].Seq) {
			t.Fatalf("event %d: sequence %d seq %d", i, r.Sequence, r.Seq)
		}
	}
}

func TestCommitIsIdempotentPerEventID(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c1", 1, "call.ringing", t0, "crm"), newEvent("c1", 2, "call.answered", t0, "crm")}}
	commit(t, db, b)
	first := []int64{b.Events[0].Seq, b.Events[1].Seq}

	// The engine retries a batch whose commit looked failed: same ids, plus
	// a new event. The old ones keep their Seq and get no second delivery.
	again := &bridge.Batch{Events: []bridge.PendingEvent{b.Events[0], b.Events[1], newEvent("c1", 3, "call.ended", t0, "crm")}}
	again.Events[0].Seq, again.Events[1].Seq = 0, 0
	again.Events[0].EndpointIDs = []string{"crm", "erp"}
	commit(t, db, again)
	if again.Events[0].Seq != first[0] || again.Events[1].Seq != first[1] || again.Events[2].Seq <= first[1] {
		t.Fatalf("seqs %d %d %d, first %v", again.Events[0].Seq, again.Events[1].Seq, again.Events[2].Seq, first)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 3 {
		t.Fatalf("%d events", n)
	}
	if n, _ := db.Backlog(ctx); n != 3 || count(t, db, `SELECT count(*) FROM deliveries`) != 3 {
		t.Fatalf("backlog %d: a repeated event got deliveries", n)
	}
	ds, err := db.PendingDeliveries(ctx, "crm", 0, 10)
	if err != nil || len(ds) != 3 || string(ds[1].Payload) != string(b.Events[1].Payload) || ds[0].Type != "call.ringing" {
		t.Fatalf("pending = %+v, %v", ds, err)
	}
	// Duplicate endpoint ids in one event make one delivery.
	dup := &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c2", 1, "call.ringing", t0, "crm", "crm")}}
	commit(t, db, dup)
	if n, _ := db.Backlog(ctx); n != 4 {
		t.Fatalf("backlog %d after a duplicate endpoint", n)
	}
}

func TestCommitRejectsBadInput(t *testing.T) {
	db, _ := openTest(t)
	e := newEvent("c", 1, "call.ringing", t0)
	e.ID = ""
	wantCode(t, db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{e}}), bridge.EINVALID, "events[0].id")
	e = newEvent("c", 1, "", t0)
	wantCode(t, db.Commit(ctx, &bridge.Batch{Events: []bridge.PendingEvent{newEvent("c", 1, "call.ringing", t0), e}}), bridge.EINVALID, "events[1].type")
	wantCode(t, db.Commit(ctx, &bridge.Batch{Conversations: []bridge.ConversationRecord{{}}}), bridge.EINVALID, "conversations[0]")
	if n := count(t, db, `SELECT count(*) FROM events`); n != 0 {
		t.Fatalf("a rejected batch left %d events", n)
	}
	if err := db.Commit(ctx, &bridge.Batch{}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

func TestConversationsUpsertAndOpen(t *testing.T) {
	db, _ := openTest(t)
	c := convRec("conv_1", t0, true, "+12025550143", "201", "")
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{c, convRec("conv_2", t0.Add(time.Second), true, "1", "202", "")}})
	open, err := db.OpenConversations(ctx)
	if err != nil || len(open) != 2 || open[0].Call.ID != "conv_1" || string(open[0].State) != `{"id":"conv_1"}` || open[0].LastSeq != 3 {
		t.Fatalf("open = %+v, %v", open, err)
	}
	// The call ends: it leaves the open set, drops its tracker state and
	// keeps the highest sequence seen.
	ended := convRec("conv_1", t0, false, "+12025550143", "201", bridge.DispositionAnswered)
	ended.LastSeq = 2 // a stale writer must not move it back
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{ended}})
	open, _ = db.OpenConversations(ctx)
	if len(open) != 1 || open[0].Call.ID != "conv_2" {
		t.Fatalf("open after end = %+v", open)
	}
	got, err := db.Conversation(ctx, "conv_1")
	if err != nil || got.Open || got.State != nil || got.LastSeq != 3 || got.Call.Disposition != bridge.DispositionAnswered || got.Call.EndedAt == nil {
		t.Fatalf("conversation = %+v, %v", got, err)
	}
	if !got.UpdatedAt.Equal(t0) {
		t.Fatalf("updated_at = %v", got.UpdatedAt)
	}
	_, err = db.Conversation(ctx, "conv_nope")
	wantCode(t, err, bridge.ENOTFOUND, "conv_nope")
	if evs, err := db.ConversationEvents(ctx, "conv_nope"); err != nil || len(evs) != 0 {
		t.Fatalf("events of an unknown call: %v %v", evs, err)
	}
	_, err = db.Event(ctx, "evt_nope")
	wantCode(t, err, bridge.ENOTFOUND, "evt_nope")
}

func TestEventsAfterPagesTheOutbox(t *testing.T) {
	db, _ := openTest(t)
	b := &bridge.Batch{}
	for i := range 7 {
		b.Events = append(b.Events, newEvent("c", int64(i+1), "call.ringing", t0))
	}
	commit(t, db, b)
	var got []int64
	after := int64(0)
	for {
		page, err := db.EventsAfter(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.Sequence)
			after = r.Seq
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("paged %v", got)
	}
}

func historyIDs(t *testing.T, db *DB, f bridge.HistoryFilter) []string {
	t.Helper()
	var ids []string
	pages := 0
	for {
		page, next, err := db.History(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if f.Limit > 0 && len(page) > f.Limit {
			t.Fatalf("page of %d, limit %d", len(page), f.Limit)
		}
		for _, c := range page {
			ids = append(ids, c.Call.ID)
			if c.State != nil {
				t.Fatal("history exposes tracker state")
			}
		}
		if next == "" {
			return ids
		}
		if pages > 100 {
			t.Fatal("cursor does not advance")
		}
		f.Cursor = next
	}
}

func TestHistoryFiltersAndCursorPaging(t *testing.T) {
	db, _ := openTest(t)
	var b bridge.Batch
	// 12 calls; h04..h07 share one start time, so paging must break ties by id.
	for i := range 12 {
		start := t0.Add(time.Duration(i) * time.Minute)
		if i >= 4 && i <= 7 {
			start = t0.Add(4 * time.Minute)
		}
		disp := bridge.DispositionAnswered
		if i%3 == 1 {
			disp = bridge.DispositionNoAnswer
		}
		c := convRec(fmt.Sprintf("h%02d", i), start, false, fmt.Sprintf("555%d", i%2), fmt.Sprint(200+i%3), disp)
		if i%4 == 0 {
			c.Call.Direction = bridge.DirectionOutbound
			c.Call.Caller.Number, c.Call.Callee.Number = "201", "5550" // the customer is the callee
		}
		b.Conversations = append(b.Conversations, c)
	}
	commit(t, db, &b)

	all := "h11,h10,h09,h08,h07,h06,h05,h04,h03,h02,h01,h00"
	for _, limit := range []int{1, 3, 5, 12, 50} {
		if got := strings.Join(historyIDs(t, db, bridge.HistoryFilter{Limit: limit}), ","); got != all {
			t.Fatalf("limit %d: %s", limit, got)
		}
	}
	cases := []struct {
		f    bridge.HistoryFilter
		want string
	}{
		{bridge.HistoryFilter{Number: "5550", Limit: 2}, "h10,h08,h06,h04,h02,h00"}, // caller or callee
		{bridge.HistoryFilter{Number: "5551"}, "h11,h09,h07,h05,h03,h01"},
		{bridge.HistoryFilter{Agent: "201", Limit: 2}, "h10,h07,h04,h01"},
		{bridge.HistoryFilter{Disposition: "no_answer"}, "h10,h07,h04,h01"},
		{bridge.HistoryFilter{Direction: "outbound", Limit: 1}, "h08,h04,h00"},
		{bridge.HistoryFilter{From: t0.Add(4 * time.Minute), To: t0.Add(9 * time.Minute), Limit: 2}, "h08,h07,h06,h05,h04"},
		{bridge.HistoryFilter{Agent: "202", Disposition: "answered", Number: "5551"}, "h11,h05"},
		{bridge.HistoryFilter{Agent: "999"}, ""},
	}
	for _, tc := range cases {
		if got := strings.Join(historyIDs(t, db, tc.f), ","); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
		}
	}

	// A call added after the first page does not shift the next one.
	page1, next, _ := db.History(ctx, bridge.HistoryFilter{Limit: 3})
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{convRec("h99", t0.Add(time.Hour), false, "1", "200", "")}})
	page2, _, _ := db.History(ctx, bridge.HistoryFilter{Limit: 3, Cursor: next})
	if page1[2].Call.ID != "h09" || page2[0].Call.ID != "h08" {
		t.Fatalf("pages %s / %s", page1[2].Call.ID, page2[0].Call.ID)
	}

	bad := []struct {
		f     bridge.HistoryFilter
		field string
	}{
		{bridge.HistoryFilter{Cursor: "garbage!"}, "cursor"},
		{bridge.HistoryFilter{Cursor: encodeCursor(1, "")}, "cursor"},
		{bridge.HistoryFilter{Limit: -1}, "limit"},
		{bridge.HistoryFilter{Limit: bridge.MaxHistoryLimit + 1}, "limit"},
		{bridge.HistoryFilter{Direction: "sideways"}, "direction"},
		{bridge.HistoryFilter{Disposition: "maybe"}, "disposition"},
		{bridge.HistoryFilter{From: t0, To: t0}, "from"},
	}
	for _, tc := range bad {
		_, _, err := db.History(ctx, tc.f)
		wantCode(t, err, bridge.EINVALID, tc.field)
	}
}

// A conversation folded into another before it issued any event is
// deleted, so it is not restored as open at the next start; one with
// events is never deleted.
func TestDiscardedConversation(t *testing.T) {
	db, _ := openTest(t)
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{
		convRec("conv_alone", t0, true, "1", "201", ""), convRec("conv_talked", t0, true, "2", "202", "")}})
	ev := bridge.Event{ID: "evt_1", Type: bridge.EventCallRinging, ConversationID: "conv_talked", Sequence: 1, OccurredAt: t0}
	rec, err := bridge.NewRecord(ev)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, db, &bridge.Batch{Events: []bridge.PendingEvent{{Record: rec}}})
	gone, kept := convRec("conv_alone", t0, false, "1", "201", ""), convRec("conv_talked", t0, false, "2", "202", "")
	gone.Discard, kept.Discard = true, true
	commit(t, db, &bridge.Batch{Conversations: []bridge.ConversationRecord{gone, kept}})
	if _, err := db.Conversation(ctx, "conv_alone"); bridge.ErrorCode(err) != bridge.ENOTFOUND {
		t.Fatalf("discarded conversation: %v", err)
	}
	if _, err := db.Conversation(ctx, "conv_talked"); err != nil {
		t.Fatalf("a conversation with events was deleted: %v", err)
	}
	open, _ := db.OpenConversations(ctx)
	if len(open) != 1 || open[0].Call.ID != "conv_talked" {
		t.Fatalf("open = %+v", open)
	}
}

func TestLatestAgentStates(t *testing.T) {
	db, _ := openTest(t)
	var pending []bridge.PendingEvent
	for i, s := range []struct{ ext, queue, state string }{
		{"100", "support", "available"}, {"100", "sales", "available"}, {"200", "support", "busy"},
		{"100", "support", "paused"}, {"100", "", "logged_in"},
	} {
		rec, err := bridge.NewRecord(bridge.Event{ID: fmt.Sprintf("evt_%d", i), Type: bridge.EventAgentState, OccurredAt: t0.Add(time.Duration(i) * time.Second),
			Agent: &bridge.Agent{Extension: s.ext}, AgentState: &bridge.AgentStat{Queue: s.queue, State: s.state}})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, bridge.PendingEvent{Record: rec})
	}
	commit(t, db, &bridge.Batch{Events: pending})
	recs, err := db.LatestAgentStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	// evt_0 is superseded by evt_3 (same agent, same queue).
	if strings.Join(got, ",") != "evt_1,evt_2,evt_3,evt_4" {
		t.Fatalf("latest states %v", got)
	}
}
