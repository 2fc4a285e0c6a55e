package planetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// fakeServer is an in-memory plane: its client hands the frame straight to Decode and the
// handler, as a real plane server does after reading it off the wire. It proves the suite
// before the real planes run it.
type fakeServer struct {
	max int

	mu     sync.Mutex
	closed bool
	eps    map[string]fakeEndpoint // by address
}

type fakeEndpoint struct {
	ep plane.Endpoint
	h  plane.Handler
}

const fakeName = "fake"

func (s *fakeServer) Name() string                { return fakeName }
func (s *fakeServer) Start(context.Context) error { return nil }

func fakeAddress(ep plane.Endpoint) string {
	return "fake://" + codec.FormatInstanceID(ep.InstanceID) + "/" + ep.Name
}

func (s *fakeServer) Add(_ context.Context, ep plane.Endpoint, h plane.Handler) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", plane.ErrClosed
	}
	addr := fakeAddress(ep)
	s.eps[addr] = fakeEndpoint{ep: ep, h: h}
	return addr, nil
}

func (s *fakeServer) Remove(ep plane.Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.eps, fakeAddress(ep))
}

func (s *fakeServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// serve is the server's side of one request: route, check, admit.
func (s *fakeServer) serve(address string, payload []byte, headers map[string]string) error {
	s.mu.Lock()
	e, ok := s.eps[address]
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return &plane.Error{Plane: fakeName, Code: plane.CodeConnect, Text: "fake server closed"}
	case !ok:
		return &plane.Error{Plane: fakeName, Code: plane.CodeUnknownEndpoint, Text: plane.TextEndpointNotFound}
	}
	req, err := plane.Decode(payload, s.max)
	if err != nil {
		var pe *plane.Error
		if errors.As(err, &pe) {
			return &plane.Error{Plane: fakeName, Code: pe.Code, Text: pe.Text, Err: pe.Err}
		}
		return err
	}
	req.Plane = fakeName
	req.Endpoint = e.ep
	req.Meta = plane.MetaFromHeaders(func(k string) string { return headers[k] }, req.Control.ID)
	if err := e.h.Accept(req); err != nil {
		code, text := plane.Refusal(err)
		return &plane.Error{Plane: fakeName, Code: code, Text: text}
	}
	return nil
}

type fakeClient struct{ srv *fakeServer }

func (c *fakeClient) Name() string { return fakeName }
func (c *fakeClient) Close() error { return nil }

func (c *fakeClient) Send(ctx context.Context, address string, frame []byte, meta plane.Meta) error {
	if err := ctx.Err(); err != nil {
		return &plane.Error{Plane: fakeName, Code: plane.CodeAckTimeout, Err: err}
	}
	// The request-id header carries the control id, which the client reads from the frame
	// like a real plane client; a frame it cannot read goes out without it.
	var id string
	if f, n, err := codec.SplitFrame(frame, 0); err == nil && n > 0 {
		if ctl, err := codec.ParseRequestControl(f.Header); err == nil {
			id = ctl.ID
		}
	}
	headers := map[string]string{}
	meta.Headers(id, func(k, v string) { headers[k] = v })
	// The wire copies the payload: the server's request must not alias the caller's buffer.
	return c.srv.serve(address, bytes.Clone(frame), headers)
}

func fakeHarness(max int) Harness {
	var cur *fakeServer
	return Harness{
		MaxMessageSize: max,
		NewServer: func(*testing.T) plane.Server {
			cur = &fakeServer{max: max, eps: map[string]fakeEndpoint{}}
			return cur
		},
		NewClient: func(*testing.T) plane.Client { return &fakeClient{srv: cur} },
	}
}

func TestFakePlane(t *testing.T) {
	Run(t, fakeHarness(codec.DefaultMaxMessageSize))
}

// TestFakePlaneMux runs the suite with the response mux as the call-home.
func TestFakePlaneMux(t *testing.T) {
	h := fakeHarness(codec.DefaultMaxMessageSize)
	h.CallHome = CallHomeMux
	Run(t, h)
}

// TestFakePlaneSmallLimit runs the suite with a small message limit, as planes configured
// with DYN_TCP_MAX_MESSAGE_SIZE do, and the unknown-endpoint code restricted.
func TestFakePlaneSmallLimit(t *testing.T) {
	h := fakeHarness(64 << 10)
	h.UnknownEndpointCodes = []plane.Code{plane.CodeUnknownEndpoint}
	h.Concurrency = 50
	Run(t, h)
}
