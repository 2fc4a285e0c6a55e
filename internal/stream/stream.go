package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// Stream is the requester's end of one response stream: the items a worker sends for one
// request attempt, in order. Create it with Server.Register before sending the request.
//
// The consumer calls Recv until it returns an error: io.EOF after a complete stream, a *Error
// otherwise (CodeGenerate for the worker's error prologue). Stop asks the worker to finish
// early and gracefully; Close gives the stream up (sending "kill" if the worker is still
// streaming) and must always be called. Cancelling the context passed to Recv only abandons
// that call: what to tell the worker is the owner's decision. The public API maps a caller's
// cancellation to Stop, then Close.
//
// Recv may be called from one goroutine at a time; Acked, Stop and Close from any.
type Stream struct {
	srv      *Server
	info     codec.CallHomeInfo
	mux      *muxStream    // set for a response mux stream (mux_stream.go); nil for classic
	items    chan []byte   // bounded: a full channel blocks the connection's reader
	ended    chan struct{} // closed once err is set
	quit     chan struct{} // closed when this side gives the stream up; stops delivery (classic only)
	detached chan struct{} // closed by the connection's reader when it is done (classic only)

	wmu sync.Mutex // one writer per connection: stop and kill never interleave

	mu         sync.Mutex
	err        error // terminal: io.EOF or *Error
	conn       net.Conn
	acked      bool
	prologue   bool
	stopWanted bool
	killSent   bool
	closed     bool
	quitClosed bool
	watched    bool           // added to the server's prologue watch, not yet removed
	watch      watchLink      // its place there (guarded by the watch's lock)
	timerWG    sync.WaitGroup // the prologue watch: counts the stream while watched or expiring
}

func newStream(srv *Server, info codec.CallHomeInfo) *Stream {
	return &Stream{
		srv:      srv,
		info:     info,
		items:    make(chan []byte, srv.opts.Buffer),
		ended:    make(chan struct{}),
		quit:     make(chan struct{}),
		detached: make(chan struct{}),
	}
}

// Info returns the call-home info to put into the request's control header. For a response
// mux stream it is the mux info's projection (Subject = the stream id); use
// AppendRequestControl or MuxInfo to write its header.
func (s *Stream) Info() codec.CallHomeInfo {
	if s.mux != nil {
		info := s.info
		info.Subject = s.mux.info.StreamID.String()
		return info
	}
	return s.info
}

// Acked tells the stream that the request plane acknowledged the request. It starts the
// prologue timeout: if the worker has not sent its prologue within it, the stream fails with
// CodeTimeout and its subject is forgotten. The worker may have called home already; that is
// fine.
func (s *Stream) Acked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acked {
		return
	}
	s.acked = true
	if s.srv.opts.PrologueTimeout < 0 || s.err != nil || s.prologue {
		return
	}
	s.watched = true
	s.srv.prologues.add(s)
}

// Recv returns the next item: the raw JSON of the item's data (in the spec's V8, an item reads
// {"data":{"text":"hello","index":0}}). The caller owns the returned slice. After the last item
// Recv returns io.EOF if the stream ended cleanly and a *Error otherwise. After Close of a
// stream that had not ended it returns a *Error with CodeClosed, dropping buffered items. If
// ctx ends first, Recv returns ctx.Err() and the stream is intact.
func (s *Stream) Recv(ctx context.Context) ([]byte, error) {
	if s.mux != nil {
		return s.recvMux(ctx)
	}
	select {
	case <-s.quit:
		return nil, s.Err()
	default:
	}
	select {
	case item := <-s.items:
		return item, nil
	case <-s.ended:
		// Items sent before the end are still buffered; deliver them first.
		select {
		case item := <-s.items:
			return item, nil
		default:
			return nil, s.Err()
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed when the stream has ended: completed, failed or closed. Items may still be
// buffered for Recv.
func (s *Stream) Done() <-chan struct{} { return s.ended }

// Err returns nil while the stream is live, io.EOF after a clean end, and the *Error it failed
// with otherwise.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop asks the worker, once, to finish gracefully: it stops generating and ends the stream
// without the final marker, and Recv then returns io.EOF instead of an incomplete-stream
// error. Before the prologue, the request is remembered and sent when it arrives.
func (s *Stream) Stop() {
	if s.mux != nil {
		s.stopMux()
		return
	}
	s.mu.Lock()
	if s.stopWanted || s.err != nil {
		s.mu.Unlock()
		return
	}
	s.stopWanted = true
	conn := s.conn
	send := s.prologue && conn != nil && !s.killSent
	s.mu.Unlock()
	if send {
		s.writeControl(conn, s.srv.stopFrame)
	}
}

// Close gives the stream up: if it has not ended, the worker is sent "kill" and the connection
// is closed; the subject is unregistered, so a late call-home is rejected. Close waits until
// the connection's reader has let go of the stream. It is idempotent and always returns nil.
func (s *Stream) Close() error {
	s.terminate(errStreamClosed, byOwner)
	return nil
}

// Abandon is Close for a send attempt that failed before its acknowledgement: the subject is
// forgotten and a worker that calls home anyway is killed or rejected. A retry registers a
// new Stream.
func (s *Stream) Abandon() { s.Close() }

type termKind uint8

const (
	byOwner   termKind = iota // Stream.Close
	byServer                  // Server.Close
	byTimeout                 // the prologue timer
)

// terminate ends the stream from this side.
func (s *Stream) terminate(err *Error, kind termKind) {
	if s.mux != nil {
		s.terminateMux(err, kind)
		return
	}
	s.mu.Lock()
	proceed, live := s.endLocked(err, kind)
	if !proceed {
		s.mu.Unlock()
		if kind == byOwner {
			s.wait() // a second Close returns once the first one's work is done
		}
		return
	}
	conn := s.conn
	kill := live && conn != nil && !s.killSent
	if kill {
		s.killSent = true
	}
	s.mu.Unlock()

	s.srv.forget(s)
	if kill {
		s.writeControl(conn, s.srv.killFrame)
	}
	if conn != nil {
		conn.Close()
	}
	if kind == byTimeout {
		s.srv.opts.Logger.Debug("response stream timed out", "id", s.info.Context, "subject", s.info.Subject)
		return // running in the timer's callback: nothing to wait for
	}
	s.wait()
}

// endLocked records that this side ends the stream, for classic and mux streams alike. It
// reports whether there is anything left to do (not after an earlier Close, nor for a timeout
// that lost to the prologue) and whether the stream was still live, so the worker must be told.
// s.mu is held.
func (s *Stream) endLocked(err *Error, kind termKind) (proceed, live bool) {
	switch kind {
	case byOwner:
		if s.closed {
			return false, false
		}
		s.closed = true
	case byTimeout:
		if s.err != nil || s.prologue {
			return false, false
		}
	}
	live = s.err == nil
	if live {
		s.err = err
		close(s.ended)
	}
	if !s.quitClosed {
		s.quitClosed = true
		if s.quit != nil {
			close(s.quit)
		}
	}
	s.stopTimer()
	return true, live
}

// wait waits for the timer's callback and the connection's reader.
func (s *Stream) wait() {
	s.timerWG.Wait()
	s.mu.Lock()
	attached := s.conn != nil
	s.mu.Unlock()
	if attached {
		<-s.detached
	}
}

// stopTimer takes the stream out of the prologue watch. s.mu must be held.
func (s *Stream) stopTimer() {
	if s.watched {
		s.watched = false
		s.srv.prologues.remove(s)
	}
}

// failUnregistered fails a stream that was never registered. Only Register calls it, before
// the stream is shared.
func (s *Stream) failUnregistered(err *Error) {
	s.err = err
	s.quitClosed = true
	close(s.ended)
	if s.quit != nil {
		close(s.quit)
	}
}

// attach binds the worker's connection. The server's lock is held.
func (s *Stream) attach(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil || s.err != nil {
		return false
	}
	s.conn = c
	return true
}

// writeControl writes a stop or kill frame, bounded by the write timeout.
func (s *Stream) writeControl(c net.Conn, frame []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
	if _, err := c.Write(frame); err != nil {
		s.srv.opts.Logger.Debug("response stream control write failed", "id", s.info.Context,
			"subject", s.info.Subject, "error", err)
	}
}

// run reads the attached connection until the stream ends. It runs in the server's
// goroutine for the connection.
func (s *Stream) run(c net.Conn, r *codec.Reader) {
	kill, err := s.pump(c, r)
	if err == nil {
		return // this side terminated the stream
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	close(s.ended)
	s.stopTimer()
	kill = kill && !s.killSent
	if kill {
		s.killSent = true
	}
	s.mu.Unlock()

	s.srv.forget(s)
	if kill {
		s.writeControl(c, s.srv.killFrame)
	}
	if err != io.EOF {
		level := s.srv.opts.Logger.Debug
		if CodeOf(err) == CodeProtocol {
			level = s.srv.opts.Logger.Warn
		}
		level("response stream failed", "id", s.info.Context, "subject", s.info.Subject, "error", err)
	}
}

// pump reads the prologue and the items. It returns the stream's end (io.EOF when clean) and
// whether the worker must be killed, or nil when this side gave the stream up.
func (s *Stream) pump(c net.Conn, r *codec.Reader) (kill bool, err error) {
	f, err := r.Next()
	if err != nil {
		return s.readFailure(err, TextNoPrologue)
	}
	if f.Kind() != codec.HeaderOnly {
		return true, newError(CodeProtocol, TextMalformedPrologue, nil)
	}
	p, err := codec.ParsePrologue(f.Header)
	if err != nil {
		return true, newError(CodeProtocol, TextBadControl+err.Error(), err)
	}
	if p.Error != nil {
		return false, newError(CodeGenerate, *p.Error, nil)
	}
	if !s.started(c) {
		return false, nil
	}

	final := false
	for {
		f, err := r.Next()
		if err != nil {
			if err == io.EOF {
				return false, s.finished(final)
			}
			return s.readFailure(err, TextIncomplete)
		}
		switch f.Kind() {
		case codec.Empty:
			// Dynamo skips a frame with neither header nor data.
		case codec.DataOnly:
			if final {
				return true, newError(CodeProtocol, TextAfterFinal, nil)
			}
			it, err := codec.ParseStreamItem(f.Data)
			if err != nil {
				return true, newError(CodeProtocol, err.Error(), err)
			}
			final = it.CompleteFinal
			if it.Data != nil {
				// The frame aliases the reader's buffer; the consumer gets its own copy.
				if !s.deliver(bytes.Clone(it.Data)) {
					return false, nil
				}
			} else if !final {
				return true, newError(CodeProtocol, TextEmptyResponse, nil)
			}
		case codec.HeaderOnly:
			ctl, err := codec.ParseControl(f.Header)
			if err != nil {
				return true, newError(CodeProtocol, TextBadControl+err.Error(), err)
			}
			if ctl != codec.ControlSentinel {
				return true, newError(CodeProtocol, TextUnexpectedControl, nil)
			}
			return false, s.finished(final)
		default:
			return true, newError(CodeProtocol, TextHeaderAndData, nil)
		}
	}
}

// started records the prologue, disarms the timer and sends a stop requested before it.
func (s *Stream) started(c net.Conn) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.prologue = true
	s.stopTimer()
	stop := s.stopWanted && !s.killSent
	s.mu.Unlock()
	if stop {
		s.writeControl(c, s.srv.stopFrame)
	}
	return true
}

// finished classifies the end of the worker's data: clean after the final marker or after
// this side asked to stop, incomplete otherwise.
func (s *Stream) finished(final bool) error {
	s.mu.Lock()
	stopped := s.stopWanted
	s.mu.Unlock()
	if final || stopped {
		return io.EOF
	}
	return newError(CodeIncomplete, TextIncomplete, nil)
}

// readFailure classifies a read error: the connection failing is an incomplete stream, a
// frame the codec refuses is a protocol error.
func (s *Stream) readFailure(err error, incomplete string) (bool, error) {
	select {
	case <-s.quit:
		return false, nil
	default:
	}
	if err == io.EOF || errors.Is(err, codec.ErrIO) {
		return false, newError(CodeIncomplete, incomplete, err)
	}
	return true, newError(CodeProtocol, err.Error(), err)
}

// deliver hands an item to the consumer, blocking while the buffer is full: this is what
// turns a slow consumer into TCP backpressure on the worker.
func (s *Stream) deliver(item []byte) bool {
	select {
	case s.items <- item:
		return true
	case <-s.quit:
		return false
	}
}
