package gateway

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// request, stream and upstream connection must be gone when it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
