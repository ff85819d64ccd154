package bridge

import (
	"context"
	"strings"
)

// PBX is the command side of a PBX adapter: what CRMs ask over REST. Every
// string that reaches the PBX is checked by the adapter (CheckValue) so a
// CR or LF can never become a new AMI header or ESL command.
type PBX interface {
	// Originate places a click-to-call: ring the agent, then dial To. The
	// channel ids in o are pre-assigned so the tracker follows the call from
	// its first event.
	Originate(ctx context.Context, o *Originate) error
	Hangup(ctx context.Context, ch Channel) error
	// BlindTransfer sends the customer's channel to an extension.
	BlindTransfer(ctx context.Context, customer Channel, to string) error
	// AttendedTransfer starts a consultation from the agent's channel.
	AttendedTransfer(ctx context.Context, agent Channel, to string) error
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
}

// CallChannels looks up the live channels of a conversation.
func (t *Tracker) CallChannels(conversationID string) (CallChannels, bool) {
	c := t.convs[conversationID]
	if c == nil {
		return CallChannels{}, false
	}
	out := CallChannels{Call: c.snapshot(), Ended: c.Ended}
	for _, l := range c.Legs {
		for _, id := range l.Channels {
			ch := Channel{ID: id, Name: l.Names[id]}
			out.All = append(out.All, ch)
			// Of a local pair, the half that runs the dialplan (;2 / -b) is
			// the one to redirect or hang up for the customer; the outward
			// half (;1 / -a) for the agent.
			switch {
			case l.Role == roleCaller && !c.Outbound && (out.Customer == nil || isDialplanHalf(ch.Name)):
				cp := ch
				out.Customer = &cp
			case l.Role == roleAgent && l.Answered && (out.Agent == nil || !isDialplanHalf(ch.Name)):
				cp := ch
				out.Agent = &cp
			case c.Outbound && l.Role != roleAgent && (out.Customer == nil || isDialplanHalf(ch.Name)):
				cp := ch
				out.Customer = &cp
			}
		}
	}
	return out, true
}

func isDialplanHalf(name string) bool {
	return strings.HasSuffix(name, ";2") || strings.HasSuffix(name, "-b")
}
