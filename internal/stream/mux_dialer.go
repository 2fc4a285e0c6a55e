package stream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/reqplane/reqplane/internal/codec"
)

// muxBusyStreams is the number of open streams beyond which a connection counts as busy and
// Open prefers dialing another (up to PoolSize). It is high on purpose: the streams of one
// connection share its writes (one write carries the frames of many), while streams spread
// over several connections each cost writes, reads and wake-ups of their own. A stream stays
// open on the worker until its End is written, a little after the requester has seen it and
// may have sent its next request: with 64 requests in flight, a threshold of 64 was reached
// in bursts, and the worker of `reqplane bench` kept two connections where one serves.
const muxBusyStreams = 256

// Defaults applied to zero MuxDialOptions fields.
const (
	DefaultMuxPoolSize     = 4
	DefaultMuxWriteTimeout = 10 * time.Second
)

// MuxDialOptions configure a MuxDialer. Zero fields take the documented defaults.
type MuxDialOptions struct {
	// ConnectTimeout bounds dialing a connection and its handshake (DYN_TCP_CONNECT_TIMEOUT).
	// Default 5 s.
	ConnectTimeout time.Duration
	// MaxMessageSize bounds every frame written and read (DYN_TCP_MAX_MESSAGE_SIZE). Default
	// codec.DefaultMaxMessageSize.
	MaxMessageSize int
	// PoolSize is the number of connections kept per requester (address and frontend server
	// id). Default 4, Dynamo's.
	PoolSize int
	// IdleTimeout closes a connection that carried no stream for that long. Default 300 s. A
	// connection idle for more than 9/10 of it is not reused but closed, so that the
	// requester's own idle close never races a new stream.
	IdleTimeout time.Duration
	// WriteTimeout bounds one batched write; a requester that reads nothing for that long is
	// treated as gone. Default 10 s.
	WriteTimeout time.Duration
	// Logger receives protocol anomalies. Default slog.Default().
	Logger *slog.Logger
}

func (o MuxDialOptions) withDefaults() MuxDialOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultMuxPoolSize
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultMuxIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultMuxWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// MuxDialer is the worker's end of the response mux, one per worker process: it keeps a small
// pool of persistent connections to each requester (address and frontend server id) and opens
// logical streams on them. Every goroutine it starts (a reader and a writer per connection)
// ends before Close returns.
type MuxDialer struct {
	opts MuxDialOptions

	mu     sync.Mutex
	closed bool
	pools  map[muxPoolKey]*muxPool
	wg     sync.WaitGroup
}

// muxPoolKey names a requester: its dial address and frontend server id. A struct, not a
// joined string, so that finding the pool allocates nothing.
type muxPoolKey struct {
	addr     string
	frontend codec.UUID
}

// muxPool is the connections to one requester.
type muxPool struct {
	conns   []*workerConn
	dialing int
	changed chan struct{} // closed and replaced when a dial ends
}

// NewMuxDialer returns a MuxDialer configured by opts. It does no I/O.
func NewMuxDialer(opts MuxDialOptions) *MuxDialer {
	return &MuxDialer{opts: opts.withDefaults(), pools: make(map[muxPoolKey]*muxPool)}
}

// Open opens the stream info names on a pooled connection to its requester (dialing one if
// needed, bounded by ctx and ConnectTimeout) and returns its sender. Nothing is written yet:
// the stream starts with its prologue. The sender's Context keeps ctx's values but not its
// cancellation. Failures are *Error with CodeConnect (or CodeClosed after Close).
func (d *MuxDialer) Open(ctx context.Context, info codec.MuxCallHomeInfo) (*MuxSender, error) {
	addr, err := info.DialAddress()
	if err != nil {
		return nil, newError(CodeConnect, "invalid call-home address "+strconv.Quote(info.Address)+": "+err.Error(), err)
	}
	if info.StreamID.IsNil() || info.FrontendServerID.IsNil() {
		return nil, newError(CodeConnect, "response mux info needs a stream id and a frontend server id", nil)
	}
	key := muxPoolKey{addr, info.FrontendServerID}
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errSenderClosed
		}
		p := d.pools[key]
		if p == nil {
			p = &muxPool{changed: make(chan struct{})}
			d.pools[key] = p
		}
		best := d.pickLocked(p)
		// One dial at a time: streams that find every connection busy, or none yet, while a
		// dial is in progress share the least loaded connection or wait for that dial. Were
		// each to dial, a burst at start-up would open the whole pool at once, and streams
		// spread over more connections than their load needs share fewer writes.
		canDial := len(p.conns)+p.dialing < d.opts.PoolSize && p.dialing == 0
		if best != nil && (best.load.Load() < muxBusyStreams || !canDial) {
			s := best.open(ctx, info)
			d.mu.Unlock()
			if s != nil {
				return s, nil
			}
			continue // the connection closed meanwhile
		}
		if !canDial {
			// No connection yet, or none left to dial: wait for the dial in progress.
			ch := p.changed
			d.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, newError(CodeConnect, "response mux connect to "+addr+" failed: "+ctx.Err().Error(), ctx.Err())
			}
		}
		p.dialing++
		d.mu.Unlock()

		wc, err := d.dial(ctx, addr, info.FrontendServerID)
		d.mu.Lock()
		p.dialing--
		close(p.changed)
		p.changed = make(chan struct{})
		if err == nil && d.closed {
			err = errSenderClosed
			wc.conn.Close()
			wc = nil
		}
		if err != nil {
			d.mu.Unlock()
			if wc == nil && best != nil && CodeOf(err) == CodeConnect {
				// A busy connection is better than none.
				if s := best.open(ctx, info); s != nil {
					return s, nil
				}
			}
			return nil, err
		}
		wc.pool = p
		p.conns = append(p.conns, wc)
		d.wg.Add(2)
		go wc.runWriter()
		go wc.runReader()
		s := wc.open(ctx, info)
		d.mu.Unlock()
		if s != nil {
			return s, nil
		}
	}
}

// pickLocked returns the least loaded usable connection, retiring those idle for too long.
func (d *MuxDialer) pickLocked(p *muxPool) *workerConn {
	var best *workerConn
	retireAfter := d.opts.IdleTimeout * 9 / 10
	for _, wc := range p.conns {
		if wc.dead.Load() {
			continue
		}
		if wc.idleFor() > retireAfter {
			wc.retire()
			continue
		}
		if best == nil || wc.load.Load() < best.load.Load() {
			best = wc
		}
	}
	return best
}

// dial connects to the requester and performs the handshake: the worker's header-only
// TwoPart frame, the requester's 20-byte-header ack.
func (d *MuxDialer) dial(ctx context.Context, addr string, frontend codec.UUID) (*workerConn, error) {
	connID := codec.UUID(uuid.New())
	hs, err := codec.AppendFrame(nil, codec.AppendMuxHandshake(nil, codec.MuxHandshake{
		Version: codec.MuxVersion, FrontendServerID: frontend, ConnectionID: connID,
	}), nil, d.opts.MaxMessageSize)
	if err != nil {
		return nil, newError(CodeConnect, "response mux handshake: "+err.Error(), err)
	}
	nd := net.Dialer{Timeout: d.opts.ConnectTimeout}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, newError(CodeConnect, "response mux connect to "+addr+" failed: "+err.Error(), err)
	}
	deadline := time.Now().Add(d.opts.ConnectTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	fail := func(what string, err error) (*workerConn, error) {
		conn.Close()
		return nil, newError(CodeConnect, "response mux handshake with "+addr+" failed: "+what+err.Error(), err)
	}
	if _, err := conn.Write(hs); err != nil {
		return fail("", err)
	}
	r := codec.NewReader(conn, d.opts.MaxMessageSize)
	f, err := r.Next()
	if err != nil {
		return fail("", err)
	}
	if err := codec.CheckMuxHandshakeAck(f); err != nil {
		return fail("", err)
	}
	conn.SetDeadline(time.Time{})
	wc := &workerConn{
		d:        d,
		conn:     conn,
		id:       connID,
		w:        newMuxWriter(conn, d.opts.WriteTimeout),
		pre:      append([]byte(nil), r.Buffered()...),
		streams:  make(map[codec.UUID]*MuxSender),
		creditCh: make(chan struct{}),
		idle:     idleClock{timeout: d.opts.IdleTimeout},
	}
	wc.idle.idle()
	dl, _ := wc.idle.next()
	conn.SetReadDeadline(dl)
	return wc, nil
}

// Close closes every connection, which aborts the streams still open on them (their Contexts
// end with ErrDisconnected), and waits for the dialer's goroutines. It is idempotent.
func (d *MuxDialer) Close() error {
	d.mu.Lock()
	d.closed = true
	var conns []*workerConn
	for _, p := range d.pools {
		conns = append(conns, p.conns...)
	}
	d.mu.Unlock()
	for _, wc := range conns {
		wc.retire()
	}
	d.wg.Wait()
	return nil
}

// removeConn drops an ended connection from its pool.
func (d *MuxDialer) removeConn(wc *workerConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := wc.pool
	for i, c := range p.conns {
		if c == wc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			// An Open waiting for a free slot may dial now.
			close(p.changed)
			p.changed = make(chan struct{})
			break
		}
	}
}

// workerConn is the worker's end of one response mux connection.
type workerConn struct {
	d    *MuxDialer
	pool *muxPool
	conn net.Conn
	id   codec.UUID
	w    *muxWriter
	pre  []byte // bytes read past the handshake ack

	load atomic.Int32 // open streams
	dead atomic.Bool  // closing: not for new streams

	mu       sync.Mutex
	streams  map[codec.UUID]*MuxSender
	closed   bool
	closeErr error
	sent     uint64        // Data payload bytes sent
	acked    uint64        // the requester's last ConnectionAck
	creditCh chan struct{} // closed and replaced when the connection's credit grows
	idle     idleClock
}

// open registers a new stream; nil when the connection is closing. d.mu is held.
func (wc *workerConn) open(ctx context.Context, info codec.MuxCallHomeInfo) *MuxSender {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.closed {
		return nil
	}
	s := newMuxSender(ctx, wc, info)
	wc.streams[info.StreamID] = s
	wc.load.Add(1)
	wc.idle.busy()
	return s
}

// release forgets an ended stream.
func (wc *workerConn) release(s *MuxSender) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.streams[s.id] != s {
		return
	}
	delete(wc.streams, s.id)
	wc.load.Add(-1)
	if len(wc.streams) == 0 {
		wc.idle.idle()
	}
}

func (wc *workerConn) idleFor() time.Duration {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.idle.idleFor()
}

// retire closes the connection; its reader then tears it down.
func (wc *workerConn) retire() {
	wc.dead.Store(true)
	wc.conn.Close()
}

func (wc *workerConn) runWriter() {
	defer wc.d.wg.Done()
	wc.w.run(func(error) { wc.retire() })
}

// runReader reads the requester's frames (Stop, Kill, WindowUpdate, ConnectionAck, Reset)
// until the connection ends, then tears it down.
func (wc *workerConn) runReader() {
	defer wc.d.wg.Done()
	mr := codec.NewMuxReader(wc.conn, codec.MuxFromRequester, wc.d.opts.MaxMessageSize, wc.pre)
	wc.pre = nil
	var err error
	for {
		var f codec.MuxFrame
		f, err = mr.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !wc.idleExpired() {
				continue
			}
			break
		}
		if err = wc.handle(f); err != nil {
			wc.d.opts.Logger.Warn("response mux connection failed", "error", err, "connection", wc.id.String())
			break
		}
	}
	wc.teardown(err)
}

// idleExpired reports, after a read deadline, whether the connection is idle and must close.
func (wc *workerConn) idleExpired() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	dl, expired := wc.idle.next()
	if expired {
		wc.closed = true
		wc.dead.Store(true)
		return true
	}
	wc.conn.SetReadDeadline(dl)
	return false
}

// handle applies one frame from the requester.
func (wc *workerConn) handle(f codec.MuxFrame) error {
	if f.Kind == codec.MuxConnectionAck {
		n := f.AckedBytes()
		wc.mu.Lock()
		defer wc.mu.Unlock()
		if n < wc.acked || n > wc.sent {
			return errors.New("response mux ConnectionAck of " + strconv.FormatUint(n, 10) +
				" bytes outside [" + strconv.FormatUint(wc.acked, 10) + ", " + strconv.FormatUint(wc.sent, 10) + "]")
		}
		if n > wc.acked {
			wc.acked = n
			close(wc.creditCh)
			wc.creditCh = make(chan struct{})
		}
		return nil
	}
	wc.mu.Lock()
	s := wc.streams[f.Stream]
	wc.mu.Unlock()
	if s == nil {
		return nil // a stream that ended here already
	}
	switch f.Kind {
	case codec.MuxWindowUpdate:
		s.grant(f.Credits())
	case codec.MuxStop:
		s.stopped.Store(true)
		s.cancel(newError(CodeStopped, TextStopped, nil))
	case codec.MuxKill:
		s.killed.Store(true)
		s.abort(newError(CodeKilled, TextKilled, nil))
	case codec.MuxReset:
		text := TextMuxReset
		if len(f.Payload) > 0 {
			text += ": " + string(f.Payload)
		}
		s.abort(newError(CodeProtocol, text, nil))
	}
	return nil
}

// teardown ends the connection: streams still open lose it (Context ends with
// ErrDisconnected, writes fail with CodeWrite), the writer stops, the socket closes.
func (wc *workerConn) teardown(err error) {
	wc.mu.Lock()
	wc.closed = true
	wc.closeErr = err
	streams := make([]*MuxSender, 0, len(wc.streams))
	for _, s := range wc.streams {
		streams = append(streams, s)
	}
	close(wc.creditCh)
	wc.creditCh = make(chan struct{})
	wc.mu.Unlock()
	wc.dead.Store(true)
	wc.w.stop(false)
	wc.conn.Close()
	for _, s := range streams {
		s.connLost(err)
	}
	wc.d.removeConn(wc)
}
