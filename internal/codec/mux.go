package codec

import (
	"encoding/binary"
	"io"
	"math"
	"slices"
	"strconv"
)

// The response mux v1 frame (spec §13; docs/protocol.md §8):
//
//	u32 BE payload_len | u8 kind | u8 flags (0) | u16 BE reserved (0) | 16-byte stream UUID | payload
//
// Unlike a TwoPart frame it has no checksum: TCP already protects the bytes, and the header is
// fixed-size so a reader can reject a bad frame from its first 24 bytes.

// MuxHeaderLen is the size of a mux frame's fixed header.
const MuxHeaderLen = 24

// Fixed payload sizes of the control kinds.
const (
	muxWindowUpdateLen  = 4
	muxConnectionAckLen = 8
)

// MuxKind is a mux frame's kind byte.
type MuxKind uint8

// The mux frame kinds (spec §13).
const (
	MuxPrologue      MuxKind = 1 // worker → requester: the stream's prologue JSON
	MuxData          MuxKind = 2 // worker → requester: one item's data JSON
	MuxEnd           MuxKind = 3 // worker → requester: the stream ended normally
	MuxStop          MuxKind = 4 // requester → worker: finish gracefully; empty payload
	MuxKill          MuxKind = 5 // requester → worker: abort at once; empty payload
	MuxWindowUpdate  MuxKind = 6 // requester → worker: u32 BE stream credits
	MuxReset         MuxKind = 7 // either way: the stream is aborted; payload an optional reason
	MuxConnectionAck MuxKind = 8 // requester → worker: u64 BE cumulative bytes; nil stream UUID
)

var muxKindNames = [...]string{
	MuxPrologue:      "Prologue",
	MuxData:          "Data",
	MuxEnd:           "End",
	MuxStop:          "Stop",
	MuxKill:          "Kill",
	MuxWindowUpdate:  "WindowUpdate",
	MuxReset:         "Reset",
	MuxConnectionAck: "ConnectionAck",
}

// String returns the kind's name.
func (k MuxKind) String() string {
	if k >= MuxPrologue && k <= MuxConnectionAck {
		return muxKindNames[k]
	}
	return "MuxKind(" + strconv.Itoa(int(k)) + ")"
}

// MuxSide names who sent a frame, for the direction rules.
type MuxSide uint8

// The sides of a mux connection. MuxFromAny skips the direction check (tests, tools).
const (
	MuxFromAny MuxSide = iota
	MuxFromWorker
	MuxFromRequester
)

// String returns "worker", "requester" or "any".
func (s MuxSide) String() string {
	switch s {
	case MuxFromWorker:
		return "worker"
	case MuxFromRequester:
		return "requester"
	default:
		return "any"
	}
}

// SentBy reports whether side may send frames of kind k: Prologue, Data and End come from the
// worker; Stop, Kill, WindowUpdate and ConnectionAck from the requester; Reset from either.
func (k MuxKind) SentBy(side MuxSide) bool {
	switch k {
	case MuxPrologue, MuxData, MuxEnd:
		return side != MuxFromRequester
	case MuxStop, MuxKill, MuxWindowUpdate, MuxConnectionAck:
		return side != MuxFromWorker
	case MuxReset:
		return true
	}
	return false
}

// UUID is a 16-byte stream, connection or server identifier, written in JSON as the lowercase
// hyphenated form. (codec imports only the standard library, so it has its own.)
type UUID [16]byte

// NilUUID is the all-zero UUID, used only by ConnectionAck frames and the handshake ack.
var NilUUID UUID

// IsNil reports whether u is the nil UUID.
func (u UUID) IsNil() bool { return u == NilUUID }

// String returns u as 8-4-4-4-12 lowercase hex.
func (u UUID) String() string { return string(u.Append(make([]byte, 0, 36))) }

// Append appends u's string form to dst.
func (u UUID) Append(dst []byte) []byte {
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}

// uuidOffsets are the string offsets of a UUID's 16 bytes in the 8-4-4-4-12 form.
var uuidOffsets = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// ParseUUID parses the 36-character hyphenated form (either case).
func ParseUUID(s string) (UUID, error) {
	u, ok := parseUUID(s)
	if !ok {
		return UUID{}, &ControlError{Kind: ErrMalformed, Object: "UUID", Detail: "invalid UUID " + strconv.Quote(s)}
	}
	return u, nil
}

// parseUUID is ParseUUID without the error, for strings and for bytes that are not copied.
func parseUUID[T string | []byte](s T) (UUID, bool) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return UUID{}, false
	}
	for j, i := range uuidOffsets {
		hi, ok1 := unhexDigit(s[i])
		lo, ok2 := unhexDigit(s[i+1])
		if !ok1 || !ok2 {
			return UUID{}, false
		}
		u[j] = hi<<4 | lo
	}
	return u, true
}

func unhexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// MuxFrame is one decoded mux frame. Payload aliases the decoder's input.
type MuxFrame struct {
	Kind    MuxKind
	Stream  UUID
	Payload []byte
}

// Credits returns a WindowUpdate's credits (0 for other kinds).
func (f MuxFrame) Credits() uint32 {
	if f.Kind != MuxWindowUpdate || len(f.Payload) != muxWindowUpdateLen {
		return 0
	}
	return binary.BigEndian.Uint32(f.Payload)
}

// AckedBytes returns a ConnectionAck's cumulative byte count (0 for other kinds).
func (f MuxFrame) AckedBytes() uint64 {
	if f.Kind != MuxConnectionAck || len(f.Payload) != muxConnectionAckLen {
		return 0
	}
	return binary.BigEndian.Uint64(f.Payload)
}

// muxErrorPrefix is how reqplane renders a mux frame error [reqplane: Dynamo's wording is not known].
const muxErrorPrefix = "Mux Codec Error: "

// MuxError is a mux frame failure. Its Code is one of the TwoPart codes (CodeMessageTooLarge,
// CodeInvalidMessage, CodeIO), and errors.Is matches both the TwoPart sentinels
// (ErrMessageTooLarge, ErrInvalidMessage, ErrIO) and ErrMuxFrame.
type MuxError struct {
	Code ErrorCode
	// Size and Max are set for CodeMessageTooLarge.
	Size, Max uint64
	// Detail is the text after "Invalid message: " or "I/O error: ".
	Detail string
	// Err is the underlying cause, if any.
	Err error
}

// ErrMuxFrame matches every *MuxError with errors.Is.
var ErrMuxFrame error = &MuxError{}

// Error renders "Mux Codec Error: {inner}" with the TwoPart codec's inner wording.
func (e *MuxError) Error() string {
	inner := (&Error{Code: e.Code, Size: e.Size, Max: e.Max, Detail: e.Detail, Err: e.Err}).Error()
	return muxErrorPrefix + inner[len(errorPrefix):]
}

// Unwrap returns the cause.
func (e *MuxError) Unwrap() error { return e.Err }

// Is matches ErrMuxFrame, another *MuxError with the same code, and the TwoPart sentinel of
// the same code.
func (e *MuxError) Is(target error) bool {
	switch t := target.(type) {
	case *MuxError:
		return t.Code == 0 || t.Code == e.Code
	case *Error:
		return t.Code == e.Code
	}
	return false
}

func muxInvalid(detail string) *MuxError { return &MuxError{Code: CodeInvalidMessage, Detail: detail} }

// muxTotal returns MuxHeaderLen+payloadLen or a too-large error (max <= 0: only what an int can
// address).
func muxTotal(payloadLen uint64, max int) (uint64, error) {
	total := payloadLen + MuxHeaderLen
	limit := uint64(math.MaxInt)
	if max > 0 {
		limit = uint64(max)
	}
	if total > limit {
		return total, &MuxError{Code: CodeMessageTooLarge, Size: total, Max: limit}
	}
	return total, nil
}

// checkMuxHeader validates everything the 24-byte header alone decides: kind, flags,
// reserved, the UUID rule and the fixed payload sizes.
func checkMuxHeader(kind MuxKind, flags byte, reserved uint16, id UUID, plen uint64, from MuxSide) error {
	if kind < MuxPrologue || kind > MuxConnectionAck {
		return muxInvalid("unknown mux frame kind " + strconv.Itoa(int(kind)))
	}
	if flags != 0 {
		return muxInvalid("non-zero flags " + strconv.Itoa(int(flags)) + " in mux " + kind.String() + " frame")
	}
	if reserved != 0 {
		return muxInvalid("non-zero reserved field " + strconv.Itoa(int(reserved)) + " in mux " + kind.String() + " frame")
	}
	if !kind.SentBy(from) {
		return muxInvalid("mux " + kind.String() + " frame sent by the " + from.String())
	}
	if (kind == MuxConnectionAck) != id.IsNil() {
		if kind == MuxConnectionAck {
			return muxInvalid("mux ConnectionAck frame with a stream id")
		}
		return muxInvalid("mux " + kind.String() + " frame with the nil stream id")
	}
	want := -1
	switch kind {
	case MuxStop, MuxKill:
		want = 0
	case MuxWindowUpdate:
		want = muxWindowUpdateLen
	case MuxConnectionAck:
		want = muxConnectionAckLen
	}
	if want >= 0 && plen != uint64(want) {
		return muxInvalid("mux " + kind.String() + " frame with a " + strconv.FormatUint(plen, 10) +
			"-byte payload (want " + strconv.Itoa(want) + ")")
	}
	return nil
}

// AppendMuxFrame appends one mux frame to dst after checking it as a reader would (kind, UUID
// rule, payload size, direction unless from is MuxFromAny, and the limit max; max <= 0: no
// limit). On failure nothing is appended and the error is a *MuxError.
func AppendMuxFrame(dst []byte, kind MuxKind, id UUID, payload []byte, from MuxSide, max int) ([]byte, error) {
	if uint64(len(payload)) > math.MaxUint32 {
		return dst, &MuxError{Code: CodeMessageTooLarge, Size: uint64(len(payload)) + MuxHeaderLen, Max: math.MaxUint32}
	}
	total, err := muxTotal(uint64(len(payload)), max)
	if err != nil {
		return dst, err
	}
	if err := checkMuxHeader(kind, 0, 0, id, uint64(len(payload)), from); err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, int(total))
	dst = AppendMuxHeader(dst, kind, id, len(payload))
	return append(dst, payload...), nil
}

// AppendMuxHeader appends a mux frame header for a payload of n bytes without any check; the
// caller appends the payload. Hot paths use it after validating once.
func AppendMuxHeader(dst []byte, kind MuxKind, id UUID, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, byte(kind), 0, 0, 0)
	return append(dst, id[:]...)
}

// AppendMuxWindowUpdate appends a WindowUpdate frame granting credits on stream id.
func AppendMuxWindowUpdate(dst []byte, id UUID, credits uint32) []byte {
	dst = AppendMuxHeader(dst, MuxWindowUpdate, id, muxWindowUpdateLen)
	return binary.BigEndian.AppendUint32(dst, credits)
}

// AppendMuxConnectionAck appends a ConnectionAck frame carrying the cumulative byte count.
func AppendMuxConnectionAck(dst []byte, cumulative uint64) []byte {
	dst = AppendMuxHeader(dst, MuxConnectionAck, NilUUID, muxConnectionAckLen)
	return binary.BigEndian.AppendUint64(dst, cumulative)
}

// SplitMuxFrame decodes the mux frame at the start of b, sent by from (MuxFromAny: no direction
// check). n == 0 with a nil error means "need more". The header's rules and the limit are
// checked as soon as the 24-byte header is in, before the payload is awaited. Errors are
// *MuxError. The payload aliases b.
func SplitMuxFrame(b []byte, from MuxSide, max int) (f MuxFrame, n int, err error) {
	if len(b) < MuxHeaderLen {
		return MuxFrame{}, 0, nil
	}
	plen := uint64(binary.BigEndian.Uint32(b[0:4]))
	total, err := muxTotal(plen, max)
	if err != nil {
		return MuxFrame{}, 0, err
	}
	kind := MuxKind(b[4])
	var id UUID
	copy(id[:], b[8:24])
	if err := checkMuxHeader(kind, b[5], binary.BigEndian.Uint16(b[6:8]), id, plen, from); err != nil {
		return MuxFrame{}, 0, err
	}
	if uint64(len(b)) < total {
		return MuxFrame{}, 0, nil
	}
	t := int(total)
	return MuxFrame{Kind: kind, Stream: id, Payload: b[MuxHeaderLen:t:t]}, t, nil
}

// DecodeMuxFrame decodes exactly one mux frame filling b (fuzzing, tools).
func DecodeMuxFrame(b []byte, from MuxSide, max int) (MuxFrame, error) {
	f, n, err := SplitMuxFrame(b, from, max)
	if err != nil {
		return MuxFrame{}, err
	}
	if n == 0 {
		return MuxFrame{}, muxInvalid(DetailNoMessage)
	}
	if n != len(b) {
		return MuxFrame{}, muxInvalid(strconv.Itoa(len(b)-n) + " trailing bytes")
	}
	return f, nil
}

// MuxReader decodes a stream of mux frames sent by one side of a mux connection. Like Reader
// it reads ahead into its own buffer and its frames alias that buffer until the next call to
// Next; it is not safe for concurrent use.
type MuxReader struct {
	in   inbuf
	from MuxSide
	max  int
	err  error // sticky decode error
}

// NewMuxReader returns a MuxReader for frames sent by from, enforcing max on each frame's total
// length (max <= 0: no limit beyond an int). It does no I/O. Bytes the caller already read
// past a handshake may be handed over in pre.
func NewMuxReader(r io.Reader, from MuxSide, limit int, pre []byte) *MuxReader {
	m := &MuxReader{in: inbuf{r: r}, from: from, max: limit}
	if len(pre) > 0 {
		m.in.buf = make([]byte, max(minBufSize, len(pre)))
		m.in.end = copy(m.in.buf, pre)
	}
	return m
}

// Next returns the next frame. At a frame boundary the end of the stream is io.EOF; an end
// inside a frame is a *MuxError (CodeIO) wrapping io.ErrUnexpectedEOF. Frame errors are
// permanent; read errors (a deadline) are *MuxError with CodeIO and Next may be called again.
func (r *MuxReader) Next() (MuxFrame, error) {
	if r.err != nil {
		return MuxFrame{}, r.err
	}
	r.in.release()
	for {
		b := r.in.buffered()
		f, n, err := SplitMuxFrame(b, r.from, r.max)
		if err != nil {
			r.err = err
			return MuxFrame{}, err
		}
		if n > 0 {
			r.in.consume(n)
			return f, nil
		}
		need := MuxHeaderLen
		if len(b) >= MuxHeaderLen {
			need += int(binary.BigEndian.Uint32(b[0:4])) // checked against the limit above
		}
		if err := r.in.fill(need); err != nil {
			if err == io.EOF {
				if r.in.end == r.in.start {
					return MuxFrame{}, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return MuxFrame{}, &MuxError{Code: CodeIO, Detail: err.Error(), Err: err}
		}
	}
}

// Buffered returns the bytes read ahead but not yet decoded (a handshake reader hands them on).
func (r *Reader) Buffered() []byte { return r.in.buffered() }
