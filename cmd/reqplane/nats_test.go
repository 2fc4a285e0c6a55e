package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// natsOutput collects a running command's output for the test goroutine.
type natsOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *natsOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *natsOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

var natsServingRE = regexp.MustCompile(`NATS is serving clients at (nats://127\.0\.0\.1:\d+) \(JetStream ([^,)]+)`)

// startNATSCmd runs `reqplane nats args...` until the returned cancel; wait returns its error.
func startNATSCmd(t *testing.T, args ...string) (url, jetstream string, out *natsOutput, cancel func(), wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &natsOutput{}
	cmd := newNATSCmd()
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(out)
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = cmd.ExecuteContext(ctx)
	}()
	waitFn := func() error {
		select {
		case <-done:
			return runErr
		case <-time.After(20 * time.Second):
			t.Fatal("reqplane nats did not return")
			return nil
		}
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("reqplane nats did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := natsServingRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], m[2], out, cancel, waitFn
		}
		select {
		case <-done:
			t.Fatalf("reqplane nats exited: %v\n%s", runErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("reqplane nats never said it serves:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNATSCmdServesUntilCanceled(t *testing.T) {
	tests := []struct {
		name          string
		args          func(store string) []string
		wantJetStream bool
		wantPayload   int64
	}{
		{"addr", func(store string) []string {
			return []string{"--addr", "127.0.0.1:0", "--store-dir", store}
		}, true, 1 << 20},
		// --host and --port replace both parts of --addr, which is never bound.
		{"host and port override addr", func(store string) []string {
			return []string{"--addr", "192.0.2.1:4222", "--host", "127.0.0.1", "--port", "0", "--store-dir", store, "--max-payload", "4096"}
		}, true, 4096},
		{"no jetstream", func(string) []string {
			return []string{"--addr", "127.0.0.1:0", "--jetstream=false"}
		}, false, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "nested", "store")
			url, js, out, cancel, wait := startNATSCmd(t, tt.args(store)...)
			if got := strings.HasPrefix(js, "on"); got != tt.wantJetStream {
				t.Errorf("JetStream %q, want on=%v", js, tt.wantJetStream)
			}
			if !strings.Contains(out.String(), "NATS_SERVER="+url) {
				t.Errorf("no NATS_SERVER hint for a non-default port:\n%s", out.String())
			}
			nc, err := nats.Connect(url, nats.Timeout(20*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if got := nc.MaxPayload(); got != tt.wantPayload {
				t.Errorf("max payload %d, want %d", got, tt.wantPayload)
			}
			_, err = nc.Request("$JS.API.INFO", nil, 20*time.Second)
			if tt.wantJetStream != (err == nil) {
				t.Errorf("JetStream API request: %v, want JetStream on=%v", err, tt.wantJetStream)
			}
			if tt.wantJetStream {
				if _, err := os.Stat(store); err != nil {
					t.Errorf("store dir: %v", err)
				}
			}
			nc.Close()
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("reqplane nats returned %v", err)
			}
			if !strings.Contains(out.String(), "NATS is stopping") {
				t.Errorf("no stop message:\n%s", out.String())
			}
			if nc2, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
				nc2.Close()
				t.Error("the server still accepts clients after the command returned")
			}
		})
	}
}

func TestNATSCmdPortInUse(t *testing.T) {
	url, _, _, _, _ := startNATSCmd(t, "--addr", "127.0.0.1:0", "--jetstream=false")
	addr := strings.TrimPrefix(url, "nats://")
	cmd := newNATSCmd()
	cmd.SetArgs([]string{"--addr", addr, "--jetstream=false"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second server on %s: %v, want an address-in-use error with a hint", addr, err)
	}
}

func TestNATSCmdErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad addr", []string{"--addr", "nonsense"}, `invalid --addr "nonsense"`},
		{"non-numeric port", []string{"--addr", "127.0.0.1:http"}, "is not a number"},
		{"port out of range", []string{"--addr", "127.0.0.1:0", "--port", "70000"}, "invalid port 70000"},
		{"empty host", []string{"--addr", ":0"}, "listen host is required"},
		{"negative max payload", []string{"--addr", "127.0.0.1:0", "--max-payload", "-1"}, "invalid --max-payload"},
		{"jetstream without store", []string{"--addr", "127.0.0.1:0", "--store-dir", ""}, "--store-dir is required"},
		{"arguments", []string{"extra"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newNATSCmd()
			cmd.SetArgs(tt.args)
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNATSListenAddr(t *testing.T) {
	h, p := "::1", 5000
	tests := []struct {
		addr     string
		host     *string
		port     *int
		wantHost string
		wantPort int
	}{
		{"127.0.0.1:4222", nil, nil, "127.0.0.1", 4222},
		{"[::1]:0", nil, nil, "::1", 0},
		{"127.0.0.1:4222", &h, nil, "::1", 4222},
		{"127.0.0.1:4222", nil, &p, "127.0.0.1", 5000},
	}
	for _, tt := range tests {
		gotHost, gotPort, err := natsListenAddr(tt.addr, tt.host, tt.port)
		if err != nil || gotHost != tt.wantHost || gotPort != tt.wantPort {
			t.Errorf("natsListenAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, gotHost, gotPort, err, tt.wantHost, tt.wantPort)
		}
	}
	if got := defaultNATSStoreDir(); got != "" && !strings.HasSuffix(got, filepath.Join("reqplane", "nats")) {
		t.Errorf("defaultNATSStoreDir() = %q", got)
	}
	if _, _, err := net.SplitHostPort(defaultNATSAddr); err != nil || defaultNATSAddr != "127.0.0.1:4222" {
		t.Errorf("defaultNATSAddr = %q", defaultNATSAddr)
	}
}
