package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/reqplane/reqplane/internal/accept"
	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// Defaults applied to zero Options and ClientOptions fields.
const (
	DefaultHost           = "127.0.0.1"
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConnectTimeout = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultPoolSize       = 100
)

const (
	// maxPathLen is the protocol's bound on path_len (spec §5.4).
	maxPathLen = 1024
	// writeBufSize holds a batch of replies; acks are 4 bytes, refusals rarely above 200.
	writeBufSize = 4 << 10
	// lingerTimeout and lingerBytes bound how long and how much a server reads and discards
	// after a fatal "Read error" reply, so that closing does not reset the connection (and
	// destroy the reply) while the peer is still sending.
	lingerTimeout = time.Second
	lingerBytes   = 256 << 10
)

// Server lifecycle errors.
var (
	// ErrNotStarted is returned by Add before Start has bound the listener.
	ErrNotStarted = errors.New("tcp request plane: server not started")
	// ErrServerClosed is returned by Start and Add after Close.
	ErrServerClosed = errors.New("tcp request plane: server closed")
	// ErrEndpointExists is returned by Add for an endpoint that is already routed.
	ErrEndpointExists = errors.New("tcp request plane: endpoint already served")
)

// Options configures a Server. Zero fields take the documented defaults.
type Options struct {
	// Host is the IP literal to bind. Default DefaultHost (127.0.0.1). An unspecified address
	// (0.0.0.0, ::) binds all interfaces and requires AdvertiseHost.
	Host string
	// Port to bind; 0 lets the OS choose (the chosen port is advertised).
	Port int
	// AdvertiseHost is the IP literal put in the addresses Add returns. Default Host.
	AdvertiseHost string
	// MaxMessageSize bounds a request's payload (one TwoPart frame). Default
	// codec.DefaultMaxMessageSize; negative means no limit beyond the u32 length field.
	MaxMessageSize int
	// IdleTimeout closes a connection on which nothing was read or written for that long.
	// Default DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
	// Logger receives connection-level events. Default: discard.
	Logger *slog.Logger
	// Observe, when set, is told the outcome of every request answered (metrics).
	Observe plane.ObserveFunc
}

// route is what a routing key resolves to.
type route struct {
	ep plane.Endpoint
	h  plane.Handler
}

// Server is the TCP request plane's ingress (plane.Server). One Server per process serves every
// endpoint; requests are routed by path "{instance:x}/{endpoint}".
type Server struct {
	host, advertise string
	port            int
	max             int
	idle            time.Duration
	log             *slog.Logger
	observe         plane.ObserveFunc // nil: not observed

	// routes is replaced wholesale under mu, read lock-free per request.
	routes atomic.Pointer[map[string]route]

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	started bool
	closed  bool
	done    chan struct{} // closed by Close: stops the accept back-off
	wg      sync.WaitGroup
}

var _ plane.Server = (*Server)(nil)

// NewServer validates opts and returns an unstarted Server. It does no I/O.
func NewServer(opts Options) (*Server, error) {
	host := opts.Host
	if host == "" {
		host = DefaultHost
	}
	hip, err := netip.ParseAddr(host)
	if err != nil || hip.Zone() != "" {
		return nil, fmt.Errorf("tcp request plane: host %q is not an IP literal", host)
	}
	adv := opts.AdvertiseHost
	if adv == "" {
		if hip.IsUnspecified() {
			return nil, fmt.Errorf("tcp request plane: host %s binds all interfaces; an advertise host is required", host)
		}
		adv = host
	}
	aip, err := netip.ParseAddr(adv)
	if err != nil || aip.IsUnspecified() {
		return nil, fmt.Errorf("tcp request plane: advertise host %q is not a specific IP literal", adv)
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("tcp request plane: port %d is not in 0..65535", opts.Port)
	}
	s := &Server{
		host:      host,
		advertise: aip.String(),
		port:      opts.Port,
		max:       opts.MaxMessageSize,
		idle:      opts.IdleTimeout,
		log:       opts.Logger,
		observe:   opts.Observe,
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
	}
	if s.max == 0 {
		s.max = codec.DefaultMaxMessageSize
	}
	if s.idle == 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	empty := map[string]route{}
	s.routes.Store(&empty)
	return s, nil
}

// Name returns plane.NameTCP.
func (s *Server) Name() string { return plane.NameTCP }

// Start binds the listener and starts accepting connections.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return errors.New("tcp request plane: server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	if err != nil {
		return fmt.Errorf("tcp request plane: listen: %w", err)
	}
	s.ln = ln
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.started = true
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.log.Info("tcp request plane listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound listener address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// RouteKey returns the path under which the server routes ep: "{instance:x}/{endpoint}".
func RouteKey(ep plane.Endpoint) string {
	return codec.FormatInstanceID(ep.InstanceID) + "/" + ep.Name
}

// Add routes ep to h and returns the address to advertise: "{advertise}:{port}/{id:x}/{ep}".
func (s *Server) Add(_ context.Context, ep plane.Endpoint, h plane.Handler) (string, error) {
	if h == nil {
		return "", errors.New("tcp request plane: nil handler")
	}
	key := RouteKey(ep)
	if ep.Name == "" || len(key) > maxPathLen || !utf8.ValidString(key) {
		return "", fmt.Errorf("tcp request plane: endpoint %s: path %q is not 1..%d bytes of UTF-8 with a name", ep, key, maxPathLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "", ErrServerClosed
	case !s.started:
		return "", ErrNotStarted
	}
	old := *s.routes.Load()
	if _, ok := old[key]; ok {
		return "", fmt.Errorf("%w: %s", ErrEndpointExists, key)
	}
	next := make(map[string]route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = route{ep: ep, h: h}
	s.routes.Store(&next)
	return net.JoinHostPort(s.advertise, strconv.Itoa(s.port)) + "/" + key, nil
}

// Remove stops routing ep; later requests for it are answered "Unknown endpoint: {path}".
func (s *Server) Remove(ep plane.Endpoint) {
	key := RouteKey(ep)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.routes.Load()
	if _, ok := old[key]; !ok {
		return
	}
	next := make(map[string]route, len(old))
	for k, v := range old {
		if k != key {
			next[k] = v
		}
	}
	s.routes.Store(&next)
}

// Close stops accepting, closes every connection and waits for the server's goroutines.
// Requests already admitted belong to their handlers. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		if s.ln != nil {
			_ = s.ln.Close()
		}
		for c := range s.conns {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := accept.Next(ln, s.done, s.log, "tcp request plane:")
		if err != nil {
			return
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c)
		}()
	}
}

// track registers c for Close and accounts for its goroutine; false once the server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// serveConn reads the pipelined requests of one connection and answers each in order. It runs
// in the caller's goroutine and returns when the connection ends; it does not close c.
func (s *Server) serveConn(c net.Conn) {
	cio := &connIO{conn: c, idle: s.idle}
	cio.bw = bufio.NewWriterSize(writerFunc(cio.write), writeBufSize)
	rr := codec.NewTCPRequestReader(readerFunc(cio.read), s.max)
	for {
		req, err := rr.Next()
		if err != nil {
			if s.readFailed(cio, err) {
				continue
			}
			return
		}
		text := s.handle(&req, &cio.outcome)
		if err := cio.reply(text); err != nil {
			s.log.Debug("tcp request plane: write failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
}

// readFailed answers a failed read and reports whether the connection can go on (invalid UTF-8
// path). Fatal envelope errors get "Read error: {text}" and a graceful close; I/O errors and EOF
// end the connection silently.
func (s *Server) readFailed(cio *connIO, err error) bool {
	var te *codec.TCPError
	if !errors.As(err, &te) || te.Code == codec.TCPCodeIO {
		if err != io.EOF {
			s.log.Debug("tcp request plane: connection ended", "remote", cio.conn.RemoteAddr().String(), "err", err)
		}
		// Replies to requests read before the failure are still owed.
		_ = cio.bw.Flush()
		return false
	}
	if s.observe != nil {
		code := plane.CodeBadRequest
		switch te.Code {
		case codec.TCPCodeTooLarge:
			code = plane.CodeTooLarge
		case codec.TCPCodeInvalidPath:
			code = plane.CodeUnknownEndpoint
		}
		s.report(&cio.outcome, plane.Outcome{Plane: plane.NameTCP, Code: code, Err: &plane.Error{Plane: plane.NameTCP, Code: code, Text: te.Reply(), Err: te}, Start: time.Now()})
	}
	if werr := cio.reply(te.Reply()); werr != nil {
		return false
	}
	if !te.Fatal() {
		return true
	}
	s.log.Debug("tcp request plane: closing connection", "remote", cio.conn.RemoteAddr().String(), "reason", te.Error())
	if cio.bw.Flush() == nil {
		cio.linger()
	}
	return false
}

// handle admits one request and returns the reply text: "" for the ack, otherwise a refusal.
// o is the connection's Outcome to report through.
func (s *Server) handle(req *codec.TCPRequest, o *plane.Outcome) string {
	var start time.Time
	if s.observe != nil {
		start = time.Now()
	}
	rt, ok := (*s.routes.Load())[req.Path]
	if !ok {
		text := "Unknown endpoint: " + req.Path
		if s.observe != nil {
			s.report(o, plane.Outcome{Plane: plane.NameTCP, Code: plane.CodeUnknownEndpoint, Err: &plane.Error{Plane: plane.NameTCP, Code: plane.CodeUnknownEndpoint, Text: text}, Start: start})
		}
		return text
	}
	r, err := plane.DecodeFor(rt.h, req.Payload, s.max)
	if err != nil {
		code, text := plane.Refusal(err)
		s.refused(o, rt.ep, code, err, start)
		s.log.Debug("tcp request plane: refused bad request", "endpoint", rt.ep.String(), "reason", text)
		return text
	}
	// The payload aliases the reader's buffer, which the next request overwrites: the handler
	// gets its own copy of the body (the control strings are already copies).
	r.Body = append([]byte(nil), r.Body...)
	r.Plane = plane.NameTCP
	r.Endpoint = rt.ep
	// One pass over the raw headers, no map; only the values used are decoded.
	var at [len(plane.MetaHeaders)]int
	raw := req.RawHeaders
	codec.FindHeaders(raw, plane.MetaHeaders[:], at[:])
	r.Meta = plane.MetaFromHeaders(func(k string) string {
		for i, h := range plane.MetaHeaders {
			if h == k {
				return codec.HeaderValueOr(raw, at[i], r.Control.ID)
			}
		}
		return ""
	}, r.Control.ID)
	if err := rt.h.Accept(r); err != nil {
		code, text := plane.Refusal(err)
		s.refused(o, rt.ep, code, err, start)
		s.log.Debug("tcp request plane: handler refused request", "endpoint", rt.ep.String(), "id", r.Control.ID, "reason", text)
		return text
	}
	if s.observe != nil {
		s.report(o, plane.Outcome{Plane: plane.NameTCP, Endpoint: rt.ep, Start: start})
	}
	return ""
}

func (s *Server) refused(o *plane.Outcome, ep plane.Endpoint, code plane.Code, err error, start time.Time) {
	if s.observe != nil {
		s.report(o, plane.Outcome{Plane: plane.NameTCP, Endpoint: ep, Code: code, Err: err, Start: start})
	}
}

// report passes v to the observer in the connection's Outcome o: an Outcome made per request
// would escape to the heap, and the observer does not keep it.
func (s *Server) report(o *plane.Outcome, v plane.Outcome) {
	*o = v
	s.observe(o)
	*o = plane.Outcome{} // hold on to nothing between requests
}

// connIO is one server connection's I/O: reads and writes refresh the idle deadline, and a read
// first flushes pending replies, so a burst of pipelined requests that is already buffered is
// answered with one write, and nothing is held back while the server waits for input.
type connIO struct {
	conn     net.Conn
	bw       *bufio.Writer
	idle     time.Duration
	rdl, wdl time.Time     // deadlines last set
	outcome  plane.Outcome // reported to the observer, one request at a time
}

func (c *connIO) read(p []byte) (int, error) {
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	if c.idle > 0 {
		c.rdl = refreshDeadline(time.Now(), c.rdl, c.idle, c.conn.SetReadDeadline)
	}
	return c.conn.Read(p)
}

func (c *connIO) write(p []byte) (int, error) {
	if c.idle > 0 {
		c.wdl = refreshDeadline(time.Now(), c.wdl, c.idle, c.conn.SetWriteDeadline)
	}
	return c.conn.Write(p)
}

// reply queues one reply; empty text is the ack.
func (c *connIO) reply(text string) error {
	_, err := c.bw.Write(codec.AppendTCPReply(c.bw.AvailableBuffer(), []byte(text)))
	return err
}

// linger half-closes the connection and discards what the peer still sends, for a bounded
// time and amount, so the final reply is read before the connection is torn down.
func (c *connIO) linger() {
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c.conn, lingerBytes)
}

// refreshDeadline moves a deadline to now+idle, but only when it has drifted by more than a
// sixteenth of idle: setting it on every call would cost a timer update per read.
func refreshDeadline(now, cur time.Time, idle time.Duration, set func(time.Time) error) time.Time {
	next := now.Add(idle)
	if next.Sub(cur) < idle/16 {
		return cur
	}
	if set(next) != nil {
		return cur
	}
	return next
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
