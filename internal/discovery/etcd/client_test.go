package etcd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewClientUnreachable(t *testing.T) {
	// A port that was free a moment ago: nothing answers there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		endpoint string
		shown    string // how the message names the endpoint
	}{
		{"url", "http://" + addr, "http://" + addr},
		{"host:port", addr, addr},
		{"password masked", "http://user:secret@" + addr, "http://user:xxxxx@" + addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The outer deadline is far beyond DialTimeout: NewClient must give up by itself.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := NewClient(ctx, ClientConfig{Endpoints: []string{tt.endpoint}, DialTimeout: time.Second})
			if err == nil {
				c.Close()
				t.Fatal("NewClient succeeded with nothing listening")
			}
			var ue *UnreachableError
			if !errors.Is(err, ErrUnreachable) || !errors.As(err, &ue) || ctx.Err() != nil {
				t.Fatalf("error %v (outer ctx %v), want an UnreachableError before the outer deadline", err, ctx.Err())
			}
			msg := err.Error()
			for _, want := range []string{
				"etcd at " + tt.shown + " is not reachable (",
				"connection refused",
				`): start one with "reqplane etcd" or set ETCD_ENDPOINTS`,
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}

func TestNewClientCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := NewClient(ctx, ClientConfig{Endpoints: []string{"http://127.0.0.1:1"}})
	if err == nil {
		c.Close()
		t.Fatal("NewClient succeeded with a canceled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestClientConfigTLS(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantTLS bool
		wantErr bool
	}{
		{"plain http", ClientConfig{}, false, false},
		{"https uses system roots", ClientConfig{Endpoints: []string{"https://127.0.0.1:2379"}}, true, false},
		{"cert without key", ClientConfig{CertFile: garbage}, false, true},
		{"key without cert", ClientConfig{KeyFile: garbage}, false, true},
		{"unreadable CA", ClientConfig{CAFile: filepath.Join(dir, "missing.pem")}, false, true},
		{"bad key pair", ClientConfig{CertFile: garbage, KeyFile: garbage}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.tlsConfig()
			if (err != nil) != tt.wantErr || (got != nil) != tt.wantTLS {
				t.Fatalf("tlsConfig() = %v, %v", got, err)
			}
			if tt.wantErr {
				c, err := NewClient(context.Background(), tt.cfg)
				if err == nil {
					c.Close()
					t.Fatal("NewClient accepted a bad TLS configuration")
				}
			}
		})
	}
}

func TestNewClientReachable(t *testing.T) {
	s := startEtcd(t)
	c := newTestClient(t, s.Endpoints())
	if _, err := c.Put(testContext(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.5}
	tests := []struct {
		attempt int
		hi      time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{50, time.Second},
	}
	for _, tt := range tests {
		for range 20 {
			d := b.Delay(tt.attempt)
			if d > tt.hi || d < tt.hi/2 {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.hi/2, tt.hi)
			}
		}
	}
	if d := (Backoff{}).Delay(100); d > DefaultBackoff().Max || d <= 0 {
		t.Errorf("zero Backoff Delay(100) = %v, want within the default max", d)
	}
	if d := (Backoff{Min: time.Second, Max: time.Millisecond}).Delay(0); d > time.Second || d <= 0 {
		t.Errorf("Max below Min: Delay(0) = %v", d)
	}
}
