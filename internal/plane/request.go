package plane

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/reqplane/reqplane/internal/codec"
)

// Request is an admitted request, handed to a Handler. Body and the strings in Control and
// CallHome belong to the Handler once Accept returned nil: planes never reuse them.
type Request struct {
	Plane    string // the plane it came in on
	Endpoint Endpoint
	Control  codec.RequestControl
	CallHome codec.CallHomeInfo
	// Mux is the call-home info of a request that offers the multiplexed call-home
	// (Control.Transport == codec.TransportTCPResponseMuxV1); CallHome then holds its address,
	// context and stream id.
	Mux  codec.MuxCallHomeInfo
	Body []byte
	Meta Meta
	// Unsupported is set when the request asks for something this worker does not speak (a
	// msgpack payload, a request stream): it is acknowledged, and the worker answers it with an
	// error prologue carrying this error's text, as Dynamo does.
	Unsupported error
}

// Decode checks a request payload as a worker must before acknowledging it (spec §5.1): one
// complete TwoPart frame within max bytes with a matching checksum, with both a header and a
// body, whose header is a valid RequestControlMessage with usable call-home info. The returned
// request aliases payload. A failure is an *Error with CodeTooLarge or CodeBadRequest whose
// Text is what the worker answers.
func Decode(payload []byte, max int) (*Request, error) {
	return decode(new(Request), payload, max)
}

// DecodeFor is Decode for a request to be handed to h: when h is a Recycler, the request is
// h's memory.
func DecodeFor(h Handler, payload []byte, max int) (*Request, error) {
	if r, ok := h.(Recycler); ok {
		return decode(r.NewRequest(), payload, max)
	}
	return Decode(payload, max)
}

// decode fills the zero request r.
func decode(r *Request, payload []byte, max int) (*Request, error) {
	f, err := codec.DecodeFrame(payload, max)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, codec.ErrMessageTooLarge) {
			code = CodeTooLarge
		}
		return nil, &Error{Code: code, Text: err.Error(), Err: err}
	}
	if err := codec.RequireHeaderAndData(f); err != nil {
		return nil, &Error{Code: CodeBadRequest, Text: err.Error(), Err: err}
	}
	ctl, err := codec.ParseRequestControl(f.Header)
	if err != nil {
		return nil, controlError(err)
	}
	if ctl.Transport == codec.TransportTCPResponseMuxV1 {
		mux, err := ctl.ValidateMux()
		if err != nil && !errors.Is(err, codec.ErrUnsupported) {
			return nil, controlError(err)
		}
		info := codec.CallHomeInfo{Address: mux.Address, Context: mux.Context, StreamType: codec.StreamTypeResponse}
		r.Control, r.CallHome, r.Mux, r.Body, r.Unsupported = ctl, info, mux, f.Data, err
		return r, nil
	}
	info, err := ctl.Validate()
	if err != nil && !errors.Is(err, codec.ErrUnsupported) {
		return nil, controlError(err)
	}
	r.Control, r.CallHome, r.Body, r.Unsupported = ctl, info, f.Data, err
	return r, nil
}

// controlError turns a control-header failure into the worker's answer; codec errors already
// carry the spec's "Two Part Codec Error: Invalid message: control header: …" text.
func controlError(err error) *Error {
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Code: codec.CodeInvalidMessage, Detail: "control header: " + err.Error(), Err: err}
	}
	return &Error{Code: CodeBadRequest, Text: ce.Error(), Err: err}
}

// EncodeRequest appends the TwoPart request frame for body to dst: the RequestControlMessage
// with id and the call-home info as header, body as data. It fails when the frame would exceed max.
func EncodeRequest(dst []byte, id string, info codec.CallHomeInfo, body []byte, max int) ([]byte, error) {
	hdr := codec.AppendRequestControl(make([]byte, 0, 384), id, info)
	return codec.AppendFrame(dst, hdr, body, max)
}

// ControlID returns the id of the request frame's control header, which plane clients send as
// the request-id header. Frames built by EncodeRequest start their header with {"id":"…" and an id that needs no escaping, so
// a scan finds it; anything else goes through the codec's parser.
func ControlID(frame []byte) (string, error) {
	if len(frame) < codec.PrefixLen {
		return "", &codec.Error{Code: codec.CodeInvalidMessage, Detail: codec.DetailNoMessage}
	}
	hlen := binary.BigEndian.Uint64(frame[0:8])
	if hlen == 0 || hlen > uint64(len(frame)-codec.PrefixLen) {
		return "", &codec.Error{Code: codec.CodeInvalidMessage, Detail: codec.DetailNotRequest}
	}
	hdr := frame[codec.PrefixLen : codec.PrefixLen+int(hlen)]
	const lead = `{"id":"`
	if rest, ok := bytes.CutPrefix(hdr, []byte(lead)); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 && plainJSON(rest[:i]) {
			return string(rest[:i]), nil
		}
	}
	ctl, err := codec.ParseRequestControl(hdr)
	if err != nil {
		return "", err
	}
	if ctl.ID == "" {
		return "", &codec.Error{Code: codec.CodeInvalidMessage, Detail: "control header: empty id"}
	}
	return ctl.ID, nil
}

// plainJSON reports whether b is the content of a JSON string that needs no unescaping.
func plainJSON(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return true
}
