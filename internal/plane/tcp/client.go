package tcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

const (
	// busyThreshold is the number of outstanding requests beyond which a connection counts as
	// busy and the pool prefers opening another one (up to PoolSize). It is high on purpose:
	// requests pipelined on one connection leave in batches, are read in batches and are
	// acknowledged in batches, while requests spread over many connections cost a write, a
	// read and a wake-up each on both sides. With 64 requests in flight, a threshold of 8 grew
	// the pool to ~50 connections and took 2.1 writes per request, 128 keeps one connection
	// and 0.5 writes (BenchmarkGenerate tcp/mux-parallel64), about a quarter less CPU.
	busyThreshold = 128
	// maxPickAttempts bounds how often Send re-picks after its connection broke before the
	// request was queued on it (nothing was sent, so trying again is safe).
	maxPickAttempts = 3
	// maxRetainWrite bounds the write buffer a connection keeps between batches.
	maxRetainWrite = 1 << 20
	// replyReadSize is the reply reader's buffer: acks are 4 bytes, many fit in one read.
	replyReadSize = 4 << 10
)

// ClientOptions configures a Client. Zero fields take the documented defaults.
type ClientOptions struct {
	// ConnectTimeout bounds dialing a worker. Default DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds the wait for a request's acknowledgement. Default
	// DefaultRequestTimeout (5 s).
	RequestTimeout time.Duration
	// PoolSize is the maximum number of connections per worker address. Default
	// DefaultPoolSize (100).
	PoolSize int
	// MaxMessageSize bounds the frames sent and the replies read. Default
	// codec.DefaultMaxMessageSize; negative means no limit beyond the u32 length field.
	MaxMessageSize int
	// Logger receives connection-level events. Default: discard.
	Logger *slog.Logger
}

// Client is the TCP request plane's egress (plane.Client). It keeps a pool of persistent
// connections per worker socket address and pipelines requests on them.
type Client struct {
	connectTimeout time.Duration
	requestTimeout time.Duration
	poolSize       int
	max            int
	log            *slog.Logger

	mu     sync.Mutex
	pools  map[string]*pool // by socket address
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // reader goroutines

	// waiters recycles waiters (with their channel and timer) that completed normally.
	waiters sync.Pool
}

var _ plane.Client = (*Client)(nil)

// NewClient returns a Client. It does no I/O.
func NewClient(opts ClientOptions) *Client {
	c := &Client{
		connectTimeout: opts.ConnectTimeout,
		requestTimeout: opts.RequestTimeout,
		poolSize:       opts.PoolSize,
		max:            opts.MaxMessageSize,
		log:            opts.Logger,
		pools:          make(map[string]*pool),
		conns:          make(map[*conn]struct{}),
	}
	if c.connectTimeout <= 0 {
		c.connectTimeout = DefaultConnectTimeout
	}
	if c.requestTimeout <= 0 {
		c.requestTimeout = DefaultRequestTimeout
	}
	if c.poolSize <= 0 {
		c.poolSize = DefaultPoolSize
	}
	if c.max == 0 {
		c.max = codec.DefaultMaxMessageSize
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Name returns plane.NameTCP.
func (c *Client) Name() string { return plane.NameTCP }

// Send delivers one TwoPart request frame to address ("{ip}:{port}/{id:x}/{ep}", optionally
// "tcp://"-prefixed) and returns nil once the worker acknowledged it. Failures are *plane.Error:
// refusals carry the worker's text; CodeConnect means the connection could not be made or broke
// before the acknowledgement; CodeAckTimeout that none came within RequestTimeout or before
// ctx's deadline; CodeTooLarge that the frame exceeds MaxMessageSize (then nothing is sent).
func (c *Client) Send(ctx context.Context, address string, frame []byte, meta plane.Meta) error {
	hostport, path, err := codec.ParseTCPAddress(address)
	if err != nil {
		// A malformed discovery record concerns this instance only, so it is a connect
		// failure: another instance may well be reachable.
		return &plane.Error{Plane: plane.NameTCP, Code: plane.CodeConnect, Err: err}
	}
	if c.max > 0 && len(frame) > c.max {
		e := &codec.Error{Code: codec.CodeMessageTooLarge, Size: uint64(len(frame)), Max: uint64(c.max)}
		return &plane.Error{Plane: plane.NameTCP, Code: plane.CodeTooLarge, Text: e.Error(), Err: e}
	}
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	var hbuf [4]codec.Header // Meta.Headers sets at most four
	headers := requestHeaders(hbuf[:0], frame, meta)
	for range maxPickAttempts {
		cn, err := c.pick(ctx, hostport)
		if err != nil {
			return err
		}
		w, err := cn.enqueue(path, headers, frame)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return err
		}
		return cn.wait(ctx, w)
	}
	return connectError(hostport, errors.New("connections kept breaking before the request could be queued"))
}

// Close closes every pooled connection, fails the requests waiting on them with CodeClosed and
// waits for the connections' reader goroutines. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	var conns []*conn
	if !c.closed {
		c.closed = true
		for cn := range c.conns {
			conns = append(conns, cn)
		}
	}
	c.mu.Unlock()
	for _, cn := range conns {
		cn.fail(errClientClosed)
	}
	c.wg.Wait()
	return nil
}

// errClientClosed is what requests get once the Client is closed.
var errClientClosed = &plane.Error{Plane: plane.NameTCP, Code: plane.CodeClosed}

// errStale: the picked connection broke or was retired before the request was queued.
var errStale = errors.New("tcp request plane: connection no longer usable")

// errRetired ends a retired connection whose remaining waiters all gave up.
var errRetired = errors.New("tcp request plane: connection retired after an acknowledgement timeout")

func connectError(addr string, err error) *plane.Error {
	return &plane.Error{Plane: plane.NameTCP, Code: plane.CodeConnect, Err: fmt.Errorf("connection to %s: %w", addr, err)}
}

// contextError maps the caller giving up: a deadline is an acknowledgement timeout (the request
// was not acknowledged in time); a cancellation is not a plane failure and is not retryable.
func contextError(err error) *plane.Error {
	code := plane.CodeUnknown
	if errors.Is(err, context.DeadlineExceeded) {
		code = plane.CodeAckTimeout
	}
	return &plane.Error{Plane: plane.NameTCP, Code: code, Err: err}
}

// Reply prefixes a worker answers with (spec §5.1, §5.4).
const (
	prefixUnknownEndpoint = "Unknown endpoint:"
	prefixOverloaded      = "Server overloaded:"
	prefixUnavailable     = "Server unavailable:"
	prefixReadError       = "Read error:"
	markerTooLarge        = "message too large"
)

// replyError maps a non-empty reply to the refusal it stands for.
func replyError(data []byte) *plane.Error {
	code := plane.CodeBadRequest
	switch {
	case bytes.HasPrefix(data, []byte(prefixUnknownEndpoint)):
		code = plane.CodeUnknownEndpoint
	case bytes.HasPrefix(data, []byte(prefixOverloaded)):
		code = plane.CodeOverloaded
	case bytes.HasPrefix(data, []byte(prefixUnavailable)):
		code = plane.CodeDraining
	case bytes.HasPrefix(data, []byte(prefixReadError)) && bytes.Contains(data, []byte(markerTooLarge)):
		code = plane.CodeTooLarge
	}
	return &plane.Error{Plane: plane.NameTCP, Code: code, Text: string(data)}
}

// requestHeaders appends the envelope's headers (spec §5.1) from meta and the frame's control
// id to dst, sorted by key as the envelope writes them: a map per request would cost two
// allocations.
func requestHeaders(dst []codec.Header, frame []byte, meta plane.Meta) []codec.Header {
	meta.Headers(controlID(frame), func(k, v string) {
		if v == "" {
			return
		}
		for i := range dst {
			if dst[i].Key == k { // a key set twice keeps its last value, as a map would
				dst[i].Value = v
				return
			}
		}
		dst = append(dst, codec.Header{Key: k, Value: v})
	})
	slices.SortFunc(dst, func(a, b codec.Header) int { return strings.Compare(a.Key, b.Key) })
	return dst
}

// controlID is the frame's control id for the request-id headers, "" when it has none (the
// worker will refuse the frame, and say why).
func controlID(frame []byte) string {
	id, _ := plane.ControlID(frame)
	return id
}

// pool is the set of connections to one socket address.
type pool struct {
	addr    string
	mu      sync.Mutex
	conns   []*conn
	dialing int
	changed chan struct{} // closed and replaced when a dial ends or a connection leaves
	dead    bool          // removed from Client.pools; look it up again
}

func (p *pool) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (c *Client) lookupPool(addr string) (*pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClientClosed
	}
	p := c.pools[addr]
	if p == nil {
		p = &pool{addr: addr, changed: make(chan struct{})}
		c.pools[addr] = p
	}
	return p, nil
}

// pick returns the connection for the next request to addr: the least loaded one, or a new one
// when all are busy and the pool has room.
func (c *Client) pick(ctx context.Context, addr string) (*conn, error) {
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		p, err := c.lookupPool(addr)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		var best *conn
		var load int32
		for _, cn := range p.conns {
			if cn.unusable.Load() {
				continue
			}
			if n := cn.n.Load(); best == nil || n < load {
				best, load = cn, n
			}
		}
		// One dial at a time: requests that find every connection busy, or none yet, while a
		// dial is in progress use the least loaded connection or wait for that dial. Were
		// each to dial, a burst at start-up (64 callers at once) would open a connection per
		// caller, and requests spread over many connections leave one per write instead of
		// in batches: a write, a read and a wake-up each, on both sides (two processes, 64 in
		// flight: ~50 connections and 0.8 client writes per request, against 0.13 on one).
		full := len(p.conns)+p.dialing >= c.poolSize || p.dialing > 0
		if best != nil && (load < busyThreshold || full) {
			p.mu.Unlock()
			return best, nil
		}
		if full {
			// No usable connection and no free slot (a dial in progress, or connections on
			// their way out): wait for that to change.
			changed := p.changed
			p.mu.Unlock()
			if wait == nil {
				wait = time.NewTimer(c.connectTimeout)
			}
			select {
			case <-changed:
				continue
			case <-wait.C:
				return nil, connectError(addr, errors.New("no pooled connection became available"))
			case <-ctx.Done():
				return nil, contextError(ctx.Err())
			}
		}
		p.dialing++
		p.mu.Unlock()
		cn, err := c.dial(ctx, p)
		p.mu.Lock()
		p.dialing--
		// A connection that already broke has run (or will find nothing to do in) its
		// removal, which needs p.mu: adding it now would leave a dead entry behind.
		if err == nil && !cn.unusable.Load() {
			p.conns = append(p.conns, cn)
		}
		p.signalLocked()
		p.mu.Unlock()
		if err != nil {
			if best != nil && !errors.Is(err, errClientClosed) && ctx.Err() == nil {
				return best, nil // a busy connection beats none
			}
			c.forgetIfEmpty(p)
			return nil, err
		}
		return cn, nil
	}
}

// dial opens a connection to p.addr and starts its reader.
func (c *Client) dial(ctx context.Context, p *pool) (*conn, error) {
	d := net.Dialer{Timeout: c.connectTimeout}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, contextError(ctx.Err())
		}
		return nil, connectError(p.addr, err)
	}
	cn := &conn{cl: c, p: p, nc: nc}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, errClientClosed
	}
	c.conns[cn] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go cn.readLoop()
	return cn, nil
}

// remove takes cn out of its pool and forgets the pool when it is left empty.
func (c *Client) remove(cn *conn) {
	p := cn.p
	p.mu.Lock()
	for i, x := range p.conns {
		if x == cn {
			p.conns = slices.Delete(p.conns, i, i+1)
			p.signalLocked()
			break
		}
	}
	p.mu.Unlock()
	c.forgetIfEmpty(p)
}

// forgetIfEmpty drops p from the client's map when it holds no connection and no dial, so
// addresses of departed instances do not accumulate. It reports whether p was dropped.
func (c *Client) forgetIfEmpty(p *pool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead || len(p.conns) != 0 || p.dialing != 0 || c.pools[p.addr] != p {
		return false
	}
	delete(c.pools, p.addr)
	p.dead = true
	return true
}

// waiter is one request awaiting its reply on a connection.
type waiter struct {
	ch    chan error  // capacity 1: the reader never blocks delivering
	timer *time.Timer // the acknowledgement timeout, reused with the waiter
	// guarded by conn.mu
	done      bool // the result was decided (sent on ch unless abandoned)
	abandoned bool // the sender stopped waiting; the reply will be consumed and dropped
}

func (c *Client) newWaiter() *waiter {
	if w, ok := c.waiters.Get().(*waiter); ok {
		w.done, w.abandoned = false, false
		return w
	}
	return &waiter{ch: make(chan error, 1)}
}

// recycle returns w to the pool. Only a waiter whose result was received may be recycled: an
// abandoned one is still referenced by the connection's queue.
func (c *Client) recycle(w *waiter) { c.waiters.Put(w) }

// conn is one pooled, pipelined connection. Senders append their encoded request and a waiter
// under mu, so the waiter FIFO is in wire order; the first sender to find no write in progress
// writes the accumulated batch (coalescing concurrent senders into one write). A reader
// goroutine pops one waiter per reply.
type conn struct {
	cl *Client
	p  *pool
	nc net.Conn

	n        atomic.Int32 // queued waiters, abandoned included: the connection's load
	unusable atomic.Bool  // broken or retired: pick skips it

	mu      sync.Mutex
	wbuf    []byte // requests not yet written
	spare   []byte
	writing bool
	q       []*waiter // FIFO from qhead
	qhead   int
	live    int   // queued waiters not abandoned
	err     error // set once: what queued and later requests fail with
	retired bool  // an acknowledgement timed out: no new requests; close when live reaches 0
}

// enqueue queues one request and, unless another sender is writing, writes the batch.
func (cn *conn) enqueue(path string, headers []codec.Header, frame []byte) (*waiter, error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil || cn.retired {
		return nil, errStale
	}
	buf, err := codec.AppendTCPRequestSorted(cn.wbuf, path, headers, frame, cn.cl.max)
	if err != nil {
		return nil, encodeError(err)
	}
	cn.wbuf = buf
	w := cn.cl.newWaiter()
	cn.q = append(cn.q, w)
	cn.live++
	cn.n.Add(1)
	if !cn.writing {
		cn.writing = true
		// Let the other runnable senders queue their requests first, for as long as the
		// batch grows (a few rounds at most): one write then carries them all. With nothing
		// else runnable, Gosched returns at once, so an idle connection adds no latency.
		for range 4 {
			n := len(cn.wbuf)
			cn.mu.Unlock()
			runtime.Gosched()
			cn.mu.Lock()
			if len(cn.wbuf) == n {
				break
			}
		}
		cn.flushLocked()
		cn.writing = false
	}
	return w, nil
}

// flushLocked writes batches until nothing is pending. It drops mu while writing so that
// other senders can queue the next batch meanwhile.
func (cn *conn) flushLocked() {
	for len(cn.wbuf) > 0 && cn.err == nil {
		out := cn.wbuf
		cn.wbuf, cn.spare = cn.spare[:0], nil
		cn.mu.Unlock()
		_ = cn.nc.SetWriteDeadline(time.Now().Add(cn.cl.requestTimeout))
		_, err := cn.nc.Write(out)
		cn.mu.Lock()
		if cap(out) <= maxRetainWrite {
			cn.spare = out[:0]
		}
		if err != nil {
			cn.breakLocked(connectError(cn.p.addr, err))
		}
	}
	if cn.err != nil {
		cn.wbuf = nil
	}
}

// breakLocked records why the connection ends and closes it; the reader goroutine then fails
// the queued waiters and removes the connection.
func (cn *conn) breakLocked(err error) {
	if cn.err == nil {
		cn.err = err
	}
	cn.unusable.Store(true)
	_ = cn.nc.Close()
}

// fail ends the connection with err (unless it already ended).
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	cn.breakLocked(err)
	cn.mu.Unlock()
}

// wait blocks until w's reply, the acknowledgement timeout or ctx's end.
func (cn *conn) wait(ctx context.Context, w *waiter) error {
	timeout := cn.cl.requestTimeout
	if w.timer == nil {
		w.timer = time.NewTimer(timeout)
	} else {
		w.timer.Reset(timeout)
	}
	select {
	case err := <-w.ch:
		w.timer.Stop()
		cn.cl.recycle(w)
		return err
	case <-w.timer.C:
		return cn.abandon(w, true, &plane.Error{Plane: plane.NameTCP, Code: plane.CodeAckTimeout,
			Err: fmt.Errorf("no acknowledgement from %s within %v", cn.p.addr, timeout)})
	case <-ctx.Done():
		w.timer.Stop()
		return cn.abandon(w, false, contextError(ctx.Err()))
	}
}

// abandon gives up on w, keeping its slot so the reply stream stays in sync. After an
// acknowledgement timeout the connection is retired: the server is stuck or slow on it, and
// every request queued behind would wait as long. A retired connection takes no new requests
// (the pool opens a replacement) and is closed once nobody waits on it any more.
func (cn *conn) abandon(w *waiter, timedOut bool, err error) error {
	cn.mu.Lock()
	if w.done {
		cn.mu.Unlock()
		res := <-w.ch // the reply won the race
		cn.cl.recycle(w)
		return res
	}
	w.abandoned = true
	cn.live--
	retire := timedOut && !cn.retired
	if retire {
		cn.retired = true
		cn.unusable.Store(true)
	}
	if cn.retired && cn.live == 0 {
		cn.breakLocked(errRetired)
	}
	cn.mu.Unlock()
	if retire {
		cn.cl.log.Debug("tcp request plane: retiring connection after an acknowledgement timeout", "addr", cn.p.addr)
		cn.cl.remove(cn)
	}
	return err
}

// readLoop matches replies to waiters in order until the connection ends, then fails whoever
// is still waiting and takes the connection out of the pool.
func (cn *conn) readLoop() {
	defer cn.cl.wg.Done()
	br := bufio.NewReaderSize(cn.nc, replyReadSize)
	buf := make([]byte, 0, 256)
	var end error
	for end == nil {
		data, err := codec.ReadTCPReply(br, cn.cl.max, buf)
		if err != nil {
			end = connectError(cn.p.addr, err)
			break
		}
		var res error
		if len(data) > 0 {
			res = replyError(data)
		}
		if cap(data) <= maxRetainWrite {
			buf = data[:0]
		}
		cn.mu.Lock()
		if cn.qhead == len(cn.q) {
			cn.mu.Unlock()
			end = connectError(cn.p.addr, errors.New("reply without a pending request"))
			break
		}
		w := cn.q[cn.qhead]
		cn.q[cn.qhead] = nil
		cn.qhead++
		cn.compactLocked()
		cn.n.Add(-1)
		w.done = true
		if !w.abandoned {
			cn.live--
			w.ch <- res
		}
		if cn.retired && cn.live == 0 {
			end = errRetired
		}
		cn.mu.Unlock()
	}
	cn.shutdown(end)
}

// compactLocked keeps the FIFO's backing array from growing without bound under sustained
// pipelining, where it may never drain completely.
func (cn *conn) compactLocked() {
	switch {
	case cn.qhead == len(cn.q):
		cn.q, cn.qhead = cn.q[:0], 0
	case cn.qhead >= 256 && 2*cn.qhead >= len(cn.q):
		n := copy(cn.q, cn.q[cn.qhead:])
		clear(cn.q[n:])
		cn.q, cn.qhead = cn.q[:n], 0
	}
}

// shutdown ends the connection: the first recorded error wins (a Client.Close or write failure
// recorded before the reader noticed), every queued waiter gets it.
func (cn *conn) shutdown(err error) {
	cn.mu.Lock()
	cn.breakLocked(err)
	for _, w := range cn.q[cn.qhead:] {
		w.done = true
		if !w.abandoned {
			w.ch <- cn.err
		}
	}
	clear(cn.q)
	cn.q, cn.qhead, cn.live = nil, 0, 0
	cn.n.Store(0)
	end := cn.err
	cn.mu.Unlock()
	if end != errRetired && end != errClientClosed {
		cn.cl.log.Debug("tcp request plane: connection ended", "addr", cn.p.addr, "err", end)
	}
	cn.cl.remove(cn)
	cn.cl.mu.Lock()
	delete(cn.cl.conns, cn)
	cn.cl.mu.Unlock()
}

// encodeError maps an envelope encoding failure.
func encodeError(err error) *plane.Error {
	var te *codec.TCPError
	if errors.As(err, &te) && te.Code == codec.TCPCodeTooLarge {
		e := &codec.Error{Code: codec.CodeMessageTooLarge, Size: te.Size, Max: te.Max}
		return &plane.Error{Plane: plane.NameTCP, Code: plane.CodeTooLarge, Text: e.Error(), Err: err}
	}
	return &plane.Error{Plane: plane.NameTCP, Code: plane.CodeBadRequest, Text: err.Error(), Err: err}
}
