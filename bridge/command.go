package bridge

import (
	"context"
	"slices"
	"strings"
)

// PBX is the command side of a PBX adapter: what CRMs ask over REST. Every
// string that reaches the PBX is checked by the adapter (CheckValue) so a
// CR or LF can never become a new AMI header or ESL command.
type PBX interface {
	// CheckOriginate refuses a click-to-call the adapter cannot encode
	// safely (its variable namespace, its dial-string grammar). The call
	// service asks it before anything is registered or dialled.
	CheckOriginate(o *Originate) error
	// Originate places a click-to-call: ring the agent (for o.RingTimeout,
	// or the adapter's default when 0), then dial To. The channel ids in o
	// are pre-assigned so the tracker follows the call from its first
	// event.
	Originate(ctx context.Context, o *Originate) error
	Hangup(ctx context.Context, ch Channel) error
	// BlindTransfer sends the customer's channel to an extension.
	BlindTransfer(ctx context.Context, customer Channel, to string) error
	// AttendedTransfer starts a consultation from the agent's channel and
	// returns the consultation's leg when the adapter names it (FreeSWITCH
	// does; Asterisk's Atxfer needs none: zero Channel). The call service
	// keeps it with the transfer, so the one record of a transfer under
	// way, and its lifetime, are the domain's. CompleteAttendedTransfer
	// joins the customer to the consulted party; CancelAttendedTransfer
	// drops the consultation and returns the agent to the customer.
	AttendedTransfer(ctx context.Context, agent Channel, to string) (consult Channel, err error)
	CompleteAttendedTransfer(ctx context.Context, agent, consult Channel) error
	CancelAttendedTransfer(ctx context.Context, agent, consult Channel) error
	// CanHold is nil when Hold works on this PBX, else why not.
	CanHold() error
	Hold(ctx context.Context, ch Channel, on bool) error
	Record(ctx context.Context, ch Channel, start bool, file string) error
	SendDTMF(ctx context.Context, ch Channel, digits string) error
	// QueueMember logs an agent in or out of a queue, or (un)pauses it.
	QueueMember(ctx context.Context, op QueueOp) error
	Connected() bool
}

// QueueOp is an agent state change asked by a CRM.
type QueueOp struct {
	Action    string // login, logout, pause, resume
	Queue     string
	Extension string
	Interface string // e.g. PJSIP/100, Local/100@agents; derived from the extension when empty
	Name      string
	Reason    string
}

// CheckValue refuses a value that could break the PBX's line protocol:
// CR, LF and NUL split AMI headers and ESL commands.
func CheckValue(field, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return FieldError(field, "must not contain line breaks or NUL characters")
	}
	return nil
}

// CallChannels are the channels a command acts on for one conversation.
type CallChannels struct {
	Call     Call
	Ended    bool
	Customer *Channel // the external party (caller of an inbound call, callee of an outbound one)
	Agent    *Channel // the agent's channel, when an agent has the call
	All      []Channel
	// Agents are the extensions of every agent who has or had a leg in the
	// call (rung, answered, placed it): who an agent-scoped key lets see it.
	Agents []string
}

// CallChannels looks up the live channels of a conversation. The customer
// is the caller of an inbound call, the far party of a call an agent
// placed (from the phone or by click-to-call), the callee of an internal
// call; the agent is the one who has the call now. Of a local pair, the
// half that runs the dialplan (;2 / -b) is the one to redirect or hang up
// for the customer; the outward half (;1 / -a) for the agent.
func (t *Tracker) CallChannels(conversationID string) (CallChannels, bool) {
	c := t.convs[conversationID]
	if c == nil {
		return CallChannels{}, false
	}
	out := CallChannels{Call: c.snapshot(), Ended: c.Ended}
	placed := c.OrigAgent != "" || c.Outbound
	customer := func(l *leg) bool {
		return l.Customer || !placed && l.Role == roleCaller
	}
	agent := func(l *leg) bool {
		if placed { // the agent's phone, or the agent leg of a click-to-call
			return l.Role == roleCaller && !l.Customer || l.Role == roleAgent && l.Agent == c.OrigAgent
		}
		return l.Role == roleAgent && l.Answered
	}
	pick := func(dst **Channel, l *leg, id string, dialplanHalf bool) {
		ch := Channel{ID: id, Name: l.Names.get(id)}
		if *dst == nil || isDialplanHalf(ch.Name) == dialplanHalf {
			*dst = &ch
		}
	}
	if c.OrigAgent != "" {
		out.Agents = append(out.Agents, c.OrigAgent)
	}
	for _, l := range c.Legs {
		if l.Agent != "" && !slices.Contains(out.Agents, l.Agent) {
			out.Agents = append(out.Agents, l.Agent)
		}
		for _, id := range l.Channels {
			out.All = append(out.All, Channel{ID: id, Name: l.Names.get(id)})
			switch {
			case customer(l):
				pick(&out.Customer, l, id, true)
			case agent(l):
				// The agent who has the call now wins over one who left it
				// on hold for a consultation, or the other way round.
				if out.Agent == nil || l.Agent == c.Call.Agent.ext() || l.Role == roleCaller {
					pick(&out.Agent, l, id, false)
				}
			}
		}
	}
	if out.Customer == nil && placed {
		// An internal call: the other agent is the party to move.
		for _, l := range c.Legs {
			if l.Role == roleAgent && l.Answered && l.Agent != c.OrigAgent {
				for _, id := range l.Channels {
					pick(&out.Customer, l, id, true)
				}
			}
		}
	}
	return out, true
}

func (a *Agent) ext() string {
	if a == nil {
		return ""
	}
	return a.Extension
}

func isDialplanHalf(name string) bool {
	return strings.HasSuffix(name, ";2") || strings.HasSuffix(name, "-b")
}

// expectHangup notes that a CRM asked (over the API) to hang call id up,
// before the PBX is asked: its release is reported hangup_by "api", and
// the hangup requests our own command causes do not name a party.
func (t *Tracker) expectHangup(id string) {
	if c := t.convs[id]; c != nil && !c.Ended {
		c.APIHangup = true
		t.dirty[c.ID] = c
	}
}

// forgetHangup undoes expectHangup when the PBX refused the command.
func (t *Tracker) forgetHangup(id string) {
	if c := t.convs[id]; c != nil && c.APIHangup && !c.Ended {
		c.APIHangup = false
		t.dirty[c.ID] = c
	}
}
