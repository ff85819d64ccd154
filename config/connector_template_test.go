package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Templates are found next to the config, inline or in a file; their
// secrets come from the environment; every bad reference is named.
func TestTemplateConnectors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tpl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tpl", "crm.yaml"), []byte("on: [call.ringing]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var checked []string
	CheckTemplate = func(name string, src []byte, secrets map[string]string) error {
		checked = append(checked, name+"="+strings.TrimSpace(string(src))+"/"+secrets["crm_token"])
		if name == "bad" {
			return errors.New(`template "bad": request.body: request.body:1:5: unexpected "}"`)
		}
		return nil
	}
	defer func() { CheckTemplate = nil }()
	cfgPath := filepath.Join(dir, "ctibridge.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfgPath, []byte("pbx: {type: asterisk, address: '127.0.0.1:5038', username: u, secret: s}\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`connectors:
  templates:
    - {name: crm, file: tpl/crm.yaml}
    - name: inline
      template: |
        on: [call.ended]
`)
	cfg, err := Load(cfgPath, []string{"CTIBRIDGE_CONNECTORS__TEMPLATE_SECRETS__CRM_TOKEN=t0k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(checked, " "); got != "crm=on: [call.ringing]/t0k inline=on: [call.ended]/t0k" {
		t.Errorf("checked %s", got)
	}
	if cfg.Connectors.Templates[0].File != filepath.Join(dir, "tpl", "crm.yaml") {
		t.Errorf("file %s", cfg.Connectors.Templates[0].File)
	}
	write(`webhooks: []
connectors:
  template_secrets: {"Bad-Name": x}
  templates:
    - {name: crm, file: nosuch.yaml}
    - {name: crm, template: "on: []"}
    - {name: Crm!}
    - {name: both, file: x, template: y}
    - {name: none}
    - {name: bad, template: "x"}
    - {name: extra, templat: "x"}
`)
	_, err = Load(cfgPath, nil, nil)
	for _, want := range []string{
		"connectors.template_secrets.Bad-Name: a secret's name is",
		"connectors.templates[0](crm).file: cannot read " + filepath.Join(dir, "nosuch.yaml"),
		"connectors.templates[1](crm).name: is used twice",
		`connectors.templates[2].name: must be 1..32 lower-case letters`,
		"connectors.templates[3](both): set file or template, not both",
		"connectors.templates[4](none): set file:",
		`connectors.templates[5](bad): template "bad": request.body: request.body:1:5:`,
		"connectors.templates[6].templat: unknown key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}
