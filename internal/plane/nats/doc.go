// Package nats is the NATS request plane (spec §5.2): a worker's Server subscribes each
// endpoint's subject "{ns}_{comp}.{ep}-{instance:x}" in queue group "q" and acknowledges an
// admitted request with an empty reply; a requester's Client sends the TwoPart frame as a NATS
// request with the trace and request-id headers and waits for that acknowledgement.
//
// Refusals are replied with the text as payload and the NATS service-error headers
// (Nats-Service-Error, Nats-Service-Error-Code 400, 413 or 503); the Client maps them, the
// "no responders" status and the ack timeout onto *plane.Error so the router can decide
// whether to try another instance.
//
// The package speaks to any NATS server through nats.go; it never imports nats-server
// (internal/natsembed runs one in-process for `reqplane nats` and the tests).
package nats
