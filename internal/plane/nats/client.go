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

	"github.com/reqplane/reqplane/internal/plane"
)

// DefaultRequestTimeout bounds the wait for a worker's ack (DYN_NATS_REQUEST_TIMEOUT_SECS).
const DefaultRequestTimeout = 10 * time.Second

// ClientOptions configures a Client. Zero values take the documented defaults.
type ClientOptions struct {
	// URLs are the NATS servers (NATS_SERVER). Default [DefaultURL].
	URLs []string
	Auth Auth
	// Name is the connection name. Default DefaultName.
	Name string
	// RequestTimeout bounds the wait for the ack, within the caller's context. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ConnectTimeout bounds each dial and handshake. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts. Default DefaultReconnectWait.
	ReconnectWait time.Duration
	// Logger receives connection events. Nil discards them.
	Logger *slog.Logger
}

func (o ClientOptions) withDefaults() ClientOptions {
	if len(o.URLs) == 0 {
		o.URLs = []string{DefaultURL}
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Client is the requester side of the NATS plane. It owns one connection, opened by Connect
// or by the first Send, and is safe for concurrent use.
type Client struct {
	opts ClientOptions
	cfg  connConfig

	mu      sync.Mutex
	conn    *conn
	dialing *dialing
	closed  bool

	closeOnce sync.Once
}

// dialing is a connection attempt that concurrent callers share.
type dialing struct {
	done chan struct{}
	conn *conn
	err  error
}

var _ plane.Client = (*Client)(nil)

// NewClient returns a Client; it does no I/O.
func NewClient(opts ClientOptions) *Client {
	opts = opts.withDefaults()
	return &Client{
		opts: opts,
		cfg: connConfig{
			urls:           opts.URLs,
			auth:           opts.Auth,
			name:           opts.Name,
			connectTimeout: opts.ConnectTimeout,
			reconnectWait:  opts.ReconnectWait,
			drainTimeout:   DefaultDrainTimeout,
			log:            opts.Logger,
		},
	}
}

// Name returns plane.NameNATS.
func (c *Client) Name() string { return plane.NameNATS }

// Connect opens the connection if it is not open yet. Send does it on demand; calling Connect
// at startup reports a missing NATS server early.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.connection(ctx)
	return err
}

// connection returns the open connection, dialing it if needed. One caller dials (bounded by
// its ctx and the connect timeout); the others wait for that attempt or their own ctx.
func (c *Client) connection(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, closedError()
	}
	if c.conn != nil {
		if !c.conn.nc.IsClosed() {
			cn := c.conn
			c.mu.Unlock()
			return cn, nil
		}
		// nats.go gave up on the connection (e.g. the credentials were refused on a
		// reconnect): dial afresh.
		c.conn = nil
	}
	d := c.dialing
	if d == nil {
		d = &dialing{done: make(chan struct{})}
		c.dialing = d
		c.mu.Unlock()
		c.dial(ctx, d)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-d.done:
		return d.conn, d.err
	case <-ctx.Done():
		return nil, connectError(c.opts.URLs, ctx.Err())
	}
}

func (c *Client) dial(ctx context.Context, d *dialing) {
	cn, err := connect(ctx, c.cfg)
	c.mu.Lock()
	c.dialing = nil
	switch {
	case err != nil:
	case c.closed:
		// Close ran meanwhile and waits for d.done: close the connection before it returns.
		cn.close(false)
		cn, err = nil, closedError()
	default:
		c.conn = cn
	}
	d.conn, d.err = cn, err
	close(d.done)
	c.mu.Unlock()
}

// Send sends frame as a NATS request to subject (the worker's advertised nats_tcp address)
// with the trace and request-id headers, and returns nil once the worker acked it with an
// empty reply. Failures are *plane.Error: CodeTooLarge (refused before sending when the frame
// exceeds the NATS server's max_payload), CodeNoResponders, CodeAckTimeout, CodeConnect,
// CodeClosed, or the worker's refusal (CodeBadRequest, CodeTooLarge, CodeOverloaded,
// CodeDraining, CodeUnknownEndpoint, CodeRefused) with its text.
func (c *Client) Send(ctx context.Context, subject string, frame []byte, meta plane.Meta) error {
	cn, err := c.connection(ctx)
	if err != nil {
		return err
	}
	maxPayload := cn.nc.MaxPayload()
	if int64(len(frame)) > maxPayload {
		return tooLargeError(len(frame), maxPayload)
	}
	msg := &natsgo.Msg{Subject: subject, Data: frame, Header: make(natsgo.Header, 4)}
	meta.Headers(controlID(frame, meta), func(k, v string) {
		if v != "" {
			msg.Header.Set(k, v)
		}
	})
	rctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	reply, err := cn.nc.RequestMsgWithContext(rctx, msg)
	if err != nil {
		return c.sendError(ctx, subject, len(frame), maxPayload, err)
	}
	if len(reply.Data) == 0 && reply.Header.Get(HeaderServiceError) == "" {
		return nil
	}
	return refusalError(reply)
}

// controlID is the frame's control id for the request-id headers, "" when it has none (the
// worker will refuse the frame, and say why).
func controlID(frame []byte, meta plane.Meta) string {
	id, _ := meta.FrameID(frame)
	return id
}

func tooLargeError(n int, maxPayload int64) *plane.Error {
	return &plane.Error{
		Plane: plane.NameNATS,
		Code:  plane.CodeTooLarge,
		Text: "Request payload is too large for this deployment: " + strconv.Itoa(n) +
			" bytes exceeds the NATS server max_payload of " + strconv.FormatInt(maxPayload, 10) + " bytes",
		Err: natsgo.ErrMaxPayload,
	}
}

func (c *Client) sendError(ctx context.Context, subject string, n int, maxPayload int64, err error) error {
	e := &plane.Error{Plane: plane.NameNATS, Code: plane.CodeConnect, Err: err}
	switch {
	case errors.Is(err, natsgo.ErrNoResponders):
		e.Code = plane.CodeNoResponders
		e.Text = "no responders on subject " + subject
	case errors.Is(err, context.DeadlineExceeded):
		e.Code = plane.CodeAckTimeout
		if ctx.Err() == nil {
			e.Text = fmt.Sprintf("no acknowledgement on subject %s within %s", subject, c.opts.RequestTimeout)
		} else {
			e.Text = "no acknowledgement on subject " + subject + " before the request's deadline"
		}
	case errors.Is(err, context.Canceled):
		e.Code = plane.CodeUnknown
		e.Text = "request canceled before the acknowledgement"
	case errors.Is(err, natsgo.ErrMaxPayload):
		// The headers tipped the message over the limit.
		return tooLargeError(n, maxPayload)
	case errors.Is(err, natsgo.ErrConnectionClosed):
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			e.Code = plane.CodeClosed
			e.Text = "closed"
		} else {
			e.Text = "connection to NATS closed before the acknowledgement"
		}
	case errors.Is(err, natsgo.ErrBadSubject):
		e.Text = fmt.Sprintf("invalid NATS subject %q", subject)
	default:
		e.Text = "request on subject " + subject + " failed: " + err.Error()
	}
	return e
}

// refusalError maps a worker's non-empty reply: the text prefix decides overloaded and
// draining (2026 Dynamo's rule), else Nats-Service-Error-Code.
func refusalError(reply *natsgo.Msg) *plane.Error {
	text := string(reply.Data)
	if text == "" {
		text = reply.Header.Get(HeaderServiceError)
	}
	e := &plane.Error{Plane: plane.NameNATS, Code: plane.CodeRefused, Text: text}
	switch {
	case strings.HasPrefix(text, "Server overloaded:"):
		e.Code = plane.CodeOverloaded
	case strings.HasPrefix(text, "Server unavailable:"):
		e.Code = plane.CodeDraining
	default:
		switch reply.Header.Get(HeaderServiceErrorCode) {
		case "400":
			e.Code = plane.CodeBadRequest
		case "404":
			e.Code = plane.CodeUnknownEndpoint
		case "413":
			e.Code = plane.CodeTooLarge
		case "503":
			e.Code = plane.CodeOverloaded
		}
	}
	return e
}

// Close closes the connection, failing Sends in flight with CodeClosed, and waits for
// nats.go's goroutines that call into this package. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		cn, d := c.conn, c.dialing
		c.conn = nil
		c.mu.Unlock()
		if d != nil {
			// The dialer sees closed and closes what it opened.
			<-d.done
		}
		if cn != nil {
			cn.close(false)
		}
	})
	return nil
}
