package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// TemplateConnector is one template connector (connectors.templates): a
// name and its template, in a file (relative to the config file's
// directory) or inline as YAML text. connectors/template documents the
// template itself.
type TemplateConnector struct {
	Name     string `koanf:"name"`
	File     string `koanf:"file"`
	Template string `koanf:"template"` // inline YAML (template: |)
	// Source is the template's YAML, read from File or Template when the
	// config is validated.
	Source []byte `koanf:"-"`
}

// TemplateEndpointID is a template connector's delivery endpoint id.
func TemplateEndpointID(name string) string { return "crm-tpl-" + name }

// CheckTemplate parses and checks a template's YAML with its secrets. The
// config package cannot import the template engine (adapters import only
// bridge), so the program sets it (cmd/ctibridge); nil checks the
// references only. Its error names the template, the field and the problem.
var CheckTemplate func(name string, src []byte, secrets map[string]string) error

var (
	reTemplateName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	reSecretName   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// validateTemplates checks connectors.templates and
// connectors.template_secrets, reporting every problem.
func (c *Connectors) validateTemplates(webhookIDs map[string]bool, add func(*Error)) {
	for name, v := range c.TemplateSecrets {
		key := "connectors.template_secrets." + name
		if !reSecretName.MatchString(name) {
			add(&Error{key, "a secret's name is lower-case letters, digits and _, starting with a letter"})
		} else if v == "" {
			add(&Error{key, "is empty"})
		}
	}
	seen := map[string]bool{}
	for i := range c.Templates {
		tc := &c.Templates[i]
		key := fmt.Sprintf("connectors.templates[%d]", i)
		if !reTemplateName.MatchString(tc.Name) {
			add(&Error{key + ".name", fmt.Sprintf("must be 1..32 lower-case letters, digits, - and _ (the endpoint id is crm-tpl-<name>), got %q", tc.Name)})
			continue
		}
		key = fmt.Sprintf("connectors.templates[%d](%s)", i, tc.Name)
		if seen[tc.Name] {
			add(&Error{key + ".name", "is used twice"})
			continue
		}
		seen[tc.Name] = true
		if webhookIDs[TemplateEndpointID(tc.Name)] {
			add(&Error{"webhooks", fmt.Sprintf("the id %q is the template connector %s's: use another", TemplateEndpointID(tc.Name), tc.Name)})
		}
		switch {
		case tc.File != "" && tc.Template != "":
			add(&Error{key, "set file or template, not both"})
			continue
		case tc.File != "":
			b, err := os.ReadFile(tc.File)
			if err != nil {
				add(&Error{key + ".file", fmt.Sprintf("cannot read %s: %v", tc.File, unwrapPath(err))})
				continue
			}
			tc.Source = b
		case strings.TrimSpace(tc.Template) != "":
			tc.Source = []byte(tc.Template)
		default:
			add(&Error{key, "set file: (a template's YAML file, relative to this config's directory) or template: (inline YAML)"})
			continue
		}
		if CheckTemplate != nil {
			if err := CheckTemplate(tc.Name, tc.Source, c.TemplateSecrets); err != nil {
				add(&Error{key, err.Error()})
			}
		}
	}
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
