package plane

// Header names carried on every plane (HTTP headers, TCP-plane JSON headers, NATS headers).
const (
	HeaderTraceParent      = "traceparent"
	HeaderTraceState       = "tracestate"
	HeaderXRequestID       = "x-request-id"
	HeaderRequestID        = "request-id"
	HeaderXDynamoRequestID = "x-dynamo-request-id"
)

// Meta is the per-request metadata that travels beside the frame: W3C trace context and the
// request id that logs and spans carry.
type Meta struct {
	// RequestID is the caller's request id (x-request-id); when empty, the control id is used.
	RequestID   string
	TraceParent string
	TraceState  string
	// ID is the frame's control id when the sender knows it, which spares a plane client the
	// parse (and the copy) of FrameID. Receiving planes leave it empty.
	ID string
}

// FrameID returns the control id of the request frame sent with m: m.ID when set, else
// ControlID(frame).
func (m Meta) FrameID(frame []byte) (string, error) {
	if m.ID != "" {
		return m.ID, nil
	}
	return ControlID(frame)
}

// Headers calls set for every header a requester sends (spec §5.1): traceparent/tracestate
// when tracing, x-request-id (the caller's id, else id) and request-id (= id).
func (m Meta) Headers(id string, set func(key, value string)) {
	if m.TraceParent != "" {
		set(HeaderTraceParent, m.TraceParent)
		if m.TraceState != "" {
			set(HeaderTraceState, m.TraceState)
		}
	}
	rid := m.RequestID
	if rid == "" {
		rid = id
	}
	set(HeaderXRequestID, rid)
	set(HeaderRequestID, id)
}

// MetaHeaders are the header keys MetaFromHeaders reads, for planes that pick them out of a
// request in one pass. Read-only.
var MetaHeaders = [...]string{HeaderTraceParent, HeaderTraceState, HeaderXRequestID, HeaderRequestID, HeaderXDynamoRequestID}

// MetaFromHeaders extracts Meta on receipt. get returns a header's value or "". The request id
// is x-request-id, else request-id, else x-dynamo-request-id, else the control message's id.
func MetaFromHeaders(get func(key string) string, id string) Meta {
	m := Meta{TraceParent: get(HeaderTraceParent), TraceState: get(HeaderTraceState)}
	for _, k := range [...]string{HeaderXRequestID, HeaderRequestID, HeaderXDynamoRequestID} {
		if v := get(k); v != "" {
			m.RequestID = v
			return m
		}
	}
	m.RequestID = id
	return m
}
