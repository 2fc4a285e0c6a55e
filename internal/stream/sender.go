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

// DialOptions configure Dial. Zero fields take the documented defaults.
type DialOptions struct {
	// ConnectTimeout bounds dialing and writing the handshake (DYN_TCP_CONNECT_TIMEOUT).
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
// prologue (Prologue), the items (Send) and the end (Finish), from one goroutine or several
// (writes are serialised, one Write per frame). Meanwhile a goroutine owned by the Sender
// reads the requester's control messages: "stop" and "kill" cancel Context, "kill" also
// aborts writing. Close aborts the stream; after Finish or Close no goroutine remains.
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

	wmu          sync.Mutex
	item         []byte // reused item JSON
	frame        []byte // reused frame
	prologueSent bool
	errPrologue  bool
	finished     bool
	writeErr     *Error // sticky: after a failed write the stream may hold a partial frame
}

// Dial connects to the requester named in info (spec §6, worker side), sends the handshake and
// starts reading the requester's control messages. ctx bounds the dial; the Sender's Context
// keeps ctx's values but not its cancellation. Every failure is a *Error with CodeConnect
// (metric error_type "response_stream").
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
	deadline := time.Now().Add(opts.ConnectTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(hs); err != nil {
		conn.Close()
		return nil, newError(CodeConnect, "call-home handshake to "+addr+" failed: "+err.Error(), err)
	}
	conn.SetWriteDeadline(time.Time{})

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
	go s.readControl()
	return s, nil
}

// Context is cancelled when the requester stops (cause ErrStopped) or kills (ErrKilled) the
// stream, goes away (ErrDisconnected), breaks the protocol (ErrProtocol), or when the Sender is
// finished or closed (ErrClosed). context.Cause tells which came first.
func (s *Sender) Context() context.Context { return s.ctx }

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
				s.cancel(newError(CodeClosed, TextSenderClosed, nil))
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
	if err := s.writable(); err != nil {
		return err
	}
	if s.prologueSent {
		return newError(CodeWrite, TextPrologueSent, nil)
	}
	return s.writePrologue(errText)
}

func (s *Sender) writePrologue(errText *string) error {
	s.prologueSent = true
	s.errPrologue = errText != nil
	s.item = codec.AppendPrologue(s.item[:0], errText)
	return s.writeFrame(s.item, nil, CodeWrite)
}

// Send writes one item: data is the raw JSON of the item (for the echo engine,
// {"data":{"text":"hello","index":0}}) and must be one valid, compact JSON value. It blocks
// while the requester does not read (backpressure). Failures: CodeWrite (publish_response),
// CodeKilled after a kill, CodeClosed after Finish or Close.
func (s *Sender) Send(data []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if len(data) == 0 {
		return newError(CodeWrite, TextEmptyItem, nil)
	}
	if !s.prologueSent {
		if err := s.writePrologue(nil); err != nil {
			return err
		}
	}
	if s.errPrologue {
		return newError(CodeClosed, TextAfterErrorPrologue, nil)
	}
	s.item = codec.AppendStreamItem(s.item[:0], data)
	err := s.writeFrame(nil, s.item, CodeWrite)
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
		return newError(CodeClosed, TextSenderClosed, nil)
	}
	if s.writeErr != nil {
		return s.writeErr
	}
	return nil
}

// writeFrame writes one frame with one Write. s.wmu is held.
func (s *Sender) writeFrame(header, data []byte, code Code) error {
	buf, err := codec.AppendFrame(s.frame[:0], header, data, s.max)
	if err != nil {
		return newError(code, err.Error(), err) // nothing was written: the stream is intact
	}
	if cap(buf) <= maxRetainBuffer {
		s.frame = buf
	} else {
		s.frame = nil
	}
	if _, err := s.conn.Write(buf); err != nil {
		if e := s.abortErr.Load(); e != nil {
			return e
		}
		s.writeErr = newError(code, "response stream write failed: "+err.Error(), err)
		return s.writeErr
	}
	return nil
}

// Finish ends the stream as the spec's worker does: the final marker {"complete_final":true}
// unless the requester stopped or killed the stream, the prologue was an error or a write
// failed; then the sentinel, unless writing is impossible; then a half-close, a wait of at most
// FinishTimeout for the requester to close, and Close. A success prologue is written first if
// none was. Finish reports a failure of the frames it writes (CodeFinal, metric
// "publish_final"); earlier failures were reported by the calls that met them.
func (s *Sender) Finish() error {
	s.wmu.Lock()
	if s.finished {
		s.wmu.Unlock()
		return nil
	}
	var err error
	if s.writable() == nil {
		if !s.prologueSent {
			err = s.writePrologue(nil)
		}
		if err == nil && !s.errPrologue && !s.stopped.Load() {
			s.item = codec.AppendStreamEnd(s.item[:0])
			err = s.writeFrame(nil, s.item, CodeFinal)
		}
		if s.writable() == nil {
			if e := s.writeFrame(codec.ControlSentinel.Bytes(), nil, CodeFinal); e != nil && err == nil {
				err = e
			}
		}
	}
	s.finished = true
	s.finishing.Store(true)
	aborted := s.abortErr.Load() != nil
	s.wmu.Unlock()

	if !aborted {
		if hc, ok := s.conn.(halfCloser); ok {
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

// Close aborts the stream: it closes the connection without the final marker (the requester
// sees an incomplete stream unless Finish ran), cancels Context and waits for the control
// reader. It is idempotent and returns nil.
func (s *Sender) Close() error {
	s.closeOnce.Do(func() {
		e := newError(CodeClosed, TextSenderClosed, nil)
		s.abortErr.CompareAndSwap(nil, e)
		s.conn.Close()
		s.cancel(e)
	})
	<-s.readerDone
	return nil
}
