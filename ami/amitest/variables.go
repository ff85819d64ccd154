package amitest

// A model of how Asterisk's manager reads an action, for tests to check
// that what ctibridge sends is read back exactly as built: one action,
// exactly its headers, each Variable header exactly one variable, the
// CallerID exactly its name and number. Written from reading
// main/manager.c (get_input, do_message, __astman_get_header,
// man_do_variable_value, action_originate), main/app.c
// (__ast_app_separate_args), main/callerid.c (ast_callerid_parse,
// ast_shrink_phone_number) and main/pbx_variables.c
// (pbx_builtin_setvar_helper); not a copy of them.

import (
	"errors"
	"fmt"
	"strings"
)

// Header is one "Name: value" line as the manager stores it: the value
// without the blanks after the colon.
type Header struct{ Name, Value string }

// Var is one channel variable an action sets.
type Var struct {
	Name, Value string
	// Function says the name ends in ')': Asterisk calls a dialplan
	// function (CDR(x), SHELL(...)) instead of setting a variable.
	Function bool
	// Inherit is the number of leading '_' (1 or 2): the variable is
	// copied to the channels this one creates.
	Inherit int
}

// Limits of the manager: its input buffer holds a line of at most
// maxLine bytes (1025-byte buffer with its NUL), a message at most
// maxHeaders lines (AST_MAX_MANHEADERS), a Variable header at most
// maxVarsPerHeader name=value items (the rest stays in the last one).
const (
	maxLine          = 1024
	maxHeaders       = 128
	maxVarsPerHeader = 64
)

// ParseAction reads the bytes a client wrote as the manager does: lines
// end at "\r\n" or a bare "\n", an empty line ends the action. It is an
// error when the bytes are not exactly one action, or one the manager
// would refuse (a line too long, too many lines, a NUL).
func ParseAction(frame []byte) ([]Header, error) {
	var hs []Header
	rest := string(frame)
	for {
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			return nil, fmt.Errorf("unterminated line %q", rest)
		}
		line, cut := rest[:i], i+1
		if strings.HasSuffix(line, "\r") {
			line = line[:len(line)-1]
		}
		if len(line)+2 > maxLine {
			return nil, fmt.Errorf("line of %d bytes: the manager discards the action", len(line))
		}
		if strings.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("NUL in %q: the manager cuts the line there", line)
		}
		rest = rest[cut:]
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %q is no header", line)
		}
		hs = append(hs, Header{name, skipBlanks(value)})
	}
	if rest != "" {
		return nil, fmt.Errorf("more after the action: %q", rest)
	}
	if len(hs) > maxHeaders {
		return nil, fmt.Errorf("%d lines: the manager refuses over %d", len(hs), maxHeaders)
	}
	return hs, nil
}

// Get is __astman_get_header: the first header of that name (without
// case), "" when none.
func Get(hs []Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Variables is what astman_get_variables makes of an action's Variable
// headers, in header order: each value split at ',' outside (), [] and
// "", quotes and backslashes removed, each item name=value at its first
// '=' (items without '=' or with an empty name are dropped).
func Variables(hs []Header) []Var {
	var out []Var
	for _, h := range hs {
		if !strings.EqualFold(h.Name, "Variable") {
			continue
		}
		for _, item := range separateArgs(skipBlanks(h.Value), ',', maxVarsPerHeader) {
			name, value, ok := strings.Cut(item, "=")
			if !ok || name == "" {
				continue
			}
			v := Var{Name: name, Value: value, Function: strings.HasSuffix(name, ")")}
			for v.Inherit < 2 && strings.HasPrefix(name[v.Inherit:], "_") {
				v.Inherit++
			}
			out = append(out, v)
		}
	}
	return out
}

// separateArgs is __ast_app_separate_args with remove_chars: split at
// delim outside parentheses, brackets and double quotes; quotes removed; a
// backslash removed and the byte after it kept literally.
func separateArgs(s string, delim byte, arraylen int) []string {
	var out []string
	b := []byte(s)
	paren, bracket, quote := 0, 0, false
	var cur []byte
	i := 0
	for len(out) < arraylen-1 && i < len(b) {
		cur = cur[:0:0]
		done := false
		for ; i < len(b); i++ {
			c := b[i]
			switch {
			case c == '(':
				paren++
			case c == ')':
				if paren > 0 {
					paren--
				}
			case c == '[':
				bracket++
			case c == ']':
				if bracket > 0 {
					bracket--
				}
			case c == '"' && delim != '"':
				quote = !quote
				continue // removed
			case c == '\\':
				i++ // removed; the next byte is literal
				if i < len(b) {
					cur = append(cur, b[i])
				}
				continue
			case c == delim && paren == 0 && !quote && bracket == 0:
				i++
				done = true
			}
			if done {
				break
			}
			cur = append(cur, c)
		}
		out = append(out, string(cur))
		if done && i == len(b) {
			out = append(out, "") // a trailing delimiter makes one more, empty
		}
	}
	if i < len(b) {
		out = append(out, string(b[i:])) // the last one keeps the rest, unsplit
	}
	return out
}

// CallerID is what action_originate makes of a CallerID header
// (ast_callerid_parse, then ast_shrink_phone_number on the number).
func CallerID(v string) (name, number string) {
	in := strip(v)
	quoted := false
	if s := stripQuoted(in); s != in {
		in, quoted = s, true
	}
	var n *string
	if ls := strings.LastIndexByte(in, '<'); ls >= 0 {
		loc := in[ls+1:]
		if le := strings.LastIndexByte(loc, '>'); le >= 0 {
			loc = loc[:le]
		}
		number = loc
		s := stripQuoted(in[:ls])
		n = &s
	} else {
		shrunk := shrinkPhoneNumber(in)
		if !quoted && isPhoneNumber(shrunk) {
			number = shrunk
		} else {
			s := stripQuoted(in)
			n = &s
		}
	}
	if n != nil {
		name = unescapeQuoted(*n)
	}
	return name, shrinkPhoneNumber(number)
}

func skipBlanks(s string) string {
	for len(s) > 0 && s[0] < 33 {
		s = s[1:]
	}
	return s
}

func strip(s string) string {
	s = skipBlanks(s)
	for len(s) > 0 && s[len(s)-1] < 33 {
		s = s[:len(s)-1]
	}
	return s
}

func stripQuoted(s string) string {
	s = strip(s)
	if len(s) > 0 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func unescapeQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			if i >= len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func shrinkPhoneNumber(n string) string {
	var b strings.Builder
	bracketed := 0
	for i := 0; i < len(n); i++ {
		switch c := n[i]; c {
		case '[':
			bracketed++
			b.WriteByte(c)
		case ']':
			bracketed--
			b.WriteByte(c)
		case '-':
			if bracketed != 0 {
				b.WriteByte(c)
			}
		case '.':
			if i+1 == len(n) {
				b.WriteByte(c)
			}
		case '(', ' ', ')':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isPhoneNumber(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !strings.ContainsRune("0123456789*#+", rune(n[i])) {
			return false
		}
	}
	return true
}

// CheckAction asserts frame is exactly one action whose headers, as the
// manager reads them, are want, in order, and whose Variable headers set
// exactly vars, one each, none a function or inherited. The error says
// what differs.
func CheckAction(frame []byte, want []Header, vars []Var) error {
	hs, err := ParseAction(frame)
	if err != nil {
		return err
	}
	if len(hs) != len(want) {
		return fmt.Errorf("%d headers %q, want %d %q", len(hs), hs, len(want), want)
	}
	for i := range hs {
		if hs[i] != want[i] {
			return fmt.Errorf("header %d is %q, want %q", i, hs[i], want[i])
		}
	}
	got := Variables(hs)
	if len(got) != len(vars) {
		return fmt.Errorf("%d variables %+v, want %d %+v", len(got), got, len(vars), vars)
	}
	n := 0
	for _, h := range hs {
		if strings.EqualFold(h.Name, "Variable") {
			n++
		}
	}
	if n != len(got) {
		return fmt.Errorf("%d Variable headers set %d variables", n, len(got))
	}
	for i := range got {
		if got[i] != vars[i] {
			return fmt.Errorf("variable %d is %+v, want %+v", i, got[i], vars[i])
		}
		if got[i].Function || got[i].Inherit > 0 {
			return errors.New("variable " + got[i].Name + " is a function or inherited")
		}
	}
	return nil
}

// Headers builds headers from name, value pairs.
func Headers(kv ...string) []Header {
	hs := make([]Header, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, Header{Name: kv[i], Value: kv[i+1]})
	}
	return hs
}

// Vars builds plain variables from name, value pairs.
func Vars(kv ...string) []Var {
	vs := make([]Var, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		vs = append(vs, Var{Name: kv[i], Value: kv[i+1]})
	}
	return vs
}
