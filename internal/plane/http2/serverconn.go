package http2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// The Server's h2c connections. net/http accepts every connection, serves HTTP/1.1 itself and
// hands over those that open with the HTTP/2 preface (http.Server.TLSNextProto's
// "unencrypted_http2" entry, which net/http and x/net/http2 use between them), the preface
// read. serverConn serves them with golang.org/x/net/http2's Framer and HPACK coder.
//
// Why not net/http's HTTP/2 server: it runs each request's handler on a goroutine of its own
// (whose stack then grows twice) and writes each response from yet another goroutine, one
// flush per response. Admitting a request never blocks (plane.Handler's contract), so here
// the connection's reader admits each request as its body completes, and the answers of a
// burst of requests leave in one write.

const (
	// serverMaxHeaderList bounds a request's decoded headers (SETTINGS_MAX_HEADER_LIST_SIZE).
	serverMaxHeaderList = 64 << 10
	// serverPingTimeout drops a connection that does not answer a keep-alive ping.
	serverPingTimeout = 15 * time.Second
	// maxBacklog bounds the answers queued for a peer that does not read them.
	maxBacklog = 4 << 20
	// quietDrop: the rest of a body answered early is dropped as it arrives when the request
	// declared at most that much; a larger (or undeclared) one is stopped with RST_STREAM.
	quietDrop = 64 << 10
)

var (
	errServerClosing = errors.New("server closing")
	errServerIdle    = errors.New("idle connection closed")
)

// h2conns tracks the Server's h2c connections, for its graceful shutdown.
type h2conns struct {
	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
	wg     sync.WaitGroup // each connection's serve and housekeeper
}

// nextProto is the http.Server's TLSNextProto: h2c connections go to serveH2C. The "h2"
// entry is never called (the Server serves no TLS); its presence keeps net/http from
// installing its own HTTP/2 server over ours.
func (s *Server) nextProto() map[string]func(*http.Server, *tls.Conn, http.Handler) {
	return map[string]func(*http.Server, *tls.Conn, http.Handler){
		"unencrypted_http2": s.serveH2C,
		"h2":                func(_ *http.Server, c *tls.Conn, _ http.Handler) { _ = c.Close() },
	}
}

// serveH2C serves one h2c connection until it ends; net/http closes it afterwards.
func (s *Server) serveH2C(_ *http.Server, tc *tls.Conn, _ http.Handler) {
	// net/http wraps the plain connection in a *tls.Conn that was never used for TLS.
	u, ok := tc.NetConn().(interface{ UnencryptedNetConn() net.Conn })
	if !ok {
		_ = tc.Close()
		return
	}
	nc := u.UnencryptedNetConn()
	sc := newServerConn(s, nc)
	hs := &s.h2
	hs.mu.Lock()
	if hs.closed {
		hs.mu.Unlock()
		_ = nc.Close()
		return
	}
	hs.conns[sc] = struct{}{}
	hs.wg.Add(2)
	hs.mu.Unlock()
	go func() {
		defer hs.wg.Done()
		sc.link.housekeep(sc.tick)
	}()
	sc.serve()
	hs.mu.Lock()
	delete(hs.conns, sc)
	hs.mu.Unlock()
	hs.wg.Done()
}

// shutdown asks every h2c connection to finish: GOAWAY, then close once the requests being
// read are answered. Server.Close calls it before net/http's Shutdown, which then waits for
// those connections; later ones are refused.
func (hs *h2conns) shutdown() {
	hs.mu.Lock()
	hs.closed = true
	conns := make([]*serverConn, 0, len(hs.conns))
	for sc := range hs.conns {
		conns = append(conns, sc)
	}
	hs.mu.Unlock()
	for _, sc := range conns {
		sc.goAway()
	}
}

// closeAll closes every h2c connection and waits for their goroutines.
func (hs *h2conns) closeAll() {
	hs.mu.Lock()
	hs.closed = true
	for sc := range hs.conns {
		sc.mu.Lock()
		sc.breakLocked(errServerClosing)
		sc.mu.Unlock()
	}
	hs.mu.Unlock()
	hs.wg.Wait()
}

// serverConn is one h2c connection.
type serverConn struct {
	link
	s  *Server
	rt *router
	br *bufio.Reader
	fr *http2.Framer // read side, owned by serve

	// guarded by mu
	streams   map[uint32]*sstream
	maxID     uint32 // the highest stream id the client opened
	goaway    bool   // GOAWAY sent: no new streams; close when the last one ends
	idle      time.Duration
	resetsDue bool // settleLocked left streams to reset at the end of this burst of frames
	// resets are the streams we reset lately: frames the client sent before it saw the reset
	// are ignored (RFC 9113 §5.1) rather than taken for a reused stream id.
	resets [32]uint32
	nreset int
}

// sstream is one request being received, or being answered.
type sstream struct {
	sendState
	method, path string // path without its query, unescaped
	rte          route  // the route, once check passed
	cl           int64  // Content-Length, -1 when absent
	body         []byte // received so far
	held         int64  // DATA bytes held for body, not yet returned to the connection window
	recvLeft     int64  // our stream window left
	meta         [len(plane.MetaHeaders)]string
	start        time.Time     // for the observer
	age          time.Duration // since its HEADERS, in housekeeping ticks
	answered     bool          // the answer is queued; the body (if any) still arriving is dropped
	open         bool          // the client has not ended its side: body still to come
}

func (st *sstream) header(name string) string {
	for i, h := range plane.MetaHeaders {
		if h == name {
			return st.meta[i]
		}
	}
	return ""
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	sc := &serverConn{s: s, rt: &s.rt, streams: make(map[uint32]*sstream)}
	sc.link.init(nc, s.opts.ReadTimeout, connWindow(s.rt.max))
	// A read buffer: a burst of requests then costs one read, and Buffered tells when the
	// burst ends (net/http's own HTTP/2 server reads each frame with two unbuffered reads).
	sc.br = bufio.NewReaderSize(nc, serverReadBuffer)
	sc.fr = http2.NewFramer(nil, sc.br)
	sc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	sc.fr.MaxHeaderListSize = serverMaxHeaderList
	sc.fr.SetMaxReadFrameSize(readFrameSize)
	sc.fr.SetReuseFrames()
	return sc
}

// connWindow is a connection's receive window for requests of up to max bytes. It bounds the
// request bodies the connection holds (see onData), so it must fit one of the largest size.
func connWindow(maxMessage int) int64 {
	return min(max(maxWindow, int64(maxMessage)+streamWindow), maxFlowWindow)
}

// serve runs the connection: our SETTINGS, then the client's frames until it ends.
func (sc *serverConn) serve() {
	sc.mu.Lock()
	_ = sc.fw.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: readFrameSize},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: serverMaxHeaderList},
	)
	_ = sc.fw.WriteWindowUpdate(0, uint32(sc.recvWin-defaultWindow))
	sc.writeNowLocked()
	sc.mu.Unlock()

	// The client's SETTINGS follows its preface at once (RFC 9113 §3.4).
	_ = sc.nc.SetReadDeadline(time.Now().Add(sc.s.opts.ReadHeaderTimeout))
	end := sc.readFrames()
	sc.mu.Lock()
	sc.breakLocked(end)
	for _, st := range sc.streams {
		sc.unblockLocked(&st.sendState)
	}
	clear(sc.streams)
	sc.mu.Unlock()
	close(sc.closed)
	if !errors.Is(end, errServerClosing) && !errors.Is(end, errServerIdle) && !errors.Is(end, net.ErrClosed) {
		sc.rt.log.LogAttrs(context.Background(), slog.LevelDebug, "http request plane: h2c connection ended",
			slog.String("remote", sc.nc.RemoteAddr().String()), slog.Any("err", end))
	}
}

// readFrames reads the client's frames until the connection ends, and returns why.
func (sc *serverConn) readFrames() error {
	first := true
	for {
		f, err := sc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) && !first {
				// A malformed request (bad header block, pseudo-headers, …): that stream ends,
				// its id used.
				sc.mu.Lock()
				if se.StreamID%2 == 1 && se.StreamID > sc.maxID {
					sc.maxID = se.StreamID
				}
				sc.forgetLocked(se.StreamID)
				sc.rstLocked(se.StreamID, se.Code)
				sc.mu.Unlock()
				continue
			}
			if first {
				err = http2.ConnectionError(http2.ErrCodeProtocol) // not starting with SETTINGS
			}
			return sc.goAwayOn(err)
		}
		sc.frames.Add(1)
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return sc.goAwayOn(http2.ConnectionError(http2.ErrCodeProtocol))
			}
			_ = sc.nc.SetReadDeadline(time.Time{})
			first = false
		}
		sc.mu.Lock()
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			err = sc.onHeaders(f)
		case *http2.DataFrame:
			err = sc.onData(f)
		case *http2.SettingsFrame:
			err = sc.onSettings(f)
		case *http2.WindowUpdateFrame:
			if f.StreamID > sc.maxID {
				err = http2.ConnectionError(http2.ErrCodeProtocol) // on an idle stream
				break
			}
			var st *sendState
			if s := sc.streams[f.StreamID]; s != nil {
				st = &s.sendState
			}
			var overflowed bool
			hadBlocked := len(sc.blocked) > 0
			overflowed, err = sc.windowLocked(f, st)
			if overflowed {
				sc.forgetLocked(f.StreamID)
				sc.rstLocked(f.StreamID, http2.ErrCodeFlowControl)
			}
			if hadBlocked {
				sc.sweepLocked() // answers the window let out
			}
		case *http2.PingFrame:
			sc.pingLocked(f)
		case *http2.RSTStreamFrame:
			if f.StreamID > sc.maxID {
				err = http2.ConnectionError(http2.ErrCodeProtocol) // on an idle stream
				break
			}
			sc.forgetLocked(f.StreamID)
		case *http2.GoAwayFrame:
			// The client will open no more streams; the connection ends with its last one.
			sc.goaway = true
		case *http2.PushPromiseFrame:
			err = http2.ConnectionError(http2.ErrCodeProtocol) // clients cannot push
		}
		if err == nil && len(sc.wb.b) > maxBacklog {
			err = errors.New("peer does not read its answers")
		}
		if err == nil && sc.goaway && len(sc.streams) == 0 {
			sc.drainLocked()
			err = errServerClosing
		}
		if err == nil && sc.br.Buffered() == 0 {
			// About to wait for the peer: write what the frames read so far produced, all
			// the answers of a burst in one write.
			sc.resetDueLocked()
			sc.queuedLocked()
		}
		sc.mu.Unlock()
		if err != nil {
			return sc.goAwayOn(err)
		}
	}
}

// goAwayOn tells the peer why the connection ends when that is a protocol matter, and
// returns err.
func (sc *serverConn) goAwayOn(err error) error {
	var ce http2.ConnectionError
	if errors.Is(err, http2.ErrFrameTooLarge) {
		ce = http2.ConnectionError(http2.ErrCodeFrameSize)
		err = fmt.Errorf("%w: %w", ce, err)
	}
	if errors.As(err, &ce) {
		sc.mu.Lock()
		if sc.err == nil {
			_ = sc.fw.WriteGoAway(sc.maxID, http2.ErrCode(ce), nil)
			sc.drainLocked()
		}
		sc.mu.Unlock()
	}
	return err
}

func (sc *serverConn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if st := sc.streams[id]; st != nil {
		// Trailers: they end the body. A HEADERS without END_STREAM here is malformed.
		if !f.StreamEnded() {
			sc.forgetLocked(id)
			sc.rstLocked(id, http2.ErrCodeProtocol)
			return nil
		}
		st.open = false
		sc.completeLocked(st)
		sc.settleLocked(st)
		return nil
	}
	if id%2 == 1 && id <= sc.maxID && len(f.PseudoFields()) == 0 && sc.resetLately(id) {
		return nil // trailers sent before our RST_STREAM reached the client
	}
	if id%2 == 0 || id <= sc.maxID {
		// A stream id reused or from the server's range (RFC 9113 §5.1.1).
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	sc.maxID = id
	if sc.goaway {
		return nil // past our GOAWAY: ignored, the client retries elsewhere
	}
	if len(sc.streams) >= maxStreams {
		sc.rstLocked(id, http2.ErrCodeRefusedStream)
		return nil
	}
	if f.PseudoValue("method") == "" || f.PseudoValue("path") == "" || f.PseudoValue("scheme") == "" {
		// Malformed (RFC 9113 §8.3.1).
		sc.rstLocked(id, http2.ErrCodeProtocol)
		return nil
	}
	st := &sstream{
		method:   f.PseudoValue("method"),
		path:     requestPath(f.PseudoValue("path")),
		cl:       -1,
		open:     !f.StreamEnded(),
		recvLeft: streamWindow,
		start:    sc.rt.now(),
	}
	st.id = id
	st.sendWin = sc.initWin
	for _, hf := range f.RegularFields() {
		if hf.Name == "content-length" {
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || st.cl >= 0 && st.cl != n {
				sc.rstLocked(id, http2.ErrCodeProtocol) // malformed (RFC 9113 §8.1.1)
				return nil
			}
			st.cl = n
			continue
		}
		for i, h := range plane.MetaHeaders {
			if hf.Name == h && st.meta[i] == "" {
				st.meta[i] = hf.Value
			}
		}
	}
	sc.streams[id] = st
	sc.idle = 0
	if f.Truncated {
		// Beyond SETTINGS_MAX_HEADER_LIST_SIZE: answered as net/http does.
		sc.answerLocked(st, &refusal{status: http.StatusRequestHeaderFieldsTooLarge, code: plane.CodeBadRequest, start: st.start})
		sc.settleLocked(st)
		return nil
	}
	rte, ref := sc.rt.check(st.method, st.path, st.cl, st.start)
	st.rte = rte
	if ref != nil {
		sc.answerLocked(st, ref)
	} else if f.StreamEnded() {
		sc.completeLocked(st)
	}
	sc.settleLocked(st)
	return nil
}

func (sc *serverConn) onData(f *http2.DataFrame) error {
	n := int64(f.Length)
	if err := sc.receivedLocked(n); err != nil {
		return err
	}
	st := sc.streams[f.StreamID]
	if st == nil {
		if f.StreamID > sc.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // DATA on an idle stream
		}
		sc.releaseLocked(n) // a stream reset or answered: dropped
		return nil
	}
	st.recvLeft -= n
	if st.recvLeft < 0 {
		sc.releaseLocked(n)
		sc.forgetLocked(st.id)
		sc.rstLocked(st.id, http2.ErrCodeFlowControl)
		return nil
	}
	if f.StreamEnded() {
		st.open = false
	}
	if st.answered {
		sc.releaseLocked(n) // refused early: what still arrives is dropped
		sc.settleLocked(st)
		return nil
	}
	data := f.Data()
	var tooBig error
	if had := len(st.body); had < codec.PrefixLen && had+len(data) >= codec.PrefixLen {
		// A frame declaring more than max is refused as soon as its prefix is in, with the
		// size it declares (as readBody does).
		var prefix [codec.PrefixLen]byte
		copy(prefix[copy(prefix[:], st.body):], data)
		if _, _, err := codec.SplitFrame(prefix[:], sc.rt.max); errors.Is(err, codec.ErrMessageTooLarge) {
			tooBig = err
		}
	}
	switch {
	case tooBig != nil:
	case len(st.body)+len(data) > sc.rt.max:
		// The true size is unknown yet; max+1 is a lower bound (as readBody reports it).
		tooBig = tooLarge(uint64(sc.rt.max)+1, sc.rt.max)
	case st.body == nil && f.StreamEnded():
		st.body = append(make([]byte, 0, len(data)), data...) // the usual case: the body whole, allocated once
	default:
		st.body = append(st.body, data...)
	}
	if tooBig == nil {
		// The body's bytes come back to the connection window when it is admitted or
		// dropped: the window bounds what one connection makes the server hold.
		st.held += int64(len(data))
		sc.releaseLocked(n - int64(len(data))) // padding
	}
	if tooBig != nil {
		sc.releaseLocked(n)
		ref := sc.rt.bodyRefusal(tooBig, st.rte, st.start)
		sc.answerLocked(st, ref)
		sc.settleLocked(st)
		return nil
	}
	if f.StreamEnded() {
		sc.completeLocked(st)
		sc.settleLocked(st)
		return nil
	}
	if used := streamWindow - st.recvLeft; used >= streamWindow/2 {
		_ = sc.fw.WriteWindowUpdate(st.id, uint32(used))
		st.recvLeft = streamWindow
		sc.queuedLocked()
	}
	return nil
}

// completeLocked admits a request whose body is complete and queues its answer.
func (sc *serverConn) completeLocked(st *sstream) {
	if st.answered {
		return
	}
	// Routed and checked at its HEADERS (onHeaders answers what check refuses).
	var ref *refusal
	if st.cl >= 0 && int64(len(st.body)) != st.cl {
		// RFC 9113 §8.1.1: Content-Length must match the DATA; answered as net/http's reader
		// would report a short body.
		err := &codec.Error{Code: codec.CodeIO, Detail: "request body length does not match Content-Length", Err: errors.New("content-length mismatch")}
		ref = sc.rt.bodyRefusal(err, st.rte, st.start)
	}
	if ref == nil {
		ref = sc.rt.admit(st.rte, st.body, st.header, st.start)
	}
	sc.dropBodyLocked(st) // a Request owns it now, or it is dropped
	if ref == nil {
		sc.hbuf.b = sc.hbuf.b[:0]
		_ = sc.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "202"})
		sc.writeHeadersLocked(st.id, true)
		st.answered = true
		delete(sc.streams, st.id)
		return
	}
	sc.answerLocked(st, ref)
}

// answerLocked queues a refusal: status, plain-text body.
func (sc *serverConn) answerLocked(st *sstream, ref *refusal) {
	sc.rt.refused(ref, st.method, st.path)
	st.answered = true
	sc.dropBodyLocked(st)
	sc.hbuf.b = sc.hbuf.b[:0]
	e := sc.henc
	_ = e.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(ref.status)})
	if ref.allow {
		_ = e.WriteField(hpack.HeaderField{Name: "allow", Value: http.MethodPost})
	}
	_ = e.WriteField(hpack.HeaderField{Name: "content-type", Value: textPlain})
	_ = e.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(ref.text))})
	sc.writeHeadersLocked(st.id, ref.text == "")
	if ref.text != "" {
		st.pending = []byte(ref.text)
		sc.sendDataLocked(&st.sendState)
	}
}

// dropBodyLocked lets go of st's body (admitted or refused) and returns its bytes to the
// connection window.
func (sc *serverConn) dropBodyLocked(st *sstream) {
	st.body = nil
	if st.held > 0 {
		sc.releaseLocked(st.held)
		st.held = 0
	}
}

// rstLocked queues RST_STREAM for id and remembers it, so that frames the client sent before
// it saw it are ignored.
func (sc *serverConn) rstLocked(id uint32, code http2.ErrCode) {
	_ = sc.fw.WriteRSTStream(id, code)
	sc.resets[sc.nreset%len(sc.resets)] = id
	sc.nreset++
	sc.queuedLocked()
}

// resetLately reports whether id is among the streams we reset lately.
func (sc *serverConn) resetLately(id uint32) bool {
	for _, r := range sc.resets[:min(sc.nreset, len(sc.resets))] {
		if r == id {
			return true
		}
	}
	return false
}

// settleLocked forgets st once its answer is out and the client's side ended. A client still
// sending a body we answered early is asked to stop with RST_STREAM(NO_ERROR) (RFC 9113 §8.1)
// when the rest may be large, at the end of the burst of frames being read (its END_STREAM
// may be right behind); the rest of a short body is dropped as it arrives, as some clients
// (curl 7.88) take such a reset for an error.
func (sc *serverConn) settleLocked(st *sstream) {
	if !st.answered || st.blocked || sc.streams[st.id] != st {
		return
	}
	switch {
	case !st.open:
		delete(sc.streams, st.id)
	case !st.quiet():
		sc.resetsDue = true
	}
}

// quiet reports whether the rest of st's body is dropped rather than stopped.
func (st *sstream) quiet() bool { return st.cl >= 0 && st.cl <= quietDrop }

// resetDueLocked resets the streams settleLocked left for the end of the burst.
func (sc *serverConn) resetDueLocked() {
	if !sc.resetsDue {
		return
	}
	sc.resetsDue = false
	for id, st := range sc.streams {
		if st.answered && !st.blocked && st.open && !st.quiet() {
			sc.rstLocked(id, http2.ErrCodeNo)
			delete(sc.streams, id)
		}
	}
}

// sweepLocked settles every stream: after flow control let answers out.
func (sc *serverConn) sweepLocked() {
	for _, st := range sc.streams {
		sc.settleLocked(st)
	}
}

// forgetLocked drops a stream (reset by either side).
func (sc *serverConn) forgetLocked(id uint32) {
	if st := sc.streams[id]; st != nil {
		sc.dropBodyLocked(st)
		sc.unblockLocked(&st.sendState)
		delete(sc.streams, id)
	}
}

func (sc *serverConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		return sc.settingLocked(s, func(yield func(*sendState)) {
			for _, st := range sc.streams {
				yield(&st.sendState)
			}
		})
	})
	if err != nil {
		return err
	}
	_ = sc.fw.WriteSettingsAck()
	sc.resumeLocked()
	sc.sweepLocked()
	sc.queuedLocked()
	return nil
}

// goAway starts the graceful close: no new streams, close once the open ones are answered.
func (sc *serverConn) goAway() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.goaway || sc.err != nil {
		return
	}
	sc.goaway = true
	_ = sc.fw.WriteGoAway(sc.maxID, http2.ErrCodeNo, nil)
	if len(sc.streams) == 0 {
		sc.drainLocked()
		sc.breakLocked(errServerClosing)
		return
	}
	sc.queuedLocked()
}

// tick runs once per housekeeping tick: requests whose body is overdue are refused, an idle
// connection is closed, a silent one pinged.
func (sc *serverConn) tick() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.err != nil {
		return
	}
	for id, st := range sc.streams {
		st.age += housekeepingTick
		if st.age <= sc.s.opts.ReadTimeout {
			continue
		}
		if !st.answered {
			err := &codec.Error{Code: codec.CodeIO, Detail: fmt.Sprintf("request body not received within %v", sc.s.opts.ReadTimeout), Err: context.DeadlineExceeded}
			sc.answerLocked(st, sc.rt.bodyRefusal(err, st.rte, st.start))
		}
		if st.open && !st.blocked {
			sc.rstLocked(id, http2.ErrCodeNo) // the rest of its body is overdue too
			delete(sc.streams, id)
		}
	}
	sc.sweepLocked()
	sc.resetDueLocked()
	if len(sc.streams) == 0 {
		sc.idle += housekeepingTick
	} else {
		sc.idle = 0
	}
	if sc.idle >= sc.s.opts.IdleTimeout {
		sc.goaway = true
		_ = sc.fw.WriteGoAway(sc.maxID, http2.ErrCodeNo, nil)
		sc.drainLocked()
		sc.breakLocked(errServerIdle)
		return
	}
	sc.writeNowLocked()
	sc.keepAliveLocked(sc.s.opts.IdleTimeout/2, serverPingTimeout)
}

// requestPath is the path of a :path pseudo-header, without its query, unescaped.
func requestPath(p string) string {
	if !strings.ContainsAny(p, "?%") {
		return p
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return p // routes nowhere: answered 404
	}
	return u.Path
}
