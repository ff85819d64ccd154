package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSimulate runs simulate in this process and returns the address it
// prints, its output so far and its end.
func startSimulate(t *testing.T, args ...string) (addr string, lines chan string, cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := simulate(ctx, args, w, io.Discard)
		w.CloseWithError(io.EOF)
		done <- err
	}()
	// Read every line as it comes: simulate must never wait for the test.
	lines = make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	line := nextLine(t, lines, " on ")
	m := regexp.MustCompile(` on ([^ ]+:\d+):`).FindStringSubmatch(line)
	if m == nil {
		stop()
		t.Fatalf("no address in %q", line)
	}
	var once bool
	cancel = func() error {
		if once {
			return nil
		}
		once = true
		stop()
		return <-done
	}
	t.Cleanup(func() { _ = cancel() })
	return m[1], lines, cancel
}

// nextLine returns the next line containing want.
func nextLine(t *testing.T, lines chan string, want string) string {
	t.Helper()
	var seen []string
	for l := range lines {
		if strings.Contains(l, want) {
			return l
		}
		seen = append(seen, l)
	}
	t.Fatalf("no line with %q in:\n%s", want, strings.Join(seen, "\n"))
	return ""
}

// readUntil reads from c until the bytes read contain want.
func readUntil(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), want) {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("reading for %q: %v; got:\n%s", want, err, got.String())
		}
	}
	return got.String()
}

// simulate --pbx asterisk speaks AMI to any client: it checks the login,
// plays a captured call under fresh ids, prints what it plays, answers an
// Originate with the captured click-to-call, and stops on cancel.
func TestSimulateAsterisk(t *testing.T) {
	addr, lines, stop := startSimulate(t, "--pbx", "asterisk", "--listen", "127.0.0.1:0", "--secret", "s3", "--calls", "1",
		"--scenario", "inbound-call-basic", "--pace", "0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readUntil(t, r, "Asterisk Call Manager")
	io.WriteString(c, "Action: Login\r\nUsername: bridge\r\nSecret: wrong\r\nActionID: 1\r\n\r\n")
	readUntil(t, r, "Authentication failed")
	c.Close()

	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r = bufio.NewReader(c)
	io.WriteString(c, "Action: Login\r\nUsername: bridge\r\nSecret: s3\r\nActionID: 1\r\n\r\n")
	readUntil(t, r, "Authentication accepted")
	call := readUntil(t, r, "Event: Hangup\r\n")
	if !strings.Contains(call, "Event: Newchannel\r\n") || strings.Contains(call, "1795339027.0") {
		t.Errorf("not the capture under fresh ids:\n%s", call)
	}
	nextLine(t, lines, "call 1: playing inbound-call-basic")

	io.WriteString(c, "Action: Originate\r\nActionID: o1\r\nChannel: Local/101@agents\r\nContext: inbound\r\nExten: 600\r\nPriority: 1\r\n"+
		"ChannelId: click-1\r\nOtherChannelId: click-2\r\nAsync: true\r\n\r\n")
	out := readUntil(t, r, "Event: OriginateResponse")
	if !strings.Contains(out, "click-1") {
		t.Errorf("the click-to-call does not carry the ids asked for:\n%s", out)
	}
	nextLine(t, lines, "answering Originate Local/101@agents")
	io.WriteString(c, "Action: Redirect\r\nActionID: r1\r\nChannel: PJSIP/100-00000001\r\nContext: inbound\r\nExten: 200\r\nPriority: 1\r\n\r\n")
	readUntil(t, r, "ActionID: r1")
	nextLine(t, lines, "answering Redirect")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("simulate ended with %v", err)
	}
	// The port is free again: another test's server may take it at once,
	// so only a simulator answering there means it did not stop.
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		banner, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(banner, "Asterisk Call Manager/") {
			t.Error("the simulator still answers after stop")
		}
	}
}

// simulate --pbx freeswitch speaks ESL on the address asked for (relayed
// to the simulator), plays a captured call under fresh uuids.
func TestSimulateFreeSWITCH(t *testing.T) {
	addr, lines, stop := startSimulate(t, "--pbx", "freeswitch", "--listen", "localhost:0", "--secret", "pw", "--calls", "2",
		"--scenario", "basic-call-plain")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readUntil(t, r, "auth/request")
	io.WriteString(c, "auth pw\n\n")
	readUntil(t, r, "+OK accepted")
	io.WriteString(c, "event plain ALL\n\n")
	got := readUntil(t, r, "CHANNEL_HANGUP_COMPLETE")
	if strings.Contains(got, "0085ebeb-a9d3-4ead-b747-874e997b39c0") {
		t.Errorf("captured uuid played as is")
	}
	nextLine(t, lines, "call 1: playing basic-call-plain")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("simulate ended with %v", err)
	}
}

// Bad choices are refused before anything listens.
func TestSimulateRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--pbx", "sip"}, {}, {"--pbx", "asterisk", "--scenario", "login-failure"},
		{"--pbx", "freeswitch", "--rate", "-1"}} {
		err := simulate(context.Background(), args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// SIGTERM stops simulate as a process with exit 0.
func TestSimulateProcessSIGTERM(t *testing.T) {
	cmd, sc, stderr := child(t, "simulate", "--pbx", "asterisk", "--listen", "127.0.0.1:0")
	waitLine(t, sc, "waiting for a client")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
	}
}
