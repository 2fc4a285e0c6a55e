package http2

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	// MaxConnsPerHost bounds concurrent dials per worker address (see NewClient). Default 50.
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
	tr   *http.Transport

	// done is canceled by Close, aborting Sends in flight.
	done   context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex // guards closed, conns and hosts
	closed   bool
	inflight sync.WaitGroup
	conns    map[*trackedConn]struct{}
	hosts    map[string]*hostState
	released chan struct{} // a closed channel: the ready state of hosts that need no priming

	closeOnce sync.Once
}

var _ plane.Client = (*Client)(nil)

// NewClient returns a Client configured by opts. It does no I/O.
//
// The Client speaks HTTP/2 with prior knowledge (h2c) only, through one pooled net/http
// Transport. Requests to a worker share a connection up to the worker's concurrent-stream
// limit (SETTINGS_MAX_CONCURRENT_STREAMS; 1000 for this package's Server, 100 until the
// server's settings arrive); when every connection is at its limit the Transport dials
// another rather than queueing (HTTP2Config.StrictMaxConcurrentRequests is left false).
// MaxConnsPerHost caps the dials in progress per address; it is not a hard cap on HTTP/2
// connections, which net/http stops counting once they are handed to its HTTP/2 pool.
// The first Send to a worker goes alone and concurrent ones wait for its answer, so that a
// burst to a new worker shares one connection instead of dialing one per request.
func NewClient(opts ClientOptions) *Client {
	opts = opts.withDefaults()
	c := &Client{opts: opts, conns: map[*trackedConn]struct{}{}, hosts: map[string]*hostState{}, released: make(chan struct{})}
	close(c.released)
	c.done, c.cancel = context.WithCancel(context.Background())
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	dialer := &net.Dialer{Timeout: opts.RequestTimeout, KeepAlive: 30 * time.Second}
	c.tr = &http.Transport{
		// No proxy: workers are dialed directly at the address they advertise.
		Proxy:               nil,
		DialContext:         c.dialer(dialer),
		Protocols:           &protocols,
		MaxConnsPerHost:     opts.MaxConnsPerHost,
		MaxIdleConnsPerHost: opts.MaxConnsPerHost,
		IdleConnTimeout:     clientIdleTimeout,
		DisableCompression:  true, // bodies are frames and short texts
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:  clientPingAfter,
			PingTimeout:      clientPingTimeout,
			WriteByteTimeout: clientWriteTimeout,
		},
	}
	return c
}

// Name returns plane.NameHTTP.
func (c *Client) Name() string { return plane.NameHTTP }

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
// context.Canceled and is not retryable. Net/http may replay a request internally only when
// the server provably did not process it (HTTP/2 REFUSED_STREAM or GOAWAY).
func (c *Client) Send(ctx context.Context, address string, frame []byte, meta plane.Meta) error {
	if len(frame) > c.opts.MaxMessageSize {
		err := tooLarge(uint64(len(frame)), c.opts.MaxMessageSize)
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeTooLarge, Text: err.Error(), Err: err}
	}
	id, err := plane.ControlID(frame)
	if err != nil {
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeBadRequest, Text: err.Error(), Err: err}
	}
	sctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, address, bytes.NewReader(frame))
	if err == nil && req.URL.Scheme != "http" {
		err = errors.New("unsupported scheme " + strconv.Quote(req.URL.Scheme) + " (h2c needs http://)")
	}
	if err != nil {
		// A bad address is that instance's record: another instance may do.
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "invalid address " + strconv.Quote(address) + ": " + err.Error(), Err: err}
	}
	host := dialAddr(req.URL)
	hs, primer, ok := c.admit(host)
	if !ok {
		return closedError("client")
	}
	defer c.inflight.Done()
	defer context.AfterFunc(c.done, cancel)()
	if !primer {
		select {
		case <-hs.ready:
		default:
			select {
			case <-hs.ready:
			case <-sctx.Done():
				return c.sendError(ctx, sctx, address, context.Cause(sctx))
			}
		}
	}
	h := req.Header
	h["Content-Type"] = []string{"application/octet-stream"}
	meta.Headers(id, func(k, v string) {
		// A value net/http would refuse (CR, LF, …) is dropped rather than failing the request.
		if validHeaderValue(v) {
			h[k] = []string{v}
		}
	})
	resp, err := c.tr.RoundTrip(req)
	if primer {
		c.primed(host, hs, err)
	}
	if err != nil {
		return c.sendError(ctx, sctx, address, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return statusError(resp)
}

// hostState tracks the connections to one worker address ("host:port").
//
// net/http dials once per waiting request while no connection to a host exists (up to
// MaxConnsPerHost at a time), so a burst of Sends to a new worker would open dozens of
// connections where one multiplexes them all. The first Send to a host therefore goes alone
// (it primes the host) and the others wait for it; by then the connection is pooled and the
// server's stream limit known, and net/http dials more only when every connection is full.
type hostState struct {
	ready chan struct{} // closed once the priming Send ended
	conns int           // live connections to the host; at 0 the next Send primes again
}

// admit registers a Send in flight to host, unless the Client is closed, and returns the
// host's state and whether this Send primes it.
func (c *Client) admit(host string) (hs *hostState, primer, ok bool) {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil, false, false
	}
	if hs = c.hosts[host]; hs != nil {
		c.inflight.Add(1)
		c.mu.RUnlock()
		return hs, false, true
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, false
	}
	c.inflight.Add(1)
	if hs = c.hosts[host]; hs != nil {
		return hs, false, true
	}
	hs = &hostState{ready: make(chan struct{})}
	c.hosts[host] = hs
	return hs, true, true
}

// primed releases the Sends waiting for host's priming Send. When it failed and left no
// connection (the worker is unreachable), the host is forgotten so that a later Send primes
// it again.
func (c *Client) primed(host string, hs *hostState, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(hs.ready)
	if err != nil && hs.conns <= 0 && c.hosts[host] == hs {
		delete(c.hosts, host)
	}
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

// sendError classifies a transport failure. parent is the caller's context, sctx the Send's.
func (c *Client) sendError(parent, sctx context.Context, address string, err error) error {
	var op *net.OpError
	switch {
	case c.done.Err() != nil:
		return closedError("client")
	case errors.Is(parent.Err(), context.Canceled):
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeUnknown,
			Text: "request to " + address + " canceled before its acknowledgement", Err: parent.Err()}
	case errors.As(err, &op) && op.Op == "dial":
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "POST " + address + ": " + err.Error(), Err: err}
	case sctx.Err() != nil:
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeAckTimeout,
			Text: "no acknowledgement from " + address + " in time: " + err.Error(), Err: context.DeadlineExceeded}
	default:
		// The connection broke before the answer: the request may not have arrived.
		return &plane.Error{Plane: plane.NameHTTP, Code: plane.CodeConnect, Text: "POST " + address + ": " + err.Error(), Err: err}
	}
}

// statusError turns a non-2xx answer into the refusal Dynamo's requester reports.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	body := strings.ToValidUTF8(string(b), "\uFFFD")
	reason := http.StatusText(resp.StatusCode)
	if reason == "" {
		reason = "<unknown status code>" // as Rust's StatusCode prints one it does not know
	}
	code := plane.CodeRefused
	switch resp.StatusCode {
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
		Status: resp.StatusCode,
		Text:   "HTTP request failed with status " + strconv.Itoa(resp.StatusCode) + " " + reason + ": " + body,
	}
}

// drainClose reads what little is left of a response body and closes it, so the connection
// stays reusable.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
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

// Close aborts Sends in flight, waits for them and closes every pooled connection. It is
// idempotent; concurrent callers all return once the Client is down.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.cancel()
		c.inflight.Wait()
		c.tr.CloseIdleConnections()
		// Connections still open (net/http keeps dials going past a canceled request) are
		// closed here; the dialer refuses new ones from now on.
		c.mu.Lock()
		conns := c.conns
		c.conns = nil
		c.mu.Unlock()
		for tc := range conns {
			_ = tc.Conn.Close()
		}
	})
	return nil
}

// dialer wraps d so that every connection is tracked for Close and none is made after it.
func (c *Client) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		// net/http detaches dials from the request; tie them to the Client's lifetime instead.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(c.done, cancel)()
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, c: c, host: addr}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conns == nil {
			_ = conn.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("client closed")}
		}
		c.conns[tc] = struct{}{}
		hs := c.hosts[addr]
		if hs == nil {
			hs = &hostState{ready: c.released}
			c.hosts[addr] = hs
		}
		hs.conns++
		return tc, nil
	}
}

// trackedConn removes itself from its Client's books when closed.
type trackedConn struct {
	net.Conn
	c    *Client
	host string
	once sync.Once
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() {
		c := tc.c
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.conns, tc)
		hs := c.hosts[tc.host]
		if hs == nil {
			return
		}
		hs.conns--
		select {
		case <-hs.ready:
			if hs.conns <= 0 {
				delete(c.hosts, tc.host) // the next Send primes the host again
			}
		default: // the priming Send decides when it ends
		}
	})
	return tc.Conn.Close()
}
