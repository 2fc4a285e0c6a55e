package codec

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// Response mux v1 control objects (spec §13): the request's connection info and the
// connection handshake.

const (
	// TransportTCPResponseMuxV1 is connection_info.transport for a multiplexed call-home.
	TransportTCPResponseMuxV1 = "tcp_response_mux_v1"
	// MuxVersion is the response mux version reqplane speaks.
	MuxVersion = 1
	// MuxHandshakeKind is the handshake's "kind".
	MuxHandshakeKind = "response_mux"
	// MuxHandshakeAckHeaderLen is the size of the handshake ack's header.
	MuxHandshakeAckHeaderLen = 20
)

const (
	objMuxCallHome  = "TcpResponseMuxConnectionInfo"
	objMuxHandshake = "ResponseMuxHandshake"
	objMuxAck       = "ResponseMuxHandshakeAck"
)

// MuxCallHomeInfo is the connection info of a multiplexed call-home: the requester's listener,
// its frontend server id (one per requester process), the stream's id and the request id.
type MuxCallHomeInfo struct {
	Address          string
	FrontendServerID UUID
	StreamID         UUID
	Context          string
	// Version is the mux version; 0 is written as MuxVersion.
	Version uint32
}

// DialAddress returns the info's address in a form net.Dial accepts.
func (i MuxCallHomeInfo) DialAddress() (string, error) { return CallHomeDialAddress(i.Address) }

func muxVersionOrDefault(v uint32) uint32 {
	if v == 0 {
		return MuxVersion
	}
	return v
}

// AppendMuxCallHomeInfo appends
// {"address":…,"frontend_server_id":…,"stream_id":…,"context":…,"version":1}.
func AppendMuxCallHomeInfo(dst []byte, info MuxCallHomeInfo) []byte {
	dst = append(dst, `{"address":`...)
	dst = AppendString(dst, info.Address)
	dst = append(dst, `,"frontend_server_id":"`...)
	dst = info.FrontendServerID.Append(dst)
	dst = append(dst, `","stream_id":"`...)
	dst = info.StreamID.Append(dst)
	dst = append(dst, `","context":`...)
	dst = AppendString(dst, info.Context)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, uint64(muxVersionOrDefault(info.Version)), 10)
	return append(dst, '}')
}

// AppendMuxRequestControl appends the request header offering the response mux:
//
//	{"id":ID,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_response_mux_v1","info":INFO}}
//
// where INFO is AppendMuxCallHomeInfo's document encoded as a JSON string. An empty
// info.Context is written as id.
func AppendMuxRequestControl(dst []byte, id string, info MuxCallHomeInfo) []byte {
	if info.Context == "" {
		info.Context = id
	}
	dst = append(dst, `{"id":`...)
	dst = AppendString(dst, id)
	dst = append(dst, `,"request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_response_mux_v1","info":"{\"address\":\"`...)
	dst = appendEscaped(dst, info.Address, true)
	dst = append(dst, `\",\"frontend_server_id\":\"`...)
	dst = info.FrontendServerID.Append(dst)
	dst = append(dst, `\",\"stream_id\":\"`...)
	dst = info.StreamID.Append(dst)
	dst = append(dst, `\",\"context\":\"`...)
	dst = appendEscaped(dst, info.Context, true)
	dst = append(dst, `\",\"version\":`...)
	dst = strconv.AppendUint(dst, uint64(muxVersionOrDefault(info.Version)), 10)
	return append(dst, `}"}}`...)
}

type wireMuxCallHome struct {
	Address          *string `json:"address"`
	FrontendServerID *string `json:"frontend_server_id"`
	StreamID         *string `json:"stream_id"`
	Context          *string `json:"context"`
	Version          *uint32 `json:"version"`
}

// MuxCallHome parses c.Info as the mux connection info. It checks the shape (fields present,
// ids well-formed); ValidateMux checks the values. Errors are *ControlError.
func (c RequestControl) MuxCallHome() (MuxCallHomeInfo, error) {
	// The info usually fits the stack buffer: the fast parser reads it without a heap copy,
	// returns the values that need no unescaping (the address, as a rule) as substrings of
	// c.Info, and a context equal to the id (as it must be) as the id's string.
	var buf [512]byte
	if info, ok := parseMuxCallHomeFast(append(buf[:0], c.Info...), c.Info, c.ID); ok {
		return info, nil
	}
	return parseMuxCallHomeSlow([]byte(c.Info))
}

func parseMuxCallHomeSlow(b []byte) (MuxCallHomeInfo, error) {
	var w wireMuxCallHome
	if ce := unmarshal(objMuxCallHome, b, &w); ce != nil {
		return MuxCallHomeInfo{}, ce
	}
	var missing string
	switch {
	case w.Address == nil:
		missing = "address"
	case w.FrontendServerID == nil:
		missing = "frontend_server_id"
	case w.StreamID == nil:
		missing = "stream_id"
	case w.Context == nil:
		missing = "context"
	case w.Version == nil:
		missing = "version"
	}
	if missing != "" {
		return MuxCallHomeInfo{}, missingField(objMuxCallHome, missing)
	}
	fs, err := ParseUUID(*w.FrontendServerID)
	if err != nil {
		return MuxCallHomeInfo{}, malformed(objMuxCallHome, "frontend_server_id: "+err.Error(), err)
	}
	sid, err := ParseUUID(*w.StreamID)
	if err != nil {
		return MuxCallHomeInfo{}, malformed(objMuxCallHome, "stream_id: "+err.Error(), err)
	}
	return MuxCallHomeInfo{Address: *w.Address, FrontendServerID: fs, StreamID: sid, Context: *w.Context, Version: *w.Version}, nil
}

// ValidateMux performs the checks a worker makes before acking a request that offers the
// response mux, and returns the info to open the stream with. Errors have Validate's form: a
// *Error (CodeInvalidMessage, "Two Part Codec Error: Invalid message: control header: …")
// wrapping a *ControlError of kind ErrInvalidControl (refuse) or ErrUnsupported (ack, then
// answer with an error prologue; the info is returned).
func (c RequestControl) ValidateMux() (MuxCallHomeInfo, error) {
	invalid := func(detail string, err error) (MuxCallHomeInfo, error) {
		return MuxCallHomeInfo{}, controlHeaderError(&ControlError{
			Kind: ErrInvalidControl, Object: objRequestControl, Detail: detail, Err: err,
		})
	}
	if c.Transport != TransportTCPResponseMuxV1 {
		return invalid("Invalid transport; the response mux requires the transport to be `"+
			TransportTCPResponseMuxV1+"`; however "+c.Transport+" was passed", nil)
	}
	info, err := c.MuxCallHome()
	if err != nil {
		return invalid("Failed parse ConnectionInfo: "+err.Error(), err)
	}
	if info.Version != MuxVersion {
		return invalid("Invalid version; the response mux requires version "+strconv.Itoa(MuxVersion)+
			"; however "+strconv.FormatUint(uint64(info.Version), 10)+" was passed", nil)
	}
	if info.Context != c.ID {
		return invalid("Invalid context; the response mux requires the context to be "+strconv.Quote(c.ID)+
			"; however "+strconv.Quote(info.Context)+" was passed", nil)
	}
	if c.ID == "" {
		return invalid("Invalid id; the request id must not be empty", nil)
	}
	if info.FrontendServerID.IsNil() || info.StreamID.IsNil() {
		return invalid("Invalid stream id; the response mux requires non-nil frontend_server_id and stream_id", nil)
	}
	if _, err := CallHomeDialAddress(info.Address); err != nil {
		return invalid("Invalid address; "+err.Error(), err)
	}
	if detail := c.unsupported(); detail != "" {
		return info, controlHeaderError(&ControlError{Kind: ErrUnsupported, Object: objRequestControl, Detail: detail})
	}
	return info, nil
}

// unsupported returns why a callable request cannot be served, "" when it can. The texts are
// Validate's.
func (c RequestControl) unsupported() string {
	switch {
	case c.RequestType != RequestTypeSingleIn:
		return "Unsupported request type; reqplane serves `single_in` requests; however " +
			strconv.Quote(c.RequestType) + " was passed"
	case c.ResponseType != ResponseTypeManyOut:
		return "Unsupported response type; reqplane serves `many_out` responses; however " +
			strconv.Quote(c.ResponseType) + " was passed"
	case c.PayloadCodec != "" && c.PayloadCodec != PayloadCodecJSON:
		return "Unsupported payload codec; reqplane serves `json` payloads; however " +
			strconv.Quote(c.PayloadCodec) + " was passed"
	}
	return ""
}

// validateMuxAsCallHome is Validate for a mux request: the same checks as ValidateMux, with
// the info projected onto CallHomeInfo (the stream id as subject) so that request planes,
// which only carry CallHomeInfo, admit the request. The worker reads the full info with
// ValidateMux.
func (c RequestControl) validateMuxAsCallHome() (CallHomeInfo, error) {
	info, err := c.ValidateMux()
	if info.StreamID.IsNil() {
		return CallHomeInfo{}, err
	}
	return CallHomeInfo{
		Address:    info.Address,
		Subject:    info.StreamID.String(),
		Context:    info.Context,
		StreamType: StreamTypeResponse,
	}, err
}

// MuxHandshake is the first (header-only TwoPart) frame a worker sends on a mux connection.
type MuxHandshake struct {
	// Version is the mux version; 0 is written as MuxVersion.
	Version          uint32
	FrontendServerID UUID
	ConnectionID     UUID
}

// AppendMuxHandshake appends
// {"kind":"response_mux","version":1,"frontend_server_id":…,"connection_id":…}.
func AppendMuxHandshake(dst []byte, h MuxHandshake) []byte {
	dst = append(dst, `{"kind":"response_mux","version":`...)
	dst = strconv.AppendUint(dst, uint64(muxVersionOrDefault(h.Version)), 10)
	dst = append(dst, `,"frontend_server_id":"`...)
	dst = h.FrontendServerID.Append(dst)
	dst = append(dst, `","connection_id":"`...)
	dst = h.ConnectionID.Append(dst)
	return append(dst, `"}`...)
}

type wireMuxHandshake struct {
	Kind             *string `json:"kind"`
	Version          *uint32 `json:"version"`
	FrontendServerID *string `json:"frontend_server_id"`
	ConnectionID     *string `json:"connection_id"`
}

// IsMuxHandshake reports whether a call-home connection's first header is a mux handshake
// (a JSON object whose "kind" is "response_mux") rather than a classic CallHomeHandshake.
func IsMuxHandshake(header []byte) bool {
	if !bytes.Contains(header, []byte(MuxHandshakeKind)) {
		return false // cheap reject for every classic handshake
	}
	var w struct {
		Kind *string `json:"kind"`
	}
	return unmarshal(objMuxHandshake, header, &w) == nil && w.Kind != nil && *w.Kind == MuxHandshakeKind
}

// ParseMuxHandshake parses a mux handshake; every field is required and the version must be
// MuxVersion. Errors are *ControlError.
func ParseMuxHandshake(b []byte) (MuxHandshake, error) {
	var w wireMuxHandshake
	if ce := unmarshal(objMuxHandshake, b, &w); ce != nil {
		return MuxHandshake{}, ce
	}
	var missing string
	switch {
	case w.Kind == nil:
		missing = "kind"
	case w.Version == nil:
		missing = "version"
	case w.FrontendServerID == nil:
		missing = "frontend_server_id"
	case w.ConnectionID == nil:
		missing = "connection_id"
	}
	if missing != "" {
		return MuxHandshake{}, missingField(objMuxHandshake, missing)
	}
	if *w.Kind != MuxHandshakeKind {
		return MuxHandshake{}, malformed(objMuxHandshake, "unknown kind "+strconv.Quote(*w.Kind), nil)
	}
	if *w.Version != MuxVersion {
		return MuxHandshake{}, malformed(objMuxHandshake, "unsupported response mux version "+
			strconv.FormatUint(uint64(*w.Version), 10), nil)
	}
	fs, err := ParseUUID(*w.FrontendServerID)
	if err != nil {
		return MuxHandshake{}, malformed(objMuxHandshake, "frontend_server_id: "+err.Error(), err)
	}
	cid, err := ParseUUID(*w.ConnectionID)
	if err != nil {
		return MuxHandshake{}, malformed(objMuxHandshake, "connection_id: "+err.Error(), err)
	}
	return MuxHandshake{Version: *w.Version, FrontendServerID: fs, ConnectionID: cid}, nil
}

// AppendMuxHandshakeAck appends the requester's answer to a mux handshake: a TwoPart frame whose
// 20-byte header is [kind=8][flags=0][u16 reserved=0][16-byte nil UUID] and whose data is the
// u64 BE 0 (a ConnectionAck of zero bytes, in TwoPart clothing).
func AppendMuxHandshakeAck(dst []byte) []byte {
	var hdr [MuxHandshakeAckHeaderLen]byte
	hdr[0] = byte(MuxConnectionAck)
	var data [8]byte
	out, _ := AppendFrame(dst, hdr[:], data[:], 0) // no limit: cannot fail
	return out
}

// CheckMuxHandshakeAck checks that f is the handshake ack. Errors are *ControlError.
func CheckMuxHandshakeAck(f Frame) error {
	if len(f.Header) != MuxHandshakeAckHeaderLen || len(f.Data) != 8 {
		return malformed(objMuxAck, "expected a 20-byte header and 8-byte data, got "+
			strconv.Itoa(len(f.Header))+" and "+strconv.Itoa(len(f.Data))+" bytes", nil)
	}
	if MuxKind(f.Header[0]) != MuxConnectionAck || f.Header[1] != 0 || f.Header[2] != 0 || f.Header[3] != 0 ||
		!UUID(f.Header[4:20]).IsNil() || binary.BigEndian.Uint64(f.Data) != 0 {
		return malformed(objMuxAck, "unexpected handshake ack "+strconv.Quote(string(f.Header)), nil)
	}
	return nil
}
