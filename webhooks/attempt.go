package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ctibridge/ctibridge/bridge"
)

// maxResponseBody is how much of a response is read. Reading a little lets
// the connection be reused and gives an error snippet; more is a CRM's
// problem, not ours.
const maxResponseBody = 4 << 10

// send makes one try of a delivery. It runs on its own goroutine, which
// owns the item until the result is back with the scheduler.
//
// Outcomes: 2xx is delivered; 410 Gone disables the endpoint; anything else
// (3xx, 408, 429, 5xx, timeouts, connection errors, and the other 4xx too)
// is retried until the retry window closes. Other 4xx are retried rather
// than dropped because they usually mean a CRM misconfiguration (expired
// token, wrong path) that a human fixes within the window; dropping would
// lose the events of that time for good.
//
// send makes the request and decides the outcome; record then writes it.
// They are apart so that the request slot is free while the store writes:
// the attempt log's commits then carry many outcomes each, and the next
// request does not wait for the previous one's fsync.
func (e *endpoint) send(cfg *endpointConfig, it *item) (result, bridge.Attempt) {
	d := e.d
	at := d.clock.Now()
	start := time.Now()
	var code int
	var retryAfter time.Duration
	var err error
	var permanent bool
	conn := d.opts.Connectors[e.id]
	if conn != nil {
		code, retryAfter, permanent, err = e.deliver(conn, it)
	} else {
		code, retryAfter, err = e.post(cfg, it, at)
	}
	latency := time.Since(start)
	if code == 0 && e.reqCtx.Err() != nil {
		return result{it: it, outcome: outAborted}, bridge.Attempt{}
	}

	if it.FirstTriedAt.IsZero() {
		it.FirstTriedAt = at
	}
	if it.since.IsZero() || it.since.After(at) {
		it.since = at // unknown, or stamped by a clock ahead of this one
	}
	it.Attempts++
	a := bridge.Attempt{EventID: it.ID, EndpointID: e.id, At: at, StatusCode: code, Latency: latency}
	if err != nil {
		a.Error = err.Error()
	}
	r := result{it: it}
	var refused *AddressRefusedError
	switch {
	case err == nil:
		r.outcome = outDelivered
	case permanent:
		// A connector says no retry can help (e.g. an agent without a CRM
		// user): dead-lettered at once, replayable once that is fixed.
		r.outcome, r.permanent = outDead, true
	case code == http.StatusGone && conn == nil:
		r.outcome = outDisabled
	case errors.As(err, &refused):
		// Every address of the host is forbidden: no retry can succeed
		// until someone changes the URL, the DNS or the policy.
		r.outcome, r.refused = outDead, true
	default:
		now := d.clock.Now()
		deadline := it.since.Add(d.opts.RetryWindow)
		if !now.Before(deadline) {
			r.outcome = outDead
			break
		}
		delay := min(retryAfter, d.opts.MaxRetryAfter)
		r.asked = delay > 0
		r.pause = r.asked && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable)
		if delay <= 0 {
			delay = d.backoff(it.Attempts)
		}
		// The last try is made at the window's end rather than skipped.
		r.next = now.Add(delay)
		if r.next.After(deadline) {
			r.next = deadline
		}
		r.outcome = outRetry
	}
	return r, a
}

// record writes an attempt's outcome to the store, then counts and logs it.
func (e *endpoint) record(cfg *endpointConfig, it *item, a bridge.Attempt, rp *result) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.reqCtx), e.d.opts.Timeout)
	defer cancel()
	e.recordMu.RLock()
	e.settle(&a, rp)
	if err := e.d.store.RecordAttempt(ctx, a); err != nil {
		e.notRecorded(it, a, err)
	}
	e.recordMu.RUnlock()
	e.recorded(cfg, it, a, *rp)
}

// settle fixes the outcome an attempt records. recordMu must be read-held.
func (e *endpoint) settle(a *bridge.Attempt, r *result) {
	if e.disabled.Load() && r.outcome != outDelivered {
		r.outcome = outDisabled // DisableEndpoint already marked it so
	}
	a.Outcome = r.outcome.status()
	if r.outcome == outRetry {
		a.NextAttemptAt = r.next
	}
}

// notRecorded handles the store's refusal of an attempt. Memory moves on
// regardless. A final outcome is kept and recorded again once the store
// takes writes, so the store does not say pending (and resend after a
// restart) what was delivered.
func (e *endpoint) notRecorded(it *item, a bridge.Attempt, err error) {
	e.d.log.Error("webhook attempt not recorded", "endpoint", e.id, "event", it.ID, "err", err)
	if a.Outcome != bridge.DeliveryPending {
		e.d.recordLater(a)
	}
}

// recorded counts and logs an attempt once the store has it.
func (e *endpoint) recorded(cfg *endpointConfig, it *item, a bridge.Attempt, r result) {
	d := e.d
	// A connector's 410 is the CRM's answer to one request, not "this
	// endpoint is gone".
	gone := a.StatusCode == http.StatusGone && d.opts.Connectors[e.id] == nil
	e.account(cfg, it, a, gone, r)
	if d.opts.OnAttempt != nil {
		d.opts.OnAttempt(a)
	}
	if d.opts.Observer != nil {
		d.observe(e.id, it, a)
	}
}

// observe tells the Observer about an attempt, and about a delivery's 2xx.
func (d *Dispatcher) observe(endpointID string, it *item, a bridge.Attempt) {
	o := d.opts.Observer
	o.Attempted(a)
	if a.Outcome != bridge.DeliveryDelivered {
		return
	}
	now := d.clock.Now()
	if !it.notified.IsZero() {
		o.Delivered(endpointID, max(0, now.Sub(it.notified)))
	}
	if it.Type == bridge.EventCallRinging && d.firstPop(it.ID) {
		o.ScreenPop(max(0, now.Sub(it.OccurredAt)))
	}
}

// firstPop reports whether a call.ringing event is delivered for the first
// time (by any endpoint).
func (d *Dispatcher) firstPop(id string) bool {
	d.popMu.Lock()
	defer d.popMu.Unlock()
	if _, ok := d.popSeen[id]; ok {
		return false
	}
	if d.popSeen == nil {
		d.popSeen = make(map[string]struct{}, popsRemembered)
	}
	if len(d.popOrder) >= popsRemembered {
		delete(d.popSeen, d.popOrder[0])
		d.popOrder = d.popOrder[1:]
	}
	d.popSeen[id] = struct{}{}
	d.popOrder = append(d.popOrder, id)
	return true
}

func (o outcome) status() bridge.DeliveryStatus {
	switch o {
	case outDelivered:
		return bridge.DeliveryDelivered
	case outDead:
		return bridge.DeliveryDead
	case outDisabled:
		return bridge.DeliveryDisabled
	}
	return bridge.DeliveryPending
}

// account updates counters and logs. Single failures are debug-level; the
// operator hears when an endpoint starts failing, recovers, loses an event
// or is disabled.
func (e *endpoint) account(cfg *endpointConfig, it *item, a bridge.Attempt, gone bool, r result) {
	d := e.d
	// Built only when there is something to log: a delivered attempt, the
	// common case, would pay a URL parse and a handler copy for nothing.
	logger := func() *slog.Logger { return d.log.With("endpoint", e.id, "host", host(cfg.URL)) }
	if a.Outcome == bridge.DeliveryDelivered {
		d.delivered.Add(1)
		if n, ok := e.logTurn(false, e.failing.Swap(false)); ok {
			logger().Info("webhook endpoint recovered", "turns_unlogged", n)
		}
		return
	}
	d.failed.Add(1)
	log := logger()
	log.Debug("webhook attempt failed", "event", it.ID, "attempt", it.Attempts, "status", a.StatusCode, "err", a.Error, "outcome", a.Outcome)
	if r.permanent {
		// This event's own refusal (an agent with no CRM user, a refused
		// parameter or credential): the endpoint is not failing, and
		// nothing is retried.
		if a.Outcome == bridge.DeliveryDead {
			d.dead.Add(1)
			log.Warn("webhook delivery dead: refused for good, not retried; fix what err says, then replay", "event", it.ID, "type", it.Type,
				"status", a.StatusCode, "err", a.Error)
		}
		return
	}
	turned := !e.failing.Swap(true)
	switch {
	case gone:
	case r.refused:
		if turned {
			log.Warn("webhook endpoint address refused by delivery policy; its deliveries are dead-lettered, not retried", "err", a.Error)
		}
	default:
		if n, ok := e.logTurn(true, turned); ok {
			log.Warn("webhook endpoint failing; retrying", "status", a.StatusCode, "err", a.Error, "turns_unlogged", n)
		}
	}
	switch a.Outcome {
	case bridge.DeliveryPending:
		d.retried.Add(1)
	case bridge.DeliveryDead:
		d.dead.Add(1)
		if r.refused {
			log.Debug("webhook delivery dead: address refused", "event", it.ID, "type", it.Type, "err", a.Error)
			break
		}
		log.Warn("webhook delivery dead: retry window exhausted", "event", it.ID, "type", it.Type,
			"attempts", it.Attempts, "first_tried_at", it.FirstTriedAt, "err", a.Error)
	}
	if gone {
		e.disable("endpoint answered 410 Gone")
	}
}

// flapQuiet is how long after the log was told an endpoint is failing (or
// recovered) it is not told again: an endpoint that fails every other
// request wrote two lines a second at WARN and INFO.
const flapQuiet = time.Minute

// logTurn reports whether the endpoint's state (failing or not, after an
// attempt) is to be logged at its level now: it differs from what the log
// was last told, and that was a quiet minute ago or never. Turns it does
// not log are counted (turned: this attempt changed the state), and the
// count goes with the next line. Called on every attempt, so a short
// outage's recovery, kept back in the quiet minute, is logged at the first
// attempt after it rather than never.
func (e *endpoint) logTurn(failing, turned bool) (unlogged int64, ok bool) {
	e.flapMu.Lock()
	defer e.flapMu.Unlock()
	now := e.d.clock.Now()
	if failing == e.loggedFailing || !e.flapAt.IsZero() && now.Sub(e.flapAt) < flapQuiet {
		if turned {
			e.flaps++
		}
		return 0, false
	}
	unlogged = e.flaps
	e.loggedFailing, e.flapAt, e.flaps = failing, now, 0
	return unlogged, true
}

// disable marks the endpoint disabled, in the store and here. Attempts
// recorded after this one see the flag and record their delivery disabled
// rather than pending.
func (e *endpoint) disable(reason string) {
	e.recordMu.Lock()
	if e.disabled.Load() {
		e.recordMu.Unlock()
		return
	}
	e.disabled.Store(true)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.reqCtx), e.d.opts.Timeout)
	err := e.d.store.DisableEndpoint(ctx, e.id, reason)
	cancel()
	e.recordMu.Unlock()

	e.d.disabled.Add(1)
	e.d.log.Warn("webhook endpoint disabled", "endpoint", e.id, "reason", reason)
	if err != nil {
		e.d.log.Error("webhook endpoint disable not stored", "endpoint", e.id, "err", err)
	}
	if e.d.opts.OnDisable != nil {
		e.d.opts.OnDisable(e.id, reason)
	}
	e.signal()
}

// Canonical forms of the request's header keys (what Header.Set stores).
var (
	keyContentType = http.CanonicalHeaderKey("Content-Type")
	keyUserAgent   = http.CanonicalHeaderKey("User-Agent")
	keyID          = http.CanonicalHeaderKey(HeaderID)
	keyTimestamp   = http.CanonicalHeaderKey(HeaderTimestamp)
	keySignature   = http.CanonicalHeaderKey(HeaderSignature)
	// Shared by every request; net/http only reads a request's header.
	jsonContentType = []string{"application/json"}
)

// post sends one signed request. A nil error means a 2xx; otherwise code is
// the status (0 if no response) and retryAfter what the response asked.
func (e *endpoint) post(cfg *endpointConfig, it *item, at time.Time) (code int, retryAfter time.Duration, err error) {
	d := e.d
	if cfg.keyErr != nil {
		return 0, 0, cfg.keyErr
	}
	ctx, cancel := context.WithTimeout(e.reqCtx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(it.Payload))
	if err != nil {
		return 0, 0, errors.New("webhooks: invalid endpoint URL") // the URL may hold a token
	}
	ts := at.Unix()
	// The header is built whole, sized once, with canonical keys: Set's
	// growing map and per-value slices were a tenth of a drain's garbage.
	vals := []string{it.ID, strconv.FormatInt(ts, 10), cfg.sign.header(it.ID, ts, it.Payload)}
	req.Header = http.Header{
		keyContentType: jsonContentType,
		keyUserAgent:   d.userAgent,
		keyID:          vals[0:1:1],
		keyTimestamp:   vals[1:2:2],
		keySignature:   vals[2:3:3],
	}

	client := d.client
	if cfg.TenantMade() {
		client = d.tenantClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may hold a token
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no response within %s", d.opts.Timeout)
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.CopyN(io.Discard, resp.Body, maxResponseBody)
		return resp.StatusCode, 0, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		msg += ": redirect to " + snippet([]byte(redactURL(loc))) + " not followed"
	} else if s := snippet(body); s != "" {
		msg += ": " + s
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), d.clock.Now()), errors.New(msg)
}

// deliver hands one delivery to a connector. Its whole work (possibly
// several CRM requests, and waiting for the CRM's rate limit) gets a few
// attempt timeouts; what it finished is in its state, so a retry resumes.
func (e *endpoint) deliver(conn bridge.Connector, it *item) (code int, retryAfter time.Duration, permanent bool, err error) {
	ctx, cancel := context.WithTimeout(e.reqCtx, 3*e.d.opts.Timeout)
	defer cancel()
	err = conn.Deliver(ctx, it.Record)
	if err == nil {
		return http.StatusOK, 0, false, nil
	}
	if e.reqCtx.Err() != nil {
		return 0, 0, false, err // shutdown: aborted, stays pending
	}
	code, retryAfter, permanent = bridge.ConnectorOutcome(err)
	if code == 0 && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%s: not done within %s", conn.Name(), 3*e.d.opts.Timeout)
	}
	return code, retryAfter, permanent, err
}

// redactURL drops what may carry a token (credentials, query, fragment)
// before a URL goes into the attempt log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
		return u.String() + " (query removed)"
	}
	return u.String()
}

// snippet makes the start of a response printable for the attempt log.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), n)]), ""))
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func host(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// parseRetryAfter reads a Retry-After value, delay-seconds or HTTP-date, as
// a wait from now; zero when absent, invalid or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(1<<62/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the full-jitter wait after the n-th failed attempt: uniform in
// (0, min(BackoffMax, BackoffBase·2^(n-1))].
func (d *Dispatcher) backoff(n int) time.Duration {
	ceil := d.opts.BackoffBase
	for i := 1; i < n && ceil < d.opts.BackoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, d.opts.BackoffMax)
	return time.Duration(rand.Int64N(int64(ceil))) + 1
}

// maxUnrecorded bounds the final outcomes kept for recording while the store
// fails; beyond it they stay pending in the store (a resend after a restart).
const maxUnrecorded = 100_000

func (d *Dispatcher) recordLater(a bridge.Attempt) {
	d.unrecordedMu.Lock()
	defer d.unrecordedMu.Unlock()
	if len(d.unrecorded) < maxUnrecorded {
		d.unrecorded = append(d.unrecorded, a)
	}
}

// recordPending retries the outcomes the store refused, oldest first, until
// one fails again.
func (d *Dispatcher) recordPending(ctx context.Context) {
	d.unrecordedMu.Lock()
	as := d.unrecorded
	d.unrecorded = nil
	d.unrecordedMu.Unlock()
	for i, a := range as {
		if err := d.store.RecordAttempt(ctx, a); err != nil {
			d.unrecordedMu.Lock()
			d.unrecorded = append(as[i:], d.unrecorded...)
			d.unrecordedMu.Unlock()
			return
		}
	}
	if len(as) > 0 {
		d.log.Info("webhook outcomes recorded after a store failure", "count", len(as))
	}
}

// Unrecorded is how many final outcomes wait to be recorded.
func (d *Dispatcher) Unrecorded() int {
	d.unrecordedMu.Lock()
	defer d.unrecordedMu.Unlock()
	return len(d.unrecorded)
}
