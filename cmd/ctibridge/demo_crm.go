package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/config"
	"github.com/ctibridge/ctibridge/connectors/bitrix24"
	"github.com/ctibridge/ctibridge/connectors/bitrix24/bitrix24test"
	"github.com/ctibridge/ctibridge/connectors/hubspot/hubspottest"
	"github.com/ctibridge/ctibridge/connectors/zammad"
	"github.com/ctibridge/ctibridge/connectors/zammad/zammadtest"
	"github.com/ctibridge/ctibridge/store"
)

// demoCRMs are the CRMs demo --crm can show.
var demoCRMs = []string{"bitrix24", "zammad", "hubspot"}

// demoAgents are the agent extensions of the demo's captures (Asterisk
// 100–103, FreeSWITCH 1000–1003 and 1100–1103): each gets a CRM user.
var demoAgents = []string{"100", "101", "102", "103", "1000", "1001", "1002", "1003", "1100", "1101", "1102", "1103"}

// crmLine is one request a fake CRM received, for the demo's report.
type crmLine struct {
	conv string // the conversation it belongs to, "" if unknown
	text string
}

// demoCRM is a fake CRM running in the demo's process, with the
// connector configured against it.
type demoCRM struct {
	name     string // as --crm gives it
	title    string // as people write it
	endpoint string // the connector's delivery endpoint id
	url      string // where the fake listens (no secret)
	close    func()
	// lines lists the requests received, each with its conversation.
	lines func(ctx context.Context, db *store.DB) []crmLine
}

// startDemoCRM starts the fake CRM name and configures its connector in
// cfg.
func startDemoCRM(name string, cfg *config.Config) (*demoCRM, error) {
	switch name {
	case "hubspot":
		hs := hubspottest.New()
		h := &cfg.Connectors.HubSpot
		h.Token, h.APIURL, h.DefaultOwner, h.AssociateContacts = hs.Token, hs.URL, "1001", true
		h.Owners = map[string]string{}
		for i, ext := range demoAgents {
			h.Owners[ext] = fmt.Sprint(1100 + i)
		}
		hs.AddContact("5551234") // the captures' caller: its call is associated
		return &demoCRM{name: name, title: "HubSpot", endpoint: config.HubSpotEndpointID, url: hs.URL, close: hs.Close,
			lines: func(context.Context, *store.DB) []crmLine { return hubspotLines(hs.Requests()) }}, nil
	case "bitrix24":
		portal := bitrix24test.Start()
		b := &cfg.Connectors.Bitrix24
		b.WebhookURL, b.DefaultUser = portal.URL, 1
		b.Users = map[string]int{}
		for i, ext := range demoAgents {
			b.Users[ext] = 10 + i
		}
		return &demoCRM{name: name, title: "Bitrix24", endpoint: config.Bitrix24EndpointID, url: bitrix24.Redact(portal.URL), close: portal.Close,
			lines: func(ctx context.Context, db *store.DB) []crmLine { return bitrixLines(ctx, db, portal.Calls()) }}, nil
	case "zammad":
		zm := zammadtest.Start()
		z := &cfg.Connectors.Zammad
		z.URL = zm.URL
		z.Users = map[string]string{"100": "Anna Agent", "101": "Ben Agent", "1000": "Anna Agent", "1100": "Ben Agent"}
		return &demoCRM{name: name, title: "Zammad", endpoint: config.ZammadEndpointID, url: zammad.Redact(zm.URL), close: zm.Close,
			lines: func(context.Context, *store.DB) []crmLine { return zammadLines(zm.Calls()) }}, nil
	}
	return nil, usageError{fmt.Errorf("--crm must be one of %s, got %q", strings.Join(demoCRMs, ", "), name)}
}

// report prints, per call, what the CRM received, then the dead letters
// (what the CRM refused for good) with their reason.
func (c *demoCRM) report(ctx context.Context, w io.Writer, db *store.DB) {
	lines := c.lines(ctx, db)
	fmt.Fprintf(w, "\n%s received %d requests (fake %s at %s), per call:\n", c.title, len(lines), c.title, c.url)
	var order []string
	byConv := map[string][]string{}
	for _, l := range lines {
		if _, ok := byConv[l.conv]; !ok {
			order = append(order, l.conv)
		}
		byConv[l.conv] = append(byConv[l.conv], l.text)
	}
	for _, conv := range order {
		name := conv
		if name == "" {
			name = "(no call)"
		} else if len(name) > 12 {
			name = "…" + name[len(name)-6:]
		}
		fmt.Fprintf(w, "  call %s\n", name)
		for _, t := range byConv[conv] {
			fmt.Fprintf(w, "    %s\n", t)
		}
	}
	as, err := db.Attempts(ctx, c.endpoint, 1000, time.Time{})
	var dead []bridge.Attempt
	for _, a := range as {
		if a.Outcome == bridge.DeliveryDead {
			dead = append(dead, a)
		}
	}
	if err == nil && len(dead) > 0 {
		fmt.Fprintf(w, "  %d events not delivered to %s (dead letters; GET /v1/webhooks/%s/dead):\n", len(dead), c.title, c.endpoint)
		for _, a := range dead {
			fmt.Fprintf(w, "    %s: %s\n", a.EventID, a.Error)
		}
	}
}

// settled reports whether every event for the CRM is delivered or dead.
func (c *demoCRM) settled(ctx context.Context, db *store.DB) bool {
	ds, err := db.PendingDeliveries(ctx, c.endpoint, 0, 1)
	return err == nil && len(ds) == 0
}

// kv renders the given keys of params that are set, in order.
func kv(params map[string]any, keys ...string) string {
	var out []string
	for _, k := range keys {
		if v, ok := params[k]; ok && fmt.Sprint(v) != "" {
			out = append(out, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(out, " ")
}

var reTitleConv = regexp.MustCompile(`\(ctibridge (conv_[A-Za-z0-9]+)\)`)

// hubspotLines reads the fake HubSpot's requests: a create's title holds
// the conversation id, later requests name the engagement; a contact
// search belongs to the create after it.
func hubspotLines(rs []hubspottest.Request) []crmLine {
	convOf := map[string]string{}
	var out []crmLine
	var pending []int // contact searches waiting for their create
	for _, r := range rs {
		p := r.Props()
		conv := ""
		if m := reTitleConv.FindStringSubmatch(p["hs_call_title"]); m != nil {
			conv = m[1]
		} else if r.Op == "search-calls" {
			b, _ := json.Marshal(r.Body)
			if m := reTitleConv.FindStringSubmatch(strings.ReplaceAll(string(b), `\u0026`, "&")); m != nil {
				conv = m[1]
			}
		}
		if conv == "" {
			conv = convOf[r.ID]
		}
		if r.ID != "" && conv != "" {
			convOf[r.ID] = conv
		}
		text := fmt.Sprintf("%-5s %-40s %-15s", r.Method, r.Path, r.Op)
		var fields []string
		for _, k := range []string{"hs_call_direction", "hs_call_status", "hs_call_from_number", "hs_call_to_number", "hubspot_owner_id", "hs_call_duration", "hs_call_recording_url"} {
			if v, ok := p[k]; ok {
				fields = append(fields, strings.TrimPrefix(strings.TrimPrefix(k, "hs_call_"), "hubspot_")+"="+v)
			}
		}
		if c := r.Contact(); c != "" {
			fields = append(fields, "associated contact="+c)
		}
		if strings.HasPrefix(r.Op, "search-") {
			fields = append(fields, fmt.Sprintf("for %s: %d found", strings.Join(r.Searched(), " or "), r.Found))
		}
		text += " " + strings.Join(fields, " ")
		text = strings.TrimRight(text, " ") + fmt.Sprintf(" → %d", r.Status)
		if r.Op == "create" && r.ID != "" {
			text += " id " + r.ID
		}
		out = append(out, crmLine{conv: conv, text: text})
		switch {
		case r.Op == "search-contacts":
			pending = append(pending, len(out)-1)
		case r.Op == "create":
			for _, i := range pending {
				out[i].conv = conv
			}
			pending = nil
		}
	}
	// Keep each call's requests together, in the order of its first one.
	return groupStable(out)
}

// bitrixLines reads the fake portal's requests: register carries the
// conversation id (EXTERNAL_CALL_ID); later ones the CALL_ID the portal
// gave, which the connector keeps per conversation.
func bitrixLines(ctx context.Context, db *store.DB, cs []bitrix24test.Call) []crmLine {
	convOf := map[string]string{}
	for _, c := range cs {
		conv, _ := c.Params["EXTERNAL_CALL_ID"].(string)
		if conv == "" {
			continue
		}
		b, err := db.ConnectorState(ctx, bitrix24.Name, conv)
		var st struct {
			CallID string `json:"call_id"`
		}
		if err == nil && json.Unmarshal(b, &st) == nil && st.CallID != "" {
			convOf[st.CallID] = conv
		}
	}
	var out []crmLine
	for _, c := range cs {
		conv, _ := c.Params["EXTERNAL_CALL_ID"].(string)
		if conv == "" {
			conv = convOf[fmt.Sprint(c.Params["CALL_ID"])]
		}
		out = append(out, crmLine{conv: conv, text: fmt.Sprintf("POST %-37s %s", c.Method,
			kv(c.Params, "USER_ID", "PHONE_NUMBER", "TYPE", "SHOW", "CRM_CREATE", "DURATION", "STATUS_CODE", "FAILED_REASON", "RECORD_URL"))})
	}
	return groupStable(out)
}

// zammadLines reads the fake Zammad's requests: callId is the
// conversation id.
func zammadLines(cs []zammadtest.Call) []crmLine {
	var out []crmLine
	for _, c := range cs {
		conv, _ := c.Params["callId"].(string)
		out = append(out, crmLine{conv: conv, text: fmt.Sprintf("POST /api/v1/cti/*** %-8s %s", c.Event,
			kv(c.Params, "direction", "from", "to", "user", "queue", "answeringNumber", "cause"))})
	}
	return groupStable(out)
}

// groupStable orders lines by their call's first line, keeping each
// call's lines in order.
func groupStable(ls []crmLine) []crmLine {
	first := map[string]int{}
	for i, l := range ls {
		if _, ok := first[l.conv]; !ok {
			first[l.conv] = i
		}
	}
	out := slices.Clone(ls)
	sort.SliceStable(out, func(i, j int) bool { return first[out[i].conv] < first[out[j].conv] })
	return out
}
