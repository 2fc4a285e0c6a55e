// Package tcp is the TCP request plane (spec §5.4): a worker-side Server that accepts
// length-prefixed request envelopes on persistent, pipelined connections and acknowledges each
// one in order, and a requester-side Client that keeps a pool of such connections per worker
// address and matches replies to requests by their position on the connection.
//
// Wire format (see docs/protocol.md and internal/codec):
//
//	request: u16 path_len | path | u16 headers_len | headers JSON | u32 payload_len | payload
//	reply:   u32 len | data            (len 0 = ack)
//
// The payload is one TwoPart request frame. The server routes on path, "{instance:x}/{endpoint}",
// checks the frame with plane.Decode, admits it through the endpoint's plane.Handler and answers
// an empty reply (the ack) or a refusal text. Replies carry no request id, so a connection's
// replies come back in request order; both sides depend on that.
//
// The Server owns one goroutine per connection plus its accept loop; the Client owns one reader
// goroutine per pooled connection and, while it has connections, one acknowledgement checker
// that fails overdue requests. Close on either stops and waits for all of them.
package tcp
