package config

import "strings"

// Names of the variables Load reads (spec §8, plus reqplane's DYN_MAX_INFLIGHT_REQUESTS).
const (
	EnvRequestPlane = "DYN_REQUEST_PLANE"

	EnvNATSServer              = "NATS_SERVER"
	EnvNATSAuthUsername        = "NATS_AUTH_USERNAME"
	EnvNATSAuthPassword        = "NATS_AUTH_PASSWORD"
	EnvNATSAuthToken           = "NATS_AUTH_TOKEN"
	EnvNATSAuthNKey            = "NATS_AUTH_NKEY"
	EnvNATSAuthCredentialsFile = "NATS_AUTH_CREDENTIALS_FILE"
	EnvNATSRequestTimeout      = "DYN_NATS_REQUEST_TIMEOUT_SECS"

	EnvEtcdEndpoints      = "ETCD_ENDPOINTS"
	EnvEtcdAuthUsername   = "ETCD_AUTH_USERNAME"
	EnvEtcdAuthPassword   = "ETCD_AUTH_PASSWORD"
	EnvEtcdAuthCA         = "ETCD_AUTH_CA"
	EnvEtcdAuthClientCert = "ETCD_AUTH_CLIENT_CERT"
	EnvEtcdAuthClientKey  = "ETCD_AUTH_CLIENT_KEY"
	EnvEtcdLeaseTTL       = "ETCD_LEASE_TTL"

	EnvHTTPHost           = "DYN_HTTP_RPC_HOST"
	EnvHTTPPort           = "DYN_HTTP_RPC_PORT"
	EnvHTTPRootPath       = "DYN_HTTP_RPC_ROOT_PATH"
	EnvHTTPRequestTimeout = "DYN_HTTP_REQUEST_TIMEOUT"

	EnvTCPHost           = "DYN_TCP_RPC_HOST"
	EnvTCPPort           = "DYN_TCP_RPC_PORT"
	EnvTCPRequestTimeout = "DYN_TCP_REQUEST_TIMEOUT"
	EnvTCPConnectTimeout = "DYN_TCP_CONNECT_TIMEOUT"
	EnvTCPPoolSize       = "DYN_TCP_POOL_SIZE"
	EnvTCPMaxMessageSize = "DYN_TCP_MAX_MESSAGE_SIZE"

	EnvResponseStreamHost    = "DYN_TCP_RESPONSE_STREAM_HOST"
	EnvResponseStreamPort    = "DYN_TCP_RESPONSE_STREAM_PORT"
	EnvResponseStreamTimeout = "DYN_TCP_RESPONSE_STREAM_TIMEOUT"

	EnvSystemHost                 = "DYN_SYSTEM_HOST"
	EnvSystemPort                 = "DYN_SYSTEM_PORT"
	EnvSystemHealthPath           = "DYN_SYSTEM_HEALTH_PATH"
	EnvSystemLivePath             = "DYN_SYSTEM_LIVE_PATH"
	EnvSystemStartingHealthStatus = "DYN_SYSTEM_STARTING_HEALTH_STATUS"

	EnvLog      = "DYN_LOG"
	EnvLogJSONL = "DYN_LOGGING_JSONL"

	EnvMaxInflightRequests = "DYN_MAX_INFLIGHT_REQUESTS"

	// OpenTelemetry's standard exporter variables: reqplane reads them only to decide whether
	// tracing is on and which exporter to build; the exporter reads the rest of OTEL_* itself.
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Where a value came from ([Var.Source]). A derived source reads "derived: " and the rule.
const (
	SourceEnv     = "env"
	SourceDefault = "default"
	sourceDerived = "derived: "
)

// Var is one variable's effective value and where it came from.
type Var struct {
	Name string `json:"name"`
	// Value is the effective value as text ("" when unset and without default). Secrets are masked.
	Value string `json:"value"`
	// Source is SourceEnv, SourceDefault or "derived: <rule>".
	Source string `json:"source"`
	// Note explains what the value means here (e.g. the advertised address, or why it is ignored).
	Note   string `json:"note,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// derived is the Source of a value another variable decided.
func derived(rule string) string { return sourceDerived + rule }

// redactURL masks the credentials in a URL's userinfo: the password, or the whole userinfo when it
// has none (NATS reads a bare userinfo as a token). It works on the text, not on url.Parse, so that
// a URL too broken to parse still comes out masked in error messages.
func redactURL(s string) string {
	authStart := 0
	if i := strings.Index(s, "://"); i >= 0 {
		authStart = i + len("://")
	}
	authEnd := len(s)
	if i := strings.IndexAny(s[authStart:], "/?#"); i >= 0 {
		authEnd = authStart + i
	}
	at := strings.LastIndexByte(s[authStart:authEnd], '@')
	if at < 0 {
		return s
	}
	userinfo := s[authStart : authStart+at]
	masked := masked
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		masked = user + ":" + masked
	}
	return s[:authStart] + masked + s[authStart+at:]
}

// redactURLList applies redactURL to each item of a list.
func redactURLList(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = redactURL(it)
	}
	return strings.Join(out, ",")
}

// redactRaw masks credentials in a raw comma-separated URL list, for error messages.
func redactRaw(raw string) string {
	items := strings.Split(raw, ",")
	for i, it := range items {
		items[i] = redactURL(strings.TrimSpace(it))
	}
	return strings.Join(items, ",")
}
