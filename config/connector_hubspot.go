package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// HubSpot is the HubSpot calls engagement connector. It is on when Token
// is set.
type HubSpot struct {
	// Token is a private app's access token (Settings → Integrations →
	// Private apps). It is a secret: set it from the environment
	// (CTIBRIDGE_CONNECTORS__HUBSPOT__TOKEN) rather than in the file; it is
	// never logged.
	Token string `koanf:"token"`
	// Owners maps agent extensions to HubSpot owner ids (hubspot_owner_id).
	Owners map[string]string `koanf:"owners"`
	// DefaultOwner owns calls of agents not in Owners and calls no agent
	// took; "" makes an unmapped agent a dead letter.
	DefaultOwner string `koanf:"default_owner"`
	// AssociateContacts associates each call with the contact whose phone
	// is the customer's number.
	AssociateContacts bool `koanf:"associate_contacts"`
	// APIURL is HubSpot's API (tests point it at a fake).
	APIURL string  `koanf:"api_url"`
	Burst  int     `koanf:"burst"` // requests at once
	Rate   float64 `koanf:"rate"`  // per second after the burst
	// SearchLag is how long HubSpot's search may not show a call just
	// created: a create whose answer was lost is repeated only after it.
	SearchLag time.Duration `koanf:"search_lag"`
}

// Enabled reports whether the connector is configured.
func (h HubSpot) Enabled() bool { return h.Token != "" }

// HubSpotEndpointID is the HubSpot connector's delivery endpoint id.
const HubSpotEndpointID = "crm-hubspot"

// defaultHubSpot: 20 + 8/s never exceeds a private app's 100 requests per
// rolling 10 s (190 on Professional and Enterprise: burst 40, rate 15).
func defaultHubSpot() HubSpot {
	return HubSpot{APIURL: "https://api.hubapi.com", Burst: 20, Rate: 8, SearchLag: 10 * time.Second}
}

var reHubSpotID = regexp.MustCompile(`^[0-9]{1,20}$`)

func (c *Connectors) validateHubSpot(webhookIDs map[string]bool, add func(*Error)) {
	h := c.HubSpot
	if !h.Enabled() {
		return
	}
	const key = "connectors.hubspot"
	// The reason never repeats the token.
	if len(h.Token) < 8 || len(h.Token) > 512 || strings.IndexFunc(h.Token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		add(&Error{key + ".token", "must be the private app's access token (Settings → Integrations → Private apps → Auth), printable, without spaces"})
	}
	if u, err := url.Parse(h.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		add(&Error{key + ".api_url", "must be an http(s) URL with no credentials, query or fragment, such as https://api.hubapi.com"})
	}
	if len(h.Owners) == 0 && h.DefaultOwner == "" {
		add(&Error{key + ".owners", "map each agent extension to its HubSpot owner id, e.g. owners: {\"101\": \"12345678\"} (or set default_owner)"})
	}
	for _, ext := range sortedKeys(h.Owners) {
		if !reExtension.MatchString(ext) {
			add(&Error{key + ".owners", fmt.Sprintf("%q is not an extension (letters, digits, * # + - _)", ext)})
		} else if id := h.Owners[ext]; !reHubSpotID.MatchString(id) {
			add(&Error{key + ".owners." + ext, fmt.Sprintf("must be a HubSpot owner id (digits; Settings → Users & Teams, or GET /crm/v3/owners), got %q", id)})
		}
	}
	if h.DefaultOwner != "" && !reHubSpotID.MatchString(h.DefaultOwner) {
		add(&Error{key + ".default_owner", fmt.Sprintf("must be a HubSpot owner id (digits), or empty for none, got %q", h.DefaultOwner)})
	}
	if h.Burst < 1 || h.Burst > 190 {
		add(&Error{key + ".burst", fmt.Sprintf("must be 1..190 (HubSpot allows 100 requests per 10 s, 190 on Professional/Enterprise), got %d", h.Burst)})
	}
	if !(h.Rate > 0 && h.Rate <= 19) {
		add(&Error{key + ".rate", fmt.Sprintf("must be above 0 and at most 19 requests per second (100 or 190 per 10 s), got %v", h.Rate)})
	}
	if h.SearchLag < 100*time.Millisecond || h.SearchLag > 5*time.Minute {
		add(&Error{key + ".search_lag", fmt.Sprintf("must be 100ms..5m (HubSpot's search shows a new call within seconds), got %s", h.SearchLag)})
	}
	if webhookIDs[HubSpotEndpointID] {
		add(&Error{"webhooks", fmt.Sprintf("the id %q is the HubSpot connector's: use another", HubSpotEndpointID)})
	}
}
