package stream

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/reqplane/reqplane/internal/codec"
)

// Responder is the worker's end of one response stream, classic (*Sender, from Dial) or
// multiplexed (*MuxSender, from MuxDialer.Open): a handler written against it serves either.
type Responder interface {
	// Context ends when the requester stops or kills the stream, goes away, or when the
	// responder is finished or closed; context.Cause tells which.
	Context() context.Context
	// Stopped reports whether the requester asked to stop (finish gracefully).
	Stopped() bool
	// Killed reports whether the requester killed the stream.
	Killed() bool
	// Prologue writes the prologue: nil for success, else the error text.
	Prologue(errText *string) error
	// Send writes one item (the raw JSON of the item, e.g. {"data":…}).
	Send(data []byte) error
	// Finish ends the stream normally.
	Finish() error
	// Close aborts the stream. It is idempotent.
	Close() error
	// Cancel ends Context (cause context.Canceled, unless it already ended) and nothing else:
	// the owner stops the handler without touching the stream, which it ends or closes itself.
	Cancel()
}

var (
	_ Responder = (*Sender)(nil)
	_ Responder = (*MuxSender)(nil)
)

// MuxSender is the worker's end of one stream on a response mux connection, with Sender's
// surface. Send blocks while the stream (or the connection) has no flow-control credit — the
// requester's consumer is slow — until credit arrives or the Context ends (stop, kill, reset,
// connection lost, Close). Frames are queued to the connection's writer, which batches them;
// Finish waits until its End frame is written. A MuxSender owns no goroutine.
type MuxSender struct {
	wc   *workerConn
	id   codec.UUID
	info codec.MuxCallHomeInfo
	max  int

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stopped  atomic.Bool
	killed   atomic.Bool
	abortErr atomic.Pointer[Error] // writing must stop: kill, reset, Close
	lostErr  atomic.Pointer[Error] // the connection failed
	ended    atomic.Bool           // End written or Close: nothing more goes out

	credit int64         // guarded by wc.mu: Data payload bytes this stream may still send
	wake   chan struct{} // cap 1: credit arrived; made under wc.mu by the first Send that waits

	wmu sync.Mutex // serialises the stream's writes, so its frames stay in order
	prologueState
	finished  bool
	closeOnce sync.Once
}

func newMuxSender(ctx context.Context, wc *workerConn, info codec.MuxCallHomeInfo) *MuxSender {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	return &MuxSender{
		wc:     wc,
		id:     info.StreamID,
		info:   info,
		max:    wc.d.opts.MaxMessageSize,
		ctx:    sctx,
		cancel: cancel,
		credit: MuxStreamWindow,
	}
}

// Context is cancelled when the requester stops (cause ErrStopped), kills (ErrKilled) or resets
// (ErrProtocol) the stream, when the connection is lost (ErrDisconnected), or when the sender
// is finished or closed (ErrClosed).
func (s *MuxSender) Context() context.Context { return s.ctx }

// Stopped reports whether the requester sent Stop.
func (s *MuxSender) Stopped() bool { return s.stopped.Load() }

// Killed reports whether the requester sent Kill. Writes fail with CodeKilled from then on.
func (s *MuxSender) Killed() bool { return s.killed.Load() }

// Cancel ends Context with cause context.Canceled, unless it already ended; writing is not
// affected (a Send waiting for credit returns).
func (s *MuxSender) Cancel() { s.cancel(context.Canceled) }

// Info returns the stream's connection info.
func (s *MuxSender) Info() codec.MuxCallHomeInfo { return s.info }

// abort stops all writing and cancels the Context; a Send waiting for credit returns.
func (s *MuxSender) abort(e *Error) {
	s.abortErr.CompareAndSwap(nil, e)
	s.cancel(e)
}

// grant adds credit from a WindowUpdate.
func (s *MuxSender) grant(n uint32) {
	s.wc.mu.Lock()
	s.credit += int64(n)
	wake := s.wake // nil: no Send has waited, and the next one sees the credit
	s.wc.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// connLost records that the connection failed.
func (s *MuxSender) connLost(err error) {
	text := "response stream write failed"
	if err != nil {
		text += ": " + err.Error()
	}
	s.lostErr.CompareAndSwap(nil, newError(CodeWrite, text, err))
	s.cancel(newError(CodeDisconnected, TextDisconnected, err))
}

// writable reports why nothing may be written any more. s.wmu is held.
func (s *MuxSender) writable() error {
	if e := s.abortErr.Load(); e != nil {
		return e
	}
	if s.finished {
		return errSenderClosed
	}
	if e := s.lostErr.Load(); e != nil {
		return e
	}
	return nil
}

// Prologue writes the prologue: nil errText means the handler started; otherwise it is the
// error text the requester reports, and the handler should call Finish next.
func (s *MuxSender) Prologue(errText *string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.prologue(s, errText)
}

// putPrologue queues the prologue frame (prologueWriter). s.wmu is held.
func (s *MuxSender) putPrologue(errText *string) error {
	var buf [64]byte
	_, err := s.put(codec.MuxPrologue, codec.AppendPrologue(buf[:0], errText), CodeWrite)
	return err
}

// put checks the frame's size and queues it. s.wmu is held.
func (s *MuxSender) put(kind codec.MuxKind, payload []byte, code Code) (uint64, error) {
	if s.max > 0 && codec.MuxHeaderLen+len(payload) > s.max {
		err := &codec.MuxError{Code: codec.CodeMessageTooLarge, Size: uint64(codec.MuxHeaderLen + len(payload)), Max: uint64(s.max)}
		return 0, newError(code, err.Error(), err) // nothing was written: the stream is intact
	}
	pos, err := s.wc.w.putFrame(kind, s.id, payload)
	if err != nil {
		return 0, s.writeFailed(code, err)
	}
	return pos, nil
}

func (s *MuxSender) writeFailed(code Code, err error) error {
	if e := s.abortErr.Load(); e != nil {
		return e
	}
	return newError(code, "response stream write failed: "+err.Error(), err)
}

// Send writes one item: data is the raw JSON of the item (for the echo engine,
// {"data":{"text":"hello","index":0}}), carried as the Data frame's payload. It blocks while
// the stream or connection has no credit. Failures: CodeWrite, CodeKilled after a kill,
// CodeProtocol after a reset, CodeClosed after Finish or Close, and the stop or disconnect
// that ended the Context while Send waited for credit.
func (s *MuxSender) Send(data []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.beforeItem(s, data); err != nil {
		return err
	}
	if s.max > 0 && codec.MuxHeaderLen+len(data) > s.max {
		_, err := s.put(codec.MuxData, data, CodeWrite)
		return err
	}
	wc := s.wc
	n := int64(len(data))
	for {
		wc.mu.Lock()
		if e := s.abortErr.Load(); e != nil {
			wc.mu.Unlock()
			return e
		}
		if e := s.lostErr.Load(); e != nil {
			wc.mu.Unlock()
			return e
		}
		// A frame may go when some credit is left; it may take the credit below zero, since an
		// item is never split (the requester's buffer is bounded by window + one item).
		if s.credit > 0 && int64(wc.sent-wc.acked) < MuxConnWindow {
			s.credit -= n
			wc.sent += uint64(n)
			_, err := wc.w.putFrame(codec.MuxData, s.id, data)
			wc.mu.Unlock()
			if err != nil {
				return s.writeFailed(CodeWrite, err)
			}
			return nil
		}
		if s.ctx.Err() != nil {
			wc.mu.Unlock()
			return causeError(s.ctx)
		}
		connCredit := wc.creditCh
		if s.wake == nil { // most streams never wait for credit: no channel for them
			s.wake = make(chan struct{}, 1)
		}
		wake := s.wake
		wc.mu.Unlock()
		select {
		case <-wake:
		case <-connCredit:
		case <-s.ctx.Done():
		}
	}
}

// causeError returns the *Error that ended ctx.
func causeError(ctx context.Context) error {
	if e, ok := context.Cause(ctx).(*Error); ok {
		return e
	}
	return newError(CodeClosed, TextSenderClosed, context.Cause(ctx))
}

// Finish ends the stream: a success prologue if none was sent, then the End frame (after a
// stop or an error prologue too: End only says the worker is done), unless the stream was
// killed, reset or closed or the connection failed. It waits until End is written and reports
// a failure as CodeFinal (metric "publish_final"). There is no per-stream connection to close
// or drain, so Finish returns as soon as End is on the wire.
func (s *MuxSender) Finish() error {
	s.wmu.Lock()
	if s.finished {
		s.wmu.Unlock()
		return nil
	}
	var (
		err error
		pos uint64
	)
	if s.abortErr.Load() == nil {
		if e := s.lostErr.Load(); e != nil {
			err = newError(CodeFinal, e.Text, e.Err)
		} else {
			if !s.prologueSent {
				err = s.writePrologue(s, nil)
			}
			if err == nil {
				pos, err = s.put(codec.MuxEnd, nil, CodeFinal)
			}
			s.ended.Store(true)
		}
	}
	s.finished = true
	s.wmu.Unlock()

	if err == nil && pos > 0 {
		if werr := s.wc.w.waitFlushed(pos); werr != nil {
			err = s.writeFailed(CodeFinal, werr)
		}
	}
	s.release()
	if CodeOf(err) == CodeKilled {
		return nil // a kill during Finish is the requester's choice, not a failure
	}
	return err
}

// Close aborts the stream: unless it was finished, the requester is sent a Reset and reports
// "Stream ended before generation completed". It is idempotent and returns nil.
func (s *MuxSender) Close() error {
	s.closeOnce.Do(func() {
		e := errSenderClosed
		if s.abortErr.CompareAndSwap(nil, e) && !s.ended.Load() && s.lostErr.Load() == nil {
			s.wc.w.putFrame(codec.MuxReset, s.id, []byte(TextSenderClosed))
		}
		s.release()
	})
	return nil
}

// release forgets the stream on its connection and ends the Context.
func (s *MuxSender) release() {
	s.cancel(errSenderClosed)
	s.wc.release(s)
}

// String names the stream for logs.
func (s *MuxSender) String() string {
	return "response mux stream " + s.id.String() + " (request " + strconv.Quote(s.info.Context) + ")"
}
