package esltest

import (
	"reflect"
	"strings"
	"testing"
)

const (
	uuidA = "9c1cc113-0321-49dc-86d2-19ef7c225839"
	base  = "originate {origination_uuid=" + uuidA + ",originate_timeout=30"
)

// The model reads the injection confirmed on FreeSWITCH 1.10.12 as
// FreeSWITCH did: the ":_:" in a quoted variable value splits the whole
// dial string first, and the second part is a leg of its own whose
// [api_on_originate=...] runs a shell command.
func TestParseOriginateEnterpriseInjection(t *testing.T) {
	cmd := base + ",crm_ticket='x:_:[api_on_originate=system touch pwned]loopback/9196/default|'}user/100 5551234 XML default"
	o, err := ParseOriginate(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Enterprise || len(o.PartErrors) != 1 { // the first part's {... never closes
		t.Fatalf("enterprise %v, part errors %q", o.Enterprise, o.PartErrors)
	}
	want := []Leg{
		{Vars: []Var{{"api_on_originate", "system touch pwned"}}, Type: "loopback", Data: "9196/default"},
		{Type: "}user", Data: "100"},
	}
	if !reflect.DeepEqual(o.Legs, want) {
		t.Fatalf("legs %+v", o.Legs)
	}
	if !reflect.DeepEqual(o.Args, []string{"5551234", "XML", "default"}) {
		t.Fatalf("args %q", o.Args)
	}
	if err := CheckOriginate(cmd, nil, "user/100", "5551234", "XML", "default"); err == nil || !strings.Contains(err.Error(), "enterprise") {
		t.Fatalf("check: %v", err)
	}
}

// What ctibridge sends reads back as one leg with exactly its variables;
// each metacharacter in a value changes what FreeSWITCH reads, and the
// check says so.
func TestCheckOriginate(t *testing.T) {
	vars := []Var{{"origination_uuid", uuidA}, {"originate_timeout", "30"}, {"origination_caller_id_number", "+15550100"},
		{"origination_caller_id_name", "Sales Desk"}, {"crm_id", "x y"}, {"crm_order", "42"}}
	good := base + ",origination_caller_id_number=+15550100,origination_caller_id_name='Sales Desk',crm_id='x y',crm_order=42}user/1000 +74954451120 XML default"
	if err := CheckOriginate(good, vars, "user/1000", "+74954451120", "XML", "default"); err != nil {
		t.Fatal(err)
	}
	one := []Var{{"origination_uuid", uuidA}, {"originate_timeout", "30"}}
	for _, tc := range []struct{ value, why string }{
		{"a:_:b", "enterprise"},
		{"a}x|y{", "2 legs"}, // inside {...} a '|' is text; closing it first makes it a separator
		{"a,origination_uuid=evil", "4 variables"},
		{"a}[x=y]loopback/1", "per-leg"},
		{"a{b", "parse error"},
		{"'a b'c", "variable 2"}, // read as "a bc"
		{`a\,b`, "variable 2"},   // read as "a,b"
		{"${system(id)}", "${"},
		{"1,origination_nested_vars=true", "nested"},
		{"a b", "parse error"}, // unquoted, the space ends the dial string in the middle of {...}
		// Read as written in this place ("^^" switches separators only at
		// the start of a list, '=' splits only once), yet still outside
		// the allowlist.
		{"^^:a", ""},
		{"a=b", ""},
		{"a|b", ""},
	} {
		cmd := base + ",crm_x=" + tc.value + "}user/100 5551234 XML default"
		want := append(one[:2:2], Var{"crm_x", tc.value})
		err := CheckOriginate(cmd, want, "user/100", "5551234", "XML", "default")
		if tc.why == "" && err != nil || tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("%q: %v, want an error about %q", tc.value, err, tc.why)
		}
	}
	// The quoting ctibridge uses for a space keeps the value whole.
	if err := CheckOriginate(base+",crm_x='a b'}user/100 5551234 XML default", append(one[:2:2], Var{"crm_x", "a b"}),
		"user/100", "5551234", "XML", "default"); err != nil {
		t.Fatal(err)
	}
	// "^^X" switches the separator of a {...} list.
	o, err := ParseDialString("{^^:a=1,2:b=3}user/1")
	if err != nil || !reflect.DeepEqual(o.Legs[0].Global, []Var{{"a", "1,2"}, {"b", "3"}}) {
		t.Fatalf("%+v %v", o, err)
	}
	// Ultra-global <...> and several {...} blocks.
	o, err = ParseDialString("<u=1>{a=1}{b=2}[c=3,d=4]sofia/gw/x,user/2")
	if err != nil || len(o.Legs) != 2 || !reflect.DeepEqual(o.Legs[0], Leg{Global: []Var{{"u", "1"}, {"a", "1"}, {"b", "2"}},
		Vars: []Var{{"c", "3"}, {"d", "4"}}, Type: "sofia", Data: "gw/x"}) {
		t.Fatalf("%+v %v", o, err)
	}
	// The exten argument: "&app(...)" runs an application on the leg.
	if err := CheckOriginate("originate user/1 &park()", nil, "user/1", "5551234"); err == nil {
		t.Fatal("an application as the exten passed")
	}
	// Not originate, a line break, too many arguments.
	for _, cmd := range []string{"uuid_kill " + uuidA, "originate user/1 1\n\napi hupall", "originate a b c d e f g h"} {
		if _, err := ParseOriginate(cmd); err == nil {
			t.Errorf("%q parsed", cmd)
		}
	}
}
