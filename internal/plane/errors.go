package plane

import (
	"errors"
	"fmt"

	"github.com/reqplane/reqplane/internal/codec"
)

// Code classifies a request-plane failure.
type Code uint8

const (
	CodeUnknown         Code = iota
	CodeUnknownEndpoint      // the instance does not serve the endpoint (HTTP 404, TCP "Unknown endpoint")
	CodeBadRequest           // the frame or its control header was refused (HTTP 400)
	CodeTooLarge             // the frame exceeds the maximum message size (HTTP 413)
	CodeOverloaded           // in-flight limit reached (HTTP 503)
	CodeDraining             // the endpoint is shutting down (HTTP 503)
	CodeNoResponders         // NATS: nobody subscribes to the subject
	CodeConnect              // the connection to the instance could not be made or broke before the ack
	CodeAckTimeout           // no acknowledgement within the plane's request timeout
	CodeRefused              // any other refusal (e.g. an unexpected HTTP status)
	CodeClosed               // the client or server was closed
)

var codeNames = [...]string{
	CodeUnknown:         "unknown",
	CodeUnknownEndpoint: "unknown_endpoint",
	CodeBadRequest:      "bad_request",
	CodeTooLarge:        "too_large",
	CodeOverloaded:      "overloaded",
	CodeDraining:        "draining",
	CodeNoResponders:    "no_responders",
	CodeConnect:         "connect",
	CodeAckTimeout:      "ack_timeout",
	CodeRefused:         "refused",
	CodeClosed:          "closed",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Texts a worker answers with (spec §5.1); peers print them verbatim.
const (
	TextEndpointNotFound = "Endpoint not found"
	TextOverloaded       = "Server overloaded: in-flight request limit reached"
	TextDraining         = "Server unavailable: endpoint is draining"
	// TextNotHeaderAndData is the refusal of a frame that lacks a header or a body.
	TextNotHeaderAndData = "Two Part Codec Error: Invalid message: " + codec.DetailNotRequest
)

// Error is the one error type of the request planes. Compare with errors.Is against the
// sentinels below (which match by Code) or read the Code with errors.As.
type Error struct {
	Plane  string // NameHTTP, NameTCP, NameNATS; empty when not plane-specific
	Code   Code
	Status int    // the HTTP status, when an HTTP server answered
	Text   string // what the peer answered, or what went wrong
	Err    error  // the cause, if any
}

func (e *Error) Error() string {
	msg := e.Text
	if msg == "" {
		msg = e.Code.String()
	}
	if e.Plane != "" {
		msg = e.Plane + " request plane: " + msg
	}
	if e.Err != nil && e.Text == "" {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, plane.ErrOverloaded) holds for any overloaded refusal.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Retryable reports whether the request may be sent to another instance: true for every
// failure that happens before an acknowledgement and says nothing against the request itself.
func (e *Error) Retryable() bool {
	switch e.Code {
	case CodeUnknownEndpoint, CodeOverloaded, CodeDraining, CodeNoResponders, CodeConnect, CodeAckTimeout:
		return true
	}
	return false
}

// Sentinels, one per Code that callers act on. Handlers return ErrOverloaded or ErrDraining to
// refuse a request; planes map them to their own answer.
var (
	ErrUnknownEndpoint = &Error{Code: CodeUnknownEndpoint, Text: TextEndpointNotFound}
	ErrBadRequest      = &Error{Code: CodeBadRequest}
	ErrTooLarge        = &Error{Code: CodeTooLarge}
	ErrOverloaded      = &Error{Code: CodeOverloaded, Text: TextOverloaded}
	ErrDraining        = &Error{Code: CodeDraining, Text: TextDraining}
	ErrNoResponders    = &Error{Code: CodeNoResponders}
	ErrConnect         = &Error{Code: CodeConnect}
	ErrAckTimeout      = &Error{Code: CodeAckTimeout}
	ErrClosed          = &Error{Code: CodeClosed}
)

// CodeOf returns the Code of err, CodeUnknown when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}

// Retryable reports whether err is a plane failure after which another instance may be tried.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// Refusal returns the text a server answers for a Handler's refusal err, with its code:
// overloaded and draining keep their spec texts, anything else is a bad request with err's text.
func Refusal(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		if e.Text != "" {
			return e.Code, e.Text
		}
		return e.Code, e.Error()
	}
	return CodeBadRequest, err.Error()
}
