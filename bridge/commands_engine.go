package bridge

import (
	"regexp"
	"strings"
	"time"
)

// ENOTIMPLEMENTED is for a command the paired PBX cannot carry out (e.g.
// hold over Asterisk's manager interface): the HTTP layer answers 501 with
// the reason rather than pretend.
const ENOTIMPLEMENTED = "not_implemented"

// Per-field rules for values that reach a PBX. They are stricter than
// CheckValue: each value lands in a specific place of an AMI header or an
// ESL command line (a channel name, a dialplan extension, an originate
// variable list), where a '/', '@', ',', '{' or a space would change what
// the PBX is asked to do.
var (
	// The first character is never '-' or '_': uuid_transfer reads a
	// leading '-' as a flag (-bleg, -both), Asterisk a leading '_' as a
	// pattern.
	reExtension = regexp.MustCompile(`^[0-9A-Za-z*#+][0-9A-Za-z*#+_.-]{0,31}$`)
	reNumber    = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)
	reDTMF      = regexp.MustCompile(`^[0-9A-D*#]{1,64}$`)
	reQueue     = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
	reVarName   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
)

// CheckExtension validates an extension (an agent, a transfer target).
func CheckExtension(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reExtension.MatchString(v) {
		return FieldError(field, "must be an extension: 1 to 32 of 0-9 A-Z a-z * # + _ . -, not starting with _ or -")
	}
	return nil
}

// CheckNumber validates a phone number to dial.
func CheckNumber(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reNumber.MatchString(v) {
		return FieldError(field, "must be a phone number: an optional + then 1 to 32 of 0-9 * #")
	}
	return nil
}

// CheckDTMF validates DTMF digits.
func CheckDTMF(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reDTMF.MatchString(v) {
		return FieldError(field, "must be 1 to 64 DTMF digits: 0-9 A-D * #")
	}
	return nil
}

// CheckQueue validates a queue name (Asterisk "support", mod_callcenter
// "support@default").
func CheckQueue(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reQueue.MatchString(v) {
		return FieldError(field, "must be a queue name: 1 to 64 of A-Z a-z 0-9 _ . @ -")
	}
	return nil
}

// CheckVarName validates a channel variable's name: no dialplan functions
// (CDR(...)), which would let a caller write more than a variable, and no
// inheritance prefix (_NAME), which would spread it to every channel the
// call creates.
func CheckVarName(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reVarName.MatchString(v) {
		return FieldError(field, "must be a variable name: a letter then up to 63 letters, digits or _")
	}
	return nil
}

// ReservedNames says which channel variables a PBX acts on (runs a
// command, changes routing or media), so a CRM may not set them: a name is
// reserved when it starts with one of Prefixes or holds one of Words as an
// _-separated word, compared case-insensitively (FreeSWITCH looks
// variables up without case).
type ReservedNames struct {
	Prefixes []string
	Words    []string
}

// Check refuses a reserved name, naming it.
func (r ReservedNames) Check(field, name string) error {
	low := strings.ToLower(name)
	for _, p := range r.Prefixes {
		if strings.HasPrefix(low, p) {
			return FieldError(field, "%q is a variable the PBX acts on (names starting %q are reserved); use a name of your own, e.g. crm_%s", name, p, low)
		}
	}
	for _, w := range strings.Split(low, "_") {
		for _, x := range r.Words {
			if w == x {
				return FieldError(field, "%q is reserved: a variable naming %q may make the PBX run something; use a name of your own", name, x)
			}
		}
	}
	return nil
}

// CheckText validates free text (a caller id name, a pause reason): one
// line, at most max bytes, none of the characters in deny.
func CheckText(field, v string, max int, deny string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if len(v) > max {
		return FieldError(field, "must be at most %d bytes", max)
	}
	if i := strings.IndexAny(v, deny); i >= 0 {
		return FieldError(field, "must not contain %q", v[i:i+1])
	}
	return nil
}

// CallerID is a parsed caller id: `"Name" <number>`, `Name <number>` or a
// bare number.
type CallerID struct {
	Name   string
	Number string
}

var reCallerID = regexp.MustCompile(`^\s*(?:"([^"]*)"|([^"<]*?))\s*<([^<>]*)>\s*$`)

// ParseCallerID reads a caller id as CRMs write it. The number must be a
// phone number or an extension; the name is free text without quotes or
// angle brackets.
func ParseCallerID(field, v string) (CallerID, error) {
	if err := CheckValue(field, v); err != nil {
		return CallerID{}, err
	}
	var cid CallerID
	if m := reCallerID.FindStringSubmatch(v); m != nil {
		cid.Name, cid.Number = m[1]+m[2], strings.TrimSpace(m[3])
	} else {
		cid.Number = strings.TrimSpace(v)
	}
	if err := CheckExtension(field, cid.Number); err != nil {
		return CallerID{}, FieldError(field, `must be a number or "Name" <number> with a number of 0-9 A-Z a-z * # + _ . -`)
	}
	if err := CheckText(field, cid.Name, 64, `"<>\`); err != nil {
		return CallerID{}, err
	}
	return cid, nil
}

// Template fills a dial string template such as "PJSIP/{agent}" or
// "Local/{agent}@from-internal". Values are validated by the caller.
func Template(tmpl string, kv ...string) string {
	pairs := make([]string, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, "{"+kv[i]+"}", kv[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// ForgetOriginate drops a click-to-call registered with ExpectOriginate
// that the PBX refused: none of its channels will come, and the entries
// would otherwise stay for the life of the process.
func (t *Tracker) ForgetOriginate(o *Originate) {
	for _, k := range []string{o.AgentChannelID, o.OtherChannelID, "action:" + o.ActionID} {
		if t.originates[k] == o {
			delete(t.originates, k)
		}
	}
}

// PruneOriginates drops click-to-calls requested before cutoff. An entry
// is looked up only when its channel first appears, which happens while
// the agent's phone rings (at most minutes) or never; the tracker itself
// keeps them forever.
func (t *Tracker) PruneOriginates(cutoff time.Time) int {
	n := 0
	for k, o := range t.originates {
		if o.RequestedAt.Before(cutoff) {
			delete(t.originates, k)
			n++
		}
	}
	return n
}

// PendingOriginate returns the click-to-call registered for a conversation
// that the store does not know yet (no channel of it has been committed).
func (t *Tracker) PendingOriginate(conversationID string) (Originate, bool) {
	for _, o := range t.originates {
		if o.ConversationID == conversationID {
			return *o, true
		}
	}
	return Originate{}, false
}
