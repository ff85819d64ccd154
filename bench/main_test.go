package bench

import (
	"os"
	"testing"
)

// TestMain lets the floor scenario start this test binary as its child.
func TestMain(m *testing.M) {
	if code, ok := FloorChild(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
