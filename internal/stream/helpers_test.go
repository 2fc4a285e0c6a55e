package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// waitFor is the generous bound of every wait in these tests: they assert outcomes, never
// durations, and -race on a shared 2-core machine is slow.
const waitFor = 20 * time.Second

// logRecorder is a slog.Handler that keeps each record's message and "error" attribute.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct{ msg, err string }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			rec.err = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// waitError waits until a record's error attribute satisfies match.
func (l *logRecorder) waitError(t *testing.T, match func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, r := range l.recs {
			if match(r.err) {
				l.mu.Unlock()
				return r.err
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no matching log record; have %+v", l.recs)
	return ""
}

func newTestServer(t *testing.T, opts ServerOptions) (*Server, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	opts.Host = "127.0.0.1"
	opts.Logger = slog.New(rec)
	s := NewServer(opts)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func testDialOptions() DialOptions {
	return DialOptions{Logger: slog.New(&logRecorder{})}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func mustFrame(t testing.TB, header, data string) []byte {
	t.Helper()
	f, err := codec.AppendFrame(nil, []byte(header), []byte(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func hdr(t testing.TB, h string) []byte { return mustFrame(t, h, "") }
func dat(t testing.TB, d string) []byte { return mustFrame(t, "", d) }

func handshakeFrame(t testing.TB, subject string) []byte {
	return hdr(t, string(codec.AppendHandshake(nil, codec.Handshake{Subject: subject, StreamType: "response"})))
}

// rawConn dials addr as a hand-written worker (or requester) would.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, frames ...[]byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := c.Write(bytes.Join(frames, nil)); err != nil {
		t.Fatal(err)
	}
}

// readAll reads until the peer closes, bounded by waitFor.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the peer did not close the connection (got %q)", b)
	}
	// Any other error (a reset) also means the peer closed; what arrived before it counts.
	return b
}

// readToSentinel reads as a requester does: until the worker's sentinel frame, after which the
// requester closes the connection (the caller does).
func readToSentinel(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	sentinel, err := codec.AppendFrame(nil, codec.ControlSentinel.Bytes(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(b, sentinel) {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			t.Fatalf("no sentinel before %v (got %q)", err, b)
		}
	}
	return b
}

// readFrames decodes every frame in b.
func readFrames(t *testing.T, b []byte) []codec.Frame {
	t.Helper()
	var fs []codec.Frame
	for len(b) > 0 {
		f, n, err := codec.SplitFrame(b, 0)
		if err != nil || n == 0 {
			t.Fatalf("bad frames %q: %v", b, err)
		}
		fs = append(fs, f)
		b = b[n:]
	}
	return fs
}

// collect receives until Recv fails and returns the items and the final error.
func collect(t *testing.T, st *Stream) ([]string, error) {
	t.Helper()
	ctx := ctxFor(t)
	var items []string
	for {
		item, err := st.Recv(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("Recv did not end")
			}
			return items, err
		}
		items = append(items, string(item))
	}
}

func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
	}
}
