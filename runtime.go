package reqplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/status"
	"github.com/reqplane/reqplane/internal/stream"
	"github.com/reqplane/reqplane/internal/telemetry"
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
	registerer prometheus.Registerer
	tracerProv trace.TracerProvider
}

// WithLogger sets the logger for lifecycle events (registered, lease lost, draining, instance
// marked down). Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// WithEtcdClient makes the runtime use an existing etcd client instead of dialing
// ETCD_ENDPOINTS. The runtime does not close it.
func WithEtcdClient(c *clientv3.Client) Option {
	return optionFunc(func(o *options) { o.etcdClient = c })
}

// WithMetricsRegistry registers the runtime's metrics (docs/observability.md) on reg instead of
// a fresh registry of its own. When reg is also a prometheus.Gatherer (a *prometheus.Registry
// is), the status server's /metrics serves it. Runtimes sharing a registry share its metric
// families: their series add up.
func WithMetricsRegistry(reg prometheus.Registerer) Option {
	return optionFunc(func(o *options) { o.registerer = reg })
}

// WithTracerProvider makes the runtime trace with tp. Default: when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, an OpenTelemetry SDK provider exporting with
// OTLP, which the runtime shuts down (flushing) on Close; otherwise no tracing, though an
// incoming W3C trace context is still passed on. The runtime does not shut tp down.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) { o.tracerProv = tp })
}

// Runtime is one process's view of a reqplane fleet: it serves endpoints (a worker) and calls
// them (a client). New does no I/O; connections are made when first needed, bounded by the
// context of the call that needs them. Close releases everything.
type Runtime struct {
	cfg  *Config
	opts options
	log  *slog.Logger

	startMu sync.Mutex // serialises Endpoint.Start

	created     time.Time      // origin of the status server's uptime
	ids         *codec.UUIDGen // request ids
	frames      sync.Pool      // *[]byte: request frame buffers, see putFrame
	metrics     *telemetry.Metrics
	gatherer    prometheus.Gatherer // nil when the registerer cannot be gathered
	tracer      *telemetry.Tracer
	ownTracer   *sdktrace.TracerProvider // built from OTEL_* by New; shut down by Close
	removeConns func()

	mu          sync.Mutex
	closed      bool
	etcd        *clientv3.Client
	ownEtcd     bool
	callHome    *stream.Server
	planeClient map[string]plane.Client
	worker      *worker
	clients     map[*Client]struct{}
	status      *status.Server
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
	rt.created = time.Now()
	rt.ids = codec.NewUUIDGen()
	rt.frames.New = func() any { b := make([]byte, 0, 1024); return &b }
	rt.initTelemetry()
	return rt
}

// initTelemetry sets up metrics and tracing; neither does I/O here.
func (rt *Runtime) initTelemetry() {
	reg := rt.opts.registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
	}
	if g, ok := reg.(prometheus.Gatherer); ok {
		rt.gatherer = g
	}
	m, err := telemetry.NewMetrics(reg)
	if err != nil {
		// The metrics still run, unexported: a registry conflict must not stop serving.
		rt.log.Warn("metrics: registering on the registry failed; these metrics are not exported", "err", err)
	}
	rt.metrics = m
	rt.removeConns = m.AddConnSource(rt.openConns)

	tp := rt.opts.tracerProv
	if tp == nil && rt.cfg.Tracing.Enabled {
		sdk, err := telemetry.NewProvider(context.Background(), rt.cfg.Tracing)
		if err != nil {
			rt.log.Warn("tracing: cannot build the OTLP exporter; tracing is off", "err", err)
		} else {
			rt.ownTracer, tp = sdk, sdk
		}
	}
	rt.tracer = telemetry.NewTracer(tp)
}

// openConns reports the plane clients' open connections (reqplane_connections_open).
func (rt *Runtime) openConns(yield func(plane string, open int)) {
	type counter interface{ OpenConns() int }
	rt.mu.Lock()
	cs := make([]plane.Client, 0, len(rt.planeClient))
	for _, c := range rt.planeClient {
		cs = append(cs, c)
	}
	rt.mu.Unlock()
	for _, c := range cs {
		if n, ok := c.(counter); ok {
			yield(c.Name(), n.OpenConns())
		}
	}
}

// MetricsGatherer returns what the status server's /metrics serves: the runtime's own registry,
// or the one given to WithMetricsRegistry when it can be gathered (else nil).
func (rt *Runtime) MetricsGatherer() prometheus.Gatherer { return rt.gatherer }

// StartStatus starts the status server (health, live and /metrics on DYN_SYSTEM_HOST and
// DYN_SYSTEM_PORT) when the configuration enables it; Endpoint.Start calls it. It does nothing
// when the server is disabled or already running. Close stops it.
func (rt *Runtime) StartStatus(ctx context.Context) error {
	sys := rt.cfg.System
	if !sys.Enabled {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return closedError()
	}
	if rt.status != nil {
		return nil
	}
	s := status.NewServer(status.Options{
		Host:       sys.BindHost,
		Port:       sys.Port,
		HealthPath: sys.HealthPath,
		LivePath:   sys.LivePath,
		Health:     rt.health,
		Gatherer:   rt.gatherer,
		Started:    rt.created,
		Logger:     rt.log,
	})
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("reqplane: starting the status server on %s: %w", sys.BindAddr(), err)
	}
	rt.status = s
	rt.log.Info("status server listening", "addr", s.Addr(), "health", sys.HealthPath, "live", sys.LivePath, "metrics", status.MetricsPath)
	return nil
}

// StatusAddr returns the status server's address (host:port), "" when it is not running.
func (rt *Runtime) StatusAddr() string {
	rt.mu.Lock()
	s := rt.status
	rt.mu.Unlock()
	if s == nil {
		return ""
	}
	return s.Addr()
}

// health is the status server's view of the runtime: before the worker is up it reports
// DYN_SYSTEM_STARTING_HEALTH_STATUS; then the worker's readiness.
func (rt *Runtime) health() status.Health {
	rt.mu.Lock()
	w := rt.worker
	rt.mu.Unlock()
	if w == nil {
		return status.Health{Ready: rt.cfg.System.StartingHealthStatus == config.HealthReady}
	}
	return w.health()
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
	statusSrv := rt.status
	rt.status = nil // StatusAddr reports it gone
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
	// The status server answered "notready" through the drain; it goes last of the servers.
	if statusSrv != nil {
		errs = append(errs, statusSrv.Close())
	}
	rt.removeConns()
	if rt.ownTracer != nil {
		// Flush the spans of the last requests, bounded like the drain.
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, rt.ownTracer.Shutdown(fctx))
		fcancel()
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

// maxPooledFrame bounds the request frame buffers kept for reuse: a large request's buffer is
// left to the garbage collector rather than held by the pool.
const maxPooledFrame = 64 << 10

// putFrame returns a request frame buffer, now holding frame, to the pool.
func (rt *Runtime) putFrame(fb *[]byte, frame []byte) {
	if cap(frame) > maxPooledFrame {
		return
	}
	*fb = frame[:0]
	rt.frames.Put(fb)
}
