package nats

import (
	"testing"

	"github.com/reqplane/reqplane/internal/natsembed"
	"github.com/reqplane/reqplane/internal/plane"
)

// benchPlane starts a NATS server, a plane Server admitting everything and a connected Client.
func benchPlane(b *testing.B) (cli *Client, subject string, frame []byte) {
	b.Helper()
	ns := startNATS(b, natsembed.Options{})
	srv := startServer(b, Options{URLs: []string{ns.ClientURL()}})
	subject, err := srv.Add(testCtx(b), testEndpoint, plane.HandlerFunc(func(*plane.Request) error { return nil }))
	if err != nil {
		b.Fatal(err)
	}
	cli = newClient(b, ClientOptions{URLs: []string{ns.ClientURL()}})
	if err := cli.Connect(testCtx(b)); err != nil {
		b.Fatal(err)
	}
	return cli, subject, requestFrame(b, id(1), []byte(`{"text":"hello world"}`))
}

// BenchmarkSendAck is one Send and its ack, one at a time: the plane's latency.
func BenchmarkSendAck(b *testing.B) {
	cli, subject, frame := benchPlane(b)
	ctx := testCtx(b)
	meta := plane.Meta{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := cli.Send(ctx, subject, frame, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendAckParallel is many concurrent Sends on the shared connection: the throughput.
func BenchmarkSendAckParallel(b *testing.B) {
	cli, subject, frame := benchPlane(b)
	ctx := testCtx(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := cli.Send(ctx, subject, frame, plane.Meta{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHandleMsg is the worker's per-message work without the network: decode, admit, ack.
func BenchmarkHandleMsg(b *testing.B) {
	frame := requestFrame(b, id(1), []byte(`{"text":"hello world"}`))
	e := &endpoint{
		ep:      testEndpoint,
		h:       plane.HandlerFunc(func(*plane.Request) error { return nil }),
		max:     1 << 20,
		log:     discardLogger,
		respond: func(_, _ *natsMsg) error { return nil },
	}
	msg := &natsMsg{Subject: "s", Reply: "_INBOX.x", Data: frame}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e.handle(msg)
	}
}
