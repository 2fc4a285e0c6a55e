package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/reqplane/reqplane/internal/echo"
)

// The reference service: one server-streaming method, described by hand (no protoc here).
const (
	grpcServiceName = "reqplane.bench.Echo"
	grpcMethod      = "/" + grpcServiceName + "/Stream"
)

// rawCodec carries messages as raw bytes (*[]byte), so the reference does the same work as the
// request planes: bytes in, bytes out, no protobuf.
type rawCodec struct{}

// Name is the content subtype: application/grpc+reqplane-raw.
func (rawCodec) Name() string { return "reqplane-raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case []byte:
		return m, nil
	}
	return nil, fmt.Errorf("bench: raw codec cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("bench: raw codec cannot unmarshal into %T", v)
	}
	*m = append((*m)[:0], data...) // gRPC may reuse data once Unmarshal returns
	return nil
}

// echoService is the reference service's handler type; the server needs none of its methods.
type echoService any

var grpcDesc = grpc.ServiceDesc{
	ServiceName: grpcServiceName,
	HandlerType: (*echoService)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		Handler:       serveEchoStream,
		ServerStreams: true,
	}},
	Metadata: "internal/bench/grpc.go",
}

// serveEchoStream is the bench engine of internal/echo over gRPC: the same request body, the same
// items.
func serveEchoStream(_ any, stream grpc.ServerStream) error {
	var body []byte
	if err := stream.RecvMsg(&body); err != nil {
		return err
	}
	r, err := echo.ParseBenchRequest(body)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	for i := range r.Items {
		// A fresh buffer per item: gRPC may still hold a sent message after SendMsg returns.
		item := echo.AppendBenchItem(make([]byte, 0, max(r.Size, 64)), i, r.Size)
		if err := stream.SendMsg(&item); err != nil {
			return err
		}
	}
	return nil
}

// ServeGRPC serves the reference service on lis until ctx ends, then stops the server (closing
// lis) and returns nil; any other end of serving is returned.
func ServeGRPC(ctx context.Context, lis net.Listener) error {
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	s.RegisterService(&grpcDesc, struct{}{})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	select {
	case <-ctx.Done():
		s.Stop()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// GRPCClient calls the reference service over one gRPC connection, as a gRPC-Go user would.
type GRPCClient struct {
	cc *grpc.ClientConn
}

// NewGRPCClient returns a client of the reference service at addr (host:port). It connects on
// the first call.
func NewGRPCClient(addr string) (*GRPCClient, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return nil, fmt.Errorf("bench: gRPC client: %w", err)
	}
	return &GRPCClient{cc: cc}, nil
}

var grpcStreamDesc = grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}

// Call sends body and reads the whole stream, calling first when the first item arrives. It
// returns the number of items read.
func (c *GRPCClient) Call(ctx context.Context, body []byte, first func()) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // releases the stream on every early return
	s, err := c.cc.NewStream(ctx, &grpcStreamDesc, grpcMethod)
	if err != nil {
		return 0, err
	}
	if err := s.SendMsg(&body); err != nil {
		return 0, err
	}
	if err := s.CloseSend(); err != nil {
		return 0, err
	}
	n := 0
	var item []byte
	for {
		err := s.RecvMsg(&item)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if n == 0 && first != nil {
			first()
		}
		n++
	}
}

// Close closes the connection. It is idempotent.
func (c *GRPCClient) Close() error {
	if err := c.cc.Close(); err != nil && status.Code(err) != codes.Canceled {
		return err
	}
	return nil
}
