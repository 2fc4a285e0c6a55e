package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reqplane/reqplane/internal/codec"
)

func newTestDialer(t *testing.T, opts MuxDialOptions) *MuxDialer {
	t.Helper()
	opts.Logger = slog.New(&logRecorder{})
	d := NewMuxDialer(opts)
	t.Cleanup(func() { d.Close() })
	return d
}

// openMux registers a mux stream and opens its worker end.
func openMux(t *testing.T, srv *Server, d *MuxDialer) (*Stream, *MuxSender) {
	t.Helper()
	st := srv.RegisterMux(uuid.NewString())
	t.Cleanup(func() { st.Close() })
	info, ok := st.MuxInfo()
	if !ok {
		t.Fatal("RegisterMux returned a classic stream")
	}
	s, err := d.Open(ctxFor(t), info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st.Acked()
	return st, s
}

func item(i int) []byte { return []byte(`{"data":{"index":` + strconv.Itoa(i) + `}}`) }

// muxHandshake writes a worker's mux handshake on c and checks the requester's ack byte by byte.
func muxHandshake(t *testing.T, c net.Conn, frontend codec.UUID) {
	t.Helper()
	write(t, c, hdr(t, string(codec.AppendMuxHandshake(nil, codec.MuxHandshake{
		FrontendServerID: frontend, ConnectionID: codec.UUID(uuid.New()),
	}))))
	want := codec.AppendMuxHandshakeAck(nil)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("handshake ack %x, %v; want %x", got, err, want)
	}
}

func muxFrame(t testing.TB, kind codec.MuxKind, id codec.UUID, payload string) []byte {
	t.Helper()
	b, err := codec.AppendMuxFrame(nil, kind, id, []byte(payload), codec.MuxFromAny, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readMuxFrame reads one frame the requester sends.
func readMuxFrame(t *testing.T, r *codec.MuxReader, c net.Conn) codec.MuxFrame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	f, err := r.Next()
	if err != nil {
		t.Fatalf("reading the requester's frame: %v", err)
	}
	f.Payload = bytes.Clone(f.Payload)
	return f
}

// TestMuxWireBytes drives the requester with hand-written bytes: handshake and ack, a stream's
// prologue, items and end, the ConnectionAck after 64 KiB read, the WindowUpdate after 64 KiB
// consumed, and a Stop.
func TestMuxWireBytes(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	c := rawConn(t, srv.Addr())
	muxHandshake(t, c, srv.FrontendServerID())
	r := codec.NewMuxReader(c, codec.MuxFromRequester, 0, nil)

	st := srv.RegisterMux("req-1")
	defer st.Close()
	info, _ := st.MuxInfo()
	if info.Address != srv.Addr() || info.FrontendServerID != srv.FrontendServerID() || info.Context != "req-1" || info.Version != 1 {
		t.Fatalf("MuxInfo %+v", info)
	}
	if got, want := string(st.AppendRequestControl(nil)), string(codec.AppendMuxRequestControl(nil, "req-1", info)); got != want || st.Transport() != codec.TransportTCPResponseMuxV1 {
		t.Fatalf("AppendRequestControl %s", got)
	}
	id := info.StreamID
	big := `"` + strings.Repeat("x", 40<<10) + `"` // two of them cross 64 KiB
	write(t, c, muxFrame(t, codec.MuxPrologue, id, `{"error":null}`), muxFrame(t, codec.MuxData, id, big), muxFrame(t, codec.MuxData, id, big))

	// 80 KiB read: the connection is acknowledged, cumulatively.
	f := readMuxFrame(t, r, c)
	if f.Kind != codec.MuxConnectionAck || f.AckedBytes() != uint64(2*len(big)) {
		t.Fatalf("got %v %d, want ConnectionAck %d", f.Kind, f.AckedBytes(), 2*len(big))
	}
	// Consumed: the stream gets its credit back, in one update once 64 KiB were consumed.
	for range 2 {
		if it, err := st.Recv(ctxFor(t)); err != nil || string(it) != big {
			t.Fatalf("Recv: %.20q, %v", it, err)
		}
	}
	f = readMuxFrame(t, r, c)
	if f.Kind != codec.MuxWindowUpdate || f.Stream != id || f.Credits() != uint32(2*len(big)) {
		t.Fatalf("got %v %v %d, want WindowUpdate %d", f.Kind, f.Stream, f.Credits(), 2*len(big))
	}
	st.Stop()
	if f = readMuxFrame(t, r, c); f.Kind != codec.MuxStop || f.Stream != id || len(f.Payload) != 0 {
		t.Fatalf("got %+v, want Stop", f)
	}
	write(t, c, muxFrame(t, codec.MuxEnd, id, ""))
	if _, err := st.Recv(ctxFor(t)); err != io.EOF {
		t.Fatalf("after End: %v", err)
	}
}

// TestMuxRequesterRejects covers the connection and stream refusals of the requester.
func TestMuxRequesterRejects(t *testing.T) {
	srv, rec := newTestServer(t, ServerOptions{})

	// A handshake naming another frontend server: logged, closed, no ack.
	c := rawConn(t, srv.Addr())
	other := codec.UUID(uuid.New())
	write(t, c, hdr(t, string(codec.AppendMuxHandshake(nil, codec.MuxHandshake{FrontendServerID: other, ConnectionID: other}))))
	if b := readAll(t, c); len(b) != 0 {
		t.Fatalf("got %x", b)
	}
	rec.waitError(t, func(s string) bool { return s == TextMuxUnknownServer+other.String() })

	// A bad mux handshake.
	c = rawConn(t, srv.Addr())
	write(t, c, hdr(t, `{"kind":"response_mux","version":9}`))
	readAll(t, c)
	rec.waitError(t, func(s string) bool { return strings.HasPrefix(s, TextBadHandshake) })

	// Per stream: an unknown stream's prologue is answered with a Reset; bad frames reset the
	// stream and fail it; the connection goes on.
	c = rawConn(t, srv.Addr())
	muxHandshake(t, c, srv.FrontendServerID())
	r := codec.NewMuxReader(c, codec.MuxFromRequester, 0, nil)
	unknown := codec.UUID(uuid.New())
	write(t, c, muxFrame(t, codec.MuxPrologue, unknown, `{"error":null}`))
	if f := readMuxFrame(t, r, c); f.Kind != codec.MuxReset || f.Stream != unknown || string(f.Payload) != SubjectNotFoundText(unknown.String()) {
		t.Fatalf("got %v %q, want Reset", f.Kind, f.Payload)
	}
	for _, tc := range []struct {
		name   string
		frames func(id codec.UUID) [][]byte
		text   string
	}{
		{"data before prologue", func(id codec.UUID) [][]byte { return [][]byte{muxFrame(t, codec.MuxData, id, `1`)} }, TextMalformedPrologue},
		{"empty data", func(id codec.UUID) [][]byte {
			return [][]byte{muxFrame(t, codec.MuxPrologue, id, `{"error":null}`), muxFrame(t, codec.MuxData, id, ``)}
		}, TextEmptyResponse},
		{"bad json", func(id codec.UUID) [][]byte {
			return [][]byte{muxFrame(t, codec.MuxPrologue, id, `{"error":null}`), muxFrame(t, codec.MuxData, id, `{`)}
		}, "invalid JSON in a response mux Data frame"},
		{"second prologue", func(id codec.UUID) [][]byte {
			return [][]byte{muxFrame(t, codec.MuxPrologue, id, `{"error":null}`), muxFrame(t, codec.MuxPrologue, id, `{"error":null}`)}
		}, TextMuxDuplicate},
		{"window exceeded", func(id codec.UUID) [][]byte {
			big := `"` + strings.Repeat("y", MuxStreamWindow) + `"`
			return [][]byte{muxFrame(t, codec.MuxPrologue, id, `{"error":null}`), muxFrame(t, codec.MuxData, id, big), muxFrame(t, codec.MuxData, id, `2`)}
		}, TextMuxWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := srv.RegisterMux("req")
			defer st.Close()
			info, _ := st.MuxInfo()
			write(t, c, tc.frames(info.StreamID)...)
			var f codec.MuxFrame
			for f.Kind != codec.MuxReset {
				f = readMuxFrame(t, r, c) // ConnectionAcks may come first
			}
			if f.Stream != info.StreamID || string(f.Payload) != tc.text {
				t.Fatalf("Reset %v %q, want %q", f.Stream, f.Payload, tc.text)
			}
			var err error
			for err == nil {
				_, err = st.Recv(ctxFor(t))
			}
			if !errors.Is(err, ErrProtocol) || err.Error() != tc.text {
				t.Fatalf("stream ended with %v", err)
			}
		})
	}

	// A stream its consumer closes between two frames (the reader remembers the stream of the
	// previous frame): the Kill goes out, a repeated Prologue is reset as for an unknown stream,
	// later Data is dropped, and the connection serves the next stream.
	closed := srv.RegisterMux("req")
	cinfo, _ := closed.MuxInfo()
	write(t, c, muxFrame(t, codec.MuxPrologue, cinfo.StreamID, `{"error":null}`), muxFrame(t, codec.MuxData, cinfo.StreamID, `1`))
	if it, err := closed.Recv(ctxFor(t)); err != nil || string(it) != "1" {
		t.Fatalf("Recv = %q, %v", it, err)
	}
	closed.Close()
	if f := readMuxFrame(t, r, c); f.Kind != codec.MuxKill || f.Stream != cinfo.StreamID {
		t.Fatalf("got %v %v, want Kill", f.Kind, f.Stream)
	}
	write(t, c, muxFrame(t, codec.MuxPrologue, cinfo.StreamID, `{"error":null}`), muxFrame(t, codec.MuxData, cinfo.StreamID, `2`))
	if f := readMuxFrame(t, r, c); f.Kind != codec.MuxReset || f.Stream != cinfo.StreamID || string(f.Payload) != SubjectNotFoundText(cinfo.StreamID.String()) {
		t.Fatalf("got %v %q, want Reset", f.Kind, f.Payload)
	}
	next := srv.RegisterMux("req")
	ninfo, _ := next.MuxInfo()
	write(t, c, muxFrame(t, codec.MuxPrologue, ninfo.StreamID, `{"error":null}`), muxFrame(t, codec.MuxData, ninfo.StreamID, `3`), muxFrame(t, codec.MuxEnd, ninfo.StreamID, ""))
	if it, err := next.Recv(ctxFor(t)); err != nil || string(it) != "3" {
		t.Fatalf("Recv on the next stream = %q, %v", it, err)
	}
	if _, err := next.Recv(ctxFor(t)); err != io.EOF {
		t.Fatalf("the next stream ended with %v", err)
	}

	// A frame the codec refuses ends the connection: its streams fail as protocol errors.
	st := srv.RegisterMux("req")
	defer st.Close()
	info, _ := st.MuxInfo()
	write(t, c, muxFrame(t, codec.MuxPrologue, info.StreamID, `{"error":null}`), muxFrame(t, codec.MuxStop, info.StreamID, ""))
	if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "mux Stop frame sent by the worker") {
		t.Fatalf("Recv = %v", err)
	}
	readAll(t, c)
}

// TestMuxStreamEnds covers how streams end, from either side, over a real MuxDialer.
func TestMuxStreamEnds(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{PoolSize: 1})

	t.Run("complete", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		for i := range 3 {
			if err := s.Send(item(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		items, err := collect(t, st)
		if err != io.EOF || !slices.Equal(items, []string{string(item(0)), string(item(1)), string(item(2))}) {
			t.Fatalf("%q, %v", items, err)
		}
		if !errors.Is(context.Cause(s.Context()), ErrClosed) {
			t.Fatalf("cause after Finish: %v", context.Cause(s.Context()))
		}
	})
	t.Run("error prologue", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		text := "Generate Error: nope"
		if err := s.Prologue(&text); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(item(0)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after an error prologue: %v", err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		if items, err := collect(t, st); len(items) != 0 || !errors.Is(err, ErrGenerate) || err.Error() != text {
			t.Fatalf("%q, %v", items, err)
		}
	})
	t.Run("stop", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		if err := s.Send(item(0)); err != nil {
			t.Fatal(err)
		}
		if it, err := st.Recv(ctxFor(t)); err != nil || string(it) != string(item(0)) {
			t.Fatalf("%q, %v", it, err)
		}
		st.Stop()
		waitDone(t, s.Context().Done(), "the stop")
		if !s.Stopped() || s.Killed() || !errors.Is(context.Cause(s.Context()), ErrStopped) {
			t.Fatalf("stopped %v killed %v cause %v", s.Stopped(), s.Killed(), context.Cause(s.Context()))
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(ctxFor(t)); err != io.EOF {
			t.Fatalf("after stop: %v", err)
		}
	})
	t.Run("stop before prologue", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		st.Stop()
		if err := s.Send(item(0)); err != nil {
			t.Fatal(err)
		}
		waitDone(t, s.Context().Done(), "the stop")
		if !s.Stopped() {
			t.Fatal("not stopped")
		}
		s.Close() // a stopped stream closed without Finish still ends cleanly
		if items, err := collect(t, st); err != io.EOF || len(items) != 1 {
			t.Fatalf("%q, %v", items, err)
		}
	})
	t.Run("kill", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		if err := s.Send(item(0)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		st.Close()
		waitDone(t, s.Context().Done(), "the kill")
		if !s.Killed() || !errors.Is(context.Cause(s.Context()), ErrKilled) {
			t.Fatalf("killed %v cause %v", s.Killed(), context.Cause(s.Context()))
		}
		if err := s.Send(item(1)); !errors.Is(err, ErrKilled) {
			t.Fatalf("Send after kill: %v", err)
		}
		if err := s.Finish(); err != nil {
			t.Fatalf("Finish after kill: %v", err)
		}
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	})
	t.Run("worker closes", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		if err := s.Send(item(0)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		items, err := collect(t, st)
		if len(items) != 1 || !errors.Is(err, ErrIncomplete) || err.Error() != TextIncomplete {
			t.Fatalf("%q, %v", items, err)
		}
	})
	t.Run("worker closes before prologue", func(t *testing.T) {
		st, s := openMux(t, srv, d)
		s.Close()
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrIncomplete) || err.Error() != TextNoPrologue {
			t.Fatalf("%v", err)
		}
	})
	t.Run("requester resets", func(t *testing.T) {
		// A reset from the requester (here: the stream was never registered) aborts the sender.
		info, _ := srv.RegisterMux("gone").MuxInfo()
		info.StreamID = codec.UUID(uuid.New())
		s, err := d.Open(ctxFor(t), info)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Prologue(nil); err != nil {
			t.Fatal(err)
		}
		waitDone(t, s.Context().Done(), "the reset")
		if err := s.Send(item(0)); !errors.Is(err, ErrProtocol) || !strings.HasPrefix(err.Error(), TextMuxReset) {
			t.Fatalf("Send after reset: %v", err)
		}
	})
	t.Run("prologue timeout", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{PrologueTimeout: time.Millisecond})
		st := srv.RegisterMux("slow")
		defer st.Close()
		st.Acked()
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		_, s := openMux(t, srv, d)
		if err := s.Send(nil); !errors.Is(err, ErrWrite) {
			t.Fatalf("empty item: %v", err)
		}
		if err := s.Prologue(nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Prologue(nil); !errors.Is(err, ErrWrite) || err.Error() != TextPrologueSent {
			t.Fatalf("second prologue: %v", err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(item(0)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after Finish: %v", err)
		}
	})
}

// TestMuxInterleaved: many streams on one connection, their frames interleaved, each stream
// receives exactly its own items in order.
func TestMuxInterleaved(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{PoolSize: 1})
	const streams, items = 50, 40
	sts := make([]*Stream, streams)
	ss := make([]*MuxSender, streams)
	for i := range streams {
		sts[i], ss[i] = openMux(t, srv, d)
	}
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() {
			for j := range items {
				if err := s.Send([]byte(fmt.Sprintf(`[%d,%d]`, i, j))); err != nil {
					t.Error(err)
					return
				}
			}
			if err := s.Finish(); err != nil {
				t.Error(err)
			}
		})
	}
	for i, st := range sts {
		got, err := collect(t, st)
		if err != io.EOF || len(got) != items {
			t.Fatalf("stream %d: %d items, %v", i, len(got), err)
		}
		for j, it := range got {
			if it != fmt.Sprintf(`[%d,%d]`, i, j) {
				t.Fatalf("stream %d item %d = %s", i, j, it)
			}
		}
	}
	wg.Wait()
	srv.mu.Lock()
	conns := len(srv.muxConns)
	srv.mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d mux connections, want 1", conns)
	}
}

// TestMuxSlowConsumer: a consumer that does not read stops only its own stream: its worker
// blocks once the stream's credit is spent, while another stream on the same connection runs
// to completion. Reading again releases the slow stream.
func TestMuxSlowConsumer(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{PoolSize: 1})
	slow, slowS := openMux(t, srv, d)
	fast, fastS := openMux(t, srv, d)

	const size, total = 16 << 10, 64 // 1 MiB per stream: four times the stream window
	payload := func(i int) []byte { return []byte(`["` + strconv.Itoa(i) + `","` + strings.Repeat("z", size) + `"]`) }
	slowSent := make(chan int, total)
	slowDone := make(chan error, 1)
	go func() {
		for i := range total {
			if err := slowS.Send(payload(i)); err != nil {
				slowDone <- err
				return
			}
			slowSent <- i
		}
		slowDone <- slowS.Finish()
	}()
	// The slow worker blocks: it sent about one window, then nothing more.
	sent := 0
	for deadline := time.Now().Add(waitFor); sent*size < MuxStreamWindow; {
		select {
		case <-slowSent:
			sent++
		case <-time.After(time.Until(deadline)):
			t.Fatalf("the slow worker sent only %d items", sent)
		}
	}
	// The fast stream completes on the same connection meanwhile.
	fastDone := make(chan error, 1)
	go func() {
		for i := range total {
			if err := fastS.Send(payload(i)); err != nil {
				fastDone <- err
				return
			}
		}
		fastDone <- fastS.Finish()
	}()
	got, err := collect(t, fast)
	if err != io.EOF || len(got) != total {
		t.Fatalf("fast stream: %d items, %v", len(got), err)
	}
	if err := <-fastDone; err != nil {
		t.Fatal(err)
	}
	// The slow worker is still blocked within its window plus one item.
	for len(slowSent) > 0 {
		<-slowSent
		sent++
	}
	if sent*(size+8) > MuxStreamWindow+2*size || sent == total {
		t.Fatalf("the slow worker sent %d items while nobody read", sent)
	}
	got, err = collect(t, slow)
	if err != io.EOF || len(got) != total || got[total-1] != string(payload(total-1)) {
		t.Fatalf("slow stream: %d items, %v", len(got), err)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

// TestMuxWorkerDies: a worker that dies mid-stream fails every stream on its connection with
// the spec's text; streams on other connections are unaffected.
func TestMuxWorkerDies(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	c := rawConn(t, srv.Addr())
	muxHandshake(t, c, srv.FrontendServerID())
	var sts []*Stream
	for range 3 {
		st := srv.RegisterMux("req")
		defer st.Close()
		info, _ := st.MuxInfo()
		write(t, c, muxFrame(t, codec.MuxPrologue, info.StreamID, `{"error":null}`), muxFrame(t, codec.MuxData, info.StreamID, `1`))
		sts = append(sts, st)
	}
	d := newTestDialer(t, MuxDialOptions{})
	other, otherS := openMux(t, srv, d)
	for _, st := range sts {
		if it, err := st.Recv(ctxFor(t)); err != nil || string(it) != "1" {
			t.Fatalf("%q, %v", it, err)
		}
	}
	c.Close() // the worker process dies
	for i, st := range sts {
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrIncomplete) || err.Error() != TextIncomplete {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if err := otherS.Send(item(0)); err != nil {
		t.Fatal(err)
	}
	otherS.Finish()
	if items, err := collect(t, other); err != io.EOF || len(items) != 1 {
		t.Fatalf("other connection: %q, %v", items, err)
	}
}

// TestMuxRequesterGone: the requester's server closes; the worker's streams lose their
// connection (ErrDisconnected) and writes fail (publish_response).
func TestMuxRequesterGone(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{})
	st, s := openMux(t, srv, d)
	if err := s.Send(item(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Server.Close: %v", err)
	}
	waitDone(t, s.Context().Done(), "the disconnect")
	if c := CodeOf(context.Cause(s.Context())); c != CodeKilled && c != CodeDisconnected {
		t.Fatalf("cause %v", context.Cause(s.Context()))
	}
	// The kill or the lost connection stops every write.
	deadline := time.Now().Add(waitFor)
	for s.Send(item(1)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Send keeps succeeding")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := d.Open(ctxFor(t), codec.MuxCallHomeInfo{Address: "127.0.0.1:1", FrontendServerID: codec.UUID(uuid.New()), StreamID: codec.UUID(uuid.New())}); !errors.Is(err, ErrConnect) {
		t.Fatalf("Open to nobody: %v", err)
	}
}

// TestMuxIdleClose: both ends close a connection that carries no stream for the idle timeout;
// the dialer then dials a new one.
func TestMuxIdleClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		srvIdle  time.Duration
		dialIdle time.Duration
	}{
		{"requester closes", 50 * time.Millisecond, time.Hour},
		{"worker closes", time.Hour, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newTestServer(t, ServerOptions{MuxIdleTimeout: tc.srvIdle})
			d := newTestDialer(t, MuxDialOptions{IdleTimeout: tc.dialIdle})
			st, s := openMux(t, srv, d)
			s.Finish()
			if _, err := collect(t, st); err != io.EOF {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitFor)
			for {
				srv.mu.Lock()
				n := len(srv.muxConns)
				srv.mu.Unlock()
				d.mu.Lock()
				m := 0
				for _, p := range d.pools {
					m += len(p.conns)
				}
				d.mu.Unlock()
				if n == 0 && m == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d requester and %d worker connections still open", n, m)
				}
				time.Sleep(10 * time.Millisecond)
			}
			st, s = openMux(t, srv, d)
			s.Send(item(0))
			s.Finish()
			if items, err := collect(t, st); err != io.EOF || len(items) != 1 {
				t.Fatalf("after the idle close: %q, %v", items, err)
			}
		})
	}
}

// TestMuxBusyOutlivesIdleTimeout: a connection whose stream stays open across several idle
// timeouts is not closed (its reader's deadline passes and is set again), and the stream ends
// normally on it.
func TestMuxBusyOutlivesIdleTimeout(t *testing.T) {
	const idle = 20 * time.Millisecond
	srv, _ := newTestServer(t, ServerOptions{MuxIdleTimeout: idle})
	d := newTestDialer(t, MuxDialOptions{IdleTimeout: idle})
	st, s := openMux(t, srv, d)
	if err := s.Send(item(0)); err != nil {
		t.Fatal(err)
	}
	if it, err := st.Recv(ctxFor(t)); err != nil || string(it) != string(item(0)) {
		t.Fatalf("Recv = %q, %v", it, err)
	}
	time.Sleep(10 * idle) // several deadlines pass while the stream is open
	if err := s.Send(item(1)); err != nil {
		t.Fatalf("Send after the idle timeouts: %v", err)
	}
	if err := s.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if items, err := collect(t, st); err != io.EOF || len(items) != 1 || string(items[0]) != string(item(1)) {
		t.Fatalf("after the idle timeouts: %q, %v", items, err)
	}
}

// TestMuxConcurrentStreams: 1000 concurrent streams over one dialer's pool.
func TestMuxConcurrentStreams(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{})
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st := srv.RegisterMux(strconv.Itoa(i))
			defer st.Close()
			info, _ := st.MuxInfo()
			s, err := d.Open(ctx, info)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			st.Acked()
			go func() {
				for j := range 3 {
					if s.Send(item(i*10+j)) != nil {
						return
					}
				}
				s.Finish()
			}()
			var got []string
			for {
				it, err := st.Recv(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				got = append(got, string(it))
			}
			if want := []string{string(item(i * 10)), string(item(i*10 + 1)), string(item(i*10 + 2))}; !slices.Equal(got, want) {
				errs <- fmt.Errorf("stream %d: %q", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.pools {
		if len(p.conns) > DefaultMuxPoolSize {
			t.Fatalf("%d connections, pool size %d", len(p.conns), DefaultMuxPoolSize)
		}
	}
}

// TestMuxBurstOneConnection: a burst of streams to a new requester, fewer than muxBusyStreams,
// shares the one connection the first of them dials instead of opening the whole pool.
func TestMuxBurstOneConnection(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	d := newTestDialer(t, MuxDialOptions{})
	const n = 64
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		st := srv.RegisterMux("burst-" + strconv.Itoa(i))
		t.Cleanup(func() { st.Close() })
		info, _ := st.MuxInfo()
		wg.Go(func() {
			<-start
			s, err := d.Open(ctxFor(t), info)
			if err == nil {
				t.Cleanup(func() { s.Close() })
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.pools {
		if len(p.conns) != 1 {
			t.Fatalf("%d connections for %d streams opened at once, want 1", len(p.conns), n)
		}
	}
}

// TestMuxHandshakeAckRejected: a dialer refuses a requester whose ack is wrong.
func TestMuxHandshakeAckRejected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		codec.NewReader(c, 0).Next()
		bad := codec.AppendMuxHandshakeAck(nil)
		binary.BigEndian.PutUint64(bad[16:], 0) // checksum 0: accepted unverified
		bad[codec.PrefixLen] = 7                // kind Reset instead of ConnectionAck
		c.Write(bad)
	}()
	d := newTestDialer(t, MuxDialOptions{})
	_, err = d.Open(ctxFor(t), codec.MuxCallHomeInfo{Address: ln.Addr().String(), FrontendServerID: codec.UUID(uuid.New()), StreamID: codec.UUID(uuid.New())})
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "unexpected handshake ack") {
		t.Fatalf("Open = %v", err)
	}
	<-done
	d.Close()
	if _, err := d.Open(ctxFor(t), codec.MuxCallHomeInfo{Address: ln.Addr().String(), FrontendServerID: codec.UUID(uuid.New()), StreamID: codec.UUID(uuid.New())}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close = %v", err)
	}
}
