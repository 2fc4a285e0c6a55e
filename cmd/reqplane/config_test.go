package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/reqplane/reqplane/internal/config"
)

// row returns the table row of variable name, split into columns on runs of 2+ spaces.
func row(t *testing.T, table, name string) []string {
	t.Helper()
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, name+" ") {
			var cols []string
			for col := range strings.SplitSeq(strings.TrimSpace(line), "  ") {
				if col = strings.TrimSpace(col); col != "" {
					cols = append(cols, col)
				}
			}
			return cols
		}
	}
	t.Fatalf("no row for %s in:\n%s", name, table)
	return nil
}

func TestConfigTable(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		// rows maps a variable to its expected columns: value, source[, note].
		rows map[string][]string
	}{
		{"one-machine defaults", nil, map[string][]string{
			config.EnvRequestPlane:       {"DYN_REQUEST_PLANE", "nats", "default"},
			config.EnvEtcdEndpoints:      {"ETCD_ENDPOINTS", "http://127.0.0.1:2379", "default", "one-machine fleet: unset hosts default to 127.0.0.1"},
			config.EnvHTTPHost:           {"DYN_HTTP_RPC_HOST", "127.0.0.1", "derived: ETCD_ENDPOINTS unset (one-machine fleet)", "advertised as 127.0.0.1"},
			config.EnvNATSAuthToken:      {"NATS_AUTH_TOKEN", "(unset)", "default"},
			config.EnvSystemPort:         {"DYN_SYSTEM_PORT", "(unset)", "default", "status server off"},
			config.EnvHTTPRequestTimeout: {"DYN_HTTP_REQUEST_TIMEOUT", "5s", "default"},
		}},
		{"from the environment", map[string]string{
			config.EnvEtcdEndpoints: "http://10.0.0.2:2379", config.EnvRequestPlane: "http2,tcp",
			config.EnvNATSAuthToken: "tok-secret", config.EnvHTTPRootPath: "/", config.EnvTCPHost: "0.0.0.0",
		}, map[string][]string{
			config.EnvRequestPlane:  {"DYN_REQUEST_PLANE", "http,tcp", "env", "http2 is the http plane (HTTP/1.1 and h2c on one port)"},
			config.EnvNATSAuthToken: {"NATS_AUTH_TOKEN", "********", "env", "in use"},
			config.EnvHTTPRootPath:  {"DYN_HTTP_RPC_ROOT_PATH", `""`, "env", "endpoints are served at /{endpoint}"},
			config.EnvTCPHost:       {"DYN_TCP_RPC_HOST", "0.0.0.0", "env", "all interfaces; advertised as 10.0.0.5 (auto-detected on eth0)"},
			config.EnvHTTPHost:      {"DYN_HTTP_RPC_HOST", "0.0.0.0", "default", "all interfaces; advertised as 10.0.0.5 (auto-detected on eth0)"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := testEnv(tc.vars)
			if code := run(context.Background(), []string{"config"}, e); code != 0 {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			table := stdout.String()
			if !strings.HasPrefix(table, "VARIABLE ") {
				t.Errorf("table has no header:\n%s", table)
			}
			cfg, err := e.loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Count(table, "\n"), len(cfg.Vars)+1; got != want {
				t.Errorf("table has %d lines, want %d (header + every variable)", got, want)
			}
			for _, v := range cfg.Vars {
				row(t, table, v.Name)
			}
			for name, want := range tc.rows {
				if got := row(t, table, name); !reflect.DeepEqual(got, want) {
					t.Errorf("row %s = %q, want %q", name, got, want)
				}
			}
			if strings.Contains(table, "tok-secret") {
				t.Error("secret printed")
			}
			for line := range strings.Lines(table) {
				if strings.HasSuffix(strings.TrimSuffix(line, "\n"), " ") {
					t.Errorf("trailing blanks in %q", line)
				}
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	vars := map[string]string{config.EnvNATSAuthUsername: "bob", config.EnvNATSAuthPassword: "pw-secret",
		config.EnvNATSServer: "nats://u:url-secret@n1:4222"}
	e, stdout, stderr := testEnv(vars)
	if code := run(context.Background(), []string{"config", "--json"}, e); code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	var doc struct {
		Variables []config.Var `json:"variables"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	cfg, err := e.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.Variables, cfg.Vars) {
		t.Errorf("JSON variables:\n got %+v\nwant %+v", doc.Variables, cfg.Vars)
	}
	for _, secret := range []string{"pw-secret", "url-secret"} {
		if strings.Contains(stdout.String(), secret) {
			t.Errorf("secret %q printed", secret)
		}
	}
	if !strings.Contains(stdout.String(), `"value": "nats://u:********@n1:4222"`) {
		t.Errorf("masked URL missing from:\n%s", stdout)
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name       string
		vars       map[string]string
		args       []string
		wantStderr string
	}{
		{"bogus plane", map[string]string{config.EnvRequestPlane: "bogus"}, []string{"config"},
			"reqplane: DYN_REQUEST_PLANE=\"bogus\": must be a comma-separated list of nats, http, http2, tcp\n"},
		{"bogus plane, json", map[string]string{config.EnvRequestPlane: "bogus"}, []string{"config", "--json"},
			"reqplane: DYN_REQUEST_PLANE=\"bogus\": must be a comma-separated list of nats, http, http2, tcp\n"},
		{"every error, one line each", map[string]string{config.EnvRequestPlane: "bogus", config.EnvHTTPPort: "x",
			config.EnvNATSAuthPassword: "pw-secret"}, []string{"config"},
			"reqplane: DYN_REQUEST_PLANE=\"bogus\": must be a comma-separated list of nats, http, http2, tcp\n" +
				"reqplane: NATS_AUTH_USERNAME (unset): required when NATS_AUTH_PASSWORD is set\n" +
				"reqplane: DYN_HTTP_RPC_PORT=\"x\": must be an integer from 0 to 65535\n"},
		{"secret masked in error", map[string]string{config.EnvNATSAuthNKey: "pw-secret"}, []string{"config"},
			"reqplane: NATS_AUTH_NKEY=\"********\": must be a NATS user nkey seed (58 characters of A-Z and 2-7, starting with SU)\n"},
		{"arguments refused", nil, []string{"config", "extra"}, "reqplane: unknown command \"extra\" for \"reqplane config\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := testEnv(tc.vars)
			if code := run(context.Background(), tc.args, e); code == 0 {
				t.Error("exit code 0, want non-zero")
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if stderr.String() != tc.wantStderr {
				t.Errorf("stderr:\n got %q\nwant %q", stderr, tc.wantStderr)
			}
		})
	}
}
