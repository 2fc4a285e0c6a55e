package reqplane

import (
	"errors"
	"fmt"
)

// Code classifies what went wrong with a request, so callers can decide with errors.Is or CodeOf
// without parsing texts.
type Code uint8

const (
	CodeUnknown Code = iota
	// CodeNoInstances: no instance serves the endpoint (or not the one asked for).
	CodeNoInstances
	// CodeUnavailable: instances exist, but every one tried failed before acknowledging the
	// request (connection refused, ack timeout, overloaded, draining, no responders).
	CodeUnavailable
	// CodeRejected: a worker refused the request itself (malformed or too large); retrying
	// elsewhere would not help.
	CodeRejected
	// CodeGenerate: the worker's handler failed before streaming (an error prologue).
	CodeGenerate
	// CodeStream: the response stream failed after the request was acknowledged. Such a request
	// is never retried: the worker may have done part of the work.
	CodeStream
	// CodeCanceled: the caller's context ended.
	CodeCanceled
	// CodeUnreachable: a service the runtime needs (etcd, NATS) could not be reached.
	CodeUnreachable
	// CodeClosed: the runtime or client was closed.
	CodeClosed
)

var codeNames = [...]string{
	CodeUnknown:     "unknown",
	CodeNoInstances: "no_instances",
	CodeUnavailable: "unavailable",
	CodeRejected:    "rejected",
	CodeGenerate:    "generate",
	CodeStream:      "stream",
	CodeCanceled:    "canceled",
	CodeUnreachable: "unreachable",
	CodeClosed:      "closed",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Error is the error type of the public API. Its text is what a Dynamo peer would print where
// the protocol defines one ("no instances found for endpoint …", "Generate Error: …",
// "Stream ended before generation completed").
type Error struct {
	Code     Code
	Endpoint EndpointID
	// Instance is the instance involved, when one was picked.
	Instance InstanceID
	Message  string
	Err      error
}

func (e *Error) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Code.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches any *Error with the same Code, so errors.Is(err, reqplane.ErrNoInstances) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrNoInstances = &Error{Code: CodeNoInstances}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrRejected    = &Error{Code: CodeRejected}
	ErrGenerate    = &Error{Code: CodeGenerate}
	ErrStream      = &Error{Code: CodeStream}
	ErrCanceled    = &Error{Code: CodeCanceled}
	ErrUnreachable = &Error{Code: CodeUnreachable}
	ErrClosed      = &Error{Code: CodeClosed}
)

// CodeOf returns err's Code, CodeUnknown for errors not from this package.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}
