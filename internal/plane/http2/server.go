package http2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// Defaults for zero Options fields.
const (
	DefaultHost              = "127.0.0.1"
	DefaultRootPath          = "/v1/dynamo"
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

const (
	// maxStreams is the HTTP/2 concurrent-stream limit per connection: a requester multiplexes
	// its whole fan-out to one worker over one or a few connections.
	maxStreams = 1000
	// maxWindow is the connection's receive window: it is shared by every stream of the
	// connection, so a small one would throttle many concurrent uploads.
	maxWindow = 4<<20 - 1
	// streamWindow lets one request body of up to 1 MiB arrive without a window update.
	streamWindow = 1 << 20
	// readFrameSize lets peers send large bodies in few DATA frames.
	readFrameSize = 1 << 20
	// serverReadBuffer is each h2c connection's read buffer.
	serverReadBuffer = 16 << 10
	// shutdownGrace bounds how long Close waits for requests being read before it cuts them.
	shutdownGrace = 2 * time.Second
)

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	// Host is the address to bind: an IP literal or host name; "0.0.0.0" or "::" for every
	// interface. Default "127.0.0.1".
	Host string
	// Port to bind; 0 lets the OS pick one, which Add then advertises.
	Port int
	// AdvertiseHost is the host put in the URLs Add returns. Default: Host, unless Host is an
	// unspecified address, in which case "127.0.0.1" (callers binding every interface pass the
	// detected address, as internal/config does).
	AdvertiseHost string
	// RootPath prefixes every endpoint path. Default "/v1/dynamo"; "/" serves endpoints at
	// the root. A missing leading '/' is added and a trailing one dropped.
	RootPath string
	// MaxMessageSize bounds a request frame, prefix included. Default codec.DefaultMaxMessageSize.
	MaxMessageSize int
	// ReadHeaderTimeout bounds reading a request's headers, and how long a new connection may
	// stay silent. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (per stream on HTTP/2).
	// Default 30 s.
	ReadTimeout time.Duration
	// IdleTimeout closes connections without requests for that long. Default 120 s.
	IdleTimeout time.Duration
	// Logger receives refusals (debug) and server errors. Default: discard.
	Logger *slog.Logger
	// Observe, when set, is told the outcome of every request answered (metrics).
	Observe plane.ObserveFunc
}

func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.AdvertiseHost == "" {
		o.AdvertiseHost = o.Host
		if ip := net.ParseIP(o.Host); ip != nil && ip.IsUnspecified() {
			o.AdvertiseHost = DefaultHost
		}
	}
	switch o.RootPath {
	case "":
		o.RootPath = DefaultRootPath
	default:
		o.RootPath = "/" + strings.Trim(o.RootPath, "/")
		if o.RootPath == "/" {
			o.RootPath = ""
		}
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

type serverState uint8

const (
	stateNew serverState = iota
	stateStarted
	stateClosed
)

// Server is the worker side of the HTTP request plane. It implements plane.Server.
type Server struct {
	opts Options
	rt   router

	h2 h2conns // the h2c connections

	// connState, when set (by tests), observes connection state changes.
	connState func(net.Conn, http.ConnState)

	mu       sync.Mutex // guards state, srv, ln
	state    serverState
	srv      *http.Server
	ln       net.Listener
	served   chan struct{} // closed when the Serve goroutine returns
	serveErr error         // what Serve returned, when not ErrServerClosed

	closeOnce sync.Once
}

var _ plane.Server = (*Server)(nil)

// NewServer returns a Server configured by opts. It does no I/O: Start binds.
func NewServer(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts}
	s.h2.conns = map[*serverConn]struct{}{}
	s.rt.root, s.rt.max, s.rt.log, s.rt.observe = opts.RootPath, opts.MaxMessageSize, opts.Logger, opts.Observe
	return s
}

// Name returns plane.NameHTTP.
func (s *Server) Name() string { return plane.NameHTTP }

// Start binds the listener and serves HTTP/1.1 and h2c on it in a goroutine Close stops.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return closedError("server")
	}
	addr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("http request plane: listen on %s: %w", addr, err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           &s.rt,
		Protocols:         &protocols,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		// The response (202 or a refusal) follows the body at once, so the read bound is the
		// write bound too.
		WriteTimeout: s.opts.ReadTimeout,
		IdleTimeout:  s.opts.IdleTimeout,
		// h2c connections are handed to serverConn (serverconn.go).
		TLSNextProto: s.nextProto(),
		// net/http logs accept failures and handler panics here.
		ErrorLog:  slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		ConnState: s.connState,
	}
	s.ln, s.srv, s.served = ln, srv, make(chan struct{})
	s.state = stateStarted
	go func() {
		defer close(s.served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("http request plane stopped serving", "addr", ln.Addr().String(), "err", err)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	s.opts.Logger.Info("http request plane listening", "addr", ln.Addr().String(), "root", s.opts.RootPath)
	return nil
}

// Addr returns the bound address, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Add routes POST {root}/{ep.Name} to h and returns the URL to advertise,
// http://{advertise}:{port}{root}/{name}.
//
// Routes are keyed by endpoint name only, as in Dynamo: adding a name already routed replaces
// the route when namespace and component match (e.g. the worker re-registers under a new
// instance id after a lease loss), and fails with ErrEndpointConflict otherwise.
func (s *Server) Add(ctx context.Context, ep plane.Endpoint, h plane.Handler) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if h == nil || ep.Name == "" || strings.ContainsRune(ep.Name, '/') {
		return "", fmt.Errorf("%w: %s", ErrInvalidEndpoint, ep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateNew:
		return "", ErrNotStarted
	case stateClosed:
		return "", closedError("server")
	}
	if err := s.rt.add(ep, h); err != nil {
		return "", err
	}
	return s.url(ep.Name), nil
}

// url returns the advertised URL of endpoint name. s.mu is held.
func (s *Server) url(name string) string {
	host := s.opts.AdvertiseHost
	if strings.Contains(host, ":") {
		// An IPv6 zone ("fe80::1%eth0") must be escaped inside a URL.
		host = strings.ReplaceAll(host, "%", "%25")
	}
	port := s.ln.Addr().(*net.TCPAddr).Port
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + s.opts.RootPath + "/" + url.PathEscape(name)
}

// Remove stops routing ep. A route that a later Add replaced (another instance id or
// handler's endpoint) is left alone, so a stale Remove cannot unroute its successor.
func (s *Server) Remove(ep plane.Endpoint) { s.rt.remove(ep) }

// Close stops accepting, lets requests being read finish for a short grace period, closes
// every connection and waits for the serving goroutine. It is idempotent; concurrent callers
// all return once the server is down.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.state = stateClosed
		srv, served := s.srv, s.served
		s.mu.Unlock()
		if srv == nil {
			return
		}
		// h2c connections first: GOAWAY, then closed once their requests are answered (here,
		// on Close's goroutine, rather than as a Shutdown hook that nobody waits for).
		s.h2.shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		_ = srv.Shutdown(ctx) // past the grace period, Close below cuts what is left
		cancel()
		_ = srv.Close()
		s.h2.closeAll()
		<-served
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}
