package codec

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/zeebo/xxh3"
)

// PrefixLen is the size of a TwoPart frame's fixed prefix: header length, body length and
// checksum, each a big-endian u64.
const PrefixLen = 24

// DefaultMaxMessageSize is the default limit on a frame's total length, prefix included
// (DYN_TCP_MAX_MESSAGE_SIZE).
const DefaultMaxMessageSize = 32 << 20

// Kind classifies a frame by which of its parts are non-empty.
type Kind uint8

// The frame kinds. All four are legal on the wire; protocols give each a meaning.
const (
	Empty Kind = iota
	HeaderOnly
	DataOnly
	HeaderAndData
)

// String returns Dynamo's name for the kind.
func (k Kind) String() string {
	switch k {
	case Empty:
		return "Empty"
	case HeaderOnly:
		return "HeaderOnly"
	case DataOnly:
		return "DataOnly"
	case HeaderAndData:
		return "HeaderAndData"
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Frame is one decoded TwoPart message. Decoders return slices that alias their input.
type Frame struct {
	Header, Data []byte
}

// Kind reports which parts of f are present (non-empty).
func (f Frame) Kind() Kind {
	switch {
	case len(f.Header) == 0 && len(f.Data) == 0:
		return Empty
	case len(f.Data) == 0:
		return HeaderOnly
	case len(f.Header) == 0:
		return DataOnly
	default:
		return HeaderAndData
	}
}

// RequireHeaderAndData returns nil when f carries both parts, as a request must, and otherwise
// the error a worker answers with.
func RequireHeaderAndData(f Frame) error {
	if f.Kind() != HeaderAndData {
		return invalidMessage(DetailNotRequest)
	}
	return nil
}

// Checksum returns XXH3-64 (seed 0) of header||data without concatenating them.
func Checksum(header, data []byte) uint64 {
	switch {
	case len(data) == 0:
		return xxh3.Hash(header)
	case len(header) == 0:
		return xxh3.Hash(data)
	}
	// A zero Hasher is a valid seed-0 hasher and stays on the stack (its assembly kernels are
	// noescape), so streaming the two parts costs no allocation and no copy of the body.
	var h xxh3.Hasher
	_, _ = h.Write(header)
	_, _ = h.Write(data)
	return h.Sum64()
}

// frameTotal returns PrefixLen+headerLen+bodyLen, saturated at 2^64-1, or a too-large error
// when it exceeds max (max <= 0: only what an int can address).
func frameTotal(headerLen, bodyLen uint64, max int) (uint64, error) {
	total := uint64(math.MaxUint64)
	if s := headerLen + bodyLen; s >= headerLen && s <= math.MaxUint64-PrefixLen {
		total = s + PrefixLen
	}
	limit := uint64(math.MaxInt)
	if max > 0 {
		limit = uint64(max)
	}
	if total > limit {
		return total, tooLarge(total, limit)
	}
	return total, nil
}

// AppendFrame appends one TwoPart frame (prefix with the real checksum, header, data) to dst.
// max > 0 bounds the frame's total length; max <= 0 means no limit. Over the limit nothing is
// appended and the error is a *Error with CodeMessageTooLarge.
func AppendFrame(dst, header, data []byte, max int) ([]byte, error) {
	total, err := frameTotal(uint64(len(header)), uint64(len(data)), max)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, int(total))
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(header)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(data)))
	dst = binary.BigEndian.AppendUint64(dst, Checksum(header, data))
	dst = append(dst, header...)
	return append(dst, data...), nil
}

// SplitFrame decodes the frame at the start of b, the streaming form used on sockets.
// It returns the frame and the number of bytes it occupies; n == 0 with a nil error means b
// does not yet hold a whole frame ("need more"). The size limit is checked as soon as the
// prefix is present, so an oversized declaration fails without waiting for its bytes.
// A zero checksum is accepted unverified (Dynamo release builds write 0); any other value must
// match. The frame's slices alias b.
func SplitFrame(b []byte, max int) (f Frame, n int, err error) {
	if len(b) < PrefixLen {
		return Frame{}, 0, nil
	}
	hlen := binary.BigEndian.Uint64(b[0:8])
	blen := binary.BigEndian.Uint64(b[8:16])
	sum := binary.BigEndian.Uint64(b[16:24])
	total, err := frameTotal(hlen, blen, max)
	if err != nil {
		return Frame{}, 0, err
	}
	if uint64(len(b)) < total {
		return Frame{}, 0, nil
	}
	// total fits in len(b), so the conversions below cannot overflow.
	he := PrefixLen + int(hlen)
	t := int(total)
	f = Frame{Header: b[PrefixLen:he:he], Data: b[he:t:t]}
	if sum != 0 && sum != Checksum(f.Header, f.Data) {
		return Frame{}, 0, &Error{Code: CodeChecksumMismatch}
	}
	return f, t, nil
}

// DecodeFrame decodes exactly one frame that must fill b completely, as in an HTTP body, a NATS
// payload or a TCP-plane payload. Less than one frame is "Invalid message: No message decoded";
// bytes after it are "Invalid message: {n} trailing bytes". The frame's slices alias b.
func DecodeFrame(b []byte, max int) (Frame, error) {
	f, n, err := SplitFrame(b, max)
	if err != nil {
		return Frame{}, err
	}
	if n == 0 {
		return Frame{}, invalidMessage(DetailNoMessage)
	}
	if n != len(b) {
		return Frame{}, invalidMessage(strconv.Itoa(len(b)-n) + " trailing bytes")
	}
	return f, nil
}
