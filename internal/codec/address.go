package codec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Sentinels wrapped by address and instance-id parsing failures.
var (
	ErrInvalidAddress    = errors.New("invalid address")
	ErrInvalidInstanceID = errors.New("invalid instance id")
)

// FormatInstanceID renders an instance id as discovery keys, TCP paths and NATS subjects carry
// it: lowercase hex, no padding, no 0x.
func FormatInstanceID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseInstanceID parses FormatInstanceID's form: 1 to 16 hex digits, no prefix or sign.
func ParseInstanceID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) > 16 {
		return 0, fmt.Errorf("%w %q: want 1 to 16 hex digits", ErrInvalidInstanceID, s)
	}
	return id, nil
}

// tcpScheme is the optional prefix of a TCP-plane address.
const tcpScheme = "tcp://"

// ParseTCPAddress splits a TCP-plane discovery address "{ip}:{port}/{id:x}/{ep}" (optionally
// prefixed by "tcp://") at its first '/' into the socket address to dial and the endpoint path
// the server routes on. The socket address must be an IP literal with a port ("[::1]:80" for
// IPv6); the path must be 1 to 1024 bytes. Errors wrap ErrInvalidAddress.
func ParseTCPAddress(s string) (hostport, path string, err error) {
	rest := strings.TrimPrefix(s, tcpScheme)
	hostport, path, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", addrError(s, "missing '/' before the endpoint path")
	}
	if ap, err := netip.ParseAddrPort(hostport); err != nil || ap.Port() == 0 {
		return "", "", addrError(s, "socket address "+strconv.Quote(hostport)+" is not ip:port")
	}
	if len(path) < minTCPPathLen || len(path) > maxTCPPathLen {
		return "", "", addrError(s, "endpoint path length "+strconv.Itoa(len(path))+" is not in 1..1024")
	}
	return hostport, path, nil
}

// CallHomeDialAddress turns a call-home address into net.JoinHostPort form. It accepts
// "10.0.0.5:41235", "[fe80::1]:41235", "host:41235", and the unbracketed IPv6 form older Dynamo
// writes ("fe80::1:41235"), which it splits at the last ':'. Errors wrap ErrInvalidAddress.
func CallHomeDialAddress(addr string) (string, error) {
	host, port, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		// Unbracketed IPv6: everything before the last ':' must be an IPv6 literal.
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return "", addrError(addr, "missing port")
		}
		ip, perr := netip.ParseAddr(addr[:i])
		// A zone may hold any byte for netip, but a bracket in it could not be bracketed back.
		if perr != nil || !ip.Is6() || strings.ContainsAny(addr[:i], "[]") {
			return "", addrError(addr, "not host:port")
		}
		host, port = addr[:i], addr[i+1:]
	}
	if host == "" {
		return "", addrError(addr, "missing host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", addrError(addr, "port "+strconv.Quote(port)+" is not in 1..65535")
	}
	if splitErr == nil && (addr[0] != '[' || strings.IndexByte(host, ':') >= 0) {
		// Split as written: host:port without brackets, or a bracketed IPv6 host, is already
		// what JoinHostPort makes; no need to build it again.
		return addr, nil
	}
	return net.JoinHostPort(host, port), nil
}

func addrError(addr, detail string) error {
	return &addressError{addr: addr, detail: detail}
}

// addressError keeps the offending address and the reason; it matches ErrInvalidAddress.
type addressError struct{ addr, detail string }

func (e *addressError) Error() string {
	return "invalid address " + strconv.Quote(e.addr) + ": " + e.detail
}

func (e *addressError) Unwrap() error { return ErrInvalidAddress }
