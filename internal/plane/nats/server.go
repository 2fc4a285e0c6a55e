package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// QueueGroup is the queue group every worker subscribes in, so that the instances of one
// subject share its requests (Dynamo's "q").
const QueueGroup = "q"

// NATS service-error headers carried by a refusal (the NATS micro-service convention).
const (
	HeaderServiceError     = "Nats-Service-Error"
	HeaderServiceErrorCode = "Nats-Service-Error-Code"
)

// Server defaults.
const (
	// DefaultPendingMsgsLimit and DefaultPendingBytesLimit bound the messages nats.go buffers
	// per endpoint while its goroutine admits earlier ones. Admission does not block, so the
	// buffer only fills in bursts; it is twice nats.go's message default and four times its
	// byte default, so a burst of large frames is queued rather than dropped as a slow consumer.
	DefaultPendingMsgsLimit  = 1 << 20
	DefaultPendingBytesLimit = 256 << 20
	// DefaultDrainTimeout bounds Remove and Close waiting for already delivered requests to
	// be admitted and acknowledged.
	DefaultDrainTimeout = 5 * time.Second
)

// Sentinel errors of Server's own API (not wire failures, which are *plane.Error).
var (
	ErrNotStarted     = errors.New("nats request plane: server not started")
	ErrStarted        = errors.New("nats request plane: server already started")
	ErrEndpointExists = errors.New("nats request plane: endpoint already added")
	ErrInvalidName    = errors.New("nats request plane: invalid endpoint name")
)

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	// URLs are the NATS servers (NATS_SERVER). Default [DefaultURL].
	URLs []string
	Auth Auth
	// Name is the connection name. Default DefaultName.
	Name string
	// MaxMessageSize is the largest request frame admitted (DYN_TCP_MAX_MESSAGE_SIZE); larger
	// ones are refused with 413. Default codec.DefaultMaxMessageSize. The NATS server's
	// max_payload is usually the smaller limit.
	MaxMessageSize int
	// ConnectTimeout bounds each dial and handshake. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts. Default DefaultReconnectWait.
	ReconnectWait time.Duration
	// DrainTimeout bounds Remove and Close. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// PendingMsgsLimit and PendingBytesLimit bound each endpoint's delivery buffer. Defaults
	// DefaultPendingMsgsLimit and DefaultPendingBytesLimit.
	PendingMsgsLimit  int
	PendingBytesLimit int
	// Logger receives connection events (disconnects, reconnects, slow consumers) and failed
	// replies. Nil discards them.
	Logger *slog.Logger
	// Observe, when set, is told the outcome of every request answered (metrics).
	Observe plane.ObserveFunc
}

func (o Options) withDefaults() Options {
	if len(o.URLs) == 0 {
		o.URLs = []string{DefaultURL}
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.PendingMsgsLimit <= 0 {
		o.PendingMsgsLimit = DefaultPendingMsgsLimit
	}
	if o.PendingBytesLimit <= 0 {
		o.PendingBytesLimit = DefaultPendingBytesLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server is the worker side of the NATS plane: one queue subscription per endpoint.
type Server struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	conn     *conn
	starting bool
	closed   bool
	subs     map[string]*endpoint // by subject

	closeOnce sync.Once
}

var _ plane.Server = (*Server)(nil)

// NewServer returns a Server; it connects in Start.
func NewServer(opts Options) *Server {
	opts = opts.withDefaults()
	return &Server{opts: opts, log: opts.Logger, subs: make(map[string]*endpoint)}
}

// Name returns plane.NameNATS.
func (s *Server) Name() string { return plane.NameNATS }

// Start connects to NATS. It fails with a *plane.Error (CodeConnect) naming the URLs when no
// server answers within ctx or the connect timeout. Once connected, nats.go reconnects on its
// own and re-subscribes the endpoints.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return closedError()
	case s.conn != nil || s.starting:
		s.mu.Unlock()
		return ErrStarted
	}
	s.starting = true
	s.mu.Unlock()

	cn, err := connect(ctx, s.connConfig())

	s.mu.Lock()
	s.starting = false
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if s.closed {
		s.mu.Unlock()
		cn.close(false)
		return closedError()
	}
	s.conn = cn
	s.mu.Unlock()
	s.log.Info("nats request plane connected", "url", cn.nc.ConnectedUrlRedacted(), "max_payload", cn.nc.MaxPayload())
	return nil
}

func (s *Server) connConfig() connConfig {
	return connConfig{
		urls:           s.opts.URLs,
		auth:           s.opts.Auth,
		name:           s.opts.Name,
		connectTimeout: s.opts.ConnectTimeout,
		reconnectWait:  s.opts.ReconnectWait,
		drainTimeout:   s.opts.DrainTimeout,
		log:            s.log,
	}
}

// Subject returns the NATS subject of ep: "{ns}_{comp}.{ep}-{instance:x}" (spec §5.2). Names
// must be non-empty and free of whitespace and of the wildcards '*' and '>', which would
// make the subscription match other subjects.
func Subject(ep plane.Endpoint) (string, error) {
	for _, n := range [...]struct{ what, name string }{
		{"namespace", ep.Namespace}, {"component", ep.Component}, {"endpoint", ep.Name},
	} {
		if n.name == "" || strings.ContainsAny(n.name, " \t\r\n\f\v*>") {
			return "", fmt.Errorf("%w: %s %q", ErrInvalidName, n.what, n.name)
		}
	}
	return ep.Namespace + "_" + ep.Component + "." + ep.Name + "-" + codec.FormatInstanceID(ep.InstanceID), nil
}

// Add subscribes ep's subject in queue group QueueGroup and returns the subject, once the
// NATS server has registered the subscription (so that it can be advertised at once).
func (s *Server) Add(ctx context.Context, ep plane.Endpoint, h plane.Handler) (string, error) {
	if h == nil {
		return "", errors.New("nats request plane: nil handler")
	}
	subject, err := Subject(ep)
	if err != nil {
		return "", err
	}
	e := &endpoint{
		ep:      ep,
		subject: subject,
		h:       h,
		max:     s.opts.MaxMessageSize,
		log:     s.log,
		observe: s.opts.Observe,
		respond: respond,
		done:    make(chan struct{}),
	}

	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return "", closedError()
	case s.conn == nil:
		s.mu.Unlock()
		return "", ErrNotStarted
	case s.subs[subject] != nil:
		s.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrEndpointExists, ep)
	}
	nc := s.conn.nc
	sub, err := nc.QueueSubscribe(subject, QueueGroup, e.handle)
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("nats request plane: subscribing %s: %w", subject, err)
	}
	// pDone runs when the subscription's delivery goroutine has exited: after it, the
	// handler is never called again.
	sub.SetClosedHandler(func(string) { close(e.done) })
	if err := sub.SetPendingLimits(s.opts.PendingMsgsLimit, s.opts.PendingBytesLimit); err != nil {
		s.mu.Unlock()
		s.unsubscribe(sub, e)
		return "", fmt.Errorf("nats request plane: subscribing %s: %w", subject, err)
	}
	e.sub = sub
	s.subs[subject] = e
	s.mu.Unlock()

	if err := flush(ctx, nc, s.opts.DrainTimeout); err != nil {
		s.mu.Lock()
		if s.subs[subject] == e {
			delete(s.subs, subject)
		}
		s.mu.Unlock()
		s.unsubscribe(sub, e)
		return "", fmt.Errorf("nats request plane: subscribing %s: %w", subject, err)
	}
	s.log.Debug("nats request plane: endpoint added", "endpoint", ep.String(), "subject", subject)
	return subject, nil
}

// unsubscribe drops a subscription that was never advertised and waits for its goroutine.
func (s *Server) unsubscribe(sub *natsgo.Subscription, e *endpoint) {
	if sub.Unsubscribe() != nil {
		// The connection is closed: Close waits for the goroutine.
		return
	}
	s.waitDone(e)
}

// Remove unsubscribes ep: later requests meet "no responders" (or another instance of the
// queue group). Requests already delivered are still admitted and acknowledged; Remove waits
// for them, at most DrainTimeout.
func (s *Server) Remove(ep plane.Endpoint) {
	subject, err := Subject(ep)
	if err != nil {
		return
	}
	s.mu.Lock()
	e := s.subs[subject]
	delete(s.subs, subject)
	var nc *natsgo.Conn
	if s.conn != nil {
		nc = s.conn.nc
	}
	s.mu.Unlock()
	if e == nil {
		return
	}
	if err := e.sub.Drain(); err != nil {
		// Closed connection: Close owns the wait.
		return
	}
	// Once the server has our UNSUB, no new request reaches this endpoint.
	if err := flush(context.Background(), nc, s.opts.DrainTimeout); err != nil {
		s.log.Warn("nats request plane: unsubscribe not confirmed", "subject", subject, "error", err)
	}
	s.waitDone(e)
	s.log.Debug("nats request plane: endpoint removed", "endpoint", ep.String(), "subject", subject)
}

// waitDone waits for e's delivery goroutine, at most DrainTimeout: a Handler that blocks
// in Accept against its contract must not hang the caller.
func (s *Server) waitDone(e *endpoint) {
	t := time.NewTimer(s.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-e.done:
	case <-t.C:
		s.log.Warn("nats request plane: endpoint still delivering after the drain timeout", "subject", e.subject)
	}
}

// flush waits until the NATS server has processed everything sent so far.
func flush(ctx context.Context, nc *natsgo.Conn, timeout time.Duration) error {
	if _, ok := ctx.Deadline(); !ok {
		// nats.go refuses to flush without a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// Close drains the subscriptions (delivered requests are still admitted and acknowledged, for
// at most DrainTimeout), closes the connection and waits for nats.go's goroutines that call
// into this package. It is idempotent; concurrent calls all wait.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		cn := s.conn
		subs := s.subs
		s.subs = make(map[string]*endpoint)
		s.mu.Unlock()
		if cn == nil {
			return
		}
		cn.close(true)
		for _, e := range subs {
			s.waitDone(e)
		}
	})
	return nil
}

func closedError() *plane.Error {
	return &plane.Error{Plane: plane.NameNATS, Code: plane.CodeClosed, Text: "closed"}
}

// endpoint is one subscribed endpoint.
type endpoint struct {
	ep      plane.Endpoint
	subject string
	h       plane.Handler
	max     int
	log     *slog.Logger
	observe plane.ObserveFunc // nil: not observed
	// respond sends resp as the reply to req, nil resp being the ack (an empty message):
	// respond in production, a recorder in the fuzz test.
	respond func(req, resp *natsgo.Msg) error
	sub     *natsgo.Subscription
	done    chan struct{}
	// outcome is reported to the observer: nats.go delivers an endpoint's messages one at a
	// time, on the subscription's goroutine.
	outcome plane.Outcome
}

func respond(req, resp *natsgo.Msg) error {
	if resp == nil {
		return req.Respond(nil) // the bytes RespondMsg(&Msg{}) sends, without a Msg
	}
	err := req.RespondMsg(resp)
	if errors.Is(err, natsgo.ErrHeadersNotSupported) && len(resp.Header) > 0 {
		// A server without header support still gets the refusal text.
		err = req.Respond(resp.Data)
	}
	return err
}

// handle admits one request message. nats.go gives every message its own Data slice (it copies
// the payload out of its read buffer, see processMsg in nats.go), so the Request may alias it:
// the handler owns it once Accept returned nil.
func (e *endpoint) handle(m *natsgo.Msg) {
	var start time.Time
	if e.observe != nil {
		start = time.Now()
	}
	req, err := plane.DecodeFor(e.h, m.Data, e.max)
	if err != nil {
		e.refuse(m, err, start)
		return
	}
	req.Plane = plane.NameNATS
	req.Endpoint = e.ep
	req.Meta = plane.MetaFromHeaders(headerGetter(m.Header), req.Control.ID)
	requestID := req.Meta.RequestID // req is the handler's once accepted
	if err := e.h.Accept(req); err != nil {
		e.refuse(m, err, start)
		return
	}
	if e.observe != nil {
		e.report(plane.Outcome{Plane: plane.NameNATS, Endpoint: e.ep, Start: start})
	}
	if m.Reply == "" {
		// Published without an inbox, as a fire-and-forget: nobody waits for the ack, and the
		// response still travels over the call-home stream.
		return
	}
	if err := e.respond(m, nil); err != nil {
		e.log.Warn("nats request plane: ack failed", "subject", e.subject, "request_id", requestID, "error", err)
	}
}

func (e *endpoint) refuse(m *natsgo.Msg, err error, start time.Time) {
	code, text := plane.Refusal(err)
	if e.observe != nil {
		e.report(plane.Outcome{Plane: plane.NameNATS, Endpoint: e.ep, Code: code, Err: err, Start: start})
	}
	if m.Reply == "" {
		e.log.Debug("nats request plane: refused a request without reply subject", "subject", e.subject, "error", text)
		return
	}
	if err := e.respond(m, refusal(code, text)); err != nil {
		e.log.Warn("nats request plane: refusal reply failed", "subject", e.subject, "error", err)
	}
}

// report passes o to the observer in e.outcome: an Outcome made per request would escape to
// the heap, and the observer does not keep it.
func (e *endpoint) report(o plane.Outcome) {
	e.outcome = o
	e.observe(&e.outcome)
	e.outcome = plane.Outcome{} // hold on to nothing between requests
}

// refusal is the reply refusing a request: the text as payload (what Dynamo requesters print)
// and the service-error headers. The text is never empty, as an empty reply is the ack.
func refusal(code plane.Code, text string) *natsgo.Msg {
	if text == "" {
		text = "Request refused: " + code.String()
	}
	h := make(natsgo.Header, 2)
	h.Set(HeaderServiceError, headerValue(text))
	h.Set(HeaderServiceErrorCode, strconv.Itoa(serviceErrorCode(code)))
	return &natsgo.Msg{Data: []byte(text), Header: h}
}

// serviceErrorCode is the HTTP-like status of a refusal (spec §5.1).
func serviceErrorCode(c plane.Code) int {
	switch c {
	case plane.CodeTooLarge:
		return 413
	case plane.CodeOverloaded, plane.CodeDraining:
		return 503
	case plane.CodeUnknownEndpoint:
		return 404
	}
	return 400
}

// headerValue makes text fit a NATS header value, which ends at the first CR or LF.
func headerValue(text string) string {
	if !strings.ContainsAny(text, "\r\n") {
		return text
	}
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(text)
}

// headerGetter looks a header up by its exact name, else case-insensitively: NATS headers are
// case-sensitive, but peers differ in how they spell them.
func headerGetter(h natsgo.Header) func(string) string {
	return func(key string) string {
		// Not h.Get: it indexes the value slice without checking its length.
		if vs := h[key]; len(vs) > 0 && vs[0] != "" {
			return vs[0]
		}
		for k, vs := range h {
			if len(vs) > 0 && strings.EqualFold(k, key) {
				return vs[0]
			}
		}
		return ""
	}
}
