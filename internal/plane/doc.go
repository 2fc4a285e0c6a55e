// Package plane is the request-plane contract shared by the HTTP/2, TCP and NATS planes.
//
// A plane Server is the worker's ingress: it receives one TwoPart frame per request for a named
// endpoint, checks it (Decode), admits it through the endpoint's Handler, acknowledges it at once
// and leaves the processing to the handler, which continues asynchronously and answers over the
// call-home response plane (package stream). A plane Client is the requester's egress: it sends an
// encoded frame to an instance's advertised address and returns when the worker acknowledged or
// refused it.
//
// The planes are interchangeable: they carry the same frames, refuse with the same texts (see
// the spec table in docs/protocol.md) and report failures as *Error values whose Code tells the
// router whether trying another instance is safe (it always is before an acknowledgement).
package plane
