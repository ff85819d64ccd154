package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connectors/hubspot/hubspottest"
)

// demo --crm runs the CRM's fake with its connector and prints, per call,
// what the CRM received: the requests a newcomer's CRM will get, every
// event delivered, no secret shown.
func TestDemoCRM(t *testing.T) {
	for _, tc := range []struct {
		crm, title string
		want       []string
	}{
		{"hubspot", "HubSpot", []string{"POST  /crm/v3/objects/calls ", "create          direction=INBOUND status=RINGING from_number=5551234",
			"associated contact=", "search-contacts for 5551234: 1 found", "update          status=IN_PROGRESS", "status=COMPLETED duration=",
			"status=BUSY", "direction=OUTBOUND"}},
		{"bitrix24", "Bitrix24", []string{"POST telephony.externalcall.register", "STATUS_CODE=200", "STATUS_CODE=486", "/rest/1/***/"}},
		{"zammad", "Zammad", []string{"newCall  direction=in from=5551234", "answer   direction=in", "cause=normalClearing", "cause=busy", "/api/v1/cti/***"}},
	} {
		t.Run(tc.crm, func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := demo(context.Background(), []string{"--crm", tc.crm, "--pace", "1ms"}, &out, &errs); err != nil {
				t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errs.String())
			}
			s := out.String()
			if m := regexp.MustCompile(tc.title + ` received (\d+) requests`).FindStringSubmatch(s); m == nil || m[1] == "0" {
				t.Fatalf("no CRM report:\n%s", s)
			}
			// Each call's requests are listed under it: 7 calls (6 played, 1 click-to-call).
			if n := strings.Count(s[strings.Index(s, tc.title+" received"):], "\n  call …"); n != 7 {
				t.Errorf("%d calls in the report, want 7:\n%s", n, s)
			}
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("output lacks %q:\n%s", w, s)
				}
			}
			for _, bad := range []string{"dead letters", "(no call)", hubspottest.New().Token} {
				if strings.Contains(s, bad) {
					t.Errorf("output has %q:\n%s", bad, s)
				}
			}
		})
	}
	if err := demo(context.Background(), []string{"--crm", "salesforce"}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, new(usageError)) ||
		!strings.Contains(err.Error(), "bitrix24, zammad, hubspot") {
		t.Errorf("--crm salesforce: %v", err)
	}
}
