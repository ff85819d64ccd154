// Package connectorstest holds what the CRM connectors' tests share: an
// in-memory per-call state store and a log buffer safe for concurrent
// writers. It does not import package testing.
package connectorstest

import (
	"bytes"
	"context"
	"sync"
)

// MemState is a bridge.ConnectorStateStore in memory; its zero value is
// ready.
type MemState struct {
	mu sync.Mutex
	m  map[string][]byte
}

// ConnectorState implements bridge.ConnectorStateStore.
func (s *MemState) ConnectorState(_ context.Context, conn, conv string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.m[conn+"/"+conv]), nil
}

// SaveConnectorState implements bridge.ConnectorStateStore.
func (s *MemState) SaveConnectorState(_ context.Context, conn, conv string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[conn+"/"+conv] = bytes.Clone(b)
	return nil
}

// Edit changes a saved state in place (a test simulating a crash between
// two steps).
func (s *MemState) Edit(conn, conv string, f func([]byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[conn+"/"+conv] = f(s.m[conn+"/"+conv])
}

// LogBuffer is an io.Writer for a test's slog handler.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *LogBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
