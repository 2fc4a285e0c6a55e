package config

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults (spec §8). Hosts have none here: they are derived, see Load.
const (
	DefaultNATSServer            = "nats://127.0.0.1:4222"
	DefaultEtcdEndpoint          = "http://127.0.0.1:2379"
	DefaultNATSRequestTimeout    = 10 * time.Second
	DefaultEtcdLeaseTTL          = 10 * time.Second
	DefaultHTTPPort              = 8081
	DefaultHTTPRootPath          = "/v1/dynamo"
	DefaultHTTPRequestTimeout    = 5 * time.Second
	DefaultTCPPort               = 0
	DefaultTCPRequestTimeout     = 5 * time.Second
	DefaultTCPConnectTimeout     = 5 * time.Second
	DefaultTCPPoolSize           = 100
	DefaultTCPMaxMessageSize     = 32 << 20
	DefaultResponseStreamPort    = 0
	DefaultResponseStreamTimeout = 30 * time.Second
	DefaultSystemHealthPath      = "/health"
	DefaultSystemLivePath        = "/live"
)

// Bounds of the integer variables.
const (
	// minMaxMessageSize is a TwoPart frame's prefix: no frame is smaller.
	minMaxMessageSize = 24
	// maxMaxMessageSize is the largest payload the TCP plane's u32 length can carry (or what an int
	// holds, on 32-bit platforms).
	maxMaxMessageSize = min(math.MaxUint32, math.MaxInt)
)

const (
	wantPoolSize       = "must be a whole number from 1 to 2147483647"
	wantMaxMessageSize = "must be a whole number of bytes from 24 (a frame's prefix) to 4294967295 (the TCP plane's u32 length)"
	wantMaxInflight    = "must be a whole number from 0 (unlimited) to 2147483647"
)

// allInterfacesIPv4 is what an unset host binds when it is not the one-machine-fleet case.
const allInterfacesIPv4 = "0.0.0.0"

// oneMachineRule explains hosts derived from an unset ETCD_ENDPOINTS.
const oneMachineRule = EnvEtcdEndpoints + " unset (one-machine fleet)"

// Options adjusts Load. The zero value is right for production.
type Options struct {
	// Interfaces lists the network interfaces for advertise-address detection; nil means
	// SystemInterfaces. Tests set it so that results never depend on the machine.
	Interfaces func() ([]Interface, error)
}

// Load reads the environment through lookup (os.LookupEnv in production, a map in tests).
// On any invalid value it returns a nil Config and every problem found, joined.
func Load(lookup func(string) (string, bool)) (*Config, error) {
	return Options{}.Load(lookup)
}

// FromEnv loads the process environment: Load(os.LookupEnv).
func FromEnv() (*Config, error) { return Load(os.LookupEnv) }

// Load reads the environment through lookup, as the package-level Load, with these options.
func (o Options) Load(lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		return nil, errors.New("config: Load needs a lookup function")
	}
	interfaces := o.Interfaces
	if interfaces == nil {
		interfaces = SystemInterfaces
	}
	l := &loader{lookup: lookup, interfaces: interfaces}
	cfg := &Config{}
	l.loadPlanes(cfg)
	l.loadNATS(cfg)
	l.loadEtcd(cfg)
	l.loadHTTP(cfg)
	l.loadTCP(cfg)
	l.loadResponseStream(cfg)
	l.loadSystem(cfg)
	l.loadLog(cfg)
	l.loadIngress(cfg)
	l.loadTracing(cfg)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	cfg.Vars = l.vars
	return cfg, nil
}

// loader carries one Load: what it read, what it found wrong, and the detection result it shares
// between hosts.
type loader struct {
	lookup     func(string) (string, bool)
	interfaces func() ([]Interface, error)
	vars       []Var
	errs       []error

	etcdDefaulted bool

	detected   bool
	detectAddr string
	detectNote string
	detectErr  error
}

func (l *loader) record(v Var) { l.vars = append(l.vars, v) }

// note annotates the recorded variable name (no-op if it was invalid and so not recorded).
func (l *loader) note(name, note string) {
	for i := range l.vars {
		if l.vars[i].Name == name {
			l.vars[i].Note = note
			return
		}
	}
}

func (l *loader) isSet(name string) bool {
	_, ok := l.lookup(name)
	return ok
}

// invalid records a bad value; secrets are masked in the error text as everywhere else.
func (l *loader) invalid(name, raw string, secret bool, err error) {
	switch {
	case secret:
		raw = Secret(raw).String()
	case name == EnvNATSServer || name == EnvEtcdEndpoints:
		raw = redactRaw(raw)
	}
	l.errs = append(l.errs, &VarError{Name: name, Value: raw, Reason: err.Error()})
}

// missing records a variable that must be set because another one is.
func (l *loader) missing(name, reason string) {
	l.errs = append(l.errs, &VarError{Name: name, Unset: true, Reason: reason})
}

// value reads a variable with a default: unset gives def; set must parse, and a bad value is an
// error (def is returned only to keep going and collect further errors).
func value[T any](l *loader, name string, def T, parse func(string) (T, error), show func(T) string) T {
	raw, ok := l.lookup(name)
	if !ok {
		l.record(Var{Name: name, Value: show(def), Source: SourceDefault})
		return def
	}
	v, err := parse(raw)
	if err != nil {
		l.invalid(name, raw, false, err)
		return def
	}
	l.record(Var{Name: name, Value: show(v), Source: SourceEnv})
	return v
}

// optional reads a variable without a default. set reports presence, even of an invalid value, so
// that rules between variables judge what the operator wrote.
func optional[T ~string](l *loader, name string, secret bool, parse func(string) (T, error)) (v T, set bool) {
	raw, ok := l.lookup(name)
	if !ok {
		l.record(Var{Name: name, Source: SourceDefault, Secret: secret})
		return v, false
	}
	v, err := parse(raw)
	if err != nil {
		l.invalid(name, raw, secret, err)
		return v, true
	}
	shown := string(v)
	if secret {
		shown = Secret(v).String()
	}
	l.record(Var{Name: name, Value: shown, Source: SourceEnv, Secret: secret})
	return v, true
}

func showDuration(d time.Duration) string { return d.String() }
func showInt(n int) string                { return strconv.Itoa(n) }
func showString(s string) string          { return s }
func showBool(b bool) string              { return strconv.FormatBool(b) }

func parseSecret(s string) (Secret, error) {
	v, err := parseNonEmpty(s)
	return Secret(v), err
}

func intParser(lo, hi int64, want string) func(string) (int, error) {
	return func(s string) (int, error) {
		n, err := parseInt(s, lo, hi, want)
		return int(n), err
	}
}

func (l *loader) loadPlanes(cfg *Config) {
	show := func(ps []Plane) string {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = string(p)
		}
		return strings.Join(names, ",")
	}
	cfg.RequestPlanes = value(l, EnvRequestPlane, []Plane{PlaneNATS}, parsePlanes, show)
	if raw, ok := l.lookup(EnvRequestPlane); ok && strings.Contains(strings.ToLower(raw), "http2") {
		l.note(EnvRequestPlane, "http2 is the http plane (HTTP/1.1 and h2c on one port)")
	}
}

func (l *loader) loadNATS(cfg *Config) {
	n := &cfg.NATS
	n.Servers = value(l, EnvNATSServer, URLs{DefaultNATSServer}, parseNATSServers, URLs.String)

	user, userSet := optional(l, EnvNATSAuthUsername, false, parseNonEmpty)
	pass, passSet := optional(l, EnvNATSAuthPassword, true, parseSecret)
	token, tokenSet := optional(l, EnvNATSAuthToken, true, parseSecret)
	nkey, nkeySet := optional(l, EnvNATSAuthNKey, true, parseNKeySeed)
	creds, credsSet := optional(l, EnvNATSAuthCredentialsFile, false, parseNonEmpty)
	l.requirePair(EnvNATSAuthUsername, userSet, EnvNATSAuthPassword, passSet)

	// The first method set wins (Dynamo's order); the others are shown as ignored, not dropped silently.
	methods := []struct {
		method NATSAuthMethod
		names  []string
		set    bool
	}{
		{NATSAuthUserPassword, []string{EnvNATSAuthUsername, EnvNATSAuthPassword}, userSet && passSet},
		{NATSAuthToken, []string{EnvNATSAuthToken}, tokenSet},
		{NATSAuthNKey, []string{EnvNATSAuthNKey}, nkeySet},
		{NATSAuthCredentialsFile, []string{EnvNATSAuthCredentialsFile}, credsSet},
	}
	n.Auth.Method = NATSAuthNone
	winner := ""
	for _, m := range methods {
		if !m.set {
			continue
		}
		if winner != "" {
			for _, name := range m.names {
				l.note(name, "ignored: "+winner+" takes precedence")
			}
			continue
		}
		winner = strings.Join(m.names, "+")
		n.Auth.Method = m.method
		for _, name := range m.names {
			l.note(name, "in use")
		}
	}
	switch n.Auth.Method {
	case NATSAuthUserPassword:
		n.Auth.Username, n.Auth.Password = user, pass
	case NATSAuthToken:
		n.Auth.Token = token
	case NATSAuthNKey:
		n.Auth.NKeySeed = nkey
	case NATSAuthCredentialsFile:
		n.Auth.CredentialsFile = creds
	}

	n.RequestTimeout = value(l, EnvNATSRequestTimeout, DefaultNATSRequestTimeout, parseTimeout, showDuration)
}

// requirePair reports one of two variables set without the other.
func (l *loader) requirePair(a string, aSet bool, b string, bSet bool) {
	switch {
	case aSet && !bSet:
		l.missing(b, "required when "+a+" is set")
	case bSet && !aSet:
		l.missing(a, "required when "+b+" is set")
	}
}

func (l *loader) loadEtcd(cfg *Config) {
	e := &cfg.Etcd
	e.EndpointsDefaulted = !l.isSet(EnvEtcdEndpoints)
	l.etcdDefaulted = e.EndpointsDefaulted
	e.Endpoints = value(l, EnvEtcdEndpoints, URLs{DefaultEtcdEndpoint}, parseEtcdEndpoints, URLs.String)
	if e.EndpointsDefaulted {
		l.note(EnvEtcdEndpoints, "one-machine fleet: unset hosts default to 127.0.0.1")
	}

	var userSet, passSet, certSet, keySet bool
	e.Username, userSet = optional(l, EnvEtcdAuthUsername, false, parseNonEmpty)
	e.Password, passSet = optional(l, EnvEtcdAuthPassword, true, parseSecret)
	e.CAFile, _ = optional(l, EnvEtcdAuthCA, false, parseNonEmpty)
	e.ClientCertFile, certSet = optional(l, EnvEtcdAuthClientCert, false, parseNonEmpty)
	e.ClientKeyFile, keySet = optional(l, EnvEtcdAuthClientKey, false, parseNonEmpty)
	l.requirePair(EnvEtcdAuthUsername, userSet, EnvEtcdAuthPassword, passSet)
	l.requirePair(EnvEtcdAuthClientCert, certSet, EnvEtcdAuthClientKey, keySet)

	e.LeaseTTL = value(l, EnvEtcdLeaseTTL, DefaultEtcdLeaseTTL, parseLeaseTTL, showDuration)
}

func (l *loader) loadHTTP(cfg *Config) {
	h := &cfg.HTTP
	h.BindHost, h.AdvertiseHost = l.host(EnvHTTPHost, hostIPOrName)
	h.Port = l.port(EnvHTTPPort, DefaultHTTPPort)
	h.RootPath = value(l, EnvHTTPRootPath, DefaultHTTPRootPath, parseRootPath, showString)
	if h.RootPath == "" {
		l.note(EnvHTTPRootPath, "endpoints are served at /{endpoint}")
	}
	h.RequestTimeout = value(l, EnvHTTPRequestTimeout, DefaultHTTPRequestTimeout, parseTimeout, showDuration)
}

func (l *loader) loadTCP(cfg *Config) {
	t := &cfg.TCP
	t.BindHost, t.AdvertiseHost = l.host(EnvTCPHost, hostIP)
	t.Port = l.port(EnvTCPPort, DefaultTCPPort)
	t.RequestTimeout = value(l, EnvTCPRequestTimeout, DefaultTCPRequestTimeout, parseTimeout, showDuration)
	t.ConnectTimeout = value(l, EnvTCPConnectTimeout, DefaultTCPConnectTimeout, parseTimeout, showDuration)
	t.PoolSize = value(l, EnvTCPPoolSize, DefaultTCPPoolSize, intParser(1, math.MaxInt32, wantPoolSize), showInt)
	t.MaxMessageSize = value(l, EnvTCPMaxMessageSize, DefaultTCPMaxMessageSize,
		intParser(minMaxMessageSize, maxMaxMessageSize, wantMaxMessageSize), showInt)
	l.note(EnvTCPMaxMessageSize, "bytes per frame, prefix included, on every plane")
}

func (l *loader) loadResponseStream(cfg *Config) {
	r := &cfg.ResponseStream
	r.BindHost, r.AdvertiseHost = l.host(EnvResponseStreamHost, hostIP)
	r.Port = l.port(EnvResponseStreamPort, DefaultResponseStreamPort)
	r.Timeout = value(l, EnvResponseStreamTimeout, DefaultResponseStreamTimeout, parseTimeout, showDuration)
}

func (l *loader) loadSystem(cfg *Config) {
	s := &cfg.System
	s.BindHost, s.AdvertiseHost = l.host(EnvSystemHost, hostIPOrName)
	if raw, ok := l.lookup(EnvSystemPort); !ok {
		l.record(Var{Name: EnvSystemPort, Source: SourceDefault, Note: "status server off"})
	} else if port, err := parsePort(raw); err != nil {
		l.invalid(EnvSystemPort, raw, false, err)
	} else {
		s.Enabled, s.Port = true, port
		note := "status server on"
		if port == 0 {
			note = "status server on an OS-assigned port"
		}
		l.record(Var{Name: EnvSystemPort, Value: showInt(port), Source: SourceEnv, Note: note})
	}
	s.HealthPath = value(l, EnvSystemHealthPath, DefaultSystemHealthPath, parseStatusPath, showString)
	s.LivePath = value(l, EnvSystemLivePath, DefaultSystemLivePath, parseStatusPath, showString)
	s.StartingHealthStatus = value(l, EnvSystemStartingHealthStatus, HealthNotReady, parseHealthStatus,
		func(h HealthStatus) string { return string(h) })
}

func (l *loader) loadLog(cfg *Config) {
	cfg.Log.Level = value(l, EnvLog, slog.LevelInfo, parseLogLevel, logLevelName)
	cfg.Log.JSON = value(l, EnvLogJSONL, false, parseBool, showBool)
}

// loadTracing follows OpenTelemetry's rules: an empty variable counts as unset, and the
// signal-specific TRACES variables win over the general ones.
func (l *loader) loadTracing(cfg *Config) {
	t := &cfg.Tracing
	general := l.otlpEndpoint(EnvOTLPEndpoint)
	traces := l.otlpEndpoint(EnvOTLPTracesEndpoint)
	switch {
	case traces != "":
		t.Enabled, t.Endpoint = true, traces
		l.note(EnvOTLPTracesEndpoint, "tracing on: spans exported here")
		if general != "" {
			l.note(EnvOTLPEndpoint, "ignored for traces: "+EnvOTLPTracesEndpoint+" takes precedence")
		}
	case general != "":
		t.Enabled, t.Endpoint = true, general
		l.note(EnvOTLPEndpoint, "tracing on: spans exported to this endpoint's /v1/traces (http) or to it (grpc)")
	default:
		l.note(EnvOTLPEndpoint, "tracing off")
	}
	proto := l.otlpProtocol(EnvOTLPProtocol, OTLPHTTPProtobuf)
	t.Protocol = l.otlpProtocol(EnvOTLPTracesProtocol, proto)
	if traces == "" && general != "" && t.Protocol == OTLPHTTPProtobuf {
		// OpenTelemetry: the general endpoint is a base URL to which http exporters append the
		// signal's path; the TRACES one is used as is.
		t.Endpoint = strings.TrimRight(general, "/") + "/v1/traces"
	}
}

// otlpEndpoint records an OTLP endpoint variable; empty means unset.
func (l *loader) otlpEndpoint(name string) string {
	raw, ok := l.lookup(name)
	if !ok || raw == "" {
		l.record(Var{Name: name, Source: SourceDefault})
		return ""
	}
	l.record(Var{Name: name, Value: redactURL(raw), Source: SourceEnv})
	return raw
}

// otlpProtocol records an OTLP protocol variable; empty means unset, which gives def.
func (l *loader) otlpProtocol(name string, def OTLPProtocol) OTLPProtocol {
	raw, ok := l.lookup(name)
	if !ok || raw == "" {
		l.record(Var{Name: name, Value: string(def), Source: SourceDefault})
		return def
	}
	p, err := parseOTLPProtocol(raw)
	if err != nil {
		l.invalid(name, raw, false, err)
		return def
	}
	l.record(Var{Name: name, Value: string(p), Source: SourceEnv})
	return p
}

func (l *loader) loadIngress(cfg *Config) {
	cfg.Ingress.MaxInflightRequests = value(l, EnvMaxInflightRequests, 0,
		intParser(0, math.MaxInt32, wantMaxInflight), showInt)
	if cfg.Ingress.MaxInflightRequests == 0 {
		l.note(EnvMaxInflightRequests, "unlimited")
	}
}

func (l *loader) port(name string, def int) int {
	p := value(l, name, def, parsePort, showInt)
	if p == 0 {
		l.note(name, "OS-assigned; the real port is advertised")
	}
	return p
}

// host resolves a listener's host variable into what to bind and what to advertise (spec §8):
// a specific address is both; an unset variable or 0.0.0.0/:: binds all interfaces and advertises
// the detected address; and with ETCD_ENDPOINTS unset, an unset host is 127.0.0.1 for both.
func (l *loader) host(name string, kind hostKind) (bind, advertise string) {
	raw, set := l.lookup(name)
	if !set && l.etcdDefaulted {
		lo := loopbackIPv4().String()
		l.record(Var{Name: name, Value: lo, Source: derived(oneMachineRule), Note: "advertised as " + lo})
		return lo, lo
	}
	source := SourceEnv
	bind = raw
	if !set {
		source, bind = SourceDefault, allInterfacesIPv4
	} else {
		h, err := parseHost(raw, kind)
		if err != nil {
			l.invalid(name, raw, false, err)
			return "", ""
		}
		if h.name != "" || !h.ip.IsUnspecified() {
			if h.ip.IsValid() {
				bind = h.ip.String()
			}
			l.record(Var{Name: name, Value: bind, Source: SourceEnv, Note: "advertised as " + bind})
			return bind, bind
		}
		bind = h.ip.String()
	}
	adv, note, err := l.detect()
	if err != nil {
		l.errs = append(l.errs, &VarError{Name: name, Value: raw, Unset: !set, Err: err,
			Reason: "binds all interfaces, but the address to advertise cannot be detected (" + err.Error() +
				"); set a specific IP"})
		return "", ""
	}
	l.record(Var{Name: name, Value: bind, Source: source, Note: "all interfaces; advertised as " + adv + note})
	return bind, adv
}

// detect finds the advertise address once per Load, so every listener advertises the same one.
func (l *loader) detect() (addr, note string, err error) {
	if !l.detected {
		l.detected = true
		ifaces, err := l.interfaces()
		if err != nil {
			l.detectErr = err
		} else {
			a, iface := DetectAdvertiseAddr(ifaces)
			l.detectAddr = a.String()
			if iface != "" {
				l.detectNote = " (auto-detected on " + iface + ")"
			} else {
				l.detectNote = " (auto-detected: no other usable address)"
			}
		}
	}
	return l.detectAddr, l.detectNote, l.detectErr
}
