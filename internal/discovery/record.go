package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// RecordType is the "type" tag of an endpoint record.
const RecordType = "Endpoint"

var (
	// ErrNotEndpoint is returned by ParseRecord for a tagged value of another type (Dynamo stores
	// other kinds of instances too). Readers skip such values silently.
	ErrNotEndpoint = errors.New("discovery value is not an Endpoint record")
	// ErrMalformedRecord is wrapped by every other ParseRecord failure. Readers log such a value
	// once and skip it.
	ErrMalformedRecord = errors.New("malformed discovery record")
)

// Record is the value stored under an instance key (spec §4, vector V11).
//
// Transport is the first request plane the worker serves. Planes lists every plane in the
// worker's order (Planes[0] == Transport) and is written as "transports" only when it says
// more than Transport does: a one-plane record has Planes == nil and is byte-identical to
// the record Dynamo writes.
type Record struct {
	Namespace  string
	Component  string
	Endpoint   string
	InstanceID uint64
	Transport  Transport
	Planes     []Transport
	// ResponseMux is the version of the multiplexed call-home (response mux) the worker speaks,
	// 0 for none. [reqplane] It is written as "response_mux" only when set, so that records
	// without it stay byte-identical to Dynamo's; requesters offer the mux only to workers that
	// advertise it (spec §13: a worker cannot fall back).
	ResponseMux uint32
}

// NewRecord builds the record of one instance serving ep on the given planes, in order of
// preference. It sets Planes only for more than one plane.
func NewRecord(ep EndpointID, id uint64, planes ...Transport) Record {
	r := Record{Namespace: ep.Namespace, Component: ep.Component, Endpoint: ep.Endpoint, InstanceID: id}
	if len(planes) > 0 {
		r.Transport = planes[0]
	}
	if len(planes) > 1 {
		r.Planes = slices.Clone(planes)
	}
	return r
}

// EndpointID returns the endpoint the record belongs to.
func (r Record) EndpointID() EndpointID {
	return EndpointID{Namespace: r.Namespace, Component: r.Component, Endpoint: r.Endpoint}
}

// Key returns the etcd key the record is stored under.
func (r Record) Key() string { return r.EndpointID().Key(r.InstanceID) }

// Transports returns the candidate planes: Planes when present, else Transport alone.
func (r Record) Transports() []Transport {
	if len(r.Planes) > 0 {
		return slices.Clone(r.Planes)
	}
	return []Transport{r.Transport}
}

// Equal reports whether two records are the same, field by field.
func (r Record) Equal(o Record) bool {
	return r.Namespace == o.Namespace && r.Component == o.Component && r.Endpoint == o.Endpoint &&
		r.InstanceID == o.InstanceID && r.Transport == o.Transport && slices.Equal(r.Planes, o.Planes) &&
		r.ResponseMux == o.ResponseMux
}

// writesPlanes reports whether "transports" carries information beyond "transport".
func (r Record) writesPlanes() bool {
	return len(r.Planes) > 1 || len(r.Planes) == 1 && r.Planes[0] != r.Transport
}

// MarshalRecord encodes r in the tagged form, compact, fields in serde order, no HTML
// escaping, instance_id as an unsigned decimal:
//
//	{"type":"Endpoint","component":C,"endpoint":E,"namespace":NS,"instance_id":ID,"transport":T[,"transports":[…]][,"response_mux":V]}
func MarshalRecord(r Record) ([]byte, error) {
	if r.Transport.Kind == "" {
		return nil, errors.New("discovery: cannot encode a record without a transport")
	}
	for _, t := range r.Planes {
		if t.Kind == "" {
			return nil, errors.New("discovery: cannot encode a record with a transport without kind")
		}
	}
	b := make([]byte, 0, 160+len(r.Transport.Address)*(1+len(r.Planes)))
	b = append(b, `{"type":"Endpoint","component":`...)
	b = appendJSONString(b, r.Component)
	b = append(b, `,"endpoint":`...)
	b = appendJSONString(b, r.Endpoint)
	b = append(b, `,"namespace":`...)
	b = appendJSONString(b, r.Namespace)
	b = append(b, `,"instance_id":`...)
	b = strconv.AppendUint(b, r.InstanceID, 10)
	b = append(b, `,"transport":`...)
	b = r.Transport.appendJSON(b)
	if r.writesPlanes() {
		b = append(b, `,"transports":[`...)
		for i, t := range r.Planes {
			if i > 0 {
				b = append(b, ',')
			}
			b = t.appendJSON(b)
		}
		b = append(b, ']')
	}
	if r.ResponseMux != 0 {
		b = append(b, `,"response_mux":`...)
		b = strconv.AppendUint(b, uint64(r.ResponseMux), 10)
	}
	return append(b, '}'), nil
}

// ParseRecord decodes a discovery value. It accepts the tagged form, the older untagged form
// (no "type", possibly pretty-printed), unknown fields and any u64 instance_id. A value tagged
// with another type returns ErrNotEndpoint; anything else that is not a valid endpoint record
// returns an error wrapping ErrMalformedRecord. Field names match exactly, as serde's do.
func ParseRecord(data []byte) (Record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformedRecord, err)
	}
	if fields == nil {
		return Record{}, fmt.Errorf("%w: not a JSON object", ErrMalformedRecord)
	}
	if raw, ok := fields["type"]; ok {
		var typ string
		if err := decodeField(raw, &typ); err != nil {
			return Record{}, fmt.Errorf("%w: field \"type\": %v", ErrMalformedRecord, err)
		}
		if typ != RecordType {
			return Record{}, fmt.Errorf("%w: type %q", ErrNotEndpoint, typ)
		}
	}
	var r Record
	for _, f := range [...]struct {
		name string
		dst  any
	}{
		{"component", &r.Component},
		{"endpoint", &r.Endpoint},
		{"namespace", &r.Namespace},
		{"instance_id", &r.InstanceID},
		{"transport", &r.Transport},
	} {
		raw, ok := fields[f.name]
		if !ok {
			return Record{}, fmt.Errorf("%w: missing field %q", ErrMalformedRecord, f.name)
		}
		if err := decodeField(raw, f.dst); err != nil {
			return Record{}, fmt.Errorf("%w: field %q: %v", ErrMalformedRecord, f.name, err)
		}
	}
	if raw, ok := fields["transports"]; ok && string(raw) != "null" {
		var planes []Transport
		if err := json.Unmarshal(raw, &planes); err != nil {
			return Record{}, fmt.Errorf("%w: field \"transports\": %v", ErrMalformedRecord, err)
		}
		r.Planes = planes
		if !r.writesPlanes() {
			// An empty list, or one that repeats "transport", adds nothing: normalise it away so
			// that a parsed record re-encodes to what it means.
			r.Planes = nil
		}
	}
	if raw, ok := fields["response_mux"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &r.ResponseMux); err != nil {
			return Record{}, fmt.Errorf("%w: field \"response_mux\": %v", ErrMalformedRecord, err)
		}
	}
	return r, nil
}

// decodeField decodes one required member, refusing null (which encoding/json would
// silently decode as a zero value).
func decodeField(raw json.RawMessage, dst any) error {
	if string(raw) == "null" {
		return errors.New("is null")
	}
	return json.Unmarshal(raw, dst)
}
