package tcp

import (
	"context"
	"testing"

	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/plane/planetest"
)

// TestConformance runs the shared request-plane suite against the TCP plane.
// TestConformance runs the suite with the classic call-home, then with the multiplexed one.
func TestConformance(t *testing.T) {
	h := planetest.Harness{
		NewServer: func(t *testing.T) plane.Server {
			s, err := NewServer(Options{Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return s
		},
		NewClient: func(*testing.T) plane.Client {
			return NewClient(ClientOptions{RequestTimeout: waitLong, ConnectTimeout: waitLong})
		},
		UnknownEndpointCodes: []plane.Code{plane.CodeUnknownEndpoint},
	}
	planetest.Run(t, h)
	h.CallHome = planetest.CallHomeMux
	t.Run("mux", func(t *testing.T) { planetest.Run(t, h) })
}
