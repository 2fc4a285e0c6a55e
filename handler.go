package reqplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/reqplane/reqplane/internal/stream"
)

// Request is one request as a Handler sees it.
type Request struct {
	// ID is the request's context id, chosen by the requester; retries keep it.
	ID string
	// RequestID is the caller's x-request-id when it sent one, else ID: put it on logs.
	RequestID string
	// TraceParent and TraceState are the W3C trace context the requester sent, if any.
	TraceParent string
	TraceState  string
	Endpoint    EndpointID
	Instance    InstanceID
	// Plane is the request plane the request came in on: "http", "tcp" or "nats".
	Plane string
	// Body is the request body, normally JSON. The handler owns it.
	Body []byte

	// The request's logger is built on first use: most requests never log.
	logOnce sync.Once
	log     *slog.Logger
	logBase *slog.Logger
	span    trace.SpanContext
}

// Logger returns a logger whose lines carry the request's endpoint, request_id and, when
// tracing, trace_id and span_id.
func (r *Request) Logger() *slog.Logger {
	r.logOnce.Do(func() {
		l := r.logBase
		if l == nil {
			l = slog.Default()
		}
		l = l.With("endpoint", r.Endpoint.String(), "request_id", r.RequestID)
		if r.span.IsValid() {
			l = l.With("trace_id", r.span.TraceID().String(), "span_id", r.span.SpanID().String())
		}
		r.log = l
	})
	return r.log
}

// Handler serves one endpoint. Generate is called once per request, in its own goroutine, with a
// context that ends when the requester stops or kills the stream, disconnects, or when the worker
// shuts down past its drain deadline.
//
// Returning an error before the first Send fails the request with an error prologue: the caller
// sees "Generate Error: {err}". Returning an error after items were sent appends an in-band
// Annotated error item ({"event":"error","comment":[err]}) and ends the stream normally, which is
// how Dynamo engines report a failure mid-stream.
type Handler interface {
	Generate(ctx context.Context, req *Request, out *Responder) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request, out *Responder) error

// Generate calls f.
func (f HandlerFunc) Generate(ctx context.Context, req *Request, out *Responder) error {
	return f(ctx, req, out)
}

// Responder streams one request's response items back to the requester.
type Responder struct {
	s       stream.Responder
	started bool   // the prologue was sent
	sent    int    // items sent
	bytes   int    // item bytes sent (metric response_bytes_total)
	errType string // the first failure's metric error_type, if any
}

// failed records the metric error type of a stream failure; the first one wins.
func (r *Responder) failed(err error) error {
	if r.errType == "" {
		r.errType = stream.ErrorType(err)
	}
	return err
}

// ErrStopped is returned by Send once the requester has asked the stream to stop: the handler
// should return.
var ErrStopped = errors.New("reqplane: the requester stopped the stream")

// Send sends one item: data must be one complete JSON value (it is sent verbatim as the item's
// data). It blocks when the requester reads slower than the handler produces.
func (r *Responder) Send(data []byte) error {
	if err := r.start(); err != nil {
		return err
	}
	if r.s.Stopped() || r.s.Killed() {
		return ErrStopped
	}
	if err := r.s.Send(data); err != nil {
		return r.failed(err)
	}
	r.sent++
	r.bytes += len(data)
	return nil
}

// SendJSON encodes v as JSON (without HTML escaping, as serde writes) and sends it.
func (r *Responder) SendJSON(v any) error {
	b, err := marshalJSON(v)
	if err != nil {
		return fmt.Errorf("reqplane: encoding a response item: %w", err)
	}
	return r.Send(b)
}

// start sends the success prologue before the first item.
func (r *Responder) start() error {
	if r.started {
		return nil
	}
	r.started = true
	return r.failed(r.s.Prologue(nil))
}

// finish ends the stream after the handler returned err.
func (r *Responder) finish(err error) error {
	if err != nil && !r.started {
		r.started = true
		r.errType = stream.ErrorType(stream.ErrGenerate)
		text := "Generate Error: " + err.Error()
		if perr := r.s.Prologue(&text); perr != nil {
			return perr
		}
		return r.s.Finish()
	}
	if err := r.start(); err != nil {
		return err
	}
	if err != nil && !errors.Is(err, ErrStopped) && !r.s.Stopped() && !r.s.Killed() {
		item, merr := marshalJSON(annotatedError{Event: "error", Comment: []string{err.Error()}})
		if merr == nil {
			_ = r.s.Send(item) // best effort: the stream still ends below
		}
	}
	return r.failed(r.s.Finish())
}

type annotatedError struct {
	Event   string   `json:"event"`
	Comment []string `json:"comment"`
}

// marshalJSON is json.Marshal without HTML escaping (serde_json escapes no <, > or &).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
