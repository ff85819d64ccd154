package esl

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// An event sequence for FuzzTranslateSequence is events separated by blank
// lines, each a "Name: value" line per header, values as they are (no URL
// encoding): small enough for the fuzzer to rearrange, drop, duplicate and
// corrupt whole events and single headers.
func parseSequence(in string) []*Event {
	var evs []*Event
	for _, block := range strings.Split(in, "\n\n") {
		e := &Event{Headers: map[string]string{}}
		for _, line := range strings.Split(block, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && k != "" {
				e.Headers[k] = v
			}
		}
		if e.Headers["Event-Name"] != "" {
			evs = append(evs, e)
		}
		if len(evs) == 400 {
			break
		}
	}
	return evs
}

// FuzzTranslateSequence feeds arbitrary event sequences, seeded with real
// SIP flows (testdata/fuzz/FuzzTranslateSequence, written by
// TestWriteFuzzSeeds), through one Translator: it must not panic, must keep
// no more channels than the input named, and what it emits must keep the
// model's invariants (checkStream).
func FuzzTranslateSequence(f *testing.F) {
	f.Add("Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: a\n\nEvent-Name: CHANNEL_CREATE\nUnique-ID: a")
	f.Add("Event-Name: CHANNEL_BRIDGE\nUnique-ID: a\nBridge-A-Unique-ID: a\nBridge-B-Unique-ID: a")
	f.Fuzz(func(t *testing.T, in string) {
		evs := parseSequence(in)
		tr := NewTranslator("v")
		var out []bridge.ChannelEvent
		ids := map[string]bool{}
		for _, e := range evs {
			for k, v := range e.Headers { // every header that may name a channel
				if strings.Contains(k, "Unique-ID") || strings.Contains(strings.ToLower(k), "uuid") {
					ids[v] = true
				}
			}
			out = append(out, tr.Translate(e)...)
		}
		if err := checkStream(out); err != "" {
			t.Fatalf("%s\n%s", err, strings.Join(DescribeAll(out), "\n"))
		}
		if tr.Live() > len(ids) {
			t.Fatalf("%d channels kept from %d named", tr.Live(), len(ids))
		}
	})
}

// checkStream returns what is wrong with a translation whatever its input,
// or "": per channel (per life: a ChanNew stamped after its hangup is
// a new channel with the old id) at most one ChanNew, one ChanAnswer, one
// ChanHangupRequest (before its hangup) and one ChanHangup; nothing but
// what closes something names a channel after its hangup; a dial ends at
// most once; the kinds about two channels carry the second.
func checkStream(evs []bridge.ChannelEvent) string {
	opened, hung, answered, requested := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	dials := map[string]int{}
	hungAt := map[string]time.Time{}
	for i, ev := range evs {
		id := ev.Channel.ID
		switch ev.Kind {
		case bridge.ChanDial, bridge.ChanDialEnd, bridge.ChanLocalPair, bridge.ChanAgentCalled, bridge.ChanAgentConnect,
			bridge.ChanPickup, bridge.ChanUnpark:
			if ev.Peer == nil || ev.Peer.ID == "" {
				return fmt.Sprintf("#%d: %s without a peer", i, kindName(ev.Kind))
			}
		}
		switch ev.Kind {
		case bridge.ChanNew:
			if opened[id] {
				return fmt.Sprintf("#%d: second ChanNew of %q", i, id)
			}
			if hung[id] && !ev.At.After(hungAt[id]) {
				return fmt.Sprintf("#%d: ChanNew of %q after its hangup", i, id)
			}
			if hung[id] { // created again after its hangup: a channel of its own
				hung[id], answered[id], requested[id] = false, false, false
			}
			opened[id] = true
		case bridge.ChanAnswer:
			if answered[id] {
				return fmt.Sprintf("#%d: second answer of %q", i, id)
			}
			answered[id] = true
		case bridge.ChanHangupRequest:
			if requested[id] || hung[id] {
				return fmt.Sprintf("#%d: hangup request of %q twice or after its hangup", i, id)
			}
			requested[id] = true
		case bridge.ChanHangup:
			if hung[id] {
				return fmt.Sprintf("#%d: second hangup of %q", i, id)
			}
			hung[id], hungAt[id] = true, ev.At
			continue
		case bridge.ChanDial:
			dials[ev.Peer.ID]++
		case bridge.ChanDialEnd:
			if dials[ev.Peer.ID]--; dials[ev.Peer.ID] < 0 {
				return fmt.Sprintf("#%d: dial of %q ended more often than it began", i, ev.Peer.ID)
			}
			continue
		case bridge.ChanQueueLeave, bridge.ChanQueueAbandon, bridge.ChanAgentRingNoAnswer, bridge.ChanOriginateFailed,
			bridge.ChanAgentState, bridge.ChanTransfer, bridge.ChanAgentCalled, bridge.ChanAgentConnect:
			continue // they close something, or name a party that may be gone
		}
		if hung[id] {
			return fmt.Sprintf("#%d: %s of %q after its hangup", i, kindName(ev.Kind), id)
		}
		if ev.Peer != nil && hung[ev.Peer.ID] && ev.Kind != bridge.ChanPickup {
			return fmt.Sprintf("#%d: %s names %q after its hangup", i, kindName(ev.Kind), ev.Peer.ID)
		}
		if !opened[id] && ev.Kind != bridge.ChanDial {
			return fmt.Sprintf("#%d: %s before ChanNew of %q", i, kindName(ev.Kind), id)
		}
	}
	return ""
}

// TestCheckStreamOnCaptures runs the fuzz target's invariants over every
// capture, in order and shuffled, so the checker itself is known to accept
// what the switch really sends.
func TestCheckStreamOnCaptures(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "sip"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".esl")
		if !ok {
			continue
		}
		all := sipEvents(t, name)
		for seed := range uint64(10) {
			evs := bySeq(all)
			if seed > 0 {
				evs = shuffle(all, 2+int(seed), seed)
			}
			if err := checkStream(translateAll(NewTranslator(""), evs)); err != "" {
				t.Fatalf("%s seed %d: %s", name, seed, err)
			}
		}
	}
}

// fuzzHeaders are the headers the translator reads: the seeds keep only
// these, so they stay small.
var fuzzHeaders = []string{"Event-Name", "Event-Subclass", "Event-Sequence", "Unique-ID", "Channel-Name", "Call-Direction",
	"Answer-State", "Channel-Call-State", "Other-Type", "Other-Leg-Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID",
	"Hangup-Cause", "Application", "Application-Data", "Caller-Caller-ID-Number", "Caller-Destination-Number", "Caller-Context",
	"Event-Calling-File", "Record-File-Path", "variable_uuid", "variable_dialed_user", "variable_sip_auth_username",
	"variable_sip_hangup_disposition", "variable_transfer_source", "variable_originator", "variable_cc_side",
	"variable_cc_member_session_uuid", "variable_cc_agent", "variable_cc_queue", "CC-Action", "CC-Queue", "CC-Agent",
	"CC-Agent-UUID", "CC-Member-Session-UUID", "CC-Cause", "CC-Cancel-Reason", "Action", "Valet-Extension", "Valet-Lot-Name",
	"Bridge-To-UUID"}

// fuzzSeedFlows are the captures the seed corpus is made of: a plain call,
// a queue, an attended transfer, parking and a pickup.
var fuzzSeedFlows = []string{"sip-inbound-answer-customer-hangs-up", "sip-callcenter-ringall",
	"sip-attended-transfer-att_xfer-broadcast", "sip-park-valet", "sip-pickup"}

// TestWriteFuzzSeeds writes the seed corpus from the real captures (run
// with ESL_WRITE_FUZZ_SEEDS=1): the events the translator acts on, the
// headers it reads, uuids shortened.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ESL_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set ESL_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzTranslateSequence")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzTranslateSequence")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range fuzzSeedFlows {
		short := map[string]string{}
		id := func(v string) string {
			if v == "" {
				return ""
			}
			if s, ok := short[v]; ok {
				return s
			}
			short[v] = "u" + strconv.Itoa(len(short))
			return short[v]
		}
		var blocks []string
		for _, e := range bySeq(sipEvents(t, name)) {
			n := e.Get("Event-Name")
			if n == "CHANNEL_EXECUTE" && e.Get("Application") != "intercept" && e.Get("variable_transfer_source") == "" ||
				!slices.Contains([]string{"CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
					"CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_CALLSTATE",
					"CHANNEL_EXECUTE", "CHANNEL_HANGUP_COMPLETE", "RECORD_START", "RECORD_STOP", "CUSTOM"}, n) ||
				n == "CUSTOM" && !strings.HasPrefix(e.Get("Event-Subclass"), "callcenter::") && !strings.HasPrefix(e.Get("Event-Subclass"), "valet_parking::") {
				continue
			}
			if n == "CHANNEL_CALLSTATE" && !slices.Contains([]string{"HELD", "UNHELD"}, e.Get("Channel-Call-State")) {
				continue
			}
			var lines []string
			for _, h := range fuzzHeaders {
				v := e.Get(h)
				if v == "" || h == "Event-Sequence" && !strings.Contains(n, "BRIDGE") || h == "Event-Calling-File" && !strings.HasPrefix(n, "RECORD_") {
					continue
				}
				switch h {
				case "Unique-ID", "Other-Leg-Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "variable_uuid", "variable_originator",
					"variable_cc_member_session_uuid", "CC-Agent-UUID", "CC-Member-Session-UUID", "Bridge-To-UUID", "Application-Data":
					if len(v) == 36 {
						v = id(v)
					}
				case "variable_transfer_source":
					parts := strings.SplitN(v, ":", 3)
					if len(parts) == 3 {
						v = parts[0] + ":" + id(parts[1]) + ":" + parts[2]
					}
					if i := strings.Index(v, ":uuid_br:"); i >= 0 {
						v = v[:i] + ":uuid_br:" + id(v[i+len(":uuid_br:"):])
					}
				}
				lines = append(lines, h+": "+v)
			}
			blocks = append(blocks, strings.Join(lines, "\n"))
		}
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", strings.Join(blocks, "\n\n"))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
