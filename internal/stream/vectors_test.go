package stream

import (
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
)

// Spec §11 vectors, typed from the spec's hex so that these tests do not depend on the codec
// producing them.
const (
	v5Subject = "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"
	v6ID      = "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"
	v8Item0   = `{"data":{"text":"hello","index":0}}`
	v8Item1   = `{"data":{"text":"world","index":1}}`
	v9Text    = `Generate Error: request body must be a JSON object with a "text" field`
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func specV5(t testing.TB) []byte {
	return append(unhex(t, "00 00 00 00 00 00 00 4b  00 00 00 00 00 00 00 00  7b 05 55 5e c3 90 e7 66"),
		`{"subject":"`+v5Subject+`","stream_type":"response"}`...)
}

func specV4(t testing.TB) []byte {
	return unhex(t, "00 00 00 00 00 00 00 0e  00 00 00 00 00 00 00 00  f0 e6 14 89 b5 02 a5 2a  7b 22 65 72 72 6f 72 22 3a 6e 75 6c 6c 7d")
}

func specV8(t testing.TB) []byte {
	var b []byte
	b = append(b, unhex(t, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 43  bf 12 46 b1 71 b6 9d fb")...)
	b = append(b, `{"data":`+v8Item0+`,"complete_final":false}`...)
	b = append(b, unhex(t, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 43  ea a2 b9 01 4e 04 40 3f")...)
	b = append(b, `{"data":`+v8Item1+`,"complete_final":false}`...)
	b = append(b, unhex(t, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 17  e2 43 ab b5 e2 7e 64 ef")...)
	return append(b, `{"complete_final":true}`...)
}

func specV2(t testing.TB) []byte {
	return unhex(t, "00 00 00 00 00 00 00 0a  00 00 00 00 00 00 00 00  39 93 29 6f 71 e7 48 89  22 73 65 6e 74 69 6e 65 6c 22")
}

// specV9 is the error prologue frame: 84-byte header, checksum 0x4B703A6E085D8825.
func specV9(t testing.TB) []byte {
	h := `{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`
	if len(h) != 84 {
		t.Fatalf("V9 header is %d bytes", len(h))
	}
	return append(unhex(t, "00 00 00 00 00 00 00 54  00 00 00 00 00 00 00 00  4b 70 3a 6e 08 5d 88 25"), h...)
}

// TestRecvSpecV8: a worker writing V5, V4, the three V8 frames and V2 byte for byte yields the
// two items of V8 and a clean end.
func TestRecvSpecV8(t *testing.T) {
	srv, _ := newTestServer(t, ServerOptions{})
	st := srv.register(v6ID, v5Subject)
	defer st.Close()
	if got := st.Info(); got != (codec.CallHomeInfo{Address: srv.Addr(), Subject: v5Subject, Context: v6ID, StreamType: "response"}) {
		t.Fatalf("Info() = %+v", got)
	}

	c := rawConn(t, srv.Addr())
	write(t, c, specV5(t), specV4(t), specV8(t), specV2(t))
	st.Acked()
	items, err := collect(t, st)
	if err != io.EOF {
		t.Fatalf("end = %v, want io.EOF", err)
	}
	if want := []string{v8Item0, v8Item1}; strings.Join(items, "\n") != strings.Join(want, "\n") {
		t.Fatalf("items %q, want %q", items, want)
	}
	// After the sentinel the requester closes without sending anything.
	if rest := readAll(t, c); len(rest) != 0 {
		t.Fatalf("requester sent %q after the sentinel", rest)
	}
}

// rawRequester accepts one call-home connection on 127.0.0.1 and hands it to the test.
func rawRequester(t *testing.T) (addr string, accept func() net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() net.Conn {
		t.Helper()
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			c, err := ln.Accept()
			ch <- result{c, err}
		}()
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	}
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// TestSenderSpecBytes: driven with V8's items, the worker side writes V5, V4, V8 and V2 byte
// for byte, then waits for the requester to close.
func TestSenderSpecBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(s *Sender) error
		want func(t testing.TB) []byte
	}{
		{"items", func(s *Sender) error {
			if err := s.Prologue(nil); err != nil {
				return err
			}
			for _, it := range []string{v8Item0, v8Item1} {
				if err := s.Send([]byte(it)); err != nil {
					return err
				}
			}
			return s.Finish()
		}, func(t testing.TB) []byte {
			return bytes.Join([][]byte{specV5(t), specV4(t), specV8(t), specV2(t)}, nil)
		}},
		{"implicit prologue", func(s *Sender) error {
			for _, it := range []string{v8Item0, v8Item1} {
				if err := s.Send([]byte(it)); err != nil {
					return err
				}
			}
			return s.Finish()
		}, func(t testing.TB) []byte {
			return bytes.Join([][]byte{specV5(t), specV4(t), specV8(t), specV2(t)}, nil)
		}},
		{"error prologue V9", func(s *Sender) error {
			text := v9Text
			if err := s.Prologue(&text); err != nil {
				return err
			}
			return s.Finish()
		}, func(t testing.TB) []byte {
			return bytes.Join([][]byte{specV5(t), specV9(t), specV2(t)}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, accept := rawRequester(t)
			info := codec.CallHomeInfo{Address: addr, Subject: v5Subject, Context: v6ID, StreamType: "response"}
			s, err := Dial(ctxFor(t), info, testDialOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			c := accept()
			done := make(chan error, 1)
			go func() { done <- tc.run(s) }()

			want := tc.want(t)
			if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
				t.Fatalf("worker wrote\n%x\nwant\n%x", got, want)
			}
			// After the sentinel the requester closes first (here: half-closes, to see what
			// follows); the worker then closes too, without writing anything more.
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rest := readAll(t, c); len(rest) != 0 {
				t.Fatalf("extra bytes %q", rest)
			}
			c.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("worker: %v", err)
				}
			case <-ctxFor(t).Done():
				t.Fatal("Finish did not return after the requester closed")
			}
		})
	}
}
