package esltest

// A model of how FreeSWITCH 1.10 reads an originate command, for tests to
// check that what ctibridge sends is read back exactly as built: one leg,
// exactly its variables, the dial target and the other arguments. It
// follows, step by step and on a NUL-terminated byte buffer as the C code
// does, src/mod/applications/mod_commands (originate_function),
// src/switch_ivr_originate.c (switch_ivr_originate,
// switch_ivr_enterprise_originate), src/switch_event.c
// (switch_event_create_brackets) and src/switch_utils.c
// (switch_separate_string, switch_separate_string_string,
// switch_find_end_paren, switch_strip_whitespace). It is a model written
// from reading that source, not a copy of it.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Var is one channel variable as FreeSWITCH parsed it from a dial string.
type Var struct{ Name, Value string }

// Leg is one channel an originate would create.
type Leg struct {
	// Global are the {...} variables of its dial string (after the
	// enterprise <...> ones, which are in Originate.UltraGlobal).
	Global []Var
	// Vars are its own [...] variables.
	Vars []Var
	// Type and Data are the endpoint, split at the first '/':
	// "user/1000" is Type "user", Data "1000".
	Type, Data string
}

// Originate is an originate command as FreeSWITCH reads it.
type Originate struct {
	// DialString is the first argument, as originate_function hands it to
	// switch_ivr_originate (quotes and escapes already removed).
	DialString string
	// Args are the arguments after the dial string (exten, dialplan,
	// context, cid name, cid number, timeout), as split and unquoted.
	Args []string
	// Enterprise says the dial string held ":_:": FreeSWITCH then splits it
	// there before anything else and originates every part at once.
	Enterprise bool
	// UltraGlobal are the <...> variables of an enterprise originate.
	UltraGlobal []Var
	// Legs are every channel FreeSWITCH may create, across ":_:", '|' and
	// ',' separators, in order.
	Legs []Leg
	// NestedVars says "origination_nested_vars=true" is in the dial string
	// (or a true <origination_nested_vars>): FreeSWITCH then sets variables
	// holding "${" instead of refusing them.
	NestedVars bool
	// PartErrors are the parts of an enterprise originate FreeSWITCH could
	// not parse (it dials the others).
	PartErrors []string
}

// maxPeers is MAX_PEERS of switch_ivr_originate.c.
const maxPeers = 128

// ParseOriginate reads cmd, the line that follows "api " or "bgapi " (e.g.
// "originate {a=1}user/1000 5551234 XML default"), as FreeSWITCH does.
func ParseOriginate(cmd string) (*Originate, error) {
	if strings.ContainsAny(cmd, "\r\n\x00") {
		return nil, errors.New("a line break or NUL ends the ESL command line")
	}
	// mod_event_socket: the command name ends at the first space;
	// switch_api_execute strips whitespace around the argument.
	name, arg, _ := strings.Cut(cmd, " ")
	if name != "originate" {
		return nil, fmt.Errorf("command %q, not originate", name)
	}
	arg = strings.Trim(arg, " \t\v\r\n")
	// originate_function: up to 10 blank-separated arguments, 2 to 7 of
	// them used.
	b := newCbuf(arg)
	argv := separateString(b, 0, ' ', 10)
	if len(argv) < 2 || len(argv) > 7 {
		return nil, fmt.Errorf("%d arguments: originate takes 2 to 7", len(argv))
	}
	o := &Originate{DialString: b.str(argv[0])}
	for _, i := range argv[1:] {
		o.Args = append(o.Args, b.str(i))
	}
	if err := o.parseDialString(o.DialString); err != nil {
		return o, err
	}
	return o, nil
}

// ParseDialString reads a dial string as switch_ivr_originate does (as
// att_xfer and bridge hand theirs to it).
func ParseDialString(s string) (*Originate, error) {
	o := &Originate{DialString: s}
	return o, o.parseDialString(s)
}

func (o *Originate) parseDialString(s string) error {
	if !strings.Contains(s, ":_:") {
		return o.originate(newCbuf(s), 0, nil)
	}
	// switch_ivr_enterprise_originate: leading spaces, <...> blocks, then
	// a split at every ":_:", each part a whole originate of its own.
	o.Enterprise = true
	b := newCbuf(s)
	p := b.skipSpaces(0)
	for b.at(p) == '<' {
		next, ok := createBrackets(b, p, '<', '>', ',', &o.UltraGlobal)
		if !ok {
			return errors.New("parse error in <...>")
		}
		p = next
	}
	p = b.skipSpaces(p)
	// Each part runs in its own thread: one that fails to parse does not
	// stop the others.
	for _, part := range separateStringString(b, p, ":_:", maxPeers) {
		if err := o.originate(newCbuf(b.str(part)), 0, o.UltraGlobal); err != nil {
			o.PartErrors = append(o.PartErrors, err.Error())
		}
	}
	return nil
}

// originate is switch_ivr_originate's reading of its dial string: <...>
// and {...} blocks, then '|' (one after another) and ',' (at once)
// separated legs, each with its own [...] blocks.
func (o *Originate) originate(b cbuf, p int, inherited []Var) error {
	p = b.skipSpaces(p)
	if bytes.Contains(bytes.ToLower([]byte(b.str(p))), []byte("origination_nested_vars=true")) {
		o.NestedVars = true
	}
	for _, v := range inherited {
		if strings.EqualFold(v.Name, "origination_nested_vars") && switchTrue(v.Value) {
			o.NestedVars = true
		}
	}
	global := append([]Var(nil), inherited...)
	for b.at(p) == '<' {
		next, ok := createBrackets(b, p, '<', '>', ',', &global)
		if !ok {
			return errors.New("parse error in <...>")
		}
		p = next
	}
	for b.at(p) == '{' {
		next, ok := createBrackets(b, p, '{', '}', ',', &global)
		if !ok {
			return errors.New("parse error in {...}")
		}
		p = next
	}
	global = global[len(inherited):]
	p = b.skipSpaces(p)
	if b.at(p) == 0 {
		return errors.New("no origination URL")
	}
	loop := newCbuf(b.str(p))
	for _, pipe := range separateString(loop, 0, '|', maxPeers) {
		// A ',' inside [...] is a variable separator, not a new leg:
		// FreeSWITCH marks it (1 when quoted or after [^^, 2 otherwise)
		// before splitting at ','.
		end, q, alt := -1, false, false
		for i := pipe; loop.at(i) != 0; i++ {
			if end < 0 && loop.at(i) == '[' {
				end = findEndParen(loop, i, '[', ']')
				alt = loop.at(i+1) == '^' && loop.at(i+2) == '^'
				q = false
			}
			if loop.at(i) == '\'' {
				q = !q
			}
			if end >= 0 && i < end && loop.at(i) == ',' && loop.at(i-1) != '\\' {
				if q || alt {
					loop[i] = quotedEscComma
				} else {
					loop[i] = unquotedEscComma
				}
			}
			if i == end {
				end = -1
			}
		}
		for _, peer := range separateString(loop, pipe, ',', maxPeers) {
			leg := Leg{Global: append([]Var(nil), global...)}
			c := loop.skipSpaces(peer)
			for loop.at(c) == '[' {
				bend := findEndParen(loop, c, '[', ']')
				for i := c + 1; bend >= 0 && i < bend && loop.at(i) != 0; i++ {
					if loop[i] == quotedEscComma {
						loop[i] = ','
					}
				}
				next, ok := createBrackets(loop, c, '[', ']', unquotedEscComma, &leg.Vars)
				if !ok || next == c {
					return errors.New("parse error in [...]")
				}
				c = next
			}
			c = loop.skipSpaces(c)
			leg.Type, leg.Data, _ = strings.Cut(loop.str(c), "/")
			o.Legs = append(o.Legs, leg)
		}
	}
	return nil
}

const (
	quotedEscComma   = 1 // QUOTED_ESC_COMMA
	unquotedEscComma = 2 // UNQUOTED_ESC_COMMA
	escapeMeta       = '\\'
)

// cbuf is a C string: bytes ending with a NUL, cut in place by writing
// NULs, as the C code does.
type cbuf []byte

func newCbuf(s string) cbuf { return append([]byte(s), 0) }

// at is the byte at i, NUL past the end (where C would read its
// terminator, or worse).
func (b cbuf) at(i int) byte {
	if i < 0 || i >= len(b) {
		return 0
	}
	return b[i]
}

// str is the C string starting at i.
func (b cbuf) str(i int) string {
	if i < 0 || i >= len(b) {
		return ""
	}
	n := bytes.IndexByte(b[i:], 0)
	return string(b[i : i+n])
}

func (b cbuf) skipSpaces(i int) int {
	for b.at(i) == ' ' {
		i++
	}
	return i
}

func (b cbuf) indexFrom(i int, c byte) int {
	for ; b.at(i) != 0; i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// findEndParen is switch_find_end_paren: the close matching the open at
// s (after spaces), nesting counted, or -1.
func findEndParen(b cbuf, s int, open, close byte) int {
	s = b.skipSpaces(s)
	if b.at(s) != open {
		return -1
	}
	depth := 1
	e := s + 1
	for ; b.at(e) != 0; e++ {
		if b[e] == open && open != close {
			depth++
		} else if b[e] == close {
			depth--
			if depth == 0 {
				break
			}
		}
	}
	if b.at(e) == close {
		return e
	}
	return -1
}

// strchrStrict is switch_strchr_strict: the first find in b from i when
// only allowed bytes come before it; -1 when another byte does or the
// string is empty; the terminator's index when it ends first.
func strchrStrict(b cbuf, i int, find byte, allowed string) int {
	if b.at(i) == 0 {
		return -1
	}
	for ; b.at(i) != 0; i++ {
		if b[i] == find {
			break
		}
		if !strings.ContainsRune(allowed, rune(b[i])) {
			return -1
		}
	}
	return i
}

// createBrackets is switch_event_create_brackets: the variables of the
// block opening at data, added to vars, and where the rest begins.
func createBrackets(b cbuf, data int, a, z, c byte, vars *[]Var) (int, bool) {
	end := findEndParen(b, data, a, z)
	// The C code then looks for another block right after this one; its
	// search starts at the close itself, which is never a space nor a,
	// so it never moves end. Kept for fidelity.
	for checkA := end; checkA >= 0; {
		checkB := strchrStrict(b, checkA, a, " ")
		if checkB < 0 {
			break
		}
		if checkB = findEndParen(b, checkB, a, z); checkB < 0 {
			break
		}
		checkA, end = checkB, checkB
	}
	if end < 0 {
		return 0, false
	}
	next := end
	vdata := data + 1 // past the open: callers start at it
	b[end] = 0
	end++
	vnext := -1
	for {
		if next >= 0 {
			b[next] = 0
			next++
			if pnext := strchrStrict(b, next, a, " "); pnext >= 0 {
				next = pnext + 1
			}
			vnext = findEndParen(b, next, a, z)
			next = -1
		}
		if vdata >= 0 && b.at(vdata) == '^' && b.at(vdata+1) == '^' {
			vdata += 2
			c = b.at(vdata)
			vdata++
		}
		for _, item := range separateString(b, vdata, c, 1024) {
			kv := separateString(b, item, '=', 2)
			if len(kv) == 2 {
				*vars = append(*vars, Var{b.str(kv[0]), b.str(kv[1])})
			}
		}
		if vnext < 0 {
			break
		}
		vdata, vnext = vnext, -1
	}
	return end, true
}

// separateString is switch_separate_string: the starts of the parts of
// the C string at buf, cut in place, unquoted and unescaped. "^^X" at the
// start makes X the separator.
func separateString(b cbuf, buf int, delim byte, arraylen int) []int {
	if buf < 0 || buf >= len(b) {
		return nil
	}
	if b.at(buf) == '^' && b.at(buf+1) == '^' {
		p := buf + 2
		if b.at(p) != 0 && b.at(p+1) != 0 {
			buf = p
			delim = b[buf]
			buf++
		}
	}
	var parts []int
	if delim == ' ' {
		parts = separateBlank(b, buf, arraylen)
		for i, s := range parts {
			parts[i] = cleanupSeparated(b, s, 0)
		}
	} else {
		parts = separateChar(b, buf, delim, arraylen)
		for i, s := range parts {
			parts[i] = cleanupSeparated(b, s, delim)
		}
	}
	return parts
}

// separateChar is separate_string_char_delim: a quote counts only when
// another follows; a backslash keeps the next byte.
func separateChar(b cbuf, ptr int, delim byte, arraylen int) []int {
	var parts []int
	start, inQuotes := true, false
	for b.at(ptr) != 0 && len(parts) < arraylen {
		if start {
			parts = append(parts, ptr)
			start = false
			continue
		}
		switch {
		case b[ptr] == escapeMeta:
			ptr++
		case b[ptr] == '\'' && (inQuotes || b.indexFrom(ptr+1, '\'') >= 0):
			inQuotes = !inQuotes
		case b[ptr] == delim && !inQuotes:
			b[ptr] = 0
			start = true
		}
		ptr++
	}
	return parts
}

// separateBlank is separate_string_blank_delim: runs of spaces separate,
// every quote toggles quoting.
func separateBlank(b cbuf, ptr int, arraylen int) []int {
	const (
		start = iota
		skipInitial
		findDelim
		skipEnding
	)
	var parts []int
	state, inQuotes := start, false
	for b.at(ptr) != 0 && len(parts) < arraylen {
		switch state {
		case start:
			parts = append(parts, ptr)
			state = skipInitial
		case skipInitial:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = findDelim
			}
		case findDelim:
			switch {
			case b[ptr] == escapeMeta:
				ptr++
			case b[ptr] == '\'':
				inQuotes = !inQuotes
			case b[ptr] == ' ' && !inQuotes:
				b[ptr] = 0
				state = skipEnding
			}
			ptr++
		case skipEnding:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = start
			}
		}
	}
	return parts
}

// cleanupSeparated is cleanup_separated_string: leading spaces and
// unquoted trailing ones dropped, quotes removed, backslash escapes
// (\' \" \\ \<delim> \n \r \t \s) decoded, in place.
func cleanupSeparated(b cbuf, str int, delim byte) int {
	ptr := b.skipSpaces(str)
	start, dest, end := ptr, ptr, -1
	inQuotes := false
	for ; b.at(ptr) != 0; ptr++ {
		esc := false
		if b[ptr] == escapeMeta {
			e := b.at(ptr + 1)
			keep := e == '\'' || e == '"' || (delim != 0 && e == delim) || e == escapeMeta
			if u := unescapeChar(e); keep || u != e {
				if !keep {
					e = u
				}
				ptr++
				b[dest] = e
				dest++
				end = dest
				esc = true
			}
		}
		if !esc {
			if b[ptr] == '\'' && (inQuotes || b.indexFrom(ptr+1, '\'') >= 0) {
				if inQuotes = !inQuotes; inQuotes {
					end = dest
				}
			} else {
				ch := b[ptr]
				b[dest] = ch
				dest++
				if ch != ' ' || inQuotes {
					end = dest
				}
			}
		}
	}
	if end >= 0 {
		b[end] = 0
	}
	return start
}

// switchTrue is switch_true: the words FreeSWITCH reads as true, or a
// non-zero number.
func switchTrue(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	n := 0
	_, err := fmt.Sscanf(v, "%d", &n)
	return err == nil && n != 0
}

func unescapeChar(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 's':
		return ' '
	}
	return c
}

// separateStringString is switch_separate_string_string: a plain split at
// every occurrence of delim, in place.
func separateStringString(b cbuf, buf int, delim string, arraylen int) []int {
	parts := []int{buf}
	for len(parts) < arraylen {
		last := parts[len(parts)-1]
		i := strings.Index(b.str(last), delim)
		if i < 0 {
			break
		}
		b[last+i] = 0
		parts = append(parts, last+i+len(delim))
	}
	return parts
}

// CheckOriginate asserts that FreeSWITCH reads cmd as exactly one leg to
// dial (Type/Data), with exactly vars as its variables (in order, none of
// them per leg, none set to expand "${...}"), and args as the rest of the
// arguments. The error says what differs.
func CheckOriginate(cmd string, vars []Var, dial string, args ...string) error {
	o, err := ParseOriginate(cmd)
	if err != nil {
		return fmt.Errorf("%v: %q", err, cmd)
	}
	if err := o.CheckSingle(vars, dial); err != nil {
		return fmt.Errorf("%v: %q", err, cmd)
	}
	if !equal(o.Args, args) {
		return fmt.Errorf("arguments %q, want %q: %q", o.Args, args, cmd)
	}
	return nil
}

// CheckSingle asserts the dial string makes exactly one leg, to dial, with
// exactly vars.
func (o *Originate) CheckSingle(vars []Var, dial string) error {
	switch {
	case o.Enterprise:
		return fmt.Errorf("an enterprise originate (\":_:\") of %d legs (%d parts unparsed)", len(o.Legs), len(o.PartErrors))
	case len(o.Legs) != 1:
		return fmt.Errorf("%d legs, want 1", len(o.Legs))
	case len(o.UltraGlobal) > 0:
		return fmt.Errorf("<...> variables %q", o.UltraGlobal)
	case o.NestedVars:
		return errors.New("origination_nested_vars=true: \"${\" would expand")
	}
	leg := o.Legs[0]
	if len(leg.Vars) > 0 {
		return fmt.Errorf("per-leg [...] variables %q", leg.Vars)
	}
	if got := leg.Type + "/" + leg.Data; got != dial || leg.Data == "" {
		return fmt.Errorf("dials %q, want %q", got, dial)
	}
	if len(leg.Global) != len(vars) {
		return fmt.Errorf("%d variables %q, want %d %q", len(leg.Global), leg.Global, len(vars), vars)
	}
	for i, v := range leg.Global {
		if v != vars[i] {
			return fmt.Errorf("variable %d is %q=%q, want %q=%q", i, v.Name, v.Value, vars[i].Name, vars[i].Value)
		}
		if strings.Contains(v.Value, "${") {
			return fmt.Errorf("variable %s holds \"${\"", v.Name)
		}
	}
	return nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Vars builds variables from name, value pairs.
func Vars(kv ...string) []Var {
	vs := make([]Var, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		vs = append(vs, Var{Name: kv[i], Value: kv[i+1]})
	}
	return vs
}
