package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The reference serves the bench engine's items over gRPC, on 127.0.0.1.
func TestGRPCReference(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- ServeGRPC(sctx, lis) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("ServeGRPC: %v", err)
		}
	}()
	c, err := NewGRPCClient(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tests := []struct {
		name      string
		body      string
		wantItems int
		wantCode  codes.Code
	}{
		{"one item", string(Body(1, 100, 64)), 1, codes.OK},
		{"a stream", string(Body(100, 100, 64)), 100, codes.OK},
		{"no items", `{"items":0,"size":100}`, 0, codes.OK},
		{"bad body", `{"items":-1}`, 0, codes.InvalidArgument},
		{"not JSON", `nope`, 0, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			firsts := 0
			n, err := c.Call(ctx, []byte(tc.body), func() { firsts++ })
			if status.Code(err) != tc.wantCode {
				t.Fatalf("err %v, want code %v", err, tc.wantCode)
			}
			if tc.wantCode != codes.OK {
				if !strings.Contains(err.Error(), `{"items":N,"size":S}`) {
					t.Errorf("error %q lacks the engine's text", err)
				}
				return
			}
			if n != tc.wantItems || firsts != min(n, 1) {
				t.Errorf("%d items, first called %d times; want %d items", n, firsts, tc.wantItems)
			}
		})
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRawCodec(t *testing.T) {
	var c rawCodec
	in := []byte("abc")
	b, err := c.Marshal(&in)
	if err != nil || string(b) != "abc" {
		t.Fatalf("Marshal = %q, %v", b, err)
	}
	if _, err := c.Marshal("abc"); err == nil {
		t.Error("Marshal of a string succeeded")
	}
	src := []byte("xyz")
	var out []byte
	if err := c.Unmarshal(src, &out); err != nil || string(out) != "xyz" {
		t.Fatalf("Unmarshal = %q, %v", out, err)
	}
	src[0] = 'X'
	if string(out) != "xyz" {
		t.Error("Unmarshal kept a reference to gRPC's buffer")
	}
	if err := c.Unmarshal(src, new(string)); err == nil {
		t.Error("Unmarshal into a string succeeded")
	}
}
