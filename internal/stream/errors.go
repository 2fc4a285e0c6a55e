package stream

import (
	"errors"
	"fmt"
	"io"
)

// Code classifies a response-stream failure.
type Code uint8

// The codes. Requester-side streams fail with Generate, Protocol, Incomplete, Timeout or
// Closed; the worker side reports Connect, Write, Final, and, as its Context's cause,
// Stopped, Killed, Disconnected or Protocol.
const (
	CodeUnknown Code = iota
	// CodeGenerate: the worker's prologue carried an error ("Generate Error: …").
	CodeGenerate
	// CodeProtocol: the peer broke the call-home protocol.
	CodeProtocol
	// CodeIncomplete: the connection ended before the worker completed the stream.
	CodeIncomplete
	// CodeTimeout: no prologue arrived within the prologue timeout after the acknowledgement.
	CodeTimeout
	// CodeClosed: this side closed the stream, the sender or the server.
	CodeClosed
	// CodeConnect: the worker could not dial the requester or send the handshake.
	CodeConnect
	// CodeWrite: the worker could not write the prologue or an item.
	CodeWrite
	// CodeFinal: the worker could not write the final marker or the sentinel.
	CodeFinal
	// CodeStopped: the requester asked the worker to stop (graceful).
	CodeStopped
	// CodeKilled: the requester killed the stream.
	CodeKilled
	// CodeDisconnected: the requester closed the connection without stop or kill.
	CodeDisconnected
)

var codeNames = [...]string{
	CodeUnknown:      "unknown",
	CodeGenerate:     "generate",
	CodeProtocol:     "protocol",
	CodeIncomplete:   "incomplete",
	CodeTimeout:      "timeout",
	CodeClosed:       "closed",
	CodeConnect:      "connect",
	CodeWrite:        "write",
	CodeFinal:        "final",
	CodeStopped:      "stopped",
	CodeKilled:       "killed",
	CodeDisconnected: "disconnected",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}

// Texts from the spec (§6) and from Dynamo, which peers and users see verbatim.
const (
	TextNoHandshake       = "Connection closed without a ControlMessage"
	TextHandshakeTimeout  = "Timed out waiting for CallHomeHandshake"
	TextExpectedControl   = "Expected ControlMessage, got DataMessage"
	TextBadHandshake      = "Failed to deserialize the first message as a valid `CallHomeHandshake`: "
	TextNoPrologue        = "Worker disconnected before response stream was established"
	TextMalformedPrologue = "malformed prologue: expected HeaderOnly ControlMessage"
	TextBadControl        = "Failed to deserialize ControlMessage: "
	TextEmptyResponse     = "Empty response received - this should never happen"
	TextAfterFinal        = "Response received after generation ended - this should never happen"
	TextIncomplete        = "Stream ended before generation completed"
	TextUnexpectedControl = "unexpected control message on response stream"
	// reqplane's own texts.
	TextHeaderAndData      = "unexpected HeaderAndData message on response stream"
	TextPrologueTimeout    = "Timed out waiting for the response stream prologue"
	TextStreamClosed       = "response stream closed"
	TextServerClosed       = "response stream server closed"
	TextServerNotStarted   = "response stream server not started"
	TextStopped            = "response stream stopped by the requester"
	TextKilled             = "response stream killed by the requester"
	TextDisconnected       = "requester closed the response stream"
	TextRequesterProtocol  = "unexpected message from the requester on response stream"
	TextSenderClosed       = "response stream sender closed"
	TextPrologueSent       = "response stream prologue already sent"
	TextAfterErrorPrologue = "response stream already failed with an error prologue"
	TextEmptyItem          = "response stream item must be a JSON value"
)

// SubjectNotFoundText is the text logged when a worker calls home with an unknown subject.
func SubjectNotFoundText(subject string) string {
	return "Subject not found: " + subject +
		"; upstream publisher specified a subject unknown to the downsteam subscriber"
}

// requestSubjectNotFoundText is Dynamo's text for a handshake naming a request stream, which
// reqplane never registers.
func requestSubjectNotFoundText(subject string) string {
	return "Subject not found: " + subject +
		"; downstream subscriber specified a subject unknown to the upstream publisher"
}

// Error is the one error type of the response plane. Compare with errors.Is against the
// sentinels (which match by Code) or read the Code with errors.As.
type Error struct {
	Code Code
	// Text is what went wrong, in the spec's words where it has them; for CodeGenerate it is
	// the worker's prologue error verbatim.
	Text string
	// Err is the cause, if any.
	Err error
}

// Error returns Text, so that spec texts reach users unchanged; without Text it names the
// code and the cause.
func (e *Error) Error() string {
	if e.Text != "" {
		return e.Text
	}
	if e.Err != nil {
		return "response stream " + e.Code.String() + ": " + e.Err.Error()
	}
	return "response stream " + e.Code.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is, one per Code.
var (
	ErrGenerate     = &Error{Code: CodeGenerate}
	ErrProtocol     = &Error{Code: CodeProtocol}
	ErrIncomplete   = &Error{Code: CodeIncomplete}
	ErrTimeout      = &Error{Code: CodeTimeout}
	ErrClosed       = &Error{Code: CodeClosed}
	ErrConnect      = &Error{Code: CodeConnect}
	ErrWrite        = &Error{Code: CodeWrite}
	ErrFinal        = &Error{Code: CodeFinal}
	ErrStopped      = &Error{Code: CodeStopped}
	ErrKilled       = &Error{Code: CodeKilled}
	ErrDisconnected = &Error{Code: CodeDisconnected}
)

// CodeOf returns the Code of err, CodeUnknown when err is not an *Error.
func CodeOf(err error) Code {
	switch e := err.(type) {
	case nil:
		return CodeUnknown
	case *Error: // the usual case, without errors.As's allocation
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnknown
}

// ErrorType returns the worker metric label (spec §9 error_type) for a failure reported by
// Dial, Sender or a requester Stream: "response_stream" (dial or handshake), "publish_response"
// (prologue or item write), "publish_final" (final marker or sentinel write), "generate"
// (error prologue). Other failures, such as a stop or kill, are not worker errors: "".
func ErrorType(err error) string {
	switch CodeOf(err) {
	case CodeConnect:
		return "response_stream"
	case CodeWrite:
		return "publish_response"
	case CodeFinal:
		return "publish_final"
	case CodeGenerate:
		return "generate"
	}
	return ""
}

// The causes every closed stream and sender share: an *Error is never modified once made.
var (
	errSenderClosed = &Error{Code: CodeClosed, Text: TextSenderClosed}
	errStreamClosed = &Error{Code: CodeClosed, Text: TextStreamClosed}
)

func newError(code Code, text string, cause error) *Error {
	if cause == io.EOF {
		// A failure is never a clean end: errors.Is(err, io.EOF) must hold only for the
		// io.EOF that Recv returns after a complete stream.
		cause = io.ErrUnexpectedEOF
	}
	return &Error{Code: code, Text: text, Err: cause}
}
