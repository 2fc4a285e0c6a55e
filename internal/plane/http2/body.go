package http2

import (
	"encoding/binary"
	"errors"
	"io"
	"net/http"

	"github.com/reqplane/reqplane/internal/codec"
)

const (
	// growSlack bounds what a peer can make the server allocate beyond the bytes it has sent:
	// the body buffer grows to at most twice what arrived plus growSlack, never straight to a
	// size that Content-Length or the frame prefix merely declares.
	growSlack = 16 << 10
	// firstUnknown is the first buffer for a body without Content-Length; the frame prefix
	// in its first bytes then tells how much more to expect.
	firstUnknown = 1 << 10
)

// readBody reads a request body of at most max bytes into a buffer of its own, which the
// caller may hand over (a Request owns its Body). cl is the Content-Length, -1 when unknown,
// already checked against max; net/http ends the body there.
//
// Failures are *codec.Error values carrying the text the server answers: too large (from the
// frame prefix as soon as it is in, or once more than max bytes arrived) or I/O.
func readBody(r io.Reader, cl int64, max int) ([]byte, error) {
	expect := -1 // total bytes expected: Content-Length, else the frame's declared length
	if cl >= 0 {
		expect = int(cl)
	}
	first := min(firstUnknown, max)
	if expect >= 0 {
		first = min(expect, growSlack)
	}
	buf := make([]byte, 0, first)
	prefixSeen := false
	for {
		if len(buf) == cap(buf) {
			if cl >= 0 && len(buf) == expect {
				return buf, nil
			}
			if n := nextCap(len(buf), expect, max); n > len(buf) {
				// Exactly n, not append's rounding: the Request keeps this buffer.
				grown := make([]byte, len(buf), n)
				copy(grown, buf)
				buf = grown
			} else {
				// All the bytes expected (or max) are in: one small read tells the end of the
				// body from more of it, without growing the buffer for nothing.
				var probe [1]byte
				k, err := r.Read(probe[:])
				if k > 0 {
					if len(buf) >= max {
						return nil, tooLarge(uint64(max)+1, max)
					}
					buf = append(buf, probe[0])
					expect = -1 // past the declared end: trailing bytes, counted up to max
				}
				if err != nil {
					return finish(buf, cl, max, err)
				}
				continue
			}
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if !prefixSeen && len(buf) >= codec.PrefixLen {
			prefixSeen = true
			// Only the size matters here; every other verdict is plane.Decode's, on the whole body.
			if _, _, perr := codec.SplitFrame(buf[:codec.PrefixLen], max); errors.Is(perr, codec.ErrMessageTooLarge) {
				return nil, perr
			}
			if expect < 0 {
				// SplitFrame checked the sum against max, so it fits an int.
				expect = codec.PrefixLen + int(binary.BigEndian.Uint64(buf[0:8])) + int(binary.BigEndian.Uint64(buf[8:16]))
			}
		}
		if err != nil {
			return finish(buf, cl, max, err)
		}
	}
}

// nextCap returns the capacity to grow a full buffer of have bytes to, or have when no more
// bytes are expected and the caller should probe for the end of the body.
func nextCap(have, expect, max int) int {
	if expect >= 0 && have >= expect {
		return have
	}
	n := 2*have + growSlack
	if expect > have && expect < n {
		n = expect
	}
	return min(n, max)
}

// finish turns the read error that ended the body into readBody's result.
func finish(buf []byte, cl int64, max int, err error) ([]byte, error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		// The peer sent more than max bytes; the true size is unknown, max+1 is a lower bound.
		return nil, tooLarge(uint64(max)+1, max)
	case err == io.EOF && cl >= 0 && int64(len(buf)) < cl:
		return nil, &codec.Error{Code: codec.CodeIO, Detail: io.ErrUnexpectedEOF.Error(), Err: io.ErrUnexpectedEOF}
	case err == io.EOF:
		return buf, nil
	default:
		return nil, &codec.Error{Code: codec.CodeIO, Detail: err.Error(), Err: err}
	}
}

// tooLarge is the codec's size error, whose text the server answers with 413.
func tooLarge(size uint64, max int) *codec.Error {
	return &codec.Error{Code: codec.CodeMessageTooLarge, Size: size, Max: uint64(max)}
}
