package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// InstancesRoot is the etcd prefix under which every endpoint instance is registered.
const InstancesRoot = "v1/instances/"

// ErrInvalidName reports a namespace, component or endpoint name that cannot be used.
var ErrInvalidName = errors.New("invalid endpoint name")

// ErrInvalidKey reports an etcd key that is not v1/instances/{ns}/{comp}/{ep}/{id:x}.
var ErrInvalidKey = errors.New("invalid instance key")

// NameError is the typed form of ErrInvalidName: which part of an EndpointID is wrong and why.
type NameError struct {
	Field  string // "namespace", "component" or "endpoint"
	Value  string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidName) true.
func (e *NameError) Is(target error) bool { return target == ErrInvalidName }

// EndpointID names an endpoint: namespace/component/endpoint.
type EndpointID struct {
	Namespace string
	Component string
	Endpoint  string
}

// String returns "ns/comp/ep".
func (e EndpointID) String() string {
	return e.Namespace + "/" + e.Component + "/" + e.Endpoint
}

// Validate reports whether every name matches ^[a-z0-9_-]+$, as spec §4 says names SHOULD:
// names go verbatim into etcd keys, URL paths and NATS subjects. reqplane's workers refuse to
// register other names. Readers (watchers, "reqplane ls") only need ValidateKey, since other
// writers (Dynamo) may use names outside the pattern.
func (e EndpointID) Validate() error {
	for _, p := range e.parts() {
		if err := checkKeySegment(p.field, p.value); err != nil {
			return err
		}
		for i := 0; i < len(p.value); i++ {
			if !nameByte(p.value[i]) {
				return &NameError{Field: p.field, Value: p.value, Reason: "must match ^[a-z0-9_-]+$"}
			}
		}
	}
	return nil
}

// ValidateKey is the readers' check: every name is non-empty and has no '/', so the names
// form a well-delimited key prefix. Unlike Validate it accepts names outside ^[a-z0-9_-]+$.
func (e EndpointID) ValidateKey() error {
	for _, p := range e.parts() {
		if err := checkKeySegment(p.field, p.value); err != nil {
			return err
		}
	}
	return nil
}

type namePart struct{ field, value string }

func (e EndpointID) parts() [3]namePart {
	return [3]namePart{{"namespace", e.Namespace}, {"component", e.Component}, {"endpoint", e.Endpoint}}
}

func checkKeySegment(field, v string) error {
	switch {
	case v == "":
		return &NameError{Field: field, Value: v, Reason: "must not be empty"}
	case strings.Contains(v, "/"):
		return &NameError{Field: field, Value: v, Reason: "must not contain '/'"}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ParseEndpointID parses "ns/comp/ep". Each part must be non-empty and the string must have
// exactly three parts; the SHOULD-pattern of Validate is not enforced, so names written by
// other runtimes can be addressed.
func ParseEndpointID(s string) (EndpointID, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return EndpointID{}, fmt.Errorf("%w: %q is not namespace/component/endpoint", ErrInvalidName, s)
	}
	id := EndpointID{Namespace: parts[0], Component: parts[1], Endpoint: parts[2]}
	if err := id.ValidateKey(); err != nil {
		return EndpointID{}, err
	}
	return id, nil
}

// Prefix returns the etcd prefix of the endpoint's instances, v1/instances/{ns}/{comp}/{ep}/.
// The trailing '/' keeps "gen" from matching "generate".
func (e EndpointID) Prefix() string {
	return InstancesRoot + e.Namespace + "/" + e.Component + "/" + e.Endpoint + "/"
}

// Key returns the etcd key of one instance: Prefix() followed by the id in lowercase hex.
func (e EndpointID) Key(id uint64) string {
	return e.Prefix() + FormatInstanceID(id)
}

// FormatInstanceID formats an instance id as it appears in keys, paths and subjects:
// lowercase hex, no padding, no 0x.
func FormatInstanceID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseInstanceID parses the canonical hex form written by FormatInstanceID. Upper case and
// leading zeros are refused so that each id has exactly one key.
func ParseInstanceID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || FormatInstanceID(id) != s {
		return 0, fmt.Errorf("%w: instance id %q is not lowercase hex", ErrInvalidKey, s)
	}
	return id, nil
}

// ParseKey splits an instance key v1/instances/{ns}/{comp}/{ep}/{id:x} into its endpoint and
// instance id.
func ParseKey(key string) (EndpointID, uint64, error) {
	rest, ok := strings.CutPrefix(key, InstancesRoot)
	if !ok {
		return EndpointID{}, 0, fmt.Errorf("%w: %q is not under %s", ErrInvalidKey, key, InstancesRoot)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return EndpointID{}, 0, fmt.Errorf("%w: %q is not %s{ns}/{comp}/{ep}/{id}", ErrInvalidKey, key, InstancesRoot)
	}
	ep := EndpointID{Namespace: parts[0], Component: parts[1], Endpoint: parts[2]}
	if err := ep.ValidateKey(); err != nil {
		return EndpointID{}, 0, fmt.Errorf("%w: %q: %w", ErrInvalidKey, key, err)
	}
	id, err := ParseInstanceID(parts[3])
	if err != nil {
		return EndpointID{}, 0, fmt.Errorf("%w (key %q)", err, key)
	}
	return ep, id, nil
}

// InstancesPrefix returns the etcd prefix that selects the instances under path, which is
// "", "ns", "ns/comp" or "ns/comp/ep" (as "reqplane ls" takes it). The result always ends in
// '/' so that "gen" does not select "generate".
func InstancesPrefix(path string) (string, error) {
	if path == "" {
		return InstancesRoot, nil
	}
	parts := strings.Split(path, "/")
	if len(parts) > 3 {
		return "", fmt.Errorf("%w: %q has more than namespace/component/endpoint", ErrInvalidName, path)
	}
	fields := [...]string{"namespace", "component", "endpoint"}
	for i, p := range parts {
		if p == "" {
			return "", &NameError{Field: fields[i], Value: p, Reason: "must not be empty"}
		}
	}
	return InstancesRoot + strings.Join(parts, "/") + "/", nil
}
