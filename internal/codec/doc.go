// Package codec is the byte-exact wire format reqplane shares with NVIDIA Dynamo's runtime.
//
// It covers three layers, all described in docs/protocol.md:
//
//   - TwoPart frames ([AppendFrame], [DecodeFrame], [SplitFrame], [Reader], [Writer]): a 24-byte
//     big-endian prefix (header length, body length, XXH3-64 checksum) followed by a JSON header
//     and a body. Every request plane carries exactly one frame per request; the call-home
//     response stream is a sequence of them.
//   - The JSON control objects carried in those frames ([AppendRequestControl],
//     [AppendHandshake], [AppendPrologue], [Control], [AppendStreamItem], [AppendAnnotated] and
//     their parsers). Writers are hand-written and reflection-free and produce exactly the bytes
//     serde_json produces, because peers compare and hash them; readers tolerate unknown fields.
//   - The response mux v1 frames and control objects ([AppendMuxFrame], [SplitMuxFrame],
//     [MuxReader], [AppendMuxRequestControl], [RequestControl.ValidateMux], [AppendMuxHandshake],
//     [AppendMuxHandshakeAck]).
//   - The TCP request plane envelope and reply ([AppendTCPRequest], [TCPRequestReader],
//     [AppendTCPReply], [ReadTCPReply]) and the address forms found in discovery records.
//
// Every decoder checks declared sizes against the configured limit before it allocates or
// reads further, so a hostile peer cannot make it allocate memory it has not sent.
//
// The package imports only the standard library and github.com/zeebo/xxh3, performs no I/O
// beyond the io.Reader/io.Writer it is handed, and starts no goroutines.
package codec
