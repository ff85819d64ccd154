package http

import "time"

// SetWriteTimeout changes the response write bound for servers made after
// it and returns a function restoring it.
func SetWriteTimeout(d time.Duration) (restore func()) {
	old := writeTimeout
	writeTimeout = d
	return func() { writeTimeout = old }
}
