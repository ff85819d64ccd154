package bridge

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A refused click-to-call leaves nothing behind, and a stale one is
// pruned; a channel that comes after either is an ordinary call.
func TestForgetAndPruneOriginates(t *testing.T) {
	tr := newTestTracker()
	refused := &Originate{ConversationID: "conv_r", ActionID: "o-r", AgentChannelID: "r.1", OtherChannelID: "r.2", Agent: "201", To: "600", RequestedAt: t0}
	old := &Originate{ConversationID: "conv_o", ActionID: "o-o", AgentChannelID: "o.1", Agent: "201", To: "600", RequestedAt: t0}
	live := &Originate{ConversationID: "conv_l", ActionID: "o-l", AgentChannelID: "l.1", Agent: "202", To: "601", RequestedAt: t0.Add(2 * time.Hour)}
	for _, o := range []*Originate{refused, old, live} {
		tr.expectOriginate(o)
	}
	tr.forgetOriginate(refused)
	if n := tr.pruneOriginates(t0.Add(time.Hour)); n != 2 { // old's channel and action entries
		t.Fatalf("pruned %d entries, want 2", n)
	}
	if len(tr.originates) != 2 || tr.originates["l.1"] != live || tr.originates["action:o-l"] != live {
		t.Fatalf("left %v", tr.originates)
	}
	// Forgetting an originate never drops another one's entries.
	tr.forgetOriginate(&Originate{AgentChannelID: "l.1", ActionID: "o-l"})
	if len(tr.originates) != 2 {
		t.Fatalf("forgot another originate's entries: %v", tr.originates)
	}
	run(tr, ChannelEvent{Kind: ChanNew, Channel: Channel{ID: "r.1", Name: "PJSIP/201-00000001", LinkedID: "r.1"}})
	if tr.convs["conv_r"] != nil {
		t.Fatal("a forgotten originate still claims its channel")
	}
	run(tr, ChannelEvent{Kind: ChanNew, Channel: Channel{ID: "l.1", Name: "PJSIP/202-00000002", LinkedID: "l.1"}})
	if tr.convs["conv_l"] == nil {
		t.Fatal("a kept originate does not claim its channel")
	}
	evs := run(tr, ChannelEvent{Kind: ChanOriginateFailed, ActionID: "o-o", Cause: 17})
	if len(evs) != 0 {
		t.Fatalf("a pruned originate still fails: %s", typesOf(evs))
	}
}

// Click-to-call variable names are a namespace: only the prefix's. The
// names below are ones PBXs act on that the old blocklists missed
// (Asterisk GOTO_ON_BLINDXFR, TOUCH_MIXMONITOR, PICKUPMARK; FreeSWITCH
// process_cdr, accountcode, domain_name, nibble_*), and the ones they had.
func TestCheckVariablesNamespace(t *testing.T) {
	for _, name := range []string{"GOTO_ON_BLINDXFR", "TOUCH_MIXMONITOR", "PICKUPMARK", "process_cdr", "accountcode",
		"domain_name", "nibble_rate", "nibble_account", "api_on_answer", "execute_on_answer", "origination_uuid",
		"MONITOR_EXEC", "__INHERITED", "_X", "CDR(accountcode)", "CRM_ID", "Crm_id", "crm_", "crm", "xcrm_a",
		"crm_a b", "crm_a-b", "crm_a\r\nb", "crm_" + strings.Repeat("a", 61)} {
		err := CheckVariables("crm_", map[string]string{name: "1"})
		var be *Error
		if !errors.As(err, &be) || be.Code != EINVALID || be.Field != "variables" {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if !strings.Contains(be.Message, strconv.Quote(name)) || !strings.Contains(be.Message, `"crm_"`) {
			t.Errorf("%q: the error names neither the variable nor the prefix: %s", name, be.Message)
		}
	}
	ok := map[string]string{"crm_ticket": "T-1", "crm_ID": "42", "crm_a_b_9": "x", "crm_" + strings.Repeat("a", 60): "1"}
	if err := CheckVariables("crm_", ok); err != nil {
		t.Fatal(err)
	}
	// Another prefix, another namespace.
	if err := CheckVariables("acme_", map[string]string{"acme_order": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := CheckVariables("acme_", map[string]string{"crm_order": "1"}); ErrorCode(err) != EINVALID {
		t.Fatalf("another namespace: %v", err)
	}
	// FreeSWITCH reads names without case: two spellings are one variable.
	if err := CheckVariables("crm_", map[string]string{"crm_a": "1", "crm_A": "2"}); ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "case") {
		t.Fatalf("case twins: %v", err)
	}
	many := map[string]string{}
	for i := range MaxVariables + 1 {
		many["crm_v"+strconv.Itoa(i)] = "1"
	}
	if err := CheckVariables("crm_", many); ErrorCode(err) != EINVALID {
		t.Fatalf("%d variables: %v", len(many), err)
	}
	// A bad configured prefix is the server's fault, not the request's.
	if err := CheckVariables("api_", map[string]string{"api_on_answer": "1"}); ErrorCode(err) != EINTERNAL {
		t.Fatalf("bad prefix: %v", err)
	}
}

func TestCheckVariablePrefix(t *testing.T) {
	for _, p := range []string{"crm_", "acme_", "x_", "cti2_", "abcdefghijklmnop_"} {
		if err := CheckVariablePrefix("commands.variable_prefix", p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "crm", "CRM_", "_crm_", "1crm_", "crm-", "crm__", "cr_m_", "abcdefghijklmnopq_",
		"api_", "execute_", "origination_", "sip_", "nibble_", "process_"} {
		var be *Error
		if err := CheckVariablePrefix("commands.variable_prefix", p); !errors.As(err, &be) || be.Field != "commands.variable_prefix" {
			t.Errorf("%q: %v", p, err)
		}
	}
}

// Values and caller id names are an allowlist: each character of
// FreeSWITCH's dial-string grammar, its argument quoting, and Asterisk's
// Variable and queue-member separators is refused, naming the field.
func TestSafeTextAllowlist(t *testing.T) {
	bad := []string{
		"x:_:[api_on_originate=system touch pwned]loopback/9196/default|", // the confirmed FreeSWITCH payload
		"a:b", "a|b", "a,b", "a[b", "a]b", "a{b", "a}b", "a<b", "a>b", "^^:a:b", "a^b", "${x}", "$x", "a'b", `a"b`,
		`a\b`, "a=b", "a;b", "a(b)", "a&b", "a%b", "a!b", "a~b", "a`b", "a?b", "a\tb", "a\u00a0b", "a\u200db", "a\u2028b",
		"a\x00b", "a\r\nb", "\xff", " a", "a ", "a\uff1ab", // a fullwidth colon is punctuation
	}
	for _, v := range bad {
		var be *Error
		if err := CheckVarValue("variables.crm_x", v); !errors.As(err, &be) || be.Code != EINVALID || be.Field != "variables.crm_x" {
			t.Errorf("value %q: %v", v, err)
		}
		if err := CheckVariables("crm_", map[string]string{"crm_x": v}); ErrorCode(err) != EINVALID {
			t.Errorf("variables %q: %v", v, err)
		}
		if _, err := ParseCallerID("caller_id", `"`+v+`" <5551234>`); ErrorCode(err) != EINVALID {
			t.Errorf("caller id name %q: %v", v, err)
		}
		if err := CheckSafeText("reason", v, 128); ErrorCode(err) != EINVALID {
			t.Errorf("reason %q: %v", v, err)
		}
	}
	if err := CheckVarValue("v", ""); ErrorCode(err) != EINVALID {
		t.Errorf("empty value: %v", err)
	}
	if err := CheckVarValue("v", strings.Repeat("a", 257)); ErrorCode(err) != EINVALID {
		t.Errorf("long value: %v", err)
	}
	good := []string{"42", "Sales Desk", "T-1_2.3@crm.example.com", "+15550100", "#1*2", "a/b", "Иван Петров",
		"José Ñúñez", "Zoë", "aːb" /* U+02D0 is a letter */, "北京", "नमस्ते" /* combining marks */, strings.Repeat("a", 256)}
	for _, v := range good {
		if err := CheckVarValue("v", v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	cid, err := ParseCallerID("caller_id", `"Иван Петров" <+74954451120>`)
	if err != nil || cid.Name != "Иван Петров" || cid.Number != "+74954451120" {
		t.Fatalf("%+v %v", cid, err)
	}
	if err := CheckSafeText("reason", "", 128); err != nil {
		t.Fatalf("empty optional text: %v", err)
	}
}
