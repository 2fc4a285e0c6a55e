package http2

import (
	"errors"

	"github.com/reqplane/reqplane/internal/plane"
)

// Errors of the Server's lifecycle and routing. Request failures are *plane.Error values.
var (
	// ErrNotStarted: Add was called before Start; the address to advertise needs the bound port.
	ErrNotStarted = errors.New("http request plane: server not started")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("http request plane: server already started")
	// ErrInvalidEndpoint: the endpoint cannot be routed (empty name, a '/' in it, or no handler).
	ErrInvalidEndpoint = errors.New("http request plane: invalid endpoint")
	// ErrEndpointConflict: the endpoint name is already served for another namespace or
	// component. Routes are keyed by endpoint name only (as in Dynamo), so the two cannot share
	// one server.
	ErrEndpointConflict = errors.New("http request plane: endpoint name already served for another component")
)

// closedError is what Start, Add and Send return once the server or client is closed.
func closedError(what string) *plane.Error {
	return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeClosed, Text: what + " closed"}
}
