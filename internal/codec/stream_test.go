package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// testFrames returns a varied sequence of frames and their concatenated encoding.
func testFrames(t testing.TB) ([]Frame, []byte) {
	t.Helper()
	frames := []Frame{
		{Header: []byte(`{"subject":"s","stream_type":"response"}`)},
		{Header: []byte(`{"error":null}`)},
		{},
		{Data: []byte(`{"data":{"text":"a"},"complete_final":false}`)},
		{Header: []byte("h"), Data: bytes.Repeat([]byte("0123456789"), 5000)}, // larger than the initial buffer
		{Data: []byte(`{"complete_final":true}`)},
		{Header: []byte(`"sentinel"`)},
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, mustFrame(t, f.Header, f.Data)...)
	}
	return frames, stream
}

func TestReaderSequences(t *testing.T) {
	frames, stream := testFrames(t)
	tests := []struct {
		name string
		r    func() io.Reader
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(stream) }},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
		{"EOF with last data", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.r(), DefaultMaxMessageSize)
			for i, want := range frames {
				got, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("frame %d differs: %q / %d bytes", i, got.Header, len(got.Data))
				}
			}
			for range 2 {
				if _, err := r.Next(); err != io.EOF {
					t.Fatalf("after last frame: %v, want io.EOF", err)
				}
			}
		})
	}
}

// failAfter serves data, then fails the test if it is read again.
type failAfter struct {
	t    *testing.T
	data []byte
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		f.t.Errorf("read past the declared prefix")
		return 0, io.EOF
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReaderRejectsHugeDeclarationWithoutAllocating(t *testing.T) {
	p := binary.BigEndian.AppendUint64(nil, 1<<63)
	p = binary.BigEndian.AppendUint64(p, 0)
	p = binary.BigEndian.AppendUint64(p, 0)
	for _, max := range []int{0, DefaultMaxMessageSize} {
		r := NewReader(&failAfter{t: t, data: bytes.Clone(p)}, max)
		_, err := r.Next()
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("max %d: err = %v", max, err)
		}
		if cap(r.in.buf) > minBufSize {
			t.Errorf("max %d: buffer grew to %d", max, cap(r.in.buf))
		}
		// Permanent: the stream cannot be resynchronised.
		if _, err2 := r.Next(); err2 != err {
			t.Errorf("second Next = %v, want the same error", err2)
		}
	}
	// The rejection itself allocates only the error value.
	if n := testing.AllocsPerRun(100, func() { _, _, _ = SplitFrame(p, DefaultMaxMessageSize) }); n > 1 {
		t.Errorf("rejecting allocates %v times", n)
	}
}

func TestReaderDoesNotTrustDeclaredSize(t *testing.T) {
	// A frame that declares 30 MiB (within the limit) but sends 100 KiB and ends: the buffer grows
	// with what arrives, not with what was announced.
	p := binary.BigEndian.AppendUint64(nil, 30<<20)
	p = binary.BigEndian.AppendUint64(p, 0)
	p = binary.BigEndian.AppendUint64(p, 0)
	p = append(p, make([]byte, 100<<10)...)
	r := NewReader(bytes.NewReader(p), DefaultMaxMessageSize)
	_, err := r.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if c := cap(r.in.buf); c > 512<<10 {
		t.Errorf("buffer grew to %d for 100 KiB received", c)
	}
}

func TestReaderReleasesLargeBuffer(t *testing.T) {
	big := mustFrame(t, nil, make([]byte, 3<<20))
	small := mustFrame(t, []byte(`"stop"`), nil)
	r := NewReader(bytes.NewReader(append(append(big, small...), small...)), DefaultMaxMessageSize)
	if f, err := r.Next(); err != nil || len(f.Data) != 3<<20 {
		t.Fatalf("big frame: %v", err)
	}
	if cap(r.in.buf) < 3<<20 {
		t.Fatalf("buffer %d smaller than the frame", cap(r.in.buf))
	}
	for range 2 {
		if f, err := r.Next(); err != nil || string(f.Header) != `"stop"` {
			t.Fatalf("small frame: %q %v", f.Header, err)
		}
	}
	if c := cap(r.in.buf); c > maxRetainSize {
		t.Errorf("buffer still %d bytes after the large frame was consumed", c)
	}
}

// scriptedReader returns its steps in order, then io.EOF.
type scriptedReader struct {
	steps []readStep
}

type readStep struct {
	data []byte
	err  error
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	n := copy(p, st.data)
	st.data = st.data[n:]
	if len(st.data) == 0 {
		s.steps = s.steps[1:]
		return n, st.err
	}
	return n, nil
}

func TestReaderReadErrors(t *testing.T) {
	frame := mustFrame(t, []byte(`"stop"`), []byte("payload"))
	timeout := os.ErrDeadlineExceeded
	t.Run("transient error mid-frame is not sticky", func(t *testing.T) {
		r := NewReader(&scriptedReader{steps: []readStep{{frame[:10], timeout}, {frame[10:], nil}}}, 0)
		_, err := r.Next()
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != CodeIO || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		f, err := r.Next()
		if err != nil || string(f.Data) != "payload" {
			t.Fatalf("retry: %q %v", f.Data, err)
		}
	})
	t.Run("error at boundary", func(t *testing.T) {
		r := NewReader(&scriptedReader{steps: []readStep{{frame, timeout}}}, 0)
		if _, err := r.Next(); err != nil {
			t.Fatalf("frame delivered with the error: %v", err)
		}
		if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("then %v, want io.EOF", err)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		r := NewReader(iotest.ErrReader(nil), 0)
		if _, err := r.Next(); !errors.Is(err, io.ErrNoProgress) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("sticky decode error", func(t *testing.T) {
		bad := bytes.Clone(frame)
		bad[len(bad)-1]++
		r := NewReader(bytes.NewReader(append(bad, frame...)), 0)
		_, err1 := r.Next()
		_, err2 := r.Next()
		if !errors.Is(err1, ErrChecksumMismatch) || err2 != err1 {
			t.Fatalf("errs = %v, %v", err1, err2)
		}
	})
}

// countingWriter records each Write call.
type countingWriter struct {
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestWriter(t *testing.T) {
	t.Run("one write per frame", func(t *testing.T) {
		cw := &countingWriter{}
		w := NewWriter(cw, DefaultMaxMessageSize)
		frames, _ := testFrames(t)
		for _, f := range frames {
			if err := w.WriteFrame(f.Header, f.Data); err != nil {
				t.Fatal(err)
			}
		}
		if len(cw.writes) != len(frames) {
			t.Fatalf("%d writes for %d frames", len(cw.writes), len(frames))
		}
		for i, f := range frames {
			if !bytes.Equal(cw.writes[i], mustFrame(t, f.Header, f.Data)) {
				t.Errorf("write %d differs", i)
			}
		}
	})
	t.Run("too large writes nothing and is not sticky", func(t *testing.T) {
		cw := &countingWriter{}
		w := NewWriter(cw, 100)
		if err := w.WriteFrame(nil, make([]byte, 100)); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("err = %v", err)
		}
		if err := w.WriteFrame([]byte(`"stop"`), nil); err != nil || len(cw.writes) != 1 {
			t.Fatalf("after refusal: %v, %d writes", err, len(cw.writes))
		}
	})
	t.Run("write error is sticky", func(t *testing.T) {
		cw := &countingWriter{fail: errors.New("broken pipe")}
		w := NewWriter(cw, 0)
		err := w.WriteFrame([]byte(`"stop"`), nil)
		if !errors.Is(err, ErrIO) || err.Error() != "Two Part Codec Error: I/O error: broken pipe" {
			t.Fatalf("err = %v", err)
		}
		cw.fail = nil
		if err2 := w.WriteFrame([]byte(`"stop"`), nil); err2 != err {
			t.Fatalf("second write = %v", err2)
		}
	})
	t.Run("large buffer not retained", func(t *testing.T) {
		w := NewWriter(io.Discard, 0)
		if err := w.WriteFrame(nil, make([]byte, 2*maxRetainSize)); err != nil {
			t.Fatal(err)
		}
		if cap(w.buf) > maxRetainSize {
			t.Errorf("retained %d bytes", cap(w.buf))
		}
	})
	t.Run("concurrent frames do not interleave", func(t *testing.T) {
		var out bytes.Buffer
		var mu sync.Mutex
		w := NewWriter(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}), 0)
		const goroutines, perG = 8, 50
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					data := bytes.Repeat([]byte{byte('a' + g)}, 100+i*37)
					if err := w.WriteFrame([]byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)), data); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		r := NewReader(&out, 0)
		count := 0
		for {
			f, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("frame %d: %v", count, err)
			}
			var g, i int
			if _, err := fmt.Sscanf(string(f.Header), `{"g":%d,"i":%d}`, &g, &i); err != nil {
				t.Fatalf("header %q: %v", f.Header, err)
			}
			if !bytes.Equal(f.Data, bytes.Repeat([]byte{byte('a' + g)}, 100+i*37)) {
				t.Fatalf("frame g=%d i=%d corrupted", g, i)
			}
			count++
		}
		if count != goroutines*perG {
			t.Fatalf("decoded %d frames, want %d", count, goroutines*perG)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestLoopbackEcho runs frames through a real TCP connection on 127.0.0.1: a server echoes
// every frame back with Reader and Writer, the client checks what returns.
func TestLoopbackEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(20 * time.Second)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		r, w := NewReader(c, DefaultMaxMessageSize), NewWriter(c, DefaultMaxMessageSize)
		for {
			f, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if err := w.WriteFrame(f.Header, f.Data); err != nil {
				t.Error(err)
				return
			}
		}
	})

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	frames, _ := testFrames(t)
	var sent []Frame
	wg.Go(func() {
		w := NewWriter(c, DefaultMaxMessageSize)
		for range 30 {
			for _, f := range frames {
				if err := w.WriteFrame(f.Header, f.Data); err != nil {
					t.Error(err)
					return
				}
			}
		}
		_ = c.(*net.TCPConn).CloseWrite()
	})
	for range 30 {
		sent = append(sent, frames...)
	}
	r := NewReader(c, DefaultMaxMessageSize)
	for i, want := range sent {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("echo %d differs", i)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after echoes: %v", err)
	}
}
