package responses

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (the
// background responses and MCP sessions must all end).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
