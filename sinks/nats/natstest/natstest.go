// Package natstest runs a real nats-server with JetStream inside a test
// process. Only tests import it: the product binary never links the server.
package natstest

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options tune the server.
type Options struct {
	// Users, when set, are the only ones allowed in (username → password);
	// Publish, when set for a user, is the only subjects it may publish to
	// (its _INBOX replies and the JetStream API allowed besides).
	Users   map[string]string
	Publish map[string][]string
}

// Server is an embedded nats-server with JetStream on, its store in a
// temporary directory that outlives restarts.
type Server struct {
	t    testing.TB
	opts Options
	dir  string
	port int
	srv  *server.Server
}

// Start runs a server on a free loopback port; it is shut down at the
// test's end.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts, dir: t.TempDir()}
	s.start(-1)
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(port int) {
	s.t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: s.dir, NoLog: true, NoSigs: true}
	for user, pass := range s.opts.Users {
		u := &server.User{Username: user, Password: pass}
		if subs, ok := s.opts.Publish[user]; ok {
			u.Permissions = &server.Permissions{Publish: &server.SubjectPermission{Allow: append(subs, "$JS.API.>", "_INBOX.>")}}
		}
		o.Users = append(o.Users, u)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		s.t.Fatalf("natstest: server not ready within 30s")
	}
	s.srv = srv
	_, p, _ := net.SplitHostPort(srv.Addr().String())
	s.port, _ = strconv.Atoi(p)
}

// URL is the server's client URL (the same across restarts).
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Shutdown stops the server; its store stays for Restart.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start(s.port)
}

// SetUsers changes who may log in from the next Restart on (a password
// rotated on the server).
func (s *Server) SetUsers(users map[string]string) { s.opts.Users = users }

// JetStream connects a client for the test's own checks.
func (s *Server) JetStream(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		s.t.Fatalf("natstest: connect: %v", err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	return nc, js
}
