package stream

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// Response mux v1 (spec §13, docs/protocol.md §8): flow-control parameters both sides assume.
// They are not negotiated, so they are constants, not options.
const (
	// MuxStreamWindow is the credit a stream starts with: the bytes of Data payloads the worker
	// may send before the requester's first WindowUpdate.
	MuxStreamWindow = 256 << 10
	// MuxConnWindow bounds the Data payload bytes a worker has sent on a connection and the
	// requester has not acknowledged (ConnectionAck) as read.
	MuxConnWindow = 256 << 10
	// MuxCreditThreshold is how many bytes are consumed (stream) or read (connection) before the
	// requester sends a WindowUpdate or ConnectionAck.
	MuxCreditThreshold = 64 << 10
	// DefaultMuxIdleTimeout closes a mux connection that carried no stream for that long.
	DefaultMuxIdleTimeout = 300 * time.Second
)

// Texts of the response mux (reqplane's own; Dynamo's are not known).
const (
	TextMuxUnknownServer = "response mux handshake names another frontend server: "
	TextMuxWindow        = "response mux stream exceeded its flow-control window"
	TextMuxDuplicate     = "response mux stream sent a second prologue"
	TextMuxReset         = "response stream reset by the requester"
	TextMuxResetByWorker = "response stream reset by the worker"
)

// FrontendServerID returns this Server's frontend_server_id, the id workers name in their mux
// handshake.
func (s *Server) FrontendServerID() codec.UUID { return s.frontendID }

// RegisterMux is Register for the response mux: the Stream is registered under a fresh stream
// id, and the request it belongs to must carry its MuxInfo (AppendRequestControl writes the
// right header for either kind of Stream). The consumer API is the same as a classic Stream's.
// Offer it only to workers whose discovery record says they speak the mux.
func (s *Server) RegisterMux(id string) *Stream {
	sid := s.ids.New() // under its own lock, outside the server's
	s.mu.Lock()
	defer s.mu.Unlock()
	info := codec.MuxCallHomeInfo{
		Address:          s.addr,
		FrontendServerID: s.frontendID,
		StreamID:         sid,
		Context:          id,
		Version:          codec.MuxVersion,
	}
	st := newMuxStream(s, info)
	switch s.state {
	case stateStarted:
		s.muxStreams[info.StreamID] = st
	case stateNew:
		st.failUnregistered(newError(CodeClosed, TextServerNotStarted, nil))
	default:
		st.failUnregistered(newError(CodeClosed, TextServerClosed, nil))
	}
	return st
}

// claimMux attaches the mux stream registered under id to mc, if any.
func (s *Server) claimMux(id codec.UUID, mc *muxConn) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.muxStreams[id]
	if st == nil || !st.attachMux(mc) {
		return nil
	}
	return st
}

// muxConn is the requester's end of one response mux connection: its reader runs in the
// server's goroutine for the connection (serveMux), its writer in a goroutine of its own.
type muxConn struct {
	srv  *Server
	conn net.Conn
	id   codec.UUID // the worker's connection_id, for logs
	w    *muxWriter

	// Flow control of the connection, owned by the reader.
	recvTotal, recvAcked uint64
	// slab holds the copies of received items, owned by the reader: one allocation serves
	// many small items instead of one each.
	slab []byte

	mu      sync.Mutex
	streams map[codec.UUID]*Stream // attached and not ended
	closed  bool
	idle    idleClock
}

// serveMux runs a response mux connection whose first frame's header is hsHeader: the
// handshake and its ack, then the frame reader until the connection ends.
func (s *Server) serveMux(c net.Conn, r *codec.Reader, hsHeader []byte) {
	hs, err := codec.ParseMuxHandshake(hsHeader)
	if err != nil {
		s.rejectConn(c, TextBadHandshake+err.Error(), err)
		return
	}
	if hs.FrontendServerID != s.frontendID {
		s.rejectConn(c, TextMuxUnknownServer+hs.FrontendServerID.String(), nil)
		return
	}
	c.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	if _, err := c.Write(codec.AppendMuxHandshakeAck(nil)); err != nil {
		s.rejectConn(c, "response mux handshake ack failed: "+err.Error(), err)
		return
	}
	c.SetReadDeadline(time.Time{})

	mc := &muxConn{srv: s, conn: c, id: hs.ConnectionID, w: newMuxWriter(c, s.opts.WriteTimeout)}
	mc.streams = make(map[codec.UUID]*Stream)
	mc.idle = idleClock{timeout: s.opts.MuxIdleTimeout}
	mc.idle.idle()
	s.mu.Lock()
	if s.state != stateStarted {
		s.mu.Unlock()
		return
	}
	s.muxConns[mc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		mc.w.run(func(error) { c.Close() })
	}()
	mc.armIdle()

	err = mc.read(codec.NewMuxReader(c, codec.MuxFromWorker, s.opts.MaxMessageSize, r.Buffered()))
	mc.teardown(err)
	s.mu.Lock()
	delete(s.muxConns, mc)
	s.mu.Unlock()
}

// rejectConn logs why a connection was refused, unless the server is closing.
func (s *Server) rejectConn(c net.Conn, text string, err error) {
	select {
	case <-s.done:
		return
	default:
	}
	s.opts.Logger.Warn("call-home connection rejected", "error", text, "cause", err,
		"remote", c.RemoteAddr().String())
}

// errMuxIdle ends the reader of a connection that stayed idle for the idle timeout.
var errMuxIdle = errors.New("response mux connection idle")

// read dispatches frames until the connection ends, and returns why it ended. It never
// blocks on a stream: delivery only appends to the stream's queue, whose size the stream's
// credit bounds.
func (mc *muxConn) read(mr *codec.MuxReader) error {
	// A worker writes a stream's frames in bursts (prologue, items, end): the stream of the
	// previous frame is remembered while it is open, which spares a lock and a map lookup per
	// frame.
	var (
		last   *Stream
		lastID codec.UUID
	)
	for {
		f, err := mr.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if mc.idleExpired() {
					return errMuxIdle
				}
				continue
			}
			return err
		}
		if f.Kind == codec.MuxData {
			mc.recvTotal += uint64(len(f.Payload))
			if mc.recvTotal-mc.recvAcked >= MuxCreditThreshold {
				mc.recvAcked = mc.recvTotal
				total := mc.recvTotal
				mc.w.put(func(b []byte) []byte { return codec.AppendMuxConnectionAck(b, total) })
			}
		}
		st, cached := last, last != nil && f.Stream == lastID
		if !cached {
			mc.mu.Lock()
			st = mc.streams[f.Stream]
			mc.mu.Unlock()
			if st == nil {
				if st = mc.adopt(f); st == nil {
					last = nil
					continue
				}
			}
		}
		open, stale := st.muxFrame(mc, f)
		if stale && cached && f.Kind == codec.MuxPrologue {
			// The stream ended since its last frame (its consumer closed it, say): the map
			// would not have had it, so answer as for an unknown stream.
			mc.adopt(f)
		}
		last, lastID = nil, codec.NilUUID
		if open {
			last, lastID = st, f.Stream
		}
	}
}

// adopt attaches the registered stream a frame names to this connection. A Prologue for an
// unknown stream is answered with a Reset; other frames for unknown streams are late frames
// of streams this side already ended, and are dropped.
func (mc *muxConn) adopt(f codec.MuxFrame) *Stream {
	st := mc.srv.claimMux(f.Stream, mc)
	if st == nil && f.Kind == codec.MuxPrologue {
		text := SubjectNotFoundText(f.Stream.String())
		mc.srv.opts.Logger.Warn("response mux stream rejected", "error", text, "connection", mc.id.String())
		mc.reset(f.Stream, text)
	}
	return st
}

// add records an attached stream. It fails once the connection is closed.
func (mc *muxConn) add(st *Stream) bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.closed {
		return false
	}
	mc.streams[st.mux.info.StreamID] = st
	mc.idle.busy()
	return true
}

// remove forgets an ended stream.
func (mc *muxConn) remove(st *Stream) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.streams[st.mux.info.StreamID] == st {
		delete(mc.streams, st.mux.info.StreamID)
		if len(mc.streams) == 0 {
			mc.idle.idle()
		}
	}
}

// armIdle sets the reader's first read deadline.
func (mc *muxConn) armIdle() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	dl, _ := mc.idle.next()
	mc.conn.SetReadDeadline(dl)
}

// idleExpired reports, after a read deadline, whether the connection has been idle for the
// idle timeout; if not, it sets the next deadline and reading goes on.
func (mc *muxConn) idleExpired() bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	dl, expired := mc.idle.next()
	if expired {
		mc.closed = true
		return true
	}
	mc.conn.SetReadDeadline(dl)
	return false
}

// reset queues a Reset for stream id with reason as payload.
func (mc *muxConn) reset(id codec.UUID, reason string) {
	mc.w.putFrame(codec.MuxReset, id, []byte(reason))
}

// teardown ends the connection: every stream still on it fails (a worker that died mid-stream
// leaves "Stream ended before generation completed"), the writer stops, the socket closes.
func (mc *muxConn) teardown(err error) {
	mc.mu.Lock()
	mc.closed = true
	streams := make([]*Stream, 0, len(mc.streams))
	for _, st := range mc.streams {
		streams = append(streams, st)
	}
	clear(mc.streams)
	mc.mu.Unlock()

	closing := false
	select {
	case <-mc.srv.done:
		closing = true
	default:
	}
	var fail *Error
	switch {
	case err == io.EOF || errors.Is(err, codec.ErrIO) || err == errMuxIdle || closing:
		fail = newError(CodeIncomplete, TextIncomplete, err)
	default:
		fail = newError(CodeProtocol, err.Error(), err)
		mc.srv.opts.Logger.Warn("response mux connection failed", "error", err, "connection", mc.id.String())
	}
	for _, st := range streams {
		st.connLost(fail)
	}
	mc.w.stop(false)
	mc.conn.Close()
}

// slabSize is the size of the blocks copyItem carves items from; larger items get their own.
const slabSize = 16 << 10

// copyItem copies a received payload, which aliases the reader's buffer, for the consumer. The
// copy's capacity ends with it, so appending to one item cannot overwrite the next.
func (mc *muxConn) copyItem(p []byte) []byte {
	if len(p) > slabSize/4 {
		return bytes.Clone(p)
	}
	if cap(mc.slab)-len(mc.slab) < len(p) {
		mc.slab = make([]byte, 0, slabSize)
	}
	n := len(mc.slab)
	mc.slab = append(mc.slab, p...)
	return mc.slab[n:len(mc.slab):len(mc.slab)]
}
