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
	// ackTickMin and ackTickMax bound the acknowledgement checker's period (RequestTimeout/8):
	// no busier than 100 wake-ups a second, no later than a second.
	ackTickMin = 10 * time.Millisecond
	ackTickMax = time.Second
)

// ClientOptions configures a Client. Zero fields take the documented defaults.
type ClientOptions struct {
	// ConnectTimeout bounds dialing a worker. Default DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds the wait for a request's acknowledgement, counted from when the
	// request is written, and a write the worker does not take (it stopped reading). Default
	// DefaultRequestTimeout (5 s). One goroutine per Client checks the deadlines every
	// RequestTimeout/8 (at least 10 ms, at most 1 s) instead of a timer per request, so a
	// timeout is reported up to that period late.
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

	mu       sync.Mutex
	pools    map[string]*pool // by socket address
	conns    map[*conn]struct{}
	closed   bool
	checking bool           // the acknowledgement checker runs
	stop     chan struct{}  // closed by Close: the checker returns
	wg       sync.WaitGroup // reader goroutines and the acknowledgement checker

	// waiters recycles waiters (with their channel) whose result was received after they left
	// their connection's queue (see waiter).
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
		stop:           make(chan struct{}),
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
// waits for the connections' reader goroutines and the acknowledgement checker. It is
// idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	var conns []*conn
	if !c.closed {
		c.closed = true
		close(c.stop)
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
	meta.Headers(controlID(frame, meta), func(k, v string) {
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
func controlID(frame []byte, meta plane.Meta) string {
	id, _ := meta.FrameID(frame)
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
	if !c.checking {
		c.checking = true
		c.wg.Add(1)
		go c.checkAcks()
	}
	c.mu.Unlock()
	go cn.readLoop()
	return cn, nil
}

// ackTick is how often the acknowledgement checker looks for overdue requests.
func ackTick(timeout time.Duration) time.Duration {
	return min(max(timeout/8, ackTickMin), ackTickMax)
}

// checkAcks is the Client's acknowledgement checker: one goroutine and one ticker for every
// request in flight, where a timer per request cost a timer-heap update (under the P's timer
// lock) twice per request. It runs while the Client has connections, and returns when the
// last one ended (dial starts it again) or when Close is called.
func (c *Client) checkAcks() {
	defer c.wg.Done()
	t := time.NewTicker(ackTick(c.requestTimeout))
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			now := time.Now() // the tick's own time is stale when this goroutine ran late
			c.mu.Lock()
			if len(c.conns) == 0 {
				c.checking = false
				c.mu.Unlock()
				return
			}
			for cn := range c.conns {
				conns = append(conns, cn)
			}
			c.mu.Unlock()
			for _, cn := range conns {
				cn.expire(now)
			}
			clear(conns) // keep no ended connection reachable until the next tick
			conns = conns[:0]
		}
	}
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
//
// Invariants (state under conn.mu): a waiter gets at most one result, sent on ch by whoever sets
// sent (the reader for the reply, shutdown for the connection's end, the acknowledgement
// checker for a timeout), and only while neither sent nor abandoned is set. It stays in the
// FIFO until its reply is read (or the connection ends), whatever its state, so replies keep
// matching their requests. The reader and shutdown send only when taking the waiter out of the
// FIFO and never touch it afterwards, so its receiver may recycle it. The checker sends while
// the waiter is still queued and sets expired first: its receiver must then not recycle it (the
// reader will still look at it), and the garbage collector takes it instead. An abandoned
// waiter is never recycled either. So a waiter in the pool is referenced by nobody else.
type waiter struct {
	ch chan error // capacity 1: a result is delivered without blocking
	// expired is written before the checker's send on ch and read by the receiver after the
	// receive, which the channel orders: no lock needed.
	expired bool
	// guarded by conn.mu
	deadline  time.Time // acknowledgement deadline; zero until the request is written
	sent      bool      // a result was put on ch
	abandoned bool      // the sender stopped waiting (ctx); the reply will be consumed and dropped
}

func (c *Client) newWaiter() *waiter {
	if w, ok := c.waiters.Get().(*waiter); ok {
		w.expired, w.deadline, w.sent, w.abandoned = false, time.Time{}, false, false
		return w
	}
	return &waiter{ch: make(chan error, 1)}
}

// received hands back the result w's sender received, recycling w unless the checker failed it
// while it was still queued (see waiter).
func (c *Client) received(w *waiter, res error) error {
	if !w.expired {
		c.waiters.Put(w)
	}
	return res
}

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

	// wdl is the write deadline last set; only the sender that is writing uses it (writing,
	// under mu, hands it from one to the next).
	wdl time.Time

	mu      sync.Mutex
	wbuf    []byte // requests not yet written
	spare   []byte
	writing bool
	q       []*waiter // FIFO from qhead
	qhead   int
	live    int   // queued waiters still awaiting a result (neither sent nor abandoned)
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
		now := time.Now() // one clock read per batch, for its deadlines
		cn.stampLocked(now)
		cn.mu.Unlock()
		// A peer that stops reading blocks the write: bound it by about requestTimeout, moving
		// the deadline only when it drifted (a timer update per write cost as much as the ack
		// timer per request).
		cn.wdl = refreshDeadline(now, cn.wdl, cn.cl.requestTimeout, cn.nc.SetWriteDeadline)
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

// stampLocked sets the acknowledgement deadline of the requests about to be written at now:
// the queue's unstamped tail, as enqueue appends a request and its waiter together. Batches
// are stamped in queue order, so deadlines never decrease along the queue.
func (cn *conn) stampLocked(now time.Time) {
	deadline := now.Add(cn.cl.requestTimeout)
	for i := len(cn.q) - 1; i >= cn.qhead && cn.q[i].deadline.IsZero(); i-- {
		cn.q[i].deadline = deadline
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

// wait blocks until w's result (its reply, the connection's end or the acknowledgement
// checker's timeout) or ctx's end.
func (cn *conn) wait(ctx context.Context, w *waiter) error {
	done := ctx.Done()
	if done == nil {
		return cn.cl.received(w, <-w.ch)
	}
	select {
	case res := <-w.ch:
		return cn.cl.received(w, res)
	case <-done:
		return cn.abandon(w, contextError(ctx.Err()))
	}
}

// abandon gives up on w after ctx ended, keeping its slot so the reply stream stays in sync.
func (cn *conn) abandon(w *waiter, err error) error {
	cn.mu.Lock()
	if w.sent {
		cn.mu.Unlock()
		return cn.cl.received(w, <-w.ch) // the result won the race
	}
	w.abandoned = true
	cn.live--
	if cn.retired && cn.live == 0 {
		cn.breakLocked(errRetired)
	}
	cn.mu.Unlock()
	return err
}

// expire fails the requests whose acknowledgement deadline is not after now with
// CodeAckTimeout and retires the connection. Replies come in order, so once the oldest request
// awaiting one is overdue the server is stuck or slow on this connection, and every request
// queued behind would wait as long: a retired connection takes no new requests (the pool opens
// a replacement) and is closed once nobody waits on it any more. The failed requests keep
// their slots so the replies still to come stay in sync.
func (cn *conn) expire(now time.Time) {
	cn.mu.Lock()
	if cn.err != nil { // ending: shutdown fails the queue
		cn.mu.Unlock()
		return
	}
	failed := false
	for _, w := range cn.q[cn.qhead:] {
		if w.sent || w.abandoned {
			continue
		}
		// Unstamped (not yet written) or not yet due; deadlines do not decrease along the
		// queue, so neither is any waiter behind it.
		if w.deadline.IsZero() || now.Before(w.deadline) {
			break
		}
		w.expired, w.sent = true, true
		cn.live--
		failed = true
		w.ch <- &plane.Error{Plane: plane.NameTCP, Code: plane.CodeAckTimeout,
			Err: fmt.Errorf("no acknowledgement from %s within %v", cn.p.addr, cn.cl.requestTimeout)}
	}
	if !failed {
		cn.mu.Unlock()
		return
	}
	retire := !cn.retired
	if retire {
		cn.retired = true
		cn.unusable.Store(true)
	}
	if cn.live == 0 {
		cn.breakLocked(errRetired)
	}
	cn.mu.Unlock()
	if retire {
		cn.cl.log.Debug("tcp request plane: retiring connection after an acknowledgement timeout", "addr", cn.p.addr)
		cn.cl.remove(cn)
	}
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
		if !w.sent && !w.abandoned {
			w.sent = true
			cn.live--
			w.ch <- res // w is out of the FIFO: its receiver may recycle it
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
		if !w.sent && !w.abandoned {
			w.sent = true
			w.ch <- cn.err // the FIFO is dropped below and w not touched again
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
