package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// The README's first command: the demo plays every call, clicks to call
// through the REST API (Asterisk), and every webhook arrives signed.
func TestDemo(t *testing.T) {
	for _, pbx := range []string{"asterisk", "freeswitch"} {
		t.Run(pbx, func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := demo(context.Background(), []string{"--pbx", pbx, "--pace", "1ms"}, &out, &errs); err != nil {
				t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errs.String())
			}
			m := regexp.MustCompile(`(\d+) calls, (\d+) webhooks delivered, 0 with a bad signature`).FindStringSubmatch(out.String())
			if m == nil || m[2] == "0" {
				t.Fatalf("no clean summary:\n%s", out.String())
			}
			if pbx == "asterisk" {
				for _, want := range []string{"POST /v1/calls", "→ 202", "outbound call from 101 to 600", "SCREEN POP", "TRANSFERRED", "recording ready"} {
					if !strings.Contains(out.String(), want) {
						t.Errorf("output lacks %q:\n%s", want, out.String())
					}
				}
			}
		})
	}
}
