package config

import (
	"errors"
	"testing"
)

func TestDetectAdvertiseAddr(t *testing.T) {
	tests := []struct {
		name      string
		ifaces    []Interface
		want      string
		wantIface string
	}{
		{"none", nil, "127.0.0.1", ""},
		{"loopback only", []Interface{{Name: "lo", Up: true, Loopback: true, Addrs: addrs("127.0.0.1", "::1")}},
			"127.0.0.1", ""},
		{"first ipv4 of first up interface", []Interface{
			{Name: "lo", Up: true, Loopback: true, Addrs: addrs("127.0.0.1")},
			{Name: "eth0", Up: true, Addrs: addrs("10.0.0.5", "10.0.0.6")},
			{Name: "eth1", Up: true, Addrs: addrs("192.168.1.2")},
		}, "10.0.0.5", "eth0"},
		{"down interface skipped", []Interface{
			{Name: "eth0", Up: false, Addrs: addrs("10.0.0.5")},
			{Name: "eth1", Up: true, Addrs: addrs("192.168.1.2")},
		}, "192.168.1.2", "eth1"},
		{"ipv4 on a later interface beats ipv6 on an earlier one", []Interface{
			{Name: "eth0", Up: true, Addrs: addrs("2001:db8::5")},
			{Name: "eth1", Up: true, Addrs: addrs("192.168.1.2")},
		}, "192.168.1.2", "eth1"},
		{"ipv6 when no ipv4", []Interface{
			{Name: "eth0", Up: true, Addrs: addrs("fe80::1", "2001:db8::5", "2001:db8::6")},
			{Name: "eth1", Up: true, Addrs: addrs("fd00::7")},
		}, "2001:db8::5", "eth0"},
		{"link-local, multicast, unspecified, loopback skipped", []Interface{
			{Name: "eth0", Up: true, Addrs: addrs("169.254.1.1", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "127.0.0.2")},
		}, "127.0.0.1", ""},
		{"ipv4-mapped ipv6 is ipv4", []Interface{{Name: "eth0", Up: true, Addrs: addrs("::ffff:10.1.2.3")}},
			"10.1.2.3", "eth0"},
		{"loopback-flagged interface skipped", []Interface{
			{Name: "lo", Up: true, Loopback: true, Addrs: addrs("10.9.9.9")},
		}, "127.0.0.1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, iface := DetectAdvertiseAddr(tc.ifaces)
			if got.String() != tc.want || iface != tc.wantIface {
				t.Errorf("got %v on %q, want %s on %q", got, iface, tc.want, tc.wantIface)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	type listener struct{ bind, advertise string }
	hosts := []struct {
		name string
		get  func(*Config) listener
		ipOK bool // false: a host name is refused
	}{
		{EnvHTTPHost, func(c *Config) listener { return listener{c.HTTP.BindHost, c.HTTP.AdvertiseHost} }, false},
		{EnvTCPHost, func(c *Config) listener { return listener{c.TCP.BindHost, c.TCP.AdvertiseHost} }, true},
		{EnvResponseStreamHost, func(c *Config) listener {
			return listener{c.ResponseStream.BindHost, c.ResponseStream.AdvertiseHost}
		}, true},
		{EnvSystemHost, func(c *Config) listener { return listener{c.System.BindHost, c.System.AdvertiseHost} }, false},
	}
	const etcd = "http://10.0.0.2:2379"
	tests := []struct {
		name       string
		etcd       bool   // ETCD_ENDPOINTS set
		value      string // "" = host unset
		want       listener
		wantSource string
	}{
		{"one machine, unset", false, "", listener{"127.0.0.1", "127.0.0.1"}, "derived: ETCD_ENDPOINTS unset (one-machine fleet)"},
		{"one machine, 0.0.0.0", false, "0.0.0.0", listener{"0.0.0.0", "10.0.0.5"}, SourceEnv},
		{"one machine, specific", false, "10.1.2.3", listener{"10.1.2.3", "10.1.2.3"}, SourceEnv},
		{"fleet, unset", true, "", listener{"0.0.0.0", "10.0.0.5"}, SourceDefault},
		{"fleet, 0.0.0.0", true, "0.0.0.0", listener{"0.0.0.0", "10.0.0.5"}, SourceEnv},
		{"fleet, ::", true, "::", listener{"::", "10.0.0.5"}, SourceEnv},
		{"fleet, :: long form", true, "0:0:0:0:0:0:0:0", listener{"::", "10.0.0.5"}, SourceEnv},
		{"fleet, loopback", true, "127.0.0.1", listener{"127.0.0.1", "127.0.0.1"}, SourceEnv},
		{"fleet, ipv6", true, "2001:db8::1", listener{"2001:db8::1", "2001:db8::1"}, SourceEnv},
		{"fleet, ipv6 canonical", true, "2001:DB8:0::1", listener{"2001:db8::1", "2001:db8::1"}, SourceEnv},
	}
	for _, h := range hosts {
		for _, tc := range tests {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				env := map[string]string{}
				if tc.etcd {
					env[EnvEtcdEndpoints] = etcd
				}
				if tc.value != "" {
					env[h.name] = tc.value
				}
				cfg, err := load(env)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := h.get(cfg); got != tc.want {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
				v := findVar(t, cfg, h.name)
				if v.Value != tc.want.bind || v.Source != tc.wantSource {
					t.Errorf("var = %+v, want value %q source %q", v, tc.want.bind, tc.wantSource)
				}
			})
		}
		t.Run(h.name+"/name", func(t *testing.T) {
			cfg, err := load(map[string]string{h.name: "worker-1.example.com"})
			if h.ipOK {
				wantVarError(t, err, h.name, `"worker-1.example.com": must be an IP address (`)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := h.get(cfg), (listener{"worker-1.example.com", "worker-1.example.com"}); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
		for _, bad := range []string{"", "[::1]", "fe80::1%eth0", "10.0.0.1:80", "-bad.example", "a..b", "host_name",
			"1.2.3", "1.2.3.256", "has space"} {
			t.Run(h.name+"/invalid "+bad, func(t *testing.T) {
				_, err := load(map[string]string{h.name: bad})
				wantVarError(t, err, h.name, `"`+bad+`": must be an IP address`)
			})
		}
	}
}

func findVar(t *testing.T, cfg *Config, name string) Var {
	t.Helper()
	for _, v := range cfg.Vars {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no Var %s", name)
	return Var{}
}

func TestDetectionRunsOnceAndOnlyWhenNeeded(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		calls int
	}{
		{"one machine: nothing to detect", nil, 0},
		{"one machine, specific hosts", map[string]string{EnvHTTPHost: "127.0.0.1"}, 0},
		{"fleet: four listeners, one detection", map[string]string{EnvEtcdEndpoints: "e:2379"}, 1},
		{"fleet, every host specific", map[string]string{EnvEtcdEndpoints: "e:2379", EnvHTTPHost: "127.0.0.1",
			EnvTCPHost: "127.0.0.1", EnvResponseStreamHost: "127.0.0.1", EnvSystemHost: "127.0.0.1"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			opts := Options{Interfaces: func() ([]Interface, error) { calls++; return testIfaces() }}
			if _, err := opts.Load(lookupMap(tc.env)); err != nil {
				t.Fatalf("Load: %v", err)
			}
			if calls != tc.calls {
				t.Errorf("interfaces listed %d times, want %d", calls, tc.calls)
			}
		})
	}
}

func TestDetectionFailure(t *testing.T) {
	cause := errors.New("netlink: permission denied")
	opts := Options{Interfaces: func() ([]Interface, error) { return nil, cause }}
	_, err := opts.Load(lookupMap(map[string]string{EnvEtcdEndpoints: "e:2379", EnvTCPHost: "0.0.0.0",
		EnvHTTPHost: "10.0.0.9"}))
	if !errors.Is(err, cause) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want one wrapping the cause and matching ErrInvalid", err)
	}
	wantVarError(t, err, EnvTCPHost, `DYN_TCP_RPC_HOST="0.0.0.0": binds all interfaces, but the address to advertise cannot be detected (netlink: permission denied); set a specific IP`)
	wantVarError(t, err, EnvResponseStreamHost, `DYN_TCP_RESPONSE_STREAM_HOST (unset): binds all interfaces`)
	for _, e := range leafErrors(err) {
		var ve *VarError
		if errors.As(e, &ve) && ve.Name == EnvHTTPHost {
			t.Errorf("a specific host needs no detection, got %v", ve)
		}
	}
}

// TestSystemInterfaces checks the conversion from the machine's interfaces without depending on
// which ones exist: addresses come out valid and unmapped, so IPv4 is always Is4.
func TestSystemInterfaces(t *testing.T) {
	ifaces, err := SystemInterfaces()
	if err != nil {
		t.Fatalf("SystemInterfaces: %v", err)
	}
	for _, ifc := range ifaces {
		if ifc.Name == "" {
			t.Errorf("interface without a name: %+v", ifc)
		}
		for _, a := range ifc.Addrs {
			if !a.IsValid() || a.Is4In6() {
				t.Errorf("%s: address %v is invalid or IPv4-mapped", ifc.Name, a)
			}
		}
	}
	addr, _ := DetectAdvertiseAddr(ifaces)
	if !addr.IsValid() || addr.IsUnspecified() {
		t.Errorf("DetectAdvertiseAddr on this machine = %v, want a usable address", addr)
	}
}

func TestListenerAddrs(t *testing.T) {
	tests := []struct {
		l             Listener
		bound         int
		bind, adverts string
	}{
		{Listener{BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.5", Port: 0}, 41235, "0.0.0.0:0", "10.0.0.5:41235"},
		{Listener{BindHost: "::", AdvertiseHost: "2001:db8::5", Port: 8081}, 8081, "[::]:8081", "[2001:db8::5]:8081"},
		{Listener{BindHost: "host.example", AdvertiseHost: "host.example", Port: 80}, 80, "host.example:80", "host.example:80"},
	}
	for _, tc := range tests {
		if got := tc.l.BindAddr(); got != tc.bind {
			t.Errorf("%+v BindAddr = %q, want %q", tc.l, got, tc.bind)
		}
		if got := tc.l.AdvertiseAddr(tc.bound); got != tc.adverts {
			t.Errorf("%+v AdvertiseAddr(%d) = %q, want %q", tc.l, tc.bound, got, tc.adverts)
		}
	}
}
