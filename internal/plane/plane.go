package plane

import (
	"context"
	"strconv"
)

// Names of the request planes, as used in DYN_REQUEST_PLANE and in discovery transports.
const (
	NameHTTP = "http"
	NameTCP  = "tcp"
	NameNATS = "nats"
)

// Endpoint identifies what a Server routes. Each plane derives its own routing key from it: the
// endpoint name (HTTP), "{instance:x}/{endpoint}" (TCP) or "{ns}_{comp}.{ep}-{instance:x}" (NATS).
type Endpoint struct {
	Namespace  string
	Component  string
	Name       string
	InstanceID uint64
}

// String returns "ns/comp/ep@{instance:x}" for logs.
func (e Endpoint) String() string {
	return e.Namespace + "/" + e.Component + "/" + e.Name + "@" + strconv.FormatUint(e.InstanceID, 16)
}

// Handler admits requests for one endpoint. A plane calls Accept after the frame has passed
// Decode and before it acknowledges. Accept must not block: it either refuses the request
// (ErrOverloaded, ErrDraining, or any error, which is answered as a bad request) or takes
// ownership of req and starts processing it asynchronously, and returns nil.
type Handler interface {
	Accept(req *Request) error
}

// Recycler is implemented by a Handler that reuses the memory of the requests it finished:
// DecodeFor takes each request from NewRequest (zeroed), and the handler recycles it once it
// is done with it. Planes never touch a request after Accept accepted it.
type Recycler interface {
	NewRequest() *Request
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(req *Request) error

// Accept calls f(req).
func (f HandlerFunc) Accept(req *Request) error { return f(req) }

// Server is a plane's ingress.
//
// Start binds the listener or connects to the broker; Add and Remove may be called at any time
// after Start (a worker re-adds its endpoints under a new instance id after a lease loss); Close
// stops accepting, closes connections and waits for the server's goroutines. Close is
// idempotent. Requests already handed to a Handler are the Handler's to finish.
type Server interface {
	// Name is the plane's name (NameHTTP, NameTCP or NameNATS).
	Name() string
	// Start binds or connects. It returns once the server accepts requests.
	Start(ctx context.Context) error
	// Add routes ep to h and returns the address to advertise in discovery for it:
	// an http:// URL, "ip:port/{id:x}/{ep}", or a NATS subject.
	Add(ctx context.Context, ep Endpoint, h Handler) (address string, err error)
	// Remove stops routing ep; later requests for it are answered as unknown endpoint.
	Remove(ep Endpoint)
	// Close stops the server. It is idempotent.
	Close() error
}

// Client is a plane's egress. Send delivers one encoded TwoPart request frame to address (as
// advertised in discovery) and returns nil once the worker acknowledged it. Every failure is
// an *Error; Retryable tells whether another instance may be tried. Send never retries by
// itself, and holds no reference to frame once it returns (callers reuse its buffer). Clients
// are safe for concurrent use; Close releases pooled connections.
type Client interface {
	Name() string
	Send(ctx context.Context, address string, frame []byte, meta Meta) error
	Close() error
}
