package etcdembed

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func loopbackConfig(dir string) Config {
	return Config{
		DataDir:          dir,
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		UnsafeNoFsync:    true,
	}
}

func newClient(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartRestartCompact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	s, err := Start(ctx, loopbackConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := s.Config()
	for _, raw := range append(cfg.ListenClientURLs, cfg.ListenPeerURLs...) {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Port() == "" {
			t.Fatalf("listen URL %q not resolved to a loopback port", raw)
		}
	}
	if got, want := s.Endpoints(), s.ClientURLs(); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("Endpoints() = %v, want the listen URLs %v", got, want)
	}

	c := newClient(t, s)
	if _, err := c.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	put, err := c.Put(ctx, "k", "v2")
	if err != nil {
		t.Fatal(err)
	}

	// Compaction through the client works, and reading below it reports ErrCompacted.
	if _, err := c.Compact(ctx, put.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k", clientv3.WithRev(put.Header.Revision-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("Get below the compaction: %v, want ErrCompacted", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Same data directory, same ports: the key survives and the old client reconnects.
	s2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	if got := s2.Endpoints(); got[0] != s.Endpoints()[0] {
		t.Fatalf("restart endpoints %v, want %v", got, s.Endpoints())
	}
	resp, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v2" {
		t.Fatalf("after restart Get = %v", resp.Kvs)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{}},
		{"bad log level", Config{DataDir: t.TempDir(), LogLevel: "loud"}},
		{"bad url", Config{DataDir: t.TempDir(), ListenClientURLs: []string{"::"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Start(context.Background(), tt.cfg); err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx, loopbackConfig(t.TempDir()))
	if err == nil {
		s.Close()
		t.Fatal("Start with a canceled context succeeded")
	}
}

func TestResolvePortsAdvertise(t *testing.T) {
	cfg, err := withDefaults(Config{
		DataDir:             "unused",
		ListenClientURLs:    []string{"http://127.0.0.1:0"},
		ListenPeerURLs:      []string{"http://127.0.0.1:0"},
		AdvertiseClientURLs: []string{"http://localhost:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, picked, err := resolvePorts(cfg)
	if err != nil || !picked {
		t.Fatalf("resolvePorts: picked %v, %v", picked, err)
	}
	l, _ := url.Parse(got.ListenClientURLs[0])
	a, _ := url.Parse(got.AdvertiseClientURLs[0])
	if a.Hostname() != "localhost" || a.Port() != l.Port() {
		t.Fatalf("advertise %q does not take listen port of %q", got.AdvertiseClientURLs[0], got.ListenClientURLs[0])
	}
	if cfg.ListenClientURLs[0] != "http://127.0.0.1:0" {
		t.Fatal("resolvePorts changed its input")
	}
}
