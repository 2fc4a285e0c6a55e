package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testIfaces is the fake machine every test loads on: loopback, one down interface, then eth0 with a
// link-local and a private IPv4 address.
func testIfaces() ([]Interface, error) {
	return []Interface{
		{Name: "lo", Up: true, Loopback: true, Addrs: addrs("127.0.0.1", "::1")},
		{Name: "docker0", Up: false, Addrs: addrs("172.17.0.1")},
		{Name: "eth0", Up: true, Addrs: addrs("fe80::1", "2001:db8::5", "10.0.0.5")},
	}, nil
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// load loads m on the fake machine.
func load(m map[string]string) (*Config, error) {
	return Options{Interfaces: testIfaces}.Load(lookupMap(m))
}

// with returns base plus kv pairs (name, value, name, value, …).
func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// fleet is an environment with ETCD_ENDPOINTS set, so hosts follow the multi-machine rules.
var fleet = map[string]string{EnvEtcdEndpoints: "http://10.0.0.2:2379"}

func TestDefaults(t *testing.T) {
	cfg, err := load(fleet)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	cfg.Vars = nil
	want := &Config{
		RequestPlanes: []Plane{PlaneNATS},
		NATS: NATS{
			Servers:        URLs{"nats://127.0.0.1:4222"},
			Auth:           NATSAuth{Method: NATSAuthNone},
			RequestTimeout: 10 * time.Second,
		},
		Etcd: Etcd{Endpoints: URLs{"http://10.0.0.2:2379"}, LeaseTTL: 10 * time.Second},
		HTTP: HTTP{
			Listener:       Listener{BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.5", Port: 8081},
			RootPath:       "/v1/dynamo",
			RequestTimeout: 5 * time.Second,
		},
		TCP: TCP{
			Listener:       Listener{BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.5", Port: 0},
			RequestTimeout: 5 * time.Second,
			ConnectTimeout: 5 * time.Second,
			PoolSize:       100,
			MaxMessageSize: 33554432,
		},
		ResponseStream: ResponseStream{
			Listener: Listener{BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.5", Port: 0},
			Timeout:  30 * time.Second,
		},
		System: System{
			Listener:             Listener{BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.5"},
			HealthPath:           "/health",
			LivePath:             "/live",
			StartingHealthStatus: HealthNotReady,
		},
		Log:     Log{Level: slog.LevelInfo},
		Tracing: Tracing{Protocol: OTLPHTTPProtobuf},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestOneMachineDefaults(t *testing.T) {
	cfg, err := load(nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !cfg.Etcd.EndpointsDefaulted || !reflect.DeepEqual(cfg.Etcd.Endpoints, URLs{"http://127.0.0.1:2379"}) {
		t.Errorf("etcd = %+v, want defaulted http://127.0.0.1:2379", cfg.Etcd)
	}
	lo := Listener{BindHost: "127.0.0.1", AdvertiseHost: "127.0.0.1"}
	for name, got := range map[string]Listener{
		"http":   {cfg.HTTP.BindHost, cfg.HTTP.AdvertiseHost, 0},
		"tcp":    {cfg.TCP.BindHost, cfg.TCP.AdvertiseHost, 0},
		"stream": {cfg.ResponseStream.BindHost, cfg.ResponseStream.AdvertiseHost, 0},
		"system": {cfg.System.BindHost, cfg.System.AdvertiseHost, 0},
	} {
		if got != lo {
			t.Errorf("%s host = %+v, want %+v", name, got, lo)
		}
	}
}

// TestValid covers every variable with valid values: the typed result of each.
func TestValid(t *testing.T) {
	planes := func(c *Config) any { return c.RequestPlanes }
	nats := func(c *Config) any { return c.NATS.Servers }
	auth := func(c *Config) any { return c.NATS.Auth }
	const seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
	tests := []struct {
		name string
		env  map[string]string
		got  func(*Config) any
		want any
	}{
		{"plane default", nil, planes, []Plane{PlaneNATS}},
		{"plane tcp", map[string]string{EnvRequestPlane: "tcp"}, planes, []Plane{PlaneTCP}},
		{"plane any case", map[string]string{EnvRequestPlane: "HTTP"}, planes, []Plane{PlaneHTTP}},
		{"plane http2 is http", map[string]string{EnvRequestPlane: "Http2"}, planes, []Plane{PlaneHTTP}},
		{"plane list keeps order", map[string]string{EnvRequestPlane: "tcp, nats,http2"}, planes,
			[]Plane{PlaneTCP, PlaneNATS, PlaneHTTP}},

		{"nats server", map[string]string{EnvNATSServer: "nats://10.0.0.9:4222"}, nats, URLs{"nats://10.0.0.9:4222"}},
		{"nats server list", map[string]string{EnvNATSServer: "nats://a:4222, nats://[::1]:4223,nats://b"}, nats,
			URLs{"nats://a:4222", "nats://[::1]:4223", "nats://b"}},
		{"nats user+password", map[string]string{EnvNATSAuthUsername: "bob", EnvNATSAuthPassword: "pw"}, auth,
			NATSAuth{Method: NATSAuthUserPassword, Username: "bob", Password: "pw"}},
		{"nats user+password beat token", map[string]string{EnvNATSAuthUsername: "bob", EnvNATSAuthPassword: "pw",
			EnvNATSAuthToken: "tok"}, auth, NATSAuth{Method: NATSAuthUserPassword, Username: "bob", Password: "pw"}},
		{"nats token", map[string]string{EnvNATSAuthToken: "tok", EnvNATSAuthNKey: seed}, auth,
			NATSAuth{Method: NATSAuthToken, Token: "tok"}},
		{"nats nkey", map[string]string{EnvNATSAuthNKey: seed, EnvNATSAuthCredentialsFile: "/c"}, auth,
			NATSAuth{Method: NATSAuthNKey, NKeySeed: seed}},
		{"nats credentials", map[string]string{EnvNATSAuthCredentialsFile: "/etc/nats/user.creds"}, auth,
			NATSAuth{Method: NATSAuthCredentialsFile, CredentialsFile: "/etc/nats/user.creds"}},
		{"nats timeout seconds", map[string]string{EnvNATSRequestTimeout: "3"},
			func(c *Config) any { return c.NATS.RequestTimeout }, 3 * time.Second},

		{"etcd endpoints", map[string]string{EnvEtcdEndpoints: "http://e1:2379,https://e2:2379/, e3:2379,[::1]:2379"},
			func(c *Config) any { return []any{c.Etcd.Endpoints, c.Etcd.EndpointsDefaulted} },
			[]any{URLs{"http://e1:2379", "https://e2:2379/", "e3:2379", "[::1]:2379"}, false}},
		{"etcd auth", map[string]string{EnvEtcdAuthUsername: "root", EnvEtcdAuthPassword: "pw", EnvEtcdAuthCA: "/ca",
			EnvEtcdAuthClientCert: "/crt", EnvEtcdAuthClientKey: "/key"},
			func(c *Config) any {
				e := c.Etcd
				return []any{e.Username, e.Password, e.CAFile, e.ClientCertFile, e.ClientKeyFile}
			},
			[]any{"root", Secret("pw"), "/ca", "/crt", "/key"}},
		{"etcd lease ttl", map[string]string{EnvEtcdLeaseTTL: "1"},
			func(c *Config) any { return c.Etcd.LeaseTTL }, time.Second},
		{"etcd lease ttl duration", map[string]string{EnvEtcdLeaseTTL: "2m"},
			func(c *Config) any { return c.Etcd.LeaseTTL }, 2 * time.Minute},

		{"http port", map[string]string{EnvHTTPPort: "9000"}, func(c *Config) any { return c.HTTP.Port }, 9000},
		{"http port 0", map[string]string{EnvHTTPPort: "0"}, func(c *Config) any { return c.HTTP.Port }, 0},
		{"http port max", map[string]string{EnvHTTPPort: "65535"}, func(c *Config) any { return c.HTTP.Port }, 65535},
		{"http root trimmed", map[string]string{EnvHTTPRootPath: "/v1/rpc//"},
			func(c *Config) any { return c.HTTP.RootPath }, "/v1/rpc"},
		{"http root slash", map[string]string{EnvHTTPRootPath: "/"}, func(c *Config) any { return c.HTTP.RootPath }, ""},
		{"http root escaped", map[string]string{EnvHTTPRootPath: "/a%20b/c-d_e.f~"},
			func(c *Config) any { return c.HTTP.RootPath }, "/a%20b/c-d_e.f~"},
		{"http timeout duration", map[string]string{EnvHTTPRequestTimeout: "1500ms"},
			func(c *Config) any { return c.HTTP.RequestTimeout }, 1500 * time.Millisecond},

		{"tcp port", map[string]string{EnvTCPPort: "45123"}, func(c *Config) any { return c.TCP.Port }, 45123},
		{"tcp timeouts", map[string]string{EnvTCPRequestTimeout: "7", EnvTCPConnectTimeout: "250ms"},
			func(c *Config) any { return []time.Duration{c.TCP.RequestTimeout, c.TCP.ConnectTimeout} },
			[]time.Duration{7 * time.Second, 250 * time.Millisecond}},
		{"tcp pool", map[string]string{EnvTCPPoolSize: "1"}, func(c *Config) any { return c.TCP.PoolSize }, 1},
		{"tcp max message min", map[string]string{EnvTCPMaxMessageSize: "24"},
			func(c *Config) any { return c.TCP.MaxMessageSize }, 24},
		{"tcp max message max", map[string]string{EnvTCPMaxMessageSize: strconv.Itoa(maxMaxMessageSize)},
			func(c *Config) any { return c.TCP.MaxMessageSize }, maxMaxMessageSize},

		{"stream port", map[string]string{EnvResponseStreamPort: "41235"},
			func(c *Config) any { return c.ResponseStream.Port }, 41235},
		{"stream timeout", map[string]string{EnvResponseStreamTimeout: "2m"},
			func(c *Config) any { return c.ResponseStream.Timeout }, 2 * time.Minute},

		{"system off", nil, func(c *Config) any { return []any{c.System.Enabled, c.System.Port} }, []any{false, 0}},
		{"system port 0", map[string]string{EnvSystemPort: "0"},
			func(c *Config) any { return []any{c.System.Enabled, c.System.Port} }, []any{true, 0}},
		{"system port", map[string]string{EnvSystemPort: "9090"},
			func(c *Config) any { return []any{c.System.Enabled, c.System.Port} }, []any{true, 9090}},
		{"system paths", map[string]string{EnvSystemHealthPath: "/healthz", EnvSystemLivePath: "/livez/"},
			func(c *Config) any { return []string{c.System.HealthPath, c.System.LivePath} },
			[]string{"/healthz", "/livez/"}},
		{"system ready", map[string]string{EnvSystemStartingHealthStatus: "READY"},
			func(c *Config) any { return c.System.StartingHealthStatus }, HealthReady},
		{"system notready", map[string]string{EnvSystemStartingHealthStatus: "notready"},
			func(c *Config) any { return c.System.StartingHealthStatus }, HealthNotReady},

		{"log debug", map[string]string{EnvLog: "debug"}, func(c *Config) any { return c.Log.Level }, slog.LevelDebug},
		{"log warn any case", map[string]string{EnvLog: "WARN"}, func(c *Config) any { return c.Log.Level }, slog.LevelWarn},
		{"log error", map[string]string{EnvLog: "error"}, func(c *Config) any { return c.Log.Level }, slog.LevelError},
		{"log info", map[string]string{EnvLog: "info"}, func(c *Config) any { return c.Log.Level }, slog.LevelInfo},

		{"max inflight", map[string]string{EnvMaxInflightRequests: "64"},
			func(c *Config) any { return c.Ingress.MaxInflightRequests }, 64},
		{"max inflight 0", map[string]string{EnvMaxInflightRequests: "0"},
			func(c *Config) any { return c.Ingress.MaxInflightRequests }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(with(fleet, flatten(tc.env)...))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tc.got(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func flatten(m map[string]string) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}

func TestBooleans(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"1", true}, {"true", true}, {"TRUE", true}, {"yes", true}, {"On", true},
		{"0", false}, {"false", false}, {"no", false}, {"off", false}, {"OFF", false},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := load(with(fleet, EnvLogJSONL, tc.value))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Log.JSON != tc.want {
				t.Errorf("%s=%q: JSON = %v, want %v", EnvLogJSONL, tc.value, cfg.Log.JSON, tc.want)
			}
		})
	}
}

// TestTimeouts runs every timeout variable through the same accepted and refused values.
func TestTimeouts(t *testing.T) {
	vars := map[string]func(*Config) time.Duration{
		EnvNATSRequestTimeout:    func(c *Config) time.Duration { return c.NATS.RequestTimeout },
		EnvHTTPRequestTimeout:    func(c *Config) time.Duration { return c.HTTP.RequestTimeout },
		EnvTCPRequestTimeout:     func(c *Config) time.Duration { return c.TCP.RequestTimeout },
		EnvTCPConnectTimeout:     func(c *Config) time.Duration { return c.TCP.ConnectTimeout },
		EnvResponseStreamTimeout: func(c *Config) time.Duration { return c.ResponseStream.Timeout },
	}
	valid := []struct {
		value string
		want  time.Duration
	}{
		{"1", time.Second}, {"30", 30 * time.Second}, {"1500ms", 1500 * time.Millisecond}, {"2m", 2 * time.Minute},
		{"1h30m", 90 * time.Minute}, {"9223372036", 9223372036 * time.Second},
	}
	invalid := []string{"", "0", "-1", "0s", "-5s", "1.5", "5 ", " 5", "+5", "10x", "9223372037", "99999999999999999999"}
	for name, get := range vars {
		for _, tc := range valid {
			t.Run(name+"="+tc.value, func(t *testing.T) {
				cfg, err := load(with(fleet, name, tc.value))
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := get(cfg); got != tc.want {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
		for _, value := range invalid {
			t.Run(name+"="+value, func(t *testing.T) {
				_, err := load(with(fleet, name, value))
				wantVarError(t, err, name, `"`+value+`": `+wantTimeout)
			})
		}
	}
}

// TestPorts runs every port variable through the same accepted and refused values.
func TestPorts(t *testing.T) {
	vars := map[string]func(*Config) int{
		EnvHTTPPort:           func(c *Config) int { return c.HTTP.Port },
		EnvTCPPort:            func(c *Config) int { return c.TCP.Port },
		EnvResponseStreamPort: func(c *Config) int { return c.ResponseStream.Port },
		EnvSystemPort:         func(c *Config) int { return c.System.Port },
	}
	for name, get := range vars {
		for _, tc := range []struct {
			value string
			want  int
		}{{"0", 0}, {"1", 1}, {"08081", 8081}, {"65535", 65535}} {
			t.Run(name+"="+tc.value, func(t *testing.T) {
				cfg, err := load(with(fleet, name, tc.value))
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got := get(cfg); got != tc.want {
					t.Errorf("got %d, want %d", got, tc.want)
				}
			})
		}
		for _, value := range []string{"", "65536", "-1", "+80", "http", "80 ", "1e3", "0x50"} {
			t.Run(name+"="+value, func(t *testing.T) {
				_, err := load(with(fleet, name, value))
				wantVarError(t, err, name, `"`+value+`": `+wantPort)
			})
		}
	}
}

// TestInvalid: each bad value fails, naming the variable, the value and what is accepted.
func TestInvalid(t *testing.T) {
	const seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
	tests := []struct {
		name string
		env  map[string]string
		// wantVar is the variable the error names; wantText is a part of the error's text.
		wantVar  string
		wantText string
	}{
		{"plane bogus", map[string]string{EnvRequestPlane: "bogus"}, EnvRequestPlane,
			`DYN_REQUEST_PLANE="bogus": must be a comma-separated list of nats, http, http2, tcp`},
		{"plane empty", map[string]string{EnvRequestPlane: ""}, EnvRequestPlane, `"": empty item; ` + wantPlanes},
		{"plane empty item", map[string]string{EnvRequestPlane: "nats,,tcp"}, EnvRequestPlane, `empty item; ` + wantPlanes},
		{"plane trailing comma", map[string]string{EnvRequestPlane: "nats,"}, EnvRequestPlane, `empty item`},
		{"plane duplicate", map[string]string{EnvRequestPlane: "tcp,TCP"}, EnvRequestPlane, `"TCP" repeats plane tcp`},
		{"plane http2 duplicates http", map[string]string{EnvRequestPlane: "http,http2"}, EnvRequestPlane,
			`"http2" repeats plane http`},
		{"plane unknown in list", map[string]string{EnvRequestPlane: "nats,grpc"}, EnvRequestPlane,
			`"nats,grpc": ` + wantPlanes},

		{"nats scheme", map[string]string{EnvNATSServer: "tls://h:4222"}, EnvNATSServer, `does not start with nats://`},
		{"nats bare host", map[string]string{EnvNATSServer: "127.0.0.1:4222"}, EnvNATSServer, wantNATSServers},
		{"nats one bad of list", map[string]string{EnvNATSServer: "nats://a:4222,http://b:4222"}, EnvNATSServer,
			`"http://b:4222" does not start with nats://`},
		{"nats no host", map[string]string{EnvNATSServer: "nats://"}, EnvNATSServer, `is not a valid server URL`},
		{"nats bad port", map[string]string{EnvNATSServer: "nats://h:99999"}, EnvNATSServer, `is not a valid server URL`},
		{"nats path", map[string]string{EnvNATSServer: "nats://h:4222/x"}, EnvNATSServer, `is not a valid server URL`},
		{"nats empty item", map[string]string{EnvNATSServer: "nats://a:4222,"}, EnvNATSServer, `empty item`},
		{"nats user without password", map[string]string{EnvNATSAuthUsername: "bob"}, EnvNATSAuthPassword,
			`NATS_AUTH_PASSWORD (unset): required when NATS_AUTH_USERNAME is set`},
		{"nats password without user", map[string]string{EnvNATSAuthPassword: "pw"}, EnvNATSAuthUsername,
			`NATS_AUTH_USERNAME (unset): required when NATS_AUTH_PASSWORD is set`},
		{"nats empty token", map[string]string{EnvNATSAuthToken: ""}, EnvNATSAuthToken, `"": ` + wantNonEmpty},
		{"nats empty user", map[string]string{EnvNATSAuthUsername: "", EnvNATSAuthPassword: "pw"}, EnvNATSAuthUsername,
			wantNonEmpty},
		{"nats nkey public key", map[string]string{EnvNATSAuthNKey: "U" + seed[2:] + "A"}, EnvNATSAuthNKey,
			`NATS_AUTH_NKEY="********": ` + wantNKeySeed},
		{"nats nkey short", map[string]string{EnvNATSAuthNKey: seed[:57]}, EnvNATSAuthNKey, wantNKeySeed},
		{"nats nkey lowercase", map[string]string{EnvNATSAuthNKey: strings.ToLower(seed)}, EnvNATSAuthNKey, wantNKeySeed},
		{"nats credentials empty", map[string]string{EnvNATSAuthCredentialsFile: ""}, EnvNATSAuthCredentialsFile,
			wantNonEmpty},

		{"etcd empty", map[string]string{EnvEtcdEndpoints: ""}, EnvEtcdEndpoints, `empty item`},
		{"etcd scheme", map[string]string{EnvEtcdEndpoints: "grpc://e:2379"}, EnvEtcdEndpoints, wantEtcd},
		{"etcd no port", map[string]string{EnvEtcdEndpoints: "http://e"}, EnvEtcdEndpoints, `"http://e" is not a valid endpoint`},
		{"etcd bare no port", map[string]string{EnvEtcdEndpoints: "etcd"}, EnvEtcdEndpoints, wantEtcd},
		{"etcd path", map[string]string{EnvEtcdEndpoints: "http://e:2379/v3"}, EnvEtcdEndpoints, wantEtcd},
		{"etcd userinfo", map[string]string{EnvEtcdEndpoints: "http://u:secret@e:2379"}, EnvEtcdEndpoints, wantEtcd},
		{"etcd user without password", map[string]string{EnvEtcdEndpoints: "e:2379", EnvEtcdAuthUsername: "root"},
			EnvEtcdAuthPassword, `required when ETCD_AUTH_USERNAME is set`},
		{"etcd password without user", map[string]string{EnvEtcdEndpoints: "e:2379", EnvEtcdAuthPassword: "pw"},
			EnvEtcdAuthUsername, `required when ETCD_AUTH_PASSWORD is set`},
		{"etcd cert without key", map[string]string{EnvEtcdEndpoints: "e:2379", EnvEtcdAuthClientCert: "/crt"},
			EnvEtcdAuthClientKey, `ETCD_AUTH_CLIENT_KEY (unset): required when ETCD_AUTH_CLIENT_CERT is set`},
		{"etcd key without cert", map[string]string{EnvEtcdEndpoints: "e:2379", EnvEtcdAuthClientKey: "/key"},
			EnvEtcdAuthClientCert, `required when ETCD_AUTH_CLIENT_KEY is set`},
		{"etcd empty ca", map[string]string{EnvEtcdAuthCA: ""}, EnvEtcdAuthCA, wantNonEmpty},
		{"lease ttl 0", map[string]string{EnvEtcdLeaseTTL: "0"}, EnvEtcdLeaseTTL, `"0": ` + wantLeaseTTL},
		{"lease ttl fraction", map[string]string{EnvEtcdLeaseTTL: "1500ms"}, EnvEtcdLeaseTTL, wantLeaseTTL},
		{"lease ttl sub-second", map[string]string{EnvEtcdLeaseTTL: "500ms"}, EnvEtcdLeaseTTL, wantLeaseTTL},
		{"lease ttl too long", map[string]string{EnvEtcdLeaseTTL: "9000000001"}, EnvEtcdLeaseTTL, wantLeaseTTL},
		{"lease ttl word", map[string]string{EnvEtcdLeaseTTL: "ten"}, EnvEtcdLeaseTTL, wantLeaseTTL},

		{"http root relative", map[string]string{EnvHTTPRootPath: "v1/dynamo"}, EnvHTTPRootPath, wantRootPath},
		{"http root empty", map[string]string{EnvHTTPRootPath: ""}, EnvHTTPRootPath, wantRootPath},
		{"http root query", map[string]string{EnvHTTPRootPath: "/v1?x=1"}, EnvHTTPRootPath, wantRootPath},
		{"http root space", map[string]string{EnvHTTPRootPath: "/v1 rpc"}, EnvHTTPRootPath, wantRootPath},
		{"http root bad escape", map[string]string{EnvHTTPRootPath: "/v1%2"}, EnvHTTPRootPath, wantRootPath},

		{"tcp pool 0", map[string]string{EnvTCPPoolSize: "0"}, EnvTCPPoolSize, `"0": ` + wantPoolSize},
		{"tcp pool huge", map[string]string{EnvTCPPoolSize: "2147483648"}, EnvTCPPoolSize, wantPoolSize},
		{"tcp pool negative", map[string]string{EnvTCPPoolSize: "-1"}, EnvTCPPoolSize, wantPoolSize},
		{"tcp max message small", map[string]string{EnvTCPMaxMessageSize: "23"}, EnvTCPMaxMessageSize, wantMaxMessageSize},
		{"tcp max message huge", map[string]string{EnvTCPMaxMessageSize: "4294967296"}, EnvTCPMaxMessageSize,
			wantMaxMessageSize},
		{"tcp max message units", map[string]string{EnvTCPMaxMessageSize: "32MiB"}, EnvTCPMaxMessageSize,
			wantMaxMessageSize},

		{"system health metrics", map[string]string{EnvSystemHealthPath: "/metrics"}, EnvSystemHealthPath, wantStatusPath},
		{"system live relative", map[string]string{EnvSystemLivePath: "live"}, EnvSystemLivePath, wantStatusPath},
		{"system starting status", map[string]string{EnvSystemStartingHealthStatus: "starting"},
			EnvSystemStartingHealthStatus, `"starting": ` + wantHealthStatus},

		{"log trace", map[string]string{EnvLog: "trace"}, EnvLog, `DYN_LOG="trace": ` + wantLogLevel},
		{"log filter", map[string]string{EnvLog: "info,h2=warn"}, EnvLog, wantLogLevel},
		{"log jsonl", map[string]string{EnvLogJSONL: "maybe"}, EnvLogJSONL, `"maybe": ` + wantBool},
		{"log jsonl empty", map[string]string{EnvLogJSONL: ""}, EnvLogJSONL, wantBool},

		{"max inflight negative", map[string]string{EnvMaxInflightRequests: "-1"}, EnvMaxInflightRequests, wantMaxInflight},
		{"max inflight word", map[string]string{EnvMaxInflightRequests: "unlimited"}, EnvMaxInflightRequests,
			wantMaxInflight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.env)
			wantVarError(t, err, tc.wantVar, tc.wantText)
		})
	}
}

// wantVarError checks that err holds a *VarError for name whose text contains text, that it
// matches ErrInvalid, and that no secret leaked into it.
func wantVarError(t *testing.T, err error, name, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error about %s", name)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var found *VarError
	for _, e := range leafErrors(err) {
		var ve *VarError
		if errors.As(e, &ve) && ve.Name == name {
			found = ve
		}
	}
	if found == nil {
		t.Fatalf("no VarError for %s in %q", name, err)
	}
	if !strings.Contains(found.Error(), text) {
		t.Errorf("error %q does not contain %q", found.Error(), text)
	}
	if !strings.HasPrefix(found.Error(), name) {
		t.Errorf("error %q does not start with the variable name %s", found.Error(), name)
	}
}

func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestAllErrorsCollected(t *testing.T) {
	_, err := load(map[string]string{
		EnvRequestPlane:      "bogus",
		EnvHTTPPort:          "http",
		EnvNATSAuthUsername:  "bob",
		EnvTCPHost:           "worker.example",
		EnvLog:               "loud",
		EnvTCPMaxMessageSize: "0",
	})
	if err == nil {
		t.Fatal("Load succeeded")
	}
	var names []string
	for _, e := range leafErrors(err) {
		var ve *VarError
		if !errors.As(e, &ve) {
			t.Fatalf("error %v is not a *VarError", e)
		}
		names = append(names, ve.Name)
	}
	want := []string{EnvRequestPlane, EnvNATSAuthPassword, EnvHTTPPort, EnvTCPHost, EnvTCPMaxMessageSize, EnvLog}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("errors name %v, want %v (in documentation order)", names, want)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("error text has %d lines, want %d:\n%s", got, len(want), err)
	}
}

func TestNilLookup(t *testing.T) {
	if _, err := Load(nil); err == nil {
		t.Error("Load(nil) succeeded")
	}
}
