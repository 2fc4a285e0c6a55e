package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Interface is what advertise-address detection needs to know about a network interface.
type Interface struct {
	Name     string
	Up       bool
	Loopback bool
	Addrs    []netip.Addr
}

// SystemInterfaces lists the machine's network interfaces, in the OS's order (by index).
func SystemInterfaces() ([]Interface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifaces))
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("listing addresses of %s: %w", ifc.Name, err)
		}
		it := Interface{
			Name:     ifc.Name,
			Up:       ifc.Flags&net.FlagUp != 0,
			Loopback: ifc.Flags&net.FlagLoopback != 0,
		}
		for _, a := range addrs {
			var ip net.IP
			switch a := a.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			default:
				continue
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				it.Addrs = append(it.Addrs, addr.Unmap())
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// loopbackIPv4 is the fallback advertise address and the one-machine-fleet default host.
func loopbackIPv4() netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, 1}) }

// DetectAdvertiseAddr picks the address a listener bound to all interfaces advertises: the first
// IPv4 address, else the first IPv6 address, of an up, non-loopback interface, taking interfaces and
// their addresses in order. Loopback, link-local, multicast and unspecified addresses are skipped
// (a link-local address is useless to peers without a zone). With no candidate it returns 127.0.0.1.
// ifaceName is the interface the address came from, "" for the fallback.
func DetectAdvertiseAddr(ifaces []Interface) (addr netip.Addr, ifaceName string) {
	var (
		v6      netip.Addr
		v6Iface string
	)
	for _, ifc := range ifaces {
		if !ifc.Up || ifc.Loopback {
			continue
		}
		for _, a := range ifc.Addrs {
			a = a.Unmap()
			if !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() ||
				a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
				continue
			}
			if a.Is4() {
				return a, ifc.Name
			}
			if !v6.IsValid() {
				v6, v6Iface = a.WithZone(""), ifc.Name
			}
		}
	}
	if v6.IsValid() {
		return v6, v6Iface
	}
	return loopbackIPv4(), ""
}

// hostKind says what a host variable may hold.
type hostKind int

const (
	// hostIP: an IP literal. TCP-plane and call-home addresses are advertised as ip:port and
	// parsed back as IP literals by peers (spec §5.4, §6).
	hostIP hostKind = iota
	// hostIPOrName: an IP literal or a DNS name (HTTP URLs and the status server allow names).
	hostIPOrName
)

func (k hostKind) want() string {
	if k == hostIP {
		return "must be an IP address (IPv6 without brackets or zone; 0.0.0.0 or :: = all interfaces)"
	}
	return "must be an IP address or a host name (IPv6 without brackets or zone; 0.0.0.0 or :: = all interfaces)"
}

// parsedHost is a valid host variable: an IP, or else a name.
type parsedHost struct {
	ip   netip.Addr
	name string
}

func parseHost(s string, kind hostKind) (parsedHost, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return parsedHost{}, errors.New(kind.want())
		}
		return parsedHost{ip: ip}, nil
	}
	if kind == hostIPOrName && validHostName(s) {
		return parsedHost{name: s}, nil
	}
	return parsedHost{}, errors.New(kind.want())
}

// validHostName checks RFC 1123 syntax: dot-separated labels of letters, digits and inner hyphens,
// each 1-63 bytes, at most 253 bytes in all, a trailing dot allowed. A name of digits and dots
// only was rejected by netip.ParseAddr already, so it is not a name either.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	allDigits := true
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
				allDigits = false
			default:
				return false
			}
		}
	}
	return !allDigits
}
