package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Connectors are the CRM connectors: subscriptions that speak a CRM's own
// API instead of posting ctibridge's JSON.
type Connectors struct {
	Bitrix24 Bitrix24 `koanf:"bitrix24"`
	Zammad   Zammad   `koanf:"zammad"`
	HubSpot  HubSpot  `koanf:"hubspot"` // config/connector_hubspot.go
	// Templates and their secrets: config/connector_template.go.
	Templates       []TemplateConnector `koanf:"templates"`
	TemplateSecrets map[string]string   `koanf:"template_secrets"`
}

// Bitrix24 is the Bitrix24 telephony connector. It is on when WebhookURL is
// set.
type Bitrix24 struct {
	// WebhookURL is an inbound webhook with the telephony scope,
	// https://<portal>/rest/<user id>/<token>/. The token is a secret: set it
	// from the environment (CTIBRIDGE_CONNECTORS__BITRIX24__WEBHOOK_URL)
	// rather than in the file; it is never logged.
	WebhookURL string `koanf:"webhook_url"`
	// Users maps agent extensions to Bitrix24 user ids.
	Users map[string]int `koanf:"users"`
	// DefaultUser logs calls no agent took part in under this user; 0
	// leaves them out.
	DefaultUser int     `koanf:"default_user"`
	LineNumber  string  `koanf:"line_number"`
	CRMCreate   bool    `koanf:"crm_create"` // create a lead for an unknown number
	Show        bool    `koanf:"show"`       // pop the call card to ringing agents
	Burst       int     `koanf:"burst"`      // the portal's request bucket (Enterprise: 250)
	Rate        float64 `koanf:"rate"`       // its refill per second (Enterprise: 5)
	// ApplicationToken is the local application's application_token, which
	// Bitrix24 sends in auth[application_token] with each event it posts to
	// /crm/bitrix24/events (click-to-call). A secret: set it from
	// CTIBRIDGE_CONNECTORS__BITRIX24__APPLICATION_TOKEN. Empty: no handler.
	ApplicationToken string `koanf:"application_token"`
}

// Enabled reports whether the connector is configured.
func (b Bitrix24) Enabled() bool { return b.WebhookURL != "" }

func defaultConnectors() Connectors {
	return Connectors{Bitrix24: Bitrix24{CRMCreate: true, Show: true, Burst: 50, Rate: 2},
		Zammad: Zammad{Inbound: true, Outbound: true, Burst: 20, Rate: 10}, HubSpot: defaultHubSpot()}
}

var reExtension = regexp.MustCompile(`^[A-Za-z0-9_*#+-]{1,32}$`)

// validate checks the connectors, reporting every problem. webhookIDs are
// the configured webhook endpoint ids, which a connector's endpoint id must
// not take.
func (c *Connectors) validate(webhookIDs map[string]bool, add func(*Error)) {
	c.validateBitrix24(webhookIDs, add)
	c.validateHubSpot(webhookIDs, add)
	c.validateZammad(webhookIDs, add)
}

func (c *Connectors) validateBitrix24(webhookIDs map[string]bool, add func(*Error)) {
	b := c.Bitrix24
	if !b.Enabled() {
		return
	}
	const key = "connectors.bitrix24"
	if err := checkBitrix24URL(b.WebhookURL); err != "" {
		// The reason never repeats the URL: it holds the token.
		add(&Error{key + ".webhook_url", err})
	}
	if len(b.Users) == 0 {
		add(&Error{key + ".users", "map each agent extension to its Bitrix24 user id, e.g. users: {\"101\": 1}"})
	}
	for _, ext := range sortedKeys(b.Users) {
		if !reExtension.MatchString(ext) {
			add(&Error{key + ".users", fmt.Sprintf("%q is not an extension (letters, digits, * # + - _)", ext)})
		} else if id := b.Users[ext]; id <= 0 {
			add(&Error{key + ".users." + ext, fmt.Sprintf("must be a Bitrix24 user id (a positive number), got %d", id)})
		}
	}
	if b.DefaultUser < 0 {
		add(&Error{key + ".default_user", "must be a Bitrix24 user id, or 0 for none"})
	}
	if b.Burst < 1 || b.Burst > 10000 {
		add(&Error{key + ".burst", fmt.Sprintf("must be 1..10000 (Bitrix24: 50, Enterprise 250), got %d", b.Burst)})
	}
	if !(b.Rate > 0 && b.Rate <= 1000) {
		add(&Error{key + ".rate", fmt.Sprintf("must be above 0 requests per second (Bitrix24: 2, Enterprise 5), got %v", b.Rate)})
	}
	// The reason never repeats the token.
	if t := b.ApplicationToken; t != "" && !regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`).MatchString(t) {
		add(&Error{key + ".application_token", fmt.Sprintf("must be the application's token as Bitrix24 shows it (16 to 128 letters and digits), got %d characters", len(t))})
	}
	if len(b.LineNumber) > 64 {
		add(&Error{key + ".line_number", "must be at most 64 characters"})
	}
	if webhookIDs[Bitrix24EndpointID] {
		add(&Error{"webhooks", fmt.Sprintf("the id %q is the Bitrix24 connector's: use another", Bitrix24EndpointID)})
	}
}

// Bitrix24EndpointID is the connector's delivery endpoint id (the attempt
// log, replay and the webhooks API name it so).
const Bitrix24EndpointID = "crm-bitrix24"

func checkBitrix24URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "must be an inbound webhook URL such as https://<portal>.bitrix24.com/rest/<user id>/<token>/"
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "must have no credentials, query or fragment"
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "rest" {
		return "path must be /rest/<user id>/<token>/"
	}
	if _, err := strconv.Atoi(parts[1]); err != nil {
		return "path must be /rest/<user id>/<token>/: the user id is a number"
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{8,}$`).MatchString(parts[2]) {
		return "path must be /rest/<user id>/<token>/: the token is letters and digits"
	}
	return ""
}

// Zammad is the Zammad generic CTI connector. It is on when URL is set.
type Zammad struct {
	// URL is the endpoint Zammad shows under Integrations → CTI (generic),
	// https://<zammad>/api/v1/cti/<token>. The token is a secret: set it from
	// the environment (CTIBRIDGE_CONNECTORS__ZAMMAD__URL) rather than in the
	// file; it is never logged.
	URL string `koanf:"url"`
	// Users maps agent extensions to the names Zammad shows in the caller
	// log; an extension not in it is sent as it is.
	Users map[string]string `koanf:"users"`
	// Inbound and Outbound say which calls go to Zammad's caller log
	// (internal calls never do).
	Inbound  bool    `koanf:"inbound"`
	Outbound bool    `koanf:"outbound"`
	Burst    int     `koanf:"burst"`
	Rate     float64 `koanf:"rate"`
}

// Enabled reports whether the connector is configured.
func (z Zammad) Enabled() bool { return z.URL != "" }

// ZammadEndpointID is the Zammad connector's delivery endpoint id.
const ZammadEndpointID = "crm-zammad"

var reZammadToken = regexp.MustCompile(`^[A-Za-z0-9_-]{8,}$`)

func (c *Connectors) validateZammad(webhookIDs map[string]bool, add func(*Error)) {
	z := c.Zammad
	if !z.Enabled() {
		return
	}
	const key = "connectors.zammad"
	// The reasons never repeat the URL: it holds the token.
	if u, err := url.Parse(z.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add(&Error{key + ".url", "must be the CTI endpoint such as https://<zammad>/api/v1/cti/<token>"})
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		add(&Error{key + ".url", "must have no credentials, query or fragment"})
	} else if i := strings.LastIndex(u.Path, "/api/v1/cti/"); i < 0 || !reZammadToken.MatchString(strings.TrimSuffix(u.Path[i+len("/api/v1/cti/"):], "/")) {
		add(&Error{key + ".url", "path must end in /api/v1/cti/<token> (Zammad: Integrations → CTI (generic) → Endpoint)"})
	}
	for _, ext := range sortedKeys(z.Users) {
		if !reExtension.MatchString(ext) {
			add(&Error{key + ".users", fmt.Sprintf("%q is not an extension (letters, digits, * # + - _)", ext)})
		} else if name := z.Users[ext]; strings.TrimSpace(name) == "" || len(name) > 200 {
			add(&Error{key + ".users." + ext, "must be the agent's name in Zammad (1..200 characters)"})
		}
	}
	if !z.Inbound && !z.Outbound {
		add(&Error{key, "inbound and outbound are both false: nothing would be sent (remove url to turn the connector off)"})
	}
	if z.Burst < 1 || z.Burst > 10000 {
		add(&Error{key + ".burst", fmt.Sprintf("must be 1..10000, got %d", z.Burst)})
	}
	if !(z.Rate > 0 && z.Rate <= 1000) {
		add(&Error{key + ".rate", fmt.Sprintf("must be above 0 requests per second, got %v", z.Rate)})
	}
	if webhookIDs[ZammadEndpointID] {
		add(&Error{"webhooks", fmt.Sprintf("the id %q is the Zammad connector's: use another", ZammadEndpointID)})
	}
}
