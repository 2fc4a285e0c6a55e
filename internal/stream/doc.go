// Package stream is the TCP call-home response plane (spec §1, §6; transport "tcp_server").
//
// A request travels to a worker on a request plane; the response comes back on a separate TCP
// connection that the worker opens to the requester ("calls home"). This package holds both
// ends of that connection:
//
//   - Requester side: one Server per process listens for call-home connections. Before a
//     request is sent, Register creates a Stream with a fresh subject; its Info goes into the
//     request's control header. When the worker connects and names the subject in its
//     handshake, the connection is attached to the Stream, and Stream.Recv yields the items.
//     Stop asks the worker to finish gracefully; Close kills the stream.
//   - Worker side: Dial connects to the address in the request's call-home info, sends the
//     handshake and returns a Sender, which writes the prologue, one frame per item, the final
//     marker and the sentinel (frames queued while a write is under way leave together, in
//     one write), and turns the requester's "stop" and "kill" into the cancellation of its
//     Context.
//
// The response mux (spec §13, transport "tcp_response_mux_v1", docs/protocol.md §8) carries
// many streams on a few persistent connections: the same Server accepts mux connections
// (RegisterMux returns a Stream with the same consumer API), and a worker's MuxDialer opens
// streams whose MuxSender has Sender's surface; both senders satisfy Responder.
//
// Stream is the requester's consumer API and knows nothing about how its items arrive.
//
// Every failure is a *Error with a Code; errors.Is matches the sentinels by code. Where the
// spec gives a text (Dynamo's), Error() returns exactly that text.
package stream
