package codec

import (
	"encoding/binary"
	"io"
	"sync"
)

const (
	// minBufSize is the read-ahead buffer a stream decoder starts with: large enough that one
	// read usually brings in several control and item frames.
	minBufSize = 16 << 10
	// maxRetainSize bounds what a decoder or writer keeps between messages; a buffer grown for
	// one large message is dropped once that message has been consumed.
	maxRetainSize = 1 << 20
	// maxEmptyReads mirrors bufio: a reader returning (0, nil) this often is broken.
	maxEmptyReads = 100
)

// inbuf is the read-ahead buffer behind Reader and TCPRequestReader. Decoded messages alias it
// and stay valid until the owner's next call.
type inbuf struct {
	r          io.Reader
	buf        []byte // len(buf) == cap(buf)
	start, end int    // unread bytes are buf[start:end]
	pending    error  // a read error that arrived with enough data; reported by the next fill
}

func (b *inbuf) buffered() []byte { return b.buf[b.start:b.end] }

func (b *inbuf) consume(n int) {
	b.start += n
	if b.start == b.end {
		b.start, b.end = 0, 0
	}
}

// release drops a buffer that grew for one large message once little is left in it, so an idle
// connection does not pin tens of megabytes.
func (b *inbuf) release() {
	if len(b.buf) <= maxRetainSize || b.end-b.start > minBufSize {
		return
	}
	nb := make([]byte, minBufSize)
	b.end = copy(nb, b.buf[b.start:b.end])
	b.start = 0
	b.buf = nb
}

// fill reads until at least need bytes are buffered (need has already been checked against the
// limit). The buffer grows by doubling, never straight to need, so a peer that declares a large
// message but does not send it costs at most twice what it did send. It returns the reader's
// error (io.EOF included) if that comes first.
func (b *inbuf) fill(need int) error {
	empty := 0
	for b.end-b.start < need {
		if err := b.pending; err != nil {
			b.pending = nil
			return err
		}
		if b.end == len(b.buf) {
			b.makeRoom(need)
		}
		n, err := b.r.Read(b.buf[b.end:])
		if n < 0 || n > len(b.buf)-b.end {
			return io.ErrShortBuffer // a broken io.Reader; do not trust its count
		}
		b.end += n
		if b.end-b.start >= need {
			b.pending = err
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// makeRoom makes space after b.end, compacting or growing the buffer.
func (b *inbuf) makeRoom(need int) {
	have := b.end - b.start
	if need <= len(b.buf) && b.start > 0 {
		copy(b.buf, b.buf[b.start:b.end])
		b.start, b.end = 0, have
		return
	}
	size := max(minBufSize, min(2*len(b.buf), need))
	nb := make([]byte, size)
	copy(nb, b.buf[b.start:b.end])
	b.buf, b.start, b.end = nb, 0, have
}

// Reader decodes a stream of TwoPart frames, such as a call-home connection.
//
// It reads ahead into its own buffer, so one Reader must own the io.Reader for as long as frames
// are read from it. Frames returned by Next alias that buffer and are valid until the next call
// to Next. A Reader is not safe for concurrent use.
type Reader struct {
	in  inbuf
	max int
	err error // sticky decode error: after one the stream cannot be resynchronised
}

// NewReader returns a Reader that enforces max on each frame's total length
// (max <= 0: no limit beyond what an int can address). It does no I/O.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{in: inbuf{r: r}, max: max}
}

// Next returns the next frame. At a clean frame boundary the end of the stream is io.EOF; an
// end inside a frame is a *Error (CodeIO) wrapping io.ErrUnexpectedEOF. A frame over the limit
// is rejected as soon as its prefix is in, before anything more is read or allocated. Size and
// checksum errors are permanent; read errors (e.g. a deadline) are returned as a *Error (CodeIO)
// wrapping the cause, and Next may be called again.
func (r *Reader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	r.in.release()
	for {
		b := r.in.buffered()
		f, n, err := SplitFrame(b, r.max)
		if err != nil {
			r.err = err
			return Frame{}, err
		}
		if n > 0 {
			r.in.consume(n)
			return f, nil
		}
		need := PrefixLen
		if len(b) >= PrefixLen {
			// SplitFrame accepted the sizes, so this sum neither overflows nor exceeds the limit.
			need = PrefixLen + int(binary.BigEndian.Uint64(b[0:8])) + int(binary.BigEndian.Uint64(b[8:16]))
		}
		if err := r.in.fill(need); err != nil {
			if err == io.EOF {
				if r.in.end == r.in.start {
					return Frame{}, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, ioError(err)
		}
	}
}

// Writer encodes TwoPart frames onto a stream with one Write call per frame, so a frame is never
// split across writes by this side. It is safe for concurrent use: frames from different
// goroutines never interleave. After a failed Write the stream is unusable and every later
// WriteFrame returns the same error.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	max int
	buf []byte
	err error
}

// NewWriter returns a Writer that refuses frames over max (max <= 0: no limit). It does no I/O.
func NewWriter(w io.Writer, max int) *Writer {
	return &Writer{w: w, max: max}
}

// WriteFrame writes one frame. A frame over the limit is refused (*Error, CodeMessageTooLarge)
// without writing anything; a write failure is a *Error (CodeIO) wrapping the cause.
func (w *Writer) WriteFrame(header, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	buf, err := AppendFrame(w.buf[:0], header, data, w.max)
	if err != nil {
		return err
	}
	if cap(buf) <= maxRetainSize {
		w.buf = buf // otherwise keep the smaller buffer we had
	}
	if _, err := w.w.Write(buf); err != nil {
		w.err = ioError(err)
		return w.err
	}
	return nil
}
