package load

import (
	"time"
)

// pacer ticks every interval from its creation.
type pacer interface {
	// wait blocks until the next tick and returns how many ticks have
	// passed since the previous call (at least 1).
	wait() (int, error)
	close()
}

// sleepPacer ticks with time.Sleep, which the runtime rounds up to whole
// milliseconds when the process is idle.
type sleepPacer struct {
	start    time.Time
	interval time.Duration
	seen     int
}

func newSleepPacer(interval time.Duration) *sleepPacer {
	return &sleepPacer{start: time.Now(), interval: interval}
}

func (p *sleepPacer) wait() (int, error) {
	next := p.start.Add(time.Duration(p.seen+1) * p.interval)
	time.Sleep(time.Until(next))
	n := int(time.Since(p.start) / p.interval)
	d := n - p.seen
	p.seen = n
	return d, nil
}

func (p *sleepPacer) close() {}
