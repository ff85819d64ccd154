package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// safeBuffer is written by the demo's goroutines and read by the test.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ctibridge demo prints the panel's login link for agent 100; the link
// signs the panel in once (its ticket is the fragment the page posts).
func TestDemoPrintsPanelLink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs safeBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, []string{"--pace", "1ms", "--keep"}, &out, &errs) }()
	re := regexp.MustCompile(`agent panel, signed in as agent 100 .*: (http://127\.0\.0\.1:\d+)/panel/#ticket=([A-Za-z0-9_-]+)\n`)
	var m []string
	if err := waitFor(context.Background(), 60*time.Second, func() bool { m = re.FindStringSubmatch(out.String()); return m != nil }); err != nil {
		cancel()
		<-done
		t.Fatalf("no panel link in the demo's output:\n%s\n%s", out.String(), errs.String())
	}
	signIn := func() *http.Response {
		req, _ := http.NewRequest("POST", m[1]+"/panel/session", strings.NewReader(`{"ticket":"`+m[2]+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", m[1])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := signIn(); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Set-Cookie"), "ctb_panel=") {
		t.Errorf("the demo's link: %d %v", res.StatusCode, res.Header)
	}
	if res := signIn(); res.StatusCode != 401 {
		t.Errorf("the demo's link used twice: %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatalf("demo: %v", err)
	}
}
