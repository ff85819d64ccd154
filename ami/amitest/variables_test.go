package amitest_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/ami/amitest"
)

// The model splits a Variable header as manager.c does: what a value with
// ',' '"' '\' '(' '[' or '=' turns into.
func TestVariablesModel(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []amitest.Var
	}{
		{"crm_a=1", []amitest.Var{{Name: "crm_a", Value: "1"}}},
		{"crm_a=1,CDR(accountcode)=x", []amitest.Var{{Name: "crm_a", Value: "1"}, {Name: "CDR(accountcode)", Value: "x", Function: true}}},
		{"crm_a=1,__X=2", []amitest.Var{{Name: "crm_a", Value: "1"}, {Name: "__X", Value: "2", Inherit: 2}}},
		{`crm_a="x,y"`, []amitest.Var{{Name: "crm_a", Value: "x,y"}}},
		{`crm_a=x\,y`, []amitest.Var{{Name: "crm_a", Value: "x,y"}}},
		{"crm_a=f(x,y)", []amitest.Var{{Name: "crm_a", Value: "f(x,y)"}}},
		{"crm_a=[x,y]", []amitest.Var{{Name: "crm_a", Value: "[x,y]"}}},
		{"crm_a=b=c", []amitest.Var{{Name: "crm_a", Value: "b=c"}}},
		{"crm_a", nil},
		{"=x,crm_a=", []amitest.Var{{Name: "crm_a", Value: ""}}},
		{"  crm_a=1 ", []amitest.Var{{Name: "crm_a", Value: "1 "}}},
	} {
		hs, err := amitest.ParseAction([]byte("Action: Originate\r\nVariable: " + tc.value + "\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := amitest.Variables(hs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.value, got, tc.want)
		}
	}
	// At most 64 items a header: the 64th keeps the rest, unsplit.
	items := make([]string, 70)
	for i := range items {
		items[i] = "v=1"
	}
	hs, _ := amitest.ParseAction([]byte("Action: Originate\r\nVariable: " + strings.Join(items, ",") + "\r\n\r\n"))
	if got := amitest.Variables(hs); len(got) != 64 || got[63].Value != strings.Repeat("1,v=", 6)+"1" {
		t.Fatalf("%d variables, last %+v", len(got), got[len(got)-1])
	}
}

func TestParseAction(t *testing.T) {
	hs, err := amitest.ParseAction([]byte("Action: Originate\r\nCallerID:   \"A\" <1>\nX: a: b\r\n\r\n"))
	if err != nil || !reflect.DeepEqual(hs, []amitest.Header{{"Action", "Originate"}, {"CallerID", `"A" <1>`}, {"X", "a: b"}}) {
		t.Fatalf("%q %v", hs, err)
	}
	for _, bad := range []string{
		"Action: Originate\r\n",                                             // unterminated
		"Action: Originate\r\n\r\nAction: Hangup\r\n\r\n",                   // two actions
		"Action: Originate\r\nbad line\r\n\r\n",                             // no header
		"Action: Originate\r\nX: " + strings.Repeat("x", 1020) + "\r\n\r\n", // too long
		"Action: Originate\r\nX: a\x00b\r\n\r\n",
	} {
		if _, err := amitest.ParseAction([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if err := amitest.CheckAction([]byte("Action: Originate\r\nVariable: crm_a=1,crm_b=2\r\n\r\n"),
		[]amitest.Header{{"Action", "Originate"}, {"Variable", "crm_a=1,crm_b=2"}}, []amitest.Var{{Name: "crm_a", Value: "1"}}); err == nil {
		t.Fatal("two variables in one header passed")
	}
}

func TestCallerIDModel(t *testing.T) {
	for _, tc := range []struct{ in, name, number string }{
		{`"Sales Desk" <+15550100>`, "Sales Desk", "+15550100"},
		{`<100>`, "", "100"},
		{`Sales <555-0100>`, "Sales", "5550100"},
		{`"a <666>" <100>`, `a <666>`, "100"},
		{`"x" <1> <2>`, `"x" <1>`, "2"},
		{`555 0100`, "", "5550100"},
		{`"A\"B" <1>`, `A"B`, "1"},
	} {
		if n, l := amitest.CallerID(tc.in); n != tc.name || l != tc.number {
			t.Errorf("%q: %q %q, want %q %q", tc.in, n, l, tc.name, tc.number)
		}
	}
}
