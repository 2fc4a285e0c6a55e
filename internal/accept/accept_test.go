package accept

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// flaky fails its first Accepts with a transient error, then delegates.
type flaky struct {
	net.Listener
	fails atomic.Int32
}

func (f *flaky) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, syscall.EMFILE
	}
	return f.Listener.Accept()
}

func TestNext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := &flaky{Listener: ln}
	f.fails.Store(3)
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := Next(f, nil, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatalf("Next after transient failures: %v", err)
	}
	c.Close()

	// done ends the wait of a listener that keeps failing.
	f.fails.Store(1 << 30)
	done := make(chan struct{})
	close(done)
	if _, err := Next(f, done, slog.New(slog.DiscardHandler), "test"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Next after done: %v", err)
	}
	// A closed listener ends it at once.
	ln.Close()
	f.fails.Store(0)
	if _, err := Next(f, nil, slog.New(slog.DiscardHandler), "test"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Next on a closed listener: %v", err)
	}
}
