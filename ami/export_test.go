package ami

import "time"

// ChunkSize is the most the Client's consumer takes off its queue at once.
const ChunkSize = chunkSize

// StopSkipClock freezes the clock of the oversize-frame gap until the test
// ends: its checks then do not depend on how fast the test runs.
func StopSkipClock(t interface{ Cleanup(func()) }) {
	skipClock.Store(time.Now().UnixNano())
	t.Cleanup(func() { skipClock.Store(0) })
}
