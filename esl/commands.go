package esl

import (
	"context"
	"errors"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ctibridge/ctibridge/bridge"
)

// CommanderOptions say how CRM commands map onto FreeSWITCH. Zero values
// take the defaults noted.
type CommanderOptions struct {
	// AgentDial is an agent's dial string, {agent} replaced. Default
	// "user/{agent}" (the directory user, wherever it is registered).
	AgentDial string
	// Context is the XML dialplan context where a click-to-call dials the
	// customer and where blind transfers look up their target. Default
	// "default".
	Context string
	// TransferDial is the dial string an attended transfer calls, {to} and
	// {context} replaced. Default "loopback/{to}/{context}": the target
	// goes through the dialplan like a blind transfer does.
	TransferDial string
	// CallcenterAgent is the mod_callcenter agent of an extension, {agent}
	// replaced. Default "{agent}@default".
	CallcenterAgent string
	// RecordDir is where relative recording names are written on the
	// FreeSWITCH host. Default "/var/lib/freeswitch/recordings".
	RecordDir string
	// RingTimeout is how long the agent's phone may ring. Default 30s.
	RingTimeout time.Duration
	// VariablePrefix is the namespace of click-to-call variables: only
	// names starting with it are sent. Default bridge.DefaultVariablePrefix
	// ("crm_").
	VariablePrefix string
}

func (o CommanderOptions) withDefaults() CommanderOptions {
	if o.AgentDial == "" {
		o.AgentDial = "user/{agent}"
	}
	if o.Context == "" {
		o.Context = "default"
	}
	if o.TransferDial == "" {
		o.TransferDial = "loopback/{to}/{context}"
	}
	if o.CallcenterAgent == "" {
		o.CallcenterAgent = "{agent}@default"
	}
	if o.RecordDir == "" {
		o.RecordDir = "/var/lib/freeswitch/recordings"
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = 30 * time.Second
	}
	if o.VariablePrefix == "" {
		o.VariablePrefix = bridge.DefaultVariablePrefix
	}
	return o
}

// Runner is what a Commander needs of its link: the Client, or a test's
// recorder of the command lines.
type Runner interface {
	API(ctx context.Context, cmd string) (string, error)
	BgAPIJob(ctx context.Context, cmd, jobUUID string) error
	Connected() bool
}

// Commander turns CRM commands into ESL api/bgapi commands. It implements
// bridge.PBX.
//
// What FreeSWITCH does differently from Asterisk:
//
//   - Hold works (uuid_hold on the agent's leg: the customer hears the
//     agent's hold music), but a loopback leg never enters the held state,
//     so "uuid_hold off" on one fails ("-ERR Operation failed", captured):
//     resume answers 409 with that reason.
//   - An attended transfer is the att_xfer application run on the agent's
//     leg (uuid_broadcast), as FreeSWITCH's own *-feature does; its
//     consultation leg gets a pre-assigned uuid, so cancelling hangs up
//     exactly that leg, and completing hangs up the agent's leg, which
//     att_xfer answers by bridging the customer to the target.
//   - mod_callcenter keeps one status per agent, not per queue: pause and
//     resume are agent-wide (a queue or a reason is refused); with a queue,
//     login and logout set the agent's tier in it Ready or Standby.
type Commander struct {
	c    Runner
	opts CommanderOptions
}

var _ bridge.PBX = (*Commander)(nil)

// NewCommander returns a Commander sending through c.
func NewCommander(c Runner, opts CommanderOptions) *Commander {
	return &Commander{c: c, opts: opts.withDefaults()}
}

// Connected implements bridge.PBX.
func (m *Commander) Connected() bool { return m.c.Connected() }

// Originate implements bridge.PBX. It places a click-to-call in the background:
//
//	bgapi originate {origination_uuid=<agent leg>,...}<agent dial> <to> XML <context>
//
// with Job-UUID = o.ActionID, so a failure (BACKGROUND_JOB -ERR) becomes
// call.failed for the conversation registered beforehand. The agent's leg
// is created with the pre-assigned uuid; FreeSWITCH has no second half to
// name, so o.OtherChannelID is not used.
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
	if err := checkUUID("agent_channel_id", o.AgentChannelID); err != nil {
		return err
	}
	if err := checkUUID("action_id", o.ActionID); err != nil {
		return err
	}
	vars := []string{"origination_uuid=" + o.AgentChannelID, "originate_timeout=" + strconv.Itoa(max(1, int(ring.Seconds())))}
	if o.CallerID != "" {
		cid, _ := bridge.ParseCallerID("caller_id", o.CallerID) // checked above
		vars = append(vars, "origination_caller_id_number="+cid.Number)
		if cid.Name != "" {
			vars = append(vars, "origination_caller_id_name="+quoteVar(cid.Name))
		}
	}
	names := make([]string, 0, len(o.Variables))
	for k := range o.Variables {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vars = append(vars, k+"="+quoteVar(o.Variables[k]))
	}
	cmd := "originate {" + strings.Join(vars, ",") + "}" + bridge.Template(m.opts.AgentDial, "agent", o.Agent) +
		" " + o.To + " XML " + m.opts.Context
	return m.fsError("originate", m.c.BgAPIJob(ctx, cmd, o.ActionID))
}

// CheckOriginate validates the values of a click-to-call that end up in the
// originate command, so a caller can refuse a request before it registers
// or dials anything.
//
// Every value is held to an allowlist, because FreeSWITCH reads the whole
// line through several parsers: originate's arguments split at spaces
// outside quotes; then switch_ivr_originate looks for ":_:" in the whole
// dial string before anything else (an "enterprise" originate: each part a
// new call with its own [...] variables, e.g. api_on_originate=system
// ...), then reads {...} variable lists (',' separated, "^^X" switching
// the separator, quotes and '\' escapes), then '|' and ',' separated legs.
// The agent and the number are extensions and phone numbers; the caller id
// name and the variables' values are the safe text of bridge.CheckSafeText,
// which has none of those characters; variable names are in the namespace
// (VariablePrefix), so none is a variable FreeSWITCH acts on.
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
	return bridge.CheckVariables(m.opts.VariablePrefix, o.Variables)
}

// Hangup implements bridge.PBX: uuid_kill (NORMAL_CLEARING).
func (m *Commander) Hangup(ctx context.Context, ch bridge.Channel) error {
	return m.api(ctx, "uuid_kill", ch, "")
}

// BlindTransfer implements bridge.PBX: uuid_transfer of the customer's leg
// to the target in the dialplan context.
func (m *Commander) BlindTransfer(ctx context.Context, customer bridge.Channel, to string) error {
	if err := bridge.CheckExtension("to", to); err != nil {
		return err
	}
	return m.api(ctx, "uuid_transfer", customer, to+" XML "+m.opts.Context)
}

// AttendedTransfer implements bridge.PBX: att_xfer on the agent's leg,
// calling the target on a consultation leg whose uuid is chosen here.
func (m *Commander) AttendedTransfer(ctx context.Context, agent bridge.Channel, to string) (bridge.Channel, error) {
	if err := bridge.CheckExtension("to", to); err != nil {
		return bridge.Channel{}, err
	}
	consult := uuid.NewString()
	dial := bridge.Template(m.opts.TransferDial, "to", to, "context", m.opts.Context)
	vars := "origination_uuid=" + consult
	if strings.HasPrefix(dial, "loopback/") {
		// A loopback pair bows out once both sides are bridged and
		// answered (mod_loopback): the consultation's uuid would vanish, so
		// cancel could not find it, and att_xfer, finding its peer gone,
		// would hang the target up on completion instead of bridging it to
		// the customer (att_thread_run: no uuid_bridge of a down peer).
		vars += ",loopback_bowout=false"
	}
	if err := m.api(ctx, "uuid_broadcast", agent, "att_xfer::{"+vars+"}"+dial+" aleg"); err != nil {
		return bridge.Channel{}, err
	}
	return bridge.Channel{ID: consult}, nil
}

// CompleteAttendedTransfer hangs up the agent's leg: att_xfer then bridges
// the customer with the target.
func (m *Commander) CompleteAttendedTransfer(ctx context.Context, agent, consult bridge.Channel) error {
	if consult.ID == "" {
		return errNoConsult
	}
	return m.api(ctx, "uuid_kill", agent, "")
}

// CancelAttendedTransfer hangs up the consultation leg: att_xfer gives the
// agent the customer back.
func (m *Commander) CancelAttendedTransfer(ctx context.Context, agent, consult bridge.Channel) error {
	if consult.ID == "" {
		return errNoConsult
	}
	return m.api(ctx, "uuid_kill", consult, "")
}

var errNoConsult = bridge.Errorf(bridge.ECONFLICT, "no attended transfer of this bridge is under way on that leg")

// CanHold implements bridge.PBX: uuid_hold works on any channel.
func (m *Commander) CanHold() error { return nil }

// Hold implements bridge.PBX: uuid_hold [off] on the agent's leg.
func (m *Commander) Hold(ctx context.Context, ch bridge.Channel, on bool) error {
	if on {
		return m.api(ctx, "uuid_hold", ch, "")
	}
	if err := checkUUID("channel", ch.ID); err != nil {
		return err
	}
	return m.run(ctx, "uuid_hold", "uuid_hold off "+ch.ID)
}

// Record implements bridge.PBX: uuid_record start <path> / stop all. A
// relative name goes under RecordDir.
func (m *Commander) Record(ctx context.Context, ch bridge.Channel, start bool, file string) error {
	if !start {
		return m.api(ctx, "uuid_record", ch, "stop all")
	}
	if file == "" {
		return bridge.FieldError("file", "is required")
	}
	if !reFile.MatchString(file) || slices.Contains(strings.Split(file, "/"), "..") {
		return bridge.FieldError("file", "must be a plain file name or path without '..'")
	}
	if !strings.HasPrefix(file, "/") {
		file = path.Join(m.opts.RecordDir, file)
	}
	return m.api(ctx, "uuid_record", ch, "start "+file)
}

// SendDTMF implements bridge.PBX: uuid_send_dtmf.
func (m *Commander) SendDTMF(ctx context.Context, ch bridge.Channel, digits string) error {
	if err := bridge.CheckDTMF("digits", digits); err != nil {
		return err
	}
	return m.api(ctx, "uuid_send_dtmf", ch, digits)
}

// QueueMember implements bridge.PBX: callcenter_config agent set status.
// The agent-status-change events that follow become agent.state.
func (m *Commander) QueueMember(ctx context.Context, op bridge.QueueOp) error {
	if err := bridge.CheckExtension("extension", op.Extension); err != nil {
		return err
	}
	if op.Queue != "" {
		if err := bridge.CheckQueue("queue", op.Queue); err != nil {
			return err
		}
	}
	// Never accept what would be silently dropped.
	if op.Reason != "" {
		return bridge.FieldError("reason", "mod_callcenter keeps no reason with an agent's status: omit it")
	}
	status := map[string]string{"login": "Available", "logout": "Logged Out", "pause": "On Break", "resume": "Available"}[op.Action]
	if status == "" {
		return bridge.FieldError("action", "must be login, logout, pause or resume")
	}
	agent := bridge.Template(m.opts.CallcenterAgent, "agent", op.Extension)
	if !reAgent.MatchString(agent) {
		return bridge.FieldError("extension", "does not make a callcenter agent name")
	}
	// A queue is a tier of mod_callcenter: login makes the agent's tier in
	// it Ready, logout puts it on Standby; the agent's other queues are
	// untouched. Pause is agent-wide there.
	if op.Queue != "" {
		switch op.Action {
		case "login":
			if err := m.run(ctx, "callcenter_config", "callcenter_config tier set state "+op.Queue+" "+agent+" Ready"); err != nil {
				return err
			}
		case "logout":
			return m.run(ctx, "callcenter_config", "callcenter_config tier set state "+op.Queue+" "+agent+" Standby")
		default:
			return bridge.FieldError("queue", "mod_callcenter pauses an agent in all its queues: omit queue")
		}
	}
	return m.run(ctx, "callcenter_config", "callcenter_config agent set status "+agent+" '"+status+"'")
}

// api runs "name <uuid> [args]" on a channel the call model knows.
func (m *Commander) api(ctx context.Context, name string, ch bridge.Channel, args string) error {
	if err := checkUUID("channel", ch.ID); err != nil {
		return err
	}
	cmd := name + " " + ch.ID
	if args != "" {
		cmd += " " + args
	}
	return m.run(ctx, name, cmd)
}

func (m *Commander) run(ctx context.Context, name, cmd string) error {
	_, err := m.c.API(ctx, cmd)
	return m.fsError(name, err)
}

// fsError rewords the client's reply errors for a command on a live call:
// a channel FreeSWITCH no longer has is a call that just ended (409), and
// an unknown command is a module that is not loaded (501).
func (m *Commander) fsError(name string, err error) error {
	var be *bridge.Error
	if err == nil || !errors.As(err, &be) {
		return err
	}
	lower := strings.ToLower(be.Message)
	switch {
	case be.Code == bridge.ENOTFOUND:
		return bridge.Errorf(bridge.ECONFLICT, "FreeSWITCH no longer has that channel: the call may have just ended (%s)", be.Message)
	case strings.Contains(lower, "command not found"):
		return bridge.Errorf(bridge.ENOTIMPLEMENTED, "this FreeSWITCH has no %s command (is its module loaded?)", name)
	}
	return err
}

var (
	reFile  = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,255}$`)
	reAgent = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)
)

func checkUUID(field, v string) error {
	if err := uuid.Validate(v); err != nil || !validArg(v) {
		return bridge.FieldError(field, "must be a uuid")
	}
	return nil
}

// quoteVar single-quotes a value with spaces: the originate arguments are
// split at spaces outside quotes (and the quotes removed). The value holds
// no quote or backslash (CheckSafeText), so the quoting cannot be ended
// early.
func quoteVar(v string) string {
	if strings.ContainsAny(v, " \t") {
		return "'" + v + "'"
	}
	return v
}
