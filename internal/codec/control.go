package codec

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Values of the request control header's enumerations, as Dynamo spells them.
const (
	TransportTCPServer  = "tcp_server"
	StreamTypeResponse  = "response"
	RequestTypeSingleIn = "single_in"
	ResponseTypeManyOut = "many_out"
	// PayloadCodecJSON is the only payload codec reqplane serves; absent means the same.
	PayloadCodecJSON = "json"
)

// Object names used in *ControlError.
const (
	objRequestControl = "RequestControlMessage"
	objCallHome       = "TcpStreamConnectionInfo"
	objHandshake      = "CallHomeHandshake"
	objPrologue       = "ResponseStreamPrologue"
	objControl        = "ControlMessage"
	objStreamItem     = "NetworkStreamWrapper"
	objAnnotated      = "Annotated"
)

// CallHomeInfo tells the worker where and how to stream the response: the requester's
// listener address, the subject registered for this stream, and the request id.
type CallHomeInfo struct {
	Address, Subject, Context, StreamType string
}

// DialAddress returns the info's address in a form net.Dial accepts; see CallHomeDialAddress.
func (i CallHomeInfo) DialAddress() (string, error) { return CallHomeDialAddress(i.Address) }

// RequestControl is a parsed RequestControlMessage (the request frame's header).
type RequestControl struct {
	ID, RequestType, ResponseType string
	// Transport is connection_info.transport.
	Transport string
	// Info is connection_info.info: the inner call-home JSON document, already unquoted.
	Info string
	// PayloadCodec is the 2026 payload_codec field, "" when absent.
	PayloadCodec string
}

// AppendCallHomeInfo appends {"address":…,"subject":…,"context":…,"stream_type":…}.
// An empty StreamType is written as "response", the only value peers accept.
func AppendCallHomeInfo(dst []byte, info CallHomeInfo) []byte {
	dst = append(dst, `{"address":`...)
	dst = AppendString(dst, info.Address)
	dst = append(dst, `,"subject":`...)
	dst = AppendString(dst, info.Subject)
	dst = append(dst, `,"context":`...)
	dst = AppendString(dst, info.Context)
	dst = append(dst, `,"stream_type":`...)
	dst = AppendString(dst, streamTypeOrDefault(info.StreamType))
	return append(dst, '}')
}

func streamTypeOrDefault(s string) string {
	if s == "" {
		return StreamTypeResponse
	}
	return s
}

// AppendRequestControl appends the request header reqplane always sends:
//
//	{"id":ID,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":INFO}}
//
// where INFO is AppendCallHomeInfo's document encoded as a JSON string. An empty info.Context
// is written as id (the worker rejects any other value).
func AppendRequestControl(dst []byte, id string, info CallHomeInfo) []byte {
	if info.Context == "" {
		info.Context = id
	}
	dst = append(dst, `{"id":`...)
	dst = AppendString(dst, id)
	dst = append(dst, `,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"{\"address\":\"`...)
	// The inner document is written directly in its doubly escaped form, so no scratch buffer
	// is needed for it.
	dst = appendEscaped(dst, info.Address, true)
	dst = append(dst, `\",\"subject\":\"`...)
	dst = appendEscaped(dst, info.Subject, true)
	dst = append(dst, `\",\"context\":\"`...)
	dst = appendEscaped(dst, info.Context, true)
	dst = append(dst, `\",\"stream_type\":\"`...)
	dst = appendEscaped(dst, streamTypeOrDefault(info.StreamType), true)
	return append(dst, `\"}"}}`...)
}

type wireConnectionInfo struct {
	Transport *string `json:"transport"`
	Info      *string `json:"info"`
}

type wireRequestControl struct {
	ID             *string             `json:"id"`
	RequestType    *string             `json:"request_type"`
	ResponseType   *string             `json:"response_type"`
	ConnectionInfo *wireConnectionInfo `json:"connection_info"`
	PayloadCodec   *string             `json:"payload_codec"`
}

// ParseRequestControl parses a request header. Unknown fields (2026's metadata,
// frontend_send_ts_ns, request_stream_connection_info, …) are ignored; the fields Dynamo
// requires must be present. A failure is a *Error (CodeInvalidMessage) whose text is the
// refusal a worker sends, "Two Part Codec Error: Invalid message: control header: {detail}",
// wrapping a *ControlError with the bare detail.
func ParseRequestControl(b []byte) (RequestControl, error) {
	if c, ok := parseRequestControlFast(b); ok {
		return c, nil
	}
	return parseRequestControlSlow(b)
}

// parseRequestControlSlow is the encoding/json path: any input, and the words for every error.
func parseRequestControlSlow(b []byte) (RequestControl, error) {
	var w wireRequestControl
	if ce := unmarshal(objRequestControl, b, &w); ce != nil {
		return RequestControl{}, controlHeaderError(ce)
	}
	var missing string
	switch {
	case w.ID == nil:
		missing = "id"
	case w.RequestType == nil:
		missing = "request_type"
	case w.ResponseType == nil:
		missing = "response_type"
	case w.ConnectionInfo == nil:
		missing = "connection_info"
	case w.ConnectionInfo.Transport == nil:
		missing = "transport"
	case w.ConnectionInfo.Info == nil:
		missing = "info"
	}
	if missing != "" {
		return RequestControl{}, controlHeaderError(missingField(objRequestControl, missing))
	}
	c := RequestControl{
		ID:           *w.ID,
		RequestType:  *w.RequestType,
		ResponseType: *w.ResponseType,
		Transport:    *w.ConnectionInfo.Transport,
		Info:         *w.ConnectionInfo.Info,
	}
	if w.PayloadCodec != nil {
		c.PayloadCodec = *w.PayloadCodec
	}
	return c, nil
}

type wireCallHome struct {
	Address    *string `json:"address"`
	Subject    *string `json:"subject"`
	Context    *string `json:"context"`
	StreamType *string `json:"stream_type"`
}

// CallHome parses c.Info, the call-home document. It checks only its shape; Validate checks
// its values.
func (c RequestControl) CallHome() (CallHomeInfo, error) {
	// The info usually fits the stack buffer, and its values, which need no unescaping as a
	// rule, are returned as substrings of c.Info: no allocation.
	var buf [512]byte
	if info, ok := parseCallHomeFast(append(buf[:0], c.Info...), c.Info); ok {
		return info, nil
	}
	return parseCallHomeSlow([]byte(c.Info))
}

func parseCallHomeSlow(b []byte) (CallHomeInfo, error) {
	var w wireCallHome
	if ce := unmarshal(objCallHome, b, &w); ce != nil {
		return CallHomeInfo{}, ce
	}
	var missing string
	switch {
	case w.Address == nil:
		missing = "address"
	case w.Subject == nil:
		missing = "subject"
	case w.Context == nil:
		missing = "context"
	case w.StreamType == nil:
		missing = "stream_type"
	}
	if missing != "" {
		return CallHomeInfo{}, missingField(objCallHome, missing)
	}
	return CallHomeInfo{Address: *w.Address, Subject: *w.Subject, Context: *w.Context, StreamType: *w.StreamType}, nil
}

// Validate performs the checks a worker makes before acking a request and returns the
// call-home info to dial. Every failure is a *Error (CodeInvalidMessage, text
// "Two Part Codec Error: Invalid message: control header: {detail}") wrapping a *ControlError:
//
//   - errors.Is(err, ErrInvalidControl): the worker cannot call home (transport other than
//     tcp_server, unparseable info, stream type other than response, context different from id,
//     empty id, unusable address). Refuse the request; the returned info is zero.
//   - errors.Is(err, ErrUnsupported): the request can be called home but asks for request
//     streams, a single response or a non-JSON payload codec. The info is returned, so the
//     worker can ack and answer with an error prologue, as Dynamo does.
//
// The first three texts are Dynamo's ("Invalid transport; …", "Invalid stream type; …",
// "Invalid context; …").
//
// A request offering the response mux (transport tcp_response_mux_v1) gets ValidateMux's checks
// and its info projected onto CallHomeInfo (Subject = the stream id); the worker reads the
// full info with ValidateMux.
func (c RequestControl) Validate() (CallHomeInfo, error) {
	invalid := func(detail string, err error) (CallHomeInfo, error) {
		return CallHomeInfo{}, controlHeaderError(&ControlError{
			Kind: ErrInvalidControl, Object: objRequestControl, Detail: detail, Err: err,
		})
	}
	if c.Transport == TransportTCPResponseMuxV1 {
		// The response mux (mux_control.go): ValidateMux's checks, info projected.
		return c.validateMuxAsCallHome()
	}
	if c.Transport != TransportTCPServer {
		return invalid("Invalid transport; TcpClient requires the transport to be `tcp_server`; however "+
			c.Transport+" was passed", nil)
	}
	info, err := c.CallHome()
	if err != nil {
		return invalid("Failed parse ConnectionInfo: "+err.Error(), err)
	}
	if info.StreamType != StreamTypeResponse {
		return invalid("Invalid stream type; TcpClient requires the stream type to be `response`; however "+
			strconv.Quote(info.StreamType)+" was passed", nil)
	}
	if info.Context != c.ID {
		return invalid("Invalid context; TcpClient requires the context to be "+strconv.Quote(c.ID)+
			"; however "+strconv.Quote(info.Context)+" was passed", nil)
	}
	if c.ID == "" {
		return invalid("Invalid id; the request id must not be empty", nil)
	}
	if _, err := CallHomeDialAddress(info.Address); err != nil {
		return invalid("Invalid address; "+err.Error(), err)
	}
	unsupported := func(detail string) (CallHomeInfo, error) {
		return info, controlHeaderError(&ControlError{
			Kind: ErrUnsupported, Object: objRequestControl, Detail: detail,
		})
	}
	if c.RequestType != RequestTypeSingleIn {
		return unsupported("Unsupported request type; reqplane serves `single_in` requests; however " +
			strconv.Quote(c.RequestType) + " was passed")
	}
	if c.ResponseType != ResponseTypeManyOut {
		return unsupported("Unsupported response type; reqplane serves `many_out` responses; however " +
			strconv.Quote(c.ResponseType) + " was passed")
	}
	if c.PayloadCodec != "" && c.PayloadCodec != PayloadCodecJSON {
		return unsupported("Unsupported payload codec; reqplane serves `json` payloads; however " +
			strconv.Quote(c.PayloadCodec) + " was passed")
	}
	return info, nil
}

// Handshake is the CallHomeHandshake, the first frame a worker sends on a call-home connection.
type Handshake struct {
	Subject, StreamType string
}

// AppendHandshake appends {"subject":S,"stream_type":T}; an empty StreamType is written as
// "response".
func AppendHandshake(dst []byte, h Handshake) []byte {
	dst = append(dst, `{"subject":`...)
	dst = AppendString(dst, h.Subject)
	dst = append(dst, `,"stream_type":`...)
	dst = AppendString(dst, streamTypeOrDefault(h.StreamType))
	return append(dst, '}')
}

type wireHandshake struct {
	Subject    *string `json:"subject"`
	StreamType *string `json:"stream_type"`
}

// ParseHandshake parses a CallHomeHandshake; both fields are required. The stream type is
// returned as sent: the caller decides what it accepts. Errors are *ControlError.
func ParseHandshake(b []byte) (Handshake, error) {
	if h, ok := parseHandshakeFast(b); ok {
		return h, nil
	}
	return parseHandshakeSlow(b)
}

// parseHandshakeSlow is the encoding/json path: any input, and the words for every error.
func parseHandshakeSlow(b []byte) (Handshake, error) {
	var w wireHandshake
	if ce := unmarshal(objHandshake, b, &w); ce != nil {
		return Handshake{}, ce
	}
	if w.Subject == nil {
		return Handshake{}, missingField(objHandshake, "subject")
	}
	if w.StreamType == nil {
		return Handshake{}, missingField(objHandshake, "stream_type")
	}
	return Handshake{Subject: *w.Subject, StreamType: *w.StreamType}, nil
}

// Prologue is the ResponseStreamPrologue, the worker's second frame: nil Error means the
// handler started; otherwise the request failed with that text.
type Prologue struct {
	Error *string
}

// AppendPrologue appends {"error":null} or {"error":TEXT}. errText is the full text, usually
// "Generate Error: {msg}".
func AppendPrologue(dst []byte, errText *string) []byte {
	if errText == nil {
		return append(dst, `{"error":null}`...)
	}
	dst = append(dst, `{"error":`...)
	dst = AppendString(dst, *errText)
	return append(dst, '}')
}

type wirePrologue struct {
	Error *string `json:"error"`
}

// ParsePrologue parses a ResponseStreamPrologue. A missing or null error means success; other
// fields (2026's typed_error) are ignored. Errors are *ControlError.
func ParsePrologue(b []byte) (Prologue, error) {
	if bytes.Equal(b, []byte(`{"error":null}`)) {
		return Prologue{}, nil
	}
	if p, ok := parsePrologueFast(b); ok {
		return p, nil
	}
	return parsePrologueSlow(b)
}

// parsePrologueSlow is the encoding/json path: any input, and the words for every error.
func parsePrologueSlow(b []byte) (Prologue, error) {
	var w wirePrologue
	if ce := unmarshal(objPrologue, b, &w); ce != nil {
		return Prologue{}, ce
	}
	return Prologue(w), nil
}

// Control is a ControlMessage, sent header-only on the call-home connection.
type Control uint8

// The control messages. Stop and kill go from requester to worker; the sentinel ends the
// worker's stream.
const (
	ControlStop Control = iota + 1
	ControlKill
	ControlSentinel
)

// String returns the message's wire name: "stop", "kill" or "sentinel".
func (c Control) String() string {
	switch c {
	case ControlStop:
		return "stop"
	case ControlKill:
		return "kill"
	case ControlSentinel:
		return "sentinel"
	default:
		return "Control(" + strconv.Itoa(int(c)) + ")"
	}
}

// Bytes returns the message's JSON encoding, quotes included (`"stop"`: 6 bytes).
func (c Control) Bytes() []byte { return AppendControl(nil, c) }

// AppendControl appends c's JSON encoding, quotes included.
func AppendControl(dst []byte, c Control) []byte {
	dst = append(dst, '"')
	dst = append(dst, c.String()...)
	return append(dst, '"')
}

// ParseControl parses a ControlMessage header. Errors are *ControlError.
func ParseControl(b []byte) (Control, error) {
	if c, ok := parseControlFast(b); ok {
		return c, nil
	}
	return parseControlSlow(b)
}

// parseControlSlow is the encoding/json path: escaped forms, and the words for every error.
func parseControlSlow(b []byte) (Control, error) {
	var s string
	if ce := unmarshal(objControl, b, &s); ce != nil {
		return 0, ce
	}
	switch s {
	case "stop":
		return ControlStop, nil
	case "kill":
		return ControlKill, nil
	case "sentinel":
		return ControlSentinel, nil
	}
	return 0, malformed(objControl, "unknown variant `"+s+"`, expected one of `stop`, `kill`, `sentinel`", nil)
}

// Exact NetworkStreamWrapper framing, shared by the writer and the parser's fast path.
const (
	streamItemHead = `{"data":`
	streamItemTail = `,"complete_final":false}`
	streamEnd      = `{"complete_final":true}`
)

// AppendStreamItem appends {"data":DATA,"complete_final":false}. data is raw JSON appended
// verbatim; the caller guarantees it is one valid, compact JSON value. Empty data is omitted,
// as serde omits an absent value.
func AppendStreamItem(dst, data []byte) []byte {
	if len(data) == 0 {
		return append(dst, `{"complete_final":false}`...)
	}
	dst = append(dst, streamItemHead...)
	dst = append(dst, data...)
	return append(dst, streamItemTail...)
}

// AppendStreamEnd appends {"complete_final":true}, the last data frame of a stream.
func AppendStreamEnd(dst []byte) []byte {
	return append(dst, streamEnd...)
}

// StreamItem is a parsed NetworkStreamWrapper.
type StreamItem struct {
	// Data is the raw JSON value; nil when absent or null. It may alias the parsed bytes.
	Data []byte
	// CompleteFinal marks the end of the stream (false when absent).
	CompleteFinal bool
}

type wireStreamItem struct {
	Data          json.RawMessage `json:"data"`
	CompleteFinal bool            `json:"complete_final"`
}

// ParseStreamItem parses a NetworkStreamWrapper. Errors are *ControlError.
func ParseStreamItem(b []byte) (StreamItem, error) {
	// Fast path for the exact layout every peer writes: no reflection, no copy.
	if bytes.Equal(b, []byte(streamEnd)) {
		return StreamItem{CompleteFinal: true}, nil
	}
	if len(b) > len(streamItemHead)+len(streamItemTail) &&
		bytes.HasPrefix(b, []byte(streamItemHead)) && bytes.HasSuffix(b, []byte(streamItemTail)) {
		data := b[len(streamItemHead) : len(b)-len(streamItemTail)]
		// ValidJSON (encoding/json.Valid's answer) accepts exactly one value, so `1,"x":2`
		// (other fields in between) falls through to the full parser.
		if ValidJSON(data) {
			data = bytes.TrimSpace(data)
			if string(data) == "null" {
				data = nil
			}
			return StreamItem{Data: data}, nil
		}
	}
	var w wireStreamItem
	if ce := unmarshal(objStreamItem, b, &w); ce != nil {
		return StreamItem{}, ce
	}
	it := StreamItem{Data: w.Data, CompleteFinal: w.CompleteFinal}
	if isNull(it.Data) {
		it.Data = nil
	}
	return it, nil
}

// Annotated is Dynamo's Annotated<U> response item (protocols/annotated.rs): the usual payload
// of a stream item. Each field is omitted from the JSON when absent (nil).
type Annotated struct {
	Data      json.RawMessage
	ID        *string
	Event     *string
	Comment   []string
	ErrorCode *uint16
}

// AppendAnnotated appends a in serde's field order: data, id, event, comment, error_code.
// Data is raw JSON appended verbatim (the caller guarantees one valid compact value). A nil
// Comment is omitted; an empty non-nil one is written as [].
func AppendAnnotated(dst []byte, a Annotated) []byte {
	dst = append(dst, '{')
	sep := false
	field := func(name string) {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	if len(a.Data) > 0 {
		field("data")
		dst = append(dst, a.Data...)
	}
	if a.ID != nil {
		field("id")
		dst = AppendString(dst, *a.ID)
	}
	if a.Event != nil {
		field("event")
		dst = AppendString(dst, *a.Event)
	}
	if a.Comment != nil {
		field("comment")
		dst = append(dst, '[')
		for i, c := range a.Comment {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, c)
		}
		dst = append(dst, ']')
	}
	if a.ErrorCode != nil {
		field("error_code")
		dst = strconv.AppendUint(dst, uint64(*a.ErrorCode), 10)
	}
	return append(dst, '}')
}

type wireAnnotated struct {
	Data      json.RawMessage `json:"data"`
	ID        *string         `json:"id"`
	Event     *string         `json:"event"`
	Comment   []string        `json:"comment"`
	ErrorCode *uint16         `json:"error_code"`
}

// ParseAnnotated parses an Annotated item. A null field counts as absent; unknown fields are
// ignored. Errors are *ControlError.
func ParseAnnotated(b []byte) (Annotated, error) {
	var w wireAnnotated
	if ce := unmarshal(objAnnotated, b, &w); ce != nil {
		return Annotated{}, ce
	}
	if isNull(w.Data) {
		w.Data = nil
	}
	return Annotated(w), nil
}
