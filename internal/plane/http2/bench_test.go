package http2

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// benchPlane starts a Server with an accepting endpoint and a Client for it.
func benchPlane(b *testing.B) (*Client, string, []byte) {
	b.Helper()
	s := startServer(b, Options{})
	u := addEndpoint(b, s, "generate", plane.HandlerFunc(func(*plane.Request) error { return nil }))
	c := newClient(b, ClientOptions{})
	return c, u, requestFrame(b, testID, testBody)
}

// BenchmarkSend is one Send and its 202, one at a time, over h2c on loopback.
func BenchmarkSend(b *testing.B) {
	c, u, frame := benchPlane(b)
	ctx := context.Background()
	meta := plane.Meta{TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(ctx, u, frame, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendParallel is concurrent Sends multiplexed on the Client's connections.
func BenchmarkSendParallel(b *testing.B) {
	c, u, frame := benchPlane(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Send(context.Background(), u, frame, plane.Meta{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSend64KiB sends a 64 KiB body.
func BenchmarkSend64KiB(b *testing.B) {
	s := startServer(b, Options{})
	u := addEndpoint(b, s, "generate", plane.HandlerFunc(func(*plane.Request) error { return nil }))
	c := newClient(b, ClientOptions{})
	frame := requestFrame(b, testID, `{"text":"`+string(bytes.Repeat([]byte("a"), 64<<10))+`"}`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(context.Background(), u, frame, plane.Meta{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTP is the server's per-request work without the network: read, decode, admit.
func BenchmarkServeHTTP(b *testing.B) {
	rt := &router{root: DefaultRootPath, max: codec.DefaultMaxMessageSize, log: slog.New(slog.DiscardHandler)}
	if err := rt.add(endpoint("generate"), plane.HandlerFunc(func(*plane.Request) error { return nil })); err != nil {
		b.Fatal(err)
	}
	frame := requestFrame(b, testID, testBody)
	body := bytes.NewReader(frame)
	req := httptest.NewRequest(http.MethodPost, "/v1/dynamo/generate", nil)
	req.Body = io.NopCloser(body)
	req.ContentLength = int64(len(frame))
	w := discardWriter{header: http.Header{}}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(frame)
		w.status = 0
		rt.ServeHTTP(&w, req)
		if w.status != http.StatusAccepted {
			b.Fatalf("status %d", w.status)
		}
	}
}

type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
