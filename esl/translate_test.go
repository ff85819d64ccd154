package esl

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// captureEvents returns a capture's events in wire order.
func captureEvents(t testing.TB, name string) []*Event {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(readCapture(t, name, ".esl")))
	var evs []*Event
	for {
		f, err := ReadFrame(br, 0)
		if err == io.EOF {
			return evs
		} else if err != nil {
			t.Fatal(err)
		}
		var e *Event
		switch f.ContentType() {
		case typeEventPlain:
			e, err = parsePlainWanted(f.Body, wantedHeaders)
		case typeEventJSON:
			e, err = parseJSONWanted(f.Body, wantedHeaders)
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
}

func bySeq(evs []*Event) []*Event {
	s := slices.Clone(evs)
	slices.SortStableFunc(s, func(a, b *Event) int { return int(a.Seq()) - int(b.Seq()) })
	return s
}

func translateAll(tr *Translator, evs []*Event) []bridge.ChannelEvent {
	var out []bridge.ChannelEvent
	for _, e := range evs {
		out = append(out, tr.Translate(e)...)
	}
	return out
}

// TestTranslateCaptures translates each capture in Event-Sequence order
// (what the reorder window yields) and compares with ExpectedCaptures.
func TestTranslateCaptures(t *testing.T) {
	for name, want := range ExpectedCaptures {
		t.Run(name, func(t *testing.T) {
			got := DescribeAll(translateAll(NewTranslator(""), bySeq(captureEvents(t, name))))
			if !slices.Equal(got, want) {
				t.Fatalf("got:\n%s", diffLines(got, want))
			}
		})
	}
}

func diffLines(got, want []string) string {
	var b bytes.Buffer
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		b.WriteString(mark + g + "\n")
		if g != w {
			b.WriteString("  want " + w + "\n")
		}
	}
	return b.String()
}

// shuffle permutes events within consecutive windows of k.
func shuffle(evs []*Event, k int, seed uint64) []*Event {
	s := slices.Clone(evs)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < len(s); i += k {
		w := s[i:min(i+k, len(s))]
		r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
	}
	return s
}

// TestShuffledCapturesReordered replays each capture with its events
// permuted within windows of k, arriving 100 µs apart, through the reorder
// buffer and the translator: the result is the in-order one. The captures'
// own inversions reach 52 frames back (an API event), so the window covers
// 60+k arrivals, under half a capture.
func TestShuffledCapturesReordered(t *testing.T) {
	const k = 6
	for name, want := range ExpectedCaptures {
		t.Run(name, func(t *testing.T) {
			all := captureEvents(t, name)
			for seed := range uint64(30) {
				evs := shuffle(all, k, seed)
				r := newReorder((60 + k) * 100 * time.Microsecond)
				tr := NewTranslator("")
				t0 := time.Unix(0, 0)
				var got []bridge.ChannelEvent
				for i, e := range evs {
					now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
					ready := r.due(now, nil)
					ready = r.push(e, now, ready)
					got = append(got, translateAll(tr, ready)...)
				}
				got = append(got, translateAll(tr, r.flush(nil))...)
				if d := DescribeAll(got); !slices.Equal(d, want) {
					t.Fatalf("seed %d:\n%s", seed, diffLines(d, want))
				}
			}
		})
	}
}

// TestTranslateTolerant feeds permuted streams straight to the translator,
// with no reordering at all, and checks what must hold whatever the order:
// a channel opens with ChanNew, once; nothing is said about it after its
// hangup; it answers at most once; every channel that hangs up in order
// hangs up exactly once; every dial ends exactly once.
func TestTranslateTolerant(t *testing.T) {
	for name := range ExpectedCaptures {
		t.Run(name, func(t *testing.T) {
			all := captureEvents(t, name)
			wantHangups := hangups(translateAll(NewTranslator(""), bySeq(all)))
			for seed := range uint64(200) {
				k := 2 + int(seed%8)
				got := translateAll(NewTranslator(""), shuffle(all, k, seed))
				if err := checkLifecycle(got); err != "" {
					t.Fatalf("window %d seed %d: %s\n%s", k, seed, err, strings.Join(DescribeAll(got), "\n"))
				}
				if h := hangups(got); !slices.Equal(h, wantHangups) {
					t.Fatalf("window %d seed %d: hangups %v, want %v", k, seed, h, wantHangups)
				}
			}
		})
	}
}

func hangups(evs []bridge.ChannelEvent) []string {
	var ids []string
	for _, ev := range evs {
		if ev.Kind == bridge.ChanHangup {
			ids = append(ids, ev.Channel.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// checkLifecycle returns what is wrong with a stream, or "".
func checkLifecycle(evs []bridge.ChannelEvent) string {
	opened, hung, answered := map[string]bool{}, map[string]bool{}, map[string]bool{}
	dials := map[string]int{}
	for i, ev := range evs {
		id := ev.Channel.ID
		switch ev.Kind {
		case bridge.ChanOriginateFailed, bridge.ChanAgentState:
			continue
		case bridge.ChanDialEnd, bridge.ChanQueueLeave, bridge.ChanQueueAbandon, bridge.ChanAgentRingNoAnswer:
			// These only close things and may name a channel that is gone.
			if ev.Kind == bridge.ChanDialEnd {
				dials[ev.Peer.ID]--
			}
			continue
		case bridge.ChanNew:
			if opened[id] {
				return fmt.Sprintf("#%d: second ChanNew for %s", i, ev.Channel.Name)
			}
			opened[id] = true
		case bridge.ChanHangup:
			if hung[id] {
				return fmt.Sprintf("#%d: second hangup of %s", i, ev.Channel.Name)
			}
			hung[id] = true
			continue
		case bridge.ChanAnswer:
			if answered[id] {
				return fmt.Sprintf("#%d: second answer of %s", i, ev.Channel.Name)
			}
			answered[id] = true
		case bridge.ChanDial:
			dials[ev.Peer.ID]++
		}
		for _, ch := range []*bridge.Channel{&ev.Channel, ev.Peer} {
			if ch == nil {
				continue
			}
			if hung[ch.ID] && ev.Kind != bridge.ChanTransfer && ev.Kind != bridge.ChanAgentCalled && ev.Kind != bridge.ChanAgentConnect {
				return fmt.Sprintf("#%d: %s after the hangup of %s", i, kindName(ev.Kind), ch.Name)
			}
		}
		if !opened[id] && ev.Kind != bridge.ChanTransfer && ev.Kind != bridge.ChanAgentCalled && ev.Kind != bridge.ChanAgentConnect && ev.Kind != bridge.ChanDial {
			return fmt.Sprintf("#%d: %s before ChanNew of %s", i, kindName(ev.Kind), ev.Channel.Name)
		}
	}
	for id, n := range dials {
		if n > 0 && !hung[id] {
			continue // still ringing where the capture was cut (a lost link)
		}
		if n != 0 {
			return fmt.Sprintf("dial of %s ended %d times too few", id, n)
		}
	}
	return ""
}

// ev builds an event from name/value pairs.
func ev(name string, kv ...string) *Event {
	e := &Event{Headers: map[string]string{"Event-Name": name}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "_body" {
			e.Body = kv[i+1]
			continue
		}
		e.Headers[kv[i]] = kv[i+1]
	}
	return e
}

// leg returns the headers of a channel's caller profile.
func leg(id, name string, kv ...string) []string {
	return append([]string{"Unique-ID", id, "Channel-Name", name, "Caller-Caller-ID-Number", "5550100",
		"Caller-Caller-ID-Name", "Alice", "Caller-Destination-Number", "1000", "Caller-Context", "default",
		"Call-Direction", "inbound", "Channel-Call-UUID", id}, kv...)
}

func TestTranslate(t *testing.T) {
	// Channels: A (caller), B (dialled by A), plus loopback halves.
	var (
		create  = func(id, name string, kv ...string) *Event { return ev("CHANNEL_CREATE", leg(id, name, kv...)...) }
		dialled = func(id, name, by string) *Event {
			return create(id, name, "Other-Type", "originator", "Other-Leg-Unique-ID", by,
				"Other-Leg-Channel-Name", "sofia/int/caller", "Call-Direction", "outbound")
		}
		hangup = func(id, name, cause, q850 string) *Event {
			return ev("CHANNEL_HANGUP_COMPLETE", leg(id, name, "Hangup-Cause", cause, "variable_hangup_cause_q850", q850)...)
		}
		bridgeEv = func(name, seq, a, b string) *Event {
			return ev(name, leg(a, "sofia/int/caller", "Event-Sequence", seq, "Bridge-A-Unique-ID", a, "Bridge-B-Unique-ID", b)...)
		}
	)
	tests := []struct {
		name   string
		dirVar string
		in     []*Event
		want   []string
		check  func(t *testing.T, out []bridge.ChannelEvent)
	}{{
		name: "originated leg dials",
		in:   []*Event{create("A", "sofia/int/caller"), dialled("B", "sofia/int/1000@pbx", "A")},
		want: []string{"New sofia/int/caller", "New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if out[1].Channel.LinkedID != "A" || out[0].Channel.CallerNum != "5550100" || out[0].Channel.Context != "default" {
				t.Errorf("linked %q caller %q context %q", out[1].Channel.LinkedID, out[0].Channel.CallerNum, out[0].Channel.Context)
			}
		},
	}, {
		name: "dialled leg busy",
		in:   []*Event{create("A", "sofia/int/caller"), dialled("B", "sofia/int/1000@pbx", "A"), hangup("B", "sofia/int/1000@pbx", "USER_BUSY", "17")},
		want: []string{"New sofia/int/caller", "New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx",
			"DialEnd sofia/int/caller>sofia/int/1000@pbx BUSY", "Hangup sofia/int/1000@pbx 17 USER_BUSY"},
	}, {
		name: "dialled leg cancelled, cause from the name",
		in:   []*Event{dialled("B", "sofia/int/1000@pbx", "A"), ev("CHANNEL_HANGUP_COMPLETE", leg("B", "sofia/int/1000@pbx", "Hangup-Cause", "ORIGINATOR_CANCEL")...)},
		want: []string{"New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx",
			"DialEnd sofia/int/caller>sofia/int/1000@pbx CANCEL", "Hangup sofia/int/1000@pbx 16 ORIGINATOR_CANCEL"},
	}, {
		name: "dialled leg no answer",
		in:   []*Event{dialled("B", "sofia/int/1000@pbx", "A"), hangup("B", "sofia/int/1000@pbx", "NO_ANSWER", "19")},
		want: []string{"New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx",
			"DialEnd sofia/int/caller>sofia/int/1000@pbx NOANSWER", "Hangup sofia/int/1000@pbx 19 NO_ANSWER"},
	}, {
		name: "dialled leg answered, never bridged",
		in: []*Event{dialled("B", "sofia/int/1000@pbx", "A"), ev("CHANNEL_ANSWER", leg("B", "sofia/int/1000@pbx")...),
			hangup("B", "sofia/int/1000@pbx", "NORMAL_CLEARING", "16")},
		want: []string{"New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx", "Answer sofia/int/1000@pbx",
			"DialEnd sofia/int/caller>sofia/int/1000@pbx ANSWER", "Hangup sofia/int/1000@pbx 16 NORMAL_CLEARING"},
	}, {
		name: "nothing after the hangup, no double answer, no ringing after answer",
		in: []*Event{create("A", "sofia/int/caller"), ev("CHANNEL_ANSWER", leg("A", "sofia/int/caller")...),
			ev("CHANNEL_ANSWER", leg("A", "sofia/int/caller")...), ev("CHANNEL_PROGRESS", leg("A", "sofia/int/caller")...),
			hangup("A", "sofia/int/caller", "NORMAL_CLEARING", "16"), ev("CHANNEL_ANSWER", leg("A", "sofia/int/caller")...),
			ev("CHANNEL_HOLD", leg("A", "sofia/int/caller")...), hangup("A", "sofia/int/caller", "NORMAL_CLEARING", "16")},
		want: []string{"New sofia/int/caller", "Answer sofia/int/caller", "Hangup sofia/int/caller 16 NORMAL_CLEARING"},
	}, {
		name: "first event opens the channel, a late create only updates",
		in:   []*Event{ev("CHANNEL_PROGRESS", leg("A", "sofia/int/caller")...), create("A", "sofia/int/caller")},
		want: []string{"New sofia/int/caller", "Update sofia/int/caller", "Update sofia/int/caller"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if out[1].Channel.State != "Ringing" {
				t.Errorf("state %q", out[1].Channel.State)
			}
		},
	}, {
		name: "hangup of an unknown channel opens nothing",
		in:   []*Event{hangup("Z", "sofia/int/ghost", "NORMAL_CLEARING", "16")},
		want: []string{"Hangup sofia/int/ghost 16 NORMAL_CLEARING"},
	}, {
		name: "loopback halves pair whatever comes first",
		in: []*Event{create("B", "loopback/1000-b", "variable_loopback_leg", "B", "variable_other_loopback_leg_uuid", "A"),
			create("A", "loopback/1000-a", "variable_loopback_leg", "A", "variable_other_loopback_leg_uuid", "B")},
		want: []string{"New loopback/1000-b", "New loopback/1000-a", "LocalPair loopback/1000-a>loopback/1000-b"},
	}, {
		name: "bridge of a dialled leg, then a late bridge",
		in: []*Event{create("A", "sofia/int/caller"), dialled("B", "sofia/int/1000@pbx", "A"),
			bridgeEv("CHANNEL_BRIDGE", "10", "A", "B"), bridgeEv("CHANNEL_UNBRIDGE", "20", "A", "B"),
			bridgeEv("CHANNEL_BRIDGE", "15", "A", "B"), bridgeEv("CHANNEL_BRIDGE", "30", "A", "B")},
		want: []string{"New sofia/int/caller", "New sofia/int/1000@pbx", "Dial sofia/int/caller>sofia/int/1000@pbx",
			"DialEnd sofia/int/caller>sofia/int/1000@pbx ANSWER", "BridgeEnter sofia/int/caller", "BridgeEnter sofia/int/1000@pbx",
			"BridgeLeave sofia/int/caller", "BridgeLeave sofia/int/1000@pbx",
			"BridgeEnter sofia/int/caller", "BridgeEnter sofia/int/1000@pbx"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if out[4].Bridge != "A" || out[5].Bridge != "A" {
				t.Errorf("bridge ids %q %q", out[4].Bridge, out[5].Bridge)
			}
		},
	}, {
		name: "blind transfer on unbridge, said once",
		in: []*Event{create("A", "sofia/int/caller"), create("B", "sofia/int/agent"),
			bridgeEv("CHANNEL_BRIDGE", "10", "A", "B"),
			ev("CHANNEL_UNBRIDGE", leg("A", "sofia/int/caller", "Event-Sequence", "20", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B",
				"variable_transfer_source", "1795339248:32a1b111-155e-4283-bd2b-0ced25d8f33b:bl_xfer:3000/sales/XML")...),
			ev("CHANNEL_UNBRIDGE", leg("A", "sofia/int/caller", "Event-Sequence", "30", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "C",
				"variable_transfer_source", "1795339248:32a1b111-155e-4283-bd2b-0ced25d8f33b:bl_xfer:3000/sales/XML")...)},
		want: []string{"New sofia/int/caller", "New sofia/int/agent", "BridgeEnter sofia/int/caller", "BridgeEnter sofia/int/agent",
			"Transfer sofia/int/agent>sofia/int/caller 3000@sales", "BridgeLeave sofia/int/caller", "BridgeLeave sofia/int/agent",
			"BridgeLeave sofia/int/caller"},
	}, {
		name: "sofia blind transfer, then its bl_xfer unbridge",
		in: []*Event{create("A", "sofia/int/caller"), create("B", "sofia/int/agent"),
			ev("CUSTOM", leg("B", "sofia/int/agent", "Event-Subclass", "sofia::transferor", "Other-Leg-Unique-ID", "A",
				"variable_transfer_destination", "blind:2001", "variable_transfer_to", "blind:A")...),
			ev("CUSTOM", leg("A", "sofia/int/caller", "Event-Subclass", "sofia::transferee")...),
			ev("CHANNEL_UNBRIDGE", leg("A", "sofia/int/caller", "Event-Sequence", "20", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B",
				"variable_transfer_source", "1:x:bl_xfer:2001/default/XML")...)},
		want: []string{"New sofia/int/caller", "New sofia/int/agent", "Transfer sofia/int/agent>sofia/int/caller 2001@default",
			"BridgeLeave sofia/int/caller", "BridgeLeave sofia/int/agent"},
	}, {
		name: "sofia attended transfer",
		in: []*Event{create("C", "sofia/ext/customer"), create("A1", "sofia/int/agent"),
			create("A2", "sofia/int/agent-consult", "Caller-Destination-Number", "1001"), create("T", "sofia/int/1001"),
			ev("CUSTOM", leg("A2", "sofia/int/agent-consult", "Event-Subclass", "sofia::replaced", "att_xfer_replaced_by", "C")...),
			ev("CUSTOM", leg("A1", "sofia/int/agent", "Event-Subclass", "sofia::transferor", "Other-Leg-Unique-ID", "C",
				"att_xfer_original_call_id", "C", "att_xfer_destination_call_id", "T", "att_xfer_destination_peer_uuid", "A2")...),
			ev("CUSTOM", leg("C", "sofia/ext/customer", "Event-Subclass", "sofia::transferee", "att_xfer_replaced_call_id", "A2")...)},
		want: []string{"New sofia/ext/customer", "New sofia/int/agent", "New sofia/int/agent-consult", "New sofia/int/1001",
			"Transfer sofia/int/agent>sofia/ext/customer 1001@default attended"},
	}, {
		name: "half-bridged attended transfer names the transferee in dest",
		in: []*Event{create("A1", "sofia/int/agent"), create("T", "sofia/int/1001"),
			ev("CUSTOM", leg("A1", "sofia/int/agent", "Event-Subclass", "sofia::transferor",
				"att_xfer_original_call_id", "A1", "att_xfer_destination_call_id", "T")...)},
		want: []string{"New sofia/int/agent", "New sofia/int/1001", "Transfer sofia/int/agent>sofia/int/1001 @default attended"},
	}, {
		name: "hold, record with duration",
		in: []*Event{ev("CHANNEL_HOLD", leg("A", "sofia/int/caller")...), ev("CHANNEL_UNHOLD", leg("A", "sofia/int/caller")...),
			ev("RECORD_START", leg("A", "sofia/int/caller", "Record-File-Path", "/r/a.wav")...),
			ev("RECORD_STOP", leg("A", "sofia/int/caller", "Record-File-Path", "/r/a.wav", "variable_record_seconds", "3", "variable_record_ms", "3000")...)},
		want: []string{"New sofia/int/caller", "Hold sofia/int/caller", "Unhold sofia/int/caller",
			"RecordStart sofia/int/caller /r/a.wav", "RecordStop sofia/int/caller /r/a.wav"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if v := out[4].Channel.Vars; v["record_ms"] != "3000" || v["record_seconds"] != "3" || out[3].Channel.Vars != nil {
				t.Errorf("vars %v / %v", v, out[3].Channel.Vars)
			}
		},
	}, {
		name: "background jobs",
		in: []*Event{ev("BACKGROUND_JOB", "Job-UUID", "j1", "Job-Command", "originate", "_body", "-ERR USER_BUSY\n"),
			ev("BACKGROUND_JOB", "Job-UUID", "j2", "Job-Command", "originate", "_body", "+OK 6a5b\n"),
			ev("BACKGROUND_JOB", "Job-UUID", "j3", "Job-Command", "status", "_body", "-ERR whatever\n"),
			ev("BACKGROUND_JOB", "Job-UUID", "j4", "Job-Command", "originate", "_body", "-ERR SOMETHING_NEW\n")},
		want: []string{"OriginateFailed 17 USER_BUSY", "OriginateFailed 0 SOMETHING_NEW"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if out[0].ActionID != "j1" || out[1].ActionID != "j4" {
				t.Errorf("action ids %q %q", out[0].ActionID, out[1].ActionID)
			}
		},
	}, {
		name: "queue abandon, timeout, agent on break, agent not answering",
		in: []*Event{
			ev("CUSTOM", leg("M", "sofia/ext/customer", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-start",
				"CC-Queue", "sales@default", "CC-Member-Session-UUID", "M")...),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "bridge-agent-fail", "CC-Queue", "sales@default",
				"CC-Agent", "1001@default", "CC-Member-Session-UUID", "M", "CC-Hangup-Cause", "NO_ANSWER"),
			ev("CUSTOM", leg("M", "sofia/ext/customer", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end",
				"CC-Queue", "sales@default", "CC-Member-Session-UUID", "M", "CC-Cause", "Cancel", "CC-Cancel-Reason", "NONE")...),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-end", "CC-Queue", "sales@default",
				"CC-Member-Session-UUID", "N", "CC-Cause", "Cancel", "CC-Cancel-Reason", "TIMEOUT"),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "agent-status-change", "CC-Agent", "1001@default", "CC-Agent-Status", "On Break"),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "agent-state-change", "CC-Agent", "1001@default", "CC-Agent-State", "Waiting"),
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "members-count", "CC-Queue", "sales@default"),
		},
		want: []string{"New sofia/ext/customer", "QueueJoin sofia/ext/customer sales@default", "AgentRingNoAnswer sofia/ext/customer",
			"QueueAbandon sofia/ext/customer sales@default", "QueueLeave sales@default", "AgentState 1001@default paused",
			// max_no_answer put the agent On Break; the offer's end sets its
			// state Waiting, which does not make it available.
			"AgentState 1001@default paused"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			if out[4].Reason != "TIMEOUT" || !out[5].Paused || out[5].Reason != "On Break" || out[2].Reason != "NO_ANSWER" || !out[6].Paused || out[6].Reason != "On Break" {
				t.Errorf("reasons %q %v %q %q", out[4].Reason, out[5].Paused, out[5].Reason, out[2].Reason)
			}
		},
	}, {
		name: "agent offered before its leg is known",
		in: []*Event{
			ev("CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "agent-offering", "CC-Queue", "q", "CC-Agent", "a@d",
				"CC-Member-Session-UUID", "M"),
			create("G", "sofia/int/1001", "variable_cc_side", "agent", "variable_cc_member_session_uuid", "M",
				"variable_cc_agent", "a@d", "variable_cc_queue", "q"),
		},
		want: []string{"New sofia/int/1001", "AgentCalled>sofia/int/1001 q a@d"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			// The agent's leg is a call of its own until AgentCalled puts
			// it in the member's.
			if out[0].Channel.LinkedID != "G" || out[1].Channel.ID != "M" || out[1].Interface != "sofia/int/1001" {
				t.Errorf("linked %q member %q interface %q", out[0].Channel.LinkedID, out[1].Channel.ID, out[1].Interface)
			}
		},
	}, {
		name:   "direction variable and placeholder caller id",
		dirVar: "cti_direction",
		in: []*Event{create("A", "loopback/2000-a", "variable_cti_direction", "outbound"),
			ev("CHANNEL_ANSWER", leg("A", "loopback/2000-a", "Caller-Caller-ID-Name", "Outbound Call", "Caller-Caller-ID-Number", "default",
				"Caller-Callee-ID-Name", "Outbound Call", "Caller-Callee-ID-Number", "default")...)},
		want: []string{"New loopback/2000-a", "Answer loopback/2000-a"},
		check: func(t *testing.T, out []bridge.ChannelEvent) {
			ch := out[1].Channel
			if ch.CallerNum != "5550100" || ch.ConnectedNum != "1000" || ch.Vars["cti_direction"] != "outbound" || ch.State != "Up" {
				t.Errorf("channel %+v", ch)
			}
		},
	}, {
		name: "dtmf, heartbeat and unknown events say nothing",
		in:   []*Event{ev("DTMF", leg("A", "x")...), ev("HEARTBEAT"), ev("CUSTOM", "Event-Subclass", "sofia::register")},
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := translateAll(NewTranslator(tt.dirVar), tt.in)
			if got := DescribeAll(out); !slices.Equal(got, tt.want) {
				t.Fatalf("got:\n%s", diffLines(got, tt.want))
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

func TestTranslateResync(t *testing.T) {
	tr := NewTranslator("")
	translateAll(tr, []*Event{ev("CHANNEL_CREATE", leg("OLD", "sofia/int/old")...)})
	tr.Resync([]bridge.Channel{{ID: "B", Name: "sofia/int/1000@pbx", State: "Up", LinkedID: "A"}})
	out := translateAll(tr, []*Event{
		// An adopted leg's events carry its originator: no second dial.
		ev("CHANNEL_ANSWER", leg("B", "sofia/int/1000@pbx", "Other-Type", "originator", "Other-Leg-Unique-ID", "A")...),
		ev("CHANNEL_CREATE", leg("B", "sofia/int/1000@pbx")...),
		ev("CHANNEL_ANSWER", leg("OLD", "sofia/int/old")...), // gone while the link was down
		ev("CHANNEL_HANGUP_COMPLETE", leg("B", "sofia/int/1000@pbx", "Hangup-Cause", "NORMAL_CLEARING")...),
	})
	want := []string{"Update sofia/int/1000@pbx", "Hangup sofia/int/1000@pbx 16 NORMAL_CLEARING"}
	if got := DescribeAll(out); !slices.Equal(got, want) {
		t.Fatalf("got:\n%s", diffLines(got, want))
	}
	if tr.Live() != 0 {
		t.Fatalf("%d channels left", tr.Live())
	}
}

// TestSourceAfter: a transfer source is news only when written after a
// bridge began, in whole seconds.
func TestSourceAfter(t *testing.T) {
	at := time.Unix(1796329325, 500)
	for src, want := range map[string]bool{
		"1796329326:abc:bl_xfer:1002/default/XML": true,
		"1796329325:abc:bl_xfer:1002/default/XML": false,
		"1796329300:abc:bl_xfer:2100/default/XML": false,
		"garbage": false,
	} {
		if got := sourceAfter(src, at); got != want {
			t.Errorf("sourceAfter(%q) = %v", src, got)
		}
	}
}

// TestResyncPairsInAnyOrder: a leg listed before the leg that dialled it
// is paired with it all the same.
func TestResyncPairsInAnyOrder(t *testing.T) {
	a := bridge.Channel{ID: "a", Name: "sofia/internal/1000-0x1@h", State: "Up"}
	b := bridge.Channel{ID: "b", Name: "sofia/internal/1001-0x2@h", State: "Up", Listed: &bridge.Listed{DialledBy: "a"}}
	for _, live := range [][]bridge.Channel{{a, b}, {b, a}} {
		tr := NewTranslator("")
		tr.Resync(live)
		if sa, sb := tr.chans["a"], tr.chans["b"]; sb.dialler != "a" || sb.lastPartner != "a" || sa.lastPartner != "b" {
			t.Fatalf("listed %s first: b dialled by %q, partners %q %q", live[0].ID, sb.dialler, sb.lastPartner, sa.lastPartner)
		}
	}
}
