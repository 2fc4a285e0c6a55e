package stream

import (
	"context"
	"errors"
	"io"

	"github.com/reqplane/reqplane/internal/codec"
)

// muxStream is the response mux part of a requester Stream. Items are queued in a slice, not a
// channel: the connection's reader must never block on one stream, and the stream's credit
// already bounds what the worker may send (MuxStreamWindow plus at most one item).
type muxStream struct {
	info   codec.MuxCallHomeInfo
	notify chan struct{} // cap 1: an item was queued

	// Guarded by Stream.mu.
	mc       *muxConn            // set by the first frame (the prologue)
	queue    [][]byte            // items from qhead on are undelivered
	qbuf     [muxQueueCap][]byte // the queue's first array, allocated with the stream
	qhead    int
	credit   int64 // Data payload bytes the worker may still send
	consumed int64 // bytes consumed since the last WindowUpdate
}

// muxQueueCap is a stream's first queue capacity: a burst of items usually fits, in the
// stream's own allocation.
const muxQueueCap = 16

func newMuxStream(srv *Server, info codec.MuxCallHomeInfo) *Stream {
	// The stream and its mux state are one allocation.
	ms := &struct {
		Stream
		muxStream
	}{}
	ms.muxStream = muxStream{
		info:   info,
		notify: make(chan struct{}, 1),
		credit: MuxStreamWindow,
	}
	// No quit or detached channel: a mux stream's ended closes whenever quit would, and no
	// per-stream connection reader detaches. Info formats the subject when asked.
	ms.Stream = Stream{
		srv: srv,
		info: codec.CallHomeInfo{
			Address:    info.Address,
			Context:    info.Context,
			StreamType: codec.StreamTypeResponse,
		},
		mux:   &ms.muxStream,
		ended: make(chan struct{}),
	}
	return &ms.Stream
}

// MuxInfo returns a response mux stream's connection info; ok is false for a classic stream.
func (s *Stream) MuxInfo() (info codec.MuxCallHomeInfo, ok bool) {
	if s.mux == nil {
		return codec.MuxCallHomeInfo{}, false
	}
	return s.mux.info, true
}

// Transport returns the connection_info transport the request must carry: "tcp_server" or
// "tcp_response_mux_v1".
func (s *Stream) Transport() string {
	if s.mux != nil {
		return codec.TransportTCPResponseMuxV1
	}
	return codec.TransportTCPServer
}

// AppendRequestControl appends the request header (RequestControlMessage) for this stream's
// request, classic or mux, so a requester switches modes by choosing Register or RegisterMux.
func (s *Stream) AppendRequestControl(dst []byte) []byte {
	if s.mux != nil {
		return codec.AppendMuxRequestControl(dst, s.mux.info.Context, s.mux.info)
	}
	return codec.AppendRequestControl(dst, s.info.Context, s.info)
}

// attachMux binds the stream to the connection its prologue arrived on. The server's lock is
// held; the order is server, stream, connection.
func (s *Stream) attachMux(mc *muxConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mux.mc != nil || s.err != nil || !mc.add(s) {
		return false
	}
	s.mux.mc = mc
	return true
}

// recvMux is Recv for a mux stream: it takes the next queued item and returns consumed bytes to
// the worker as credit once MuxCreditThreshold have accumulated.
func (s *Stream) recvMux(ctx context.Context) ([]byte, error) {
	m := s.mux
	for {
		s.mu.Lock()
		if s.quitClosed {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if m.qhead < len(m.queue) {
			item := m.queue[m.qhead]
			m.queue[m.qhead] = nil
			if m.qhead++; m.qhead == len(m.queue) {
				// Drained: the next items reuse the array instead of growing a new one.
				m.queue, m.qhead = m.queue[:0], 0
			}
			m.consumed += int64(len(item))
			var grant int64
			mc := m.mc
			if m.consumed >= MuxCreditThreshold && s.err == nil && mc != nil {
				grant, m.consumed = m.consumed, 0
				m.credit += grant
				id := m.info.StreamID
				mc.w.put(func(b []byte) []byte { return codec.AppendMuxWindowUpdate(b, id, uint32(grant)) })
			}
			s.mu.Unlock()
			return item, nil
		}
		if err := s.err; err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-m.notify:
		case <-s.ended: // closed whenever this side gives the stream up too
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stopMux is Stop for a mux stream: a Stop frame now, or when the prologue arrives.
func (s *Stream) stopMux() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopWanted || s.err != nil {
		return
	}
	s.stopWanted = true
	if mc := s.mux.mc; mc != nil && s.prologue {
		mc.w.putFrame(codec.MuxStop, s.mux.info.StreamID, nil)
	}
}

// terminateMux is terminate for a mux stream: this side ends it, with a Kill frame if the
// worker is streaming. Nothing waits for the connection's reader, which never blocks on a
// stream and drops frames for a stream that has ended.
func (s *Stream) terminateMux(err *Error, kind termKind) {
	s.mu.Lock()
	proceed, live := s.endLocked(err, kind)
	if !proceed {
		s.mu.Unlock()
		if kind == byOwner {
			s.timerWG.Wait()
		}
		return
	}
	s.mux.queue, s.mux.qhead = nil, 0
	clear(s.mux.qbuf[:]) // drop the undelivered items' memory
	mc := s.mux.mc
	if live && mc != nil {
		mc.w.putFrame(codec.MuxKill, s.mux.info.StreamID, nil)
	}
	s.mu.Unlock()

	if mc != nil {
		mc.remove(s)
	}
	s.srv.forget(s)
	if kind == byTimeout {
		s.srv.opts.Logger.Debug("response stream timed out", "id", s.info.Context, "stream_id", s.mux.info.StreamID.String())
		return
	}
	s.timerWG.Wait()
}

// muxFrame handles one frame for this stream from the connection's reader. It never blocks.
// It reports whether the stream is still open after the frame, and stale when the stream had
// already ended before it (the frame was dropped).
func (s *Stream) muxFrame(mc *muxConn, f codec.MuxFrame) (open, stale bool) {
	m := s.mux
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false, true // late frames of a stream this side ended
	}
	var (
		end   error // set when the frame ends the stream
		reset bool  // tell the worker, which broke the protocol
	)
	switch f.Kind {
	case codec.MuxPrologue:
		if s.prologue {
			end, reset = newError(CodeProtocol, TextMuxDuplicate, nil), true
			break
		}
		p, err := codec.ParsePrologue(f.Payload)
		if err != nil {
			end, reset = newError(CodeProtocol, TextBadControl+err.Error(), err), true
			break
		}
		if p.Error != nil {
			end = newError(CodeGenerate, *p.Error, nil) // the worker ends the stream itself
			break
		}
		s.prologue = true
		s.stopTimer()
		if s.stopWanted {
			mc.w.putFrame(codec.MuxStop, m.info.StreamID, nil)
		}
	case codec.MuxData:
		var text string
		switch {
		case !s.prologue:
			text = TextMalformedPrologue
		case len(f.Payload) == 0:
			text = TextEmptyResponse
		case m.credit <= 0:
			text = TextMuxWindow
		case !codec.ValidJSON(f.Payload):
			text = "invalid JSON in a response mux Data frame"
		default:
			m.credit -= int64(len(f.Payload))
			// The payload aliases the reader's buffer; the consumer gets its own copy.
			if m.queue == nil {
				m.queue = m.qbuf[:0]
			}
			m.queue = append(m.queue, mc.copyItem(f.Payload))
			select {
			case m.notify <- struct{}{}:
			default:
			}
		}
		if text != "" {
			end, reset = newError(CodeProtocol, text, nil), true
		}
	case codec.MuxEnd:
		if !s.prologue {
			end = newError(CodeProtocol, TextMalformedPrologue, nil)
		} else {
			end = io.EOF
		}
	case codec.MuxReset:
		var cause error
		if len(f.Payload) > 0 {
			cause = errors.New(TextMuxResetByWorker + ": " + string(f.Payload))
		}
		switch {
		case !s.prologue:
			end = newError(CodeIncomplete, TextNoPrologue, cause)
		case s.stopWanted:
			end = io.EOF
		default:
			end = newError(CodeIncomplete, TextIncomplete, cause)
		}
	}
	if end == nil {
		s.mu.Unlock()
		return true, false
	}
	s.err = end
	close(s.ended)
	s.stopTimer()
	s.mu.Unlock()

	mc.remove(s)
	s.srv.forget(s)
	if reset {
		mc.reset(m.info.StreamID, end.Error())
	}
	if end != io.EOF {
		level := s.srv.opts.Logger.Debug
		if CodeOf(end) == CodeProtocol {
			level = s.srv.opts.Logger.Warn
		}
		level("response stream failed", "id", s.info.Context, "stream_id", m.info.StreamID.String(), "error", end)
	}
	return false, false
}

// connLost fails the stream because its connection ended; after a Stop that is a clean end,
// as for a classic stream.
func (s *Stream) connLost(fail *Error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if s.stopWanted && s.prologue {
		s.err = io.EOF
	} else {
		s.err = fail
	}
	close(s.ended)
	s.stopTimer()
	s.mu.Unlock()
	s.srv.forget(s)
}
