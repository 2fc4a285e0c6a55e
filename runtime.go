package reqplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/stream"
)

// Config is a process's configuration, read from the environment by LoadConfig (see
// docs/configuration.md for every variable).
type Config = config.Config

// LoadConfig reads the configuration from the environment. An invalid variable is an error that
// names it, the value and what is accepted.
func LoadConfig() (*Config, error) { return config.FromEnv() }

// LoadConfigFrom reads the configuration through lookup instead of the environment (tests, or a
// program that keeps its settings elsewhere).
func LoadConfigFrom(lookup func(name string) (string, bool)) (*Config, error) {
	return config.Load(lookup)
}

// Option configures a Runtime.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger     *slog.Logger
	etcdClient *clientv3.Client
}

// WithLogger sets the logger for lifecycle events (registered, lease lost, draining, instance
// marked down). Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// WithEtcdClient makes the runtime use an existing etcd client instead of dialing
// ETCD_ENDPOINTS. The runtime does not close it.
func WithEtcdClient(c *clientv3.Client) Option {
	return optionFunc(func(o *options) { o.etcdClient = c })
}

// Runtime is one process's view of a reqplane fleet: it serves endpoints (a worker) and calls
// them (a client). New does no I/O; connections are made when first needed, bounded by the
// context of the call that needs them. Close releases everything.
type Runtime struct {
	cfg  *Config
	opts options
	log  *slog.Logger

	startMu sync.Mutex // serialises Endpoint.Start

	mu          sync.Mutex
	closed      bool
	etcd        *clientv3.Client
	ownEtcd     bool
	callHome    *stream.Server
	planeClient map[string]plane.Client
	worker      *worker
	clients     map[*Client]struct{}
}

// New returns a runtime for cfg. It does no I/O.
func New(cfg *Config, opts ...Option) *Runtime {
	rt := &Runtime{cfg: cfg, planeClient: map[string]plane.Client{}, clients: map[*Client]struct{}{}}
	for _, o := range opts {
		o.apply(&rt.opts)
	}
	rt.log = rt.opts.logger
	if rt.log == nil {
		rt.log = slog.Default()
	}
	return rt
}

// Config returns the runtime's configuration.
func (rt *Runtime) Config() *Config { return rt.cfg }

// Namespace returns a handle on a namespace; it does nothing by itself.
func (rt *Runtime) Namespace(name string) Namespace { return Namespace{rt: rt, name: name} }

// Endpoint returns a handle on the endpoint id.
func (rt *Runtime) Endpoint(id EndpointID) *Endpoint { return &Endpoint{rt: rt, id: id} }

// Namespace is a handle on a namespace of a Runtime.
type Namespace struct {
	rt   *Runtime
	name string
}

// Component returns a handle on a component of the namespace.
func (n Namespace) Component(name string) Component {
	return Component{rt: n.rt, namespace: n.name, name: name}
}

// Component is a handle on a component of a namespace.
type Component struct {
	rt        *Runtime
	namespace string
	name      string
}

// Endpoint returns a handle on an endpoint of the component.
func (c Component) Endpoint(name string) *Endpoint {
	return c.rt.Endpoint(EndpointID{Namespace: c.namespace, Component: c.name, Endpoint: name})
}

// Endpoint is a handle on one endpoint: serve it, or get a client for it.
type Endpoint struct {
	rt *Runtime
	id EndpointID
}

// ID returns the endpoint's id.
func (e *Endpoint) ID() EndpointID { return e.id }

// errClosed is returned by every call on a closed runtime.
func closedError() error { return &Error{Code: CodeClosed, Message: "reqplane: runtime closed"} }

// etcdClient returns the runtime's etcd client, dialing it on first use.
func (rt *Runtime) etcdClient(ctx context.Context) (*clientv3.Client, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, closedError()
	}
	if rt.etcd != nil {
		return rt.etcd, nil
	}
	if rt.opts.etcdClient != nil {
		rt.etcd = rt.opts.etcdClient
		return rt.etcd, nil
	}
	e := rt.cfg.Etcd
	cli, err := etcd.NewClient(ctx, etcd.ClientConfig{
		Endpoints: []string(e.Endpoints),
		Username:  e.Username,
		Password:  string(e.Password),
		CAFile:    e.CAFile,
		CertFile:  e.ClientCertFile,
		KeyFile:   e.ClientKeyFile,
		Logger:    rt.log,
	})
	if err != nil {
		return nil, &Error{Code: CodeUnreachable, Message: err.Error(), Err: err}
	}
	rt.etcd, rt.ownEtcd = cli, true
	return cli, nil
}

// callHomeServer returns the process's call-home listener, starting it on first use.
func (rt *Runtime) callHomeServer(ctx context.Context) (*stream.Server, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, closedError()
	}
	if rt.callHome != nil {
		return rt.callHome, nil
	}
	rs := rt.cfg.ResponseStream
	s := stream.NewServer(stream.ServerOptions{
		Host:            rs.BindHost,
		Port:            rs.Port,
		AdvertiseHost:   rs.AdvertiseHost,
		MaxMessageSize:  rt.cfg.TCP.MaxMessageSize,
		PrologueTimeout: rs.Timeout,
		Logger:          rt.log,
	})
	if err := s.Start(ctx); err != nil {
		return nil, fmt.Errorf("reqplane: starting the call-home listener on %s: %w", rs.BindAddr(), err)
	}
	rt.callHome = s
	return s, nil
}

// client returns the egress of the named plane, creating it on first use.
func (rt *Runtime) client(name string) (plane.Client, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, closedError()
	}
	if c := rt.planeClient[name]; c != nil {
		return c, nil
	}
	c, err := newPlaneClient(rt.cfg, name, rt.log)
	if err != nil {
		return nil, err
	}
	rt.planeClient[name] = c
	return c, nil
}

// Shutdown stops serving, in the order of docs/concurrency.md: revoke the lease so that clients
// stop picking this instance, refuse new requests, let requests in flight finish until ctx
// ends, cancel the rest, close the planes. Clients of this runtime keep working.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.mu.Lock()
	w := rt.worker
	rt.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.shutdown(ctx)
}

// DefaultShutdownTimeout bounds the drain that Close performs.
const DefaultShutdownTimeout = 10 * time.Second

// Close shuts the worker down (draining for at most DefaultShutdownTimeout), closes every
// client and stream, and releases the connections. It is idempotent.
func (rt *Runtime) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	err := rt.Shutdown(ctx)

	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	clients := make([]*Client, 0, len(rt.clients))
	for c := range rt.clients {
		clients = append(clients, c)
	}
	rt.mu.Unlock()

	var errs []error
	errs = append(errs, err)
	for _, c := range clients {
		errs = append(errs, c.Close())
	}
	// Nothing else touches these fields once closed is set.
	var closers []io.Closer
	if rt.callHome != nil {
		closers = append(closers, rt.callHome)
	}
	for _, c := range rt.planeClient {
		closers = append(closers, c)
	}
	if rt.etcd != nil && rt.ownEtcd {
		closers = append(closers, rt.etcd)
	}
	for _, c := range closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
