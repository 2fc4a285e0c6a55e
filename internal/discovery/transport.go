package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// TransportKind is the tag of a transport in a discovery record.
type TransportKind string

// The transport variants of spec §4.
const (
	KindNATS TransportKind = "nats_tcp" // address: NATS subject {ns}_{comp}.{ep}-{id:x}
	KindHTTP TransportKind = "http"     // address: http://{host}:{port}{root}/{ep}
	KindTCP  TransportKind = "tcp"      // address: {ip}:{port}/{id:x}/{ep}
)

// Known reports whether k is one of the variants reqplane can dial. Readers keep unknown
// kinds (a newer writer may add some) and leave it to the router to skip them.
func (k TransportKind) Known() bool {
	return k == KindNATS || k == KindHTTP || k == KindTCP
}

// Transport is one request-plane address of an instance, encoded as the externally tagged
// JSON object {"nats_tcp":"…"}, {"http":"…"} or {"tcp":"…"}.
type Transport struct {
	Kind    TransportKind
	Address string
}

// String returns "kind:address" for logs and tables.
func (t Transport) String() string { return string(t.Kind) + ":" + t.Address }

// MarshalJSON writes {"kind":"address"} as serde_json does (no HTML escaping).
func (t Transport) MarshalJSON() ([]byte, error) {
	if t.Kind == "" {
		return nil, errors.New("discovery: transport has no kind")
	}
	return t.appendJSON(nil), nil
}

func (t Transport) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendJSONString(b, string(t.Kind))
	b = append(b, ':')
	b = appendJSONString(b, t.Address)
	return append(b, '}')
}

// UnmarshalJSON reads an object with exactly one member whose value is a string.
func (t *Transport) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("transport is not a JSON object")
	}
	var out Transport
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("transport: %w", err)
		}
		key, _ := tok.(string)
		var addr string
		if err := dec.Decode(&addr); err != nil {
			return fmt.Errorf("transport %q: address is not a string", key)
		}
		out = Transport{Kind: TransportKind(key), Address: addr}
		n++
	}
	if n != 1 {
		return fmt.Errorf("transport has %d members, want exactly one", n)
	}
	if out.Kind == "" {
		return errors.New("transport has an empty kind")
	}
	*t = out
	return nil
}

// NATSSubject returns the NATS subject of an instance's endpoint: {ns}_{comp}.{ep}-{id:x}.
func NATSSubject(ep EndpointID, id uint64) string {
	return ep.Namespace + "_" + ep.Component + "." + ep.Endpoint + "-" + FormatInstanceID(id)
}

// HTTPURL returns http://{host}:{port}{root}/{ep}, with an IPv6 host in brackets. root is the
// server's path prefix (e.g. /v1/dynamo); a missing leading '/' is added and a trailing one
// dropped, so "/v1/dynamo", "v1/dynamo/" and "" all give well-formed URLs.
func HTTPURL(host string, port int, root, ep string) string {
	root = strings.TrimRight(root, "/")
	if root != "" && root[0] != '/' {
		root = "/" + root
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + root + "/" + ep
}

// TCPAddress returns the TCP-plane address {ip}:{port}/{id:x}/{ep} (IPv6 in brackets): the
// socket address, then the path the server routes by.
func TCPAddress(ip string, port int, id uint64, ep string) string {
	return net.JoinHostPort(ip, strconv.Itoa(port)) + "/" + FormatInstanceID(id) + "/" + ep
}
