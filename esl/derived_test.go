package esl

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/bridge/bridgetest"
)

// derivedStories are the stories a CRM must get from the flows of
// testdata/derived: ESL sessions written from FreeSWITCH's source for
// flows the captures do not cover (testdata/derived/README.txt says what
// each one does and where its events come from).
var derivedStories = map[string][]string{
	"redial-870-agent-redials-customer": {
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	},
	"intercom-auto-answer-agent-calls-agent": {
		"internal caller=1000 callee=81001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=callee)",
	},
	"call-return-star69-agent-calls-back-customer": {
		"outbound caller=1000 callee=1010: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	},
	"call-waiting-unheld-agent-drops-first": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
		"inbound caller=1011 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-agent-status-changes": {},
	"callcenter-loopback-agent": {
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"click-to-call-agent-noanswer": {
		"outbound caller=1000 callee=: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	},
	"click-to-call-customer-busy": {
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) ring_ended(customer) failed ended(disposition=busy, hangup_by=callee)",
	},
	"conference-agent-first-customer-leaves-first": {
		"inbound caller=1010 callee=2180: answered(1000) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	},
	"eavesdrop-supervisor": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1002 callee=881000: ended(disposition=no_answer, hangup_by=agent)",
	},
	"fifo-agent-pulls-caller": {
		"inbound caller=1010 callee=2170: answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"fifo-agent-waiting-takes-caller": {
		"inbound caller=1010 callee=2170: answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"intercept-callcenter-member": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	"intercept-ring-group": {
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	"outbound-gateway-early-media-busy": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=busy, hangup_by=callee)",
	},
	"outbound-gateway-early-media-noanswer": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=no_answer, hangup_by=system)",
	},
	"ring-group-ignore-early-media-gateway": {
		"inbound caller=1010 callee=2111: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"valet-timeout-comeback": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-transferer-hangs-up-target-answers": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) transferred(attended, from 1000, to 1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-transferer-hangs-up-target-busy": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=agent)",
	},
	"call-waiting-while-held": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
		"inbound caller=1011 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-tier-no-answer-then-next": {
		"inbound caller=1010 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"caller-cancels-as-agent-answers-callerfirst": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	},
	"caller-cancels-as-agent-answers": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	},
	"failover-busy-then-answer": {
		"inbound caller=1010 callee=2105: ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"phone-attended-transfer-refer-replaces-nohold": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=system)",
	},
	"phone-attended-transfer-refer-replaces": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
		"internal caller=1000 callee=1001: ringing(1001) answered(1001) ended(disposition=answered, hangup_by=system)",
	},
	"phone-blind-transfer-target-busy-voicemail": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"sofia-302-forward-local": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"uuid-transfer-to-ring-group": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2110) ringing(1001) ringing(1002) ring_ended(1001) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-to-gateway": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(+4930123456) answered(+4930123456) transferred(attended, from 1000, to +4930123456) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-to-gateway-external-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(+4930123456) answered(+4930123456) transferred(attended, from 1000, to +4930123456) ended(disposition=answered, hangup_by=callee)",
	},
	"blind-transfer-to-gateway-customer-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to +4930123456) ringing(+4930123456) answered(+4930123456) ended(disposition=answered, hangup_by=caller)",
	},
	"blind-transfer-to-gateway-external-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to +4930123456) ringing(+4930123456) answered(+4930123456) ended(disposition=answered, hangup_by=callee)",
	},
	"blind-transfer-to-ivr": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 2140) ended(disposition=answered, hangup_by=system)",
	},
	"blind-transfer-to-voicemail": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to *991001) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-loopback-agent-loses-race": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-member-hangs-up-during-announce": {
		// The member never reached the agent: mod_callcenter counts an
		// abandon (see derivedGaps).
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1001) ring_ended(1000) abandoned ended(disposition=cancelled, hangup_by=caller)",
	},
	"callcenter-member-hangs-up-while-ringing": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) abandoned ended(disposition=cancelled, hangup_by=caller)",
	},
	"callee-early-media-answer": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callee-early-media-noanswer": {
		"inbound caller=1010 callee=2101: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	},
	"ring-group-both-busy": {
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=busy, hangup_by=agent)",
	},
	"ring-group-one-busy-other-answers": {
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"sequential-leg-timeout-then-answer": {
		"inbound caller=1010 callee=2106: ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"sequential-leg-timeout-then-no-answer": {
		"inbound caller=1010 callee=2106: ringing(1000) ring_ended(1000) ringing(1001) ring_ended(1001) ended(disposition=no_answer, hangup_by=system)",
	},
	"three-way-agent-adds-colleague": {
		// three_way is eavesdrop with both directions mixed: 1001's leg
		// joins no bridge, so it is a call of its own (as eavesdrop-supervisor).
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		"outbound caller=1001 callee=: ringing(1001) answered(1001) ended(disposition=no_answer, hangup_by=agent)",
	},
	// Fourth review: the ESL link drops while a callcenter call rings, and the
	// resync's show channels finds it answered, still ringing, or gone.
	"link-lost-callcenter-ringing-answered-meanwhile": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1001) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"link-lost-callcenter-ringing-caller-gone": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=no_answer, hangup_by=system)",
	},
	"link-lost-callcenter-ringing-still-ringing": {
		"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"uuid-record-agent-hangup": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started ended(disposition=answered, hangup_by=agent) recording_ready",
	},
	// Fifth review: att_xfer's consultation fails or is cancelled and the
	// agent has the customer back.
	"att-xfer-target-busy-back-to-agent": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-target-noanswer-back-to-agent": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"att-xfer-cancel-key-back-to-agent": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"uuid-bridge-parked-customer-to-agent-customer-first": {
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=1010 callee=2190: answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"uuid-bridge-parked-customer-to-agent-agent-first": {
		"outbound caller=1000 callee=: ringing(1000) answered(1000) ended(disposition=no_answer, hangup_by=system)",
		"inbound caller=1010 callee=2190: answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-agent-paused-during-call": {
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-agent-paused-during-call-unpaused": {
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"uuid-record-customer-stop": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) recording_started recording_ready ended(disposition=answered, hangup_by=caller)",
	},
	// Sixth review (second engineer): flows from switch_ivr_originate.c (group_confirm,
	// enterprise :_:, a user on two devices), after-bridge settings, loopback bowout, a
	// reused origination_uuid, continue_on_fail to voicemail.
	"group-confirm-first-answerer-does-not-confirm": {
		"inbound caller=1010 callee=2112: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"group-confirm-timeout-then-failover": {
		"inbound caller=1010 callee=2116: ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"ring-group-both-answer-at-once": {
		"inbound caller=1010 callee=2110: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"outbound-carrier-failover-second-answers": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	},
	"user-two-devices-desk-rejects-softphone-answers": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"loopback-no-bowout-dialplan-agent": {
		"inbound caller=1010 callee=2117: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"loopback-no-bowout-dialplan-agent-hangs-up": {
		"inbound caller=1010 callee=2117: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	"hangup-after-bridge-false-next-agent": {
		"inbound caller=1010 callee=2118: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"intercept-bleg-supervisor-takes-over": {
		// A takeover of a talking agent reads as the picker's answer, as a
		// pickup of a ringing one does.
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) answered(1002) ended(disposition=answered, hangup_by=caller)",
	},
	"click-to-call-carrier-failover": {
		"outbound caller=1000 callee=+4930123456: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)",
	},
	"user-two-devices-one-answers": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"enterprise-originate-local-group-answers": {
		"inbound caller=1010 callee=2113: ringing(1000) ringing(1001) ring_ended(1000) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"enterprise-originate-mobile-group-answers": {
		// An outside number answering an inbound call is no agent's answer
		// (tracker_ring.go answered: "a forward to an outside number").
		"inbound caller=1010 callee=2113: ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=no_answer, hangup_by=caller)",
	},
	"survey-after-bridge-agent-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	"transfer-after-bridge-survey-agent-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	"loopback-bowout-dialplan-agent": {
		"inbound caller=1010 callee=2115: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"click-to-call-retry-same-origination-uuid": {
		"outbound caller=1000 callee=: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
		"outbound caller=1000 callee=1010: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)",
	},
	// Seventh review (second engineer): what the CRM commands through ctibridge's own
	// command forms (commands.go): click-to-call "originate ... <to> XML default", attended
	// transfer over loopback with loopback_bowout=false, uuid_kill, uuid_hold; a trunk
	// caller id.
	"click-to-call-xml-no-route": {
		// The agent took the call; the number has no route: nobody was dialled.
		"outbound caller=1000 callee=+4930123499: ringing(1000) answered(1000) ended(disposition=failed, hangup_by=system)",
	},
	"click-to-call-xml-carrier-invalid-number": {
		// ringing(customer) at the INVITE, as the model says for every dialled customer.
		// The carrier's 484 (INVALID_NUMBER_FORMAT) is the network's refusal, not
		// the customer's: system, as Asterisk's originate-customer-404-second-trunk-503.
		"outbound caller=1000 callee=+49301: ringing(1000) answered(1000) ringing(customer) ring_ended(customer) failed ended(disposition=failed, hangup_by=system)",
	},
	"api-att-xfer-loopback-completed": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) transferred(attended, from 1000, to 1001) ended(disposition=answered, hangup_by=caller)",
	},
	"api-att-xfer-loopback-target-busy-voicemail-cancelled": {
		// 1001 refused; Local_Extension's voicemail answered the consultation: no
		// person answered it (as att-xfer-target-busy-back-to-agent).
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) ring_ended(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"api-hangup-inbound-while-ringing": {
		// uuid_kill from the CRM: with the command's expectHangup the tracker says api.
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=system)",
	},
	"outbound-trunk-effective-caller-id": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=agent)",
	},
	"api-hold-then-phone-hold-phone-resumes": {
		// The phone's resume takes the call off hold in the switch (CHANNEL_UNHOLD); the
		// CRM's later uuid_hold off fails.
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) held resumed ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-agent-state-set-waiting-during-call-second-member": {
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
		// Offered to 1000 on a second line while 1000 talks (state set Waiting by the API),
		// refused (486), offered again after busy-delay-time once 1000 is free.
		"inbound caller=1011 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"api-att-xfer-loopback-customer-hangs-up-in-consult": {
		// As the capture sip-attended-transfer-att_xfer-customer-hangs-up-in-consult.
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"click-to-call-xml-company-caller-id-answered": {
		// The agent leg's caller id is the company's number: still 1000's call (dialed_user).
		"outbound caller=1000 callee=+4930123456: ringing(1000) answered(1000) ringing(customer) answered(customer) ended(disposition=answered, hangup_by=callee)",
	},
	"busy-agent-continue-on-fail-voicemail-message": {
		// busy, not no_answer: as batch 5's internal-call-callee-busy (the
		// voicemail fallback after a 486 keeps busy; debatable).
		"inbound caller=1010 callee=2191: ringing(1000) ring_ended(1000) ended(disposition=busy, hangup_by=caller)",
	},
	// adv4c: dialplan applications: an IVR that transfers to an agent, an anonymous caller,
	// outbound carrier failures without failover, bind_meta_app's *1 blind transfer, sched_hangup.
	"ivr-then-transfer-agent-answers": {
		// The IVR's dialplan transfer to 1000 routes the call; nobody transferred it.
		"inbound caller=1010 callee=2142: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"ivr-then-transfer-agent-noanswer-voicemail": {
		// Answered only by the PBX (IVR, voicemail): no_answer; the caller hung up while recording.
		"inbound caller=1010 callee=2142: ringing(1000) ring_ended(1000) ended(disposition=no_answer, hangup_by=caller)",
	},
	"inbound-anonymous-caller-answered": {
		"inbound caller=anonymous callee=5551212: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"outbound-gateway-503-no-failover": {
		// The carrier refused (503, NORMAL_TEMPORARY_FAILURE): the network, as
		// click-to-call-xml-carrier-invalid-number's 484 and Asterisk's
		// outbound-trunk-503-congestion-app.
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=failed, hangup_by=system)",
	},
	"outbound-gateway-no-response-timeout": {
		// Nobody answered the INVITE at all: sofia-sip's own timer made the 408.
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=failed, hangup_by=system)",
	},
	"bind-meta-app-dx-blind-transfer-answered": {
		"inbound caller=1010 callee=1000: ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"click-to-call-gateway-no-response-timeout": {
		"outbound caller=1000 callee=+4930123456: ringing(1000) answered(1000) ringing(customer) ring_ended(customer) failed ended(disposition=failed, hangup_by=system)",
	},
	"sched-hangup-max-duration-inbound": {
		"inbound caller=1010 callee=2107: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=system)",
	},
	"sched-hangup-max-duration-outbound": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) answered(customer) ended(disposition=answered, hangup_by=system)",
	},
	// adv4d: mod_callcenter (max-no-answer, a refusal, exit key, uuid_transfer of the member),
	// mod_conference (bgdial, kick), valet_park by REFER, a link loss while the member waits.
	"callcenter-max-no-answer-on-break-next-agent": {
		"inbound caller=1010 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-first-agent-rejects-second-answers": {
		"inbound caller=1010 callee=2121: queued ringing(1000) ring_ended(1000) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"callcenter-exit-key-to-voicemail": {
		// The caller left the queue with a key for voicemail: no abandon, only the PBX
		// answered (as the AMI queue-caller-exits-with-key-to-voicemail).
		"inbound caller=1010 callee=2122: queued ringing(1000) ringing(1001) ring_ended(1000) ring_ended(1001) ended(disposition=no_answer, hangup_by=caller)",
	},
	"callcenter-agent-uuid-transfer-member-to-1001": {
		"inbound caller=1010 callee=2121: queued ringing(1000) answered(1000) transferred(blind, from 1000, to 1001) ringing(1001) answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	"conference-agent-bgdial-customer": {
		// The switch dialled the customer for the room (no originator): an outbound call
		// to +4930123456 shown with the caller id the switch presented; 1000, in the
		// room, is its agent; the customer (the callee) hung up.
		"outbound caller=+4930999000 callee=+4930123456: answered(1000) ended(disposition=answered, hangup_by=callee)",
		"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	},
	"conference-agent-kicks-customer": {
		// The kick ends the conference app; 2180 has nothing after it: the switch hangs up.
		"inbound caller=1010 callee=2180: answered(1000) ended(disposition=answered, hangup_by=system)",
		"internal caller=1000 callee=2180: answered(customer) ended(disposition=answered, hangup_by=caller)",
	},
	"valet-park-refer-retrieved-by-1001-who-hangs-up": {
		"inbound caller=1010 callee=2100: ringing(1000) answered(1000) transferred(blind, from 1000, to 6001) held(parked 6001) answered(1001) ended(disposition=answered, hangup_by=agent)",
	},
	"callback-originate-customer-first-then-agent": {
		// A dialer/callback: the switch calls the customer first (no originator), then
		// &bridge rings 1000: outbound, the customer is the callee.
		"outbound caller=+4930999000 callee=+4930123456: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=callee)",
	},
	"link-lost-callcenter-waiting-agent-answers-meanwhile": {
		// Offered and answered while the link was down: the resync's rows (call_uuid,
		// show calls) give 1001's leg to the member's call.
		"inbound caller=1010 callee=2121: queued answered(1001) ended(disposition=answered, hangup_by=caller)",
	},
	// Everyday flows of a vanilla office (testdata/derived/README.txt, "Everyday flows").
	// A call only the PBX handled (voicemail, a conference nobody joined) is no_answer;
	// an agent's feature code (*98) is internal like **1000, a plain service number outbound.
	"internal-no-answer-vanilla-voicemail-caller-leaves-message": {
		"internal caller=1000 callee=1001: ringing(1001) ring_ended(1001) ended(disposition=no_answer, hangup_by=caller)",
	},
	"agent-calls-unregistered-colleague-voicemail-message": {
		"internal caller=1000 callee=1002: ended(disposition=no_answer, hangup_by=caller)",
	},
	"agent-dials-voicemail-star98-hangs-up": {
		"internal caller=1000 callee=*98: ended(disposition=no_answer, hangup_by=caller)",
	},
	"agent-conference-3000-alone-hangs-up": {
		"outbound caller=1000 callee=3000: ended(disposition=no_answer, hangup_by=agent)",
	},
	"pickup-app-group-pickup-1001-answers": {
		"inbound caller=1010 callee=2115: ringing(1000) answered(1001) ring_ended(1000) ended(disposition=answered, hangup_by=caller)",
	},
	"bypass-media-agent-answers-agent-hangs-up": {
		"inbound caller=1010 callee=2116: ringing(1000) answered(1000) ended(disposition=answered, hangup_by=agent)",
	},
	"inbound-early-media-caller-bye-before-answer": {
		"inbound caller=1010 callee=2100: ringing(1000) ring_ended(1000) ended(disposition=cancelled, hangup_by=caller)",
	},
	"outbound-gateway-early-media-agent-bye-before-answer": {
		"outbound caller=1000 callee=9+4930123456: ringing(customer) ring_ended(customer) ended(disposition=no_answer, hangup_by=agent)",
	},
}

// derivedGaps are derived flows whose wanted story the model does not tell
// yet: the story it tells today and why. The test accepts that story and
// logs the gap, so any other change to the flow's story still fails it.
var derivedGaps = map[string]struct {
	story []string
	why   string
}{
	"callcenter-member-hangs-up-during-announce": {
		story: []string{"inbound caller=1010 callee=2120: queued ringing(1000) ringing(1001) answered(1000) ring_ended(1001) ended(disposition=answered, hangup_by=caller)"},
		why: "bridge-agent-start is taken as the member's connect (call.answered), but mod_callcenter fires it before " +
			"cc_outbound_announce and the uuid_bridge; deferring the connect to the member<->agent CHANNEL_BRIDGE fixes " +
			"this flow but moves the real sip-callcenter-ringall capture's ring_ended(1001) before answered(1000), " +
			"against its EXPECT line",
	},
}

// derivedAgents is the agent each flow's first conversation ends with (the
// transfer's target, the one who answered): call.ended's call.agent.
var derivedAgents = map[string]string{
	"callcenter-loopback-agent":                             "1000",
	"intercept-ring-group":                                  "1002",
	"intercept-callcenter-member":                           "1002",
	"fifo-agent-pulls-caller":                               "1000",
	"fifo-agent-waiting-takes-caller":                       "1000",
	"valet-timeout-comeback":                                "1000",
	"att-xfer-transferer-hangs-up-target-answers":           "1001",
	"phone-attended-transfer-refer-replaces":                "1001",
	"phone-attended-transfer-refer-replaces-nohold":         "1001",
	"uuid-transfer-to-ring-group":                           "1002",
	"sofia-302-forward-local":                               "1001",
	"failover-busy-then-answer":                             "1001",
	"callcenter-tier-no-answer-then-next":                   "1001",
	"callcenter-loopback-agent-loses-race":                  "1001",
	"ring-group-one-busy-other-answers":                     "1001",
	"sequential-leg-timeout-then-answer":                    "1001",
	"callee-early-media-answer":                             "1000",
	"link-lost-callcenter-ringing-answered-meanwhile":       "1000",
	"link-lost-callcenter-ringing-still-ringing":            "1000",
	"att-xfer-target-busy-back-to-agent":                    "1000",
	"att-xfer-target-noanswer-back-to-agent":                "1000",
	"att-xfer-cancel-key-back-to-agent":                     "1000",
	"uuid-bridge-parked-customer-to-agent-customer-first":   "1000",
	"uuid-bridge-parked-customer-to-agent-agent-first":      "1000",
	"callcenter-agent-paused-during-call":                   "1000",
	"callcenter-agent-paused-during-call-unpaused":          "1000",
	"group-confirm-first-answerer-does-not-confirm":         "1001",
	"user-two-devices-one-answers":                          "1000",
	"hangup-after-bridge-false-next-agent":                  "1001",
	"intercept-bleg-supervisor-takes-over":                  "1002",
	"user-two-devices-desk-rejects-softphone-answers":       "1000",
	"loopback-no-bowout-dialplan-agent":                     "1000",
	"loopback-no-bowout-dialplan-agent-hangs-up":            "1000",
	"group-confirm-timeout-then-failover":                   "1001",
	"ring-group-both-answer-at-once":                        "1001",
	"enterprise-originate-local-group-answers":              "1001",
	"survey-after-bridge-agent-hangs-up":                    "1000",
	"transfer-after-bridge-survey-agent-hangs-up":           "1000",
	"loopback-bowout-dialplan-agent":                        "1000",
	"api-att-xfer-loopback-completed":                       "1001",
	"api-att-xfer-loopback-target-busy-voicemail-cancelled": "1000",
	"api-hold-then-phone-hold-phone-resumes":                "1000",
	"ivr-then-transfer-agent-answers":                       "1000",
	"inbound-anonymous-caller-answered":                     "1000",
	"bind-meta-app-dx-blind-transfer-answered":              "1001",
	"sched-hangup-max-duration-inbound":                     "1000",
	"callcenter-max-no-answer-on-break-next-agent":          "1001",
	"callcenter-first-agent-rejects-second-answers":         "1001",
	"callcenter-agent-uuid-transfer-member-to-1001":         "1001",
	"conference-agent-bgdial-customer":                      "1000",
	"conference-agent-kicks-customer":                       "1000",
	"valet-park-refer-retrieved-by-1001-who-hangs-up":       "1001",
	"link-lost-callcenter-waiting-agent-answers-meanwhile":  "1001",
	"callback-originate-customer-first-then-agent":          "1000",
	"pickup-app-group-pickup-1001-answers":                  "1001",
	"bypass-media-agent-answers-agent-hangs-up":             "1000",
}

// derivedEvents reads a derived flow's events in file order.
func derivedEvents(t testing.TB, name string) []*Event {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "derived", name+".esl"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	var evs []*Event
	for {
		f, err := ReadFrame(br, 0)
		if err == io.EOF {
			return evs
		} else if err != nil {
			t.Fatal(err)
		}
		if f.ContentType() != typeEventPlain {
			continue
		}
		e, err := parsePlainWanted(f.Body, wantedHeaders)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
}

// segment is a run of a derived flow's events: after a link loss (lost)
// and a resync's "show channels" answer (live), as the client plays them.
type segment struct {
	lost   bool
	live   []bridge.Channel
	at     time.Time
	events []*Event
	chans  string // the show channels body, until show calls pairs its rows
}

// derivedSegments splits a derived flow where the link dropped (a
// text/disconnect-notice before the end) and where a new session's first
// "show channels as json" answer came (the resync: a snapshot in its
// place in the stream, with the "show calls as json" answer right after it
// when the file has one). A flow without either is one segment.
func derivedSegments(t testing.TB, name string) []segment {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "derived", name+".esl"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	segs := []segment{{}}
	var last time.Time
	for {
		f, err := ReadFrame(br, 0)
		if err == io.EOF {
			return segs
		} else if err != nil {
			t.Fatal(err)
		}
		cur := &segs[len(segs)-1]
		switch f.ContentType() {
		case typeEventPlain:
			e, err := parsePlainWanted(f.Body, wantedHeaders)
			if err != nil {
				t.Fatal(err)
			}
			if at := e.Time(); !at.IsZero() {
				last = at
			}
			cur.events = append(cur.events, e)
		case "text/disconnect-notice":
			segs = append(segs, segment{lost: true, at: last})
		case typeAPIResponse:
			if !strings.Contains(string(f.Body), "row_count") || len(cur.events) > 0 {
				continue
			}
			if cur.live != nil {
				// The resync's second answer, "show calls as json" (client.go
				// resync), pairs the bridged rows of the first.
				if cur.chans != "" {
					live, err := SnapshotChannels(cur.chans, string(f.Body))
					if err != nil {
						t.Fatal(err)
					}
					cur.live, cur.chans = live, ""
				}
				continue
			}
			live, err := SnapshotChannels(string(f.Body), "")
			if err != nil {
				t.Fatal(err)
			}
			if cur.lost {
				// The link's loss is noted when it happened; the answer comes
				// a little later, on the switch's clock.
				cur.at = last
			}
			segs = append(segs, segment{live: live, at: last.Add(time.Second), chans: string(f.Body)})
		}
	}
}

// playDerived plays a derived flow in the given order through a Translator
// and a Tracker, checking the model after every event; it returns the
// stories and what the flow broke.
func playDerived(t testing.TB, name string, order func([]*Event) []*Event) (stories, broken []string) {
	tr, tk := NewTranslator(""), sipTracker()
	ck := &modelCheck{}
	for _, seg := range derivedSegments(t, name) {
		if seg.lost {
			tk.LinkLost(seg.at)
		}
		if seg.live != nil {
			for _, ce := range tr.Resync(seg.live) {
				tk.Handle(ce)
			}
			tk.Snapshot(seg.live, seg.at)
			ck.after(tk)
		}
		for _, ce := range translateAll(tr, order(seg.events)) {
			tk.Handle(ce)
			ck.after(tk)
		}
	}
	for _, err := range ck.broken {
		broken = append(broken, err.Error())
	}
	if open := ck.stories.Open(); len(open) > 0 || len(tk.Live()) > 0 {
		broken = append(broken, fmt.Sprintf("calls never ended: %v", open))
	}
	broken = append(broken, bridgetest.AnsweredWithRingCause(ck.events)...)

	if want, ok := derivedAgents[name]; ok {
		if got := bridgetest.FirstEndedAgent(ck.events); got != want {
			broken = append(broken, fmt.Sprintf("the call ended with agent %q, want %q", got, want))
		}
	}
	return bridgetest.Stories(ck.events), broken
}

// playOrders are the wire orders a derived or counter flow is played in:
// Event-Sequence order, as the client's subscription sees it, and with
// neighbouring events of different channels swapped through the reorder
// buffer (four seeds).
func playOrders() map[string]func([]*Event) []*Event {
	orders := map[string]func([]*Event) []*Event{
		"by sequence": bySeq,
		"subscribed":  func(evs []*Event) []*Event { return bySeq(subscribed(evs)) },
	}
	for seed := range uint64(4) {
		orders[fmt.Sprintf("subscribed, swapped (seed %d), reorder buffer", seed)] = func(evs []*Event) []*Event {
			return viaReorder(swapChannels(bySeq(subscribed(evs)), seed))
		}
	}
	return orders
}

// TestDerivedStories plays each derived flow in Event-Sequence order, as
// the client's subscription sees it, and with neighbouring events of
// different channels swapped on the wire through the reorder buffer: every
// way must tell the wanted stories and break nothing.
func TestDerivedStories(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "derived"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".esl")
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			want, ok := derivedStories[name]
			for how, order := range playOrders() {
				got, broken := playDerived(t, name, order)
				for _, b := range broken {
					t.Errorf("%s: %s", how, b)
				}
				if !ok {
					t.Fatalf("flow %s has no story in derivedStories; got\n  %s", name, strings.Join(got, "\n  "))
				}
				if gap, ok := derivedGaps[name]; ok && slices.Equal(got, gap.story) {
					t.Logf("%s: known gap: %s", how, gap.why)
					continue
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got\n  %s\nwant\n  %s", how, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}

// derivedAgentStates are the agent.state events a derived flow gives, in
// order ("extension state[ reason]").
var derivedAgentStates = map[string][]string{
	// Waiting after Available repeats it; On Break is a pause with its reason.
	"callcenter-agent-status-changes": {"1000 available", "1000 paused On Break", "1000 available", "1000 logged_out"},
	// Paused during a queue call: the call's end (state Waiting) does not
	// make a paused agent available (status is availability, state activity);
	// unpaused while still talking, the agent is busy until the call ends.
	"callcenter-agent-paused-during-call":          {"1000 available", "1000 busy", "1000 paused On Break", "1000 logged_out"},
	"callcenter-agent-paused-during-call-unpaused": {"1000 available", "1000 busy", "1000 paused On Break", "1000 busy", "1000 available"},
	// State set to Waiting by the API during a queue call: mod_callcenter offers 1000
	// calls again (agents_callback), so available while still talking is the switch's truth.
	"callcenter-agent-state-set-waiting-during-call-second-member": {"1000 available", "1000 busy", "1000 available", "1000 busy", "1000 available", "1000 busy", "1000 available"},
	// max-no-answer reached: mod_callcenter sets 1000 On Break (agent-max-no-answer, then
	// agent-status-change); the offer's end (state Waiting) leaves it paused.
	"callcenter-max-no-answer-on-break-next-agent": {"1000 busy", "1000 paused On Break", "1001 busy", "1001 available"},
}

func TestDerivedAgentStates(t *testing.T) {
	for name, want := range derivedAgentStates {
		tr, tk := NewTranslator(""), sipTracker()
		for _, ce := range translateAll(tr, bySeq(subscribed(derivedEvents(t, name)))) {
			tk.Handle(ce)
		}
		evs, _ := tk.Drain()
		var got []string
		for _, e := range evs {
			if e.Type == bridge.EventAgentState && e.Agent != nil && e.AgentState != nil {
				got = append(got, strings.TrimSpace(e.Agent.Extension+" "+e.AgentState.State+" "+e.AgentState.Reason))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}
