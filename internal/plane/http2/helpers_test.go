package http2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

const (
	testID   = "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"
	testBody = `{"text":"hello world"}`
	// waitLimit bounds every wait for something asynchronous; generous for -race on 2 cores.
	waitLimit = 20 * time.Second
)

func testInfo(id string) codec.CallHomeInfo {
	return codec.CallHomeInfo{Address: "127.0.0.1:41235", Subject: "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5", Context: id, StreamType: "response"}
}

// requestFrame returns a valid request frame (spec V6 shape) with the given id and body.
func requestFrame(t testing.TB, id, body string) []byte {
	t.Helper()
	f, err := plane.EncodeRequest(nil, id, testInfo(id), []byte(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rawFrame returns a frame with arbitrary parts (real checksum).
func rawFrame(t testing.TB, header, data string) []byte {
	t.Helper()
	f, err := codec.AppendFrame(nil, []byte(header), []byte(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// recorder is a plane.Handler that records what it admits, or refuses with refuse.
type recorder struct {
	refuse error

	mu   sync.Mutex
	reqs []*plane.Request
}

func (r *recorder) Accept(req *plane.Request) error {
	if r.refuse != nil {
		return r.refuse
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return nil
}

func (r *recorder) requests() []*plane.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*plane.Request(nil), r.reqs...)
}

func endpoint(name string) plane.Endpoint {
	return plane.Endpoint{Namespace: "dynamo", Component: "backend", Name: name, InstanceID: 0x694d98147d54be25}
}

// startServer starts a Server on 127.0.0.1:0 and closes it when the test ends.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	s := NewServer(opts)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// addEndpoint routes name to h and returns the advertised URL.
func addEndpoint(t testing.TB, s *Server, name string, h plane.Handler) string {
	t.Helper()
	u, err := s.Add(context.Background(), endpoint(name), h)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// httpClient returns a plain net/http client speaking only HTTP/1.1 (h2c false) or only h2c.
func httpClient(t testing.TB, h2c bool) *http.Client {
	t.Helper()
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

// newClient returns a Client closed when the test ends.
func newClient(t testing.TB, opts ClientOptions) *Client {
	t.Helper()
	c := NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startRaw serves h with HTTP/1.1 and h2c on 127.0.0.1:0 and returns its base URL.
func startRaw(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: waitLimit}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// allocatedBy returns the bytes the process allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// planeError asserts err is a *plane.Error and returns it.
func planeError(t testing.TB, err error) *plane.Error {
	t.Helper()
	var pe *plane.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *plane.Error", err, err)
	}
	return pe
}

// drainClose reads what little is left of a response body and closes it, so the connection
// stays reusable.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
