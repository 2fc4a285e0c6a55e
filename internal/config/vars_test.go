package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// allNames is every variable, in documentation order; Config.Vars must list exactly these.
var allNames = []string{
	EnvRequestPlane,
	EnvNATSServer, EnvNATSAuthUsername, EnvNATSAuthPassword, EnvNATSAuthToken, EnvNATSAuthNKey,
	EnvNATSAuthCredentialsFile, EnvNATSRequestTimeout,
	EnvEtcdEndpoints, EnvEtcdAuthUsername, EnvEtcdAuthPassword, EnvEtcdAuthCA, EnvEtcdAuthClientCert,
	EnvEtcdAuthClientKey, EnvEtcdLeaseTTL,
	EnvHTTPHost, EnvHTTPPort, EnvHTTPRootPath, EnvHTTPRequestTimeout,
	EnvTCPHost, EnvTCPPort, EnvTCPRequestTimeout, EnvTCPConnectTimeout, EnvTCPPoolSize, EnvTCPMaxMessageSize,
	EnvResponseStreamHost, EnvResponseStreamPort, EnvResponseStreamTimeout,
	EnvSystemHost, EnvSystemPort, EnvSystemHealthPath, EnvSystemLivePath, EnvSystemStartingHealthStatus,
	EnvLog, EnvLogJSONL,
	EnvMaxInflightRequests,
	EnvOTLPEndpoint, EnvOTLPTracesEndpoint, EnvOTLPProtocol, EnvOTLPTracesProtocol,
}

func TestVarsListEveryVariableOnce(t *testing.T) {
	for _, env := range []map[string]string{nil, fleet} {
		cfg, err := load(env)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		var names []string
		for _, v := range cfg.Vars {
			names = append(names, v.Name)
		}
		if !reflect.DeepEqual(names, allNames) {
			t.Errorf("Vars names:\n got %v\nwant %v", names, allNames)
		}
	}
}

func TestVarSources(t *testing.T) {
	const seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
	tests := []struct {
		name string
		env  map[string]string
		want []Var // the entries to check, compared whole
	}{
		{"defaults", nil, []Var{
			{Name: EnvRequestPlane, Value: "nats", Source: SourceDefault},
			{Name: EnvNATSServer, Value: "nats://127.0.0.1:4222", Source: SourceDefault},
			{Name: EnvNATSAuthPassword, Source: SourceDefault, Secret: true},
			{Name: EnvNATSRequestTimeout, Value: "10s", Source: SourceDefault},
			{Name: EnvEtcdEndpoints, Value: "http://127.0.0.1:2379", Source: SourceDefault,
				Note: "one-machine fleet: unset hosts default to 127.0.0.1"},
			{Name: EnvEtcdLeaseTTL, Value: "10s", Source: SourceDefault},
			{Name: EnvHTTPHost, Value: "127.0.0.1", Source: "derived: ETCD_ENDPOINTS unset (one-machine fleet)",
				Note: "advertised as 127.0.0.1"},
			{Name: EnvHTTPPort, Value: "8081", Source: SourceDefault},
			{Name: EnvHTTPRootPath, Value: "/v1/dynamo", Source: SourceDefault},
			{Name: EnvTCPPort, Value: "0", Source: SourceDefault, Note: "OS-assigned; the real port is advertised"},
			{Name: EnvTCPMaxMessageSize, Value: "33554432", Source: SourceDefault,
				Note: "bytes per frame, prefix included, on every plane"},
			{Name: EnvResponseStreamTimeout, Value: "30s", Source: SourceDefault},
			{Name: EnvSystemPort, Source: SourceDefault, Note: "status server off"},
			{Name: EnvSystemStartingHealthStatus, Value: "notready", Source: SourceDefault},
			{Name: EnvLog, Value: "info", Source: SourceDefault},
			{Name: EnvLogJSONL, Value: "false", Source: SourceDefault},
			{Name: EnvMaxInflightRequests, Value: "0", Source: SourceDefault, Note: "unlimited"},
		}},
		{"from env", map[string]string{
			EnvRequestPlane: "TCP,http2", EnvEtcdEndpoints: "e1:2379", EnvHTTPHost: "0.0.0.0", EnvTCPHost: "10.0.0.7",
			EnvHTTPRequestTimeout: "1500ms", EnvSystemPort: "0", EnvLog: "WARN", EnvLogJSONL: "on",
			EnvHTTPRootPath: "/", EnvMaxInflightRequests: "8",
		}, []Var{
			{Name: EnvRequestPlane, Value: "tcp,http", Source: SourceEnv,
				Note: "http2 is the http plane (HTTP/1.1 and h2c on one port)"},
			{Name: EnvEtcdEndpoints, Value: "e1:2379", Source: SourceEnv},
			{Name: EnvHTTPHost, Value: "0.0.0.0", Source: SourceEnv,
				Note: "all interfaces; advertised as 10.0.0.5 (auto-detected on eth0)"},
			{Name: EnvHTTPRootPath, Value: "", Source: SourceEnv, Note: "endpoints are served at /{endpoint}"},
			{Name: EnvHTTPRequestTimeout, Value: "1.5s", Source: SourceEnv},
			{Name: EnvTCPHost, Value: "10.0.0.7", Source: SourceEnv, Note: "advertised as 10.0.0.7"},
			{Name: EnvResponseStreamHost, Value: "0.0.0.0", Source: SourceDefault,
				Note: "all interfaces; advertised as 10.0.0.5 (auto-detected on eth0)"},
			{Name: EnvSystemPort, Value: "0", Source: SourceEnv, Note: "status server on an OS-assigned port"},
			{Name: EnvLog, Value: "warn", Source: SourceEnv},
			{Name: EnvLogJSONL, Value: "true", Source: SourceEnv},
			{Name: EnvMaxInflightRequests, Value: "8", Source: SourceEnv},
		}},
		{"secrets masked, precedence noted", map[string]string{
			EnvNATSServer:       "nats://alice:hunter2@n1:4222,nats://s3cr3t@n2:4222,nats://n3:4222",
			EnvNATSAuthUsername: "bob", EnvNATSAuthPassword: "pw-secret", EnvNATSAuthToken: "tok-secret",
			EnvNATSAuthNKey: seed, EnvEtcdAuthUsername: "root", EnvEtcdAuthPassword: "etcd-secret",
		}, []Var{
			{Name: EnvNATSServer, Value: "nats://alice:********@n1:4222,nats://********@n2:4222,nats://n3:4222",
				Source: SourceEnv},
			{Name: EnvNATSAuthUsername, Value: "bob", Source: SourceEnv, Note: "in use"},
			{Name: EnvNATSAuthPassword, Value: "********", Source: SourceEnv, Secret: true, Note: "in use"},
			{Name: EnvNATSAuthToken, Value: "********", Source: SourceEnv, Secret: true,
				Note: "ignored: NATS_AUTH_USERNAME+NATS_AUTH_PASSWORD takes precedence"},
			{Name: EnvNATSAuthNKey, Value: "********", Source: SourceEnv, Secret: true,
				Note: "ignored: NATS_AUTH_USERNAME+NATS_AUTH_PASSWORD takes precedence"},
			{Name: EnvEtcdAuthUsername, Value: "root", Source: SourceEnv},
			{Name: EnvEtcdAuthPassword, Value: "********", Source: SourceEnv, Secret: true},
		}},
		{"nkey over credentials", map[string]string{EnvNATSAuthNKey: seed, EnvNATSAuthCredentialsFile: "/c.creds"},
			[]Var{
				{Name: EnvNATSAuthNKey, Value: "********", Source: SourceEnv, Secret: true, Note: "in use"},
				{Name: EnvNATSAuthCredentialsFile, Value: "/c.creds", Source: SourceEnv,
					Note: "ignored: NATS_AUTH_NKEY takes precedence"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(tc.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, want := range tc.want {
				if got := findVar(t, cfg, want.Name); got != want {
					t.Errorf("%s:\n got %+v\nwant %+v", want.Name, got, want)
				}
			}
			dump := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
			for _, secret := range []string{"hunter2", "s3cr3t", "pw-secret", "tok-secret", seed, "etcd-secret"} {
				if strings.Contains(dump, secret) {
					t.Errorf("secret %q printed by %%v, %%+v or %%#v", secret)
				}
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	_, err := load(map[string]string{
		EnvNATSServer:    "nats://alice:hunter2@n1:4222, ftp://tok3n@n2",
		EnvEtcdEndpoints: "http://u:pa55@e:99999",
		EnvNATSAuthNKey:  "not-a-seed-but-secret",
	})
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, secret := range []string{"hunter2", "tok3n", "pa55", "not-a-seed-but-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("secret %q in error text: %v", secret, err)
		}
	}
}

func TestSecretFormatting(t *testing.T) {
	type holder struct {
		Auth    NATSAuth
		Pass    Secret
		Servers URLs
	}
	h := holder{Auth: NATSAuth{Method: NATSAuthToken, Token: "t0ken"}, Pass: "p4ss",
		Servers: URLs{"nats://u:p4ss@h:4222", "nats://t0ken@h2"}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "pass", h.Pass, "auth", h.Auth, "servers", h.Servers)
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", h),
		"%+v":  fmt.Sprintf("%+v", h),
		"%#v":  fmt.Sprintf("%#v", h),
		"%s":   fmt.Sprintf("%s", h.Pass),
		"json": string(js),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "t0ken") || strings.Contains(out, "p4ss") {
			t.Errorf("%s leaks a secret: %s", name, out)
		}
		if !strings.Contains(out, "********") {
			t.Errorf("%s shows no mask: %s", name, out)
		}
	}
	if !strings.Contains(string(js), `"Servers":["nats://u:********@h:4222","nats://********@h2"]`) {
		t.Errorf("URLs marshal as %s, want a JSON array of masked URLs", js)
	}
	if string(h.Pass) != "p4ss" || []string(h.Servers)[0] != "nats://u:p4ss@h:4222" {
		t.Errorf("string(Secret) = %q, want the real value", string(h.Pass))
	}
	if Secret("").String() != "" {
		t.Errorf("empty secret prints %q, want empty", Secret("").String())
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://h:4222", "nats://h:4222"},
		{"nats://user:pass@h:4222", "nats://user:********@h:4222"},
		{"nats://token@h:4222", "nats://********@h:4222"},
		{"e:2379", "e:2379"},
		{"%zz", "%zz"},
		{"nats://u:p@h:99999", "nats://u:********@h:99999"},
		{"u:p@e:2379/x@y", "u:********@e:2379/x@y"},
		{"nats://a@b@h", "nats://********@h"},
	}
	for _, tc := range tests {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEveryVariableDocumented keeps docs/configuration.md and the table of docs/usage.md complete
// as variables are added.
func TestEveryVariableDocumented(t *testing.T) {
	for _, file := range []string{"configuration.md", "usage.md"} {
		doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range allNames {
			if !bytes.Contains(doc, []byte("`"+name+"`")) {
				t.Errorf("docs/%s does not document %s", file, name)
			}
		}
	}
}
