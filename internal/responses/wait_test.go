package responses

import (
	"testing"
	"time"
)

// waitABit yields between polls of a condition another goroutine will
// make true; callers bound the number of polls.
func waitABit(t *testing.T) {
	t.Helper()
	time.Sleep(5 * time.Millisecond)
}
