package main

import (
	"context"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"time"
)

const healthcheckHead = `Usage: ctibridge healthcheck [--config ctibridge.yaml | --url URL] [--live]

GETs /readyz (with --live, /healthz) on the configured http.listen and exits
0 when it answers 200, 1 otherwise: the PBX link is up and the store takes
writes. For Docker's HEALTHCHECK and systemd; needs no shell and no curl.
`

// runHealthcheck asks a running ctibridge whether it is ready.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", healthcheckHead)
	cf := addConfigFlags(fs)
	url := fs.String("url", "", "URL to GET instead, e.g. http://127.0.0.1:8080/readyz")
	live := fs.Bool("live", false, "GET /healthz (the process answers) instead of /readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *url == "" {
		cfg, err := cf.load()
		if err != nil {
			fmt.Fprintln(stderr, "ctibridge healthcheck:", err)
			return 1
		}
		path := "/readyz"
		if *live {
			path = "/healthz"
		}
		*url = "http://" + dialable(cfg.HTTP.Listen) + path
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "ctibridge healthcheck:", err)
		return 2
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "ctibridge healthcheck:", err)
		return 1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	fmt.Fprintf(stdout, "%s: %s %s\n", *url, res.Status, strings.TrimSpace(string(body)))
	if res.StatusCode != nethttp.StatusOK {
		return 1
	}
	return 0
}

// dialable turns a listen address into one to connect to: a wildcard
// host (0.0.0.0, ::, empty) is reached on loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
