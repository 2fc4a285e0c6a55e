package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// What each kind of variable accepts; these texts end every error about a bad value.
const (
	wantPlanes       = "must be a comma-separated list of nats, http, http2, tcp"
	wantTimeout      = "must be a whole number of seconds > 0 or a Go duration > 0 such as 1500ms or 2m"
	wantLeaseTTL     = "must be a whole number of seconds from 1 to 9000000000, or a Go duration of whole seconds such as 30s"
	wantPort         = "must be an integer from 0 to 65535"
	wantBool         = "must be one of 1, 0, true, false, yes, no, on, off"
	wantLogLevel     = "must be one of debug, info, warn, error"
	wantHealthStatus = "must be ready or notready"
	wantNATSServers  = "must be a comma-separated list of nats://host[:port] URLs"
	wantEtcd         = "must be a comma-separated list of http://host:port, https://host:port or host:port endpoints"
	wantRootPath     = "must be a URL path starting with / (a trailing / is removed)"
	wantStatusPath   = "must be a URL path starting with /, other than /metrics"
	wantOTLPProtocol = "must be grpc or http/protobuf (http/json is not supported)"
	wantNKeySeed     = "must be a NATS user nkey seed (58 characters of A-Z and 2-7, starting with SU)"
	wantNonEmpty     = "must not be empty (unset the variable instead)"
)

// maxLeaseTTLSeconds is etcd's own upper bound on a lease TTL.
const maxLeaseTTLSeconds = 9_000_000_000

// isDigits reports whether s is a non-empty run of ASCII digits: no sign, no spaces.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseInt parses a decimal integer in [lo, hi]; want is the error text otherwise.
func parseInt(s string, lo, hi int64, want string) (int64, error) {
	if !isDigits(s) {
		return 0, errors.New(want)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errors.New(want)
	}
	return n, nil
}

// parsePlanes parses DYN_REQUEST_PLANE: case-insensitive names, http2 meaning http, order kept.
func parsePlanes(s string) ([]Plane, error) {
	items := strings.Split(s, ",")
	planes := make([]Plane, 0, len(items))
	for _, item := range items {
		name := strings.ToLower(strings.TrimSpace(item))
		var p Plane
		switch name {
		case "nats":
			p = PlaneNATS
		case "http", "http2":
			p = PlaneHTTP
		case "tcp":
			p = PlaneTCP
		case "":
			return nil, errors.New("empty item; " + wantPlanes)
		default:
			return nil, errors.New(wantPlanes)
		}
		for _, seen := range planes {
			if seen == p {
				return nil, fmt.Errorf("%q repeats plane %s; %s, each plane once", strings.TrimSpace(item), p, wantPlanes)
			}
		}
		planes = append(planes, p)
	}
	return planes, nil
}

// parseTimeout accepts integer seconds (as Dynamo) or a Go duration string, either > 0.
func parseTimeout(s string) (time.Duration, error) {
	if isDigits(s) {
		n, err := parseInt(s, 1, int64(math.MaxInt64/time.Second), wantTimeout)
		return time.Duration(n) * time.Second, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New(wantTimeout)
	}
	return d, nil
}

// parseLeaseTTL accepts whole seconds only: an etcd lease TTL has a one-second granularity, and
// rounding a sub-second value would silently change it.
func parseLeaseTTL(s string) (time.Duration, error) {
	if isDigits(s) {
		n, err := parseInt(s, 1, maxLeaseTTLSeconds, wantLeaseTTL)
		return time.Duration(n) * time.Second, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d%time.Second != 0 || d > maxLeaseTTLSeconds*time.Second {
		return 0, errors.New(wantLeaseTTL)
	}
	return d, nil
}

func parsePort(s string) (int, error) {
	n, err := parseInt(s, 0, 65535, wantPort)
	return int(n), err
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New(wantBool)
}

func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New(wantLogLevel)
}

// logLevelName prints a level the way DYN_LOG spells it.
func logLevelName(level slog.Level) string { return strings.ToLower(level.String()) }

func parseHealthStatus(s string) (HealthStatus, error) {
	switch strings.ToLower(s) {
	case string(HealthReady):
		return HealthReady, nil
	case string(HealthNotReady):
		return HealthNotReady, nil
	}
	return "", errors.New(wantHealthStatus)
}

// splitList splits a comma-separated list, trimming spaces around items; empty items are errors.
func splitList(s, want string) ([]string, error) {
	items := strings.Split(s, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if items[i] == "" {
			return nil, errors.New("empty item; " + want)
		}
	}
	return items, nil
}

func parseNATSServers(s string) (URLs, error) {
	items, err := splitList(s, wantNATSServers)
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		if !strings.HasPrefix(item, "nats://") {
			return nil, fmt.Errorf("%q does not start with nats://; %s", redactURL(item), wantNATSServers)
		}
		u, err := url.Parse(item)
		if err != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || !validURLPort(u.Port()) {
			return nil, fmt.Errorf("%q is not a valid server URL; %s", redactURL(item), wantNATSServers)
		}
	}
	return items, nil
}

func parseEtcdEndpoints(s string) (URLs, error) {
	items, err := splitList(s, wantEtcd)
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		if !validEtcdEndpoint(item) {
			return nil, fmt.Errorf("%q is not a valid endpoint; %s", redactURL(item), wantEtcd)
		}
	}
	return items, nil
}

func validEtcdEndpoint(s string) bool {
	hostport := s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return false
		}
		u, err := url.Parse(s)
		if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return false
		}
		hostport = strings.TrimSuffix(rest, "/")
	}
	host, port, err := net.SplitHostPort(hostport)
	return err == nil && host != "" && port != "" && validURLPort(port)
}

// validURLPort accepts an absent port or a decimal one in 1..65535.
func validURLPort(p string) bool {
	if p == "" {
		return true
	}
	_, err := parseInt(p, 1, 65535, "")
	return err == nil
}

// validPath reports whether s is an absolute URL path: it starts with "/", holds only RFC 3986 path
// characters, and every % starts a valid escape.
func validPath(s string) bool {
	if !strings.HasPrefix(s, "/") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseRootPath trims trailing slashes so "{root}/{endpoint}" never doubles one; "/" becomes "".
func parseRootPath(s string) (string, error) {
	if !validPath(s) {
		return "", errors.New(wantRootPath)
	}
	return strings.TrimRight(s, "/"), nil
}

// parseStatusPath validates a health or live path; /metrics belongs to the metrics handler.
func parseStatusPath(s string) (string, error) {
	if !validPath(s) || s == "/metrics" {
		return "", errors.New(wantStatusPath)
	}
	return s, nil
}

// parseNKeySeed checks the shape of a user nkey seed: base32 (no padding) of a 2-byte prefix, a
// 32-byte key and a CRC, 58 characters starting with "SU". The NATS client verifies the rest.
func parseNKeySeed(s string) (Secret, error) {
	if len(s) != 58 || !strings.HasPrefix(s, "SU") {
		return "", errors.New(wantNKeySeed)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return "", errors.New(wantNKeySeed)
		}
	}
	return Secret(s), nil
}

// parseNonEmpty accepts any value but the empty string, which would otherwise read as "set".
func parseNonEmpty(s string) (string, error) {
	if s == "" {
		return "", errors.New(wantNonEmpty)
	}
	return s, nil
}

// parseOTLPProtocol accepts the OTLP protocols the Go exporters speak.
func parseOTLPProtocol(s string) (OTLPProtocol, error) {
	switch p := OTLPProtocol(strings.ToLower(s)); p {
	case OTLPGRPC, OTLPHTTPProtobuf:
		return p, nil
	}
	return "", errors.New(wantOTLPProtocol)
}
