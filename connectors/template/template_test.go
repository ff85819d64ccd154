package template_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/connectors/connectorstest"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/connectors/template"
	"github.com/ctibridge/ctibridge/connectors/template/templatetest"
)

// The connectors' shared test helpers.
type (
	memState = connectorstest.MemState
)

func newState() *memState { return &memState{} }

func compile(t *testing.T, src string, secrets map[string]string) *template.Template {
	t.Helper()
	spec, err := template.ParseYAML("t1", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := template.Compile("t1", spec, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// event is a ringing event whose caller name and number are hostile.
func event(typ, name, number string) bridge.Event {
	d := template.Sample(typ)
	d.Call.Caller.Name, d.Call.Caller.Number = name, number
	return d.Event
}

var hostile = []string{`"</x><y>`, `a&b=c`, `"},"x":1`, `x" y="1`, "line\r\nX-Evil: 1", `\"`, `]]>`, `<!--`, `..`, `%2F../?#`, "\x00\x1b", "名前 ☎"}

// A hostile caller name stays one value in every encoding: the escaping is
// automatic, the template writes {{.Call.Caller.Name}} plainly.
func TestHostileValuesStayValues(t *testing.T) {
	for _, tc := range []struct {
		enc, body string
		check     func(t *testing.T, body []byte, want string)
	}{
		{"json", `{"name": "{{.Call.Caller.Name}}", "bare": {{.Call.Caller.Name}}, "n": {{.Call.DurationS}}, "pre": "Call from {{.Call.Caller.Name}}!"}`,
			func(t *testing.T, body []byte, want string) {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				want = strings.ToValidUTF8(want, "\uFFFD")
				if len(m) != 4 || m["name"] != want || m["bare"] != want || m["n"] != 65.0 || m["pre"] != "Call from "+want+"!" {
					t.Errorf("%q → %s", want, body)
				}
			}},
		{"xml", `<r a="{{.Call.Caller.Name}}"><n>{{.Call.Caller.Name}}</n></r>`,
			func(t *testing.T, body []byte, want string) {
				var r struct {
					A string `xml:"a,attr"`
					N string `xml:"n"`
				}
				if err := xml.Unmarshal(body, &r); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				if !xmlSame(r.A, want) || !xmlSame(r.N, want) || bytes.Count(body, []byte("<")) != 4 {
					t.Errorf("%q → %s", want, body)
				}
			}},
		{"form", "name={{.Call.Caller.Name}}\n&num={{.Call.Caller.Number}}",
			func(t *testing.T, body []byte, want string) {
				v, err := url.ParseQuery(string(body))
				if err != nil || len(v) != 2 || v.Get("name") != want || v.Get("num") != want {
					t.Errorf("%q → %s (%v)", want, body, err)
				}
			}},
	} {
		t.Run(tc.enc, func(t *testing.T) {
			tp := compile(t, `on: [call.ringing]
request:
  method: POST
  url: 'https://crm.example.com/calls/{{.Call.Caller.Name}}?q={{.Call.Caller.Name}}'
  encoding: `+tc.enc+`
  headers:
    X-Caller: '{{.Call.Caller.Name}}'
  body: '`+strings.ReplaceAll(tc.body, "'", "''")+`'
`, nil)
			for _, h := range hostile {
				r, err := tp.Render(&template.Data{Event: event("call.ringing", h, h)})
				if err != nil {
					t.Fatalf("%q: %v", h, err)
				}
				tc.check(t, r.Body, h)
				u, err := url.Parse(r.URL)
				if err != nil || u.Host != "crm.example.com" || u.Query().Get("q") != h || len(u.Query()) != 1 ||
					strings.Count(u.EscapedPath(), "/") != 2 || strings.HasSuffix(u.EscapedPath(), "/..") {
					t.Errorf("%q → URL %s", h, r.URL)
				}
				if v := r.Header.Get("X-Caller"); strings.ContainsAny(v, "\r\n") || len(r.Header) != 3 {
					t.Errorf("%q → headers %v", h, r.Header)
				}
			}
		})
	}
}

// xmlSame compares a value read back from XML: invalid characters become
// U+FFFD, and XML normalises \r\n to \n.
func xmlSame(got, sent string) bool {
	var sb strings.Builder
	for _, r := range strings.ToValidUTF8(sent, "\uFFFD") {
		if r == 0 || r == 0x1b {
			r = '\uFFFD'
		}
		sb.WriteRune(r)
	}
	return got == sb.String()
}

// A value inside a tag but outside an attribute's quotes could add an
// attribute: refused at the trial render, naming the field and place.
func TestXMLValueOutsideQuotesRefused(t *testing.T) {
	spec, err := template.ParseYAML("x", []byte(`on: [call.ringing]
request: {url: 'https://crm.example.com/', encoding: xml, body: '<r a={{.ID}}/>'}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = template.Compile("x", spec, nil)
	if err == nil || !strings.Contains(err.Error(), `template "x": request.body:`) || !strings.Contains(err.Error(), "attribute's quotes") {
		t.Fatalf("err %v", err)
	}
}

// Every mistake is found at load, naming the template, the field and the
// problem (line and column for template syntax), and a secret pasted where
// its name belongs is not repeated.
func TestCompileErrors(t *testing.T) {
	base := "on: [call.ringing]\nrequest: {url: 'https://crm.example.com/x'}\n"
	for _, tc := range []struct{ src, want string }{
		{"on: [call.rang]\nrequest: {url: 'https://crm.example.com/'}", `on: "call.rang" is not an event type`},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', method: TRACE}", `request.method: "TRACE" is not allowed`},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', encoding: yaml}", `request.encoding: "yaml" is not an encoding`},
		{"on: [call.ringing]\nrequest: {url: 'https://{{.PBX}}.example.com/'}", "request.url: must start with http(s)://host written out"},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com{{.PBX}}'}", "request.url: the host must be followed by /"},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', body: \"{\\n  \\\"a\\\": {{.ID}\\n}\"}", "request.body: request.body:2:"},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', body: '{{nosuch .ID}}'}", `request.body: request.body:1: function "nosuch" not defined`},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', body: '{\"a\": {{.Call.Caler.Number}}}'}", "request.body: with a sample call.ringing event: request.body:1:"},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', method: GET, body: 'x'}", "request.body: a GET request has no body"},
		{"on: [call.ringing]\nrequest: {url: 'https://crm.example.com/', headers: {Host: x}}", "request.headers.Host: is set by ctibridge itself"},
		{base + "when: 'eq .Type'\n", "when: "},
		{base + "when: '{{true}}'\n", "when: write the condition without {{ }}"},
		{base + "auth: {kind: magic}\n", `auth.kind: "magic" is not none, basic, bearer, oauth2 or hmac`},
		{base + "auth: {kind: bearer, token: 'sk_live_AbC123'}\n", "auth.token: must be the NAME of a secret"},
		{base + "auth: {kind: bearer, token: crm_token}\n", `auth.token: secret "crm_token" is not set: set connectors.template_secrets.crm_token (CTIBRIDGE_CONNECTORS__TEMPLATE_SECRETS__CRM_TOKEN)`},
		{base + "auth: {kind: oauth2, grant: password, client_id: x, client_secret: s, token_url: 'https://a.example.com/t'}\n", `auth.grant: must be client_credentials or refresh_token`},
		{base + "auth: {kind: hmac, secret: s}\n", "auth.header: is required for kind hmac"},
		{base + "response: {success: [500], capture: {'bad name': x}}\n", "response.success: 500 is not a success status"},
		{base + "response: {capture: {id: 'data[x]'}}\n", "response.capture.id: "},
		{base + "rate: {burst: -1}\n", "rate.burst: must be 1..10000"},
		{base + "bodyy: x\n", `YAML: line 3: unknown key "bodyy" (check the spelling)`},
	} {
		spec, err := template.ParseYAML("crm1", []byte(tc.src))
		if err == nil {
			_, err = template.Compile("crm1", spec, map[string]string{"s": "secret-value"})
		}
		if err == nil || !strings.Contains(err.Error(), `template "crm1": `+tc.want) && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n got %v\nwant %s", tc.src, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sk_live_AbC123") {
			t.Errorf("the pasted secret is repeated: %v", err)
		}
		if err != nil && !strings.Contains(err.Error(), `template "crm1"`) {
			t.Errorf("the template is not named: %v", err)
		}
	}
}

func TestHelpers(t *testing.T) {
	tp := compile(t, `on: [call.answered]
request:
  url: 'https://crm.example.com/'
  body: |
    {"e": "{{e164 "49" .Call.Caller.Number}}", "i": "{{e164 "49" "+1 (555) 123-4567"}}", "z": "{{e164 "49" "0044 20 7946 0000"}}",
     "x": "{{e164 "49" "101"}}", "d": "{{digits "+1 (555) 123"}}", "l": "{{lastN 4 .Call.Caller.Number}}",
     "r": "{{rfc3339 .Call.AnsweredAt}}", "ms": {{epochms .Call.StartedAt}}, "f": "{{timefmt "02.01.2006 15:04" (inzone "Europe/Berlin" .Call.StartedAt)}}",
     "u": "{{lookup "users" .Agent.Extension}}", "dflt": "{{default "unknown" .Party}}"}
maps: {users: {"101": "u-101"}}
`, nil)
	r, err := tp.Render(template.Sample("call.answered"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%v %s", err, r.Body)
	}
	want := map[string]any{"e": "+495551234", "i": "+15551234567", "z": "+442079460000", "x": "101", "d": "1555123", "l": "1234",
		"r": "2026-01-02T15:04:10Z", "ms": 1767366245000.0, "f": "02.01.2026 16:04", "u": "u-101", "dflt": "unknown"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// A lookup miss is a clear error, not an empty value.
	d := template.Sample("call.answered")
	d.Agent.Extension = "999"
	if _, err := tp.Render(d); err == nil || !strings.Contains(err.Error(), `"999" is not in maps.users`) {
		t.Errorf("lookup miss: %v", err)
	}
}

// crm is a fake CRM for the delivery tests: it answers with the queued
// statuses, then 200 with a call id.
type crm struct {
	srv   *httptest.Server
	mu    sync.Mutex
	queue []int
	reqs  []*http.Request
	body  []string
	reply string
}

func newCRM(t *testing.T) *crm {
	c := &crm{reply: `{"data":{"call":{"id":"crm-42"}}}`}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.reqs, c.body = append(c.reqs, r), append(c.body, string(b))
		if len(c.queue) > 0 {
			code := c.queue[0]
			c.queue = c.queue[1:]
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(code)
			io.WriteString(w, `{"error":"nope"}`)
			return
		}
		io.WriteString(w, c.reply)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func record(t *testing.T, ev bridge.Event) bridge.Record {
	rec, err := bridge.NewRecord(ev)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// The CRM's call id captured from the first answer is used by the later
// requests of the same call; a repeated event is not sent twice; the
// statuses are classified (429/503 retried with Retry-After, 408 and 5xx
// retried, other 4xx permanent); no secret reaches an error.
func TestDeliverCaptureRetryAndErrors(t *testing.T) {
	fake := newCRM(t)
	secret := "tok-SECRET-123"
	tp := compile(t, `on: [call.ringing, call.ended]
request:
  url: '`+fake.srv.URL+`/calls{{if eq .Type "call.ended"}}/{{.State.crm_id}}{{end}}?key={{secret "crm_token"}}'
  body: '{"type": "{{.Type}}"}'
auth: {kind: bearer, token: crm_token}
response:
  capture: {crm_id: data.call.id}
`, map[string]string{"crm_token": secret})
	state := newState()
	c, err := template.New(template.Options{Template: tp, State: state, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ring := record(t, template.Sample("call.ringing").Event)
	if err := c.Deliver(ctx, ring); err != nil {
		t.Fatal(err)
	}
	if err := c.Deliver(ctx, ring); err != nil { // a replay
		t.Fatal(err)
	}
	end := template.Sample("call.ended").Event
	end.ID = "evt_end"
	for _, tc := range []struct {
		code      int
		permanent bool
		after     time.Duration
	}{{429, false, 7 * time.Second}, {503, false, 7 * time.Second}, {408, false, 0}, {502, false, 0}, {400, true, 0}, {404, true, 0}, {401, true, 0}} {
		fake.mu.Lock()
		fake.queue = []int{tc.code}
		fake.mu.Unlock()
		err := c.Deliver(ctx, record(t, end))
		code, after, perm := bridge.ConnectorOutcome(err)
		if err == nil || code != tc.code || perm != tc.permanent || (tc.after != 0 && after != tc.after) {
			t.Errorf("HTTP %d: err %v code %d after %v permanent %v", tc.code, err, code, after, perm)
		}
		if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "crm-tpl-t1: HTTP") {
			t.Errorf("error %q", err)
		}
	}
	if err := c.Deliver(ctx, record(t, end)); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.reqs) != 9 || fake.reqs[0].URL.Path != "/calls" || fake.reqs[8].URL.Path != "/calls/crm-42" ||
		fake.reqs[8].Header.Get("Authorization") != "Bearer "+secret || fake.body[8] != `{"type": "call.ended"}` {
		t.Errorf("%d requests, last %v %v", len(fake.reqs), fake.reqs[len(fake.reqs)-1].URL, fake.body)
	}
}

// A success answer that is not JSON when something is to be captured is a
// clear permanent error (retrying would do the work twice).
func TestCaptureFromNonJSON(t *testing.T) {
	fake := newCRM(t)
	fake.reply = "<html>ok</html>"
	tp := compile(t, `on: [call.ringing]
request: {url: '`+fake.srv.URL+`/calls', body: '{}'}
response: {capture: {id: data.id}}
`, nil)
	c, _ := template.New(template.Options{Template: tp, State: newState(), Logger: slog.New(slog.DiscardHandler)})
	err := c.Deliver(context.Background(), record(t, template.Sample("call.ringing").Event))
	if _, _, perm := bridge.ConnectorOutcome(err); !perm || !strings.Contains(err.Error(), "the answer is not JSON") || !strings.Contains(err.Error(), "<html>ok</html>") {
		t.Fatalf("err %v", err)
	}
}

// hmac signs the exact body with the named secret; basic sends the user
// and password.
func TestHMACAndBasic(t *testing.T) {
	fake := newCRM(t)
	tp := compile(t, `on: [call.ringing]
request: {url: '`+fake.srv.URL+`/h', body: '{"id": "{{.ID}}"}'}
auth: {kind: hmac, secret: sig, header: X-Signature, prefix: "sha256="}
`, map[string]string{"sig": "k3y"})
	c, _ := template.New(template.Options{Template: tp, State: newState(), Logger: slog.New(slog.DiscardHandler)})
	if err := c.Deliver(context.Background(), record(t, template.Sample("call.ringing").Event)); err != nil {
		t.Fatal(err)
	}
	// HMAC-SHA256("k3y", `{"id": "evt_sample"}`)
	fake.mu.Lock()
	got := fake.reqs[0].Header.Get("X-Signature")
	fake.mu.Unlock()
	if !strings.HasPrefix(got, "sha256=") || got != hmacHex("k3y", `{"id": "evt_sample"}`) {
		t.Errorf("signature %q", got)
	}
	tp = compile(t, `on: [call.ringing]
request: {url: '`+fake.srv.URL+`/b', method: GET}
auth: {kind: basic, username: bob, password: pw}
`, map[string]string{"pw": "hunter2"})
	c, _ = template.New(template.Options{Template: tp, State: newState(), Logger: slog.New(slog.DiscardHandler)})
	if err := c.Deliver(context.Background(), record(t, template.Sample("call.ringing").Event)); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	u, p, ok := fake.reqs[1].BasicAuth()
	fake.mu.Unlock()
	if !ok || u != "bob" || p != "hunter2" {
		t.Errorf("basic %q %q", u, p)
	}
}

// The dry run shows the request with every secret redacted.
func TestDryRunRedacts(t *testing.T) {
	tp := compile(t, `on: [call.ringing]
request:
  url: 'https://crm.example.com/c?api_key={{secret "k"}}'
  headers: {X-Key: '{{secret "k"}}'}
  body: '{"n": "{{.Call.Caller.Number}}"}'
auth: {kind: bearer, token: k}
`, map[string]string{"k": "VERY-s3cret"})
	out, err := tp.DryRun(template.Sample("call.ringing").Event, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "VERY-s3cret") || !strings.Contains(out, "POST https://crm.example.com/c?api_key=***") ||
		!strings.Contains(out, "Authorization: Bearer ***") || !strings.Contains(out, "X-Key: ***") || !strings.Contains(out, `{"n": "05551234"}`) {
		t.Errorf("dry run:\n%s", out)
	}
	out, _ = tp.DryRun(template.Sample("call.ended").Event, nil)
	if !strings.Contains(out, "nothing would be sent") {
		t.Errorf("dry run of an event not in on:\n%s", out)
	}
}

func loadExample(t *testing.T, file string, secrets map[string]string) *template.Template {
	t.Helper()
	src, err := os.ReadFile("examples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(file, ".yaml")
	spec, err := template.ParseYAML(name, src)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := template.Compile(name, spec, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// The shipped examples compile and render what the CRMs document; a fake
// of each checks the requests as the CRM would.
func TestExampleOracleEBS(t *testing.T) {
	tp := loadExample(t, "oracle-ebs.yaml", nil)
	fake := templatetest.NewOracle(t)
	tp = retarget(t, tp, "https://ebs-cti.example.com/cctsdk/event", fake.URL)
	c, _ := template.New(template.Options{Template: tp, State: newState(), Logger: slog.New(slog.DiscardHandler)})
	for _, typ := range []string{"call.ringing", "call.answered", "call.ended"} {
		ev := template.Sample(typ).Event
		ev.ID = "evt_" + typ
		ev.Call.Caller.Number = `555"&<1>`
		if err := c.Deliver(context.Background(), record(t, ev)); err != nil {
			t.Fatalf("%s: %v (refused %v)", typ, err, fake.Refused())
		}
		if typ == "call.answered" {
			// The call transferred to an outside number: its ring and
			// answer (no agent) are no interaction of the agent's.
			for _, ext := range []string{"call.ringing", "call.answered"} {
				ev := template.Sample(ext).Event
				ev.ID, ev.Agent, ev.Party, ev.Number = "evt_ext_"+ext, nil, bridge.PartyExternal, "5559876"
				if err := c.Deliver(context.Background(), record(t, ev)); err != nil {
					t.Fatalf("external %s: %v", ext, err)
				}
			}
		}
	}
	var seq []string
	for _, cl := range fake.Calls() {
		seq = append(seq, cl.Short("occtSourceID", "occtANI", "occtDNIS"))
	}
	want := `ScreenPop(occtSourceID=conv_sample,occtANI=555"&<1>,occtDNIS=101) CallEstablished(occtSourceID=conv_sample) CallReleased(occtSourceID=conv_sample)`
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestExampleZoho(t *testing.T) {
	fake := templatetest.NewZoho(t)
	secrets := map[string]string{"zoho_client_secret": fake.ClientSecret, "zoho_refresh_token": fake.RefreshToken}
	src, _ := os.ReadFile("examples/zoho-phonebridge.yaml")
	s := strings.NewReplacer("https://www.zohoapis.com/phonebridge/v3/callnotify", fake.URL,
		"https://accounts.zoho.com/oauth/v2/token", fake.TokenURL, "1000.YOURCLIENTID", fake.ClientID).Replace(string(src))
	spec, err := template.ParseYAML("zoho", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := template.Compile("zoho", spec, secrets)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := template.New(template.Options{Template: tp, State: newState(), Logger: slog.New(slog.DiscardHandler)})
	missed := template.Sample("call.ended").Event
	missed.ID, missed.Call.Disposition, missed.Agent = "evt_missed", bridge.DispositionNoAnswer, nil
	answeredEnd := template.Sample("call.ended").Event
	answeredEnd.ID = "evt_end"
	for _, ev := range []bridge.Event{template.Sample("call.ringing").Event, template.Sample("call.answered").Event, answeredEnd, missed} {
		if ev.Type == "call.answered" {
			ev.ID = "evt_ans"
			fake.RevokeTokens() // a 401: one renewal, one retry
		}
		if err := c.Deliver(context.Background(), record(t, ev)); err != nil {
			t.Fatalf("%s: %v (refused %v)", ev.Type, err, fake.Refused())
		}
	}
	var seq []string
	for _, cl := range fake.Calls() {
		seq = append(seq, cl.Short("id", "from", "to", "zohouser", "start_time"))
	}
	want := "ringing(id=conv_sample,from=+15551234,to=101,zohouser=100000002) answered(id=conv_sample,from=+15551234,to=101,zohouser=100000002) missed(id=conv_sample,from=+15551234,to=101,zohouser=100000002,start_time=2026-01-02 15:04:05)"
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if fake.Grants() != 2 {
		t.Errorf("%d tokens granted, want 2 (the first, one after the revocation)", fake.Grants())
	}
}

// retarget points a compiled example at a fake by recompiling its spec.
func retarget(t *testing.T, tp *template.Template, from, to string) *template.Template {
	t.Helper()
	spec := tp.Spec
	spec.Request.URL = strings.Replace(spec.Request.URL, from, to, 1)
	out, err := template.Compile(tp.Name, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hmacHex(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// A later step's empty answer (a 204 to the PATCH that ends the call)
// is a success once the id was captured from the first: the event is
// done, not dead-lettered (a replay would send it twice).
func TestCaptureThenEmptyAnswer(t *testing.T) {
	fake := newCRM(t)
	tp := compile(t, `on: [call.ringing, call.ended]
request: {url: '`+fake.srv.URL+`/calls{{with index .State "crm_id"}}/{{.}}{{end}}', body: '{"t": "{{.Type}}"}'}
response: {capture: {crm_id: data.call.id}}
`, nil)
	state := newState()
	c, _ := template.New(template.Options{Template: tp, State: state, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := c.Deliver(ctx, record(t, template.Sample("call.ringing").Event)); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	fake.reply = ""
	fake.mu.Unlock()
	end := template.Sample("call.ended").Event
	end.ID = "evt_end"
	if err := c.Deliver(ctx, record(t, end)); err != nil {
		t.Fatalf("ended: %v", err)
	}
	if err := c.Deliver(ctx, record(t, end)); err != nil { // a replay: done already
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.reqs) != 2 || fake.reqs[1].URL.Path != "/calls/crm-42" {
		t.Errorf("%d requests", len(fake.reqs))
	}
}

// A value right after a backslash in a JSON string would turn its first
// character into an escape (a quote closes the string): refused.
func TestJSONValueAfterBackslashRefused(t *testing.T) {
	spec, err := template.ParseYAML("t1", []byte(`on: [call.ringing]
request: {url: 'https://crm.example.com/x', body: '{"a": "x\{{.Call.Caller.Name}}"}'}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := template.Compile("t1", spec, nil); err == nil || !strings.Contains(err.Error(), "backslash") {
		t.Fatalf("compiled: %v", err)
	}
}

// A render error that quotes a secret (a helper given it by mistake) shows
// *** in the config error and in the dry run.
func TestSecretNotInRenderErrors(t *testing.T) {
	secret := "Europe-SECRET-zone"
	spec, err := template.ParseYAML("t1", []byte(`on: [call.ringing]
request: {url: 'https://crm.example.com/x', body: '{"t": "{{inzone (secret "s1") .Call.StartedAt}}"}'}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = template.Compile("t1", spec, map[string]string{"s1": secret})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("compile: %v", err)
	}
}
