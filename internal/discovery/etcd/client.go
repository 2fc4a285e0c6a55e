package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/zapslog"
)

// DefaultEndpoint is the etcd a one-machine fleet uses when no endpoints are configured.
const DefaultEndpoint = "http://127.0.0.1:2379"

// DefaultDialTimeout bounds NewClient's connection and reachability check.
const DefaultDialTimeout = 3 * time.Second

// Client keep-alive pings detect a dead connection (a half-open TCP socket after a crash or a
// partition). etcd refuses pings more often than every 5 s.
const (
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 3 * time.Second
)

// reconnect caps gRPC's reconnection backoff (its default grows to 2 minutes), so clients find
// an etcd that comes back after an outage within seconds.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// ErrUnreachable reports that no configured etcd endpoint answered.
var ErrUnreachable = errors.New("etcd is not reachable")

// UnreachableError is the typed form of ErrUnreachable.
type UnreachableError struct {
	Endpoints []string
	Err       error // why: a dial error, or no answer in time
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("etcd at %s is not reachable (%v): start one with \"reqplane etcd\" or set ETCD_ENDPOINTS",
		redactEndpoints(e.Endpoints), e.Err)
}

// redactEndpoints joins endpoints for messages, masking any password in them.
func redactEndpoints(eps []string) string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep
		if u, err := url.Parse(ep); err == nil && u.User != nil {
			out[i] = u.Redacted()
		}
	}
	return strings.Join(out, ",")
}

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

func (e *UnreachableError) Unwrap() error { return e.Err }

// ClientConfig says how to reach etcd. The config package fills it from ETCD_ENDPOINTS and
// ETCD_AUTH_*.
type ClientConfig struct {
	Endpoints []string // default DefaultEndpoint
	Username  string
	Password  string
	CAFile    string // trusted CA bundle (PEM); https endpoints without it use the system roots
	CertFile  string // client certificate (PEM), with KeyFile
	KeyFile   string
	// DialTimeout bounds connecting and the reachability check of NewClient. Default 3 s.
	DialTimeout time.Duration
	// Logger receives the etcd client's own errors. Nil discards them.
	Logger *slog.Logger
}

func (c ClientConfig) endpoints() []string {
	if len(c.Endpoints) == 0 {
		return []string{DefaultEndpoint}
	}
	return c.Endpoints
}

func (c ClientConfig) tlsConfig() (*tls.Config, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("etcd client certificate and key must be given together")
	}
	if c.CAFile == "" && c.CertFile == "" {
		for _, ep := range c.endpoints() {
			if strings.HasPrefix(ep, "https://") {
				return &tls.Config{MinVersion: tls.VersionTLS12}, nil
			}
		}
		return nil, nil
	}
	info := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.CAFile}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return cfg, nil
}

// NewClient connects to etcd and checks that it answers. With nothing answering it fails
// within about DialTimeout with an *UnreachableError; it never retries beyond that. The
// caller owns the client and must Close it.
func NewClient(ctx context.Context, cfg ClientConfig) (*clientv3.Client, error) {
	eps := cfg.endpoints()
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// clientv3.New connects lazily; it only talks to etcd when authenticating, bounded by
	// DialTimeout. The Get below is the explicit probe.
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          timeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               zapslog.New(cfg.Logger, slog.LevelError),
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(reconnect)},
	})
	if err != nil {
		return nil, probeError(ctx, pctx, eps, err)
	}
	// Serializable: any member that answers proves reachability, even without a leader.
	if _, err := c.Get(pctx, discovery.InstancesRoot, clientv3.WithCountOnly(), clientv3.WithSerializable()); err != nil {
		c.Close()
		return nil, probeError(ctx, pctx, eps, err)
	}
	return c, nil
}

// probeError tells "nobody answered" (UnreachableError, with a dial error where one explains
// it) from an answer that refused us (bad credentials, TLS), which is returned as it is.
func probeError(ctx, pctx context.Context, eps []string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	code := status.Code(err)
	timedOut := errors.Is(err, context.DeadlineExceeded) || pctx.Err() != nil ||
		code == codes.DeadlineExceeded || code == codes.Unavailable
	if !timedOut {
		return fmt.Errorf("etcd at %s: %w", redactEndpoints(eps), err)
	}
	reason := dialReason(ctx, eps)
	if reason == nil {
		reason = fmt.Errorf("no answer in time: %w", err)
	}
	return &UnreachableError{Endpoints: eps, Err: reason}
}

// dialReason dials the first endpoint briefly to name why it is unreachable ("connection
// refused" is clearer than a deadline). It returns nil when the dial succeeds.
func dialReason(ctx context.Context, eps []string) error {
	host := eps[0]
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
			return nil
		}
		host = u.Host
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "2379")
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", host)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}
