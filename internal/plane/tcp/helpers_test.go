package tcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Spec §11 values.
const (
	v6ID      = "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"
	v5Subject = "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"
	v6Body    = `{"text":"hello world"}`
	v7Path    = "694d98147d54be25/generate"
	// v7Prefix is the envelope up to the payload: path_len, path, headers_len, "{}", payload_len.
	v7Prefix = "0019363934643938313437643534626532352f67656e6572617465" + "00027b7d" + "0000016f"
	// v6FramePrefix is the TwoPart prefix of V6.
	v6FramePrefix = "0000000000000141" + "0000000000000016" + "1fb8ba1d9a36f51a"

	testInstance = 0x694d98147d54be25
	// waitLong bounds every wait in these tests; generous for -race on a loaded machine.
	waitLong = 20 * time.Second
)

func endpoint(name string) plane.Endpoint {
	return plane.Endpoint{Namespace: "dynamo", Component: "backend", Name: name, InstanceID: testInstance}
}

// requestFrame encodes a request frame the way a requester does.
func requestFrame(t testing.TB, id, body string) []byte {
	t.Helper()
	info := codec.CallHomeInfo{Address: "10.0.0.5:41235", Subject: v5Subject, Context: id, StreamType: codec.StreamTypeResponse}
	f, err := plane.EncodeRequest(nil, id, info, []byte(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// v6Frame returns spec vector V6, checked against the spec's bytes.
func v6Frame(t testing.TB) []byte {
	t.Helper()
	f := requestFrame(t, v6ID, v6Body)
	if len(f) != 367 || hex.EncodeToString(f[:codec.PrefixLen]) != v6FramePrefix {
		t.Fatalf("V6 frame: %d bytes, prefix %x", len(f), f[:codec.PrefixLen])
	}
	return f
}

// v7 returns spec vector V7: the TCP envelope of V6.
func v7(t testing.TB) []byte {
	t.Helper()
	b := mustHex(t, v7Prefix)
	return append(b, v6Frame(t)...)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawEnvelope builds an envelope field by field, so tests can write what an encoder refuses.
func rawEnvelope(path []byte, headers string, payloadLen uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(path)))
	b = append(b, path...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(headers)))
	b = append(b, headers...)
	b = binary.BigEndian.AppendUint32(b, payloadLen)
	return append(b, payload...)
}

// envelope is a well-formed envelope for payload.
func envelope(path, headers string, payload []byte) []byte {
	return rawEnvelope([]byte(path), headers, uint32(len(payload)), payload)
}

// recorder is a Handler that keeps what it accepts.
type recorder struct {
	mu   sync.Mutex
	reqs []*plane.Request
	got  chan struct{} // one token per request, never blocks the server (large buffer)
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1<<14)} }

func (r *recorder) Accept(req *plane.Request) error {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) requests() []*plane.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*plane.Request(nil), r.reqs...)
}

// testServer starts a Server on 127.0.0.1:0 with endpoints "generate" (recorded), "busy"
// (overloaded), "drain" (draining) and "picky" (refuses with a plain error).
func testServer(t testing.TB, opts Options) (*Server, *recorder) {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rec := newRecorder()
	for name, h := range map[string]plane.Handler{
		"generate": rec,
		"busy":     plane.HandlerFunc(func(*plane.Request) error { return plane.ErrOverloaded }),
		"drain":    plane.HandlerFunc(func(*plane.Request) error { return plane.ErrDraining }),
		"picky":    plane.HandlerFunc(func(*plane.Request) error { return errors.New("nope") }),
	} {
		if _, err := s.Add(context.Background(), endpoint(name), h); err != nil {
			t.Fatal(err)
		}
	}
	return s, rec
}

// address returns the advertised address of endpoint name on s.
func address(s *Server, name string) string {
	return s.Addr().String() + "/" + RouteKey(endpoint(name))
}

func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitLong))
	return c
}

func readReply(t testing.TB, r io.Reader) string {
	t.Helper()
	data, err := codec.ReadTCPReply(r, 1<<20, nil)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return string(data)
}

// expectEOF asserts the peer closed the connection (after everything already read).
func expectEOF(t testing.TB, r io.Reader) {
	t.Helper()
	var b [1]byte
	n, err := r.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", waitLong)
	}
}

// eventually polls cond until it holds or waitLong passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeServer is a raw TCP listener whose connections run serve, for client tests that need a
// misbehaving worker. Connections are numbered from 0 in accept order.
type fakeServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startFake(t testing.TB, serve func(i int, c net.Conn)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				serve(i, c)
			}()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeServer) address() string { return f.ln.Addr().String() + "/" + v7Path }

// fakeConn is an in-memory net.Conn: reads come from in, writes are counted and collected.
type fakeConn struct {
	in            io.Reader
	out           bytes.Buffer
	reads, writes int
}

func (c *fakeConn) Read(p []byte) (int, error) {
	c.reads++
	return c.in.Read(p)
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.writes++
	return c.out.Write(p)
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
