package codec

import (
	"errors"
	"strconv"
)

// ErrorCode classifies a TwoPart codec failure, mirroring Dynamo's TwoPartCodecError variants.
type ErrorCode uint8

// The TwoPart codec error codes.
const (
	// CodeMessageTooLarge: the frame's total length exceeds the limit.
	CodeMessageTooLarge ErrorCode = iota + 1
	// CodeChecksumMismatch: a non-zero checksum does not match the frame's bytes.
	CodeChecksumMismatch
	// CodeInvalidMessage: the bytes are not one well-formed frame (or its control header is bad).
	CodeInvalidMessage
	// CodeIO: the underlying reader or writer failed.
	CodeIO
)

// String returns the code's name.
func (c ErrorCode) String() string {
	switch c {
	case CodeMessageTooLarge:
		return "MessageTooLarge"
	case CodeChecksumMismatch:
		return "ChecksumMismatch"
	case CodeInvalidMessage:
		return "InvalidMessage"
	case CodeIO:
		return "IO"
	default:
		return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
	}
}

// errorPrefix is how Dynamo renders a TwoPartCodecError; peers show it verbatim.
const errorPrefix = "Two Part Codec Error: "

// Error is a TwoPart codec failure. Its text is exactly what a Dynamo peer prints:
// "Two Part Codec Error: {inner}".
type Error struct {
	Code ErrorCode
	// Size and Max are set for CodeMessageTooLarge: the declared total length (saturated at
	// 2^64-1 on overflow) and the limit it exceeds.
	Size, Max uint64
	// Detail is the text after "Invalid message: " or "I/O error: ".
	Detail string
	// Err is the underlying cause (an I/O error, or a *ControlError), if any.
	Err error
}

// Error renders the spec's text for the code.
func (e *Error) Error() string {
	switch e.Code {
	case CodeMessageTooLarge:
		if e.Size == 0 {
			// Only the sentinel has no size: a real frame is at least PrefixLen bytes.
			return errorPrefix + "Message size exceeds the maximum allowed size"
		}
		return errorPrefix + "Message size " + strconv.FormatUint(e.Size, 10) +
			" exceeds the maximum allowed size of " + strconv.FormatUint(e.Max, 10) + " bytes"
	case CodeChecksumMismatch:
		return errorPrefix + "Checksum mismatch"
	case CodeInvalidMessage:
		if e.Detail == "" {
			return errorPrefix + "Invalid message"
		}
		return errorPrefix + "Invalid message: " + e.Detail
	case CodeIO:
		d := e.Detail
		if d == "" && e.Err != nil {
			d = e.Err.Error()
		}
		if d == "" {
			return errorPrefix + "I/O error"
		}
		return errorPrefix + "I/O error: " + d
	default:
		return errorPrefix + e.Detail
	}
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, ErrChecksumMismatch) matches any checksum failure.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; each matches every *Error with its code.
var (
	ErrMessageTooLarge  error = &Error{Code: CodeMessageTooLarge}
	ErrChecksumMismatch error = &Error{Code: CodeChecksumMismatch}
	ErrInvalidMessage   error = &Error{Code: CodeInvalidMessage}
	ErrIO               error = &Error{Code: CodeIO}
)

// Details of CodeInvalidMessage errors that peers match on.
const (
	// DetailNoMessage: a complete container (HTTP body, NATS payload) holds less than one frame.
	DetailNoMessage = "No message decoded"
	// DetailNotRequest: a request frame lacks a header or a body.
	DetailNotRequest = "Unexpected message from work queue; unable extract a TwoPartMessage with a header and data"
	// controlHeaderDetail prefixes every request control header failure.
	controlHeaderDetail = "control header: "
)

func tooLarge(size, max uint64) *Error {
	return &Error{Code: CodeMessageTooLarge, Size: size, Max: max}
}

func invalidMessage(detail string) *Error {
	return &Error{Code: CodeInvalidMessage, Detail: detail}
}

func ioError(err error) *Error {
	return &Error{Code: CodeIO, Detail: err.Error(), Err: err}
}

// Control object failure kinds, matched with errors.Is against a *ControlError.
var (
	// ErrMalformed: the bytes are not the JSON object expected (syntax, type, missing field).
	ErrMalformed = errors.New("codec: malformed control object")
	// ErrInvalidControl: a well-formed request header whose call-home information is unusable
	// (wrong transport or stream type, context different from id, bad address). The worker
	// cannot call home, so it refuses the request before acking.
	ErrInvalidControl = errors.New("codec: invalid request control header")
	// ErrUnsupported: a well-formed, callable request asking for something reqplane does not
	// serve (request streams, single responses, a payload codec other than JSON). The worker
	// may ack it and answer with an error prologue, as Dynamo does.
	ErrUnsupported = errors.New("codec: unsupported request")
)

// ControlError is a failure to parse or accept a JSON control object. Its text is the bare
// detail (Dynamo's wording where Dynamo has one), which callers embed in their own messages.
type ControlError struct {
	// Kind is ErrMalformed, ErrInvalidControl or ErrUnsupported.
	Kind error
	// Object names the control object, e.g. "RequestControlMessage", "CallHomeHandshake".
	Object string
	// Detail is the human-readable reason.
	Detail string
	// Err is the underlying error (usually from encoding/json), if any.
	Err error
}

// Error returns the detail.
func (e *ControlError) Error() string { return e.Detail }

// Unwrap exposes both the kind and the underlying error to errors.Is/As.
func (e *ControlError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func malformed(object, detail string, err error) *ControlError {
	return &ControlError{Kind: ErrMalformed, Object: object, Detail: detail, Err: err}
}

// controlHeaderError wraps a RequestControlMessage failure into the codec error a worker sends
// back before acking: "Two Part Codec Error: Invalid message: control header: {detail}".
func controlHeaderError(ce *ControlError) *Error {
	return &Error{Code: CodeInvalidMessage, Detail: controlHeaderDetail + ce.Detail, Err: ce}
}
