package http2

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
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
	// maxStreamID is the largest stream id; a connection that used them all takes no more.
	maxStreamID = 1<<31 - 1
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
	sendState             // guarded by conn.mu
	ch        chan result // capacity 1: the conn never blocks delivering
	timer     *time.Timer // the sender's acknowledgement timeout, reused with the stream

	// guarded by conn.mu
	done   bool   // finished: result delivered (or the sender gave up) and forgotten
	status int    // final status once its HEADERS arrived
	body   []byte // refusal body collected so far
}

// conn is one HTTP/2 connection to a worker.
type conn struct {
	link
	cl *Client
	p  *pool
	fr *http2.Framer // read side, owned by readLoop

	active   atomic.Int32  // open streams: pick's load figure
	limit    atomic.Uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	unusable atomic.Bool   // broken or going away: pick skips it
	ready    chan struct{} // closed once the server's first SETTINGS arrived

	// guarded by mu
	streams  map[uint32]*stream
	nextID   uint32
	goaway   bool // the server sent GOAWAY: no new streams
	settings bool // the first SETTINGS arrived
	idle     time.Duration
}

func newConn(cl *Client, p *pool, nc net.Conn) *conn {
	cn := &conn{cl: cl, p: p, ready: make(chan struct{}), streams: make(map[uint32]*stream), nextID: 1}
	cn.link.init(nc, clientWriteTimeout, clientConnWindow)
	cn.limit.Store(100) // RFC 9113 recommends at least 100; the real one comes with SETTINGS
	cn.fr = http2.NewFramer(nil, bufio.NewReaderSize(nc, clientReadBuffer))
	cn.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cn.fr.MaxHeaderListSize = clientMaxHeaderList
	// We advertise no SETTINGS_MAX_FRAME_SIZE, so the server's frames stay within the default:
	// a larger one is a protocol error (and an HTTP/1.1 answer reads as one), not a buffer.
	cn.fr.SetMaxReadFrameSize(defaultFrame)
	cn.fr.SetReuseFrames()
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
	_ = cn.fw.WriteWindowUpdate(0, clientConnWindow-defaultWindow)
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
	st.blocked = false

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
	cn.sendDataLocked(&st.sendState)

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
	if len(st.pending) > 0 && res.status != 0 {
		// Answered before its body was all sent: end the stream, which would otherwise stay
		// open on the server, holding one of its concurrent streams.
		cn.resetLocked(st.id, http2.ErrCodeCancel)
		cn.queuedLocked()
	}
	cn.unblockLocked(&st.sendState)
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
	cn.unusable.Store(true)
	cn.link.breakLocked(err)
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
	if err := cn.receivedLocked(int64(f.Length)); err != nil {
		cn.breakLocked(err)
		return
	}
	cn.releaseLocked(int64(f.Length)) // at most maxErrorBody per stream is kept
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
		if s.ID == http2.SettingMaxConcurrentStreams {
			cn.limit.Store(s.Val)
		}
		return cn.settingLocked(s, cn.eachSend)
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

// eachSend lists the open streams' send states.
func (cn *conn) eachSend(yield func(*sendState)) {
	for _, st := range cn.streams {
		yield(&st.sendState)
	}
}

func (cn *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	var ss *sendState
	st := cn.streams[f.StreamID]
	if st != nil {
		ss = &st.sendState
	}
	overflowed, err := cn.windowLocked(f, ss)
	if overflowed {
		cn.resetLocked(st.id, http2.ErrCodeFlowControl)
		cn.finishLocked(st, result{err: errors.New("server overflowed the stream's flow-control window")})
		cn.queuedLocked()
	}
	return err
}

func (cn *conn) onPing(f *http2.PingFrame) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.pingLocked(f)
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

// housekeep runs the connection's housekeeper until the connection ends.
func (cn *conn) housekeep() {
	defer cn.cl.wg.Done()
	cn.link.housekeep(cn.tick)
}

// tick pings a connection that went silent and drops it when the ping stays unanswered, so
// a vanished worker does not hold requests; and closes one idle too long.
func (cn *conn) tick() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return
	}
	if len(cn.streams) == 0 {
		cn.idle += housekeepingTick
	} else {
		cn.idle = 0
	}
	if cn.idle >= clientIdleTimeout {
		cn.unusable.Store(true)
		_ = cn.fw.WriteGoAway(0, http2.ErrCodeNo, nil)
		cn.writeNowLocked()
		cn.breakLocked(errIdle)
		return
	}
	cn.keepAliveLocked(clientPingAfter, clientPingTimeout)
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
