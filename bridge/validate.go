package bridge

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The allowlists every value a CRM sends must pass before it can reach a
// PBX command, and the helpers that read them.

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
		return FieldError(field, "must be an extension: 1 to 32 of 0-9 A-Z a-z * # + _ . -, the first one of 0-9 A-Z a-z * # +")
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
// call creates. A click-to-call variable must also be in the namespace
// (CheckVariables).
func CheckVarName(field, v string) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if !reVarName.MatchString(v) {
		return FieldError(field, "must be a variable name: a letter then up to 63 letters, digits or _")
	}
	return nil
}

// Click-to-call variables live in a namespace: only names starting with a
// configured prefix (commands.variable_prefix) reach the PBX. Both PBXs act
// on some of their channel variables (FreeSWITCH api_on_answer runs a
// command, Asterisk MONITOR_EXEC a shell), and no list of those stays
// complete across versions and modules; a prefix neither PBX uses is.
const (
	DefaultVariablePrefix = "crm_"
	MaxVariables          = 32
)

// The prefix is lowercase (FreeSWITCH compares variable names without
// case, Asterisk with it: a lowercase prefix is the same namespace on
// both) and starts with a letter, so no name in it is an Asterisk function
// (CDR(x)) or an inherited variable (_X, __X).
var reVarPrefix = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}_$`)

// pbxNamespaces are prefixes the PBXs use for variables they act on: a
// configured prefix may not be one, or the namespace would hand them to
// CRMs (a check on the administrator's choice; CRMs are held by the
// prefix).
var pbxNamespaces = []string{"api_", "bridge_", "exec_", "execute_", "hangup_", "origination_", "originate_",
	"originator_", "nibble_", "process_", "session_", "sip_", "rtp_", "transfer_", "park_", "record_",
	"recording_", "playback_", "group_", "leg_", "loopback_", "media_", "outbound_", "presence_", "cc_",
	"fifo_", "conference_", "valet_", "effective_", "export_", "limit_", "fax_", "t38_", "ringback_"}

// CheckVariablePrefix validates the namespace of click-to-call variables.
func CheckVariablePrefix(field, prefix string) error {
	if !reVarPrefix.MatchString(prefix) {
		return FieldError(field, "must be a lowercase letter, up to 15 lowercase letters or digits, then _ (e.g. %q), got %q", DefaultVariablePrefix, prefix)
	}
	for _, p := range pbxNamespaces {
		if prefix == p {
			return FieldError(field, "%q is a prefix of variables the PBX acts on; choose one of your own (e.g. %q)", prefix, DefaultVariablePrefix)
		}
	}
	return nil
}

// CheckVariables validates a click-to-call's variables: at most
// MaxVariables, each name the prefix then 1 or more of A-Z a-z 0-9 _ (at
// most 64 bytes in all), each value CheckVarValue, and no two names that
// differ only in case (FreeSWITCH would keep one). The first bad one in
// name order is reported, so the answer is the same every time.
func CheckVariables(prefix string, vars map[string]string) error {
	if err := CheckVariablePrefix("commands.variable_prefix", prefix); err != nil {
		return Errorf(EINTERNAL, "click-to-call variables refused: commands.variable_prefix %s", ErrorMessage(err))
	}
	if len(vars) > MaxVariables {
		return FieldError("variables", "must hold at most %d variables", MaxVariables)
	}
	names := slices.Sorted(maps.Keys(vars))
	seen := make(map[string]string, len(names))
	for _, k := range names {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			return FieldError("variables", "%q is outside the variable namespace: a name must start with %q (commands.variable_prefix) and go on, e.g. %q", k, prefix, prefix+"ticket")
		}
		if len(k) > 64 || !reVarRest.MatchString(rest) {
			return FieldError("variables", "%q must be %q then letters, digits or _ (at most 64 bytes in all)", k, prefix)
		}
		low := strings.ToLower(k)
		if other, dup := seen[low]; dup {
			return FieldError("variables", "%q and %q differ only in case: FreeSWITCH reads them as one variable", other, k)
		}
		seen[low] = k
		if err := CheckVarValue("variables."+k, vars[k]); err != nil {
			return err
		}
	}
	return nil
}

var reVarRest = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Free text that reaches a PBX command (a variable's value, a caller id
// name, a queue member's name, a pause reason) is held to one safe set:
// letters, digits, the space and - _ . @ + / # *. Nothing else, because
// every other ASCII punctuation character means something to a parser on
// the way: FreeSWITCH's dial string (":_:" a new originate, '|' and ','
// more legs, '[' '{' '<' variable blocks, "^^" a new separator, quotes and
// '\' for quoting, '=' a new variable, "${" expansion), its api argument
// splitting (quotes, '\'), Asterisk's Variable header (',' a new variable
// outside () [] "", '"' and '\' removed), app_queue's persistent members
// (',' '|' ';' separate members and fields). Letters are any Unicode
// letter or combining mark in valid UTF-8 (names are not only English):
// every byte of a multi-byte UTF-8 character is 0x80 or above, and none of
// those parsers gives such a byte any meaning. No leading or trailing
// space: FreeSWITCH trims it from a variable's value.
const safeTextPunct = "-_.@+/#*"

// SafeTextRule says in words what CheckSafeText allows, for errors and docs.
const SafeTextRule = "letters, digits, spaces and - _ . @ + / # *, not starting or ending with a space"

// CheckSafeText validates optional free text that reaches a PBX: empty,
// or at most max bytes of the safe set.
func CheckSafeText(field, v string, max int) error {
	if err := CheckValue(field, v); err != nil {
		return err
	}
	if len(v) > max {
		return FieldError(field, "must be at most %d bytes", max)
	}
	if !utf8.ValidString(v) {
		return FieldError(field, "must be valid UTF-8")
	}
	for _, r := range v {
		if !safeRune(r) {
			return FieldError(field, "must not contain %q: only %s", r, SafeTextRule)
		}
	}
	if strings.HasPrefix(v, " ") || strings.HasSuffix(v, " ") {
		return FieldError(field, "must not start or end with a space")
	}
	return nil
}

// CheckVarValue validates a click-to-call variable's value: 1 to 256
// bytes of the safe set. Empty is refused: FreeSWITCH drops a variable
// without a value, so the call would not carry what the CRM was told.
func CheckVarValue(field, v string) error {
	if v == "" {
		return FieldError(field, "must not be empty (omit the variable instead)")
	}
	return CheckSafeText(field, v, 256)
}

func safeRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == ' ':
		return true
	case r < utf8.RuneSelf:
		return strings.ContainsRune(safeTextPunct, r)
	}
	return unicode.IsLetter(r) || unicode.In(r, unicode.Mn, unicode.Mc)
}

// CheckText validates free text that stays in ctibridge or reaches a PBX
// only through a stricter rule (a filter, a key): one line, at most max
// bytes, none of the characters in deny.
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
// phone number or an extension; the name, at most 64 bytes of the safe set
// (CheckSafeText): it goes into an originate variable on FreeSWITCH and a
// CallerID header on Asterisk.
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
		return CallerID{}, FieldError(field, `must be a number or "Name" <number>, the number 1 to 32 of 0-9 A-Z a-z * # + _ . -, the first one of 0-9 A-Z a-z * # +`)
	}
	if err := CheckSafeText(field, cid.Name, 64); err != nil {
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
