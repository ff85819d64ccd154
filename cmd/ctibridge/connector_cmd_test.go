package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ctibridge/ctibridge/connectors/template"
)

// connectorDir is a config dir with the two shipped examples (by file) and
// an inline template aimed at a server that counts requests.
func connectorDir(t *testing.T, hits *atomic.Int32) (cfgPath, eventPath string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for _, f := range []string{"oracle-ebs.yaml", "zoho-phonebridge.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "connectors", "template", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `pbx: {type: asterisk, address: "127.0.0.1:5038", username: u, secret: s}
store: {path: ctibridge.db}
connectors:
  templates:
    - {name: oracle, file: oracle-ebs.yaml}
    - {name: zoho, file: zoho-phonebridge.yaml}
    - name: local
      template: |
        on: [call.ringing]
        request:
          url: '` + srv.URL + `/calls/{{.ConversationID}}'
          body: '{"caller": "{{.Call.Caller.Name}}", "id": "{{.State.crm_id}}"}'
        auth: {kind: hmac, secret: local_key, header: X-Sig}
        response: {capture: {crm_id: id}}
`
	cfgPath = filepath.Join(dir, "ctibridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := template.Sample("call.ringing").Event
	ev.Call.Caller.Name, ev.Call.Caller.Number = `"},"x":1 </x>`, "0555 1234"
	b, _ := json.Marshal(ev)
	eventPath = filepath.Join(dir, "ringing.json")
	if err := os.WriteFile(eventPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, eventPath
}

var connectorSecrets = []string{"--set", "connectors.template_secrets.zoho_client_secret=zcs-S3CRET",
	"--set", "connectors.template_secrets.zoho_refresh_token=zrt-S3CRET", "--set", "connectors.template_secrets.local_key=lk-S3CRET"}

// The dry run prints the exact request of each example for an event file,
// secrets redacted, and sends nothing.
func TestConnectorTestDryRun(t *testing.T) {
	var hits atomic.Int32
	cfgPath, eventPath := connectorDir(t, &hits)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"oracle", []string{"POST https://ebs-cti.example.com/cctsdk/event\n", "Content-Type: text/xml; charset=utf-8\n",
			`<event name="ScreenPop">`, `<data name="occtSourceID" value="conv_sample"/>`, `<data name="occtANI" value="0555 1234"/>`,
			`<data name="occtDNIS" value="101"/>`}},
		{"zoho", []string{"POST https://www.zohoapis.com/phonebridge/v3/callnotify\n",
			"Authorization: Zoho-oauthtoken *** (an access token from https://accounts.zoho.com/oauth/v2/token)\n",
			"Content-Type: application/x-www-form-urlencoded\n",
			"\n\ntype=received&state=ringing&id=conv_sample&from=%2B15551234&to=101&zohouser=100000002\n"}},
		{"local", []string{"/calls/conv_sample\n", "X-Sig: *** (HMAC-SHA256 of the body)\n",
			`{"caller": "\"},\"x\":1 \u003c/x\u003e", "id": "CRM-7"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"connector", "test", tc.name, "--event", eventPath, "--config", cfgPath, "--state", "crm_id=CRM-7"}, connectorSecrets...)
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("missing %q in\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "S3CRET") {
				t.Errorf("a secret in the dry run:\n%s", out.String())
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the dry run sent %d requests", n)
	}
}

func TestConnectorTestUsage(t *testing.T) {
	var hits atomic.Int32
	cfgPath, eventPath := connectorDir(t, &hits)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"connector", "--help"}, 0, "Usage:\n  ctibridge connector test NAME --event FILE"},
		{[]string{"connector", "test", "--help"}, 0, "--state"},
		{[]string{"connector"}, 2, "say test NAME --event FILE"},
		{[]string{"connector", "test", "oracle", "--config", cfgPath}, 2, "--event FILE is required"},
		{append([]string{"connector", "test", "nosuch", "--event", eventPath, "--config", cfgPath}, connectorSecrets...), 2, `no template connector "nosuch" in connectors.templates (configured: oracle, zoho, local)`},
		{append([]string{"connector", "test", "oracle", "extra", "--event", eventPath, "--config", cfgPath}, connectorSecrets...), 2, `unexpected arguments "extra" "--event"`},
		{[]string{"connector", "test", "oracle", "--event", eventPath, "--config", cfgPath}, 2, `secret "zoho_client_secret" is not set`},
		{append([]string{"connector", "test", "oracle", "--event", cfgPath, "--config", cfgPath}, connectorSecrets...), 2, "is not an event's JSON"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d\nstdout %s\nstderr %s\nwant %q", tc.args, code, out.String(), errb.String(), tc.want)
		}
	}
}

// A template error is found when the config loads (ctibridge check),
// naming the template, the field and the line and column.
func TestTemplateErrorAtLoad(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	cfg := `pbx: {type: asterisk, address: "127.0.0.1:5038", username: u, secret: s}
connectors:
  templates:
    - name: crm
      template: |
        on: [call.ringing]
        request:
          url: 'https://crm.example.com/calls'
          body: |
            {
              "n": "{{.Call.Caller.Numbr}}"
            }
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", cfgPath}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), `connectors.templates[0](crm): template "crm": request.body: with a sample call.ringing event: request.body:2:`) ||
		!strings.Contains(errb.String(), "Numbr") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
