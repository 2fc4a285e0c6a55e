// Package accept is the accept step every reqplane TCP listener shares: wait for the next
// connection, riding out the transient failures a busy server meets (EMFILE, ECONNABORTED) with
// a capped backoff, as net/http's Server does, instead of spinning or giving up.
package accept

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// MaxDelay caps the backoff after a failed Accept.
const MaxDelay = time.Second

// Next returns the next connection on ln. It returns an error only when ln is closed or done is
// closed; other failures are logged (as "{what} accept failed") and retried after a delay that
// doubles from 5 ms up to MaxDelay.
func Next(ln net.Listener, done <-chan struct{}, log *slog.Logger, what string) (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), MaxDelay)
		log.Warn(what+" accept failed; retrying", "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}
