package tcp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// discardServer serves "generate" with a handler that accepts and drops every request, so long
// fuzz runs do not accumulate requests.
func discardServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := NewServer(Options{Host: "127.0.0.1", IdleTimeout: waitLong})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	accept := plane.HandlerFunc(func(*plane.Request) error { return nil })
	if _, err := s.Add(context.Background(), endpoint("generate"), accept); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Add(context.Background(), endpoint("busy"), plane.HandlerFunc(func(*plane.Request) error { return plane.ErrOverloaded })); err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzServeConn feeds arbitrary byte streams to a server connection. The server must not
// panic, must not allocate lengths that were declared but not sent, must close or answer every
// connection, and must keep serving a fresh well-formed connection afterwards.
func FuzzServeConn(f *testing.F) {
	env := v7(f)
	gen := RouteKey(endpoint("generate"))
	v6 := v6Frame(f)
	f.Add(env)
	f.Add(append(append([]byte(nil), env...), env...))
	f.Add(envelope("694d98147d54be25/nope", "{}", v6))
	f.Add(envelope(RouteKey(endpoint("busy")), `{"x-request-id":"r"}`, v6))
	f.Add(envelope("\xff/generate", "{}", v6))
	f.Add(envelope(gen, "{}", []byte("junk")))
	f.Add(env[:len(env)/2])
	f.Add(rawEnvelope(nil, "{}", 0, nil))
	f.Add(rawEnvelope([]byte(gen), "{}", 1<<32-1, nil))
	f.Add(rawEnvelope([]byte(gen), "{}", codec.DefaultMaxMessageSize, []byte("partial")))

	s := discardServer(f)
	addr := s.Addr().String()
	f.Fuzz(func(t *testing.T, in []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := net.DialTimeout("tcp", addr, waitLong)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(waitLong))
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(in)
			if err == nil {
				err = c.(*net.TCPConn).CloseWrite()
			}
			wrote <- err
		}()
		// Every reply must be well-formed, and the server must end the connection.
		br := bufio.NewReader(c)
		for {
			if _, err := codec.ReadTCPReply(br, 1<<20, nil); err != nil {
				if err != io.EOF && !isConnReset(err) {
					t.Fatalf("reading replies: %v", err)
				}
				break
			}
		}
		_ = c.Close()
		<-wrote // the write may fail once the server closed the connection: that is fine
		waitConnsGone(t, s)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20+8*uint64(len(in)) {
			t.Fatalf("serving %d bytes allocated %d bytes", len(in), grew)
		}

		fresh, err := net.DialTimeout("tcp", addr, waitLong)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		_ = fresh.SetDeadline(time.Now().Add(waitLong))
		if _, err := fresh.Write(env); err != nil {
			t.Fatal(err)
		}
		if got := readReply(t, fresh); got != "" {
			t.Fatalf("fresh connection: reply %q, want ack", got)
		}
	})
}

// isConnReset reports a reset, which a server closing while the client still writes may cause.
// A reply cut short is not one: replies are written whole.
func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// waitConnsGone waits until the server has finished every connection. It polls finely: the
// fuzz loop calls it once per input.
func waitConnsGone(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d connections after %v", n, waitLong)
		}
		time.Sleep(50 * time.Microsecond)
	}
}
