package config

import (
	"strings"
	"testing"
)

func TestPanelConfig(t *testing.T) {
	good := Panel{CRMURL: "https://itop.example.com/pages/exec.php?exec_module=combodo-telephony-integration&exec_page=index.php&phone={{e164}}",
		AutoOpen: "ring", FrameAncestors: []string{"'self'", "https://crm.example.com"}}
	var errs []string
	good.check(func(e *Error) { errs = append(errs, e.Error()) })
	if len(errs) != 0 {
		t.Fatalf("good config refused: %v", errs)
	}
	for _, tc := range []struct {
		p    Panel
		want string
	}{
		{Panel{CRMURL: "javascript:alert({{e164}})"}, "http.panel.crm_url: must be an absolute http or https URL"},
		{Panel{CRMURL: "https://crm/x?p={{phone}}"}, "http.panel.crm_url: unknown placeholder {{phone}}"},
		{Panel{CRMURL: "/relative?p={{e164}}"}, "http.panel.crm_url: must be an absolute"},
		{Panel{AutoOpen: "always"}, "http.panel.auto_open: must be ring, answer or never"},
		{Panel{FrameAncestors: []string{"https://*.example.com"}}, "http.panel.frame_ancestors[0]: must be 'self', 'none' or an origin"},
		{Panel{FrameAncestors: []string{"https://CRM.example.com/"}}, `did you mean "https://crm.example.com"`},
		{Panel{FrameAncestors: []string{"'none'", "'self'"}}, "frame_ancestors[0]: 'none' must be the only entry"},
	} {
		var got []string
		tc.p.check(func(e *Error) { got = append(got, e.Error()) })
		if len(got) != 1 || !strings.Contains(got[0], tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.p, got, tc.want)
		}
	}
}
