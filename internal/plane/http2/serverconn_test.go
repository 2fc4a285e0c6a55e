package http2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// Tests of the Server's own h2c connections (serverconn.go), driven by a raw client that
// writes whatever frames a test needs, legal or not, and records every frame the server sends.

const (
	scPath    = "/v1/dynamo/generate"
	scUnknown = "/v1/dynamo/nope"
	// scTooLarge is the 413 text for a 4096-byte Content-Length against a 1024-byte limit.
	scTooLarge = "Two Part Codec Error: Message size 4096 exceeds the maximum allowed size of 1024 bytes"
	// scLengthMismatch is the 400 text for a body that does not match its Content-Length.
	scLengthMismatch = "Two Part Codec Error: I/O error: request body length does not match Content-Length"
)

// scFrame is one frame the server sent, copied out of the Framer's buffers.
type scFrame struct {
	typ      http2.FrameType
	stream   uint32
	flags    http2.Flags
	code     http2.ErrCode // RST_STREAM, GOAWAY
	last     uint32        // GOAWAY's last stream id
	incr     uint32        // WINDOW_UPDATE
	ping     [8]byte
	settings []http2.Setting
	data     []byte
}

func (f scFrame) is(typ http2.FrameType, stream uint32) bool {
	return f.typ == typ && f.stream == stream
}

// scStream is what the server answered on one stream.
type scStream struct {
	status  string
	header  map[string]string
	body    []byte
	datas   int  // DATA frames
	ended   bool // END_STREAM seen
	reset   bool
	code    http2.ErrCode
	updates int // WINDOW_UPDATEs the server sent for it
}

// scConn is a raw h2c client of a Server. The test goroutine writes frames with its own Framer
// and HPACK encoder, and reads the server's frames through next, which records them and keeps
// the client's view of the flow-control windows.
type scConn struct {
	t    testing.TB
	nc   net.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer

	// autoWindow returns the connection window for the server's DATA as it arrives.
	autoWindow bool

	server   map[http2.SettingID]uint32 // the server's first SETTINGS
	maxFrame int64                      // the server's SETTINGS_MAX_FRAME_SIZE
	initWin  int64                      // the server's SETTINGS_INITIAL_WINDOW_SIZE
	connWin  int64                      // our connection send window
	sendWin  map[uint32]int64           // our stream send windows
	streams  map[uint32]*scStream
	frames   []scFrame // every frame read, in order
	readErr  error     // why reading ended
	pings    uint64
}

// dialSCRaw connects to s; nothing is written yet.
func dialSCRaw(t testing.TB, s *Server) *scConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	return newSCConn(t, nc)
}

// newSCConn makes a raw client of nc, closed when the test ends.
func newSCConn(t testing.TB, nc net.Conn) *scConn {
	t.Cleanup(func() { _ = nc.Close() })
	c := &scConn{
		t: t, nc: nc, autoWindow: true,
		server:   map[http2.SettingID]uint32{},
		maxFrame: defaultFrame, initWin: defaultWindow, connWin: defaultWindow,
		sendWin: map[uint32]int64{}, streams: map[uint32]*scStream{},
	}
	c.fr = http2.NewFramer(nc, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.AllowIllegalWrites = true // tests write illegal frames on purpose
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// dialSC connects to s, sends the preface and a SETTINGS frame, and reads the server's SETTINGS.
func dialSC(t testing.TB, s *Server, settings ...http2.Setting) *scConn {
	t.Helper()
	c := dialSCRaw(t, s)
	c.preface(settings...)
	c.await("the server's SETTINGS", func(f scFrame) bool {
		return f.typ == http2.FrameSettings && f.flags&http2.FlagSettingsAck == 0
	})
	return c
}

func (c *scConn) preface(settings ...http2.Setting) {
	c.t.Helper()
	c.writeDeadline()
	if _, err := io.WriteString(c.nc, http2.ClientPreface); err != nil {
		c.t.Fatalf("write preface: %v", err)
	}
	c.check("SETTINGS", c.fr.WriteSettings(settings...))
}

func (c *scConn) writeDeadline() { _ = c.nc.SetWriteDeadline(time.Now().Add(waitLimit)) }

// check fails the test on a write error; call it right after writing (it renews the deadline).
func (c *scConn) check(what string, err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("write %s: %v", what, err)
	}
	c.writeDeadline()
}

func (c *scConn) stream(id uint32) *scStream {
	st := c.streams[id]
	if st == nil {
		st = &scStream{}
		c.streams[id] = st
	}
	return st
}

// next reads one frame from the server and records it.
func (c *scConn) next(deadline time.Time) (scFrame, error) {
	if c.readErr != nil {
		return scFrame{}, c.readErr
	}
	_ = c.nc.SetReadDeadline(deadline)
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.readErr = err
		return scFrame{}, err
	}
	h := f.Header()
	ev := scFrame{typ: h.Type, stream: h.StreamID, flags: h.Flags}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			_ = f.ForeachSetting(func(s http2.Setting) error {
				ev.settings = append(ev.settings, s)
				return nil
			})
			c.applySettings(ev.settings)
		}
	case *http2.WindowUpdateFrame:
		ev.incr = f.Increment
		if f.StreamID == 0 {
			c.connWin += int64(f.Increment)
		} else {
			c.stream(f.StreamID).updates++
			if _, ok := c.sendWin[f.StreamID]; ok {
				c.sendWin[f.StreamID] += int64(f.Increment)
			}
		}
	case *http2.MetaHeadersFrame:
		st := c.stream(f.StreamID)
		if st.status == "" {
			st.status = f.PseudoValue("status")
			st.header = map[string]string{}
			for _, hf := range f.RegularFields() {
				st.header[hf.Name] = hf.Value
			}
		}
		st.ended = st.ended || f.StreamEnded()
	case *http2.DataFrame:
		ev.data = bytes.Clone(f.Data())
		st := c.stream(f.StreamID)
		st.body = append(st.body, ev.data...)
		st.datas++
		st.ended = st.ended || f.StreamEnded()
		if c.autoWindow && f.Length > 0 {
			_ = c.fr.WriteWindowUpdate(0, f.Length)
		}
	case *http2.RSTStreamFrame:
		ev.code = f.ErrCode
		st := c.stream(f.StreamID)
		st.reset, st.code = true, f.ErrCode
	case *http2.GoAwayFrame:
		ev.code, ev.last = f.ErrCode, f.LastStreamID
	case *http2.PingFrame:
		ev.ping = f.Data
	}
	c.frames = append(c.frames, ev)
	return ev, nil
}

func (c *scConn) applySettings(settings []http2.Setting) {
	first := len(c.server) == 0
	for _, s := range settings {
		if first {
			c.server[s.ID] = s.Val
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.initWin
			c.initWin = int64(s.Val)
			for id := range c.sendWin {
				c.sendWin[id] += delta
			}
		case http2.SettingMaxFrameSize:
			c.maxFrame = int64(s.Val)
		}
	}
}

// await returns the first frame, already read or still to come, that pred accepts.
func (c *scConn) await(what string, pred func(scFrame) bool) scFrame {
	c.t.Helper()
	for _, f := range c.frames {
		if pred(f) {
			return f
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		f, err := c.next(deadline)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v (frames so far: %s)", what, err, c.summary())
		}
		if pred(f) {
			return f
		}
	}
}

// until reads frames until cond holds.
func (c *scConn) until(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if _, err := c.next(deadline); err != nil {
			c.t.Fatalf("waiting for %s: %v (frames so far: %s)", what, err, c.summary())
		}
	}
}

// answer waits until stream id ended or was reset, and returns what the server sent on it.
func (c *scConn) answer(id uint32) *scStream {
	c.t.Helper()
	st := c.stream(id)
	c.until("the answer on stream "+strconv.Itoa(int(id)), func() bool { return st.ended || st.reset })
	return st
}

// awaitReset waits for a RST_STREAM on stream id and returns its code.
func (c *scConn) awaitReset(id uint32) http2.ErrCode {
	c.t.Helper()
	st := c.stream(id)
	c.until("RST_STREAM on stream "+strconv.Itoa(int(id)), func() bool { return st.reset })
	return st.code
}

// barrier sends a PING and reads until its ack: the server has then handled every frame
// written before, and written what they produced.
func (c *scConn) barrier() {
	c.t.Helper()
	c.pings++
	var data [8]byte
	copy(data[:], "bar"+strconv.FormatUint(c.pings, 10))
	c.check("PING", c.fr.WritePing(false, data))
	c.await("the PING ack", func(f scFrame) bool {
		return f.typ == http2.FramePing && f.flags&http2.FlagPingAck != 0 && f.ping == data
	})
}

// awaitEOF reads until the server closes the connection; a read timeout fails the test.
func (c *scConn) awaitEOF() {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if _, err := c.next(deadline); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after %v (frames: %s)", waitLimit, c.summary())
			}
			return
		}
	}
}

// expectGoAway waits for a GOAWAY with code, then for the connection to close.
func (c *scConn) expectGoAway(code http2.ErrCode) scFrame {
	c.t.Helper()
	f := c.await("GOAWAY", func(f scFrame) bool { return f.typ == http2.FrameGoAway })
	if f.code != code {
		c.t.Fatalf("GOAWAY %v, want %v", f.code, code)
	}
	c.awaitEOF()
	return f
}

// noGoAway fails the test if the server sent a GOAWAY.
func (c *scConn) noGoAway() {
	c.t.Helper()
	for _, f := range c.frames {
		if f.typ == http2.FrameGoAway {
			c.t.Fatalf("unexpected GOAWAY %v (last stream %d)", f.code, f.last)
		}
	}
}

func (c *scConn) summary() string {
	var b strings.Builder
	for i, f := range c.frames {
		if i == 40 {
			b.WriteString(" …")
			break
		}
		b.WriteString(" " + f.typ.String() + "/" + strconv.Itoa(int(f.stream)))
		if f.typ == http2.FrameRSTStream || f.typ == http2.FrameGoAway {
			b.WriteString("(" + f.code.String() + ")")
		}
	}
	return b.String()
}

// block encodes a header block from name, value pairs with the connection's encoder.
func (c *scConn) block(kv ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(c.hbuf.Bytes())
}

// headers writes a HEADERS frame (END_HEADERS set) from name, value pairs.
func (c *scConn) headers(id uint32, end bool, kv ...string) {
	c.t.Helper()
	block := c.block(kv...)
	c.check("HEADERS", c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: end, EndHeaders: true}))
	if _, ok := c.sendWin[id]; !ok {
		c.sendWin[id] = c.initWin
	}
}

// send writes b as DATA on stream id within the flow-control windows, reading the server's
// WINDOW_UPDATEs when they run out; end sets END_STREAM on the last frame.
func (c *scConn) send(id uint32, b []byte, end bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		n := min(int64(len(b)), c.maxFrame, c.connWin, c.sendWin[id])
		if n <= 0 && len(b) > 0 {
			if _, err := c.next(deadline); err != nil {
				c.t.Fatalf("waiting for window on stream %d: %v", id, err)
			}
			continue
		}
		chunk := b[:n]
		b = b[n:]
		c.connWin -= n
		c.sendWin[id] -= n
		c.check("DATA", c.fr.WriteData(id, end && len(b) == 0, chunk))
		if len(b) == 0 {
			return
		}
	}
}

// post writes a request for path with body (Content-Length set when cl >= 0).
func (c *scConn) post(id uint32, path string, body []byte, cl int) {
	c.t.Helper()
	c.headers(id, len(body) == 0, scReq(http.MethodPost, path, cl)...)
	if len(body) > 0 {
		c.send(id, body, true)
	}
}

// accepted posts a good request on stream id and expects 202.
func (c *scConn) accepted(id uint32) {
	c.t.Helper()
	frame := requestFrame(c.t, testID, testBody)
	c.post(id, scPath, frame, len(frame))
	if st := c.answer(id); st.status != "202" || !st.ended || st.reset || len(st.body) != 0 {
		c.t.Fatalf("good request on stream %d: status %q ended %v reset %v (%v) body %q", id, st.status, st.ended, st.reset, st.code, st.body)
	}
}

// scReq returns a request's header fields; cl < 0 omits Content-Length.
func scReq(method, path string, cl int) []string {
	kv := []string{":method", method, ":scheme", "http", ":path", path, ":authority", "127.0.0.1", "content-type", "application/octet-stream"}
	if cl >= 0 {
		kv = append(kv, "content-length", strconv.Itoa(cl))
	}
	return kv
}

// scWithout returns kv without the pair named name.
func scWithout(kv []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != name {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

// scConns returns how many h2c connections the Server is serving.
func scConns(s *Server) int {
	s.h2.mu.Lock()
	defer s.h2.mu.Unlock()
	return len(s.h2.conns)
}

// awaitSCConns polls until the Server serves at most n h2c connections.
func awaitSCConns(t testing.TB, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for scConns(s) > n {
		if time.Now().After(deadline) {
			t.Fatalf("the server still serves %d h2c connections after %v, want at most %d", scConns(s), waitLimit, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// scXClient returns an HTTP client on golang.org/x/net/http2's Transport speaking h2c, and the
// count of connections it dialed.
func scXClient(t *testing.T) (*http.Client, *atomic.Int32) {
	var dials atomic.Int32
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}, &dials
}

// Case 1: real clients interoperate: net/http's and x/net's HTTP/2 clients, 100 concurrent
// streams on one connection, and HTTP/1.1 on the same port.
func TestServerConnInterop(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	u := addEndpoint(t, s, "generate", gen)
	frame := requestFrame(t, testID, testBody)
	post := func(t *testing.T, c *http.Client, proto int) {
		resp, err := c.Post(u, "application/octet-stream", bytes.NewReader(frame))
		if err != nil {
			t.Error(err)
			return
		}
		drainClose(resp.Body)
		if resp.StatusCode != http.StatusAccepted || resp.ProtoMajor != proto {
			t.Errorf("status %d over HTTP/%d, want 202 over HTTP/%d", resp.StatusCode, resp.ProtoMajor, proto)
		}
	}
	t.Run("net/http h2c", func(t *testing.T) { post(t, httpClient(t, true), 2) })
	t.Run("x/net http2.Transport", func(t *testing.T) {
		c, dials := scXClient(t)
		post(t, c, 2)
		if n := dials.Load(); n != 1 {
			t.Fatalf("dialed %d connections", n)
		}
	})
	t.Run("100 concurrent on one connection", func(t *testing.T) {
		c, dials := scXClient(t)
		before := len(gen.requests())
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() { post(t, c, 2) })
		}
		wg.Wait()
		if n := dials.Load(); n != 1 {
			t.Fatalf("dialed %d connections, want 1", n)
		}
		if got := len(gen.requests()) - before; got != 100 {
			t.Fatalf("handler got %d requests, want 100", got)
		}
	})
	t.Run("HTTP/1.1 on the same port", func(t *testing.T) { post(t, httpClient(t, false), 1) })

	reqs := gen.requests()
	if len(reqs) != 103 {
		t.Fatalf("handler got %d requests, want 103", len(reqs))
	}
	for _, r := range reqs {
		if string(r.Body) != testBody || r.Control.ID != testID || r.Endpoint != endpoint("generate") {
			t.Fatalf("admitted %+v", r)
		}
	}
}

// Case 2: the server's preface: SETTINGS, a connection WINDOW_UPDATE, and the ack of ours.
func TestServerConnSettings(t *testing.T) {
	s := startServer(t, Options{})
	addEndpoint(t, s, "generate", &recorder{})
	c := dialSC(t, s)
	if f := c.frames[0]; f.typ != http2.FrameSettings || f.flags&http2.FlagSettingsAck != 0 {
		t.Fatalf("first frame %v, want SETTINGS", f.typ)
	}
	for id, want := range map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 1000,
		http2.SettingInitialWindowSize:    1 << 20,
		http2.SettingMaxFrameSize:         1 << 20,
		http2.SettingMaxHeaderListSize:    64 << 10,
	} {
		if got, ok := c.server[id]; !ok || got != want {
			t.Errorf("%v = %d (sent %v), want %d", id, got, ok, want)
		}
	}
	wu := c.await("the connection WINDOW_UPDATE", func(f scFrame) bool { return f.is(http2.FrameWindowUpdate, 0) })
	// One request of the largest size and a stream window's worth, at least 4 MiB-1.
	if want := connWindow(codec.DefaultMaxMessageSize); int64(wu.incr) != want-defaultWindow || c.connWin != want {
		t.Fatalf("WINDOW_UPDATE of %d: connection window %d, want %d", wu.incr, c.connWin, want)
	}
	c.await("the SETTINGS ack", func(f scFrame) bool {
		return f.typ == http2.FrameSettings && f.flags&http2.FlagSettingsAck != 0
	})
	c.accepted(1)
}

// Case 3: stream ids: even or decreasing ones end the connection.
func TestServerConnStreamIDs(t *testing.T) {
	s := startServer(t, Options{})
	addEndpoint(t, s, "generate", &recorder{})
	for _, tc := range []struct {
		name string
		run  func(c *scConn)
		last uint32 // GOAWAY's last stream id
	}{
		{"even stream id", func(c *scConn) { c.headers(2, true, scReq(http.MethodPost, scPath, 0)...) }, 0},
		{"lower than one used", func(c *scConn) {
			c.accepted(5)
			c.headers(3, true, scReq(http.MethodPost, scPath, 0)...)
		}, 5},
		{"reused", func(c *scConn) {
			c.accepted(1)
			c.headers(1, true, scReq(http.MethodPost, scPath, 0)...)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSC(t, s)
			tc.run(c)
			if g := c.expectGoAway(http2.ErrCodeProtocol); g.last != tc.last {
				t.Fatalf("GOAWAY last stream %d, want %d", g.last, tc.last)
			}
		})
	}
}

// Case 3: the 1001st concurrent stream is refused; the first 1000 are served.
func TestServerConnStreamLimit(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	frame := requestFrame(t, testID, testBody)
	c := dialSC(t, s)
	ids := make([]uint32, maxStreams)
	for i := range ids {
		ids[i] = uint32(2*i + 1)
		c.headers(ids[i], false, scReq(http.MethodPost, scPath, len(frame))...)
	}
	refused := uint32(2*maxStreams + 1)
	c.headers(refused, false, scReq(http.MethodPost, scPath, len(frame))...)
	if code := c.awaitReset(refused); code != http2.ErrCodeRefusedStream {
		t.Fatalf("stream %d reset with %v, want REFUSED_STREAM", refused, code)
	}
	for _, id := range ids {
		if st := c.streams[id]; st != nil {
			t.Fatalf("stream %d got an answer before its body: %+v", id, st)
		}
	}
	for _, id := range ids {
		c.send(id, frame, true)
	}
	for _, id := range ids {
		if st := c.answer(id); st.status != "202" || st.reset {
			t.Fatalf("stream %d: status %q reset %v (%v)", id, st.status, st.reset, st.code)
		}
	}
	if n := len(gen.requests()); n != maxStreams {
		t.Fatalf("handler got %d requests, want %d", n, maxStreams)
	}
	c.noGoAway()
}

// Case 4: malformed requests end their stream with PROTOCOL_ERROR; the connection lives on.
func TestServerConnMalformedRequests(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	good := scReq(http.MethodPost, scPath, 0)
	for _, tc := range []struct {
		name string
		send func(c *scConn)
	}{
		{"missing :method", func(c *scConn) { c.headers(1, true, scWithout(good, ":method")...) }},
		{"missing :path", func(c *scConn) { c.headers(1, true, scWithout(good, ":path")...) }},
		{"missing :scheme", func(c *scConn) { c.headers(1, true, scWithout(good, ":scheme")...) }},
		{"empty :path", func(c *scConn) {
			c.headers(1, true, append(scWithout(good, ":path"), ":path", "")...)
		}},
		{"unknown pseudo-header", func(c *scConn) { c.headers(1, true, append([]string{":foo", "x"}, good...)...) }},
		{"pseudo-header after a regular one", func(c *scConn) { c.headers(1, true, append(slices.Clone(good), ":protocol", "x")...) }},
		{"response pseudo-header", func(c *scConn) { c.headers(1, true, append([]string{":status", "200"}, good...)...) }},
		{"uppercase header name", func(c *scConn) { c.headers(1, true, append(slices.Clone(good), "X-Upper", "v")...) }},
		{"header value with a newline", func(c *scConn) { c.headers(1, true, append(slices.Clone(good), "x-bad", "a\nb")...) }},
		{"trailers without END_STREAM", func(c *scConn) {
			c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
			c.headers(1, false, "x-trailer", "v")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(gen.requests())
			c := dialSC(t, s)
			tc.send(c)
			if code := c.awaitReset(1); code != http2.ErrCodeProtocol {
				t.Fatalf("stream 1 reset with %v, want PROTOCOL_ERROR", code)
			}
			if st := c.streams[1]; st.status != "" {
				t.Fatalf("malformed request answered %q", st.status)
			}
			c.accepted(3)
			c.noGoAway()
			if n := len(gen.requests()) - before; n != 1 {
				t.Fatalf("handler got %d requests, want 1", n)
			}
		})
	}

	// A header list above SETTINGS_MAX_HEADER_LIST_SIZE is cut by the decoder; whatever the
	// request's fate, the connection lives on.
	t.Run("header list above the limit", func(t *testing.T) {
		c := dialSC(t, s)
		frame := requestFrame(t, testID, testBody)
		kv := scReq(http.MethodPost, scPath, len(frame))
		for i := range 24 {
			kv = append(kv, "x-pad-"+strconv.Itoa(i), strings.Repeat("p", 4000))
		}
		c.headers(1, false, kv...)
		c.send(1, frame, true)
		st := c.answer(1)
		t.Logf("a request with a 96 KB header list: status %q reset %v (%v)", st.status, st.reset, st.code)
		c.accepted(3)
		c.noGoAway()
	})
}

// Case 5: request bodies: split, large, beyond the windows, lying Content-Length, trailers.
func TestServerConnBodies(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	last := func(t *testing.T) *plane.Request {
		t.Helper()
		reqs := gen.requests()
		if len(reqs) == 0 {
			t.Fatal("handler got nothing")
		}
		return reqs[len(reqs)-1]
	}

	t.Run("split over three DATA frames", func(t *testing.T) {
		body := `{"text":"split over three frames"}`
		frame := requestFrame(t, testID, body)
		c := dialSC(t, s)
		c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
		third := len(frame) / 3
		c.send(1, frame[:third], false)
		c.send(1, frame[third:2*third], false)
		c.send(1, frame[2*third:], true)
		if st := c.answer(1); st.status != "202" {
			t.Fatalf("status %q", st.status)
		}
		if r := last(t); string(r.Body) != body || r.Control.ID != testID || r.CallHome != testInfo(testID) {
			t.Fatalf("admitted %+v", r)
		}
	})

	t.Run("3 MiB across stream window updates", func(t *testing.T) {
		big := startServer(t, Options{MaxMessageSize: 8 << 20})
		bigGen := &recorder{}
		addEndpoint(t, big, "generate", bigGen)
		body := `{"text":"` + strings.Repeat("x", 3<<20) + `"}`
		frame := requestFrame(t, testID, body)
		c := dialSC(t, big)
		c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
		c.send(1, frame, true)
		st := c.answer(1)
		if st.status != "202" {
			t.Fatalf("status %q", st.status)
		}
		if st.updates == 0 {
			t.Fatal("a 3 MiB body arrived without a stream WINDOW_UPDATE")
		}
		reqs := bigGen.requests()
		if len(reqs) != 1 || string(reqs[0].Body) != body {
			t.Fatalf("handler got %d requests (body intact: %v)", len(reqs), len(reqs) == 1 && string(reqs[0].Body) == body)
		}
	})

	t.Run("DATA beyond the stream window", func(t *testing.T) {
		c := dialSC(t, s)
		c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
		// Below half the window no WINDOW_UPDATE comes: 1 byte more than the window in all.
		c.check("DATA", c.fr.WriteData(1, false, make([]byte, streamWindow/2-1)))
		c.check("DATA", c.fr.WriteData(1, false, make([]byte, streamWindow/2+2)))
		if code := c.awaitReset(1); code != http2.ErrCodeFlowControl {
			t.Fatalf("reset with %v, want FLOW_CONTROL_ERROR", code)
		}
		c.accepted(3)
		c.noGoAway()
	})

	// The server returns its connection window once half is used, and frames are at most
	// 1 MiB, so a peer cannot exceed the 4 MiB window on the wire: the check is tested on the
	// link itself.
	t.Run("DATA beyond the connection window", func(t *testing.T) {
		var l link
		l.init(nil, time.Second, maxWindow)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.receivedLocked(maxWindow/2 - 1); err != nil {
			t.Fatal(err)
		}
		var ce http2.ConnectionError
		if err := l.receivedLocked(l.recvLeft + 1); !errors.As(err, &ce) || http2.ErrCode(ce) != http2.ErrCodeFlowControl {
			t.Fatalf("got %v, want a FLOW_CONTROL_ERROR connection error", err)
		}
	})

	for _, tc := range []struct {
		name  string
		delta int
	}{
		{"Content-Length above the body", 1},
		{"Content-Length below the body", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := requestFrame(t, testID, testBody)
			before := len(gen.requests())
			c := dialSC(t, s)
			c.post(1, scPath, frame, len(frame)+tc.delta)
			st := c.answer(1)
			if st.status != "400" || string(st.body) != scLengthMismatch {
				t.Fatalf("got %q %q, want 400 %q", st.status, st.body, scLengthMismatch)
			}
			if n := len(gen.requests()) - before; n != 0 {
				t.Fatalf("handler got %d requests", n)
			}
			c.accepted(3)
		})
	}

	t.Run("trailers end the body", func(t *testing.T) {
		body := `{"text":"with trailers"}`
		frame := requestFrame(t, testID, body)
		c := dialSC(t, s)
		c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
		c.send(1, frame, false)
		c.headers(1, true, "x-checksum", "abc")
		if st := c.answer(1); st.status != "202" {
			t.Fatalf("status %q", st.status)
		}
		if r := last(t); string(r.Body) != body {
			t.Fatalf("admitted body %q", r.Body)
		}
		c.noGoAway()
	})
}

// Case 6: requests refused before their body is whole: the answer, then RST_STREAM(NO_ERROR)
// when the body is still coming; what arrives after is dropped and the connection lives on.
func TestServerConnEarlyRefusals(t *testing.T) {
	s := startServer(t, Options{MaxMessageSize: 1024})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	good := requestFrame(t, testID, testBody)
	big := requestFrame(t, testID, `{"text":"`+strings.Repeat("x", 2048)+`"}`)
	flood := append(bytes.Clone(good), bytes.Repeat([]byte{'z'}, 2048)...)
	for _, tc := range []struct {
		name   string
		send   func(c *scConn) // writes stream 1's HEADERS and what comes before the answer
		after  []byte          // DATA sent on stream 1 once answered (dropped)
		status string
		text   string
		allow  bool // answer "allow: POST"
		reset  bool // RST_STREAM(NO_ERROR) after the answer
	}{
		{
			// A short rest of the body is dropped as it arrives, without a reset.
			name:   "unknown endpoint, short body to come",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPost, scUnknown, len(good))...) },
			after:  good,
			status: "404", text: plane.TextEndpointNotFound,
		},
		{
			name:   "unknown endpoint, large body to come",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPost, scUnknown, quietDrop+1)...) },
			after:  good,
			status: "404", text: plane.TextEndpointNotFound, reset: true,
		},
		{
			name:   "unknown endpoint, body of unknown length to come",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPost, scUnknown, -1)...) },
			after:  good,
			status: "404", text: plane.TextEndpointNotFound, reset: true,
		},
		{
			name:   "Content-Length above the limit",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPost, scPath, 4096)...) },
			after:  make([]byte, 4096),
			status: "413", text: scTooLarge,
		},
		{
			name:   "Content-Length far above the limit",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPost, scPath, 1<<20)...) },
			after:  make([]byte, 4096),
			status: "413", text: "Two Part Codec Error: Message size 1048576 exceeds the maximum allowed size of 1024 bytes", reset: true,
		},
		{
			name: "frame prefix declares more than the limit",
			send: func(c *scConn) {
				c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
				c.send(1, big[:100], false)
			},
			after:  big[100:],
			status: "413", text: "Two Part Codec Error: Message size " + strconv.Itoa(len(big)) + " exceeds the maximum allowed size of 1024 bytes", reset: true,
		},
		{
			name: "body grows beyond the limit",
			send: func(c *scConn) {
				c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
				c.send(1, flood[:512], false)
				c.send(1, flood[512:1536], false)
			},
			after:  flood[1536:],
			status: "413", text: "Two Part Codec Error: Message size 1025 exceeds the maximum allowed size of 1024 bytes", reset: true,
		},
		{
			name:   "GET",
			send:   func(c *scConn) { c.headers(1, true, scReq(http.MethodGet, scPath, -1)...) },
			status: "405", allow: true,
		},
		{
			name:   "PUT with a body to come",
			send:   func(c *scConn) { c.headers(1, false, scReq(http.MethodPut, scPath, len(good))...) },
			after:  good,
			status: "405", allow: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(gen.requests())
			c := dialSC(t, s)
			tc.send(c)
			st := c.answer(1)
			if st.status != tc.status || string(st.body) != tc.text || !st.ended {
				t.Fatalf("got %q %q (ended %v, reset %v), want %s %q", st.status, st.body, st.ended, st.reset, tc.status, tc.text)
			}
			if got := st.header["content-length"]; got != strconv.Itoa(len(tc.text)) {
				t.Fatalf("content-length %q for a %d-byte body", got, len(tc.text))
			}
			if ct := st.header["content-type"]; ct != textPlain {
				t.Fatalf("content-type %q", ct)
			}
			if allow := st.header["allow"]; tc.allow && allow != http.MethodPost || !tc.allow && allow != "" {
				t.Fatalf("allow %q", allow)
			}
			if tc.text == "" && st.datas != 0 {
				t.Fatalf("an empty answer sent %d DATA frames", st.datas)
			}
			if tc.reset {
				if code := c.awaitReset(1); code != http2.ErrCodeNo {
					t.Fatalf("reset with %v, want NO_ERROR", code)
				}
				// The RST_STREAM follows the whole answer.
				rst := slices.IndexFunc(c.frames, func(f scFrame) bool { return f.is(http2.FrameRSTStream, 1) })
				end := slices.IndexFunc(c.frames, func(f scFrame) bool {
					return f.stream == 1 && f.flags.Has(http2.FlagDataEndStream) && (f.typ == http2.FrameData || f.typ == http2.FrameHeaders)
				})
				if rst < end {
					t.Fatalf("RST_STREAM before the answer's end:%s", c.summary())
				}
			}
			if tc.after != nil {
				c.send(1, tc.after, true)
			}
			c.barrier()
			if st.reset != tc.reset {
				t.Fatalf("reset %v (%v), want %v", st.reset, st.code, tc.reset)
			}
			c.accepted(3)
			c.noGoAway()
			if n := len(gen.requests()) - before; n != 1 {
				t.Fatalf("handler got %d requests, want 1", n)
			}
		})
	}
}

// Case 7: the DATA of our answers respects the client's windows.
func TestServerConnAnswerFlowControl(t *testing.T) {
	s := startServer(t, Options{})
	addEndpoint(t, s, "generate", &recorder{})
	text := plane.TextEndpointNotFound

	t.Run("stream window", func(t *testing.T) {
		c := dialSC(t, s, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		c.post(1, scUnknown, nil, -1)
		st := c.stream(1)
		c.until("the 404's HEADERS", func() bool { return st.status != "" })
		c.barrier()
		if st.status != "404" || st.datas != 0 || st.ended {
			t.Fatalf("with a zero window: status %q, %d DATA frames, ended %v", st.status, st.datas, st.ended)
		}
		c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, 5))
		c.until("5 bytes of the body", func() bool { return len(st.body) >= 5 })
		c.barrier()
		if string(st.body) != text[:5] || st.ended {
			t.Fatalf("after a 5-byte window: body %q, ended %v", st.body, st.ended)
		}
		c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, 100))
		c.answer(1)
		if string(st.body) != text || st.reset {
			t.Fatalf("body %q reset %v", st.body, st.reset)
		}
		c.accepted(3)
	})

	t.Run("connection window", func(t *testing.T) {
		c := dialSC(t, s)
		c.autoWindow = false
		// The 404s' bodies use up the connection's 65535 bytes: the last but one gets part of
		// its body, the last none.
		n := defaultWindow/len(text) + 2
		for i := range n {
			c.headers(uint32(2*i+1), true, scReq(http.MethodPost, scUnknown, -1)...)
		}
		partial, starved := c.stream(uint32(2*n-3)), c.stream(uint32(2*n-1))
		c.until("the last HEADERS", func() bool { return starved.status != "" })
		c.barrier()
		if len(partial.body) != defaultWindow%len(text) || partial.ended || starved.datas != 0 {
			t.Fatalf("partial: %q ended %v; starved: %d DATA frames", partial.body, partial.ended, starved.datas)
		}
		for i := range n - 2 {
			if st := c.streams[uint32(2*i+1)]; string(st.body) != text || !st.ended {
				t.Fatalf("stream %d: %q ended %v", 2*i+1, st.body, st.ended)
			}
		}
		c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(0, 1000))
		for _, st := range []*scStream{partial, starved} {
			c.until("the rest of the answers", func() bool { return st.ended })
			if string(st.body) != text {
				t.Fatalf("body %q", st.body)
			}
		}
		c.autoWindow = true
		c.accepted(uint32(2*n + 1))
		c.noGoAway()
	})
}

// Case 8: control frames and connection-level protocol errors.
func TestServerConnControlFrames(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	goAway := func(code http2.ErrCode) func(*scConn) { return func(c *scConn) { c.expectGoAway(code) } }
	alive := func(id uint32) func(*scConn) {
		return func(c *scConn) {
			c.accepted(id)
			c.noGoAway()
		}
	}
	for _, tc := range []struct {
		name   string
		raw    bool // no SETTINGS after the preface
		send   func(c *scConn)
		expect func(c *scConn)
	}{
		{
			name: "PING is acked with its data",
			send: func(c *scConn) { c.check("PING", c.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})) },
			expect: func(c *scConn) {
				c.await("the PING ack", func(f scFrame) bool {
					return f.typ == http2.FramePing && f.flags.Has(http2.FlagPingAck) && f.ping == [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
				})
				alive(1)(c)
			},
		},
		{
			name: "PING ack is ignored",
			send: func(c *scConn) { c.check("PING", c.fr.WritePing(true, [8]byte{9})) },
			expect: func(c *scConn) {
				c.barrier()
				for _, f := range c.frames {
					if f.typ == http2.FramePing && f.ping == [8]byte{9} {
						t.Fatal("a PING ack was answered")
					}
				}
				alive(1)(c)
			},
		},
		{
			name: "SETTINGS INITIAL_WINDOW_SIZE above 2^31-1",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}))
			},
			expect: goAway(http2.ErrCodeFlowControl),
		},
		{
			name: "SETTINGS MAX_FRAME_SIZE below 16384",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16383}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "SETTINGS MAX_FRAME_SIZE above 2^24-1",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "SETTINGS ENABLE_PUSH 2",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "SETTINGS with a length not a multiple of 6",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteRawFrame(http2.FrameSettings, 0, 0, []byte{0, 4, 0, 0}))
			},
			expect: goAway(http2.ErrCodeFrameSize),
		},
		{
			name: "SETTINGS changes are acked and applied",
			send: func(c *scConn) {
				c.check("SETTINGS", c.fr.WriteSettings(
					http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
					http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15},
					http2.Setting{ID: 0x7f, Val: 1}, // unknown: ignored
				))
			},
			expect: func(c *scConn) {
				c.until("two SETTINGS acks", func() bool {
					n := 0
					for _, f := range c.frames {
						if f.typ == http2.FrameSettings && f.flags.Has(http2.FlagSettingsAck) {
							n++
						}
					}
					return n == 2
				})
				// A dynamic table of size 0: the 404's header block must still decode.
				c.post(1, scUnknown, nil, -1)
				if st := c.answer(1); st.status != "404" || string(st.body) != plane.TextEndpointNotFound {
					c.t.Fatalf("got %q %q", st.status, st.body)
				}
				alive(3)(c)
			},
		},
		{
			name: "PUSH_PROMISE",
			send: func(c *scConn) {
				c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
				block := c.block(scReq(http.MethodGet, "/pushed", -1)...)
				c.check("PUSH_PROMISE", c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: block, EndHeaders: true}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "PRIORITY and unknown frame types are ignored",
			send: func(c *scConn) {
				c.check("PRIORITY", c.fr.WritePriority(5, http2.PriorityParam{StreamDep: 3, Weight: 200}))
				c.check("PRIORITY", c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 1, Exclusive: true}))
				c.check("unknown", c.fr.WriteRawFrame(0xfa, 0xff, 0, []byte("unknown frame type")))
				c.check("unknown", c.fr.WriteRawFrame(0xfb, 0, 7, nil))
			},
			expect: alive(5),
		},
		{
			name:   "first frame after the preface not SETTINGS",
			raw:    true,
			send:   func(c *scConn) { c.check("PING", c.fr.WritePing(false, [8]byte{})) },
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name:   "WINDOW_UPDATE of 0 on the connection",
			send:   func(c *scConn) { c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(0, 0)) },
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "WINDOW_UPDATE of 0 on a stream",
			send: func(c *scConn) {
				c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
				c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, 0))
			},
			expect: func(c *scConn) {
				if code := c.awaitReset(1); code != http2.ErrCodeProtocol {
					c.t.Fatalf("reset with %v, want PROTOCOL_ERROR", code)
				}
				alive(3)(c)
			},
		},
		{
			name:   "connection window overflow",
			send:   func(c *scConn) { c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(0, maxFlowWindow)) },
			expect: goAway(http2.ErrCodeFlowControl),
		},
		{
			name: "stream window overflow",
			send: func(c *scConn) {
				c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
				c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, maxFlowWindow))
			},
			expect: func(c *scConn) {
				if code := c.awaitReset(1); code != http2.ErrCodeFlowControl {
					c.t.Fatalf("reset with %v, want FLOW_CONTROL_ERROR", code)
				}
				alive(3)(c)
			},
		},
		{
			name: "CONTINUATION without HEADERS",
			send: func(c *scConn) {
				c.check("CONTINUATION", c.fr.WriteContinuation(1, true, c.block(scReq(http.MethodPost, scPath, 0)...)))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "HEADERS interrupted by another frame",
			send: func(c *scConn) {
				c.check("HEADERS", c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(scReq(http.MethodPost, scPath, 0)...), EndStream: true}))
				c.check("PING", c.fr.WritePing(false, [8]byte{}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "header block split over CONTINUATION frames",
			send: func(c *scConn) {
				frame := requestFrame(c.t, testID, testBody)
				block := c.block(scReq(http.MethodPost, scPath, len(frame))...)
				c.check("HEADERS", c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:3]}))
				c.check("CONTINUATION", c.fr.WriteContinuation(1, false, block[3:10]))
				c.check("CONTINUATION", c.fr.WriteContinuation(1, true, block[10:]))
				c.sendWin[1] = c.initWin
				c.send(1, frame, true)
			},
			expect: func(c *scConn) {
				if st := c.answer(1); st.status != "202" {
					c.t.Fatalf("status %q", st.status)
				}
				alive(3)(c)
			},
		},
		{
			name:   "DATA on an idle stream",
			send:   func(c *scConn) { c.check("DATA", c.fr.WriteData(1, true, []byte("x"))) },
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "HEADERS on stream 0",
			send: func(c *scConn) {
				c.check("HEADERS", c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 0, BlockFragment: c.block(scReq(http.MethodPost, scPath, 0)...), EndStream: true, EndHeaders: true}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name:   "RST_STREAM on stream 0",
			send:   func(c *scConn) { c.check("RST_STREAM", c.fr.WriteRSTStream(0, http2.ErrCodeCancel)) },
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			name: "DATA with padding longer than the frame",
			send: func(c *scConn) {
				c.check("DATA", c.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, []byte{200, 'x'}))
			},
			expect: goAway(http2.ErrCodeProtocol),
		},
		{
			// Closed without a GOAWAY: see TestServerConnFrameTooLargeGoAway.
			name: "frame above MAX_FRAME_SIZE",
			send: func(c *scConn) {
				// Only the frame header: the server must refuse it from the length alone.
				n := readFrameSize + 1
				_, err := c.nc.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(http2.FrameData), 0, 0, 0, 0, 1})
				c.check("frame header", err)
			},
			expect: func(c *scConn) { c.awaitEOF() },
		},
		{
			name: "padded DATA counts against the windows and is stripped",
			send: func(c *scConn) {
				frame := requestFrame(c.t, testID, testBody)
				c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
				c.check("DATA", c.fr.WriteDataPadded(1, false, frame[:10], make([]byte, 100)))
				c.check("DATA", c.fr.WriteDataPadded(1, true, frame[10:], make([]byte, 7)))
			},
			expect: func(c *scConn) {
				if st := c.answer(1); st.status != "202" {
					c.t.Fatalf("status %q", st.status)
				}
				alive(3)(c)
			},
		},
		{
			name: "RST_STREAM of a stream with its body in flight",
			send: func(c *scConn) {
				frame := requestFrame(c.t, testID, testBody)
				c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
				c.send(1, frame[:10], false)
				c.check("RST_STREAM", c.fr.WriteRSTStream(1, http2.ErrCodeCancel))
				c.check("DATA", c.fr.WriteData(1, true, frame[10:])) // ignored
				c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, 10))
			},
			expect: func(c *scConn) {
				c.barrier()
				if st := c.streams[1]; st != nil {
					c.t.Fatalf("the server answered a stream the client reset: %+v", st)
				}
				alive(3)(c)
			},
		},
		{
			name:   "RST_STREAM of an idle stream",
			send:   func(c *scConn) { c.check("RST_STREAM", c.fr.WriteRSTStream(7, http2.ErrCodeCancel)) },
			expect: func(c *scConn) { c.expectGoAway(http2.ErrCodeProtocol) }, // RFC 9113 §6.4
		},
		{
			name:   "GOAWAY from the client with no stream open",
			send:   func(c *scConn) { c.check("GOAWAY", c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)) },
			expect: func(c *scConn) { c.awaitEOF() },
		},
		{
			name: "GOAWAY from the client with a stream open",
			send: func(c *scConn) {
				frame := requestFrame(c.t, testID, testBody)
				c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
				c.check("GOAWAY", c.fr.WriteGoAway(0, http2.ErrCodeNo, nil))
				c.send(1, frame, true)
			},
			expect: func(c *scConn) {
				if st := c.answer(1); st.status != "202" {
					c.t.Fatalf("status %q", st.status)
				}
				c.awaitEOF()
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *scConn
			if tc.raw {
				c = dialSCRaw(t, s)
				c.writeDeadline()
				if _, err := io.WriteString(c.nc, http2.ClientPreface); err != nil {
					t.Fatal(err)
				}
			} else {
				c = dialSC(t, s)
			}
			tc.send(c)
			tc.expect(c)
		})
	}
}

// Case 9: the server's timeouts.
func TestServerConnTimeouts(t *testing.T) {
	t.Run("no SETTINGS after the preface", func(t *testing.T) {
		s := startServer(t, Options{ReadHeaderTimeout: time.Second})
		c := dialSCRaw(t, s)
		c.writeDeadline()
		if _, err := io.WriteString(c.nc, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		c.awaitEOF()
	})

	t.Run("body stalls past ReadTimeout", func(t *testing.T) {
		s := startServer(t, Options{ReadTimeout: time.Second})
		gen := &recorder{}
		addEndpoint(t, s, "generate", gen)
		frame := requestFrame(t, testID, testBody)
		c := dialSC(t, s)
		c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
		c.send(1, frame[:10], false)
		st := c.answer(1)
		want := "Two Part Codec Error: I/O error: request body not received within 1s"
		if st.status != "400" || string(st.body) != want {
			t.Fatalf("got %q %q, want 400 %q", st.status, st.body, want)
		}
		if code := c.awaitReset(1); code != http2.ErrCodeNo {
			t.Fatalf("reset with %v, want NO_ERROR", code)
		}
		c.send(1, frame[10:], true) // too late: dropped
		c.accepted(3)
		if n := len(gen.requests()); n != 1 {
			t.Fatalf("handler got %d requests, want 1", n)
		}
	})

	t.Run("idle connection", func(t *testing.T) {
		s := startServer(t, Options{IdleTimeout: time.Second})
		addEndpoint(t, s, "generate", &recorder{})
		c := dialSC(t, s)
		c.accepted(1)
		if g := c.expectGoAway(http2.ErrCodeNo); g.last != 1 {
			t.Fatalf("GOAWAY last stream %d, want 1", g.last)
		}
	})
}

// Case 10: Close lets a request being read finish within the grace period.
func TestServerConnGracefulClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := startServer(t, Options{})
	gen := &recorder{}
	addEndpoint(t, s, "generate", gen)
	frame := requestFrame(t, testID, testBody)
	c := dialSC(t, s)
	c.headers(1, false, scReq(http.MethodPost, scPath, len(frame))...)
	c.send(1, frame[:len(frame)/2], false)
	c.barrier() // the server knows stream 1

	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- s.Close() }()
	g := c.await("GOAWAY", func(f scFrame) bool { return f.typ == http2.FrameGoAway })
	if g.code != http2.ErrCodeNo || g.last != 1 {
		t.Fatalf("GOAWAY %v last stream %d, want NO_ERROR 1", g.code, g.last)
	}
	c.send(1, frame[len(frame)/2:], true)
	st := c.stream(1)
	deadline := time.Now().Add(waitLimit)
	for !st.ended && !st.reset {
		if _, err := c.next(deadline); err != nil {
			if elapsed := time.Since(start); elapsed >= shutdownGrace {
				t.Skipf("the body was not in within the %v grace on this machine (%v): %v", shutdownGrace, elapsed, err)
			}
			t.Fatalf("connection ended before the answer: %v (%s)", err, c.summary())
		}
	}
	if st.status != "202" {
		t.Fatalf("status %q reset %v (%v)", st.status, st.reset, st.code)
	}
	c.awaitEOF()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Close did not return within %v", waitLimit)
	}
	if n := len(gen.requests()); n != 1 {
		t.Fatalf("handler got %d requests, want 1", n)
	}
	if nc, err := net.DialTimeout("tcp", s.Addr().String(), waitLimit); err == nil {
		_ = nc.Close()
		t.Fatal("a closed server accepted a connection")
	}
	if n := scConns(s); n != 0 {
		t.Fatalf("%d h2c connections left", n)
	}
}

// Case 11: a client that sends requests but never reads the answers is cut off: the answers
// queue up to maxBacklog, or the write times out (ReadTimeout), and the connection closes.
func TestServerConnUnreadAnswers(t *testing.T) {
	s := startServer(t, Options{ReadTimeout: time.Second, MaxMessageSize: 1024})
	addEndpoint(t, s, "generate", &recorder{})
	// Windows wide open, so that the server may send every answer's DATA.
	c := dialSC(t, s, http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxFlowWindow})
	c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(0, maxFlowWindow-defaultWindow))

	// Each request is refused by its Content-Length (413 with an 85-byte text, and
	// RST_STREAM), its body sent anyway: ~40 bytes written bring ~130 to read. The ~10 MB
	// of answers exceed the socket buffers (a few MB) plus maxBacklog (4 MiB).
	const batch, maxRequests = 256, 80_000
	body := []byte("0123456789abcdef")
	var buf bytes.Buffer
	fw := http2.NewFramer(&buf, nil)
	id := uint32(1)
	var werr error
	for sent := 0; sent < maxRequests && werr == nil; sent += batch {
		buf.Reset()
		for range batch {
			block := c.block(scReq(http.MethodPost, scPath, 4096)...)
			_ = fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
			_ = fw.WriteData(id, true, body)
			id += 2
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
		_, werr = c.nc.Write(buf.Bytes())
	}
	if werr == nil {
		// All written: the connection must still end, the answers never being read. Probe
		// with a PING now and then until the server's close shows.
		deadline := time.Now().Add(waitLimit)
		for werr == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			_ = c.nc.SetWriteDeadline(deadline)
			werr = c.fr.WritePing(false, [8]byte{})
		}
	}
	var ne net.Error
	if werr == nil || errors.As(werr, &ne) && ne.Timeout() {
		t.Fatalf("the connection of a client that never reads is still open after writing %d requests: %v", id/2, werr)
	}
	t.Logf("connection ended after writing %d requests: %v", id/2, werr)
	awaitSCConns(t, s, 0)
}

// Frames a client sent before it saw our RST_STREAM are ignored (RFC 9113 §5.1, "closed"):
// its trailers must not end the connection and every other stream on it.
func TestServerConnIgnoresFramesAfterItsReset(t *testing.T) {
	s := startServer(t, Options{})
	addEndpoint(t, s, "generate", &recorder{})
	good := requestFrame(t, testID, testBody)
	for _, tc := range []struct {
		name  string
		open  func(c *scConn) // stream 1, reset by the server
		reset http2.ErrCode
	}{
		{"after an early 404", func(c *scConn) {
			c.headers(1, false, scReq(http.MethodPost, scUnknown, -1)...)
		}, http2.ErrCodeNo},
		{"after a malformed request", func(c *scConn) {
			c.headers(1, false, scWithout(scReq(http.MethodPost, scPath, len(good)), ":scheme")...)
		}, http2.ErrCodeProtocol},
		{"after a stream flow-control error", func(c *scConn) {
			c.headers(1, false, scReq(http.MethodPost, scPath, -1)...)
			c.check("WINDOW_UPDATE", c.fr.WriteWindowUpdate(1, maxFlowWindow))
		}, http2.ErrCodeFlowControl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSC(t, s)
			tc.open(c)
			if code := c.awaitReset(1); code != tc.reset {
				t.Fatalf("stream 1 reset with %v, want %v", code, tc.reset)
			}
			// In flight when our RST_STREAM left: the rest of the body and trailers.
			c.send(1, good, false)
			c.headers(1, true, "x-checksum", "abc")
			c.barrier()
			c.noGoAway()
			c.accepted(3)
		})
	}
}

// A stream id refused for its malformed header block is used: a lower or equal id after it
// is a connection error (RFC 9113 §5.1.1), as after any other stream.
func TestServerConnStreamIDAfterMalformedHeaders(t *testing.T) {
	s := startServer(t, Options{})
	addEndpoint(t, s, "generate", &recorder{})
	for _, tc := range []struct {
		name string
		next uint32
	}{
		{"lower id", 3},
		{"same id", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSC(t, s)
			c.headers(5, true, append(scReq(http.MethodPost, scPath, 0), "X-Upper", "v")...)
			if code := c.awaitReset(5); code != http2.ErrCodeProtocol {
				t.Fatalf("stream 5 reset with %v, want PROTOCOL_ERROR", code)
			}
			frame := requestFrame(t, testID, testBody)
			c.post(tc.next, scPath, frame, len(frame))
			if g := c.expectGoAway(http2.ErrCodeProtocol); g.last != 5 {
				t.Fatalf("GOAWAY last stream %d, want 5", g.last)
			}
		})
	}
}

// A frame above our SETTINGS_MAX_FRAME_SIZE is a connection error the server should report
// with GOAWAY(FRAME_SIZE_ERROR) before closing (RFC 9113 §4.2, §5.4.1).
func TestServerConnFrameTooLargeGoAway(t *testing.T) {
	s := startServer(t, Options{})
	c := dialSC(t, s)
	n := readFrameSize + 1
	_, err := c.nc.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(http2.FrameData), 0, 0, 0, 0, 1})
	c.check("frame header", err)
	c.expectGoAway(http2.ErrCodeFrameSize)
}

// The bodies a connection buffers are bounded by its flow-control window: the connection
// window comes back as bodies are admitted or dropped, not as their bytes arrive. Otherwise
// one connection can make the server hold 1000 streams × MaxMessageSize.
func TestServerConnBufferedBodiesBounded(t *testing.T) {
	s := startServer(t, Options{MaxMessageSize: 8 << 20})
	addEndpoint(t, s, "generate", &recorder{})
	c := dialSC(t, s)
	// 12 MiB in all, none complete, against a connection window of one 8 MiB request and
	// one stream window (9 MiB).
	const streams, each = 12, 1 << 20
	chunk := make([]byte, each)
	left := map[uint32][]byte{}
	for i := range streams {
		id := uint32(2*i + 1)
		c.headers(id, false, scReq(http.MethodPost, scPath, 2*each)...)
		left[id] = chunk
	}
	wu := c.await("the connection WINDOW_UPDATE", func(f scFrame) bool { return f.is(http2.FrameWindowUpdate, 0) })
	window := defaultWindow + int(wu.incr)
	total := 0
	for progress := true; progress; {
		progress = false
		for id, b := range left {
			n := int(min(int64(len(b)), c.maxFrame, c.connWin, c.sendWin[id]))
			if n <= 0 {
				continue
			}
			c.connWin -= int64(n)
			c.sendWin[id] -= int64(n)
			c.check("DATA", c.fr.WriteData(id, false, b[:n]))
			left[id] = b[n:]
			total += n
			progress = true
		}
		c.barrier() // every WINDOW_UPDATE the server meant to send is in
	}
	if total > window {
		t.Fatalf("the server took %d bytes of unfinished bodies on one connection, above its %d-byte connection window", total, window)
	}
	if total < window-each {
		t.Fatalf("the server took only %d bytes of a %d-byte connection window", total, window)
	}
}

// scUnencrypted is what net/http hands serveH2C: the plain connection, inside a *tls.Conn
// never used for TLS.
type scUnencrypted struct{ net.Conn }

func (c scUnencrypted) UnencryptedNetConn() net.Conn { return c.Conn }

// scPair connects a client to s's h2c serving as net/http does once it has read the preface,
// over a Unix socket pair from ln: fuzzing opens thousands of connections, which over TCP
// would cost a port and a TIME_WAIT each. done is closed when the server is done with it.
func scPair(t testing.TB, s *Server, ln net.Listener) (client net.Conn, done <-chan struct{}) {
	t.Helper()
	cl, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ln.Accept()
	if err != nil {
		_ = cl.Close()
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer sv.Close()
		s.serveH2C(nil, tls.Client(scUnencrypted{sv}, nil), nil)
	}()
	return cl, ch
}

// awaitDone waits for the server to be done with a connection from scPair.
func awaitDone(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("the server still serves %s after %v", what, waitLimit)
	}
}

// FuzzServerConn writes arbitrary bytes to a Server's h2c connection after a valid preface
// and SETTINGS frame, then half-closes: nothing panics, the server ends the connection, a good
// request on a new connection is still accepted, and Close returns.
func FuzzServerConn(f *testing.F) {
	var accepted atomic.Int64
	s := NewServer(Options{Host: "127.0.0.1", MaxMessageSize: 64 << 10})
	if err := s.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := s.Close(); err != nil {
			f.Errorf("Close: %v", err)
		}
	})
	if _, err := s.Add(context.Background(), endpoint("generate"), plane.HandlerFunc(func(*plane.Request) error {
		accepted.Add(1)
		return nil
	})); err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(f.TempDir(), "h2c"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ln.Close() })
	// The whole path once, over TCP through net/http's preface detection.
	dialSC(f, s).accepted(1)
	var settings bytes.Buffer
	if err := http2.NewFramer(&settings, nil).WriteSettings(); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, script []byte) {
		nc, done := scPair(t, s, ln)
		_ = nc.SetDeadline(time.Now().Add(waitLimit))
		// Write errors are expected: the server may close on a protocol error midway.
		if _, err := nc.Write(append(bytes.Clone(settings.Bytes()), script...)); err == nil {
			_ = nc.(*net.UnixConn).CloseWrite()
		}
		if _, err := io.Copy(io.Discard, nc); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server did not end the connection within %v", waitLimit)
			}
		}
		_ = nc.Close()
		awaitDone(t, done, "the fuzzed connection")

		nc, done = scPair(t, s, ln)
		c := newSCConn(t, nc)
		c.check("SETTINGS", c.fr.WriteSettings())
		c.await("the server's SETTINGS", func(f scFrame) bool {
			return f.typ == http2.FrameSettings && f.flags&http2.FlagSettingsAck == 0
		})
		before := accepted.Load()
		c.accepted(1)
		if n := accepted.Load() - before; n != 1 {
			t.Fatalf("handler got %d requests for one", n)
		}
		_ = nc.Close()
		awaitDone(t, done, "the good request's connection")
	})
}
