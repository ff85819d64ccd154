package faults

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"github.com/ctibridge/ctibridge/bridge"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/ami/amitest"
	"github.com/ctibridge/ctibridge/esl/esltest"
	"github.com/ctibridge/ctibridge/webhooks/webhookstest"
)

// oversize is what a broken or hostile PBX sends: 10 MB in one message.
const oversize = 10 << 20

// peakGrowth runs fault against a child and reports how much its peak RSS
// (VmHWM) grew: a reader that buffered the message would grow by about
// its size, or more with slice doubling.
func peakGrowth(p *proc, fault func()) int64 {
	time.Sleep(300 * time.Millisecond) // let start-up allocations settle
	// Reset VmHWM to the current RSS, so a start-up peak cannot hide a
	// buffered message under it. Without clear_refs (not Linux, no
	// permission) the peak since start is all there is.
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid), []byte("5"), 0)
	_, before := p.mem()
	fault()
	_, after := p.mem()
	return after - before
}

// TestOversizeAMI: a 10 MB line, and a 10 MB frame of short lines, from
// the Asterisk simulator go past the reader's limits (64 KiB line, 1 MiB
// frame) and past the 4 MiB it reads on looking for the frame's end (a
// frame a little over is skipped, ami's TestClient_OversizeSkipped): the
// connection is reset and rebuilt, nothing is buffered.
func TestOversizeAMI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		raw  func() []byte
	}{
		{"line", func() []byte { return bytes.Repeat([]byte("x"), oversize) }},
		{"frame", func() []byte {
			return append([]byte("Event: Newchannel\r\n"), bytes.Repeat([]byte("Variable: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"), oversize/50)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sim := amitest.NewTestServer(t, amitest.ServerOptions{})
			// A ping waits behind the megabytes the reader skips; with the
			// suite's 1 s action_timeout a loaded machine could drop the
			// link as dead before the reader refused the frame.
			p := startProc(t, dir, conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: filepath.Join(dir, "c.db"),
				PingInterval: "10s", ActionTimeout: "60s"}, procOpts{})
			if !waitFor(10*time.Second, p.ready) {
				t.Fatalf("not ready\n%s", p.log.tail(3000))
			}
			raw := tc.raw()
			growth := peakGrowth(p, func() {
				go sim.SendRaw(raw) // returns once the bridge has hung up
				if !waitFor(60*time.Second, func() bool { return amiSessions(sim) >= 2 && p.ready() }) {
					t.Fatalf("no new session after the oversize %s\n%s", tc.name, p.log.tail(3000))
				}
			})
			if !p.waitLog("oversize input refused", 30*time.Second) {
				t.Errorf("no 'oversize input refused' log line\n%s", p.log.tail(3000))
			}
			t.Logf("peak RSS grew by %d KB", growth>>10)
			if growth > 4<<20 {
				t.Errorf("peak RSS grew by %d MB on a 10 MB %s: it was buffered", growth>>20, tc.name)
			}
		})
	}
}

// TestOversizeESL: a Content-Length of 10 MB, and a 10 MB envelope line,
// from the FreeSWITCH simulator are refused before anything is allocated
// for them: the connection is reset and rebuilt.
func TestOversizeESL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send func(*eslSim)
	}{
		{"content-length", func(s *eslSim) { s.SendOversize(oversize) }},
		{"envelope line", func(s *eslSim) { s.Send(append([]byte("Content-Type: "), bytes.Repeat([]byte("x"), oversize)...)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sim := newESL(t, esltest.Options{})
			p := startProc(t, dir, conf{PBXType: "freeswitch", PBXAddr: sim.Addr(), PBXSecret: "ClueCon",
				DB: filepath.Join(dir, "c.db")}, procOpts{})
			if !waitFor(10*time.Second, p.ready) {
				t.Fatalf("not ready\n%s", p.log.tail(3000))
			}
			growth := peakGrowth(p, func() {
				go tc.send(sim)
				if !waitFor(60*time.Second, func() bool { return sim.Subscriptions() >= 2 && p.ready() }) {
					t.Fatalf("no new session after the oversize %s\n%s", tc.name, p.log.tail(3000))
				}
			})
			t.Logf("peak RSS grew by %d KB", growth>>10)
			if growth > 4<<20 {
				t.Errorf("peak RSS grew by %d MB on a 10 MB %s: it was buffered", growth>>20, tc.name)
			}
		})
	}
}

// TestWebhookRedirectNotFollowed: a CRM answering 307 to another URL gets
// retries; the other URL never sees a signed event.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	secret := bridge.NewWebhookSecret()
	elsewhere := webhookstest.NewReceiver(t, secret)
	crm := webhookstest.NewReceiver(t, secret)
	for range 2 {
		crm.Script(webhookstest.Response{Status: 307, Location: elsewhere.URL})
	}
	e := startCRM(t, []endpoint{{"crm", crm.URL, secret}}, nil)
	e.playCalls(t, 1)
	if !e.drained(20 * time.Second) {
		t.Error("not delivered after the redirects stopped")
	}
	if n := len(elsewhere.Requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if !e.p.waitLog("not followed", time.Second) {
		t.Error("the attempt log does not say the redirect was not followed")
	}
	v := e.finish(t, "crm", fromReceiver(crm.Requests()), allChecks)
	if v.Sent == 0 || len(crm.Requests()) < v.Sent+2 {
		t.Errorf("%d requests for %d events and 2 redirects", len(crm.Requests()), v.Sent)
	}
}

// TestWebhookAddressPolicy: link-local and cloud metadata IP literals stop
// the start (exit 2 naming the key); with delivery.allow_loopback false a
// URL whose host name resolves only to loopback is refused after DNS and
// its deliveries are dead-lettered at once, with the reason.
func TestWebhookAddressPolicy(t *testing.T) {
	t.Parallel()
	secret := bridge.NewWebhookSecret()
	rcv := newLedger(t, secret)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(rcv.URL, "/hook"), "http://"))

	// An IP literal the policy refuses is refused with the config: exit 2,
	// naming the key and the reason.
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	for _, tc := range []struct{ url, reason string }{
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address: always refused"},
		{"http://169.254.10.10/hook", "169.254.10.10 is a link-local address: refused by delivery.allow_link_local"},
	} {
		os.WriteFile(path, []byte(conf{PBXAddr: "127.0.0.1:1", PBXSecret: "x", DB: filepath.Join(dir, "c.db"),
			Endpoints: []endpoint{{"ep", tc.url, secret}}}.yaml()), 0o600)
		cmd := exec.Command(binary(t), "check", "--config", path)
		cmd.Env = childEnv()
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "webhooks[0].url: host "+tc.reason) {
			t.Errorf("%s: %v %s; want exit 2 naming webhooks[0].url and %q", tc.url, err, out, tc.reason)
		}
	}

	// A name that resolves only to refused addresses: its deliveries are
	// dead at once, with the reason, and nothing reaches the receiver.
	no := false
	e := startCRM(t, []endpoint{{"localhost", "http://localhost:" + port + "/hook", secret}}, func(c *conf) { c.AllowLoopback = &no })
	e.playCalls(t, 1)
	if !waitFor(10*time.Second, func() bool {
		line := logLine(e.p.log.String(), "refused by delivery policy")
		return strings.Contains(line, `"endpoint":"localhost"`) && strings.Contains(line, "localhost resolves only to refused addresses") &&
			strings.Contains(line, "is a loopback address: refused by delivery.allow_loopback")
	}) {
		t.Errorf("no address refusal naming the reason in the log\n%s", grepLog(e.p.log.String(), `"endpoint":"localhost"`))
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.snapshot()); n != 0 {
		t.Errorf("the loopback receiver got %d requests with allow_loopback false", n)
	}
}

// TestSecretsNeverLogged runs serve with distinctive secrets through the
// failure paths that talk about credentials: a refused AMI login, an
// unreachable PBX, a refused ESL password, a CRM answering 401, a webhook
// secret that is not valid base64, and config errors. None of the secrets
// may appear in the log, /readyz or /metrics.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	const (
		amiSecret = "AMI-s3cret-7f2b9c"
		eslSecret = "ESL-passw0rd-1d8e4a"
	)
	whKey := base64.StdEncoding.EncodeToString([]byte("webhook-key-9a7c5e3b1d-distinct"))
	whSecret := "whsec_" + whKey
	badSecret := "whsec_not*base64*BADKEY-0c4f"
	forbidden := []string{amiSecret, eslSecret, whKey, badSecret, "BADKEY-0c4f"}
	check := func(t *testing.T, where, text string) {
		t.Helper()
		for _, s := range forbidden {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("a secret appears in %s: ...%s...", where, text[max(0, i-200):min(len(text), i+len(s)+50)])
			}
		}
	}

	t.Run("asterisk", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sim := amitest.NewTestServer(t, amitest.ServerOptions{Secret: "the-right-one"})
		crm := webhookstest.NewReceiver(t, whSecret)
		crm.Respond(func(webhookstest.Delivery) webhookstest.Response { return webhookstest.Response{Status: 401} })
		p := startProc(t, dir, conf{PBXAddr: sim.Addr(), PBXSecret: amiSecret, DB: filepath.Join(dir, "c.db"),
			Endpoints: []endpoint{{"crm", crm.URL, whSecret}}}, procOpts{})
		if !waitFor(10*time.Second, func() bool { return refusedLogins(sim) >= 2 }) {
			t.Fatal("no refused login")
		}
		_, body, _ := p.get("/readyz")
		check(t, "/readyz", fmt.Sprint(body))
		// Let it in, make events for the 401, then take the PBX away. (A
		// malformed webhook secret never gets this far: "config errors".)
		sim.SetSecret(amiSecret)
		if !waitFor(10*time.Second, p.ready) {
			t.Fatalf("not ready\n%s", p.log.tail(3000))
		}
		if err := sim.Play("inbound-call-basic", amitest.PlayOptions{Rewrite: true}); err != nil {
			t.Fatal(err)
		}
		if !waitFor(10*time.Second, func() bool { return len(crm.Requests()) >= 2 }) {
			t.Error("no 401 answered")
		}
		sim.Close()
		if !waitFor(10*time.Second, func() bool { _, b, _ := p.get("/readyz"); return b["pbx_error"] != nil }) {
			t.Error("unreachable PBX not reported")
		}
		_, body, _ = p.get("/readyz")
		check(t, "/readyz", fmt.Sprint(body))
		check(t, "/metrics", fmt.Sprint(p.metrics()))
		if err := p.term(); err != nil {
			t.Error(err)
		}
		check(t, "the log", p.log.String())
	})
	t.Run("freeswitch", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sim := newESL(t, esltest.Options{Password: "the-right-one"})
		p := startProc(t, dir, conf{PBXType: "freeswitch", PBXAddr: sim.Addr(), PBXSecret: eslSecret,
			DB: filepath.Join(dir, "c.db")}, procOpts{})
		if !p.waitLog("rejected the event socket password", 10*time.Second) {
			t.Errorf("no log line for the refused password\n%s", p.log.tail(2000))
		}
		_, body, _ := p.get("/readyz")
		check(t, "/readyz", fmt.Sprint(body))
		if err := p.term(); err != nil {
			t.Error(err)
		}
		check(t, "the log", p.log.String())
	})
	t.Run("api keys", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sim := amitest.NewTestServer(t, amitest.ServerOptions{})
		cfg := conf{PBXAddr: sim.Addr(), PBXSecret: "bridgepass", DB: filepath.Join(dir, "c.db"), LogLevel: "debug"}
		p := startProc(t, dir, cfg, procOpts{})
		create := exec.Command(binary(t), "apikey", "create", "--name", "crm", "--scopes", "control", "--config", filepath.Join(dir, "ctibridge.yaml"))
		create.Env = childEnv()
		var stderr bytes.Buffer
		create.Stderr = &stderr
		out, err := create.Output()
		key := strings.TrimSpace(string(out))
		if err != nil || !strings.HasPrefix(key, "ctb_") {
			t.Fatalf("apikey create: %v %q %s", err, out, stderr.String())
		}
		wrong := key[:len(key)-4] + "zzzz"
		for _, k := range []string{key, wrong} {
			for _, body := range []string{`{"agent":"101","to":"600"}`, `{"agent":"101\r\nAction: Logoff","to":"600"}`} {
				req, _ := http.NewRequest("POST", "http://"+p.HTTP+"/v1/calls", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+k)
				req.Header.Set("Content-Type", "application/json")
				res, err := httpc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(res.Body)
				res.Body.Close()
				check(t, "an API answer", string(answer))
				if k == wrong && res.StatusCode != 401 {
					t.Errorf("a wrong key answered %d", res.StatusCode)
				}
			}
		}
		list, _ := exec.Command(binary(t), "apikey", "list", "--config", filepath.Join(dir, "ctibridge.yaml")).CombinedOutput()
		if err := p.term(); err != nil {
			t.Error(err)
		}
		for where, text := range map[string]string{"the log": p.log.String(), "apikey list": string(list)} {
			for _, k := range []string{key, key[4:], wrong} {
				if strings.Contains(text, k) {
					t.Errorf("an API key appears in %s", where)
				}
			}
		}
	})
	t.Run("config errors", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "c.yaml")
		for _, tc := range []struct {
			env     []string
			webhook string
		}{
			{[]string{"CTIBRIDGE_PBX__SECRET=" + amiSecret + "\nAction: Logoff"}, whSecret},
			{nil, "whsec_BADKEY-0c4f"}, // too short
			{nil, badSecret},
		} {
			os.WriteFile(path, []byte(conf{PBXAddr: "127.0.0.1:1", PBXSecret: amiSecret, DB: filepath.Join(dir, "c.db"),
				Endpoints: []endpoint{{"crm", "http://127.0.0.1:1/", tc.webhook}}}.yaml()), 0o600)
			cmd := exec.Command(binary(t), "check", "--config", path)
			cmd.Env = append(childEnv(), tc.env...)
			out, err := cmd.CombinedOutput()
			t.Logf("check: %v: %s", err, bytes.TrimSpace(out))
			if !strings.Contains(string(out), "config: ") {
				t.Errorf("check took a bad config: %v %s", err, out)
			}
			check(t, "a config error", string(out))
		}
	})
}
