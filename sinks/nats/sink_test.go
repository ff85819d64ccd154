package natssink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctibridge/ctibridge/bridge"
	natssink "github.com/ctibridge/ctibridge/sinks/nats"
	"github.com/ctibridge/ctibridge/sinks/nats/natstest"
	"github.com/ctibridge/ctibridge/store"
	"github.com/ctibridge/ctibridge/webhooks"
)

const endpointID = "sink-nats"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newSink(t *testing.T, url string, mod func(*natssink.Options)) *natssink.Sink {
	t.Helper()
	o := natssink.Options{URLs: []string{url}, PBX: "pbx1", CreateStream: true, Logger: quiet()}
	if mod != nil {
		mod(&o)
	}
	s, err := natssink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// pipeline is the real outbox (SQLite) and the real dispatcher feeding a
// sink, as serve wires them.
type pipeline struct {
	t    *testing.T
	db   *store.DB
	d    *webhooks.Dispatcher
	stop func()
}

func newPipeline(t *testing.T, sink bridge.Connector) *pipeline {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	d := webhooks.New(db, webhooks.Options{Connectors: map[string]bridge.Connector{endpointID: sink},
		BackoffBase: 5 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Logger: quiet()})
	d.SetEndpoints([]bridge.Endpoint{{ID: endpointID, URL: "nats://test", Source: "config"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	p := &pipeline{t: t, db: db, d: d}
	p.stop = sync.OnceFunc(func() { cancel(); <-done; db.Close() })
	t.Cleanup(p.stop)
	return p
}

// event makes the n-th event of a conversation.
func event(conv string, n int64) bridge.Record {
	typ := bridge.EventCallAnswered
	if n == 1 {
		typ = bridge.EventCallRinging
	}
	id := fmt.Sprintf("evt_%s_%d", conv, n)
	body, _ := json.Marshal(map[string]any{"id": id, "type": typ, "conversation_id": conv, "sequence": n})
	return bridge.Record{ID: id, Type: typ, ConversationID: conv, Sequence: n, OccurredAt: time.Now(), Payload: body}
}

// commit stores events interleaved across conversations (round robin) and
// tells the dispatcher.
func (p *pipeline) commit(convs []string, from, to int64) {
	p.t.Helper()
	var b bridge.Batch
	for n := from; n <= to; n++ {
		for _, c := range convs {
			b.Events = append(b.Events, bridge.PendingEvent{Record: event(c, n), EndpointIDs: []string{endpointID}})
		}
	}
	if err := p.db.Commit(context.Background(), &b); err != nil {
		p.t.Fatal(err)
	}
	p.d.Reload(endpointID)
}

// messages reads the whole stream in stream order.
func messages(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func streamCount(js jetstream.JetStream, stream string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// waitFor polls cond until it holds; the bound only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStream asserts every event of convs 1..n is in the stream exactly
// once and in per-conversation order, with the right subject and headers.
func checkStream(t *testing.T, msgs []*jetstream.RawStreamMsg, convs []string, n int64) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("event %s twice in the stream", id)
		}
		seen[id] = true
		conv := m.Header.Get(natssink.HeaderConversation)
		seq, _ := strconv.ParseInt(m.Header.Get(natssink.HeaderSequence), 10, 64)
		if seq != last[conv]+1 {
			t.Errorf("conversation %s: sequence %d after %d (out of order or a gap)", conv, seq, last[conv])
		}
		last[conv] = seq
		typ := m.Header.Get(natssink.HeaderType)
		if want := "ctibridge.default.pbx1." + strings.ReplaceAll(typ, ".", "_"); m.Subject != want {
			t.Errorf("subject %q, want %q", m.Subject, want)
		}
		var body map[string]any
		if err := json.Unmarshal(m.Data, &body); err != nil || body["id"] != id {
			t.Errorf("payload %s is not the event %s", m.Data, id)
		}
	}
	for _, c := range convs {
		if last[c] != n {
			t.Errorf("conversation %s: %d events in the stream, want %d", c, last[c], n)
		}
	}
}

// Conversations interleaved in the outbox come out of the stream each in
// its own order, every event once, on the subject of its type.
func TestPublishesInOrderPerConversation(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), nil)
	p := newPipeline(t, sink)
	convs := []string{"c1", "c2", "c3", "c4", "c5"}
	p.commit(convs, 1, 4)
	p.commit(convs, 5, 8)
	_, js := srv.JetStream()
	waitFor(t, "40 messages", func() bool { return streamCount(js, natssink.DefaultStreamName) == 40 })
	msgs := messages(t, js, natssink.DefaultStreamName)
	checkStream(t, msgs, convs, 8)
	if m := msgs[0]; m.Header.Get(natssink.HeaderPBX) != "pbx1" || m.Header.Get(natssink.HeaderTenant) != "default" ||
		m.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", m.Header)
	}
	// The stream may hold a message before the dispatcher has counted its
	// acknowledgement: wait for the count, then nothing may be dead.
	waitFor(t, "40 deliveries counted", func() bool { return p.d.Stats().Delivered == 40 })
	if st := p.d.Stats(); st.Delivered != 40 || st.Dead != 0 {
		t.Errorf("dispatcher stats %+v", st)
	}
}

// The same event published twice (a resend after a crash) is stored once:
// Nats-Msg-Id is the event id and the stream de-duplicates.
func TestSameEventTwiceIsStoredOnce(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), nil)
	rec := event("c1", 1)
	for range 2 {
		if err := sink.Deliver(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	_, js := srv.JetStream()
	if n := streamCount(js, natssink.DefaultStreamName); n != 1 {
		t.Fatalf("%d messages in the stream, want 1", n)
	}
	if st := sink.Stats(); st.Published != 2 || st.Duplicates != 1 {
		t.Errorf("stats %+v, want 2 PubAcks, 1 duplicate", st)
	}
}

// NATS down: publishes fail and are retried from the outbox; events keep
// being committed meanwhile. Once it is back, everything is drained in
// order, nothing lost, nothing twice.
func TestOutageDrainsInOrder(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), nil)
	p := newPipeline(t, sink)
	_, js := srv.JetStream(nats.MaxReconnects(-1))
	convs := []string{"a", "b", "c"}
	p.commit(convs, 1, 3)
	waitFor(t, "the first 9 messages", func() bool { return streamCount(js, natssink.DefaultStreamName) == 9 })

	srv.Shutdown()
	waitFor(t, "the sink to see the server gone", func() bool { up, _ := sink.State(); return !up })
	p.commit(convs, 4, 10)
	failedBefore := sink.Stats().Failed
	waitFor(t, "failed publishes while down", func() bool { return sink.Stats().Failed >= failedBefore+6 })
	if up, reason := sink.State(); up || reason == "" {
		t.Errorf("state while down: %v %q", up, reason)
	}

	srv.Restart()
	waitFor(t, "30 messages after the restart", func() bool { return streamCount(js, natssink.DefaultStreamName) == 30 })
	waitFor(t, "the backlog to drain", func() bool { return p.d.Stats().Queued == 0 })
	checkStream(t, messages(t, js, natssink.DefaultStreamName), convs, 10)
	if st := p.d.Stats(); st.Dead != 0 || st.Retried == 0 {
		t.Errorf("dispatcher stats %+v: want retries, no dead letter", st)
	}
}

// No stream captures the subject: a dead letter at once, saying what to do.
func TestNoStreamIsPermanent(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), func(o *natssink.Options) { o.CreateStream = false })
	err := sink.Deliver(t.Context(), event("c1", 1))
	_, _, permanent := bridge.ConnectorOutcome(err)
	if !permanent || !strings.Contains(err.Error(), `no JetStream stream captures subject "ctibridge.default.pbx1.call_ringing"`) {
		t.Fatalf("err %v (permanent %v)", err, permanent)
	}
}

// A user without publish permission on the subject: a dead letter at once
// (not a PubAck timeout retried for days), naming the subject.
func TestPermissionDeniedIsPermanent(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{Users: map[string]string{"admin": "adminpw", "bridge": "bridgepw"},
		Publish: map[string][]string{"bridge": {"other.>"}}})
	_, adm := srv.JetStream(nats.UserInfo("admin", "adminpw"))
	if _, err := adm.CreateStream(t.Context(), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ctibridge.>"}}); err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.CreateStream, o.User, o.Password, o.PublishTimeout = false, "bridge", "bridgepw", time.Hour
	})
	waitFor(t, "connected", func() bool { up, _ := sink.State(); return up })
	err := sink.Deliver(t.Context(), event("c1", 1))
	_, _, permanent := bridge.ConnectorOutcome(err)
	if !permanent || !strings.Contains(err.Error(), `may not publish to "ctibridge.default.pbx1.call_ringing"`) {
		t.Fatalf("err %v (permanent %v)", err, permanent)
	}
}

// Not connected: retried, not dead.
func TestDisconnectedIsRetried(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), nil)
	srv.Shutdown()
	waitFor(t, "disconnected", func() bool { up, _ := sink.State(); return !up })
	err := sink.Deliver(t.Context(), event("c1", 1))
	if _, _, permanent := bridge.ConnectorOutcome(err); err == nil || permanent || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("err %v (permanent %v)", err, permanent)
	}
}

// A server that refuses the sink's credentials is tried again for ever,
// the refusal said in the state: once the operator fixes the server's side
// (a rotated password), the sink connects. nats.go by default gives up
// for good after the same auth error twice.
func TestAuthRefusedThenFixed(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{Users: map[string]string{"cti": "right"}})
	sink := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.User, o.Password = "cti", "rotated"
		o.ReconnectMax = 100 * time.Millisecond
	})
	waitFor(t, "the refusal in the state", func() bool {
		_, why := sink.State()
		return strings.Contains(strings.ToLower(why), "authorization")
	})
	srv.SetUsers(map[string]string{"cti": "rotated"})
	srv.Restart()
	waitFor(t, "connected once the server takes the password", func() bool { up, _ := sink.State(); return up })

	// Connected, then refused (the server's password changed under it),
	// then taken again.
	srv.SetUsers(map[string]string{"cti": "other"})
	srv.Restart()
	waitFor(t, "the refusal after the server changed", func() bool {
		_, why := sink.State()
		return strings.Contains(strings.ToLower(why), "authorization")
	})
	// nats.go's default gives up after the same auth error twice: three.
	n := sink.Stats().ConnectFailures
	waitFor(t, "refused three more times", func() bool { return sink.Stats().ConnectFailures >= n+3 })
	srv.SetUsers(map[string]string{"cti": "rotated"})
	srv.Restart()
	waitFor(t, "connected again", func() bool { up, _ := sink.State(); return up })
}

// create_stream makes the stream with the template's wildcard subjects and
// the duplicate window asked; a publish into another stream than the one
// named is refused.
func TestCreateStreamAndExpectedStream(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.Stream, o.DuplicateWindow, o.MaxAge = "FLEET", 10*time.Minute, time.Hour
		o.Subject = natssink.MustParseSubject("cti.<tenant>.<pbx>-<type>")
	})
	if err := sink.Deliver(t.Context(), event("c1", 1)); err != nil {
		t.Fatal(err)
	}
	_, js := srv.JetStream()
	st, err := js.Stream(t.Context(), "FLEET")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if strings.Join(cfg.Subjects, ",") != "cti.*.*" || cfg.Duplicates != 10*time.Minute || cfg.MaxAge != time.Hour {
		t.Errorf("stream config: subjects %v, duplicates %s, max age %s", cfg.Subjects, cfg.Duplicates, cfg.MaxAge)
	}
	if m := messages(t, js, "FLEET"); len(m) != 1 || m[0].Subject != "cti.default.pbx1-call_ringing" {
		t.Errorf("messages %v", m)
	}

	// Another sink expecting stream OTHER, whose subjects FLEET captures.
	other := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.CreateStream, o.Stream = false, "OTHER"
		o.Subject = natssink.MustParseSubject("cti.<tenant>.<pbx>-<type>")
	})
	err = other.Deliver(t.Context(), event("c1", 2))
	if _, _, permanent := bridge.ConnectorOutcome(err); !permanent {
		t.Errorf("publish captured by another stream: %v, want permanent", err)
	}
}

// With create_stream, a stream deleted under a running sink is made again:
// the publish in between is retried, not dead-lettered.
func TestCreateStreamRecreatesDeletedStream(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	sink := newSink(t, srv.URL(), nil)
	if err := sink.Deliver(t.Context(), event("c1", 1)); err != nil {
		t.Fatal(err)
	}
	_, js := srv.JetStream()
	if err := js.DeleteStream(t.Context(), natssink.DefaultStreamName); err != nil {
		t.Fatal(err)
	}
	err := sink.Deliver(t.Context(), event("c1", 2))
	if _, _, permanent := bridge.ConnectorOutcome(err); err == nil || permanent {
		t.Fatalf("publish with the stream gone: %v (permanent %v), want a retry", err, permanent)
	}
	if err := sink.Deliver(t.Context(), event("c1", 2)); err != nil {
		t.Fatalf("retry after the stream was made again: %v", err)
	}
	if n := streamCount(js, natssink.DefaultStreamName); n != 1 {
		t.Errorf("%d messages in the new stream, want 1", n)
	}
}

// A stream someone else made (a fleet's operators) is left as they set it,
// with create_stream on: it must only capture our subjects. One that does
// not is a permanent error saying so; ours (its description) follows the
// config.
func TestCreateStreamLeavesOthersStream(t *testing.T) {
	srv := natstest.Start(t, natstest.Options{})
	_, js := srv.JetStream()
	cfg := jetstream.StreamConfig{Name: "FLEET", Subjects: []string{"fleet.>"}, MaxAge: 30 * 24 * time.Hour, MaxMsgs: 100000,
		MaxMsgsPerSubject: 5000, Discard: jetstream.DiscardNew, Duplicates: 10 * time.Minute}
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	sink := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.Stream = "FLEET"
		o.Subject = natssink.MustParseSubject("fleet.<tenant>.<pbx>.<type>")
	})
	if err := sink.Deliver(t.Context(), event("c1", 1)); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), "FLEET")
	if err != nil {
		t.Fatal(err)
	}
	got := st.CachedInfo().Config
	if !slices.Equal(got.Subjects, cfg.Subjects) || got.MaxAge != cfg.MaxAge || got.MaxMsgs != cfg.MaxMsgs ||
		got.MaxMsgsPerSubject != cfg.MaxMsgsPerSubject || got.Discard != cfg.Discard || got.Duplicates != cfg.Duplicates {
		t.Fatalf("the fleet's stream was changed: %+v", got)
	}
	if n := streamCount(js, "FLEET"); n != 1 {
		t.Fatalf("%d messages in the stream, want 1", n)
	}

	other := newSink(t, srv.URL(), func(o *natssink.Options) {
		o.Stream = "FLEET"
		o.Subject = natssink.MustParseSubject("cti.<tenant>.<pbx>.<type>")
	})
	err = other.Deliver(t.Context(), event("c2", 1))
	if _, _, permanent := bridge.ConnectorOutcome(err); !permanent || !strings.Contains(err.Error(), "do not capture cti.*.*.*") {
		t.Fatalf("a stream that does not capture the subject: %v (permanent %v)", err, permanent)
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		filter, pattern string
		want            bool
	}{
		{"fleet.>", "fleet.*.*.*", true},
		{"fleet.*.*.*", "fleet.*.*.*", true},
		{"fleet.*.pbx1.*", "fleet.*.*.*", false},
		{"fleet.*.*", "fleet.*.*.*", false},
		{"fleet.*.*.*.*", "fleet.*.*.*", false},
		{">", "a.b", true},
		{"a.*", "a.>", false},
		{"a.>", "a.>", true},
		{"b.>", "a.*", false},
	} {
		if got := natssink.Covers(tc.filter, tc.pattern); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v", tc.filter, tc.pattern, got)
		}
	}
}
