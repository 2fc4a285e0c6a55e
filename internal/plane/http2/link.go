package http2

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// link is what both ends of this package's HTTP/2 connections share (the Client's conn and
// the Server's serverConn): frames are encoded under mu into one buffer and written in
// batches by whoever finds no write in progress; send-side flow control; receive-side
// connection window; the keep-alive ping.
//
// A reader goroutine must never block on a write (a peer blocked writing to us would then
// never read our frames): what it queues is written by the writer of the moment, else by the
// connection's housekeeper goroutine, woken through kick.
type link struct {
	nc           net.Conn
	writeTimeout time.Duration
	kick         chan struct{} // capacity 1
	closed       chan struct{} // closed when the reader ended
	frames       atomic.Uint64 // frames read, for the keep-alive

	mu       sync.Mutex
	wb       wbuf          // frames not yet written
	fw       *http2.Framer // encodes into wb
	spare    []byte
	writing  bool
	henc     *hpack.Encoder
	hbuf     hbuf
	err      error  // set once: why the connection ended
	maxFrame uint32 // the peer's SETTINGS_MAX_FRAME_SIZE
	initWin  int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	connWin  int64  // connection-level send window
	recvWin  int64  // our connection receive window, as advertised
	recvLeft int64  // what the peer may still send before our next WINDOW_UPDATE
	released int64  // received bytes no longer held, not yet returned
	blocked  []*sendState
	// keep-alive
	lastFrames uint64
	silent     time.Duration // without a frame read
	pingOut    bool
}

// sendState is one stream's send side.
type sendState struct {
	id      uint32
	sendWin int64  // flow-control window for our DATA
	pending []byte // body not yet sent for want of window
	blocked bool   // in link.blocked
}

// wbuf collects the Framer's output: each Write is one frame.
type wbuf struct{ b []byte }

func (w *wbuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// hbuf collects the HPACK encoder's output for one header block.
type hbuf struct{ b []byte }

func (h *hbuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

const (
	// maxRetainWrite caps the write buffer kept between batches, so one large body does not
	// pin its memory for the connection's life.
	maxRetainWrite = 64 << 10
	// maxFlowWindow is the largest flow-control window (RFC 9113 §6.9.1).
	maxFlowWindow = 1<<31 - 1
	// housekeepingTick paces the keep-alive and idle checks.
	housekeepingTick = time.Second
	// defaultWindow and defaultFrame are RFC 9113's initial values.
	defaultWindow = 65535
	defaultFrame  = 16 << 10
)

func (l *link) init(nc net.Conn, writeTimeout time.Duration, recvWin int64) {
	l.nc = nc
	l.writeTimeout = writeTimeout
	l.kick = make(chan struct{}, 1)
	l.closed = make(chan struct{})
	l.fw = http2.NewFramer(&l.wb, nil)
	l.henc = hpack.NewEncoder(&l.hbuf)
	l.maxFrame = defaultFrame
	l.initWin, l.connWin = defaultWindow, defaultWindow
	l.recvWin, l.recvLeft = recvWin, recvWin
}

// flushLocked writes batches until nothing is pending. It drops mu while writing so that
// others can queue the next batch meanwhile. The caller set writing.
func (l *link) flushLocked() {
	for len(l.wb.b) > 0 && l.err == nil {
		out := l.wb.b
		l.wb.b, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		_ = l.nc.SetWriteDeadline(time.Now().Add(l.writeTimeout))
		_, err := l.nc.Write(out)
		l.mu.Lock()
		if cap(out) <= maxRetainWrite {
			l.spare = out[:0]
		}
		if err != nil {
			l.breakLocked(err)
		}
	}
	if l.err != nil {
		l.wb.b = nil
	}
}

// writeNowLocked writes what is queued, unless someone is writing (they will).
func (l *link) writeNowLocked() {
	if !l.writing && len(l.wb.b) > 0 {
		l.writing = true
		l.flushLocked()
		l.writing = false
	}
}

// drainLocked writes everything queued before a close, waiting for a write in progress (its
// writer may have taken its batch before the last frames were queued).
func (l *link) drainLocked() {
	for l.writing && l.err == nil {
		l.mu.Unlock()
		time.Sleep(time.Millisecond)
		l.mu.Lock()
	}
	l.writeNowLocked()
}

// queuedLocked makes sure frames queued by the reader get written: by the writer of the
// moment, else by the housekeeper.
func (l *link) queuedLocked() {
	if !l.writing && len(l.wb.b) > 0 {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// breakLocked records why the connection ends and closes it; the reader then notices.
func (l *link) breakLocked(err error) {
	if l.err == nil {
		l.err = err
	}
	_ = l.nc.Close()
}

// writeHeadersLocked frames the header block in hbuf: HEADERS, then CONTINUATION frames
// when it exceeds the peer's frame size.
func (l *link) writeHeadersLocked(id uint32, endStream bool) {
	block := l.hbuf.b
	first := block[:min(len(block), int(l.maxFrame))]
	block = block[len(first):]
	_ = l.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		frag := block[:min(len(block), int(l.maxFrame))]
		block = block[len(frag):]
		_ = l.fw.WriteContinuation(id, len(block) == 0, frag)
	}
}

// sendDataLocked frames as much of s's pending body as the windows allow, the last frame
// ending the stream, and keeps s in blocked while some remains.
func (l *link) sendDataLocked(s *sendState) {
	for len(s.pending) > 0 {
		n := min(int64(len(s.pending)), int64(l.maxFrame), l.connWin, s.sendWin)
		if n <= 0 {
			break
		}
		chunk := s.pending[:n]
		s.pending = s.pending[n:]
		l.connWin -= n
		s.sendWin -= n
		_ = l.fw.WriteData(s.id, len(s.pending) == 0, chunk)
	}
	switch {
	case len(s.pending) > 0 && !s.blocked:
		s.blocked = true
		l.blocked = append(l.blocked, s)
	case len(s.pending) == 0 && s.blocked:
		l.unblockLocked(s)
	}
}

// unblockLocked drops s's pending body (sent, or the stream ended).
func (l *link) unblockLocked(s *sendState) {
	s.pending = nil
	if !s.blocked {
		return
	}
	s.blocked = false
	if i := slices.Index(l.blocked, s); i >= 0 {
		l.blocked = slices.Delete(l.blocked, i, i+1)
	}
}

// resumeLocked sends what the blocked streams can now send, in arrival order.
func (l *link) resumeLocked() {
	for i := 0; i < len(l.blocked) && l.connWin > 0; {
		s := l.blocked[i]
		l.sendDataLocked(s)
		if s.blocked {
			i++
		}
	}
}

// receivedLocked accounts n bytes of DATA (padding included) against our connection window.
// A peer sending beyond the window breaks the protocol. The bytes come back to the peer
// through releaseLocked, once they are no longer held.
func (l *link) receivedLocked(n int64) error {
	l.recvLeft -= n
	if l.recvLeft < 0 {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	return nil
}

// releaseLocked returns n received bytes to the connection window (in one WINDOW_UPDATE
// once half of it is due): what the window bounds is what we hold.
func (l *link) releaseLocked(n int64) {
	l.released += n
	if l.released >= l.recvWin/2 {
		_ = l.fw.WriteWindowUpdate(0, uint32(l.released))
		l.recvLeft += l.released
		l.released = 0
		l.queuedLocked()
	}
}

// settingLocked applies one of the peer's SETTINGS that matter to the sending side; streams
// lists the open streams' send states, whose windows move with SETTINGS_INITIAL_WINDOW_SIZE.
func (l *link) settingLocked(s http2.Setting, streams func(func(*sendState))) error {
	if err := s.Valid(); err != nil {
		return err
	}
	switch s.ID {
	case http2.SettingInitialWindowSize:
		delta := int64(s.Val) - l.initWin
		l.initWin = int64(s.Val)
		var overflow bool
		streams(func(st *sendState) {
			st.sendWin += delta
			overflow = overflow || st.sendWin > maxFlowWindow
		})
		if overflow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	case http2.SettingMaxFrameSize:
		l.maxFrame = s.Val
	case http2.SettingHeaderTableSize:
		l.henc.SetMaxDynamicTableSize(s.Val)
	}
	return nil
}

// windowLocked applies a WINDOW_UPDATE; s is the stream's send state, nil for the
// connection's (or a stream no longer open). It reports a stream overflow with overflowed,
// a connection overflow with an error.
func (l *link) windowLocked(f *http2.WindowUpdateFrame, s *sendState) (overflowed bool, err error) {
	switch {
	case f.StreamID == 0:
		l.connWin += int64(f.Increment)
		if l.connWin > maxFlowWindow {
			return false, http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	case s != nil:
		s.sendWin += int64(f.Increment)
		if s.sendWin > maxFlowWindow {
			return true, nil
		}
	}
	l.resumeLocked()
	l.queuedLocked()
	return false, nil
}

// pingLocked answers a PING, or notes the answer to ours.
func (l *link) pingLocked(f *http2.PingFrame) {
	if f.IsAck() {
		l.pingOut = false
		return
	}
	if l.err == nil {
		_ = l.fw.WritePing(true, f.Data)
		l.queuedLocked()
	}
}

// errPingTimeout ends a connection whose peer did not answer a ping.
var errPingTimeout = errors.New("no answer to a keep-alive ping")

// keepAliveLocked runs once per housekeeping tick: a connection silent for pingAfter is
// pinged, and broken when the ping stays unanswered for pingTimeout more, so a vanished
// peer does not hold streams forever.
func (l *link) keepAliveLocked(pingAfter, pingTimeout time.Duration) {
	if n := l.frames.Load(); n != l.lastFrames {
		l.lastFrames, l.silent, l.pingOut = n, 0, false
		return
	}
	l.silent += housekeepingTick
	switch {
	case l.pingOut && l.silent >= pingAfter+pingTimeout:
		l.breakLocked(fmt.Errorf("%w within %v", errPingTimeout, pingTimeout))
	case !l.pingOut && l.silent >= pingAfter:
		l.pingOut = true
		_ = l.fw.WritePing(false, [8]byte{'r', 'e', 'q', 'p', 'l', 'a', 'n', 'e'})
		l.writeNowLocked()
	}
}

// housekeep writes what the reader queued and calls tick once per housekeepingTick, until
// the connection's reader ended.
func (l *link) housekeep(tick func()) {
	t := time.NewTicker(housekeepingTick)
	defer t.Stop()
	for {
		select {
		case <-l.closed:
			return
		case <-l.kick:
			l.mu.Lock()
			l.writeNowLocked()
			l.mu.Unlock()
		case <-t.C:
			tick()
		}
	}
}
