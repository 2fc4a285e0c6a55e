package stream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reqplane/reqplane/internal/accept"
	"github.com/reqplane/reqplane/internal/codec"
)

// Defaults applied to zero ServerOptions fields.
const (
	DefaultHost             = "127.0.0.1"
	DefaultPrologueTimeout  = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 2 * time.Second
	DefaultBuffer           = 32
)

// ServerOptions configure a Server. Zero fields take the documented defaults.
type ServerOptions struct {
	// Host is the IP literal to bind (DYN_TCP_RESPONSE_STREAM_HOST). Default 127.0.0.1.
	Host string
	// Port to bind (DYN_TCP_RESPONSE_STREAM_PORT); 0 lets the OS choose.
	Port int
	// AdvertiseHost is the IP literal workers dial, put into every stream's Info. Default Host;
	// required when Host is an unspecified address (0.0.0.0, ::).
	AdvertiseHost string
	// MaxMessageSize bounds every frame read (DYN_TCP_MAX_MESSAGE_SIZE). Default
	// codec.DefaultMaxMessageSize.
	MaxMessageSize int
	// PrologueTimeout bounds the wait from Stream.Acked to the worker's prologue
	// (DYN_TCP_RESPONSE_STREAM_TIMEOUT). Default 30 s; negative waits forever, as Dynamo does.
	PrologueTimeout time.Duration
	// HandshakeTimeout bounds the wait for an accepted connection's handshake. Default 10 s,
	// Dynamo's value.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing a stop or kill frame, so a stuck worker cannot block Stop
	// or Close. Default 2 s.
	WriteTimeout time.Duration
	// Buffer is the number of items a stream holds for its consumer before the connection's
	// reader stops reading and TCP backpressure reaches the worker. Default 32.
	Buffer int
	// MuxIdleTimeout closes a response mux connection that has carried no stream for that
	// long. Default 300 s (DefaultMuxIdleTimeout).
	MuxIdleTimeout time.Duration
	// Logger receives rejected connections and stream failures. Default slog.Default().
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if o.PrologueTimeout == 0 {
		o.PrologueTimeout = DefaultPrologueTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.MuxIdleTimeout <= 0 {
		o.MuxIdleTimeout = DefaultMuxIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

type serverState uint8

const (
	stateNew serverState = iota
	stateStarted
	stateClosed
)

// Server is the requester's call-home listener, one per process. It accepts the workers'
// connections and attaches each to the Stream registered under the subject its handshake
// names. It also accepts response mux connections (mux_server.go), told apart by their
// handshake, which carry the streams registered with RegisterMux. Every goroutine it starts
// (the accept loop, one reader per connection, one writer per mux connection) is owned by the
// Server and ends before Close returns.
type Server struct {
	opts       ServerOptions
	stopFrame  []byte
	killFrame  []byte
	frontendID codec.UUID // this process's frontend_server_id on mux connections

	ids       *codec.UUIDGen // draws subjects and stream ids
	prologues prologueWatch  // acknowledged streams awaiting their prologue

	mu      sync.Mutex
	state   serverState
	ln      net.Listener
	addr    string
	streams map[string]*Stream // registered and not yet ended, by subject
	// muxStreams are the mux streams registered and not yet ended, by stream id.
	muxStreams map[codec.UUID]*Stream
	muxConns   map[*muxConn]struct{}
	conns      map[net.Conn]struct{}
	done       chan struct{} // closed by Close
	wg         sync.WaitGroup
}

// NewServer returns a Server configured by opts. It does no I/O; Start binds.
func NewServer(opts ServerOptions) *Server {
	opts = opts.withDefaults()
	return &Server{
		opts:       opts,
		prologues:  prologueWatch{timeout: opts.PrologueTimeout},
		stopFrame:  controlFrame(codec.ControlStop),
		killFrame:  controlFrame(codec.ControlKill),
		frontendID: codec.UUID(uuid.New()),
		ids:        codec.NewUUIDGen(),
		streams:    make(map[string]*Stream),
		muxStreams: make(map[codec.UUID]*Stream),
		muxConns:   make(map[*muxConn]struct{}),
		conns:      make(map[net.Conn]struct{}),
		done:       make(chan struct{}),
	}
}

func controlFrame(c codec.Control) []byte {
	f, err := codec.AppendFrame(nil, c.Bytes(), nil, 0)
	if err != nil {
		panic("stream: encoding a control frame: " + err.Error()) // unreachable without a limit
	}
	return f
}

// Start binds the listener and starts accepting. It fails when the server was already
// started or closed, when Host or AdvertiseHost is not an IP literal, or when the address to
// advertise would be unspecified.
func (s *Server) Start(ctx context.Context) error {
	host, err := netip.ParseAddr(s.opts.Host)
	if err != nil {
		return errors.New("stream: response stream host must be an IP literal: " + strconv.Quote(s.opts.Host))
	}
	adv := host
	if s.opts.AdvertiseHost != "" {
		if adv, err = netip.ParseAddr(s.opts.AdvertiseHost); err != nil {
			return errors.New("stream: response stream advertise host must be an IP literal: " +
				strconv.Quote(s.opts.AdvertiseHost))
		}
	}
	if adv.IsUnspecified() {
		return errors.New("stream: response stream server binds " + host.String() +
			" and needs an AdvertiseHost that workers can dial")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return errors.New("stream: response stream server already started")
	case stateClosed:
		return newError(CodeClosed, TextServerClosed, nil)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host.String(), strconv.Itoa(s.opts.Port)))
	if err != nil {
		return err
	}
	s.ln = ln
	s.addr = net.JoinHostPort(adv.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	s.state = stateStarted
	s.wg.Add(1)
	go s.acceptLoop(ln)
	return nil
}

// Addr returns the advertised "host:port" workers dial, or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops accepting, fails every open stream with CodeClosed (sending "kill" to workers
// that are still streaming), closes every connection and waits for the server's goroutines.
// It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.state = stateClosed
	close(s.done)
	ln := s.ln
	streams := make([]*Stream, 0, len(s.streams)+len(s.muxStreams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	for _, st := range s.muxStreams {
		streams = append(streams, st)
	}
	muxConns := make([]*muxConn, 0, len(s.muxConns))
	for mc := range s.muxConns {
		muxConns = append(muxConns, mc)
	}
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, st := range streams {
		st.terminate(newError(CodeClosed, TextServerClosed, nil), byServer)
	}
	s.prologues.stop()
	// The kills just queued on mux connections go out before the connections close.
	for _, mc := range muxConns {
		mc.w.stop(true)
	}
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

// Register creates a Stream for request id under a fresh UUIDv4 subject and registers it, so
// a worker may call home as soon as the request is sent (even before its acknowledgement).
// Call it before sending the request, put Info() into the request, and Close the Stream
// when done with it. On a server that is not running, the Stream has already failed with
// CodeClosed.
func (s *Server) Register(id string) *Stream {
	return s.register(id, "")
}

// register registers a classic stream under subject, or under a fresh one when it is "".
func (s *Server) register(id, subject string) *Stream {
	if subject == "" {
		subject = s.ids.New().String() // under its own lock, outside the server's
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := newStream(s, codec.CallHomeInfo{
		Address:    s.addr,
		Subject:    subject,
		Context:    id,
		StreamType: codec.StreamTypeResponse,
	})
	switch s.state {
	case stateStarted:
		s.streams[subject] = st
	case stateNew:
		st.failUnregistered(newError(CodeClosed, TextServerNotStarted, nil))
	default:
		st.failUnregistered(newError(CodeClosed, TextServerClosed, nil))
	}
	return st
}

// forget unregisters st; a later call-home naming its subject is rejected.
func (s *Server) forget(st *Stream) {
	s.mu.Lock()
	if st.mux != nil {
		if id := st.mux.info.StreamID; s.muxStreams[id] == st {
			delete(s.muxStreams, id)
		}
	} else if s.streams[st.info.Subject] == st {
		delete(s.streams, st.info.Subject)
	}
	s.mu.Unlock()
}

// claim attaches c to the stream registered under subject, if any.
func (s *Server) claim(subject string, c net.Conn) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[subject]
	if st == nil || !st.attach(c) {
		return nil
	}
	return st
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := accept.Next(ln, s.done, s.opts.Logger, "call-home")
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.state != stateStarted {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn runs one call-home connection: the handshake, then the attached stream's reader.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	r := codec.NewReader(c, s.opts.MaxMessageSize)
	f, text, err := s.readHandshake(c, r)
	if text == "" && codec.IsMuxHandshake(f.Header) {
		s.serveMux(c, r, f.Header)
		return
	}
	var st *Stream
	if text == "" {
		st, text, err = s.handshake(c, f)
	}
	if st == nil {
		select {
		case <-s.done:
			return // closing: the error is ours, not the peer's
		default:
		}
		s.opts.Logger.Warn("call-home connection rejected", "error", text, "cause", err,
			"remote", c.RemoteAddr().String())
		return
	}
	st.run(c, r)
	c.Close()
	close(st.detached)
}

// readHandshake reads the first frame, which must carry a header: a classic handshake or a
// response mux handshake. On failure it returns the text to log.
func (s *Server) readHandshake(c net.Conn, r *codec.Reader) (codec.Frame, string, error) {
	c.SetReadDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	f, err := r.Next()
	if err != nil {
		var ne net.Error
		switch {
		case err == io.EOF:
			return f, TextNoHandshake, nil
		case errors.As(err, &ne) && ne.Timeout():
			return f, TextHandshakeTimeout, err
		default:
			return f, err.Error(), err
		}
	}
	if len(f.Header) == 0 {
		return f, TextExpectedControl, nil
	}
	return f, "", nil
}

// handshake checks a classic first frame and claims its stream. On failure it returns the
// text to log.
func (s *Server) handshake(c net.Conn, f codec.Frame) (*Stream, string, error) {
	hs, err := codec.ParseHandshake(f.Header)
	if err != nil {
		return nil, TextBadHandshake + err.Error(), err
	}
	if hs.StreamType != codec.StreamTypeResponse {
		return nil, requestSubjectNotFoundText(hs.Subject), nil
	}
	st := s.claim(hs.Subject, c)
	if st == nil {
		return nil, SubjectNotFoundText(hs.Subject), nil
	}
	c.SetReadDeadline(time.Time{})
	return st, "", nil
}
