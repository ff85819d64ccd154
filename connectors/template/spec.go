// Package template is the template connector: a CRM the project has no
// connector for is reached by a YAML description of the request to send for
// each event (which events, a condition, the URL, headers and body as Go
// text/template, the auth, what to capture from the answer, the rate).
//
// Every value a template prints is escaped for where it lands, without the
// author asking: JSON-escaped inside a JSON string (a whole JSON value
// outside one), XML-escaped in XML text and attributes, form-encoded in a
// form body, path- or query-escaped in the URL. A caller name cannot break
// out of its string or element.
package template

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is one template as written in YAML. Fields that hold a secret
// (password, token, client_secret, refresh_token, hmac secret) take the
// secret's NAME; the value comes from the config's template_secrets
// (usually set from the environment), never from the template.
type Spec struct {
	On       []string                     `yaml:"on"`
	When     string                       `yaml:"when"`
	Request  Request                      `yaml:"request"`
	Auth     Auth                         `yaml:"auth"`
	Response Response                     `yaml:"response"`
	Rate     Rate                         `yaml:"rate"`
	Maps     map[string]map[string]string `yaml:"maps"` // lookup tables, e.g. users: {"101": "zuid-1"}
	// Remember maps a name to a template rendered after each successful
	// request; the text is kept for the call as .State.<name> (e.g. the
	// agent who rang, for the missed-call notification at the end).
	Remember map[string]string `yaml:"remember"`
}

// Request is the HTTP request sent for a matching event.
type Request struct {
	Method   string            `yaml:"method"`
	URL      string            `yaml:"url"`
	Encoding string            `yaml:"encoding"` // json, form or xml
	Headers  map[string]string `yaml:"headers"`
	Body     string            `yaml:"body"`
}

// Auth says how the request authenticates.
type Auth struct {
	Kind string `yaml:"kind"` // none, basic, bearer, oauth2, hmac

	Username string `yaml:"username"` // basic
	Password string `yaml:"password"` // basic: a secret name

	Token  string `yaml:"token"`  // bearer: a secret name
	Scheme string `yaml:"scheme"` // bearer, oauth2: the Authorization scheme (Bearer; Zoho: Zoho-oauthtoken)

	Grant        string   `yaml:"grant"` // oauth2: client_credentials or refresh_token
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"` // a secret name
	RefreshToken string   `yaml:"refresh_token"` // a secret name
	Scopes       []string `yaml:"scopes"`

	Secret    string `yaml:"secret"`    // hmac: a secret name
	Header    string `yaml:"header"`    // hmac: the signature header, e.g. X-Signature
	Algorithm string `yaml:"algorithm"` // hmac: sha256 (default), sha512 or sha1
	Prefix    string `yaml:"prefix"`    // hmac: text before the hex digest, e.g. "sha256="
}

// Response says what a successful answer is and what to keep from it.
type Response struct {
	Success []int `yaml:"success"` // default: any 2xx
	// Capture maps a name to a JSON path in the answer (data.id,
	// result.items[0].id); the value is kept for the call and later
	// requests read it as .State.<name>.
	Capture map[string]string `yaml:"capture"`
}

// Rate is the CRM account's request bucket.
type Rate struct {
	Burst int     `yaml:"burst"` // default 10
	Rate  float64 `yaml:"rate"`  // per second, default 5
}

// Error is a problem with a template: which one, which field, what.
type Error struct {
	Template string
	Field    string
	Problem  string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("template %q: %s", e.Template, e.Problem)
	}
	return fmt.Sprintf("template %q: %s: %s", e.Template, e.Field, e.Problem)
}

// Errors are every problem found in a template.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// ParseYAML reads a template's YAML strictly: an unknown key or a value of
// the wrong kind is an error with its line.
func ParseYAML(name string, src []byte) (Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = reUnknownField.ReplaceAllString(m, `unknown key "$1" (check the spelling)`)
			}
			return s, &Error{Template: name, Problem: "YAML: " + strings.Join(msgs, "; ")}
		}
		return s, &Error{Template: name, Problem: "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return s, nil
}

var reUnknownField = regexp.MustCompile(`field (\S+) not found in type template\.\w+`)

// reSecretName is what a secret's name looks like: a name, never a value
// pasted by mistake (the error then does not repeat it).
var reSecretName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ReName is a template's name (endpoint id crm-tpl-<name>).
var ReName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
