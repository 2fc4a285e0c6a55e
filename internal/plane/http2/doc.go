// Package http2 is the HTTP request plane (DYN_REQUEST_PLANE=http or http2): a worker-side
// Server that accepts one TwoPart request frame per POST {root}/{endpoint} and acknowledges it
// with 202 Accepted, and a requester-side Client that POSTs frames to the URLs workers advertise
// in discovery.
//
// The Server speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port, through
// net/http's Server.Protocols; the Client speaks h2c only, multiplexing many requests over a
// few pooled connections, as Dynamo's requesters do, with a transport of its own on
// golang.org/x/net/http2's framer and HPACK coder (conn.go says why). Both are wire-compatible with Dynamo's
// http_endpoint.rs and http_router.rs: endpoints are routed by name only, refusals carry the
// spec's status codes and texts (docs/protocol.md, "HTTP/2 plane"), and the Client reports them
// as "HTTP request failed with status {code} {reason}: {body}".
//
// Every failure is a *plane.Error, so a router can tell with plane.Retryable whether another
// instance may be tried: refusals before the acknowledgement, connection failures and ack
// timeouts are retryable; bad or oversized frames and caller cancellations are not.
package http2
