package natsembed

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// startCtx bounds a server start; generous for -race on a loaded machine.
func startCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(startCtx(t), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestStartServesClients(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		maxPayload int
	}{
		{"defaults, random port", Options{}, 1 << 20},
		{"port -1", Options{Host: "127.0.0.1", Port: -1}, 1 << 20},
		{"small max payload", Options{MaxPayload: 1024}, 1024},
		{"jetstream", Options{JetStream: true, StoreDir: "", MaxPayload: 4096}, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.JetStream {
				tt.opts.StoreDir = t.TempDir()
			}
			s := start(t, tt.opts)
			u := s.ClientURL()
			if !strings.HasPrefix(u, "nats://127.0.0.1:") || strings.HasSuffix(u, ":0") || strings.HasSuffix(u, ":4222") {
				t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<random port>", u)
			}
			if got := s.Addr().String(); "nats://"+got != u {
				t.Errorf("Addr = %s, ClientURL = %s", got, u)
			}
			if got := s.MaxPayload(); got != tt.maxPayload {
				t.Errorf("MaxPayload = %d, want %d", got, tt.maxPayload)
			}
			if got := s.JetStreamEnabled(); got != tt.opts.JetStream {
				t.Errorf("JetStreamEnabled = %v, want %v", got, tt.opts.JetStream)
			}
			nc := connect(t, u)
			if got := nc.MaxPayload(); got != int64(tt.maxPayload) {
				t.Errorf("client sees max_payload %d, want %d", got, tt.maxPayload)
			}
			// A request/reply round trip proves the server routes messages.
			sub, err := nc.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) })
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			reply, err := nc.Request("echo", []byte("ping"), 10*time.Second)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if string(reply.Data) != "ping" {
				t.Fatalf("reply %q, want ping", reply.Data)
			}
			if tt.opts.JetStream {
				// JetStream answers its API only when it runs.
				if _, err := nc.Request("$JS.API.INFO", nil, 10*time.Second); err != nil {
					t.Fatalf("JetStream API: %v", err)
				}
			}
			if n := s.NumClients(); n != 1 {
				t.Errorf("NumClients = %d, want 1", n)
			}
		})
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
		is   error
	}{
		{"jetstream without store", Options{JetStream: true}, "store directory", ErrStoreDirRequired},
		{"negative port", Options{Port: -2}, "invalid port -2", nil},
		{"port too large", Options{Port: 70000}, "invalid port 70000", nil},
		{"negative max payload", Options{MaxPayload: -1}, "invalid max payload", nil},
		{"max payload over int32", Options{MaxPayload: math.MaxInt32 + 1}, "invalid max payload", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(startCtx(t), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	first := start(t, Options{})
	_, port, err := net.SplitHostPort(first.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	s, err := Start(startCtx(t), Options{Port: p})
	if err == nil {
		s.Close()
		t.Fatal("second server on the same port started")
	}
	if !strings.Contains(err.Error(), "failed to start") || !strings.Contains(err.Error(), port) {
		t.Errorf("error %q should say the server failed to start on port %s", err, port)
	}
	// The failed start must not disturb the first server.
	connect(t, first.ClientURL())
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := Start(ctx, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded with a canceled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s, err := Start(startCtx(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := s.ClientURL()
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if nc, err := nats.Connect(u, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected to a closed server")
	}
}

func TestDialableURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://0.0.0.0:4222", "nats://127.0.0.1:4222"},
		{"nats://[::]:4222", "nats://[::1]:4222"},
		{"nats://[::1]:5000", "nats://[::1]:5000"},
		{"nats://localhost:4222", "nats://localhost:4222"},
		{"::bad url", "::bad url"},
	}
	for _, tt := range tests {
		if got := dialableURL(tt.in); got != tt.want {
			t.Errorf("dialableURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoggerForwards(t *testing.T) {
	var buf syncBuffer
	s := start(t, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	s.Close()
	out := buf.String()
	for _, want := range []string{"Starting nats-server", "Server is ready", "component=nats-server"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
