package config

import (
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"
)

// Config is the effective configuration of one reqplane process.
type Config struct {
	// RequestPlanes is DYN_REQUEST_PLANE: never empty, without duplicates, in the order given. A worker
	// serves every plane; a requester takes them as its order of preference.
	RequestPlanes []Plane

	NATS           NATS
	Etcd           Etcd
	HTTP           HTTP
	TCP            TCP
	ResponseStream ResponseStream
	System         System
	Log            Log
	Ingress        Ingress
	Tracing        Tracing

	// Vars lists every variable Load knows, in documentation order, with its effective value and
	// source. Secret values are already masked, so Vars is safe to print.
	Vars []Var
}

// HasPlane reports whether p is one of the configured request planes.
func (c *Config) HasPlane(p Plane) bool { return slices.Contains(c.RequestPlanes, p) }

// Plane is a request plane. DYN_REQUEST_PLANE's "http2" is [PlaneHTTP]: the HTTP plane always
// speaks HTTP/1.1 and h2c on one port, so the two names select the same transport.
type Plane string

// The request planes (spec §5).
const (
	PlaneNATS Plane = "nats"
	PlaneHTTP Plane = "http"
	PlaneTCP  Plane = "tcp"
)

// Listener is where a server listens and what it tells peers to dial.
type Listener struct {
	// BindHost is the host to listen on: an IP literal, or for the HTTP and system servers possibly a
	// host name. "0.0.0.0" or "::" listens on every interface.
	BindHost string
	// AdvertiseHost is the host peers dial (it goes into discovery records and call-home info). It is
	// never an unspecified address: when BindHost is one, it is the auto-detected address.
	AdvertiseHost string
	// Port is the port to listen on; 0 lets the OS pick one, which the server then advertises.
	Port int
}

// BindAddr is the host:port to pass to net.Listen.
func (l Listener) BindAddr() string { return net.JoinHostPort(l.BindHost, strconv.Itoa(l.Port)) }

// AdvertiseAddr is the host:port peers dial, given the port actually bound (Port may be 0). IPv6
// hosts come out bracketed.
func (l Listener) AdvertiseAddr(boundPort int) string {
	return net.JoinHostPort(l.AdvertiseHost, strconv.Itoa(boundPort))
}

// NATS configures the NATS request plane client and server.
type NATS struct {
	// Servers are nats:// URLs (NATS_SERVER, comma-separated), credentials in them included.
	Servers URLs
	Auth    NATSAuth
	// RequestTimeout bounds the wait for a worker's ack (DYN_NATS_REQUEST_TIMEOUT_SECS).
	RequestTimeout time.Duration
}

// NATSAuthMethod says which NATS credentials are in use.
type NATSAuthMethod string

// NATS authentication methods, in the order in which the variables are tried.
const (
	NATSAuthNone            NATSAuthMethod = "none"
	NATSAuthUserPassword    NATSAuthMethod = "user_password"
	NATSAuthToken           NATSAuthMethod = "token"
	NATSAuthNKey            NATSAuthMethod = "nkey"
	NATSAuthCredentialsFile NATSAuthMethod = "credentials_file"
)

// NATSAuth holds the NATS credentials of the first method set; fields of the other methods are empty.
type NATSAuth struct {
	Method          NATSAuthMethod
	Username        string
	Password        Secret
	Token           Secret
	NKeySeed        Secret // a user nkey seed ("SU…")
	CredentialsFile string // path to a .creds file
}

// Etcd configures the etcd client used for discovery.
type Etcd struct {
	// Endpoints are ETCD_ENDPOINTS, as given (http://host:port, https://host:port or host:port).
	Endpoints URLs
	// EndpointsDefaulted is true when ETCD_ENDPOINTS was unset: the fleet is this one machine, so
	// unset hosts default to 127.0.0.1 (spec §8).
	EndpointsDefaulted bool
	Username           string
	Password           Secret
	CAFile             string
	ClientCertFile     string
	ClientKeyFile      string
	// LeaseTTL is the worker's lease TTL, a whole number of seconds >= 1.
	LeaseTTL time.Duration
}

// HTTP configures the HTTP request plane.
type HTTP struct {
	Listener
	// RootPath prefixes endpoint URLs ("{root}/{endpoint}"); it starts with "/" unless it is empty
	// (DYN_HTTP_RPC_ROOT_PATH="/"), and never ends with "/".
	RootPath string
	// RequestTimeout bounds the wait for the worker's 202.
	RequestTimeout time.Duration
}

// TCP configures the TCP request plane and the frame size limit shared by every plane.
type TCP struct {
	Listener
	RequestTimeout time.Duration
	ConnectTimeout time.Duration
	// PoolSize is the number of connections a client keeps per worker address.
	PoolSize int
	// MaxMessageSize bounds every TwoPart frame, its 24-byte prefix included, on every plane.
	MaxMessageSize int
}

// ResponseStream configures the requester's call-home listener (the TCP response plane).
type ResponseStream struct {
	Listener
	// Timeout bounds the wait from a worker's ack to its prologue.
	Timeout time.Duration
}

// System configures the status server (health, liveness, metrics).
type System struct {
	// Enabled is true when DYN_SYSTEM_PORT is set; the server is off otherwise.
	Enabled bool
	Listener
	HealthPath           string
	LivePath             string
	StartingHealthStatus HealthStatus
}

// HealthStatus is what the status server reports before the worker says otherwise.
type HealthStatus string

// Health statuses accepted by DYN_SYSTEM_STARTING_HEALTH_STATUS.
const (
	HealthReady    HealthStatus = "ready"
	HealthNotReady HealthStatus = "notready"
)

// Log configures logging.
type Log struct {
	Level slog.Level
	// JSON selects JSON lines instead of text.
	JSON bool
}

// Tracing says whether spans are exported with OpenTelemetry's OTLP exporter.
type Tracing struct {
	// Enabled is true when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set
	// to a non-empty value; tracing is off (no-op) otherwise.
	Enabled bool
	// Endpoint is where spans go, credentials included: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as
	// is, else OTEL_EXPORTER_OTLP_ENDPOINT (with "/v1/traces" appended for http/protobuf, as
	// OpenTelemetry specifies).
	Endpoint string
	// Protocol is the OTLP protocol: OTLPGRPC or OTLPHTTPProtobuf (the default, as OpenTelemetry
	// specifies).
	Protocol OTLPProtocol
}

// OTLPProtocol is an OTLP exporter protocol.
type OTLPProtocol string

// The OTLP protocols the exporter speaks (http/json has no Go exporter).
const (
	OTLPGRPC         OTLPProtocol = "grpc"
	OTLPHTTPProtobuf OTLPProtocol = "http/protobuf"
)

// Ingress configures a worker's request intake.
type Ingress struct {
	// MaxInflightRequests caps the requests a worker process handles at once; beyond it requests are
	// refused with "Server overloaded: in-flight request limit reached". 0 = unlimited.
	MaxInflightRequests int
}

// URLs is a list of server URLs that may carry credentials in their userinfo. Like Secret, it
// formats, marshals and logs with those masked; range over it or convert it to []string for the
// real values.
type URLs []string

// String joins the URLs with commas, credentials masked.
func (u URLs) String() string { return redactURLList(u) }

// GoString masks credentials for %#v too.
func (u URLs) GoString() string { return strconv.Quote(u.String()) }

// MarshalJSON encodes the URLs as a JSON array, credentials masked.
func (u URLs) MarshalJSON() ([]byte, error) {
	masked := make([]string, len(u))
	for i, s := range u {
		masked[i] = redactURL(s)
	}
	return json.Marshal(masked)
}

// LogValue masks credentials in log/slog output.
func (u URLs) LogValue() slog.Value { return slog.StringValue(u.String()) }

// Secret is a credential. It formats, marshals and logs masked, so printing a Config (or any struct
// holding one) never leaks it; use string(s) where the real value is needed.
type Secret string

const masked = "********"

// String returns a mask, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString masks the secret for %#v too.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText masks the secret in JSON, text and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue masks the secret in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
