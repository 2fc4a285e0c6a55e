package etcd

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff spaces out retries: Min, doubled per attempt up to Max, each delay shortened by a
// random fraction up to Jitter so that a fleet that lost etcd together does not retry in step.
type Backoff struct {
	Min    time.Duration
	Max    time.Duration
	Jitter float64 // in [0, 1]
}

// DefaultBackoff is 100 ms doubling to 5 s with 30 % jitter: quick after a blip, no tight
// loop through an outage.
func DefaultBackoff() Backoff {
	return Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.3}
}

func (b Backoff) withDefaults() Backoff {
	d := DefaultBackoff()
	if b.Min <= 0 {
		b.Min = d.Min
	}
	if b.Max < b.Min {
		b.Max = max(d.Max, b.Min)
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		b.Jitter = d.Jitter
	}
	return b
}

// Delay returns the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d -= time.Duration(b.Jitter * rand.Float64() * float64(d))
	}
	return d
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
