package nats

import (
	"testing"

	"github.com/reqplane/reqplane/internal/natsembed"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/plane/planetest"
)

// conformanceMaxMessageSize is below the NATS server's max_payload (1 MiB), so that the
// suite's oversize frame reaches the plane server and is refused there with 413.
const conformanceMaxMessageSize = 64 << 10

// TestConformance runs the shared request-plane suite against the NATS plane, each case on
// its own in-process NATS server.
// TestConformance runs the suite with the classic call-home, then with the multiplexed one.
func TestConformance(t *testing.T) {
	var url string
	h := planetest.Harness{
		NewServer: func(t *testing.T) plane.Server {
			url = startNATS(t, natsembed.Options{}).ClientURL()
			return startServer(t, Options{URLs: []string{url}, MaxMessageSize: conformanceMaxMessageSize})
		},
		NewClient: func(t *testing.T) plane.Client {
			return newClient(t, ClientOptions{URLs: []string{url}, RequestTimeout: waitTimeout})
		},
		UnknownEndpointCodes: []plane.Code{plane.CodeNoResponders},
		MaxMessageSize:       conformanceMaxMessageSize,
	}
	planetest.Run(t, h)
	h.CallHome = planetest.CallHomeMux
	t.Run("mux", func(t *testing.T) { planetest.Run(t, h) })
}
