package esl

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/bridge"
)

// sipName shortens the SIP captures' channel names to the contact's user:
// sofia/internal/1000-0x5591f1b07bf0@127.0.0.1:5261 -> 1000-0x5591f1b07bf0.
var sipName = regexp.MustCompile(`sofia/internal/([^@ >]+)@[0-9.:]+`)

func describeSIP(evs []bridge.ChannelEvent) []string {
	d := DescribeAll(evs)
	for i, s := range d {
		d[i] = sipName.ReplaceAllString(s, "$1")
	}
	return d
}

// ExpectedSIPCaptures is what the real SIP captures (testdata/sip, read its
// README) translate to in Event-Sequence order: the phone registered as
// 1000-0x5591f1b07bf0 is user=1000 (dialed_user), who dialled whom is said
// with the leg's CREATE, who hung up (by endpoint: recv_*, by pbx: send_*)
// with the hangup and, for a device's release, as soon as an event shows it.
var ExpectedSIPCaptures = map[string][]string{
	"sip-inbound-answer-customer-hangs-up": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
	},
	"sip-inbound-busy": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"HangupRequest 1000-0x5591f1b07bf0",
		"DialEnd 1010>1000-0x5591f1b07bf0 BUSY",
		"Hangup 1000-0x5591f1b07bf0 17 USER_BUSY by endpoint",
		"Hangup 1010 17 USER_BUSY by pbx",
	},
	"sip-inbound-no-answer": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 NOANSWER",
		"Hangup 1000-0x5591f1b07bf0 19 NO_ANSWER by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by pbx",
	},
	"sip-ring-group": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"New 1001-0x5566249b9bf0 user=1001",
		"Dial 1010>1001-0x5566249b9bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1001-0x5566249b9bf0",
		"Update 1010",
		"Answer 1001-0x5566249b9bf0",
		"DialEnd 1010>1000-0x5591f1b07bf0 CANCEL",
		"Hangup 1000-0x5591f1b07bf0 16 LOSE_RACE by pbx",
		"Answer 1010",
		"DialEnd 1010>1001-0x5566249b9bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1001-0x5566249b9bf0",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1001-0x5566249b9bf0",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
		"Hangup 1001-0x5566249b9bf0 16 NORMAL_CLEARING by pbx",
	},
	"sip-callcenter-ringall": {
		"New 1010",
		"Update 1010",
		"Answer 1010",
		"QueueJoin 1010 support@default",
		"AgentState 1000@default busy",
		"AgentState 1001@default busy",
		"New 1000-0x5591f1b07bf0 user=1000",
		"AgentCalled 1010>1000-0x5591f1b07bf0 support@default 1000@default",
		"New 1001-0x5566249b9bf0 user=1001",
		"AgentCalled 1010>1001-0x5566249b9bf0 support@default 1001@default",
		"Update 1000-0x5591f1b07bf0",
		"Update 1001-0x5566249b9bf0",
		"Answer 1000-0x5591f1b07bf0",
		"AgentConnect 1010>1000-0x5591f1b07bf0 support@default 1000@default",
		"Hangup 1001-0x5566249b9bf0 16 LOSE_RACE by pbx",
		"AgentRingNoAnswer 1010",
		"AgentState 1001@default available",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"AgentState 1000@default busy",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
		"QueueLeave 1010 support@default",
		"AgentState 1000@default available",
	},
	"sip-callcenter-abandon": {
		"AgentState 1000@default paused",
		"AgentState 1001@default paused",
		"New 1010",
		"Update 1010",
		"Answer 1010",
		"QueueJoin 1010 support@default",
		"HangupRequest 1010",
		"QueueAbandon 1010 support@default",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
	},
	"sip-blind-transfer-phone": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"Transfer 1000-0x5591f1b07bf0>1010 1001@default",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"New 1001-0x5566249b9bf0 user=1001",
		"Dial 1010>1001-0x5566249b9bf0",
		"Update 1001-0x5566249b9bf0",
		"Answer 1001-0x5566249b9bf0",
		"DialEnd 1010>1001-0x5566249b9bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1001-0x5566249b9bf0",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1001-0x5566249b9bf0",
		"Hangup 1001-0x5566249b9bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
	},
	"sip-attended-transfer-att_xfer": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1010 16 NORMAL_CLEARING by pbx",
		"New 1001-0x5566249b9bf0 user=1001",
		"Dial 1000-0x5591f1b07bf0>1001-0x5566249b9bf0",
		"Update 1001-0x5566249b9bf0",
		"Answer 1001-0x5566249b9bf0",
		"DialEnd 1000-0x5591f1b07bf0>1001-0x5566249b9bf0 ANSWER",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"BridgeEnter 1001-0x5566249b9bf0",
		"HangupRequest 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by endpoint",
		"BridgeLeave 1001-0x5566249b9bf0",
		"Hangup 1001-0x5566249b9bf0 16 NORMAL_CLEARING by pbx",
	},
	"sip-attended-transfer-att_xfer-broadcast": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"New 1001-0x5566249b9bf0 user=1001",
		"Dial 1000-0x5591f1b07bf0>1001-0x5566249b9bf0",
		"Update 1001-0x5566249b9bf0",
		"Answer 1001-0x5566249b9bf0",
		"DialEnd 1000-0x5591f1b07bf0>1001-0x5566249b9bf0 ANSWER",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"BridgeEnter 1001-0x5566249b9bf0",
		"HangupRequest 1000-0x5591f1b07bf0",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"BridgeLeave 1001-0x5566249b9bf0",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Transfer 1000-0x5591f1b07bf0>1010 1001@default attended",
		"BridgeEnter 1001-0x5566249b9bf0",
		"BridgeEnter 1010",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by endpoint",
		"HangupRequest 1010",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
		"BridgeLeave 1001-0x5566249b9bf0",
		"Hangup 1001-0x5566249b9bf0 16 NORMAL_CLEARING by pbx",
	},
	"sip-hold-phone": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"Hold 1000-0x5591f1b07bf0",
		"Unhold 1000-0x5591f1b07bf0",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
	},
	"sip-park-valet": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"Transfer 1000-0x5591f1b07bf0>1010 6001@default",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Park 1010 6001@valet_parking_lot",
		"New 1001",
		"Update 1001",
		"Answer 1001",
		"Unpark 1010>1001 6001@valet_parking_lot",
		"BridgeEnter 1010",
		"BridgeEnter 1001",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1001",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
		"Hangup 1001 16 NORMAL_CLEARING by pbx",
	},
	"sip-pickup": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"New 1001",
		"Update 1001",
		"Answer 1001",
		"Answer 1010",
		"Pickup 1001>1000-0x5591f1b07bf0",
		"DialEnd 1010>1000-0x5591f1b07bf0 CANCEL",
		"Hangup 1000-0x5591f1b07bf0 16 PICKED_OFF by pbx",
		"BridgeEnter 1001",
		"BridgeEnter 1010",
		"HangupRequest 1010",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
		"BridgeLeave 1001",
		"Hangup 1001 16 NORMAL_CLEARING by pbx",
	},
	"sip-record-session-dialplan": {
		"New 1010",
		"Update 1010",
		"RecordStart 1010 /srv/pbx1/recordings/20261202-180844_2d8db17a-a783-4ef5-ad83-956e04496b08.wav",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Answer 1000-0x5591f1b07bf0",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 ANSWER",
		"BridgeEnter 1010",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"HangupRequest 1010",
		"BridgeLeave 1010",
		"BridgeLeave 1000-0x5591f1b07bf0",
		"RecordStop 1010 /srv/pbx1/recordings/20261202-180844_2d8db17a-a783-4ef5-ad83-956e04496b08.wav (hangup)",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by endpoint",
	},
	"sip-voicemail": {
		"New 1010",
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial 1010>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Update 1010",
		"Answer 1010",
		"DialEnd 1010>1000-0x5591f1b07bf0 NOANSWER",
		"Hangup 1000-0x5591f1b07bf0 19 NO_ANSWER by pbx",
		"Hangup 1010 16 NORMAL_CLEARING by pbx",
	},
	"sip-click-to-call-originate": {
		"New 1000-0x5591f1b07bf0 user=1000",
		"Dial>1000-0x5591f1b07bf0",
		"Update 1000-0x5591f1b07bf0",
		"Answer 1000-0x5591f1b07bf0",
		"DialEnd>1000-0x5591f1b07bf0 ANSWER",
		"New 1010-0x5621c59a6bf0 user=1010",
		"Dial 1000-0x5591f1b07bf0>1010-0x5621c59a6bf0",
		"Update 1010-0x5621c59a6bf0",
		"Answer 1010-0x5621c59a6bf0",
		"DialEnd 1000-0x5591f1b07bf0>1010-0x5621c59a6bf0 ANSWER",
		"BridgeEnter 1000-0x5591f1b07bf0",
		"BridgeEnter 1010-0x5621c59a6bf0",
		"HangupRequest 1010-0x5621c59a6bf0", // its BYE, at its CHANNEL_HANGUP (sip_term_cause)
		"BridgeLeave 1000-0x5591f1b07bf0",
		"BridgeLeave 1010-0x5621c59a6bf0",
		"Hangup 1000-0x5591f1b07bf0 16 NORMAL_CLEARING by pbx",
		"Hangup 1010-0x5621c59a6bf0 16 NORMAL_CLEARING by endpoint",
	},
}

func TestTranslateSIPCaptures(t *testing.T) {
	for name, want := range ExpectedSIPCaptures {
		t.Run(name, func(t *testing.T) {
			got := describeSIP(translateAll(NewTranslator(""), bySeq(sipEvents(t, name))))
			if !slices.Equal(got, want) {
				t.Fatalf("got:\n%s", diffLines(got, want))
			}
		})
	}
}

// TestTranslateSIPTolerant feeds every SIP capture permuted, with no
// reordering at all: whatever the order, channels open once, nothing is
// said of a channel after its hangup, and every channel that hangs up in
// order hangs up exactly once (see checkLifecycle).
func TestTranslateSIPTolerant(t *testing.T) {
	for name := range sipFlows {
		captures := sipFlows[name].captures
		if captures == nil {
			captures = []string{name}
		}
		for _, c := range captures {
			t.Run(c, func(t *testing.T) {
				all := sipEvents(t, c)
				wantHangups := hangups(translateAll(NewTranslator(""), bySeq(all)))
				for seed := range uint64(60) {
					k := 2 + int(seed%8)
					got := translateAll(NewTranslator(""), shuffle(all, k, seed))
					if err := checkLifecycle(got); err != "" {
						t.Fatalf("window %d seed %d: %s\n%s", k, seed, err, strings.Join(describeSIP(got), "\n"))
					}
					if h := hangups(got); !slices.Equal(h, wantHangups) {
						t.Fatalf("window %d seed %d: hangups %v, want %v", k, seed, h, wantHangups)
					}
				}
			})
		}
	}
}
