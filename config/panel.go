package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Panel is http.panel: the agent panel's CRM link, auto-open and framing.
type Panel struct {
	// CRMURL is the "Open in CRM" link of the call on an agent's card, with
	// {{e164}}, {{number}}, {{dialled}}, {{queue}}, {{call_id}}, {{agent}}
	// replaced, URL-encoded (+ as %2B). Empty: no link.
	CRMURL string `koanf:"crm_url"`
	// AutoOpen opens that link by itself: ring, answer, or never (empty).
	AutoOpen string `koanf:"auto_open"`
	// FrameAncestors are who may show the panel in a frame (CSP
	// frame-ancestors): 'self', 'none' or origins (https://crm.example.com).
	// Empty: 'self'. The origins are also the only ones its postMessage API
	// talks to.
	FrameAncestors []string `koanf:"frame_ancestors"`
}

// PanelPlaceholders are the names a crm_url may use.
var PanelPlaceholders = []string{"e164", "number", "dialled", "queue", "call_id", "agent"}

var rePlaceholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

func (p *Panel) check(add func(*Error)) {
	if p.CRMURL != "" {
		if err := checkCRMURL(p.CRMURL); err != "" {
			add(&Error{"http.panel.crm_url", err})
		}
	}
	switch p.AutoOpen {
	case "", "ring", "answer", "never":
	default:
		add(&Error{"http.panel.auto_open", fmt.Sprintf("must be ring, answer or never, got %q", p.AutoOpen)})
	}
	if p.AutoOpen == "never" {
		p.AutoOpen = ""
	}
	for i, a := range p.FrameAncestors {
		key := fmt.Sprintf("http.panel.frame_ancestors[%d]", i)
		switch {
		case a == "'self'":
		case a == "'none'":
			if len(p.FrameAncestors) > 1 {
				add(&Error{key, "'none' must be the only entry (no page may frame the panel)"})
			}
		default:
			if want, ok := canonicalOrigin(a); !ok || want != a {
				hint := ""
				if ok {
					hint = fmt.Sprintf(" (did you mean %q?)", want)
				}
				add(&Error{key, fmt.Sprintf("must be 'self', 'none' or an origin scheme://host[:port] (http or https, lowercase, no path, no wildcard), got %q%s", a, hint)})
			}
		}
	}
}

// checkCRMURL says what is wrong with a crm_url template, "" if nothing:
// every placeholder must be known, and the URL an absolute http(s) one
// (never javascript: or data:, which would run in the panel).
func checkCRMURL(raw string) string {
	if len(raw) > 2048 {
		return "must be at most 2048 bytes"
	}
	var bad []string
	sample := rePlaceholder.ReplaceAllStringFunc(raw, func(m string) string {
		name := m[2 : len(m)-2]
		for _, k := range PanelPlaceholders {
			if k == name {
				return "x"
			}
		}
		bad = append(bad, m)
		return "x"
	})
	if len(bad) > 0 {
		return fmt.Sprintf("unknown placeholder %s: use {{%s}}", bad[0], strings.Join(PanelPlaceholders, "}}, {{"))
	}
	if strings.ContainsAny(sample, "{} \t\r\n") {
		return "must be a URL with {{placeholders}} only, without spaces or stray braces"
	}
	u, err := url.Parse(sample)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an absolute http or https URL, got %q", raw)
	}
	return ""
}
