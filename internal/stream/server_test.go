package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// badChecksum returns a valid frame whose checksum is wrong (and not 0).
func badChecksum(t testing.TB, header, data string) []byte {
	f := mustFrame(t, header, data)
	f[23] ^= 0xff
	return f
}

// TestHandshakeRejected: every failure of a connection's first frame is logged with the spec's
// text and the connection is closed.
func TestHandshakeRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		send   func(t *testing.T) []byte
		eof    bool // half-close after sending
		want   string
		prefix bool
	}{
		{"closed without handshake", func(*testing.T) []byte { return nil }, true, TextNoHandshake, false},
		{"data first", func(t *testing.T) []byte { return dat(t, `{"subject":"x","stream_type":"response"}`) }, false,
			TextExpectedControl, false},
		{"empty frame first", func(t *testing.T) []byte { return mustFrame(t, "", "") }, false, TextExpectedControl, false},
		{"not a handshake", func(t *testing.T) []byte { return hdr(t, `{"subject":1}`) }, false, TextBadHandshake, true},
		{"control message first", func(t *testing.T) []byte { return hdr(t, `"sentinel"`) }, false, TextBadHandshake, true},
		{"unknown subject", func(t *testing.T) []byte { return handshakeFrame(t, "nope") }, false,
			"Subject not found: nope; upstream publisher specified a subject unknown to the downsteam subscriber", false},
		{"request stream", func(t *testing.T) []byte { return hdr(t, `{"subject":"s1","stream_type":"request"}`) }, false,
			"Subject not found: s1; downstream subscriber specified a subject unknown to the upstream publisher", false},
		{"checksum mismatch", func(t *testing.T) []byte { return badChecksum(t, `{"subject":"x","stream_type":"response"}`, "") }, false,
			"Two Part Codec Error: Checksum mismatch", false},
		{"oversize", func(t *testing.T) []byte {
			return hdr(t, `{"subject":"`+strings.Repeat("x", 200)+`","stream_type":"response"}`)
		}, false,
			"Two Part Codec Error: Message size 263 exceeds the maximum allowed size of 128 bytes", false},
		{"truncated", func(t *testing.T) []byte { return handshakeFrame(t, "x")[:30] }, true,
			"Two Part Codec Error: I/O error: unexpected EOF", false},
		{"no handshake in time", func(*testing.T) []byte { return nil }, false, TextHandshakeTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := newTestServer(t, ServerOptions{MaxMessageSize: 128, HandshakeTimeout: 300 * time.Millisecond})
			c := rawConn(t, srv.Addr())
			if b := tc.send(t); len(b) > 0 {
				write(t, c, b)
			}
			if tc.eof {
				c.(interface{ CloseWrite() error }).CloseWrite()
			}
			got := rec.waitError(t, func(s string) bool {
				if tc.prefix {
					return strings.HasPrefix(s, tc.want) && len(s) > len(tc.want)
				}
				return s == tc.want
			})
			t.Logf("logged %q", got)
			if rest := readAll(t, c); len(rest) != 0 {
				t.Fatalf("server sent %q", rest)
			}
		})
	}
}

// TestStreamEnds drives a registered stream with crafted worker frames and checks the items,
// the end (io.EOF or the spec's error) and whether the requester killed the worker.
func TestStreamEnds(t *testing.T) {
	const (
		ok    = `{"error":null}`
		final = `{"complete_final":true}`
		itemA = `{"data":"A","complete_final":false}`
		itemB = `{"data":{"k":[1,2]},"complete_final":false}`
	)
	for _, tc := range []struct {
		name   string
		frames func(t *testing.T) [][]byte
		eof    bool // the worker half-closes after its frames
		items  []string
		code   Code // CodeUnknown: a clean io.EOF
		text   string
		prefix bool
		kill   bool
	}{
		{name: "complete", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA), dat(t, itemB), dat(t, final), hdr(t, `"sentinel"`)}
		}, items: []string{`"A"`, `{"k":[1,2]}`}},
		{name: "final then EOF", eof: true, frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA), dat(t, final)}
		}, items: []string{`"A"`}},
		{name: "data with final", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, `{"data":1,"complete_final":true}`), hdr(t, `"sentinel"`)}
		}, items: []string{`1`}},
		{name: "empty frame skipped", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), mustFrame(t, "", ""), dat(t, itemA), dat(t, final), hdr(t, `"sentinel"`)}
		}, items: []string{`"A"`}},
		{name: "pretty item, unknown fields", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, `{"error":null,"typed_error":null}`),
				dat(t, "{\n \"x\": 1,\n \"data\": \"A\",\n \"complete_final\": false\n}"), dat(t, final), hdr(t, `"sentinel"`)}
		}, items: []string{`"A"`}},
		{name: "no items", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, final), hdr(t, `"sentinel"`)}
		}},
		{name: "error prologue", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, `{"error":"Generate Error: boom"}`), hdr(t, `"sentinel"`)}
		}, code: CodeGenerate, text: "Generate Error: boom"},
		{name: "EOF before prologue", eof: true, frames: func(*testing.T) [][]byte { return nil },
			code: CodeIncomplete, text: TextNoPrologue},
		{name: "data-only prologue", frames: func(t *testing.T) [][]byte { return [][]byte{dat(t, ok)} },
			code: CodeProtocol, text: TextMalformedPrologue, kill: true},
		{name: "bad prologue", frames: func(t *testing.T) [][]byte { return [][]byte{hdr(t, `{"error":1}`)} },
			code: CodeProtocol, text: TextBadControl, prefix: true, kill: true},
		{name: "empty response", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, `{"complete_final":false}`)}
		}, code: CodeProtocol, text: TextEmptyResponse, kill: true},
		{name: "null data", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA), dat(t, `{"data":null,"complete_final":false}`)}
		}, items: []string{`"A"`}, code: CodeProtocol, text: TextEmptyResponse, kill: true},
		{name: "item after final", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, final), dat(t, itemA)}
		}, code: CodeProtocol, text: TextAfterFinal, kill: true},
		{name: "final after final", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, final), dat(t, final)}
		}, code: CodeProtocol, text: TextAfterFinal, kill: true},
		{name: "stop from worker", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA), hdr(t, `"stop"`)}
		}, items: []string{`"A"`}, code: CodeProtocol, text: TextUnexpectedControl, kill: true},
		{name: "kill from worker", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), hdr(t, `"kill"`)}
		}, code: CodeProtocol, text: TextUnexpectedControl, kill: true},
		{name: "bad control", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), hdr(t, `"pause"`)}
		}, code: CodeProtocol, text: TextBadControl, prefix: true, kill: true},
		{name: "header and data", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), mustFrame(t, `"sentinel"`, itemA)}
		}, code: CodeProtocol, text: TextHeaderAndData, kill: true},
		{name: "bad item", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, `{"data":`)}
		}, code: CodeProtocol, kill: true},
		{name: "checksum mismatch", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), badChecksum(t, "", itemA)}
		}, code: CodeProtocol, text: "Two Part Codec Error: Checksum mismatch", kill: true},
		{name: "oversize item", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, `{"data":"`+strings.Repeat("x", 4096)+`","complete_final":false}`)}
		}, code: CodeProtocol, text: "Two Part Codec Error: Message size 4154 exceeds the maximum allowed size of 4096 bytes", kill: true},
		{name: "EOF mid-stream", eof: true, frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA)}
		}, items: []string{`"A"`}, code: CodeIncomplete, text: TextIncomplete},
		{name: "EOF inside a frame", eof: true, frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA)[:30]}
		}, code: CodeIncomplete, text: TextIncomplete},
		{name: "sentinel without final", frames: func(t *testing.T) [][]byte {
			return [][]byte{hdr(t, ok), dat(t, itemA), hdr(t, `"sentinel"`)}
		}, items: []string{`"A"`}, code: CodeIncomplete, text: TextIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newTestServer(t, ServerOptions{MaxMessageSize: 4096})
			st := srv.Register("req-1")
			defer st.Close()
			c := rawConn(t, srv.Addr())
			write(t, c, append([][]byte{handshakeFrame(t, st.Info().Subject)}, tc.frames(t)...)...)
			if tc.eof {
				c.(interface{ CloseWrite() error }).CloseWrite()
			}
			st.Acked()
			items, err := collect(t, st)
			if strings.Join(items, "|") != strings.Join(tc.items, "|") {
				t.Errorf("items %q, want %q", items, tc.items)
			}
			if tc.code == CodeUnknown {
				if err != io.EOF {
					t.Fatalf("end = %v, want io.EOF", err)
				}
			} else {
				var se *Error
				if !errors.As(err, &se) || se.Code != tc.code {
					t.Fatalf("end = %#v, want code %v", err, tc.code)
				}
				if tc.prefix && !strings.HasPrefix(se.Error(), tc.text) || !tc.prefix && tc.text != "" && se.Error() != tc.text {
					t.Fatalf("error %q, want %q", se.Error(), tc.text)
				}
			}
			if !errors.Is(st.Err(), errOrEOF(tc.code)) {
				t.Fatalf("Err() = %v", st.Err())
			}
			got := readAll(t, c) // the requester closes the connection in every case
			want := []byte(nil)
			if tc.kill {
				want = hdr(t, `"kill"`)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the worker received %q, want %q", got, want)
			}
		})
	}
}

func errOrEOF(c Code) error {
	if c == CodeUnknown {
		return io.EOF
	}
	return &Error{Code: c}
}

// TestCallHomeBeforeAck: the worker may call home and stream before the plane reports the
// ack; the stream delivers, and a late Acked arms no timer.
func TestCallHomeBeforeAck(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{PrologueTimeout: time.Nanosecond})
	st := srv.Register("req-1")
	defer st.Close()
	c := rawConn(t, srv.Addr())
	write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":false}`))
	item, err := st.Recv(ctxFor(t)) // the prologue has been processed once an item arrives
	if err != nil || string(item) != "1" {
		t.Fatalf("Recv = %q, %v", item, err)
	}
	st.Acked()
	write(t, c, dat(t, `{"complete_final":true}`), hdr(t, `"sentinel"`))
	if _, err := st.Recv(ctxFor(t)); err != io.EOF {
		t.Fatalf("end = %v", err)
	}
}

// TestPrologueTimeout: without a prologue within the timeout after the ack the stream fails
// and its subject is forgotten, whether or not the worker connected.
func TestPrologueTimeout(t *testing.T) {
	t.Run("no call-home", func(t *testing.T) {
		srv, rec := newTestServer(t, ServerOptions{PrologueTimeout: 50 * time.Millisecond})
		st := srv.Register("req-1")
		defer st.Close()
		st.Acked()
		_, err := st.Recv(ctxFor(t))
		if !errors.Is(err, ErrTimeout) || err.Error() != TextPrologueTimeout {
			t.Fatalf("Recv = %v", err)
		}
		// A late call-home is rejected.
		c := rawConn(t, srv.Addr())
		write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`))
		rec.waitError(t, func(s string) bool { return s == SubjectNotFoundText(st.Info().Subject) })
		readAll(t, c)
	})
	t.Run("connected, no prologue", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{PrologueTimeout: 50 * time.Millisecond})
		st := srv.Register("req-1")
		defer st.Close()
		c := rawConn(t, srv.Addr())
		write(t, c, handshakeFrame(t, st.Info().Subject))
		st.Acked()
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Recv = %v", err)
		}
		if got := readAll(t, c); !bytes.Equal(got, hdr(t, `"kill"`)) {
			t.Fatalf("worker received %q, want kill", got)
		}
	})
	t.Run("many streams, one watch", func(t *testing.T) {
		// One timer serves every acknowledged stream: those without a prologue fail in turn,
		// one whose prologue came lives on, and the watch rearms after it ran empty.
		srv, _ := newTestServer(t, ServerOptions{PrologueTimeout: 50 * time.Millisecond})
		a, b, c := srv.Register("a"), srv.Register("b"), srv.Register("c")
		for _, st := range []*Stream{a, b, c} {
			defer st.Close()
			st.Acked()
		}
		conn := rawConn(t, srv.Addr())
		write(t, conn, handshakeFrame(t, b.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":false}`))
		if item, err := b.Recv(ctxFor(t)); err != nil || string(item) != "1" {
			t.Fatalf("b: Recv = %q, %v", item, err)
		}
		for name, st := range map[string]*Stream{"a": a, "c": c} {
			if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrTimeout) {
				t.Fatalf("%s: Recv = %v, want the prologue timeout", name, err)
			}
		}
		late := srv.Register("late") // acknowledged once the watch ran empty
		defer late.Close()
		late.Acked()
		if _, err := late.Recv(ctxFor(t)); !errors.Is(err, ErrTimeout) {
			t.Fatalf("late: Recv = %v, want the prologue timeout", err)
		}
		write(t, conn, dat(t, `{"complete_final":true}`), hdr(t, `"sentinel"`))
		if _, err := b.Recv(ctxFor(t)); err != io.EOF {
			t.Fatalf("b: end = %v", err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{PrologueTimeout: -1})
		st := srv.Register("req-1")
		st.Acked()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := st.Recv(ctx); err != context.DeadlineExceeded {
			t.Fatalf("Recv = %v, want the caller's deadline", err)
		}
		if st.Err() != nil {
			t.Fatalf("stream failed: %v", st.Err())
		}
		st.Close()
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close = %v", err)
		}
	})
}

// TestRecvContext: a cancelled Recv leaves the stream intact.
func TestRecvContext(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	st := srv.Register("req-1")
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Recv(ctx); err != context.Canceled {
		t.Fatalf("Recv = %v", err)
	}
	c := rawConn(t, srv.Addr())
	write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":true}`), hdr(t, `"sentinel"`))
	if items, err := collect(t, st); err != io.EOF || len(items) != 1 {
		t.Fatalf("collect = %q, %v", items, err)
	}
}

// TestDuplicateCallHome: a subject admits one connection; a second is rejected like Dynamo's,
// whose subject is consumed by the first.
func TestDuplicateCallHome(t *testing.T) {
	srv, rec := newTestServer(t, ServerOptions{})
	st := srv.Register("req-1")
	defer st.Close()
	c1 := rawConn(t, srv.Addr())
	write(t, c1, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":false}`))
	if _, err := st.Recv(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	c2 := rawConn(t, srv.Addr())
	write(t, c2, handshakeFrame(t, st.Info().Subject))
	rec.waitError(t, func(s string) bool { return s == SubjectNotFoundText(st.Info().Subject) })
	readAll(t, c2)
	write(t, c1, dat(t, `{"complete_final":true}`), hdr(t, `"sentinel"`))
	if _, err := st.Recv(ctxFor(t)); err != io.EOF {
		t.Fatalf("end = %v", err)
	}
}

// TestStreamClose: Close before the call-home forgets the subject; Close mid-stream kills the
// worker; both are idempotent.
func TestStreamClose(t *testing.T) {
	t.Run("before call-home", func(t *testing.T) {
		srv, rec := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		st.Abandon()
		st.Close()
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) || err.Error() != TextStreamClosed {
			t.Fatalf("Recv = %v", err)
		}
		c := rawConn(t, srv.Addr())
		write(t, c, handshakeFrame(t, st.Info().Subject))
		rec.waitError(t, func(s string) bool { return s == SubjectNotFoundText(st.Info().Subject) })
	})
	t.Run("mid-stream", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		c := rawConn(t, srv.Addr())
		write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":false}`))
		st.Acked()
		if _, err := st.Recv(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st.Close()
		if got := readAll(t, c); !bytes.Equal(got, hdr(t, `"kill"`)) {
			t.Fatalf("worker received %q, want kill", got)
		}
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close = %v", err)
		}
	})
	t.Run("after the end", func(t *testing.T) {
		srv, _ := newTestServer(t, ServerOptions{})
		st := srv.Register("req-1")
		c := rawConn(t, srv.Addr())
		write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"complete_final":true}`), hdr(t, `"sentinel"`))
		if _, err := st.Recv(ctxFor(t)); err != io.EOF {
			t.Fatal(err)
		}
		st.Close()
		if got := readAll(t, c); len(got) != 0 {
			t.Fatalf("worker received %q after a complete stream", got)
		}
	})
}

// TestStopBeforePrologue: a stop requested before the prologue is sent once it arrives, and
// the worker's EOF without a final marker is then a clean end.
func TestStopBeforePrologue(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	st := srv.Register("req-1")
	defer st.Close()
	st.Stop()
	st.Stop()
	c := rawConn(t, srv.Addr())
	write(t, c, handshakeFrame(t, st.Info().Subject), hdr(t, `{"error":null}`))
	c.SetReadDeadline(time.Now().Add(waitFor))
	if got := readN(t, c, len(hdr(t, `"stop"`))); !bytes.Equal(got, hdr(t, `"stop"`)) {
		t.Fatalf("worker received %q, want stop", got)
	}
	write(t, c, dat(t, `{"data":1,"complete_final":false}`), hdr(t, `"sentinel"`))
	items, err := collect(t, st)
	if err != io.EOF || len(items) != 1 {
		t.Fatalf("collect = %q, %v", items, err)
	}
	if got := readAll(t, c); len(got) != 0 {
		t.Fatalf("worker received %q after the stop", got)
	}
}

// TestServerLifecycle covers Start's checks, Addr, Register outside the running state and
// Close failing open streams.
func TestServerLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ServerOptions
		want string
	}{
		{"host not an IP", ServerOptions{Host: "localhost"}, "IP literal"},
		{"advertise not an IP", ServerOptions{Host: "127.0.0.1", AdvertiseHost: "example.com"}, "IP literal"},
		{"unspecified without advertise", ServerOptions{Host: "0.0.0.0"}, "AdvertiseHost"},
		{"unspecified advertise", ServerOptions{Host: "127.0.0.1", AdvertiseHost: "::"}, "AdvertiseHost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(tc.opts)
			defer s.Close()
			if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}

	s := NewServer(ServerOptions{Host: "127.0.0.1", AdvertiseHost: "127.0.0.1", Logger: testDialOptions().Logger})
	if s.Addr() != "" {
		t.Fatal("Addr before Start")
	}
	early := s.Register("early")
	if _, err := early.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) || err.Error() != TextServerNotStarted {
		t.Fatalf("Register before Start: %v", err)
	}
	early.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr = %q", s.Addr())
	}

	waiting := s.Register("waiting")
	streaming := s.Register("streaming")
	c := rawConn(t, s.Addr())
	write(t, c, handshakeFrame(t, streaming.Info().Subject), hdr(t, `{"error":null}`), dat(t, `{"data":1,"complete_final":false}`))
	if _, err := streaming.Recv(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	idle := rawConn(t, s.Addr()) // connected, no handshake yet

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Stream{waiting, streaming} {
		if _, err := st.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) || err.Error() != TextServerClosed {
			t.Fatalf("Recv after server Close = %v", err)
		}
		st.Close()
	}
	if got := readAll(t, c); !bytes.Equal(got, hdr(t, `"kill"`)) {
		t.Fatalf("worker received %q, want kill", got)
	}
	readAll(t, idle)
	late := s.Register("late")
	if _, err := late.Recv(ctxFor(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
}

func TestErrors(t *testing.T) {
	e := &Error{Code: CodeIncomplete, Text: TextIncomplete, Err: io.ErrUnexpectedEOF}
	if e.Error() != TextIncomplete || !errors.Is(e, ErrIncomplete) || errors.Is(e, ErrProtocol) ||
		!errors.Is(e, io.ErrUnexpectedEOF) || CodeOf(e) != CodeIncomplete {
		t.Fatalf("Error semantics broken: %v", e)
	}
	if CodeOf(io.EOF) != CodeUnknown {
		t.Fatal("CodeOf(foreign)")
	}
	if got := (&Error{Code: CodeWrite, Err: io.ErrClosedPipe}).Error(); got != "response stream write: io: read/write on closed pipe" {
		t.Fatalf("text %q", got)
	}
	if got := Code(200).String(); got != "code(200)" {
		t.Fatalf("Code(200) = %q", got)
	}
	for _, tc := range []struct {
		code Code
		want string
	}{
		{CodeConnect, "response_stream"}, {CodeWrite, "publish_response"}, {CodeFinal, "publish_final"},
		{CodeGenerate, "generate"}, {CodeKilled, ""}, {CodeStopped, ""}, {CodeIncomplete, ""},
	} {
		if got := ErrorType(&Error{Code: tc.code}); got != tc.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tc.code, got, tc.want)
		}
	}
	if got := codec.ControlKill.String(); got != "kill" {
		t.Fatal(got)
	}
}
