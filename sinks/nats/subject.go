package natssink

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/ctibridge/ctibridge/bridge"
)

// DefaultSubject is the subject template: one stream can hold a whole fleet,
// and a consumer filters by tenant, PBX or event type with wildcards.
const DefaultSubject = "ctibridge.<tenant>.<pbx>.<type>"

// DefaultTenant is the tenant token of the operator's events (no tenant);
// bridge reserves the name, so no tenant shares its subjects.
const DefaultTenant = bridge.ReservedTenant

// placeholders are the values a subject template may name.
var placeholders = []string{"<tenant>", "<pbx>", "<type>"}

// Subject is a parsed subject template.
type Subject struct {
	tmpl string
}

// ParseSubject checks a template: dot-separated levels, each made of
// subject-safe characters (letters, digits, - and _) and the placeholders
// <tenant>, <pbx> and <type>. Wildcards and empty levels are refused: a
// publish subject names one place.
func ParseSubject(tmpl string) (Subject, error) {
	if tmpl == "" {
		return Subject{}, errors.New("is empty")
	}
	if len(tmpl) > 200 {
		return Subject{}, errors.New("is longer than 200 characters")
	}
	for _, level := range strings.Split(tmpl, ".") {
		if level == "" {
			return Subject{}, fmt.Errorf("%q has an empty level (two dots, or a dot at an end)", tmpl)
		}
		rest := level
		for _, p := range placeholders {
			rest = strings.ReplaceAll(rest, p, "")
		}
		for _, r := range rest {
			if !safe(r) {
				if r == '<' || r == '>' {
					return Subject{}, fmt.Errorf("%q: only <tenant>, <pbx> and <type> may be placeholders", tmpl)
				}
				return Subject{}, fmt.Errorf("%q: %q is not allowed in a subject (letters, digits, - and _ between dots)", tmpl, r)
			}
		}
	}
	return Subject{tmpl: tmpl}, nil
}

// MustParseSubject is ParseSubject for constants.
func MustParseSubject(tmpl string) Subject {
	s, err := ParseSubject(tmpl)
	if err != nil {
		panic(err)
	}
	return s
}

func (s Subject) String() string { return s.tmpl }

// Render fills the template. Each value is reduced to subject-safe
// characters first (Token), so an event type such as call.ringing, or a
// PBX name with dots, stars, > or spaces, stays inside its own level.
func (s Subject) Render(tenant, pbx, eventType string) string {
	return strings.NewReplacer("<tenant>", Token(tenant), "<pbx>", Token(pbx), "<type>", Token(eventType)).Replace(s.tmpl)
}

// Filter is the template with every level that holds a placeholder made a
// wildcard: the subjects a stream must capture to take every event.
func (s Subject) Filter() string {
	levels := strings.Split(s.tmpl, ".")
	for i, l := range levels {
		if strings.Contains(l, "<") {
			levels[i] = "*"
		}
	}
	return strings.Join(levels, ".")
}

// Covers reports whether a stream subject filter captures every subject
// pattern matches (pattern may hold * and a last >, as a Filter does).
func Covers(filter, pattern string) bool {
	f, p := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, tok := range p {
		switch {
		case i >= len(f):
			return false
		case f[i] == ">":
			return true
		case tok == ">":
			return false
		case f[i] != "*" && f[i] != tok:
			return false
		}
	}
	return len(f) == len(p)
}

// Token maps a value to one subject level: letters, digits, - and _ stay,
// anything else (., *, >, spaces, non-ASCII) becomes _. Distinct values may
// map to one token (a.b and a_b); the payload carries the exact ones.
func Token(v string) string {
	if v == "" {
		return "_"
	}
	b := []byte(v)
	for i, c := range b {
		if !safe(rune(c)) {
			b[i] = '_'
		}
	}
	return string(b)
}

func safe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// TenantOf is the tenant an event belongs to: its own (the tenant rules,
// README "Tenants"), DefaultTenant for the operator's.
func TenantOf(r bridge.Record) string { return cmp.Or(bridge.RecordTenant(r), DefaultTenant) }
