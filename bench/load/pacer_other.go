//go:build !linux

package load

import "time"

func newPacer(interval time.Duration) (pacer, error) { return newSleepPacer(interval), nil }
