// Package phone normalises the numbers a PBX reports into E.164.
package phone

import (
	"sort"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Normalizer parses numbers in a default region after stripping the PBX's
// trunk prefixes (an outside-line digit such as 9, an operator code).
type Normalizer struct {
	Region        string   // ISO 3166 two-letter code, e.g. US, RU, GB
	StripPrefixes []string // tried longest first
}

// New returns a Normalizer; prefixes are copied and ordered longest first.
func New(region string, strip []string) *Normalizer {
	p := append([]string(nil), strip...)
	sort.Slice(p, func(i, j int) bool { return len(p[i]) > len(p[j]) })
	return &Normalizer{Region: strings.ToUpper(region), StripPrefixes: p}
}

// E164 returns the number as +CC..., or "" when it is not a valid public
// number (an internal extension, a name, garbage).
func (n *Normalizer) E164(raw string) string {
	s := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '+' {
			return r
		}
		if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
			return -1
		}
		return 'x'
	}, strings.TrimSpace(raw))
	if len(s) < 5 || strings.ContainsRune(s, 'x') || strings.LastIndexByte(s, '+') > 0 {
		return ""
	}
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	candidates := []string{s}
	if !strings.HasPrefix(s, "+") {
		for _, p := range n.StripPrefixes {
			if p != "" && strings.HasPrefix(s, p) && len(s)-len(p) >= 5 {
				candidates = append([]string{s[len(p):]}, candidates...)
				break
			}
		}
	}
	for _, c := range candidates {
		num, err := phonenumbers.Parse(c, n.Region)
		if err != nil || !phonenumbers.IsValidNumber(num) {
			continue
		}
		return phonenumbers.Format(num, phonenumbers.E164)
	}
	return ""
}
