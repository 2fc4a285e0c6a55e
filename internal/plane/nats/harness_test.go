package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/natsembed"
	"github.com/reqplane/reqplane/internal/plane"
)

// waitTimeout bounds every wait in these tests: generous, as -race on a shared 2-core machine
// is slow, and never an assertion about speed.
const waitTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startNATS runs an in-process nats-server on a random 127.0.0.1 port.
func startNATS(t testing.TB, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	s, err := natsembed.Start(testCtx(t), opts)
	if err != nil {
		t.Fatalf("natsembed.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := NewServer(opts)
	if err := s.Start(testCtx(t)); err != nil {
		t.Fatalf("Server.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t testing.TB, opts ClientOptions) *Client {
	t.Helper()
	c := NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain nats.go connection, for subscribers that misbehave on purpose and for
// looking at replies and headers on the wire.
func rawConn(t testing.TB, url string) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(waitTimeout))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// subscribed checks a raw subscription, unsubscribes it when the test ends, and waits until the
// server knows it: nats.go sends SUB with its next flush, so a message another connection
// publishes before that finds no subscriber.
func subscribed(t testing.TB, nc *natsgo.Conn, sub *natsgo.Subscription, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

var testEndpoint = plane.Endpoint{Namespace: "dynamo", Component: "backend", Name: "generate", InstanceID: 0x694d98147d54be25}

// requestFrame encodes a valid request frame with id and body.
func requestFrame(t testing.TB, id string, body []byte) []byte {
	t.Helper()
	info := codec.CallHomeInfo{
		Address:    "127.0.0.1:41235",
		Subject:    "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5",
		Context:    id,
		StreamType: codec.StreamTypeResponse,
	}
	f, err := plane.EncodeRequest(nil, id, info, body, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// recorder is a Handler that records admitted requests, or refuses with err.
type recorder struct {
	mu   sync.Mutex
	reqs []*plane.Request
	err  error
	got  chan *plane.Request // optional: each admitted request is also sent here
}

func (r *recorder) Accept(req *plane.Request) error {
	if r.err != nil {
		return r.err
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if r.got != nil {
		r.got <- req
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *recorder) last() *plane.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return nil
	}
	return r.reqs[len(r.reqs)-1]
}

// planeError asserts err is a *plane.Error of the NATS plane with code.
func planeError(t testing.TB, err error, code plane.Code) *plane.Error {
	t.Helper()
	var pe *plane.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *plane.Error", err, err)
	}
	if pe.Code != code {
		t.Fatalf("code = %v, want %v (error %v)", pe.Code, code, err)
	}
	if pe.Plane != plane.NameNATS {
		t.Errorf("plane = %q, want %q", pe.Plane, plane.NameNATS)
	}
	return pe
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func id(i int) string { return fmt.Sprintf("3f0c9a52-8d1e-4b7a-9c21-%012x", i) }

var discardLogger = slog.New(slog.DiscardHandler)

// natsMsg shortens nats.go's message type in tests.
type natsMsg = natsgo.Msg
