package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults.
const (
	DefaultHost = "127.0.0.1"
	// DefaultPort is NATS's well-known client port; `reqplane nats` listens on it unless told
	// otherwise. Options.Port 0 means an OS-assigned port, not this one.
	DefaultPort = server.DEFAULT_PORT
)

// readyPoll is how long one ReadyForConnections probe waits before ctx is checked again.
const readyPoll = 50 * time.Millisecond

// ErrStoreDirRequired is returned when JetStream is on without a StoreDir: nats-server would
// otherwise write streams to a directory shared by every process on the machine.
var ErrStoreDirRequired = errors.New("natsembed: JetStream needs a store directory")

// Options describes the embedded server.
type Options struct {
	// Host is the client listener's IP or name. Default DefaultHost (127.0.0.1).
	Host string
	// Port is the client port. 0 or -1 pick a free port (nats-server's RANDOM_PORT is -1; its
	// own 0 would mean 4222); ClientURL reports the port chosen.
	Port int
	// JetStream enables JetStream, which Dynamo's own clients require. StoreDir is then required.
	JetStream bool
	// StoreDir holds JetStream's data.
	StoreDir string
	// MaxPayload is the largest message the server accepts (its max_payload). Default, 0:
	// nats-server's default of 1 MiB. At most math.MaxInt32.
	MaxPayload int
	// Logger receives the server's notices, warnings and errors. Nil keeps the server quiet.
	Logger *slog.Logger
}

// Server is a running in-process nats-server.
type Server struct {
	ns         *server.Server
	maxPayload int
	closeOnce  sync.Once
}

// Start starts the server and returns once it accepts clients, or fails when ctx ends first or
// the server cannot start (a port in use, a bad store directory).
func Start(ctx context.Context, opts Options) (*Server, error) {
	sopts, err := serverOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	// The logger is always installed: it records the fatal errors with which Start reports
	// that it gave up (nats-server's Start returns nothing), and forwards to opts.Logger if set.
	lg := &logger{out: opts.Logger}
	ns.SetLoggerV2(lg, false, false, false)
	ns.Start()
	for {
		if ns.ReadyForConnections(readyPoll) {
			// NewServer filled in the defaults, max_payload's included.
			return &Server{ns: ns, maxPayload: int(sopts.MaxPayload)}, nil
		}
		if msg := lg.fatal(); msg != "" {
			shutdown(ns)
			return nil, fmt.Errorf("natsembed: nats-server failed to start: %s", msg)
		}
		if err := ctx.Err(); err != nil {
			shutdown(ns)
			return nil, fmt.Errorf("natsembed: waiting for nats-server to accept clients on %s: %w",
				net.JoinHostPort(sopts.Host, strconv.Itoa(sopts.Port)), err)
		}
	}
}

func serverOptions(opts Options) (*server.Options, error) {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	port := opts.Port
	switch {
	case port == 0:
		port = server.RANDOM_PORT
	case port < -1 || port > math.MaxUint16:
		return nil, fmt.Errorf("natsembed: invalid port %d", opts.Port)
	}
	if opts.MaxPayload < 0 || opts.MaxPayload > math.MaxInt32 {
		return nil, fmt.Errorf("natsembed: invalid max payload %d (0 to %d)", opts.MaxPayload, math.MaxInt32)
	}
	if opts.JetStream && opts.StoreDir == "" {
		return nil, ErrStoreDirRequired
	}
	return &server.Options{
		Host:       opts.Host,
		Port:       port,
		JetStream:  opts.JetStream,
		StoreDir:   opts.StoreDir,
		MaxPayload: int32(opts.MaxPayload),
		// An embedded server must not take over the process's signals.
		NoSigs: true,
	}, nil
}

func shutdown(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// ClientURL is the URL clients connect to (nats://host:port). For a server bound to all
// interfaces it names the loopback address, which is dialable from this machine.
func (s *Server) ClientURL() string { return dialableURL(s.ns.ClientURL()) }

// dialableURL replaces an unspecified host (0.0.0.0, ::) in a client URL by loopback.
func dialableURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		loopback := "127.0.0.1"
		if ip.To4() == nil {
			loopback = "::1"
		}
		u.Host = net.JoinHostPort(loopback, u.Port())
	}
	return u.String()
}

// Addr is the client listener's address.
func (s *Server) Addr() net.Addr { return s.ns.Addr() }

// MaxPayload is the largest message the server accepts.
func (s *Server) MaxPayload() int { return s.maxPayload }

// JetStreamEnabled reports whether JetStream runs.
func (s *Server) JetStreamEnabled() bool { return s.ns.JetStreamEnabled() }

// NumClients is the number of connected clients.
func (s *Server) NumClients() int { return s.ns.NumClients() }

// Close shuts the server down and waits until it has stopped. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { shutdown(s.ns) })
	return nil
}

// logger adapts nats-server's Logger to slog and remembers the first fatal error.
type logger struct {
	out *slog.Logger

	mu       sync.Mutex
	fatalMsg string
}

func (l *logger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalMsg
}

func (l *logger) log(level slog.Level, format string, v []any) {
	if l.out != nil {
		l.out.Log(context.Background(), level, fmt.Sprintf(format, v...), slog.String("component", "nats-server"))
	}
}

func (l *logger) Noticef(format string, v ...any) { l.log(slog.LevelInfo, format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *logger) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v) }
func (l *logger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *logger) Tracef(format string, v ...any)  { l.log(slog.LevelDebug-4, format, v) }

// Fatalf records the failure for Start instead of exiting, as nats-server's own logger would.
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalMsg == "" {
		l.fatalMsg = msg
	}
	l.mu.Unlock()
	l.log(slog.LevelError, "%s", []any{msg})
}
