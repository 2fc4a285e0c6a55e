// Package planetest is the conformance suite every request plane must pass.
//
// A plane's test calls Run with a Harness that builds a started Server and a Client for it.
// The suite then drives the plane the way reqplane uses it: a worker path (the plane server
// hands admitted requests to a handler, which calls home with stream.Dial and runs a small
// echo engine) and a requester path (stream.Server, Register, plane.EncodeRequest,
// Client.Send, Acked, Recv). It checks streamed round trips, error prologues, stop and kill
// reaching the handler, a broken call-home connection, unknown endpoints, malformed and
// oversized payloads, refusals (overloaded, draining), and many concurrent requests on one
// client. Everything binds and dials 127.0.0.1 only.
package planetest
