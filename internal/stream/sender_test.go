package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// dialRaw connects a Sender to a raw requester and consumes the handshake.
func dialRaw(t *testing.T, opts DialOptions) (*Sender, net.Conn) {
	t.Helper()
	addr, accept := rawRequester(t)
	s, err := Dial(ctxFor(t), codec.CallHomeInfo{Address: addr, Subject: "sub-1", Context: "id-1", StreamType: "response"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := accept()
	c.SetReadDeadline(time.Now().Add(waitFor))
	hs := handshakeFrame(t, "sub-1")
	if got := readN(t, c, len(hs)); !bytes.Equal(got, hs) {
		t.Fatalf("handshake %q", got)
	}
	return s, c
}

func waitCause(t *testing.T, s *Sender, code Code) {
	t.Helper()
	waitDone(t, s.Context().Done(), "the sender's context")
	if got := CodeOf(context.Cause(s.Context())); got != code {
		t.Fatalf("cause = %v, want %v", context.Cause(s.Context()), code)
	}
}

// TestSenderStop: "stop" cancels the context gracefully; the worker may still send, Finish
// omits the final marker but still sends the sentinel.
func TestSenderStop(t *testing.T) {
	s, c := dialRaw(t, testDialOptions())
	if err := s.Send([]byte(`1`)); err != nil {
		t.Fatal(err)
	}
	write(t, c, hdr(t, `"stop"`))
	waitCause(t, s, CodeStopped)
	if !s.Stopped() || s.Killed() {
		t.Fatalf("Stopped=%v Killed=%v", s.Stopped(), s.Killed())
	}
	if err := s.Send([]byte(`2`)); err != nil {
		t.Fatalf("Send after stop: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Finish() }()
	c.(interface{ CloseWrite() error }).CloseWrite()
	got := readFrames(t, readAll(t, c))
	var texts []string
	for _, f := range got {
		texts = append(texts, f.Kind().String()+":"+string(f.Header)+string(f.Data))
	}
	want := []string{
		codec.HeaderOnly.String() + `:{"error":null}`,
		codec.DataOnly.String() + `:{"data":1,"complete_final":false}`,
		codec.DataOnly.String() + `:{"data":2,"complete_final":false}`,
		codec.HeaderOnly.String() + `:"sentinel"`,
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames\n%s\nwant\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Finish = %v", err)
	}
}

// TestSenderKill: "kill" cancels at once, unblocks a Send stuck on a full socket, and nothing
// more is written.
func TestSenderKill(t *testing.T) {
	s, c := dialRaw(t, testDialOptions())
	if err := s.Prologue(nil); err != nil {
		t.Fatal(err)
	}
	// Fill the socket: the requester does not read.
	big := []byte(`"` + strings.Repeat("x", 256<<10) + `"`)
	sendErr := make(chan error, 1)
	go func() {
		for {
			if err := s.Send(big); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	write(t, c, hdr(t, `"kill"`))
	waitCause(t, s, CodeKilled)
	select {
	case err := <-sendErr:
		if !errors.Is(err, ErrKilled) || err.Error() != TextKilled {
			t.Fatalf("blocked Send returned %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Send stayed blocked after kill")
	}
	if !s.Killed() || s.Stopped() {
		t.Fatalf("Killed=%v Stopped=%v", s.Killed(), s.Stopped())
	}
	if err := s.Send([]byte(`1`)); !errors.Is(err, ErrKilled) {
		t.Fatalf("Send after kill = %v", err)
	}
	if err := s.Finish(); err != nil {
		t.Fatalf("Finish after kill = %v", err)
	}
	// What the requester reads ends without the final marker or the sentinel (possibly
	// inside an item cut by the abort).
	rest := readAll(t, c)
	if bytes.Contains(rest, []byte(`{"complete_final":true}`)) || bytes.Contains(rest, []byte(`"sentinel"`)) {
		t.Fatal("wrote the end after kill")
	}
}

// TestSenderRequesterGone: the requester closing cancels the context; writes then fail as
// publish_response.
func TestSenderRequesterGone(t *testing.T) {
	s, c := dialRaw(t, testDialOptions())
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitCause(t, s, CodeDisconnected)
	var err error
	deadline := time.Now().Add(waitFor)
	for err == nil && time.Now().Before(deadline) {
		err = s.Send([]byte(`1`))
	}
	if !errors.Is(err, ErrWrite) || ErrorType(err) != "publish_response" {
		t.Fatalf("Send to a closed requester = %v", err)
	}
	if err2 := s.Send([]byte(`1`)); err2 != err {
		t.Fatalf("write error not sticky: %v", err2)
	}
	if err := s.Finish(); err != nil {
		t.Fatalf("Finish after a failed write = %v (nothing to write)", err)
	}
}

// TestSenderProtocol: the requester may only send stop and kill.
func TestSenderProtocol(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(t *testing.T) []byte
	}{
		{"sentinel", func(t *testing.T) []byte { return hdr(t, `"sentinel"`) }},
		{"data", func(t *testing.T) []byte { return dat(t, `{"complete_final":true}`) }},
		{"not a control", func(t *testing.T) []byte { return hdr(t, `{"error":null}`) }},
		{"bad checksum", func(t *testing.T) []byte { return badChecksum(t, `"stop"`, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := dialRaw(t, testDialOptions())
			write(t, c, tc.frame(t))
			waitCause(t, s, CodeProtocol)
			if err := s.Send([]byte(`1`)); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Send = %v", err)
			}
		})
	}
}

// TestSenderUsage covers misuse and Finish's bounded wait.
func TestSenderUsage(t *testing.T) {
	t.Run("prologue twice", func(t *testing.T) {
		s, _ := dialRaw(t, testDialOptions())
		if err := s.Prologue(nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Prologue(nil); err == nil || err.Error() != TextPrologueSent {
			t.Fatalf("second Prologue = %v", err)
		}
		if err := s.Send(nil); err == nil || err.Error() != TextEmptyItem {
			t.Fatalf("empty Send = %v", err)
		}
	})
	t.Run("send after error prologue", func(t *testing.T) {
		s, _ := dialRaw(t, testDialOptions())
		text := "Generate Error: no"
		if err := s.Prologue(&text); err != nil {
			t.Fatal(err)
		}
		if err := s.Send([]byte(`1`)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send = %v", err)
		}
	})
	t.Run("oversize item", func(t *testing.T) {
		s, c := dialRaw(t, DialOptions{MaxMessageSize: 100, Logger: testDialOptions().Logger})
		err := s.Send([]byte(`"` + strings.Repeat("x", 100) + `"`))
		if !errors.Is(err, ErrWrite) || !errors.Is(err, codec.ErrMessageTooLarge) {
			t.Fatalf("Send = %v", err)
		}
		// Nothing was written for it: the stream goes on.
		if err := s.Send([]byte(`1`)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Finish() }()
		fs := readFrames(t, readToSentinel(t, c))
		if len(fs) != 4 || string(fs[1].Data) != `{"data":1,"complete_final":false}` {
			t.Fatalf("frames %q", fs)
		}
		c.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("finish waits boundedly", func(t *testing.T) {
		s, c := dialRaw(t, DialOptions{FinishTimeout: 50 * time.Millisecond, Logger: testDialOptions().Logger})
		if err := s.Finish(); err != nil { // the requester never closes
			t.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		if err := s.Send([]byte(`1`)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after Finish = %v", err)
		}
		waitCause(t, s, CodeClosed)
		fs := readFrames(t, readAll(t, c))
		if len(fs) != 3 || string(fs[1].Data) != `{"complete_final":true}` {
			t.Fatalf("frames %q", fs)
		}
	})
	t.Run("close aborts", func(t *testing.T) {
		s, c := dialRaw(t, testDialOptions())
		if err := s.Send([]byte(`1`)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close()
		waitCause(t, s, CodeClosed)
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		fs := readFrames(t, readAll(t, c))
		if len(fs) != 2 {
			t.Fatalf("frames after Close %q", fs)
		}
	})
	t.Run("context keeps values, not cancellation", func(t *testing.T) {
		type key struct{}
		addr, accept := rawRequester(t)
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		s, err := Dial(ctx, codec.CallHomeInfo{Address: addr, Subject: "s", Context: "i", StreamType: "response"}, testDialOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		accept()
		cancel()
		if s.Context().Value(key{}) != "v" || s.Context().Err() != nil {
			t.Fatalf("context: value %v, err %v", s.Context().Value(key{}), s.Context().Err())
		}
	})
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		addr string
	}{
		{"refused", context.Background(), closed},
		{"bad address", context.Background(), "not-an-address"},
		{"cancelled", cancelled, closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(tc.ctx, codec.CallHomeInfo{Address: tc.addr, Subject: "s", Context: "i"}, testDialOptions())
			if !errors.Is(err, ErrConnect) || ErrorType(err) != "response_stream" {
				t.Fatalf("Dial = %v", err)
			}
		})
	}
}

// TestEndToEnd runs a Sender against a Stream on a real Server.
func TestEndToEnd(t *testing.T) {
	t.Run("stop mid-stream", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{Buffer: 2})
		st := srv.Register("req-1")
		defer st.Close()
		s, err := Dial(ctxFor(t), st.Info(), testDialOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st.Acked()
		worker := make(chan error, 1)
		go func() {
			for i := 0; s.Context().Err() == nil; i++ {
				if err := s.Send([]byte(`{"data":{"index":` + strconv.Itoa(i) + `}}`)); err != nil {
					worker <- err
					return
				}
			}
			worker <- s.Finish()
		}()
		for i := range 3 {
			item, err := st.Recv(ctxFor(t))
			if err != nil || string(item) != `{"data":{"index":`+strconv.Itoa(i)+`}}` {
				t.Fatalf("item %d = %q, %v", i, item, err)
			}
		}
		st.Stop()
		items, err := collect(t, st)
		if err != io.EOF {
			t.Fatalf("end after stop = %v (after %d items)", err, len(items))
		}
		if err := <-worker; err != nil {
			t.Fatalf("worker: %v", err)
		}
		if !s.Stopped() || s.Killed() || CodeOf(context.Cause(s.Context())) != CodeStopped {
			t.Fatalf("worker state: stopped %v killed %v cause %v", s.Stopped(), s.Killed(), context.Cause(s.Context()))
		}
	})
	t.Run("kill mid-stream", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		s, err := Dial(ctxFor(t), st.Info(), testDialOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Send([]byte(`1`)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		st.Close()
		waitCause(t, s, CodeKilled)
		if !s.Killed() {
			t.Fatal("not killed")
		}
	})
	t.Run("worker aborts mid-stream", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		defer st.Close()
		s, err := Dial(ctxFor(t), st.Info(), testDialOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send([]byte(`1`)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		items, err := collect(t, st)
		if len(items) != 1 || !errors.Is(err, ErrIncomplete) || err.Error() != TextIncomplete {
			t.Fatalf("collect = %q, %v", items, err)
		}
	})
	t.Run("error prologue", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		defer st.Close()
		s, err := Dial(ctxFor(t), st.Info(), testDialOptions())
		if err != nil {
			t.Fatal(err)
		}
		text := v9Text
		if err := s.Prologue(&text); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		_, err = st.Recv(ctxFor(t))
		if !errors.Is(err, ErrGenerate) || err.Error() != v9Text || ErrorType(err) != "generate" {
			t.Fatalf("Recv = %v", err)
		}
	})
}
