package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health statuses, as Dynamo writes them.
const (
	StatusReady    = "ready"
	StatusNotReady = "notready"
)

// MetricsPath is where the Prometheus text is served.
const MetricsPath = "/metrics"

// Defaults for zero Options fields.
const (
	DefaultHost       = "127.0.0.1"
	DefaultHealthPath = "/health"
	DefaultLivePath   = "/live"
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	shutdownGrace     = 2 * time.Second
)

// ErrStarted is returned by a second Start; ErrClosed by Start after Close.
var (
	ErrStarted = errors.New("status server: already started")
	ErrClosed  = errors.New("status server: closed")
)

// Health is the process's readiness at one instant.
type Health struct {
	// Ready is the overall status: 200 "ready", else 503 "notready".
	Ready bool
	// Endpoints maps each served endpoint's key (its name, as in Dynamo) to its readiness.
	Endpoints map[string]bool
}

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	// Host and Port to bind; Port 0 lets the OS pick. Default host 127.0.0.1.
	Host string
	Port int
	// HealthPath and LivePath: defaults /health and /live.
	HealthPath string
	LivePath   string
	// Health is asked at every health or live request. Nil: always ready, no endpoints.
	Health func() Health
	// Gatherer is served on /metrics. Nil: an empty registry.
	Gatherer prometheus.Gatherer
	// Started is the origin of "uptime". Zero: when Start ran.
	Started time.Time
	// Logger receives server errors. Default: discard.
	Logger *slog.Logger
}

// Server is the status server. Its zero value is not usable: call NewServer.
type Server struct {
	opts    Options
	metrics http.Handler

	mu     sync.Mutex
	srv    *http.Server
	ln     net.Listener
	served chan struct{}
	closed bool
}

// NewServer returns a server for opts. It does no I/O: Start binds.
func NewServer(opts Options) *Server {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.HealthPath == "" {
		opts.HealthPath = DefaultHealthPath
	}
	if opts.LivePath == "" {
		opts.LivePath = DefaultLivePath
	}
	if opts.Health == nil {
		opts.Health = func() Health { return Health{Ready: true} }
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts}
	s.metrics = promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failing collector must not hide the others
	})
	return s
}

// Start binds the listener and serves in a goroutine that Close stops.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.srv != nil:
		return ErrStarted
	}
	addr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("status server: listen on %s: %w", addr, err)
	}
	if s.opts.Started.IsZero() {
		s.opts.Started = time.Now()
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	s.ln, s.served = ln, make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("status server stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}(s.srv, s.served)
	return nil
}

// Addr returns the bound address ("127.0.0.1:9090"), "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server and waits for its goroutine. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close() // past the grace period: cut the scrapes still running
	}
	<-served
	return err
}

// ServeHTTP answers GET (and HEAD) on the health, live and metrics paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != s.opts.HealthPath && path != s.opts.LivePath && path != MetricsPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if path == MetricsPath {
		s.metrics.ServeHTTP(w, r)
		return
	}
	h := s.opts.Health()
	body := Body(h, time.Since(s.opts.Started))
	code := http.StatusOK
	// Liveness says only that the process answers; readiness is the health path's.
	if path == s.opts.HealthPath && !h.Ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// healthDoc is the health body: field order = sorted keys, as Dynamo prints them.
type healthDoc struct {
	Endpoints map[string]string `json:"endpoints"` // encoding/json sorts map keys
	Status    string            `json:"status"`
	Uptime    uptimeDoc         `json:"uptime"`
}

// uptimeDoc is a Rust Duration as serde writes it, keys sorted.
type uptimeDoc struct {
	Nanos int64 `json:"nanos"`
	Secs  int64 `json:"secs"`
}

// Body returns the health document for h after uptime:
// {"endpoints":{"generate":"ready"},"status":"ready","uptime":{"nanos":356504530,"secs":18}}.
func Body(h Health, uptime time.Duration) []byte {
	doc := healthDoc{
		Endpoints: make(map[string]string, len(h.Endpoints)),
		Status:    statusText(h.Ready),
		Uptime:    uptimeDoc{Secs: int64(uptime / time.Second), Nanos: int64(uptime % time.Second)},
	}
	for k, ready := range h.Endpoints {
		doc.Endpoints[k] = statusText(ready)
	}
	b, _ := json.Marshal(doc) // strings and integers: cannot fail
	return b
}

func statusText(ready bool) string {
	if ready {
		return StatusReady
	}
	return StatusNotReady
}
