package stream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// Defaults applied to zero DialOptions fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultFinishTimeout  = 10 * time.Second
)

// maxRetainBuffer bounds the frame buffers a Sender keeps between items; a buffer grown for one
// large item is dropped afterwards.
const maxRetainBuffer = 1 << 20

// maxPending bounds the frames a Sender queues ahead of its socket: Send blocks beyond it, which
// is the backpressure of a requester that does not read.
const maxPending = 256 << 10

// closeFlushTimeout bounds how long Close writes the frames still queued before it cuts the
// connection.
const closeFlushTimeout = time.Second

// DialOptions configure Dial. Zero fields take the documented defaults.
type DialOptions struct {
	// ConnectTimeout bounds dialing (DYN_TCP_CONNECT_TIMEOUT).
	// Default 5 s.
	ConnectTimeout time.Duration
	// MaxMessageSize bounds every frame written and read (DYN_TCP_MAX_MESSAGE_SIZE). Default
	// codec.DefaultMaxMessageSize.
	MaxMessageSize int
	// FinishTimeout bounds Finish's wait for the requester to close after the sentinel.
	// Default 10 s, the spec's value.
	FinishTimeout time.Duration
	// Logger receives the control messages' anomalies. Default slog.Default().
	Logger *slog.Logger
}

func (o DialOptions) withDefaults() DialOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = codec.DefaultMaxMessageSize
	}
	if o.FinishTimeout <= 0 {
		o.FinishTimeout = DefaultFinishTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// halfCloser is implemented by *net.TCPConn.
type halfCloser interface{ CloseWrite() error }

// Sender is the worker's end of one response stream. The handler writes, in order, the
// prologue (Prologue), the items (Send) and the end (Finish), from one goroutine or several.
// Frames are queued and written behind the handler by a flusher goroutine that lives while
// there is something to write, so a burst of items leaves in one Write instead of one each
// (the requester then reads it with one read, too); an item queued while the socket is idle
// leaves at once. Meanwhile a goroutine owned by the Sender reads the requester's control
// messages: "stop" and "kill" cancel Context, "kill" also aborts writing. Close aborts the
// stream; after Finish or Close no goroutine remains.
type Sender struct {
	conn          net.Conn
	info          codec.CallHomeInfo
	max           int
	finishTimeout time.Duration
	log           *slog.Logger

	ctx        context.Context
	cancel     context.CancelCauseFunc
	readerDone chan struct{}
	stopped    atomic.Bool
	killed     atomic.Bool
	abortErr   atomic.Pointer[Error] // set when writing must stop: kill, protocol error, Close
	finishing  atomic.Bool           // Finish has written its last frame
	closeOnce  sync.Once

	wmu      sync.Mutex
	wcond    sync.Cond // on wmu: a flush ended
	item     []byte    // reused item JSON
	pending  []byte    // frames queued for the flusher
	spare    []byte    // the buffer last written, reused as the next queue
	flushing bool      // a flusher goroutine owns the socket's write side
	flushers sync.WaitGroup
	closed   bool // Close ran: no flusher starts any more
	prologueState
	finished bool
	writeErr *Error // sticky: after a failed write the stream may hold a partial frame
}

// Dial connects to the requester named in info (spec §6, worker side), queues the handshake
// (written at once, with whatever frames the handler queues meanwhile) and starts reading the
// requester's control messages. ctx bounds the dial; the Sender's Context keeps ctx's values
// but not its cancellation. Every failure is a *Error with CodeConnect (metric error_type
// "response_stream"); a failed handshake write is reported so by the next Send or Finish.
func Dial(ctx context.Context, info codec.CallHomeInfo, opts DialOptions) (*Sender, error) {
	opts = opts.withDefaults()
	addr, err := info.DialAddress()
	if err != nil {
		return nil, newError(CodeConnect, "invalid call-home address "+strconv.Quote(info.Address)+": "+err.Error(), err)
	}
	hs, err := codec.AppendFrame(nil, codec.AppendHandshake(nil, codec.Handshake{
		Subject:    info.Subject,
		StreamType: codec.StreamTypeResponse,
	}), nil, opts.MaxMessageSize)
	if err != nil {
		return nil, newError(CodeConnect, "call-home handshake: "+err.Error(), err)
	}
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, newError(CodeConnect, "call-home connect to "+addr+" failed: "+err.Error(), err)
	}
	s := newSender(ctx, conn, info, opts)
	// The flusher writes the handshake, starting now: a quick handler's first frames join it in
	// one write (instead of a write of its own), and a slow one does not hold it back. Its
	// failure is reported as CodeConnect by the next Send or Finish.
	s.wmu.Lock()
	s.pending = append(s.pending, hs...)
	s.flushing = true
	s.flushers.Add(1)
	go s.flush(CodeConnect)
	s.wmu.Unlock()
	return s, nil
}

// newSender wraps a call-home connection and starts the control reader.
func newSender(ctx context.Context, conn net.Conn, info codec.CallHomeInfo, opts DialOptions) *Sender {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	s := &Sender{
		conn:          conn,
		info:          info,
		max:           opts.MaxMessageSize,
		finishTimeout: opts.FinishTimeout,
		log:           opts.Logger,
		ctx:           sctx,
		cancel:        cancel,
		readerDone:    make(chan struct{}),
	}
	s.wcond.L = &s.wmu
	go s.readControl()
	return s
}

// Context is cancelled when the requester stops (cause ErrStopped) or kills (ErrKilled) the
// stream, goes away (ErrDisconnected), breaks the protocol (ErrProtocol), or when the Sender is
// finished or closed (ErrClosed). context.Cause tells which came first.
func (s *Sender) Context() context.Context { return s.ctx }

// Cancel ends Context with cause context.Canceled, unless it already ended; writing is not
// affected.
func (s *Sender) Cancel() { s.cancel(context.Canceled) }

// Stopped reports whether the requester sent "stop". The handler should end early; Finish then
// omits the final marker.
func (s *Sender) Stopped() bool { return s.stopped.Load() }

// Killed reports whether the requester sent "kill". Writes fail with CodeKilled from then on.
func (s *Sender) Killed() bool { return s.killed.Load() }

// readControl reads the requester's control messages until the connection ends.
func (s *Sender) readControl() {
	defer close(s.readerDone)
	r := codec.NewReader(s.conn, s.max)
	for {
		f, err := r.Next()
		if err != nil {
			if e := s.abortErr.Load(); e != nil && e.Code == CodeClosed {
				s.cancel(e)
				return
			}
			if s.finishing.Load() {
				s.cancel(errSenderClosed)
				return
			}
			if err == io.EOF || errors.Is(err, codec.ErrIO) {
				// The requester is gone. Writes will fail by themselves (publish_response).
				s.cancel(newError(CodeDisconnected, TextDisconnected, err))
				return
			}
			s.abort(newError(CodeProtocol, TextRequesterProtocol+": "+err.Error(), err))
			return
		}
		if f.Kind() != codec.HeaderOnly {
			s.abort(newError(CodeProtocol, TextRequesterProtocol+": "+f.Kind().String(), nil))
			return
		}
		ctl, err := codec.ParseControl(f.Header)
		if err != nil {
			s.abort(newError(CodeProtocol, TextRequesterProtocol+": "+err.Error(), err))
			return
		}
		switch ctl {
		case codec.ControlStop:
			s.stopped.Store(true)
			s.cancel(newError(CodeStopped, TextStopped, nil))
		case codec.ControlKill:
			s.killed.Store(true)
			s.abort(newError(CodeKilled, TextKilled, nil))
		default:
			s.abort(newError(CodeProtocol, TextRequesterProtocol+": "+ctl.String(), nil))
			return
		}
	}
}

// abort stops all writing at once and cancels the Context. A write blocked on a full socket
// returns immediately because its deadline has passed.
func (s *Sender) abort(e *Error) {
	s.abortErr.CompareAndSwap(nil, e)
	s.conn.SetWriteDeadline(time.Unix(1, 0))
	s.cancel(e)
	if e.Code == CodeProtocol {
		s.log.Warn("response stream aborted", "id", s.info.Context, "subject", s.info.Subject, "error", e)
	}
}

// Prologue writes the prologue: nil errText means the handler started; otherwise it is the
// error text the requester reports ("Generate Error: {msg}"), and the handler should call
// Finish next. Send writes a success prologue by itself if none was sent.
func (s *Sender) Prologue(errText *string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.prologue(s, errText)
}

// putPrologue queues the prologue frame (prologueWriter). s.wmu is held.
func (s *Sender) putPrologue(errText *string) error {
	s.item = codec.AppendPrologue(s.item[:0], errText)
	return s.queueFrame(s.item, nil, CodeWrite)
}

// Send queues one item: data is the raw JSON of the item (for the echo engine,
// {"data":{"text":"hello","index":0}}) and must be one valid, compact JSON value. It blocks
// while maxPending bytes wait for a requester that does not read (backpressure). Failures:
// CodeWrite (publish_response; a failed write is reported by the next Send or by Finish),
// CodeKilled after a kill, CodeClosed after Finish or Close.
func (s *Sender) Send(data []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.beforeItem(s, data); err != nil {
		return err
	}
	s.item = codec.AppendStreamItem(s.item[:0], data)
	err := s.queueFrame(nil, s.item, CodeWrite)
	if cap(s.item) > maxRetainBuffer {
		s.item = nil
	}
	return err
}

// writable reports why nothing may be written any more. s.wmu is held.
func (s *Sender) writable() error {
	if e := s.abortErr.Load(); e != nil {
		return e
	}
	if s.finished {
		return errSenderClosed
	}
	if s.writeErr != nil {
		return s.writeErr
	}
	return nil
}

// queueFrame queues one frame for the flusher, starting one if none runs, after waiting while
// maxPending bytes are queued. s.wmu is held.
func (s *Sender) queueFrame(header, data []byte, code Code) error {
	for len(s.pending) >= maxPending && s.flushing {
		s.wcond.Wait()
	}
	if err := s.writable(); err != nil {
		return err
	}
	buf, err := codec.AppendFrame(s.pending, header, data, s.max)
	if err != nil {
		return newError(code, err.Error(), err) // nothing was queued: the stream is intact
	}
	s.pending = buf
	if !s.flushing && !s.closed {
		s.flushing = true
		s.flushers.Add(1)
		go s.flush(code)
	}
	return nil
}

// flush writes what is queued, one Write per batch, until the queue is empty or a write fails.
func (s *Sender) flush(code Code) {
	defer s.flushers.Done()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeQueued(code)
	s.flushing = false
	s.wcond.Broadcast()
}

// writeQueued writes the queue until it is empty or a write fails; s.wmu is held, and dropped
// during each Write so that the handler can queue the next frames meanwhile.
func (s *Sender) writeQueued(code Code) {
	for len(s.pending) > 0 && s.writeErr == nil {
		buf := s.pending
		s.pending, s.spare = s.spare[:0], nil
		s.wmu.Unlock()
		_, err := s.conn.Write(buf)
		s.wmu.Lock()
		if cap(buf) <= maxRetainBuffer {
			s.spare = buf[:0]
		}
		if err != nil {
			s.writeErr = newError(code, "response stream write failed: "+err.Error(), err)
		}
		if code == CodeConnect {
			code = CodeWrite // the handshake went with the first write; what follows are frames
		}
		s.wcond.Broadcast()
	}
	if s.writeErr != nil {
		s.pending = nil
	}
}

// drainLocked waits for a running flusher, then writes what is still queued, so that when it
// returns every queued frame is on the socket or the write failed. s.wmu is held.
func (s *Sender) drainLocked(code Code) error {
	for s.flushing {
		s.wcond.Wait()
	}
	s.writeQueued(code)
	if e := s.abortErr.Load(); e != nil {
		return e
	}
	if s.writeErr != nil {
		return s.writeErr
	}
	return nil
}

// Finish ends the stream as the spec's worker does: the final marker {"complete_final":true}
// unless the requester stopped or killed the stream, the prologue was an error or a write
// failed; then the sentinel, unless writing is impossible; then a wait of at most
// FinishTimeout for the requester to close (after a half-close when the sentinel could not be
// written), and Close. A success prologue is written first if
// none was. Finish reports a failure of the frames it writes (CodeFinal, metric
// "publish_final"), or of items still being written when it was called (CodeWrite); earlier
// failures were reported by the Send calls that met them.
func (s *Sender) Finish() error {
	s.wmu.Lock()
	if s.finished {
		s.wmu.Unlock()
		return nil
	}
	var err error
	sentinel := false
	if s.writable() == nil {
		if !s.prologueSent {
			err = s.writePrologue(s, nil)
		}
		if err == nil && !s.errPrologue && !s.stopped.Load() {
			s.item = codec.AppendStreamEnd(s.item[:0])
			err = s.queueFrame(nil, s.item, CodeFinal)
		}
		if s.writable() == nil {
			e := s.queueFrame(codec.ControlSentinel.Bytes(), nil, CodeFinal)
			sentinel = e == nil
			if e != nil && err == nil {
				err = e
			}
		}
		// The items' writes may still be under way: their failure is reported here (as the
		// Send that would have met it), the end frames' as CodeFinal.
		if e := s.drainLocked(CodeFinal); e != nil {
			sentinel = false
			if err == nil {
				err = e
			}
		}
	}
	s.finished = true
	s.finishing.Store(true)
	aborted := s.abortErr.Load() != nil
	s.wmu.Unlock()

	if !aborted {
		// The requester closes when it reads the sentinel, so the worker's close is the
		// passive one and TIME_WAIT stays on the requester's listening side: a busy worker
		// would otherwise hold one ephemeral port per recent stream (about 28,000 on Linux for
		// 60 s) and run out of them. Without the sentinel, a half-close tells the requester
		// the stream is over.
		if hc, ok := s.conn.(halfCloser); ok && !sentinel {
			hc.CloseWrite()
		}
		t := time.NewTimer(s.finishTimeout)
		select {
		case <-s.readerDone:
		case <-t.C:
		}
		t.Stop()
	}
	s.Close()
	if CodeOf(err) == CodeKilled {
		return nil // a kill during Finish is the requester's choice, not a failure
	}
	return err
}

// Close aborts the stream: it writes the items still queued (for at most a second; not after a
// kill), closes the connection without the final marker (the requester sees an incomplete
// stream unless Finish ran), cancels Context and waits for its goroutines. It is idempotent
// and returns nil.
func (s *Sender) Close() error {
	s.closeOnce.Do(func() {
		e := errSenderClosed
		s.wmu.Lock()
		s.closed = true
		if s.abortErr.Load() == nil && (s.flushing || len(s.pending) > 0) {
			// Items Send accepted go out before the cut, for a bounded time: a requester that
			// reads nothing must not hold Close up.
			s.conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			s.drainLocked(CodeWrite)
		}
		s.wmu.Unlock()
		s.abortErr.CompareAndSwap(nil, e)
		s.conn.Close() // a flusher's Write fails now
		s.cancel(e)
	})
	s.flushers.Wait()
	<-s.readerDone
	return nil
}
