package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/bridge"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// chromium starts a headless Chromium (Debian's chromium package). It is
// never skipped: CI installs it (.ci/run), and a machine without it fails.
func chromium(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed (apt-get install -y chromium): the agent panel is tested in a real browser")
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(820, 1000),
	)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// tab opens another tab of the same browser (its own page, shared cookie
// jar: cookies are per host, so agents sign in on different host names).
func tab(t *testing.T, browser context.Context) context.Context {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// Opened on ctx itself: the first run binds the tab's life to the
	// context it is given, and browse's are cancelled after each step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return ctx
}

// browse runs browser steps with a generous bound against a hang only.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs one browser action that returns a value.
func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shots is where screenshots go: $CTIBRIDGE_PANEL_SCREENSHOTS, else a
// temporary directory of the test.
func shots(t *testing.T) string {
	if d := os.Getenv("CTIBRIDGE_PANEL_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := read(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", filepath.Join(dir, name))
}

func (h *harness) sawType(typ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.types, typ)
}

func actions(sim *amitest.Server, name string) int {
	n := 0
	for _, a := range sim.Actions() {
		if strings.EqualFold(a.Field("Action"), name) {
			n++
		}
	}
	return n
}

// An agent as a person: signs in to the panel in Chromium, sees the call
// that rings their phone pop up with the caller's number and the CRM link,
// hangs it up with one click (exactly one Hangup reaches the PBX); a second
// agent's panel shows nothing of it; another site's page can neither dial
// through /c2c nor post with the agent's cookie.
func TestPanelInBrowser(t *testing.T) {
	browser := chromium(t)
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.Commands.AgentDial, cfg.Commands.Context = "Local/{agent}@agents", "inbound"
	cfg.HTTP.Panel.CRMURL = "https://itop.example.com/pages/exec.php?exec_module=combodo-telephony-integration&exec_page=index.php&phone={{e164}}"
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	_, port, _ := net.SplitHostPort(h.run.HTTPAddr)
	panel100 := "http://127.0.0.1:" + port // agent 100 signs in here,
	panel101 := "http://localhost:" + port // agent 101 on another host name (its own cookie)
	keyIDs := map[string]string{}
	key := func(ext string) string {
		plain, k, err := h.run.DB.CreateAgentAPIKey(context.Background(), "agent "+ext, []string{"read", "control"}, ext)
		if err != nil {
			t.Fatal(err)
		}
		keyIDs[ext] = k.ID
		return plain
	}
	key100, key101 := key("100"), key("101")
	dir := shots(t)
	connected := chromedp.Poll[chromedp.Void](`document.getElementById("link").textContent === "Connected"`)

	// Agent 100 pastes the key into the sign-in form.
	a100 := tab(t, browser)
	browse(t, a100, "agent 100 signs in",
		chromedp.Navigate(panel100+"/panel/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key100),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#btn-signout")),
		connected)

	// Agent 101 follows a one-time login link, as the demo prints one.
	req, _ := http.NewRequest("POST", panel101+"/panel/links", nil)
	req.Header.Set("Authorization", "Bearer "+key101)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("login link: %v %v", err, res)
	}
	var link struct{ URL string }
	_ = json.NewDecoder(res.Body).Decode(&link)
	res.Body.Close()
	a101 := tab(t, browser)
	browse(t, a101, "agent 101 signs in with the link",
		chromedp.Navigate(link.URL),
		chromedp.WaitVisible(chromedp.CSS("#btn-signout")),
		connected)
	if who := read(t, a101, "who", chromedp.Evaluate[string](`document.getElementById("who").textContent`)); !strings.Contains(who, "101") {
		t.Fatalf("agent 101's panel says %q", who)
	}
	if href := read(t, a101, "location", chromedp.Location()); strings.Contains(href, "ticket") {
		t.Fatalf("the ticket stayed in the address bar: %s", href)
	}

	// The PBX rings agent 100: the frames are played one by one until the
	// call.ringing is committed, then the card must show it.
	frames := amitest.EventsOf(amitest.Frames("inbound-call-basic"))
	next := 0
	playUntil := func(typ string) time.Time {
		t.Helper()
		for !h.sawType(typ) {
			if next == len(frames) {
				t.Fatalf("the capture ended before %s", typ)
			}
			if err := sim.PlayFrames(frames[next:next+1], amitest.PlayOptions{}); err != nil {
				t.Fatal(err)
			}
			next++
			if err := waitFor(context.Background(), 200*time.Millisecond, func() bool { return h.sawType(typ) }); err == nil {
				break
			}
		}
		return time.Now()
	}
	rang := playUntil(bridge.EventCallRinging)
	browse(t, a100, "the ringing card", chromedp.WaitVisible(chromedp.CSS("#card.ringing #caller-number")))
	t.Logf("ringing card shown %v after call.ringing was committed (measured, not asserted: the machine is shared)", time.Since(rang))
	number := read(t, a100, "number", chromedp.Evaluate[string](`document.getElementById("caller-number").textContent`))
	state := read(t, a100, "state", chromedp.Evaluate[string](`document.getElementById("card-state").textContent`))
	crm := read(t, a100, "CRM link", chromedp.Evaluate[string](`document.getElementById("crm-link").href`))
	if number != "5551234" || state != "Ringing" {
		t.Fatalf("card: number %q state %q", number, state)
	}
	if !strings.HasPrefix(crm, "https://itop.example.com/pages/exec.php?exec_module=combodo-telephony-integration&exec_page=index.php&phone=") ||
		!strings.Contains(crm, "5551234") {
		t.Fatalf("CRM link %q", crm)
	}
	screenshot(t, a100, dir, "panel-ringing.png")

	playUntil(bridge.EventCallAnswered)
	browse(t, a100, "the in-call view", chromedp.WaitVisible(chromedp.CSS("#card.talking")))
	screenshot(t, a100, dir, "panel-incall.png")

	// One click on Hang up: one Hangup action on the PBX.
	if n := actions(sim, "Hangup"); n != 0 {
		t.Fatalf("%d Hangup actions before the click", n)
	}
	browse(t, a100, "hang up", chromedp.Click(chromedp.CSS("#btn-hangup")))
	if err := waitFor(context.Background(), 20*time.Second, func() bool { return actions(sim, "Hangup") > 0 }); err != nil {
		t.Fatal("no Hangup reached the PBX after the click")
	}
	if err := sim.PlayFrames(frames[next:], amitest.PlayOptions{}); err != nil { // the PBX reports the end
		t.Fatal(err)
	}
	browse(t, a100, "the card says ended", chromedp.Poll[chromedp.Void](`document.getElementById("card-state").textContent === "Ended"`))
	if n := actions(sim, "Hangup"); n != 1 {
		t.Fatalf("%d Hangup actions for one click, want 1", n)
	}

	// Agent 101's panel shows nothing of it (its stream and history are
	// filtered server-side), though it was open all along.
	hidden := read(t, a101, "card", chromedp.Evaluate[bool](`document.getElementById("card").hidden`))
	text := read(t, a101, "text", chromedp.Evaluate[string](`document.body.innerText`))
	if !hidden || strings.Contains(text, "5551234") {
		t.Fatalf("agent 101's panel shows the call: card hidden %v, text %q", hidden, text)
	}

	// Another site's page, with agent 100's cookie in the browser: a form
	// post, no-cors fetches, a framed /c2c and a link to /c2c.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id="f" method="POST" action="%[1]s/v1/calls" enctype="text/plain" target="sink"><input name='{"agent":"100","to":"666","x":"' value='"}'></form>
<iframe name="sink" id="sink"></iframe>
<iframe src="%[1]s/c2c?number=666"></iframe>
<a id="go" href="%[1]s/c2c?number=666">call us</a>
<script>
let n = 0;
const done = () => { if (++n === 3) { const d = document.createElement("p"); d.id = "done"; d.textContent = "done"; document.body.append(d); } };
document.getElementById("sink").addEventListener("load", done, { once: true });
document.getElementById("f").submit();
fetch("%[1]s/v1/calls", { method: "POST", mode: "no-cors", credentials: "include", body: '{"agent":"100","to":"666"}' }).then(done, done);
fetch("%[1]s/v1/calls/x/hangup", { method: "POST", mode: "no-cors", credentials: "include" }).then(done, done);
</script>`, panel100)
	}))
	t.Cleanup(evil.Close)
	_, evilPort, _ := net.SplitHostPort(strings.TrimPrefix(evil.URL, "http://"))
	attacker := tab(t, browser)
	// localhost is another site than 127.0.0.1; 127.0.0.1 on another port is
	// the same site (SameSite lets the cookie through), another origin.
	for _, origin := range []string{"http://localhost:" + evilPort, "http://127.0.0.1:" + evilPort} {
		browse(t, attacker, "the attacker's page at "+origin,
			chromedp.Navigate(origin+"/"),
			chromedp.WaitReady(chromedp.CSS("#done")))
	}
	// The visitor follows the attacker's link to /c2c: the panel asks first.
	browse(t, attacker, "the attacker's link to /c2c",
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if asked := read(t, attacker, "asked", chromedp.Evaluate[string](`document.getElementById("confirm-number").textContent`)); asked != "666" {
		t.Fatalf("confirmation asks for %q", asked)
	}
	if n := actions(sim, "Originate"); n != 0 {
		t.Fatalf("another site's page dialled %d times", n)
	}
	if n := actions(sim, "Hangup"); n != 1 {
		t.Fatalf("another site's page sent %d more Hangups", n-1)
	}
	// Only the agent's click places it.
	browse(t, attacker, "the agent confirms", chromedp.Click(chromedp.CSS("#btn-confirm-call")))
	if err := waitFor(context.Background(), 20*time.Second, func() bool { return actions(sim, "Originate") > 0 }); err != nil {
		t.Fatal("the confirmed click-to-call was not placed")
	}
	for _, a := range sim.Actions() {
		if strings.EqualFold(a.Field("Action"), "Originate") && !strings.Contains(a.Field("Channel"), "100") {
			t.Fatalf("originate for %s, want agent 100", a.Field("Channel"))
		}
	}
	if n := actions(sim, "Originate"); n != 1 {
		t.Fatalf("%d originates for one confirmation", n)
	}

	// Agent 101's key is revoked (the CLI, another process): the open panel
	// is signed out (its stream ends at the next heartbeat, the reconnect
	// is refused) and says so, rather than "Reconnecting…" for ever.
	if err := h.run.DB.DeleteAPIKey(context.Background(), keyIDs["101"]); err != nil {
		t.Fatal(err)
	}
	browse(t, a101, "agent 101 is signed out", chromedp.WaitVisible(chromedp.CSS("#key")))
	if msg := read(t, a101, "notice", chromedp.Evaluate[string](`document.getElementById("notice").textContent`)); !strings.Contains(msg, "revoked") {
		t.Fatalf("the signed-out panel says %q", msg)
	}
}

// The panel in a CRM's frame: a host page whose origin is listed in
// http.panel.frame_ancestors hears that the agent is signed in and that a
// call rings (postMessage, call state out); a page at another origin
// framing it hears nothing (the panel posts to listed origins only, and the
// CSP keeps it from loading there at all).
func TestPanelEmbeddedInBrowser(t *testing.T) {
	browser := chromium(t)
	var panelURL string // set once the bridge listens, before any page loads
	hostPage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>CRM</title>
<iframe id="p" src="%[1]s/panel" title="Phone" width="400" height="300"></iframe><pre id="log"></pre>
<script>
window.addEventListener("message", (e) => {
  if (e.origin !== %[2]q || !e.data || e.data.source !== "ctibridge") return;
  const d = e.data;
  document.getElementById("log").textContent += (d.type === "ready" ? "ready " + d.agent : d.event + " " + d.call.caller.number) + "\n";
});
</script>`, panelURL, panelURL)
	})
	host := httptest.NewServer(hostPage)
	t.Cleanup(host.Close)
	stranger := httptest.NewServer(hostPage)
	t.Cleanup(stranger.Close)

	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	cfg.HTTP.Panel.FrameAncestors = []string{"'self'", host.URL}
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	panelURL = "http://" + h.run.HTTPAddr
	key, _, err := h.run.DB.CreateAgentAPIKey(context.Background(), "agent 100", []string{"read", "control"}, "100")
	if err != nil {
		t.Fatal(err)
	}
	// Signed in at the top level first; the host is the same site
	// (127.0.0.1, another port), so the SameSite=Strict cookie goes along.
	crm := tab(t, browser)
	browse(t, crm, "sign in",
		chromedp.Navigate(panelURL+"/panel"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#btn-signout")))
	other := tab(t, browser)
	browse(t, other, "another origin frames the panel", chromedp.Navigate(stranger.URL+"/"))
	browse(t, crm, "the CRM frames the panel",
		chromedp.Navigate(host.URL+"/"),
		chromedp.Poll[chromedp.Void](`document.getElementById("log").textContent.includes("ready 100")`))

	frames := amitest.EventsOf(amitest.Frames("inbound-call-basic"))
	for i := 0; !h.sawType(bridge.EventCallRinging); i++ {
		if i == len(frames) {
			t.Fatal("the capture ended before call.ringing")
		}
		if err := sim.PlayFrames(frames[i:i+1], amitest.PlayOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = waitFor(context.Background(), 200*time.Millisecond, func() bool { return h.sawType(bridge.EventCallRinging) })
	}
	browse(t, crm, "the CRM hears the ring",
		chromedp.Poll[chromedp.Void](`document.getElementById("log").textContent.includes("call.ringing 5551234")`))
	if log := read(t, other, "the other origin's log", chromedp.Evaluate[string](`document.getElementById("log").textContent`)); log != "" {
		t.Fatalf("a page at an unlisted origin heard: %q", log)
	}
}

// A call the dialplan records before it rings the agent (MixMonitor, then
// Dial): the agent's stream starts at the ring, so the card learns of the
// recording from the call's own events and offers to stop it.
func TestPanelKnowsEarlierRecording(t *testing.T) {
	browser := chromium(t)
	sim := newAsterisk(t)
	secret := bridge.NewWebhookSecret()
	rcv := webhookstest.NewReceiver(t, secret)
	cfg := asteriskConfig(t, sim.Addr(), rcv.URL, secret)
	h := startBridge(t, cfg, rcv)
	h.waitLink(true)
	_, port, _ := net.SplitHostPort(h.run.HTTPAddr)
	key, _, err := h.run.DB.CreateAgentAPIKey(context.Background(), "agent 100", []string{"read", "control"}, "100")
	if err != nil {
		t.Fatal(err)
	}
	tab100 := tab(t, browser)
	browse(t, tab100, "agent 100 signs in",
		chromedp.Navigate("http://127.0.0.1:"+port+"/panel/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#btn-signout")),
		chromedp.Poll[chromedp.Void](`document.getElementById("link").textContent === "Connected"`))
	frames := amitest.EventsOf(amitest.Frames("mixmonitor"))
	for next := 0; !h.sawType(bridge.EventCallAnswered); next++ {
		if next == len(frames) {
			t.Fatal("the capture ended before call.answered")
		}
		if err := sim.PlayFrames(frames[next:next+1], amitest.PlayOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = waitFor(context.Background(), 200*time.Millisecond, func() bool { return h.sawType(bridge.EventCallAnswered) })
	}
	if !h.sawType(bridge.EventRecordingStarted) {
		t.Fatal("the capture's recording.started was not committed")
	}
	browse(t, tab100, "the card offers to stop the recording",
		chromedp.WaitVisible(chromedp.CSS("#card.talking")),
		chromedp.Poll[chromedp.Void](`document.getElementById("btn-record").textContent === "Stop recording"`))
}
