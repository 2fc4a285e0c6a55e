package reqplane

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/router"
	"github.com/reqplane/reqplane/internal/stream"
	"github.com/reqplane/reqplane/internal/telemetry"
)

// RouterMode is how a client spreads requests over an endpoint's instances.
type RouterMode = router.Mode

// Router modes.
const (
	RoundRobin  = router.RoundRobin  // the default
	Random      = router.Random      //
	Direct      = router.Direct      // every call names its instance (WithInstance)
	LeastLoaded = router.LeastLoaded // fewest requests in flight from this client
	PowerOfTwo  = router.PowerOfTwo  // two random choices, the less loaded
)

// ParseRouterMode parses "round_robin", "random", "direct", "least_loaded" or "power_of_two".
func ParseRouterMode(s string) (RouterMode, error) { return router.ParseMode(s) }

// ClientOption configures a Client.
type ClientOption interface{ applyClient(*clientOptions) }

type clientOptionFunc func(*clientOptions)

func (f clientOptionFunc) applyClient(o *clientOptions) { f(o) }

type clientOptions struct {
	mode        RouterMode
	maxAttempts int
	callHome    CallHomeMode
}

// CallHomeMode says how workers stream responses back to this client.
type CallHomeMode uint8

const (
	// CallHomeAuto (the default) uses the multiplexed call-home with every worker whose discovery
	// record says it speaks it, and the classic one with the others (Dynamo's workers).
	CallHomeAuto CallHomeMode = iota
	// CallHomeClassic makes every worker open a new TCP connection per response stream, as
	// Dynamo's classic runtime does.
	CallHomeClassic
)

// WithCallHome sets the call-home mode (default CallHomeAuto).
func WithCallHome(m CallHomeMode) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.callHome = m })
}

// WithRouterMode sets the routing policy (default RoundRobin).
func WithRouterMode(m RouterMode) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.mode = m })
}

// WithMaxAttempts bounds how many instances one request tries before it gives up (default 3). A
// request moves to another instance only when the previous one failed before acknowledging it.
func WithMaxAttempts(n int) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.maxAttempts = max(1, n) })
}

// Client sends requests to one endpoint. It follows the endpoint's instances in etcd and routes
// each request with its router. Safe for concurrent use.
type Client struct {
	rt      *Runtime
	id      EndpointID
	name    string // id.String(), made once: spans name the endpoint on every call
	opts    clientOptions
	router  *router.Router
	watcher *etcd.Watcher
	log     *slog.Logger
	metrics *telemetry.ClientMetrics

	done      chan struct{} // closed when the forwarding goroutine exits
	closeOnce sync.Once
}

// Client returns a client for the endpoint. It connects to etcd when the runtime has not yet, and
// returns once the endpoint's current instances are known (or ctx ends).
func (e *Endpoint) Client(ctx context.Context, opts ...ClientOption) (*Client, error) {
	rt := e.rt
	o := clientOptions{mode: RoundRobin, maxAttempts: 3}
	for _, opt := range opts {
		opt.applyClient(&o)
	}
	cli, err := rt.etcdClient(ctx)
	if err != nil {
		return nil, err
	}
	planes := make([]string, len(rt.cfg.RequestPlanes))
	for i, p := range rt.cfg.RequestPlanes {
		planes[i] = string(p)
	}
	c := &Client{
		rt:      rt,
		id:      e.id,
		name:    e.id.String(),
		opts:    o,
		router:  router.New(e.id.String(), router.Options{Mode: o.mode, Planes: planes}),
		watcher: etcd.NewWatcher(cli, discoveryID(e.id), etcd.WatcherOptions{Logger: rt.log}),
		log:     rt.log.With("endpoint", e.id.String()),
		metrics: rt.metrics.Client(e.id.String(), o.mode.String()),
		done:    make(chan struct{}),
	}
	if err := c.watcher.Start(ctx); err != nil {
		return nil, &Error{Code: CodeUnreachable, Endpoint: e.id, Message: "reqplane: watching " + e.id.String() + ": " + err.Error(), Err: err}
	}
	first := make(chan struct{})
	go c.follow(first)
	select {
	case <-first:
	case <-ctx.Done():
		c.Close()
		return nil, &Error{Code: CodeUnreachable, Endpoint: e.id, Message: "reqplane: no answer from etcd for " + e.id.String(), Err: ctx.Err()}
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		c.Close()
		return nil, closedError()
	}
	rt.clients[c] = struct{}{}
	rt.mu.Unlock()
	return c, nil
}

// follow installs each discovery snapshot in the router until the watcher stops.
func (c *Client) follow(first chan struct{}) {
	defer close(c.done)
	seen := false
	for snap := range c.watcher.Updates() {
		c.router.Update(routerInstances(snap))
		if !seen {
			seen = true
			close(first)
		}
	}
}

func routerInstances(s discovery.Snapshot) []router.Instance {
	out := make([]router.Instance, 0, len(s.Instances))
	for _, rec := range s.Instances {
		ts := rec.Transports()
		in := router.Instance{ID: rec.InstanceID, Transports: make([]router.Transport, 0, len(ts)), ResponseMux: rec.ResponseMux}
		for _, t := range ts {
			if name, ok := planeName(t.Kind); ok {
				in.Transports = append(in.Transports, router.Transport{Plane: name, Address: t.Address})
			}
		}
		out = append(out, in)
	}
	return out
}

// planeName maps a discovery transport key to its plane.
func planeName(k discovery.TransportKind) (string, bool) {
	switch k {
	case discovery.KindHTTP:
		return plane.NameHTTP, true
	case discovery.KindTCP:
		return plane.NameTCP, true
	case discovery.KindNATS:
		return plane.NameNATS, true
	}
	return "", false
}

// Endpoint returns the endpoint the client calls.
func (c *Client) Endpoint() EndpointID { return c.id }

// Instance describes one instance as the client's router sees it.
type Instance struct {
	ID      InstanceID
	Plane   string // the plane this client uses to reach it
	Address string
	Down    bool // marked down after a failure, avoided for a while
}

// Instances returns the endpoint's current instances, sorted by id.
func (c *Client) Instances() []Instance {
	ts := c.router.Instances()
	out := make([]Instance, len(ts))
	for i, t := range ts {
		out[i] = Instance{ID: InstanceID(t.ID), Plane: t.Transport.Plane, Address: t.Transport.Address, Down: c.router.IsDown(t.ID)}
	}
	return out
}

// WaitForInstances blocks until the endpoint has at least one instance, or ctx ends.
func (c *Client) WaitForInstances(ctx context.Context) error {
	if err := c.router.Wait(ctx); err != nil {
		return &Error{Code: CodeNoInstances, Endpoint: c.id, Message: "no instances found for endpoint " + c.id.String() + " (waited until: " + err.Error() + ")", Err: err}
	}
	return nil
}

// Close stops following discovery and closes the client's streams. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		_ = c.watcher.Close()
		<-c.done
		c.rt.mu.Lock()
		delete(c.rt.clients, c)
		c.rt.mu.Unlock()
	})
	return nil
}

// CallOption configures one call.
type CallOption interface{ applyCall(*callOptions) }

type callOptionFunc func(*callOptions)

func (f callOptionFunc) applyCall(o *callOptions) { f(o) }

type callOptions struct {
	instance  uint64
	direct    bool
	wait      bool
	requestID string
}

// WithInstance sends the call to one instance (direct routing), whatever the router's mode.
func WithInstance(id InstanceID) CallOption {
	return callOptionFunc(func(o *callOptions) { o.instance, o.direct = uint64(id), true })
}

// WaitForInstance makes the call wait for an instance to appear, until its context ends,
// instead of failing at once with "no instances found for endpoint …".
func WaitForInstance() CallOption { return callOptionFunc(func(o *callOptions) { o.wait = true }) }

// WithRequestID sets the request id that travels as x-request-id and appears on the worker's logs.
func WithRequestID(id string) CallOption {
	return callOptionFunc(func(o *callOptions) { o.requestID = id })
}

// Generate sends body (JSON) to an instance of the endpoint and returns the response stream once
// the instance acknowledged it. Failures before the acknowledgement move the request to another
// instance (up to WithMaxAttempts); nothing is retried after it. ctx governs the whole call:
// cancelling it stops the stream on the worker.
func (c *Client) Generate(ctx context.Context, body []byte, opts ...CallOption) (*ResponseStream, error) {
	var o callOptions
	if len(opts) > 0 {
		o = applyCallOptions(opts)
	}
	start := time.Now()
	id := c.rt.ids.New().String()
	ctx, span := c.rt.tracer.StartClient(ctx, c.name, c.opts.mode.String(), id, o.requestID)
	rs, err := c.generate(ctx, span, start, id, body, o)
	if err != nil {
		telemetry.Fail(span, err)
		span.End()
		return nil, err
	}
	return rs, nil
}

// applyCallOptions applies opts to zero options. The options are applied through a pointer
// that escapes, so Generate calls this only when there are any: no allocation otherwise.
func applyCallOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		opt.applyCall(&o)
	}
	return o
}

// requestMeta returns the metadata sent beside the request: its control id (id), the caller's
// request id and, when
// ctx carries a span, its trace context. The propagator takes a pointer that escapes, so only
// a traced call pays for a Meta on the heap.
func (c *Client) requestMeta(ctx context.Context, id, requestID string) plane.Meta {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return plane.Meta{RequestID: requestID, ID: id}
	}
	m := &plane.Meta{RequestID: requestID, ID: id}
	c.rt.tracer.Inject(ctx, m)
	return *m
}

// generate routes and sends one call; span is the call's span, ended by the caller on failure
// and by the stream otherwise.
func (c *Client) generate(ctx context.Context, span trace.Span, start time.Time, id string, body []byte, o callOptions) (*ResponseStream, error) {
	if o.wait {
		if err := c.WaitForInstances(ctx); err != nil {
			return nil, err
		}
	}
	home, err := c.rt.callHomeServer(ctx)
	if err != nil {
		return nil, err
	}
	meta := c.requestMeta(ctx, id, o.requestID)
	recording := span.IsRecording()
	max := c.rt.cfg.TCP.MaxMessageSize
	callHome := c.rt.metrics.CallHomeOpen
	var tried []uint64
	var last error
	fb := c.rt.frames.Get().(*[]byte) // planes keep no reference to a frame after Send
	frame := *fb
	defer func() { c.rt.putFrame(fb, frame) }()
	var hdrBuf [512]byte // the request header usually fits: no allocation for it
	hdr := hdrBuf[:0]
	for attempt := 0; attempt < c.opts.maxAttempts; attempt++ {
		t, err := c.router.Pick(router.PickRequest{InstanceID: o.instance, Direct: o.direct, Tried: tried})
		if err != nil {
			if last != nil {
				break
			}
			return nil, &Error{Code: CodeNoInstances, Endpoint: c.id, Message: err.Error(), Err: err}
		}
		instance, planeName := InstanceID(t.ID), t.Transport.Plane
		if recording {
			span.AddEvent(telemetry.EventRoute, trace.WithAttributes(
				telemetry.AttrInstance.String(instance.String()), telemetry.AttrPlane.String(planeName), telemetry.AttrAttempt.Int(attempt)))
		}
		pc, err := c.rt.client(planeName)
		if err != nil {
			return nil, &Error{Code: CodeUnreachable, Endpoint: c.id, Instance: instance, Message: err.Error(), Err: err}
		}
		pm := c.metrics.Plane(planeName)
		var st *stream.Stream
		if c.opts.callHome == CallHomeAuto && t.ResponseMux >= codec.MuxVersion {
			st = home.RegisterMux(id) // the worker speaks the mux: share its persistent connections
		} else {
			st = home.Register(id)
		}
		callHome.Inc()
		hdr = st.AppendRequestControl(hdr[:0])
		frame, err = codec.AppendFrame(frame[:0], hdr, body, max)
		if err != nil {
			st.Abandon()
			callHome.Dec()
			return nil, &Error{Code: CodeRejected, Endpoint: c.id, Message: err.Error(), Err: err}
		}
		flight := t.Begin()
		sent := time.Now()
		pm.Inflight.Inc()
		err = pc.Send(ctx, t.Transport.Address, frame, meta)
		if err == nil {
			pm.Ack.Observe(time.Since(sent).Seconds())
			st.Acked()
			if recording {
				span.AddEvent(telemetry.EventAck)
				span.SetAttributes(telemetry.AttrInstance.String(instance.String()), telemetry.AttrPlane.String(planeName))
			}
			return &ResponseStream{ctx: ctx, c: c, st: st, flight: flight, instance: instance, plane: planeName, span: span, start: start, pm: pm}, nil
		}
		pm.Inflight.Dec()
		flight.End()
		st.Abandon()
		callHome.Dec()
		if recording {
			span.AddEvent(telemetry.EventRefused, trace.WithAttributes(attribute.String(string(telemetry.AttrError), err.Error())))
		}
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeCanceled, Endpoint: c.id, Message: "reqplane: request canceled: " + ctx.Err().Error(), Err: ctx.Err()}
		}
		if !plane.Retryable(err) {
			return nil, &Error{Code: CodeRejected, Endpoint: c.id, Instance: instance, Message: err.Error(), Err: err}
		}
		tried = append(tried, t.ID)
		last = err
		if attempt+1 < c.opts.maxAttempts {
			pm.Retries.Inc()
		}
		if plane.CodeOf(err) != plane.CodeOverloaded { // busy is not down
			c.router.MarkDown(t.ID)
			pm.MarkedDown.Inc()
			c.log.Warn("instance marked down", "instance", instance.String(), "plane", planeName, "request_id", requestIDOr(o.requestID, id), "err", err)
		}
	}
	return nil, &Error{Code: CodeUnavailable, Endpoint: c.id, Message: fmt.Sprintf("no instance of %s accepted the request: %v", c.id, last), Err: last}
}

func requestIDOr(requestID, id string) string {
	if requestID != "" {
		return requestID
	}
	return id
}

// ResponseStream is a request's stream of response items.
type ResponseStream struct {
	ctx      context.Context
	c        *Client
	st       *stream.Stream
	flight   router.Flight // counts the request in flight to its instance until Close
	instance InstanceID
	plane    string
	closed   bool

	span  trace.Span // the call's span, ended with the stream
	start time.Time  // when Generate was called
	pm    *telemetry.ClientPlane
	items int
}

// Instance returns the instance serving the request.
func (s *ResponseStream) Instance() InstanceID { return s.instance }

// CallHome returns how the worker streams the response back: "mux" (a shared persistent
// connection) or "classic" (a connection per request).
func (s *ResponseStream) CallHome() string {
	if s.st.Transport() == codec.TransportTCPResponseMuxV1 {
		return "mux"
	}
	return "classic"
}

// Plane returns the request plane the request went over.
func (s *ResponseStream) Plane() string { return s.plane }

// Recv returns the next item (its raw JSON), io.EOF after the last one, or an *Error. When the
// call's context ends, Recv asks the worker to stop, gives the stream up and returns an error with
// CodeCanceled.
func (s *ResponseStream) Recv() ([]byte, error) {
	item, err := s.st.Recv(s.ctx)
	switch {
	case err == nil:
		if s.items == 0 {
			s.pm.FirstItem.Observe(time.Since(s.start).Seconds())
			if s.span.IsRecording() {
				s.span.AddEvent(telemetry.EventFirstItem)
			}
		}
		s.items++
		return item, nil
	case err == io.EOF: // exactly: failures may wrap an unexpected EOF
		s.Close()
		return nil, io.EOF
	case s.ctx.Err() != nil:
		s.st.Stop()
		rerr := &Error{Code: CodeCanceled, Endpoint: s.c.id, Instance: s.instance, Message: "reqplane: request canceled: " + s.ctx.Err().Error(), Err: s.ctx.Err()}
		telemetry.Fail(s.span, rerr)
		s.Close()
		return nil, rerr
	}
	code := CodeStream
	if stream.CodeOf(err) == stream.CodeGenerate {
		code = CodeGenerate
	} else {
		// The instance broke the stream after acknowledging: suspect it for a while.
		s.c.router.MarkDown(uint64(s.instance))
		s.pm.MarkedDown.Inc()
		s.c.log.Warn("instance marked down", "instance", s.instance.String(), "plane", s.plane, "err", err)
	}
	rerr := &Error{Code: code, Endpoint: s.c.id, Instance: s.instance, Message: err.Error(), Err: err}
	telemetry.Fail(s.span, rerr)
	s.Close()
	return nil, rerr
}

// All ranges over the items: for item, err := range s.All(). The stream is closed when the loop
// ends; an error, if any, is the last pair.
func (s *ResponseStream) All() iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		defer s.Close()
		for {
			item, err := s.Recv()
			if err == io.EOF {
				return
			}
			if !yield(item, err) || err != nil {
				return
			}
		}
	}
}

// Close gives the stream up: a worker still producing is told to stop at once ("kill"). It is
// idempotent.
func (s *ResponseStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.flight.End()
	err := s.st.Close()
	s.pm.Inflight.Dec()
	s.pm.Stream.Observe(time.Since(s.start).Seconds())
	s.c.rt.metrics.CallHomeOpen.Dec()
	s.span.End()
	return err
}
