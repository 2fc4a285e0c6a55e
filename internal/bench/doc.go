// Package bench measures reqplane's request planes against a gRPC-Go reference: the phases of
// `reqplane bench` (round trip, stream, closed-loop load), their statistics, the CPU time of the
// processes involved, the result table, the JSON rows and the latency chart.
//
// It is the only package besides cmd/ that imports gRPC: the reference is a server-streaming echo
// with a raw-bytes codec and a hand-written service descriptor, so no protoc is needed.
package bench
