package status

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBody(t *testing.T) {
	tests := []struct {
		name   string
		h      Health
		uptime time.Duration
		want   string
	}{
		{"spec example", Health{Ready: true, Endpoints: map[string]bool{"generate": true}}, 18*time.Second + 356504530,
			`{"endpoints":{"generate":"ready"},"status":"ready","uptime":{"nanos":356504530,"secs":18}}`},
		{"keys sorted, one not ready", Health{Endpoints: map[string]bool{"z": true, "a": false}}, time.Millisecond,
			`{"endpoints":{"a":"notready","z":"ready"},"status":"notready","uptime":{"nanos":1000000,"secs":0}}`},
		{"no endpoints", Health{}, 0, `{"endpoints":{},"status":"notready","uptime":{"nanos":0,"secs":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Body(tt.h, tt.uptime)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	var ready atomic.Bool
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	s := NewServer(Options{
		Host:       "127.0.0.1",
		HealthPath: "/healthz",
		Health: func() Health {
			return Health{Ready: ready.Load(), Endpoints: map[string]bool{"generate": ready.Load()}}
		},
		Gatherer: reg,
	})
	if s.Addr() != "" {
		t.Fatal("address before Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	base := "http://" + s.Addr()
	tests := []struct {
		name     string
		ready    bool
		method   string
		path     string
		code     int
		contains string
	}{
		{"not ready", false, "GET", "/healthz", 503, `"status":"notready"`},
		{"live while not ready", false, "GET", "/live", 200, `"status":"notready"`},
		{"ready", true, "GET", "/healthz", 200, `{"endpoints":{"generate":"ready"},"status":"ready","uptime":{`},
		{"head", true, "HEAD", "/healthz", 200, ""},
		{"metrics", true, "GET", "/metrics", 200, "test_total 3"},
		{"unknown path", true, "GET", "/health", 404, ""},
		{"wrong method", true, "POST", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			code, body := get(t, tt.method, base+tt.path)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.contains)
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := NewServer(Options{})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	port := a.Addr()[strings.LastIndexByte(a.Addr(), ':')+1:]
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	b := NewServer(Options{Port: p})
	if err := b.Start(ctx); err == nil || !strings.Contains(err.Error(), "status server: listen on 127.0.0.1:"+port) {
		b.Close()
		t.Fatalf("second server on a busy port: %v", err)
	}
}
