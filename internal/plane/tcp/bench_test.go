package tcp

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/reqplane/reqplane/internal/plane"
)

// BenchmarkSendAck is one request and its acknowledgement at a time over loopback.
func BenchmarkSendAck(b *testing.B) {
	s := discardServer(b)
	c := NewClient(ClientOptions{})
	defer c.Close()
	addr, frame, ctx := address(s, "generate"), v6Frame(b), context.Background()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(ctx, addr, frame, plane.Meta{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendPipelined64 is 64 concurrent senders sharing the client's pool.
func BenchmarkSendPipelined64(b *testing.B) {
	s := discardServer(b)
	c := NewClient(ClientOptions{})
	defer c.Close()
	addr, frame, ctx := address(s, "generate"), v6Frame(b), context.Background()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Send(ctx, addr, frame, plane.Meta{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkServeBurst is the server's per-request cost on a buffered burst of 100 V7
// requests, without the network.
func BenchmarkServeBurst(b *testing.B) {
	s := discardServer(b)
	var burst []byte
	for range 100 {
		burst = append(burst, v7(b)...)
	}
	b.SetBytes(int64(len(burst)))
	b.ReportAllocs()
	r := bytes.NewReader(burst)
	for b.Loop() {
		r.Reset(burst)
		s.serveConn(&fakeConn{in: r})
	}
}
