package reqplane

import (
	"fmt"
	"strconv"
	"strings"
)

// EndpointID names an endpoint: "namespace/component/endpoint".
type EndpointID struct {
	Namespace string
	Component string
	Endpoint  string
}

// String returns "namespace/component/endpoint".
func (e EndpointID) String() string { return e.Namespace + "/" + e.Component + "/" + e.Endpoint }

// ParseEndpointID parses "namespace/component/endpoint".
func ParseEndpointID(s string) (EndpointID, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return EndpointID{}, fmt.Errorf("endpoint %q: want namespace/component/endpoint", s)
	}
	return EndpointID{Namespace: parts[0], Component: parts[1], Endpoint: parts[2]}, nil
}

// InstanceID identifies a worker process: its etcd lease id. It prints as lowercase hex, as
// in discovery keys, NATS subjects and TCP paths.
type InstanceID uint64

// String returns the id in lowercase hex without padding.
func (id InstanceID) String() string { return strconv.FormatUint(uint64(id), 16) }

// ParseInstanceID parses a hex instance id, with or without a 0x prefix.
func ParseInstanceID(s string) (InstanceID, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("instance id %q: want a hexadecimal lease id such as 694d98147d54be25", s)
	}
	return InstanceID(v), nil
}
