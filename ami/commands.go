package ami

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/staskobzar/goami2"
)

// ActionSender is what the Commander needs from a Client.
type ActionSender interface {
	Send(ctx context.Context, action *goami2.Message) (*goami2.Message, error)
	Connected() bool
}

// CommanderOptions say how CRM commands map onto the dialplan. Zero values
// take the defaults noted.
type CommanderOptions struct {
	// AgentChannel is the channel a click-to-call rings first, {agent}
	// replaced by the extension: "Local/{agent}@from-internal" (default)
	// runs the agent's own dialplan (follow-me, DND, several devices);
	// "PJSIP/{agent}" rings the device directly.
	AgentChannel string
	// OutboundContext is where the customer's number is dialled once the
	// agent answers (the Originate's Context). Default "from-internal".
	OutboundContext string
	// TransferContext is where transfer targets are looked up. Default
	// "from-internal".
	TransferContext string
	// QueueInterface is a queue member's interface, {agent} replaced.
	// Default: AgentChannel.
	QueueInterface string
	// RingTimeout is how long the agent's phone may ring. Default 30s.
	RingTimeout time.Duration
	// VariablePrefix is the namespace of click-to-call variables: only
	// names starting with it are sent. Default bridge.DefaultVariablePrefix
	// ("crm_").
	VariablePrefix string
}

func (o CommanderOptions) withDefaults() CommanderOptions {
	if o.AgentChannel == "" {
		o.AgentChannel = "Local/{agent}@from-internal"
	}
	if o.OutboundContext == "" {
		o.OutboundContext = "from-internal"
	}
	if o.TransferContext == "" {
		o.TransferContext = "from-internal"
	}
	if o.QueueInterface == "" {
		o.QueueInterface = o.AgentChannel
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = 30 * time.Second
	}
	if o.VariablePrefix == "" {
		o.VariablePrefix = bridge.DefaultVariablePrefix
	}
	return o
}

// Commander turns CRM commands into manager actions. It implements
// bridge.PBX.
//
// What Asterisk's manager interface cannot do, it says so (a
// bridge.ENOTIMPLEMENTED error) instead of approximating:
//
//   - Hold. AMI has no hold action: hold is something a phone asks for
//     (a re-INVITE), and Asterisk then plays music to the other party and
//     reports Hold, which the call model turns into call.held. The
//     alternatives all change the call into something else: MusicOnHold is
//     a dialplan application, so using it means a Redirect, which takes the
//     customer out of the agent's bridge (and reads, to the PBX and to the
//     call model, as a blind transfer), and resuming needs a new Bridge;
//     Park hands the customer to a parking lot and drops the agent's leg,
//     and "resume" is a new call to the parking slot. None of them is a
//     hold the agent's phone knows about.
//   - Cancelling an attended transfer needs Asterisk 17+ (CancelAtxfer);
//     older versions answer "Invalid/unknown command", reported as such.
//
// An attended transfer needs no state here: Atxfer runs from the agent's
// channel, and its name is all that completing or cancelling it takes.
type Commander struct {
	c    ActionSender
	opts CommanderOptions
}

var _ bridge.PBX = (*Commander)(nil)

// NewCommander returns a Commander sending through c.
func NewCommander(c ActionSender, opts CommanderOptions) *Commander {
	return &Commander{c: c, opts: opts.withDefaults()}
}

// Connected implements bridge.PBX.
func (m *Commander) Connected() bool { return m.c.Connected() }

// Originate implements bridge.PBX. It places a click-to-call: an async Originate that rings the
// agent's channel (with the pre-assigned ChannelId, and OtherChannelId for
// the ;2 half of a Local channel) and, once answered, dials o.To in the
// outbound context. Its outcome comes as events: OriginateResponse Failure
// becomes call.failed.
func (m *Commander) Originate(ctx context.Context, o *bridge.Originate) error {
	ring := o.RingTimeout
	if ring <= 0 {
		ring = m.opts.RingTimeout
	}
	// The call service checked o already; the encoder checks again so
	// that no path can put an unchecked value on the wire.
	if err := m.CheckOriginate(o); err != nil {
		return err
	}
	for field, v := range map[string]string{"action_id": o.ActionID, "agent_channel_id": o.AgentChannelID, "other_channel_id": o.OtherChannelID} {
		if err := checkID(field, v); err != nil {
			return err
		}
	}
	if o.ActionID == "" || o.AgentChannelID == "" {
		return bridge.Errorf(bridge.EINTERNAL, "originate without pre-assigned ids")
	}
	channel := bridge.Template(m.opts.AgentChannel, "agent", o.Agent)
	a := goami2.NewAction("Originate")
	a.AddField("ActionID", o.ActionID)
	a.AddField("Channel", channel)
	a.AddField("ChannelId", o.AgentChannelID)
	if o.OtherChannelID != "" && strings.HasPrefix(strings.ToLower(channel), "local/") {
		a.AddField("OtherChannelId", o.OtherChannelID)
	}
	a.AddField("Async", "true")
	a.AddField("Context", m.opts.OutboundContext)
	a.AddField("Exten", o.To)
	a.AddField("Priority", "1")
	if o.CallerID != "" {
		cid, _ := bridge.ParseCallerID("caller_id", o.CallerID) // checked above
		a.AddField("CallerID", formatCallerID(cid))
	}
	a.AddField("Timeout", strconv.FormatInt(ring.Milliseconds(), 10))
	names := make([]string, 0, len(o.Variables))
	for k := range o.Variables {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		a.AddField("Variable", k+"="+o.Variables[k])
	}
	return m.do(ctx, a)
}

// CheckOriginate validates the values of a click-to-call that end up in the
// Originate action, so a caller can refuse a request before it registers
// or dials anything.
func (m *Commander) CheckOriginate(o *bridge.Originate) error {
	if err := bridge.CheckExtension("agent", o.Agent); err != nil {
		return err
	}
	if err := bridge.CheckNumber("to", o.To); err != nil {
		return err
	}
	if o.CallerID != "" {
		if _, err := bridge.ParseCallerID("caller_id", o.CallerID); err != nil {
			return err
		}
	}
	// manager.c reads each Variable header as a list: split at ','
	// outside (), [] and "", '"' and '\' removed, then name=value at the
	// first '='; a name ending in ')' is a function, a leading '_' makes
	// it inherited. The namespace keeps the names plain and ours, the
	// safe text set keeps each value one value.
	return bridge.CheckVariables(m.opts.VariablePrefix, o.Variables)
}

func formatCallerID(c bridge.CallerID) string {
	if c.Name == "" {
		return "<" + c.Number + ">"
	}
	return `"` + c.Name + `" <` + c.Number + ">"
}

// Hangup implements bridge.PBX: Hangup with cause 16 (normal clearing).
func (m *Commander) Hangup(ctx context.Context, ch bridge.Channel) error {
	a, err := channelAction("Hangup", ch)
	if err != nil {
		return err
	}
	a.AddField("Cause", "16")
	return m.do(ctx, a)
}

// BlindTransfer implements bridge.PBX: Redirect the customer's channel to
// the target in the transfer context; the agent's leg is released by the
// bridge it leaves.
func (m *Commander) BlindTransfer(ctx context.Context, customer bridge.Channel, to string) error {
	if err := bridge.CheckExtension("to", to); err != nil {
		return err
	}
	a, err := channelAction("Redirect", customer)
	if err != nil {
		return err
	}
	a.AddField("Context", m.opts.TransferContext)
	a.AddField("Exten", to)
	a.AddField("Priority", "1")
	return m.do(ctx, a)
}

// AttendedTransfer implements bridge.PBX: Atxfer from the agent's channel.
// Asterisk holds the customer and connects the agent to the target; the
// transfer completes when the agent's leg hangs up
// (CompleteAttendedTransfer) and is abandoned with CancelAtxfer.
func (m *Commander) AttendedTransfer(ctx context.Context, agent bridge.Channel, to string) (bridge.Channel, error) {
	if err := bridge.CheckExtension("to", to); err != nil {
		return bridge.Channel{}, err
	}
	a, err := channelAction("Atxfer", agent)
	if err != nil {
		return bridge.Channel{}, err
	}
	a.AddField("Exten", to)
	a.AddField("Context", m.opts.TransferContext)
	// Asterisk names no consultation leg: finishing acts on the agent's.
	return bridge.Channel{}, m.do(ctx, a)
}

// CompleteAttendedTransfer hangs up the agent's (transferer's) channel:
// Asterisk then bridges the customer with the target, or, if the target
// still rings, connects them when it answers.
func (m *Commander) CompleteAttendedTransfer(ctx context.Context, agent, _ bridge.Channel) error {
	return m.Hangup(ctx, agent)
}

// CancelAttendedTransfer drops the consultation and gives the agent the
// customer back (CancelAtxfer, Asterisk 17+).
func (m *Commander) CancelAttendedTransfer(ctx context.Context, agent, _ bridge.Channel) error {
	a, err := channelAction("CancelAtxfer", agent)
	if err != nil {
		return err
	}
	return m.do(ctx, a)
}

// Hold implements bridge.PBX: not possible over AMI (see Commander).
func (m *Commander) Hold(ctx context.Context, ch bridge.Channel, on bool) error {
	return m.CanHold()
}

// CanHold says why hold is not possible, so the API can answer so whatever
// the call's state (a ringing call has no agent leg to hold yet, but
// answering "not yet" would promise that hold works later).
func (m *Commander) CanHold() error {
	return bridge.Errorf(bridge.ENOTIMPLEMENTED,
		"Asterisk's manager interface has no hold: hold from the phone (reported as call.held); a Redirect or Park would break the call")
}

// Record implements bridge.PBX: MixMonitor / StopMixMonitor. A relative
// file lands in Asterisk's monitor directory; the path Asterisk chose comes
// back in the recording events.
func (m *Commander) Record(ctx context.Context, ch bridge.Channel, start bool, file string) error {
	if !start {
		a, err := channelAction("StopMixMonitor", ch)
		if err != nil {
			return err
		}
		return m.do(ctx, a)
	}
	if err := checkFile("file", file); err != nil {
		return err
	}
	a, err := channelAction("MixMonitor", ch)
	if err != nil {
		return err
	}
	if file != "" {
		a.AddField("File", file)
	}
	return m.do(ctx, a)
}

// SendDTMF implements bridge.PBX: PlayDTMF takes one digit per action, so
// the digits go one by one, in order; a failure stops the rest.
func (m *Commander) SendDTMF(ctx context.Context, ch bridge.Channel, digits string) error {
	if err := bridge.CheckDTMF("digits", digits); err != nil {
		return err
	}
	for _, d := range digits {
		a, err := channelAction("PlayDTMF", ch)
		if err != nil {
			return err
		}
		a.AddField("Digit", string(d))
		if err := m.do(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// QueueMember implements bridge.PBX: QueueAdd (login), QueueRemove
// (logout), QueuePause (pause, resume). The resulting QueueMember* events
// become agent.state.
func (m *Commander) QueueMember(ctx context.Context, op bridge.QueueOp) error {
	if err := bridge.CheckExtension("extension", op.Extension); err != nil {
		return err
	}
	if op.Queue != "" {
		if err := bridge.CheckQueue("queue", op.Queue); err != nil {
			return err
		}
	}
	// app_queue keeps persistent members in its database as
	// "iface;penalty;paused;name;state_iface;reason;..." joined with '|'
	// and reads them back split at ',', '|' and ';' on a restart, and
	// writes the reason into the '|'-separated queue_log: both are safe
	// text, so neither can add a member or a field.
	if err := bridge.CheckSafeText("reason", op.Reason, 128); err != nil {
		return err
	}
	if err := bridge.CheckSafeText("name", op.Name, 64); err != nil {
		return err
	}
	iface := op.Interface
	if iface == "" {
		iface = bridge.Template(m.opts.QueueInterface, "agent", op.Extension)
	}
	if err := checkChannelName("interface", iface); err != nil {
		return err
	}
	var a *goami2.Message
	switch op.Action {
	case "login", "logout":
		if op.Queue == "" {
			return bridge.FieldError("queue", "is required: Asterisk adds and removes members per queue")
		}
		a = goami2.NewAction("QueueAdd")
		if op.Action == "logout" {
			a = goami2.NewAction("QueueRemove")
		}
		a.AddField("Queue", op.Queue)
		a.AddField("Interface", iface)
		if op.Action == "login" && op.Name != "" {
			a.AddField("MemberName", op.Name)
		}
	case "pause", "resume":
		a = goami2.NewAction("QueuePause")
		a.AddField("Interface", iface)
		a.AddField("Paused", strconv.FormatBool(op.Action == "pause"))
		if op.Queue != "" {
			a.AddField("Queue", op.Queue)
		}
		if op.Reason != "" {
			a.AddField("Reason", op.Reason)
		}
	default:
		return bridge.FieldError("action", "must be login, logout, pause or resume")
	}
	return m.do(ctx, a)
}

// do sends an action and turns a "Response: Error" into a bridge.Error.
func (m *Commander) do(ctx context.Context, a *goami2.Message) error {
	resp, err := m.c.Send(ctx, a)
	if err != nil {
		return err
	}
	return actionError(a.Field("Action"), resp)
}

func actionError(action string, resp *goami2.Message) error {
	if strings.EqualFold(resp.Field("Response"), "Success") {
		return nil
	}
	msg := resp.Field("Message")
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "invalid/unknown command"):
		return bridge.Errorf(bridge.ENOTIMPLEMENTED, "this Asterisk has no %s action (%s)", action, msg)
	case strings.Contains(lower, "no such channel"), strings.Contains(lower, "does not exist"):
		return bridge.Errorf(bridge.ECONFLICT, "Asterisk no longer has that channel: the call may have just ended (%s: %s)", action, msg)
	case strings.Contains(lower, "permission denied"):
		return bridge.Errorf(bridge.EUNAVAILABLE, "Asterisk refused %s: %s (the manager user needs write = call,originate,agent)", action, msg)
	}
	if msg == "" {
		msg = "no reason given"
	}
	return bridge.Errorf(bridge.ECONFLICT, "Asterisk refused %s: %s", action, msg)
}

// channelAction starts an action on a channel the call model knows: it
// came from the PBX, but it still goes on the wire, so it is checked too.
func channelAction(name string, ch bridge.Channel) (*goami2.Message, error) {
	if err := checkChannelName("channel", ch.Name); err != nil {
		return nil, err
	}
	a := goami2.NewAction(name)
	a.AddField("Channel", ch.Name)
	return a, nil
}

var (
	reChannelName = regexp.MustCompile(`^[A-Za-z0-9_]+/[!-~]+$`)
	reID          = regexp.MustCompile(`^[A-Za-z0-9._-]{0,64}$`)
	reFile        = regexp.MustCompile(`^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,254}$`)
)

func checkChannelName(field, v string) error {
	if err := bridge.CheckValue(field, v); err != nil {
		return err
	}
	if !reChannelName.MatchString(v) {
		return bridge.FieldError(field, "is not a channel name (Tech/resource)")
	}
	return nil
}

func checkID(field, v string) error {
	if !reID.MatchString(v) {
		return bridge.FieldError(field, "must be up to 64 of A-Z a-z 0-9 . _ -")
	}
	return nil
}

func checkFile(field, v string) error {
	if v == "" {
		return nil
	}
	if !reFile.MatchString(v) || slices.Contains(strings.Split(v, "/"), "..") {
		return bridge.FieldError(field, "must be a plain file name or path without '..'")
	}
	return nil
}
