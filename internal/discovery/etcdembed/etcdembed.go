package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/reqplane/reqplane/internal/discovery/zapslog"
)

// Defaults, as etcd's own.
const (
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	DefaultName      = "default"
	DefaultLogLevel  = "error"
)

// portAttempts bounds the retries when a port picked for port 0 was taken before etcd bound it.
const portAttempts = 3

// Config describes a single-member etcd server.
type Config struct {
	// Name is the member name (etcd's --name). Default "default".
	Name string
	// DataDir holds the member's data (etcd's --data-dir). Required. Starting again on the same
	// directory resumes the same member with its keys and leases.
	DataDir string
	// ListenClientURLs are the client listeners (--listen-client-urls). Default DefaultClientURL.
	// Port 0 picks a free port; Server.Config reports the one chosen.
	ListenClientURLs []string
	// ListenPeerURLs are the peer listeners (--listen-peer-urls). Default DefaultPeerURL; port 0
	// as above. A single member needs them only for etcd's bookkeeping.
	ListenPeerURLs []string
	// AdvertiseClientURLs are the URLs clients are told to use (--advertise-client-urls).
	// Default: the listen client URLs. A port 0 here takes the port chosen for the listen URL
	// at the same position.
	AdvertiseClientURLs []string
	// LogLevel is the lowest etcd log level forwarded to Logger: debug, info, warn or error.
	// Default "error", as etcd is chatty at info.
	LogLevel string
	// Logger receives etcd's logs. Nil discards them.
	Logger *slog.Logger
	// UnsafeNoFsync disables fsync (etcd's --unsafe-no-fsync): for tests only, a crash loses data.
	UnsafeNoFsync bool
}

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	cfg       Config
	closeOnce sync.Once
}

// Start starts a single-member etcd and returns once it serves clients (etcd's ReadyNotify),
// or fails when ctx ends first. A data directory written by an earlier Start is resumed.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	level, err := zapslog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: %w", err)
	}
	for attempt := 1; ; attempt++ {
		resolved, picked, err := resolvePorts(cfg)
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, resolved, level)
		if err == nil {
			return s, nil
		}
		// A port chosen for port 0 can be taken by someone else before etcd binds it.
		if !picked || attempt == portAttempts || !errors.Is(err, syscall.EADDRINUSE) || ctx.Err() != nil {
			return nil, err
		}
	}
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.DataDir == "" {
		return cfg, errors.New("etcdembed: a data directory is required")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if len(cfg.ListenClientURLs) == 0 {
		cfg.ListenClientURLs = []string{DefaultClientURL}
	}
	if len(cfg.ListenPeerURLs) == 0 {
		cfg.ListenPeerURLs = []string{DefaultPeerURL}
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = DefaultLogLevel
	}
	cfg.ListenClientURLs = slices.Clone(cfg.ListenClientURLs)
	cfg.ListenPeerURLs = slices.Clone(cfg.ListenPeerURLs)
	cfg.AdvertiseClientURLs = slices.Clone(cfg.AdvertiseClientURLs)
	return cfg, nil
}

// resolvePorts replaces port 0 in listen URLs by free ports and fills the advertised client
// URLs. picked reports whether any port was chosen here.
func resolvePorts(cfg Config) (_ Config, picked bool, err error) {
	// Work on copies: on a retry the caller resolves its port-0 URLs afresh.
	cfg.ListenClientURLs = slices.Clone(cfg.ListenClientURLs)
	cfg.ListenPeerURLs = slices.Clone(cfg.ListenPeerURLs)
	cfg.AdvertiseClientURLs = slices.Clone(cfg.AdvertiseClientURLs)
	for _, urls := range [][]string{cfg.ListenClientURLs, cfg.ListenPeerURLs} {
		for i, raw := range urls {
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				return cfg, false, fmt.Errorf("etcdembed: invalid URL %q", raw)
			}
			if u.Port() != "0" {
				continue
			}
			port, err := freePort(u.Hostname())
			if err != nil {
				return cfg, false, fmt.Errorf("etcdembed: choosing a port for %s: %w", raw, err)
			}
			u.Host = net.JoinHostPort(u.Hostname(), port)
			urls[i] = u.String()
			picked = true
		}
	}
	if len(cfg.AdvertiseClientURLs) == 0 {
		cfg.AdvertiseClientURLs = slices.Clone(cfg.ListenClientURLs)
	}
	for i, raw := range cfg.AdvertiseClientURLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return cfg, false, fmt.Errorf("etcdembed: invalid URL %q", raw)
		}
		if u.Port() != "0" {
			continue
		}
		l, _ := url.Parse(cfg.ListenClientURLs[min(i, len(cfg.ListenClientURLs)-1)])
		u.Host = net.JoinHostPort(u.Hostname(), l.Port())
		cfg.AdvertiseClientURLs[i] = u.String()
	}
	return cfg, picked, nil
}

// freePort asks the OS for a free port on host. embed has no way to take a listener or to
// report a port it chose, and the peer URL is recorded in the member's data, so the port must
// be known before etcd starts.
func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func parseURLs(raw []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(raw))
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("etcdembed: invalid URL %q: %w", s, err)
		}
		out = append(out, *u)
	}
	return out, nil
}

func start(ctx context.Context, cfg Config, level slog.Level) (*Server, error) {
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	var err error
	if ec.ListenClientUrls, err = parseURLs(cfg.ListenClientURLs); err != nil {
		return nil, err
	}
	if ec.AdvertiseClientUrls, err = parseURLs(cfg.AdvertiseClientURLs); err != nil {
		return nil, err
	}
	if ec.ListenPeerUrls, err = parseURLs(cfg.ListenPeerURLs); err != nil {
		return nil, err
	}
	ec.AdvertisePeerUrls = slices.Clone(ec.ListenPeerUrls)
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.ClusterState = embed.ClusterStateFlagNew
	ec.Logger = "zap"
	ec.LogLevel = strings.ToLower(cfg.LogLevel)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapslog.New(cfg.Logger, level))
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: starting etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Server{etcd: e, cfg: cfg}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdembed: etcd failed while starting: %w", err)
	case <-e.Server.StopNotify():
		e.Close()
		return nil, errors.New("etcdembed: etcd stopped while starting")
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcdembed: waiting for etcd to be ready: %w", ctx.Err())
	}
}

// Config returns the configuration the server runs with, ports chosen: Start(ctx, s.Config())
// after Close restarts the same member on the same data directory and ports.
func (s *Server) Config() Config {
	c := s.cfg
	c.ListenClientURLs = slices.Clone(c.ListenClientURLs)
	c.ListenPeerURLs = slices.Clone(c.ListenPeerURLs)
	c.AdvertiseClientURLs = slices.Clone(c.AdvertiseClientURLs)
	return c
}

// ClientURLs returns the URLs the server listens on for clients.
func (s *Server) ClientURLs() []string { return slices.Clone(s.cfg.ListenClientURLs) }

// Endpoints returns the URLs clients should dial (the advertised client URLs).
func (s *Server) Endpoints() []string { return slices.Clone(s.cfg.AdvertiseClientURLs) }

// Err reports a failure of the running server (a listener or handler error); it is closed
// when the server is closed.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the server and waits until it has stopped. It is idempotent. etcd lets open
// client streams (watches, lease keep-alives) finish for up to its request timeout, about
// 7 s: close clients first for a quick stop.
func (s *Server) Close() error {
	s.closeOnce.Do(s.etcd.Close)
	return nil
}
