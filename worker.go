package reqplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/status"
	"github.com/reqplane/reqplane/internal/stream"
	"github.com/reqplane/reqplane/internal/telemetry"
)

// Serve serves the endpoint with h until ctx ends, then shuts the runtime's worker down
// (Runtime.Shutdown) with at most drain for requests in flight to finish (DefaultShutdownTimeout
// when drain is 0). It returns nil after a clean shutdown.
func (e *Endpoint) Serve(ctx context.Context, h Handler, drain time.Duration) error {
	if err := e.Start(ctx, h); err != nil {
		return err
	}
	<-ctx.Done()
	if drain <= 0 {
		drain = DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	return e.rt.Shutdown(sctx)
}

// Start serves the endpoint with h and returns once it is registered in discovery, on every plane
// of DYN_REQUEST_PLANE. The first Start of a runtime connects to etcd, starts the planes and
// takes the lease; ctx bounds that. Serving continues until Runtime.Shutdown or Close.
func (e *Endpoint) Start(ctx context.Context, h Handler) error {
	rt := e.rt
	// The status server comes first, so that it answers "notready" while the worker starts.
	if err := rt.StartStatus(ctx); err != nil {
		return err
	}
	rt.startMu.Lock() // one Start at a time: the first one creates the worker
	defer rt.startMu.Unlock()
	rt.mu.Lock()
	w, closed := rt.worker, rt.closed
	rt.mu.Unlock()
	switch {
	case closed:
		return closedError()
	case w == nil:
		return rt.startWorker(ctx, e.id, h)
	}
	return w.add(ctx, e.id, h)
}

// InstanceID returns the id under which the runtime serves, 0 before Start.
func (rt *Runtime) InstanceID() InstanceID {
	rt.mu.Lock()
	w := rt.worker
	rt.mu.Unlock()
	if w == nil {
		return 0
	}
	return InstanceID(w.registrar.InstanceID())
}

// worker is the serving half of a Runtime: the plane servers, the lease and the requests in
// flight.
type worker struct {
	rt        *Runtime
	log       *slog.Logger
	servers   []plane.Server
	registrar *etcd.Registrar
	dial      stream.DialOptions
	mux       *stream.MuxDialer // persistent call-home connections for requesters that offer the mux
	limit     int64

	mu        sync.RWMutex // guards endpoints, instance, draining against Accept's admission
	endpoints map[EndpointID]*served
	instance  uint64
	draining  bool

	inflight   atomic.Int64
	reqs       sync.WaitGroup
	reqCtx     context.Context // parent of every handler's context
	cancelReqs context.CancelFunc

	reqMem sync.Pool // *plane.Request: the planes decode into them (served.NewRequest)

	// Request goroutines are reused: a fresh goroutine grows its stack on every request, which
	// costs more than the request's own work. Idle runners wait on a stack, each on a channel of
	// its own: handing a request over is one channel send, with no select or timer per request,
	// and the most recently busy runner (warm stack, warm cache) takes the next one.
	runners sync.WaitGroup
	runMu   sync.Mutex
	running map[*runner]struct{} // the runners alive, for cancelInflight
	idleMu  sync.Mutex
	idle    []*runner // idle runners, the longest idle first
	epoch   uint64    // reaper ticks so far (guarded by idleMu)
	noIdle  bool      // shutting down: runners exit instead of idling (guarded by idleMu)
	reaper  chan struct{}
	reaped  chan struct{}

	shutdownOnce sync.Once
	shutdownErr  error
}

// served is one endpoint of the worker; it admits the planes' requests.
type served struct {
	w    *worker
	id   EndpointID
	name string // id.String(), made once
	h    Handler
	m    *telemetry.EndpointMetrics

	registered bool // its record is in etcd (guarded by w.mu)
}

func (w *worker) newServed(id EndpointID, h Handler) *served {
	return &served{w: w, id: id, name: id.String(), h: h, m: w.rt.metrics.Endpoint(id.Namespace, id.Component, id.Endpoint)}
}

// startWorker starts the planes and registers the first endpoint under a new lease.
func (rt *Runtime) startWorker(ctx context.Context, first EndpointID, h Handler) error {
	cli, err := rt.etcdClient(ctx)
	if err != nil {
		return err
	}
	w := &worker{
		rt:        rt,
		log:       rt.log,
		endpoints: map[EndpointID]*served{},
		running:   map[*runner]struct{}{},
		limit:     int64(rt.cfg.Ingress.MaxInflightRequests),
		dial: stream.DialOptions{
			ConnectTimeout: rt.cfg.TCP.ConnectTimeout,
			MaxMessageSize: rt.cfg.TCP.MaxMessageSize,
			Logger:         rt.log,
		},
	}
	w.mux = stream.NewMuxDialer(stream.MuxDialOptions{
		ConnectTimeout: rt.cfg.TCP.ConnectTimeout,
		MaxMessageSize: rt.cfg.TCP.MaxMessageSize,
		Logger:         rt.log,
	})
	w.endpoints[first] = w.newServed(first, h)
	w.reqCtx, w.cancelReqs = context.WithCancel(context.Background())
	for _, p := range rt.cfg.RequestPlanes {
		s, err := newPlaneServer(rt.cfg, string(p), rt.log, rt.metrics.ObserveIngress)
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			w.closeServers()
			w.mux.Close()
			return fmt.Errorf("reqplane: starting the %s request plane: %w", p, err)
		}
		w.servers = append(w.servers, s)
	}
	w.registrar = etcd.NewRegistrar(cli, etcd.RegistrarOptions{TTL: rt.cfg.Etcd.LeaseTTL, Logger: rt.log})
	if err := w.registrar.Start(ctx, w.bind); err != nil {
		w.closeServers()
		w.mux.Close()
		var rerr *Error
		if errors.As(err, &rerr) {
			return err
		}
		return &Error{Code: CodeUnreachable, Endpoint: first, Message: "reqplane: registering " + first.String() + " in etcd: " + err.Error(), Err: err}
	}
	w.mu.Lock()
	w.endpoints[first].registered = true
	w.mu.Unlock()
	w.log.Info("serving endpoint", "endpoint", first.String(), "instance", InstanceID(w.registrar.InstanceID()).String())

	w.reaper, w.reaped = make(chan struct{}), make(chan struct{})
	go w.reap() // owned by the worker: its drain stops it

	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		// Close ran meanwhile and found no worker to shut down. Requests may have come in
		// since the registration: this worker drains itself, as Close would have.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
		defer cancel()
		_ = w.shutdown(dctx)
		return closedError()
	}
	rt.worker = w
	rt.mu.Unlock()
	return nil
}

// bind is the registrar's Binder: it (re)binds every endpoint to the lease id on every plane and
// returns the records to advertise. It runs at the first registration and after a lease loss.
func (w *worker) bind(ctx context.Context, id uint64) ([]discovery.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.instance
	w.instance = id
	recs := make([]discovery.Record, 0, len(w.endpoints))
	for _, s := range w.endpoints {
		if old != 0 && old != id {
			w.unbind(s.id, old)
		}
		rec, err := w.bindOne(ctx, s, id)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// bindOne adds one endpoint to every plane under instance id and builds its record.
func (w *worker) bindOne(ctx context.Context, s *served, id uint64) (discovery.Record, error) {
	pe := planeEndpoint(s.id, id)
	transports := make([]discovery.Transport, 0, len(w.servers))
	for _, srv := range w.servers {
		addr, err := srv.Add(ctx, pe, s)
		if err != nil {
			return discovery.Record{}, fmt.Errorf("reqplane: serving %s on the %s plane: %w", s.id, srv.Name(), err)
		}
		transports = append(transports, discovery.Transport{Kind: transportKind(srv.Name()), Address: addr})
	}
	rec := discovery.NewRecord(discoveryID(s.id), id, transports...)
	rec.ResponseMux = codec.MuxVersion // requesters may offer us the multiplexed call-home
	return rec, nil
}

func (w *worker) unbind(ep EndpointID, id uint64) {
	for _, srv := range w.servers {
		srv.Remove(planeEndpoint(ep, id))
	}
}

// add serves one more endpoint under the current lease.
func (w *worker) add(ctx context.Context, id EndpointID, h Handler) error {
	w.mu.Lock()
	if w.draining {
		w.mu.Unlock()
		return closedError()
	}
	if _, dup := w.endpoints[id]; dup {
		w.mu.Unlock()
		return fmt.Errorf("reqplane: endpoint %s is already served by this runtime", id)
	}
	s := w.newServed(id, h)
	w.endpoints[id] = s
	rec, err := w.bindOne(ctx, s, w.instance)
	if err != nil {
		delete(w.endpoints, id)
		w.unbind(id, w.instance)
		w.mu.Unlock()
		return err
	}
	w.mu.Unlock()
	if err := w.registrar.Register(ctx, rec); err != nil {
		w.mu.Lock()
		delete(w.endpoints, id)
		w.unbind(id, w.instance)
		w.mu.Unlock()
		return &Error{Code: CodeUnreachable, Endpoint: id, Message: "reqplane: registering " + id.String() + ": " + err.Error(), Err: err}
	}
	w.mu.Lock()
	s.registered = true
	w.mu.Unlock()
	w.log.Info("serving endpoint", "endpoint", id.String(), "instance", InstanceID(rec.InstanceID).String(), "transports", rec.Transports())
	return nil
}

// Accept admits a request from a plane (plane.Handler): refuse while draining or over the
// in-flight limit, else process it in a goroutine the worker waits for.
func (s *served) Accept(req *plane.Request) error {
	w := s.w
	w.mu.RLock()
	if w.draining {
		w.mu.RUnlock()
		return plane.ErrDraining
	}
	if n := w.inflight.Add(1); w.limit > 0 && n > w.limit {
		w.inflight.Add(-1)
		w.mu.RUnlock()
		return plane.ErrOverloaded
	}
	w.reqs.Add(1)
	w.mu.RUnlock()
	if rn := w.takeIdle(); rn != nil {
		rn.jobs <- job{s, req} // never blocks: the runner took its last job before idling
		return nil
	}
	w.runners.Add(1)
	go w.run(job{s, req})
	return nil
}

// NewRequest gives the planes a request to decode into (plane.Recycler): process recycles it,
// which spares the worker a request-sized allocation per request.
func (s *served) NewRequest() *plane.Request {
	if r, ok := s.w.reqMem.Get().(*plane.Request); ok {
		return r
	}
	return new(plane.Request)
}

// job is one admitted request.
type job struct {
	s   *served
	req *plane.Request
}

// runnerIdle is about how long a request goroutine waits for another request before it exits:
// between runnerIdle and 1.5 × runnerIdle.
const runnerIdle = 10 * time.Second

// run processes j, then the requests handed to it while it is idle, until the reaper or the
// worker's shutdown lets it go.
func (w *worker) run(j job) {
	defer w.runners.Done()
	rn := w.addRunner()
	defer w.removeRunner(rn)
	for {
		w.process(rn, j.s, j.req)
		j = job{} // an idle runner holds on to no request
		if !w.goIdle(rn) {
			return
		}
		if j = <-rn.jobs; j.s == nil {
			return // reaped or shut down
		}
	}
}

// goIdle puts rn on the idle stack; false means the worker is shutting down and rn exits.
func (w *worker) goIdle(rn *runner) bool {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	if w.noIdle {
		return false
	}
	rn.idleSince = w.epoch
	w.idle = append(w.idle, rn)
	return true
}

// takeIdle pops the most recently idle runner, nil if none.
func (w *worker) takeIdle() *runner {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	n := len(w.idle)
	if n == 0 {
		return nil
	}
	rn := w.idle[n-1]
	w.idle[n-1] = nil
	w.idle = w.idle[:n-1]
	return rn
}

// reap lets runners go that stayed idle for three ticks of runnerIdle/2, until stopRunners. The
// stack is in idling order, so they are at its bottom.
func (w *worker) reap() {
	defer close(w.reaped)
	t := time.NewTicker(runnerIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-w.reaper:
			return
		case <-t.C:
		}
		w.reapTick()
	}
}

// reapTick advances the epoch and lets go the runners idle since three epochs.
func (w *worker) reapTick() {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	w.epoch++
	n := 0
	for n < len(w.idle) && w.idle[n].idleSince+3 <= w.epoch {
		w.idle[n].jobs <- job{}
		n++
	}
	w.idle = append(w.idle[:0], w.idle[n:]...)
	clear(w.idle[len(w.idle) : len(w.idle)+n])
}

// stopRunners stops the reaper and lets every idle runner go; busy ones exit when done.
func (w *worker) stopRunners() {
	w.idleMu.Lock()
	w.noIdle = true
	for _, rn := range w.idle {
		rn.jobs <- job{}
	}
	w.idle = nil
	w.idleMu.Unlock()
	close(w.reaper)
	<-w.reaped
}

// runner is a request goroutine as the drain sees it: the response stream of the request it
// runs, whose Context is the handler's. A registry per goroutine is cheaper than tying every
// handler's context to reqCtx, whose children set every request would then lock.
type runner struct {
	jobs      chan job // cap 1: its next request while idle; a zero job lets it go
	idleSince uint64   // the worker's epoch when it last went idle (guarded by worker.idleMu)

	mu     sync.Mutex
	stream stream.Responder // the request's response stream; nil between requests
}

// running records the stream of the request the runner runs (nil: none).
func (rn *runner) running(st stream.Responder) {
	rn.mu.Lock()
	rn.stream = st
	rn.mu.Unlock()
}

// cut cancels the handler the runner runs, if any, and returns its stream for closing.
func (rn *runner) cut() io.Closer {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.stream == nil {
		return nil
	}
	rn.stream.Cancel()
	return rn.stream
}

func (w *worker) addRunner() *runner {
	rn := &runner{jobs: make(chan job, 1)}
	w.runMu.Lock()
	w.running[rn] = struct{}{}
	w.runMu.Unlock()
	return rn
}

func (w *worker) removeRunner(rn *runner) {
	w.runMu.Lock()
	delete(w.running, rn)
	w.runMu.Unlock()
}

// cancelInflight ends reqCtx, the context of every handler running and its response stream: a
// handler blocked in Send (a requester that reads nothing, a mux stream without credit) does
// not watch its context, and only the stream's Close releases it. A handler that starts later
// sees reqCtx ended (process checks after registering). It returns once every stream is closed.
func (w *worker) cancelInflight() {
	w.cancelReqs()
	var streams []io.Closer
	w.runMu.Lock()
	for rn := range w.running {
		if st := rn.cut(); st != nil {
			streams = append(streams, st)
		}
	}
	w.runMu.Unlock()
	// In parallel: closing a classic stream writes what it queued, for up to a second.
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Go(func() { st.Close() })
	}
	wg.Wait()
}

// callHome opens the request's response stream: on a shared mux connection when the requester
// offered the mux, else on a connection of its own (classic).
func (w *worker) callHome(ctx context.Context, req *plane.Request) (stream.Responder, error) {
	if req.Control.Transport == codec.TransportTCPResponseMuxV1 {
		return w.mux.Open(ctx, req.Mux) // validated by plane.Decode
	}
	return stream.Dial(ctx, req.CallHome, w.dial)
}

// call is one request's Request and Responder, allocated together.
type call struct {
	req Request
	out Responder
}

// process calls home, runs the handler and ends the stream. rn is the runner it runs on.
func (w *worker) process(rn *runner, s *served, req *plane.Request) {
	defer w.reqs.Done()
	// Nothing keeps req beyond this call: the handler's Request copies what it needs, and
	// the call-home info is passed by value.
	defer func() {
		*req = plane.Request{}
		w.reqMem.Put(req)
	}()
	defer w.inflight.Add(-1)
	start := s.m.Begin(len(req.Body))
	defer s.m.End(start)
	// The span's context derives from reqCtx and bounds the call home; the sender's Context
	// keeps its values, so the handler's context carries the span without one of its own.
	spanCtx, span := w.rt.tracer.StartHandler(w.reqCtx, &req.Meta, s.name, req.Endpoint.InstanceID, req.Plane, req.Control.ID)
	defer span.End()
	c := &call{req: Request{
		ID:          req.Control.ID,
		RequestID:   req.Meta.RequestID,
		TraceParent: req.Meta.TraceParent,
		TraceState:  req.Meta.TraceState,
		Endpoint:    s.id,
		Instance:    InstanceID(req.Endpoint.InstanceID),
		Plane:       req.Plane,
		Body:        req.Body,
		logBase:     w.log,
		span:        span.SpanContext(),
	}}
	r, out := &c.req, &c.out

	// The dial is bounded by its connect timeout, and by the worker's shutdown.
	sender, err := w.callHome(spanCtx, req)
	if err != nil {
		s.m.Error(telemetry.ErrorResponseStream)
		telemetry.Fail(span, err)
		r.Logger().Warn("cannot call the requester home", "address", req.CallHome.Address, "err", err)
		return
	}
	defer sender.Close()
	out.s = sender

	// The handler's context is the stream's: it ends with the stream, and past the drain
	// deadline (cancelInflight cancels it). A context of its own would cost a cancelCtx, a
	// children map and a done channel per request.
	ctx := sender.Context()
	rn.running(sender)
	defer rn.running(nil)
	if w.reqCtx.Err() != nil {
		// The deadline passed before running: cancelInflight missed this one.
		sender.Cancel()
		sender.Close()
	}

	var herr error
	if req.Unsupported != nil {
		herr = req.Unsupported // acknowledged, answered with an error prologue (spec §3)
	} else {
		herr = generate(ctx, s.h, r, out)
	}
	if herr != nil && !errors.Is(herr, ErrStopped) && ctx.Err() == nil {
		telemetry.Fail(span, herr)
		r.Logger().Debug("handler failed", "err", herr)
	}
	if w.reqCtx.Err() != nil {
		// Cancelled past the drain deadline: cut the stream rather than end it as if complete;
		// the requester sees "Stream ended before generation completed".
		s.m.ResponseBytes(out.bytes)
		return
	}
	ferr := out.finish(herr)
	if ferr != nil && ctx.Err() == nil {
		telemetry.Fail(span, ferr)
		r.Logger().Debug("ending the response stream", "err", ferr)
	}
	s.m.ResponseBytes(out.bytes)
	if out.errType != "" {
		s.m.Error(out.errType)
	}
}

// generate runs the handler, turning a panic into an error so that one bad request cannot take
// the worker down.
func generate(ctx context.Context, h Handler, r *Request, out *Responder) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
			slog.Default().Error("handler panicked", "endpoint", r.Endpoint.String(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return h.Generate(ctx, r, out)
}

// shutdown runs the drain sequence once; later calls return the first result.
func (w *worker) shutdown(ctx context.Context) error {
	w.shutdownOnce.Do(func() { w.shutdownErr = w.drain(ctx) })
	return w.shutdownErr
}

func (w *worker) drain(ctx context.Context) error {
	// 1. Revoke the lease: clients stop picking this instance.
	regErr := w.registrar.Close()
	// 2. Refuse new requests. NATS unsubscribes (spec: a draining NATS worker has no
	// responders); HTTP and TCP answer "Server unavailable: endpoint is draining".
	w.mu.Lock()
	w.draining = true
	for _, srv := range w.servers {
		if srv.Name() == plane.NameNATS {
			for id := range w.endpoints {
				srv.Remove(planeEndpoint(id, w.instance))
			}
		}
	}
	w.mu.Unlock()
	w.log.Info("draining", "inflight", w.inflight.Load())
	// 3. Let requests in flight finish until ctx ends, 4. then cancel the rest.
	done := make(chan struct{})
	go func() { w.reqs.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		w.log.Warn("drain deadline reached: cancelling requests in flight", "inflight", w.inflight.Load())
		w.cancelInflight()
		<-done // handlers see their context end; streams are closed as they return
	}
	w.cancelReqs()
	w.stopRunners()
	w.runners.Wait()
	// 5. Close the planes.
	return errors.Join(regErr, w.closeServers(), w.mux.Close())
}

// health reports the worker's readiness: ready when the lease is live, the worker is not
// draining and every served endpoint is registered. Endpoint keys are the endpoint names, as
// Dynamo's; names served under several components are keyed "namespace/component/endpoint".
func (w *worker) health() status.Health {
	w.mu.RLock()
	defer w.mu.RUnlock()
	live := !w.draining && w.registrar.State() == etcd.StateRegistered
	names := make(map[string]int, len(w.endpoints))
	for id := range w.endpoints {
		names[id.Endpoint]++
	}
	h := status.Health{Ready: live, Endpoints: make(map[string]bool, len(w.endpoints))}
	for id, s := range w.endpoints {
		key := id.Endpoint
		if names[key] > 1 {
			key = id.String()
		}
		ready := live && s.registered
		h.Endpoints[key] = ready
		h.Ready = h.Ready && ready
	}
	return h
}

func (w *worker) closeServers() error {
	var errs []error
	for _, s := range w.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func planeEndpoint(id EndpointID, instance uint64) plane.Endpoint {
	return plane.Endpoint{Namespace: id.Namespace, Component: id.Component, Name: id.Endpoint, InstanceID: instance}
}

func discoveryID(id EndpointID) discovery.EndpointID {
	return discovery.EndpointID{Namespace: id.Namespace, Component: id.Component, Endpoint: id.Endpoint}
}

// transportKind maps a plane name to its discovery transport key.
func transportKind(planeName string) discovery.TransportKind {
	switch planeName {
	case plane.NameHTTP:
		return discovery.KindHTTP
	case plane.NameTCP:
		return discovery.KindTCP
	}
	return discovery.KindNATS
}
