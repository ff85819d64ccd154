package natssink

import (
	"strings"
	"testing"
)

// Values never add a level or a wildcard: whatever a PBX name or an event
// type holds, the rendered subject has the template's levels.
func TestRenderKeepsLevels(t *testing.T) {
	s := MustParseSubject(DefaultSubject)
	cases := []struct{ tenant, pbx, typ, want string }{
		{"default", "pbx1", "call.ringing", "ctibridge.default.pbx1.call_ringing"},
		{"default", "pbx.eu.1", "agent.state", "ctibridge.default.pbx_eu_1.agent_state"},
		{"t>", "*", "a b", "ctibridge.t_._.a_b"},
		{"", "pbx-1_x", ">", "ctibridge._.pbx-1_x._"},
		{"ü", "\x00\r\n", "call.*", "ctibridge.__.___.call__"},
	}
	for _, c := range cases {
		got := s.Render(c.tenant, c.pbx, c.typ)
		if got != c.want {
			t.Errorf("Render(%q, %q, %q) = %q, want %q", c.tenant, c.pbx, c.typ, got, c.want)
		}
		if n := strings.Count(got, "."); n != 3 || strings.ContainsAny(got, "*> ") {
			t.Errorf("%q: %d dots or a wildcard", got, n)
		}
	}
	if f := s.Filter(); f != "ctibridge.*.*.*" {
		t.Errorf("Filter = %q", f)
	}
}

func TestParseSubject(t *testing.T) {
	for _, ok := range []string{DefaultSubject, "cti.<pbx>", "a-b_c.<tenant>-<pbx>.<type>", "fixed"} {
		if _, err := ParseSubject(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for tmpl, want := range map[string]string{
		"":                       "empty",
		"a..b":                   "empty level",
		".a":                     "empty level",
		"a.":                     "empty level",
		"a.*.<type>":             `'*' is not allowed`,
		"a.>":                    "only <tenant>, <pbx> and <type>",
		"a.<account>":            "only <tenant>, <pbx> and <type>",
		"a b.<type>":             `' ' is not allowed`,
		"a.<type":                "only <tenant>, <pbx> and <type>",
		strings.Repeat("a", 201): "longer than 200",
	} {
		_, err := ParseSubject(tmpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSubject(%q) = %v, want %q", tmpl, err, want)
		}
	}
}
