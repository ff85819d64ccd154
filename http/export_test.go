package http

import (
	"io"
	"net"
	"time"
)

// SetWriteTimeout changes the response write bound for servers made after
// it and returns a function restoring it.
func SetWriteTimeout(d time.Duration) (restore func()) {
	old := writeTimeout
	writeTimeout = d
	return func() { writeTimeout = old }
}

// NewDeadlineReader exposes the recording reader that pushes the write
// deadline forward before each chunk.
func NewDeadlineReader(r io.Reader, conn net.Conn, d time.Duration) io.Reader {
	return &deadlineReader{r: r, conn: conn, d: d}
}
