package plane

import (
	"errors"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// Outcome is what a server did with one request it read: acknowledged it (Err nil) or refused
// it. Servers report every request they answer, refusals before any Handler included (unknown
// endpoint, a bad frame), which a Handler never sees.
type Outcome struct {
	Plane string
	// Endpoint is the route the request was addressed to; zero when no route matched.
	Endpoint Endpoint
	// Code is the refusal's code (CodeUnknown for an ack).
	Code Code
	// Status is the HTTP status answered (HTTP plane only; 0 elsewhere).
	Status int
	// Err is the refusal, nil for an ack.
	Err error
	// Start is when the server began handling the request (its bytes were in).
	Start time.Time
}

// Acked reports whether the request was acknowledged.
func (o *Outcome) Acked() bool { return o.Err == nil }

// ObserveFunc receives a server's Outcomes. It runs on the request path, before the reply is
// written: it must be cheap and must not block. o is valid only during the call (servers reuse
// it for the next request): copy what is kept.
type ObserveFunc func(o *Outcome)

// Error types of the worker metric dynamo_component_errors_total (spec §9) for refusals.
const (
	ErrorTypeDeserialization = "deserialization" // the control header
	ErrorTypeInvalidMessage  = "invalid_message" // the TwoPart frame
)

// ErrorType returns the spec §9 error_type of a refusal by Decode: "deserialization" when the
// control header was refused, "invalid_message" when the frame was. Other refusals (unknown
// endpoint, overloaded, draining) are not worker errors: "".
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var ce *codec.ControlError
	if errors.As(err, &ce) {
		return ErrorTypeDeserialization
	}
	var fe *codec.Error
	if errors.As(err, &fe) {
		return ErrorTypeInvalidMessage
	}
	switch CodeOf(err) {
	case CodeBadRequest, CodeTooLarge:
		return ErrorTypeInvalidMessage
	}
	return ""
}
