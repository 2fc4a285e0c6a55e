package http2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// Defaults for zero ClientOptions fields.
const (
	DefaultRequestTimeout  = 5 * time.Second
	DefaultMaxConnsPerHost = 50
)

const (
	// maxErrorBody caps how much of a refusal's body the Client reads into its error.
	maxErrorBody = 4 << 10
	// clientIdleTimeout closes pooled connections unused for that long.
	clientIdleTimeout = 90 * time.Second
	// clientPingAfter: a connection silent for that long is pinged, and dropped when the ping
	// is not answered within clientPingTimeout, so a vanished worker does not hold the pool.
	clientPingAfter   = 15 * time.Second
	clientPingTimeout = 5 * time.Second
	// clientWriteTimeout drops a connection the peer stopped reading from.
	clientWriteTimeout = 10 * time.Second
)

// ClientOptions configures a Client. Zero fields take the documented defaults.
type ClientOptions struct {
	// RequestTimeout bounds each Send up to the acknowledgement, connecting included
	// (DYN_HTTP_REQUEST_TIMEOUT). Default 5 s.
	RequestTimeout time.Duration
	// MaxConnsPerHost bounds the connections per worker address (see NewClient). Default 50.
	MaxConnsPerHost int
	// MaxMessageSize bounds the frames Send accepts. Default codec.DefaultMaxMessageSize.
	MaxMessageSize int
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	return o
}

// Client is the requester side of the HTTP request plane. It implements plane.Client and is
// safe for concurrent use.
type Client struct {
	opts ClientOptions
	// dial opens connections: a net.Dialer's, replaced by tests that script the server.
	dialConn func(ctx context.Context, network, addr string) (net.Conn, error)

	// done is canceled by Close, aborting dials in flight.
	done   context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex // guards closed, pools, conns and targets
	closed   bool
	inflight sync.WaitGroup
	pools    map[string]*pool // by "host:port"
	conns    map[*conn]struct{}
	targets  map[string]*target // parsed addresses
	wg       sync.WaitGroup     // every connection's reader and housekeeper

	streams   sync.Pool // *stream
	closeOnce sync.Once
}

var _ plane.Client = (*Client)(nil)

// NewClient returns a Client configured by opts. It does no I/O.
//
// The Client speaks HTTP/2 with prior knowledge (h2c) only, with a transport of its own
// (conn.go). Requests to a worker share a connection up to the worker's concurrent-stream
// limit (SETTINGS_MAX_CONCURRENT_STREAMS; 1000 for this package's Server); when every
// connection is at its limit the Client dials another, up to MaxConnsPerHost connections per
// address, and beyond that waits for a stream to end. One dial per address runs at a time:
// a burst of Sends to a new worker waits for the first connection and shares it.
func NewClient(opts ClientOptions) *Client {
	opts = opts.withDefaults()
	c := &Client{
		opts:     opts,
		dialConn: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		pools:    map[string]*pool{},
		conns:    map[*conn]struct{}{},
		targets:  map[string]*target{},
	}
	c.done, c.cancel = context.WithCancel(context.Background())
	return c
}

// Name returns plane.NameHTTP.
func (c *Client) Name() string { return plane.NameHTTP }

// maxSendAttempts bounds how often one Send goes out again after the server provably did not
// process it (REFUSED_STREAM, GOAWAY) or a connection turned out unable to take it.
const maxSendAttempts = 8

// Send POSTs frame to address (an http:// URL from discovery, used verbatim) and returns nil
// once the worker answered 2xx (202 Accepted). The wait is bounded by ctx and RequestTimeout.
//
// The request-id header carries the frame's control id, read from the frame's header (the
// frame is one plane.EncodeRequest built, whose header starts with the id), because the spec
// separates it from the caller's x-request-id (meta.RequestID).
//
// Failures are *plane.Error values: a refusal with the worker's status (404 unknown endpoint,
// 400 bad request, 413 too large, 503 overloaded or draining by the text, anything else
// refused) and the text "HTTP request failed with status {code} {reason}: {body}"; CodeConnect
// when the connection failed; CodeAckTimeout when no answer came in time; CodeTooLarge or
// CodeBadRequest, without sending, for a frame over MaxMessageSize or without a request
// header; CodeClosed after Close. When the caller cancels ctx the error matches
// context.Canceled and is not retryable. A request is sent again, on the same worker, only
// when the server provably did not process it (HTTP/2 REFUSED_STREAM or GOAWAY).
func (c *Client) Send(ctx context.Context, address string, frame []byte, meta plane.Meta) error {
	if len(frame) > c.opts.MaxMessageSize {
		err := tooLarge(uint64(len(frame)), c.opts.MaxMessageSize)
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeTooLarge, Text: err.Error(), Err: err}
	}
	id, err := meta.FrameID(frame)
	if err != nil {
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeBadRequest, Text: err.Error(), Err: err}
	}
	tg, ok := c.admit(address)
	if !ok {
		return closedError("client")
	}
	defer c.inflight.Done()
	if tg == nil {
		if tg, err = c.target(address); err != nil {
			// A bad address is that instance's record: another instance may do.
			return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "invalid address " + strconv.Quote(address) + ": " + err.Error(), Err: err}
		}
	}
	deadline := time.Now().Add(c.opts.RequestTimeout)
	st := c.newStream()
	var last error
	for range maxSendAttempts {
		cn, err := c.pick(ctx, tg, deadline)
		if err != nil {
			c.streams.Put(st)
			return c.sendError(ctx, address, err)
		}
		if err := cn.open(st, tg, frame, id, meta); err != nil {
			last = err // errStale: the connection filled up or went away meanwhile
			continue
		}
		res, err := cn.wait(ctx, st, deadline)
		if err != nil {
			// Abandoned: the connection forgot st and reset its stream.
			c.streams.Put(st)
			return c.sendError(ctx, address, err)
		}
		c.streams.Put(st)
		switch {
		case res.err == nil && res.status < 300:
			return nil
		case res.err == nil:
			return statusError(res.status, res.body)
		case res.unprocessed:
			last = res.err
			st = c.newStream()
			continue
		default:
			return c.sendError(ctx, address, res.err)
		}
	}
	c.streams.Put(st)
	return c.sendError(ctx, address, last)
}

// admit registers a Send in flight, unless the Client is closed, and returns address's
// parsed target when it is cached: one read lock for both.
func (c *Client) admit(address string) (tg *target, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, false
	}
	c.inflight.Add(1)
	return c.targets[address], true // nil: not parsed yet (target)
}

// newStream returns a pooled stream.
func (c *Client) newStream() *stream {
	if st, ok := c.streams.Get().(*stream); ok {
		return st
	}
	return &stream{ch: make(chan result, 1)}
}

// target is a parsed worker address.
type target struct {
	host      string // "host:port" to dial, the pool key
	authority string // :authority
	path      string // :path, with the query
}

// maxTargets bounds the parsed-address cache; it is emptied when full (addresses of departed
// workers must not accumulate).
const maxTargets = 4096

// target parses address and caches the result for admit.
func (c *Client) target(address string) (*target, error) {
	u, err := url.Parse(address)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http":
		return nil, errors.New("unsupported scheme " + strconv.Quote(u.Scheme) + " (h2c needs http://)")
	case u.Host == "":
		return nil, errors.New("no host in the URL")
	}
	tg := &target{host: dialAddr(u), authority: u.Host, path: u.RequestURI()}
	c.mu.Lock()
	if len(c.targets) >= maxTargets {
		clear(c.targets)
	}
	c.targets[address] = tg
	c.mu.Unlock()
	return tg, nil
}

// pool is the set of connections to one worker address.
type pool struct {
	addr    string
	mu      sync.Mutex
	conns   []*conn
	dial    *dialCall     // the dial in progress, shared by the senders that need it
	changed chan struct{} // closed and replaced, when someone waits, as room may have appeared
	waiting bool
	dead    bool // removed from Client.pools; look it up again
}

// dialCall is one dial in progress.
type dialCall struct {
	done chan struct{}
	err  error // set before done is closed; nil when the waiters should just pick again
}

// signal wakes the senders waiting for room.
func (p *pool) signal() {
	p.mu.Lock()
	if p.waiting {
		close(p.changed)
		p.changed = make(chan struct{})
		p.waiting = false
	}
	p.mu.Unlock()
}

func (c *Client) lookupPool(addr string) (*pool, error) {
	c.mu.RLock()
	p, closed := c.pools[addr], c.closed
	c.mu.RUnlock()
	if closed {
		return nil, errClientClosed
	}
	if p != nil {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClientClosed
	}
	if p = c.pools[addr]; p == nil {
		p = &pool{addr: addr, changed: make(chan struct{})}
		c.pools[addr] = p
	}
	return p, nil
}

// pick returns a connection to tg with room for a stream: the first one with room (filling
// one connection batches more requests per write), else a new one.
func (c *Client) pick(ctx context.Context, tg *target, deadline time.Time) (*conn, error) {
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		p, err := c.lookupPool(tg.host)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		for _, cn := range p.conns {
			if cn.usable() {
				p.mu.Unlock()
				return cn, nil
			}
		}
		var ch <-chan struct{}
		switch {
		case p.dial != nil:
			ch = p.dial.done
		case len(p.conns) < c.opts.MaxConnsPerHost:
			d := &dialCall{done: make(chan struct{})}
			p.dial = d
			p.mu.Unlock()
			cn, err := c.dial(ctx, p, deadline)
			p.mu.Lock()
			p.dial = nil
			if err == nil && !cn.unusable.Load() {
				p.conns = append(p.conns, cn)
			}
			if err != nil && ctx.Err() == nil {
				d.err = err // the worker is unreachable: those waiting for this dial fail too
			}
			close(d.done)
			p.mu.Unlock()
			if err != nil {
				c.forgetIfEmpty(p)
				return nil, err
			}
			continue
		default:
			// Every connection is at its stream limit and there may be no more: wait for room.
			p.waiting = true
			ch = p.changed
		}
		d := p.dial
		p.mu.Unlock()
		if wait == nil {
			wait = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-ch:
			if d != nil && d.err != nil {
				return nil, d.err
			}
		case <-wait.C:
			return nil, context.DeadlineExceeded
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens a connection to p.addr and waits for the server's SETTINGS.
func (c *Client) dial(ctx context.Context, p *pool, deadline time.Time) (*conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer context.AfterFunc(c.done, cancel)()
	nc, err := c.dialConn(dctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	cn := newConn(c, p, nc)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, errClientClosed
	}
	c.conns[cn] = struct{}{}
	c.wg.Add(2)
	c.mu.Unlock()
	go cn.readLoop()
	go cn.housekeep()
	if err := cn.start(); err != nil {
		<-cn.closed
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: fmt.Errorf("no HTTP/2 session: %w", err)}
	}
	select {
	case <-cn.ready:
		return cn, nil
	case <-cn.closed:
	case <-dctx.Done():
		cn.fail(errNoSettings)
		<-cn.closed
	}
	cn.mu.Lock()
	err = cn.err
	cn.mu.Unlock()
	if c.done.Err() != nil {
		return nil, errClientClosed
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dctx.Err() != nil {
		return nil, context.DeadlineExceeded // RequestTimeout bounds the handshake too
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: fmt.Errorf("no HTTP/2 session: %w", err)}
}

// remove takes a connection that ended out of the books.
func (c *Client) remove(cn *conn) {
	p := cn.p
	p.mu.Lock()
	if i := slices.Index(p.conns, cn); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
	}
	if p.waiting {
		close(p.changed)
		p.changed = make(chan struct{})
		p.waiting = false
	}
	p.mu.Unlock()
	c.forgetIfEmpty(p)
	c.mu.Lock()
	delete(c.conns, cn)
	c.mu.Unlock()
}

// forgetIfEmpty drops p from the Client's map when it holds no connection and no dial, so
// addresses of departed workers do not accumulate.
func (c *Client) forgetIfEmpty(p *pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead || len(p.conns) != 0 || p.dial != nil || c.pools[p.addr] != p {
		return
	}
	delete(c.pools, p.addr)
	p.dead = true
}

// wait blocks until st's answer, the deadline or ctx's end. An error means the sender gave
// up and st was abandoned.
func (cn *conn) wait(ctx context.Context, st *stream, deadline time.Time) (result, error) {
	d := time.Until(deadline)
	if st.timer == nil {
		st.timer = time.NewTimer(d)
	} else {
		st.timer.Reset(d)
	}
	select {
	case res := <-st.ch:
		st.timer.Stop()
		return res, nil
	case <-st.timer.C:
		if res, ok := cn.abandon(st); ok {
			return res, nil
		}
		return result{}, context.DeadlineExceeded
	case <-ctx.Done():
		st.timer.Stop()
		if res, ok := cn.abandon(st); ok {
			return res, nil
		}
		return result{}, ctx.Err()
	}
}

// fail ends the connection with err (unless it already ended).
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	cn.breakLocked(err)
	cn.mu.Unlock()
}

// dialAddr is the "host:port" net/http dials for u, the key of hosts.
func dialAddr(u *url.URL) string {
	port := u.Port()
	if port != "" && !strings.Contains(u.Host, "%") {
		return u.Host // already host:port, IPv6 bracketed
	}
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// sendError classifies a failure of Send. parent is the caller's context.
func (c *Client) sendError(parent context.Context, address string, err error) error {
	var op *net.OpError
	switch {
	case c.done.Err() != nil || errors.Is(err, errClientClosed):
		return closedError("client")
	case errors.Is(parent.Err(), context.Canceled):
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeUnknown,
			Text: "request to " + address + " canceled before its acknowledgement", Err: parent.Err()}
	case errors.As(err, &op) && op.Op == "dial":
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "POST " + address + ": " + err.Error(), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeAckTimeout,
			Text: "no acknowledgement from " + address + " in time", Err: context.DeadlineExceeded}
	default:
		// The connection broke before the answer: the request may not have arrived.
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "POST " + address + ": " + err.Error(), Err: err}
	}
}

// statusError turns a non-2xx answer into the refusal Dynamo's requester reports.
func statusError(status int, b []byte) error {
	body := strings.ToValidUTF8(string(b), "\uFFFD")
	reason := http.StatusText(status)
	if reason == "" {
		reason = "<unknown status code>" // as Rust's StatusCode prints one it does not know
	}
	code := plane.CodeRefused
	switch status {
	case http.StatusNotFound:
		code = plane.CodeUnknownEndpoint
	case http.StatusBadRequest:
		code = plane.CodeBadRequest
	case http.StatusRequestEntityTooLarge:
		code = plane.CodeTooLarge
	case http.StatusServiceUnavailable:
		switch {
		case strings.HasPrefix(body, "Server overloaded:"):
			code = plane.CodeOverloaded
		case strings.HasPrefix(body, "Server unavailable:"):
			code = plane.CodeDraining
		}
	}
	return &plane.Error{
		Plane:  plane.NameHTTP,
		Code:   code,
		Status: status,
		Text:   "HTTP request failed with status " + strconv.Itoa(status) + " " + reason + ": " + body,
	}
}

// validHeaderValue reports whether net/http would send v as a header value: no control
// characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Close aborts Sends in flight, waits for them and closes every connection. It is
// idempotent; concurrent callers all return once the Client is down.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		conns := make([]*conn, 0, len(c.conns))
		for cn := range c.conns {
			conns = append(conns, cn)
		}
		c.mu.Unlock()
		c.cancel()
		for _, cn := range conns {
			cn.fail(errClientClosed)
		}
		c.inflight.Wait()
		c.wg.Wait()
	})
	return nil
}
