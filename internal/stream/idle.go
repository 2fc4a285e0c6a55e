package stream

import "time"

// idleClock is a mux connection's idle time, for its reader's read deadline. The reader sets
// the deadline at most once per timeout while streams come and go: arming it whenever the last
// stream left and disarming it when the next arrived cost two timer updates per request on a
// lightly loaded connection. The owner's mutex guards it.
type idleClock struct {
	timeout time.Duration
	since   time.Time // when the last stream left; zero while streams are open
}

// busy records that a stream is open.
func (c *idleClock) busy() { c.since = time.Time{} }

// idle records that no stream is open (any more).
func (c *idleClock) idle() {
	if c.since.IsZero() {
		c.since = time.Now()
	}
}

// idleFor returns how long no stream has been open, 0 while one is.
func (c *idleClock) idleFor() time.Duration {
	if c.since.IsZero() {
		return 0
	}
	return time.Since(c.since)
}

// next returns the reader's next read deadline: when the idle time runs out, or one timeout
// from now while streams are open. expired reports that the idle time has run out already.
func (c *idleClock) next() (deadline time.Time, expired bool) {
	now := time.Now()
	if c.since.IsZero() {
		return now.Add(c.timeout), false
	}
	end := c.since.Add(c.timeout)
	return end, !now.Before(end)
}
