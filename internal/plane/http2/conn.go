package http2

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reqplane/reqplane/internal/plane"
)

// The requester's HTTP/2 connection: h2c with prior knowledge (RFC 9113 §3.3), framed and
// HPACK-coded by golang.org/x/net/http2. It carries what the request plane needs, POSTs
// answered at once, and nothing else (no push, no priorities, no request trailers).
//
// Why not net/http's Transport: it flushes a request's HEADERS and DATA separately, runs a
// goroutine and a timer per request, and adds every per-request id to the HPACK table,
// evicting another each time; together ~40 µs of CPU per request, more than the rest of the
// request plane. Here senders append their frames to one buffer under the connection's lock
// and the first one finding no write in progress writes the batch (the TCP plane's client
// does the same), so a burst of requests leaves in one write; ids are sent never-indexed.

const (
	// clientStreamWindow is the receive window we give each stream: response bodies are short
	// refusal texts, read up to maxErrorBody, so it never needs a WINDOW_UPDATE.
	clientStreamWindow = 1 << 20
	// clientConnWindow is the connection's receive window, returned by a WINDOW_UPDATE once
	// half of it was used.
	clientConnWindow = 1 << 24
	// clientMaxHeaderList bounds the decoded response headers (SETTINGS_MAX_HEADER_LIST_SIZE).
	clientMaxHeaderList = 64 << 10
	// clientReadBuffer sizes the connection's read buffer: acks of a burst arrive together.
	clientReadBuffer = 16 << 10
	// maxRetainWrite caps the write buffer kept between batches, so one large body does not
	// pin its memory for the connection's life.
	maxRetainWrite = 64 << 10
	// maxStreamID is the largest stream id; a connection that used them all takes no more.
	maxStreamID = 1<<31 - 1
	// housekeepingTick paces the keep-alive and idle checks.
	housekeepingTick = time.Second
)

var (
	// errStale: the connection cannot take a new stream (full, going away or broken); pick again.
	errStale = errors.New("connection cannot take a new stream")
	// errIdle ends a connection unused for clientIdleTimeout.
	errIdle = errors.New("idle connection closed")
	// errGoneAway ends a connection the server sent GOAWAY on, once its last stream ended.
	errGoneAway = errors.New("connection closed after the server's GOAWAY")
	// errNoSettings: the server did not start the HTTP/2 session (not an h2c server?).
	errNoSettings = errors.New("server sent no HTTP/2 SETTINGS (is it an h2c server?)")
)

// result is what a stream's sender receives.
type result struct {
	status int    // the final HTTP status, 0 when err is set
	body   []byte // a refusal's body (up to maxErrorBody); nil for 2xx
	err    error
	// unprocessed: the server provably did not process the request (RST_STREAM
	// REFUSED_STREAM, or GOAWAY below its id), so it may be sent again.
	unprocessed bool
}

// stream is one request on a conn. Streams are pooled by the Client: one may be reused only
// once its sender has its result and the conn forgot it.
type stream struct {
	id    uint32
	ch    chan result // capacity 1: the conn never blocks delivering
	timer *time.Timer // the sender's acknowledgement timeout, reused with the stream

	// guarded by conn.mu
	done    bool   // finished: result delivered (or the sender gave up) and forgotten
	sendWin int64  // flow-control window for our DATA
	pending []byte // body not yet sent for want of window
	blocked bool   // in conn.blocked
	status  int    // final status once its HEADERS arrived
	body    []byte // refusal body collected so far
}

// conn is one HTTP/2 connection to a worker.
type conn struct {
	cl *Client
	p  *pool
	nc net.Conn
	fr *http2.Framer // read side, owned by readLoop

	active   atomic.Int32  // open streams: pick's load figure
	limit    atomic.Uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	unusable atomic.Bool   // broken or going away: pick skips it
	frames   atomic.Uint64 // frames read, for the keep-alive
	ready    chan struct{} // closed once the server's first SETTINGS arrived
	closed   chan struct{} // closed when the reader ended; stops the housekeeper
	kick     chan struct{} // capacity 1: wakes the housekeeper to write what the reader queued

	mu       sync.Mutex
	wb       wbuf          // frames not yet written
	fw       *http2.Framer // write side, encoding into wb
	spare    []byte
	writing  bool
	henc     *hpack.Encoder
	hbuf     hbuf
	streams  map[uint32]*stream
	blocked  []*stream // streams with pending body, in arrival order
	nextID   uint32
	maxFrame uint32 // the server's SETTINGS_MAX_FRAME_SIZE
	initWin  int64  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	connWin  int64  // connection-level send window
	unacked  int64  // received DATA bytes not yet returned with a WINDOW_UPDATE
	goaway   bool   // the server sent GOAWAY: no new streams
	settings bool   // the first SETTINGS arrived
	err      error  // set once: why the connection ended
	// housekeeping state, guarded by mu
	lastFrames uint64
	silent     time.Duration // without a frame read
	idle       time.Duration // without a stream
	pingOut    bool
}

// wbuf collects the Framer's output: each Write is one frame.
type wbuf struct{ b []byte }

func (w *wbuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// hbuf collects the HPACK encoder's output for one header block.
type hbuf struct{ b []byte }

func (h *hbuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

func newConn(cl *Client, p *pool, nc net.Conn) *conn {
	cn := &conn{
		cl: cl, p: p, nc: nc,
		ready:    make(chan struct{}),
		closed:   make(chan struct{}),
		kick:     make(chan struct{}, 1),
		streams:  make(map[uint32]*stream),
		nextID:   1,
		maxFrame: 16 << 10,
		initWin:  65535,
		connWin:  65535,
	}
	cn.limit.Store(100) // RFC 9113 recommends at least 100; the real one comes with SETTINGS
	cn.fr = http2.NewFramer(nil, bufio.NewReaderSize(nc, clientReadBuffer))
	cn.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cn.fr.MaxHeaderListSize = clientMaxHeaderList
	cn.fr.SetReuseFrames()
	cn.fw = http2.NewFramer(&cn.wb, nil)
	cn.henc = hpack.NewEncoder(&cn.hbuf)
	return cn
}

// start queues the connection preface, our SETTINGS and the connection window, and writes
// them. The caller then runs readLoop and housekeep and waits for ready.
func (cn *conn) start() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.wb.b = append(cn.wb.b, http2.ClientPreface...)
	_ = cn.fw.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: clientStreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: clientMaxHeaderList},
	)
	_ = cn.fw.WriteWindowUpdate(0, clientConnWindow-65535)
	cn.writeNowLocked()
	return cn.err
}

// usable reports whether pick may offer the connection a new stream.
func (cn *conn) usable() bool {
	return !cn.unusable.Load() && uint32(cn.active.Load()) < cn.limit.Load()
}

// open starts a stream carrying body to tg and registers st for its answer. It fails with
// errStale when the connection cannot take it; the caller picks again.
func (cn *conn) open(st *stream, tg *target, body []byte, id string, meta plane.Meta) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil || cn.goaway || uint32(len(cn.streams)) >= cn.limit.Load() {
		return errStale
	}
	st.id = cn.nextID
	cn.nextID += 2
	if cn.nextID > maxStreamID {
		cn.goaway = true // no ids left: this stream is the last
		cn.unusable.Store(true)
	}
	st.done, st.status, st.body = false, 0, nil
	st.sendWin = cn.initWin
	st.pending = body

	cn.hbuf.b = cn.hbuf.b[:0]
	e := cn.henc
	_ = e.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	_ = e.WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
	_ = e.WriteField(hpack.HeaderField{Name: ":authority", Value: tg.authority})
	_ = e.WriteField(hpack.HeaderField{Name: ":path", Value: tg.path})
	_ = e.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/octet-stream"})
	_ = e.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	meta.Headers(id, func(k, v string) {
		// A value a server would refuse (CR, LF, …) is dropped rather than failing the request.
		if validHeaderValue(v) {
			// Per-request values would only churn the HPACK table: never index them.
			_ = e.WriteField(hpack.HeaderField{Name: k, Value: v, Sensitive: true})
		}
	})
	cn.writeHeadersLocked(st.id, len(body) == 0)
	cn.streams[st.id] = st
	cn.active.Add(1)
	cn.idle = 0
	cn.sendDataLocked(st)

	if !cn.writing {
		cn.writing = true
		// Let the other runnable senders queue their requests first, for as long as the
		// batch grows (a few rounds at most): one write then carries them all. With nothing
		// else runnable, Gosched returns at once, so an idle connection adds no latency.
		for range 4 {
			n := len(cn.wb.b)
			cn.mu.Unlock()
			runtime.Gosched()
			cn.mu.Lock()
			if len(cn.wb.b) == n {
				break
			}
		}
		cn.flushLocked()
		cn.writing = false
	}
	return nil
}

// writeHeadersLocked frames the encoded header block in hbuf: HEADERS, then CONTINUATION
// frames when it exceeds the server's frame size.
func (cn *conn) writeHeadersLocked(id uint32, endStream bool) {
	block := cn.hbuf.b
	max := int(cn.maxFrame)
	first := block[:min(len(block), max)]
	block = block[len(first):]
	_ = cn.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		frag := block[:min(len(block), max)]
		block = block[len(frag):]
		_ = cn.fw.WriteContinuation(id, len(block) == 0, frag)
	}
}

// sendDataLocked frames as much of st's pending body as the flow-control windows allow, and
// keeps st in blocked while some remains.
func (cn *conn) sendDataLocked(st *stream) {
	for len(st.pending) > 0 {
		n := min(int64(len(st.pending)), int64(cn.maxFrame), cn.connWin, st.sendWin)
		if n <= 0 {
			break
		}
		chunk := st.pending[:n]
		st.pending = st.pending[n:]
		cn.connWin -= n
		st.sendWin -= n
		_ = cn.fw.WriteData(st.id, len(st.pending) == 0, chunk)
	}
	switch {
	case len(st.pending) > 0 && !st.blocked:
		st.blocked = true
		cn.blocked = append(cn.blocked, st)
	case len(st.pending) == 0 && st.blocked:
		cn.unblockLocked(st)
	}
}

func (cn *conn) unblockLocked(st *stream) {
	st.blocked = false
	if i := slices.Index(cn.blocked, st); i >= 0 {
		cn.blocked = slices.Delete(cn.blocked, i, i+1)
	}
}

// resumeLocked sends what the blocked streams can now send.
func (cn *conn) resumeLocked() {
	for _, st := range append([]*stream(nil), cn.blocked...) {
		if cn.connWin <= 0 {
			return
		}
		cn.sendDataLocked(st)
	}
}

// flushLocked writes batches until nothing is pending. It drops mu while writing so that
// other senders can queue the next batch meanwhile. The caller set writing.
func (cn *conn) flushLocked() {
	for len(cn.wb.b) > 0 && cn.err == nil {
		out := cn.wb.b
		cn.wb.b, cn.spare = cn.spare[:0], nil
		cn.mu.Unlock()
		_ = cn.nc.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
		_, err := cn.nc.Write(out)
		cn.mu.Lock()
		if cap(out) <= maxRetainWrite {
			cn.spare = out[:0]
		}
		if err != nil {
			cn.breakLocked(err)
		}
	}
	if cn.err != nil {
		cn.wb.b = nil
	}
}

// queuedLocked makes sure frames queued by the reader get written: by the sender writing
// now, else by the housekeeper (the reader must never block on a write: a server blocked
// writing to us would then never read our frames).
func (cn *conn) queuedLocked() {
	if !cn.writing && len(cn.wb.b) > 0 {
		select {
		case cn.kick <- struct{}{}:
		default:
		}
	}
}

// resetLocked queues RST_STREAM for id.
func (cn *conn) resetLocked(id uint32, code http2.ErrCode) {
	if cn.err == nil {
		_ = cn.fw.WriteRSTStream(id, code)
	}
}

// finishLocked forgets st and, unless the sender already gave up, hands it res.
func (cn *conn) finishLocked(st *stream, res result) {
	if st.done {
		return
	}
	st.done = true
	st.pending = nil
	if st.blocked {
		cn.unblockLocked(st)
	}
	delete(cn.streams, st.id)
	if n := cn.active.Add(-1); uint32(n+1) >= cn.limit.Load() {
		cn.p.signal() // it was full: a waiting sender may use it now
	}
	st.ch <- res
	if cn.goaway && len(cn.streams) == 0 {
		cn.breakLocked(errGoneAway)
	}
}

// abandon is the sender giving up on st (timeout, cancellation): the stream is reset. It
// returns the result when the answer won the race, with ok set.
func (cn *conn) abandon(st *stream) (res result, ok bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if st.done {
		return <-st.ch, true
	}
	cn.resetLocked(st.id, http2.ErrCodeCancel)
	cn.finishLocked(st, result{})
	<-st.ch // finishLocked delivered to the capacity-1 channel; nobody else reads it
	cn.writeNowLocked()
	return result{}, false
}

// breakLocked records why the connection ends and closes it; the reader then fails the
// streams left and removes the connection.
func (cn *conn) breakLocked(err error) {
	if cn.err == nil {
		cn.err = err
	}
	cn.unusable.Store(true)
	_ = cn.nc.Close()
}

// readLoop reads the server's frames until the connection ends.
func (cn *conn) readLoop() {
	defer cn.cl.wg.Done()
	var end error
	settings := false
	for end == nil {
		f, err := cn.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed response on one stream (bad header block, …): that stream fails.
				cn.mu.Lock()
				if st := cn.streams[se.StreamID]; st != nil {
					cn.resetLocked(se.StreamID, se.Code)
					cn.finishLocked(st, result{err: fmt.Errorf("malformed response: %w", se)})
					cn.queuedLocked()
				}
				cn.mu.Unlock()
				continue
			}
			end = err
			break
		}
		cn.frames.Add(1)
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			cn.onHeaders(f)
		case *http2.DataFrame:
			cn.onData(f)
		case *http2.SettingsFrame:
			end = cn.onSettings(f)
		case *http2.WindowUpdateFrame:
			end = cn.onWindowUpdate(f)
		case *http2.PingFrame:
			cn.onPing(f)
		case *http2.RSTStreamFrame:
			cn.onReset(f)
		case *http2.GoAwayFrame:
			cn.onGoAway(f)
		case *http2.PushPromiseFrame:
			end = http2.ConnectionError(http2.ErrCodeProtocol) // we sent SETTINGS_ENABLE_PUSH=0
		}
		if !settings {
			// RFC 9113 §3.4: the server's connection preface is a SETTINGS frame.
			if _, ok := f.(*http2.SettingsFrame); !ok && end == nil {
				end = errNoSettings
			}
			settings = true
		}
	}
	cn.shutdown(end)
}

func (cn *conn) onHeaders(f *http2.MetaHeadersFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	st := cn.streams[f.StreamID]
	if st == nil {
		return // a stream we reset or finished
	}
	if st.status == 0 {
		code, err := strconv.Atoi(f.PseudoValue("status"))
		if err != nil || code < 100 || code > 999 || code == http2StatusSwitching {
			cn.resetLocked(st.id, http2.ErrCodeProtocol)
			cn.finishLocked(st, result{err: fmt.Errorf("malformed response: :status %q", f.PseudoValue("status"))})
			cn.queuedLocked()
			return
		}
		if code < 200 {
			return // informational (100 Continue, 103 Early Hints): the final one follows
		}
		st.status = code
		if code < 300 {
			cn.finishLocked(st, result{status: code})
			if !f.StreamEnded() {
				cn.resetLocked(st.id, http2.ErrCodeCancel) // a body we have no use for
				cn.queuedLocked()
			}
			return
		}
	}
	if f.StreamEnded() { // the refusal without a body, or its trailers
		cn.finishLocked(st, result{status: st.status, body: st.body})
	}
}

// http2StatusSwitching (101) is forbidden in HTTP/2 (RFC 9113 §8.6).
const http2StatusSwitching = 101

func (cn *conn) onData(f *http2.DataFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.unacked += int64(f.Length)
	if cn.unacked >= clientConnWindow/2 {
		_ = cn.fw.WriteWindowUpdate(0, uint32(cn.unacked))
		cn.unacked = 0
		cn.queuedLocked()
	}
	st := cn.streams[f.StreamID]
	if st == nil {
		return
	}
	if st.status == 0 {
		cn.resetLocked(st.id, http2.ErrCodeProtocol)
		cn.finishLocked(st, result{err: errors.New("malformed response: DATA before HEADERS")})
		cn.queuedLocked()
		return
	}
	data := f.Data()
	if room := maxErrorBody - len(st.body); room > 0 {
		st.body = append(st.body, data[:min(room, len(data))]...)
	}
	switch {
	case f.StreamEnded():
		cn.finishLocked(st, result{status: st.status, body: st.body})
	case len(st.body) >= maxErrorBody:
		// Enough of the refusal to report it; the rest would only cost window.
		cn.finishLocked(st, result{status: st.status, body: st.body})
		cn.resetLocked(st.id, http2.ErrCodeCancel)
		cn.queuedLocked()
	}
}

func (cn *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cn.limit.Store(s.Val)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - cn.initWin
			cn.initWin = int64(s.Val)
			for _, st := range cn.streams {
				st.sendWin += delta
			}
		case http2.SettingMaxFrameSize:
			cn.maxFrame = s.Val
		case http2.SettingHeaderTableSize:
			cn.henc.SetMaxDynamicTableSize(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_ = cn.fw.WriteSettingsAck()
	cn.resumeLocked()
	cn.queuedLocked()
	if !cn.settings {
		cn.settings = true
		close(cn.ready)
	}
	if cn.usable() {
		cn.p.signal() // the limit may have grown
	}
	return nil
}

func (cn *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if f.StreamID == 0 {
		cn.connWin += int64(f.Increment)
		if cn.connWin > maxStreamID {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if st := cn.streams[f.StreamID]; st != nil {
		st.sendWin += int64(f.Increment)
		if st.sendWin > maxStreamID {
			cn.resetLocked(st.id, http2.ErrCodeFlowControl)
			cn.finishLocked(st, result{err: errors.New("server overflowed the stream's flow-control window")})
		}
	}
	cn.resumeLocked()
	cn.queuedLocked()
	return nil
}

func (cn *conn) onPing(f *http2.PingFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if f.IsAck() {
		cn.pingOut = false
		return
	}
	if cn.err == nil {
		_ = cn.fw.WritePing(true, f.Data)
		cn.queuedLocked()
	}
}

func (cn *conn) onReset(f *http2.RSTStreamFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	st := cn.streams[f.StreamID]
	if st == nil {
		return
	}
	switch {
	case st.status != 0:
		// A refusal whose body was cut short: report what arrived.
		cn.finishLocked(st, result{status: st.status, body: st.body})
	case f.ErrCode == http2.ErrCodeRefusedStream:
		cn.finishLocked(st, result{err: fmt.Errorf("stream refused by the server"), unprocessed: true})
	default:
		cn.finishLocked(st, result{err: fmt.Errorf("stream reset by the server: %v", f.ErrCode)})
	}
}

func (cn *conn) onGoAway(f *http2.GoAwayFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.goaway = true
	cn.unusable.Store(true)
	for id, st := range cn.streams {
		if id > f.LastStreamID {
			cn.finishLocked(st, result{err: fmt.Errorf("server going away (%v)", f.ErrCode), unprocessed: true})
		}
	}
	if len(cn.streams) == 0 {
		cn.breakLocked(errGoneAway)
	}
	cn.p.signal() // senders waiting for room should dial instead
}

// housekeep writes what the reader queued and runs the keep-alive and idle checks, until the
// connection ends.
func (cn *conn) housekeep() {
	defer cn.cl.wg.Done()
	tick := time.NewTicker(housekeepingTick)
	defer tick.Stop()
	for {
		select {
		case <-cn.closed:
			return
		case <-cn.kick:
			cn.mu.Lock()
			cn.writeNowLocked()
			cn.mu.Unlock()
		case <-tick.C:
			cn.checkLiveness()
		}
	}
}

// checkLiveness pings a connection that went silent and drops it when the ping stays
// unanswered, so a vanished worker does not hold requests; and closes one idle too long.
func (cn *conn) checkLiveness() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return
	}
	if n := cn.frames.Load(); n != cn.lastFrames {
		cn.lastFrames, cn.silent, cn.pingOut = n, 0, false
	} else {
		cn.silent += housekeepingTick
	}
	if len(cn.streams) == 0 {
		cn.idle += housekeepingTick
	} else {
		cn.idle = 0
	}
	switch {
	case cn.idle >= clientIdleTimeout:
		cn.unusable.Store(true)
		_ = cn.fw.WriteGoAway(0, http2.ErrCodeNo, nil)
		cn.writeNowLocked()
		cn.breakLocked(errIdle)
	case cn.pingOut && cn.silent >= clientPingAfter+clientPingTimeout:
		cn.breakLocked(fmt.Errorf("no answer to a ping within %v", clientPingTimeout))
	case !cn.pingOut && cn.silent >= clientPingAfter:
		cn.pingOut = true
		_ = cn.fw.WritePing(false, [8]byte{'r', 'e', 'q', 'p', 'l', 'a', 'n', 'e'})
		cn.writeNowLocked()
	}
}

// writeNowLocked writes what is queued unless a sender is writing (it will).
func (cn *conn) writeNowLocked() {
	if !cn.writing {
		cn.writing = true
		cn.flushLocked()
		cn.writing = false
	}
}

// shutdown ends the connection: the first recorded error wins (Close, a write failure or the
// housekeeper's, recorded before the reader noticed); every stream left gets it.
func (cn *conn) shutdown(err error) {
	cn.mu.Lock()
	cn.breakLocked(err)
	for _, st := range cn.streams {
		cn.finishLocked(st, result{err: cn.err})
	}
	cn.mu.Unlock()
	close(cn.closed)
	cn.cl.remove(cn)
}

// errClientClosed ends the connections of a closed Client.
var errClientClosed = errors.New("client closed")
