package http2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reqplane/reqplane/internal/plane"
)

// The Client's own HTTP/2 transport (conn.go) against scripted servers: the protocol edge
// cases a real-world or broken server produces and net/http's server never does.

// h2Server is a scripted HTTP/2 server on 127.0.0.1:0. Each connection it accepts runs script
// in a goroutine of its own; every one has ended when stop returns (at the latest when the
// test ends).
type h2Server struct {
	t     *testing.T
	ln    net.Listener
	addr  string       // host:port
	dials atomic.Int32 // connections accepted

	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	stopped  bool
	stopOnce sync.Once
}

func startH2(t *testing.T, script func(p *h2Peer)) *h2Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h2Server{t: t, ln: ln, addr: ln.Addr().String()}
	s.wg.Add(1)
	go s.accept(script)
	t.Cleanup(s.stop)
	return s
}

func (s *h2Server) url(path string) string { return "http://" + s.addr + path }

func (s *h2Server) accept(script func(*h2Peer)) {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns = append(s.conns, nc)
		s.wg.Add(1)
		s.mu.Unlock()
		n := int(s.dials.Add(1)) - 1
		// A safety net: a script waiting for what never comes fails instead of hanging.
		_ = nc.SetDeadline(time.Now().Add(waitLimit))
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			script(newPeer(s.t, nc, n))
		}()
	}
}

// stop refuses new connections, closes the open ones and waits for every script.
func (s *h2Server) stop() {
	s.stopOnce.Do(func() {
		_ = s.ln.Close()
		s.mu.Lock()
		s.stopped = true
		for _, nc := range s.conns {
			_ = nc.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// h2Peer is the server's end of one connection, driven by a script.
type h2Peer struct {
	t   *testing.T
	nc  net.Conn
	n   int // index of the connection, 0 for the first one accepted
	br  *bufio.Reader
	fr  *http2.Framer
	dec *hpack.Decoder
	enc *hpack.Encoder
	hb  bytes.Buffer

	log     []h2Event       // every frame read, in order
	streams map[uint32]bool // streams whose HEADERS request() returned
	client  []http2.Setting // the client's SETTINGS
}

func newPeer(t *testing.T, nc net.Conn, n int) *h2Peer {
	p := &h2Peer{t: t, nc: nc, n: n, br: bufio.NewReader(nc), streams: map[uint32]bool{}}
	p.fr = http2.NewFramer(nc, p.br)
	p.dec = hpack.NewDecoder(4096, nil)
	p.enc = hpack.NewEncoder(&p.hb)
	return p
}

// fail reports a failure of the script and ends it (its deferred calls close the connection).
func (p *h2Peer) fail(format string, args ...any) {
	p.t.Errorf("server connection %d: %s", p.n, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (p *h2Peer) write(err error) {
	if err != nil {
		p.fail("write: %v", err)
	}
}

// readPreface reads the client's connection preface.
func (p *h2Peer) readPreface() {
	buf := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(p.br, buf); err != nil || string(buf) != http2.ClientPreface {
		p.fail("preface %q, %v", buf, err)
	}
}

// handshake reads the preface and the client's SETTINGS, sends ours and acks the client's.
func (p *h2Peer) handshake(settings ...http2.Setting) {
	p.readPreface()
	p.write(p.fr.WriteSettings(settings...))
	ev := p.next()
	if ev.typ != http2.FrameSettings || ev.flags.Has(http2.FlagSettingsAck) {
		p.fail("the client's first frame is %v, want SETTINGS", ev.typ)
	}
	p.client = ev.settings
	p.write(p.fr.WriteSettingsAck())
}

// h2Event is one frame the client sent, copied out of the Framer's buffers.
type h2Event struct {
	typ      http2.FrameType
	stream   uint32
	flags    http2.Flags
	data     []byte              // DATA payload, PING data
	code     http2.ErrCode       // RST_STREAM, GOAWAY
	incr     uint32              // WINDOW_UPDATE
	settings []http2.Setting     // SETTINGS
	fields   []hpack.HeaderField // HEADERS, CONTINUATION frames merged
	reps     string              // HEADERS: each field's HPACK representation (hpackReps)
}

// endStream: FlagDataEndStream and FlagHeadersEndStream are the same bit.
func (e h2Event) endStream() bool {
	return (e.typ == http2.FrameData || e.typ == http2.FrameHeaders) && e.flags.Has(http2.FlagDataEndStream)
}

// readEvent reads the client's next frame.
func (p *h2Peer) readEvent() (h2Event, error) {
	f, err := p.fr.ReadFrame()
	if err != nil {
		return h2Event{}, err
	}
	h := f.Header()
	ev := h2Event{typ: h.Type, stream: h.StreamID, flags: h.Flags}
	switch f := f.(type) {
	case *http2.DataFrame:
		ev.data = bytes.Clone(f.Data())
	case *http2.HeadersFrame:
		block := bytes.Clone(f.HeaderBlockFragment())
		for ended := f.HeadersEnded(); !ended; {
			cf, err := p.fr.ReadFrame()
			if err != nil {
				return h2Event{}, err
			}
			c, ok := cf.(*http2.ContinuationFrame)
			if !ok {
				return h2Event{}, fmt.Errorf("%v inside a header block", cf.Header().Type)
			}
			block = append(block, c.HeaderBlockFragment()...)
			ended = c.HeadersEnded()
		}
		if ev.fields, err = p.dec.DecodeFull(block); err != nil {
			return h2Event{}, fmt.Errorf("header block: %w", err)
		}
		if ev.reps, err = hpackReps(block); err != nil {
			return h2Event{}, err
		}
	case *http2.RSTStreamFrame:
		ev.code = f.ErrCode
	case *http2.GoAwayFrame:
		ev.code = f.ErrCode
	case *http2.PingFrame:
		ev.data = bytes.Clone(f.Data[:])
	case *http2.WindowUpdateFrame:
		ev.incr = f.Increment
	case *http2.SettingsFrame:
		_ = f.ForeachSetting(func(s http2.Setting) error {
			ev.settings = append(ev.settings, s)
			return nil
		})
	}
	p.log = append(p.log, ev)
	return ev, nil
}

// next reads the client's next frame; the script fails when the connection ends.
func (p *h2Peer) next() h2Event {
	ev, err := p.readEvent()
	if err != nil {
		p.fail("read: %v", err)
	}
	return ev
}

// await reads until a frame satisfying pred.
func (p *h2Peer) await(what string, pred func(h2Event) bool) h2Event {
	for {
		ev, err := p.readEvent()
		if err != nil {
			p.fail("waiting for %s: %v", what, err)
		}
		if pred(ev) {
			return ev
		}
	}
}

// h2Request is a request as the server received it.
type h2Request struct {
	stream uint32
	fields []hpack.HeaderField
	reps   string
	body   []byte
}

func (r h2Request) get(name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// request reads the client's next request: the HEADERS of a new stream and, unless they end
// it, the stream's DATA up to END_STREAM. Other frames read meanwhile stay in log.
func (p *h2Peer) request() h2Request {
	ev := p.await("a request", func(ev h2Event) bool { return ev.typ == http2.FrameHeaders && !p.streams[ev.stream] })
	p.streams[ev.stream] = true
	r := h2Request{stream: ev.stream, fields: ev.fields, reps: ev.reps}
	for end := ev.endStream(); !end; {
		ev := p.next()
		if ev.typ == http2.FrameData && ev.stream == r.stream {
			r.body = append(r.body, ev.data...)
			end = ev.endStream()
		}
	}
	return r
}

// resets returns the RST_STREAM codes the client sent for stream so far.
func (p *h2Peer) resets(stream uint32) []http2.ErrCode {
	var codes []http2.ErrCode
	for _, ev := range p.log {
		if ev.typ == http2.FrameRSTStream && ev.stream == stream {
			codes = append(codes, ev.code)
		}
	}
	return codes
}

// untilClosed reads until the connection ends and returns why it ended.
func (p *h2Peer) untilClosed() error {
	for {
		if _, err := p.readEvent(); err != nil {
			return err
		}
	}
}

// expectClosed reads until the client closes the connection; the script fails when it stays
// open until the safety deadline.
func (p *h2Peer) expectClosed() {
	if err := p.untilClosed(); errors.Is(err, os.ErrDeadlineExceeded) {
		p.fail("the client never closed the connection")
	}
}

// headers sends a HEADERS frame with the given name, value pairs.
func (p *h2Peer) headers(stream uint32, end bool, kv ...string) {
	p.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = p.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	p.write(p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: p.hb.Bytes(), EndStream: end, EndHeaders: true}))
}

func (p *h2Peer) status(stream uint32, code string, end bool) {
	p.headers(stream, end, ":status", code)
}

func (p *h2Peer) data(stream uint32, end bool, b string) {
	p.write(p.fr.WriteData(stream, end, []byte(b)))
}

// hpackReps returns how each header field of block is represented (RFC 7541 §6): 'i' indexed,
// 'a' literal added to the dynamic table, 'n' literal not indexed, 's' literal never indexed.
// Dynamic table size updates are skipped.
func hpackReps(block []byte) (string, error) {
	var out []byte
	for len(block) > 0 {
		b := block[0]
		var kind byte
		var prefix uint8
		switch {
		case b&0x80 != 0:
			kind, prefix = 'i', 7
		case b&0xc0 == 0x40:
			kind, prefix = 'a', 6
		case b&0xe0 == 0x20:
			kind, prefix = 0, 5
		case b&0xf0 == 0x10:
			kind, prefix = 's', 4
		default:
			kind, prefix = 'n', 4
		}
		idx, rest, err := hpackInt(block, prefix)
		if err != nil {
			return "", err
		}
		block = rest
		switch kind {
		case 0:
			continue
		case 'i':
		default:
			if idx == 0 { // the name is a literal too
				if block, err = hpackSkipString(block); err != nil {
					return "", err
				}
			}
			if block, err = hpackSkipString(block); err != nil {
				return "", err
			}
		}
		out = append(out, kind)
	}
	return string(out), nil
}

// hpackInt decodes an integer with an n-bit prefix (RFC 7541 §5.1).
func hpackInt(b []byte, n uint8) (uint64, []byte, error) {
	mask := byte(1)<<n - 1
	v := uint64(b[0] & mask)
	b = b[1:]
	if v < uint64(mask) {
		return v, b, nil
	}
	for m := uint(0); m <= 56; m += 7 {
		if len(b) == 0 {
			break
		}
		c := b[0]
		b = b[1:]
		v += uint64(c&0x7f) << m
		if c&0x80 == 0 {
			return v, b, nil
		}
	}
	return 0, nil, errors.New("hpack: bad integer")
}

// hpackSkipString skips a string literal (RFC 7541 §5.2).
func hpackSkipString(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("hpack: missing string")
	}
	n, b, err := hpackInt(b, 7)
	if err != nil || uint64(len(b)) < n {
		return nil, errors.New("hpack: truncated string")
	}
	return b[n:], nil
}

// recv waits for a value from ch, failing the test after waitLimit.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitForWaiter polls until a Send waits for room in the pool of addr.
func waitForWaiter(t *testing.T, c *Client, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c.mu.RLock()
		p := c.pools[addr]
		c.mu.RUnlock()
		if p != nil {
			p.mu.Lock()
			waiting := p.waiting
			p.mu.Unlock()
			if waiting {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no Send waits for room in the pool")
		}
		time.Sleep(time.Millisecond)
	}
}

// sendAsync runs Send in a goroutine; the channel gets its error.
func sendAsync(ctx context.Context, c *Client, url string, frame []byte, meta plane.Meta) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Send(ctx, url, frame, meta) }()
	return ch
}

// Case 1: the request's headers on the wire, and per-request ids never enter the HPACK table.
func TestConnRequestHeaders(t *testing.T) {
	const n = 50
	reqs := make(chan h2Request, n)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake()
		for range n {
			r := p.request()
			reqs <- r
			p.status(r.stream, "202", true)
		}
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	u := srv.url("/v1/dynamo/generate?x=1")
	for i := range n {
		id := fmt.Sprintf("3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b%04d", i)
		caller := fmt.Sprintf("caller-%04d", i)
		frame := requestFrame(t, id, testBody)
		if err := c.Send(context.Background(), u, frame, plane.Meta{RequestID: caller}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		r := recv(t, reqs, "the request")
		want := map[string]hpack.HeaderField{
			":method":        {Name: ":method", Value: "POST"},
			":scheme":        {Name: ":scheme", Value: "http"},
			":authority":     {Name: ":authority", Value: srv.addr},
			":path":          {Name: ":path", Value: "/v1/dynamo/generate?x=1"},
			"content-type":   {Name: "content-type", Value: "application/octet-stream"},
			"content-length": {Name: "content-length", Value: strconv.Itoa(len(frame))},
			"x-request-id":   {Name: "x-request-id", Value: caller, Sensitive: true},
			"request-id":     {Name: "request-id", Value: id, Sensitive: true},
		}
		if len(r.fields) != len(want) || len(r.reps) != len(r.fields) {
			t.Fatalf("request %d: fields %v (representations %q), want %v", i, r.fields, r.reps, want)
		}
		regular := false
		for j, f := range r.fields {
			if w, ok := want[f.Name]; !ok || f != w {
				t.Fatalf("request %d: field %+v, want %+v", i, f, w)
			}
			delete(want, f.Name) // a duplicate then fails above
			if strings.HasPrefix(f.Name, ":") && regular {
				t.Fatalf("request %d: pseudo-header %s after a regular one", i, f.Name)
			}
			regular = regular || !strings.HasPrefix(f.Name, ":")
			if f.Sensitive && r.reps[j] != 's' {
				t.Fatalf("request %d: %s represented %q", i, f.Name, r.reps[j])
			}
		}
		// From the second request on, the constant fields are in the table and the ids never
		// go there: nothing is added to it any more.
		if i > 0 && strings.ContainsRune(r.reps, 'a') {
			t.Fatalf("request %d added to the HPACK table: representations %q of %v", i, r.reps, r.fields)
		}
		if !bytes.Equal(r.body, frame) {
			t.Fatalf("request %d: body of %d bytes differs from the frame (%d bytes)", i, len(r.body), len(frame))
		}
	}
	if d := srv.dials.Load(); d != 1 {
		t.Fatalf("%d connections for %d sequential requests", d, n)
	}
}

// h2Flow is the server's account of the flow-control windows it granted the client.
type h2Flow struct {
	p       *h2Peer
	initial int64
	conn    int64
	streams map[uint32]int64
	bodies  map[uint32][]byte
	ended   map[uint32]bool
	maxData int // largest DATA payload seen
	limit   int // the SETTINGS_MAX_FRAME_SIZE we advertised
}

func newFlow(p *h2Peer, initial int64, maxFrame int) *h2Flow {
	return &h2Flow{p: p, initial: initial, conn: 65535, streams: map[uint32]int64{},
		bodies: map[uint32][]byte{}, ended: map[uint32]bool{}, limit: maxFrame}
}

// recv reads one frame, charging DATA to the windows; the script fails when the client sent
// more than it was granted or a frame larger than allowed.
func (fl *h2Flow) recv() {
	ev := fl.p.next()
	switch ev.typ {
	case http2.FrameHeaders:
		if _, ok := fl.streams[ev.stream]; !ok {
			fl.streams[ev.stream] = fl.initial
		}
	case http2.FrameData:
		n := int64(len(ev.data))
		win, ok := fl.streams[ev.stream]
		switch {
		case !ok:
			fl.p.fail("DATA on stream %d before its HEADERS", ev.stream)
		case n > win || n > fl.conn:
			fl.p.fail("DATA of %d bytes on stream %d with %d granted to the stream, %d to the connection", n, ev.stream, win, fl.conn)
		case len(ev.data) > fl.limit:
			fl.p.fail("DATA of %d bytes, SETTINGS_MAX_FRAME_SIZE %d", len(ev.data), fl.limit)
		}
		fl.streams[ev.stream] -= n
		fl.conn -= n
		fl.maxData = max(fl.maxData, len(ev.data))
		fl.bodies[ev.stream] = append(fl.bodies[ev.stream], ev.data...)
	}
	if ev.endStream() {
		fl.ended[ev.stream] = true
	}
}

func (fl *h2Flow) grant(stream uint32, n uint32) {
	fl.p.write(fl.p.fr.WriteWindowUpdate(stream, n))
	if stream == 0 {
		fl.conn += int64(n)
	} else {
		fl.streams[stream] += int64(n)
	}
}

// receive reads stream's body to its end, granting window whenever the client used all it
// was given; it returns how often each window ran dry.
func (fl *h2Flow) receive(stream uint32, streamGrant, connGrant uint32) (streamStalls, connStalls int) {
	for !fl.ended[stream] {
		if win, open := fl.streams[stream]; open && win == 0 {
			streamStalls++
			fl.grant(stream, streamGrant)
		}
		if fl.conn == 0 {
			connStalls++
			fl.grant(0, connGrant)
		}
		fl.recv()
	}
	return streamStalls, connStalls
}

// bigBody returns an n-byte body whose every byte depends on its offset.
func bigBody(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%23) + byte(i/4096%3)
	}
	return string(b)
}

// Case 2: a 200 KiB body through windows of 1000 bytes per stream and 65535 for the
// connection: it arrives whole, never beyond what was granted nor in frames over the
// advertised SETTINGS_MAX_FRAME_SIZE.
func TestConnFlowControl(t *testing.T) {
	frame := requestFrame(t, testID, bigBody(200<<10))
	for _, maxFrame := range []uint32{16384, 32768} {
		t.Run(fmt.Sprint("max frame ", maxFrame), func(t *testing.T) {
			type report struct {
				body                      []byte
				streamStalls, connStalls  int
				maxData                   int
				windowSetting, frameLimit bool
			}
			got := make(chan report, 1)
			srv := startH2(t, func(p *h2Peer) {
				p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000},
					http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrame})
				fl := newFlow(p, 1000, int(maxFrame))
				for len(fl.streams) == 0 {
					fl.recv()
				}
				ss, cs := fl.receive(1, 40000, 50000)
				got <- report{body: fl.bodies[1], streamStalls: ss, connStalls: cs, maxData: fl.maxData}
				p.status(1, "202", true)
				_ = p.untilClosed()
			})
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
			if err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), frame, plane.Meta{}); err != nil {
				t.Fatal(err)
			}
			r := recv(t, got, "the body")
			if !bytes.Equal(r.body, frame) {
				t.Fatalf("body of %d bytes differs from the %d-byte frame", len(r.body), len(frame))
			}
			// Both windows ran dry at least once, so both were exercised.
			if r.streamStalls == 0 || r.connStalls == 0 {
				t.Fatalf("stream window ran dry %d times, connection window %d times", r.streamStalls, r.connStalls)
			}
			t.Logf("largest DATA frame %d bytes; stream window ran dry %d times, connection %d", r.maxData, r.streamStalls, r.connStalls)
		})
	}
}

// A stream waiting for window does not hold back another one that has window.
func TestConnFlowControlNoHeadOfLineBlocking(t *testing.T) {
	big := requestFrame(t, testID, bigBody(200<<10))
	small := requestFrame(t, "small", testBody)
	stalled := make(chan struct{}, 1)
	bodies := make(chan map[uint32][]byte, 1)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		fl := newFlow(p, 1000, 16384)
		for win, open := fl.streams[1]; !open || win > 0; win, open = fl.streams[1] {
			fl.recv()
		}
		stalled <- struct{}{}
		for !fl.ended[3] {
			fl.recv()
		}
		p.status(3, "202", true)
		fl.receive(1, 30000, 60000)
		p.status(1, "202", true)
		bodies <- fl.bodies
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	u := srv.url("/v1/dynamo/generate")
	bigErr := sendAsync(context.Background(), c, u, big, plane.Meta{})
	recv(t, stalled, "the first stream to run out of window")
	if err := c.Send(context.Background(), u, small, plane.Meta{}); err != nil {
		t.Fatalf("the small request behind a stalled one: %v", err)
	}
	if err := recv(t, bigErr, "the big request"); err != nil {
		t.Fatalf("the big request: %v", err)
	}
	b := recv(t, bodies, "the bodies")
	if !bytes.Equal(b[1], big) || !bytes.Equal(b[3], small) {
		t.Fatalf("bodies of %d and %d bytes, want %d and %d", len(b[1]), len(b[3]), len(big), len(small))
	}
}

// Case 3: RST_STREAM before any answer. REFUSED_STREAM means unprocessed: the request goes
// again. Any other code may follow processing: the Send fails, retryable elsewhere, and is
// not sent again.
func TestConnServerResetsStream(t *testing.T) {
	for _, tc := range []struct {
		code  http2.ErrCode
		fails bool
	}{
		{http2.ErrCodeRefusedStream, false},
		{http2.ErrCodeInternal, true},
		{http2.ErrCodeCancel, true},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			seen := make(chan h2Request, 2)
			srv := startH2(t, func(p *h2Peer) {
				p.handshake()
				r := p.request()
				seen <- r
				p.write(p.fr.WriteRSTStream(r.stream, tc.code))
				r = p.request() // the retry, or the probe after the failure
				seen <- r
				p.status(r.stream, "202", true)
				_ = p.untilClosed()
			})
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
			u := srv.url("/v1/dynamo/generate")
			err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), plane.Meta{})
			first := recv(t, seen, "the request")
			if !tc.fails {
				if err != nil {
					t.Fatalf("Send after REFUSED_STREAM: %v", err)
				}
				retry := recv(t, seen, "the retry")
				if first.get("request-id") != testID || retry.get("request-id") != testID || retry.stream == first.stream {
					t.Fatalf("first %d %q, retry %d %q", first.stream, first.get("request-id"), retry.stream, retry.get("request-id"))
				}
				return
			}
			if pe := planeError(t, err); pe.Code != plane.CodeConnect || !plane.Retryable(err) || !strings.Contains(pe.Text, tc.code.String()) {
				t.Fatalf("got %+v (retryable %v)", pe, plane.Retryable(err))
			}
			// The next request the server sees is the probe: the reset one was not resent.
			const probeID = "probe"
			if err := c.Send(context.Background(), u, requestFrame(t, probeID, testBody), plane.Meta{}); err != nil {
				t.Fatalf("probe: %v", err)
			}
			if id := recv(t, seen, "the probe").get("request-id"); id != probeID {
				t.Fatalf("after the reset the server saw request %q, want the probe", id)
			}
		})
	}
}

// Case 4a: GOAWAY below the stream in flight: unprocessed, so the Client sends it again on a
// new connection, and closes the old one.
func TestConnGoAwayBelowStream(t *testing.T) {
	seen := make(chan h2Request, 2)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake()
		r := p.request()
		seen <- r
		if p.n == 0 {
			p.write(p.fr.WriteGoAway(0, http2.ErrCodeNo, nil))
			p.expectClosed()
			return
		}
		p.status(r.stream, "202", true)
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	if err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	first, second := recv(t, seen, "the request"), recv(t, seen, "the resent request")
	if first.get("request-id") != testID || second.get("request-id") != testID {
		t.Fatalf("requests %q and %q", first.get("request-id"), second.get("request-id"))
	}
	if d := srv.dials.Load(); d != 2 {
		t.Fatalf("%d connections, want the first and one for the resent request", d)
	}
}

// Case 4b: GOAWAY covering the stream in flight: its answer still counts, the connection
// takes no new stream and is closed once its last stream ended.
func TestConnGoAwayCoveringStream(t *testing.T) {
	closed := make(chan struct{})
	srv := startH2(t, func(p *h2Peer) {
		p.handshake()
		r := p.request()
		if p.n == 0 {
			p.write(p.fr.WriteGoAway(r.stream, http2.ErrCodeNo, nil))
			p.status(r.stream, "202", true)
			p.expectClosed()
			close(closed)
			return
		}
		p.status(r.stream, "202", true)
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	u := srv.url("/v1/dynamo/generate")
	if err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	recv(t, closed, "the client to close the connection that went away")
	if err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	if d := srv.dials.Load(); d != 2 {
		t.Fatalf("%d connections, want a new one after GOAWAY", d)
	}
}

// Case 5: answers a real server would not send, or that net/http's never does. After each,
// the connection still carries a probe request; the server reports the RST_STREAM codes the
// client sent for the first stream.
func TestConnResponses(t *testing.T) {
	long := bigBody(10 << 10)
	for _, tc := range []struct {
		name    string
		respond func(p *h2Peer, id uint32)
		code    plane.Code // 0: Send succeeds
		text    string     // the error text (a refusal's) or a part of it (others)
		resets  []http2.ErrCode
	}{
		{"status abc", func(p *h2Peer, id uint32) { p.status(id, "abc", true) },
			plane.CodeConnect, `malformed response: :status "abc"`, []http2.ErrCode{http2.ErrCodeProtocol}},
		{"status 101", func(p *h2Peer, id uint32) { p.status(id, "101", true) },
			plane.CodeConnect, `malformed response: :status "101"`, []http2.ErrCode{http2.ErrCodeProtocol}},
		{"status 99", func(p *h2Peer, id uint32) { p.status(id, "99", true) },
			plane.CodeConnect, `malformed response: :status "99"`, []http2.ErrCode{http2.ErrCodeProtocol}},
		{"no status", func(p *h2Peer, id uint32) { p.headers(id, true, "content-type", "text/plain") },
			plane.CodeConnect, `malformed response: :status ""`, []http2.ErrCode{http2.ErrCodeProtocol}},
		{"invalid header value", func(p *h2Peer, id uint32) { p.headers(id, true, ":status", "202", "x-bad", "a\nb") },
			plane.CodeConnect, "malformed response", []http2.ErrCode{http2.ErrCodeProtocol}},
		{"DATA before HEADERS", func(p *h2Peer, id uint32) { p.data(id, true, "surprise") },
			plane.CodeConnect, "malformed response: DATA before HEADERS", []http2.ErrCode{http2.ErrCodeProtocol}},
		{"informational first", func(p *h2Peer, id uint32) {
			p.status(id, "100", false)
			p.headers(id, false, ":status", "103", "link", "</style.css>; rel=preload")
			p.status(id, "202", true)
		}, 0, "", nil},
		{"2xx with a body", func(p *h2Peer, id uint32) {
			p.status(id, "200", false)
			p.data(id, true, "unexpected body")
		}, 0, "", []http2.ErrCode{http2.ErrCodeCancel}},
		{"404 in two DATA frames", func(p *h2Peer, id uint32) {
			p.status(id, "404", false)
			p.data(id, false, "Endpoint ")
			p.data(id, true, "not found")
		}, plane.CodeUnknownEndpoint, "HTTP request failed with status 404 Not Found: Endpoint not found", nil},
		{"500 with a 10 KiB body", func(p *h2Peer, id uint32) {
			p.status(id, "500", false)
			p.data(id, false, long[:3500])
			p.data(id, false, long[3500:7000])
			p.data(id, true, long[7000:])
		}, plane.CodeRefused, "HTTP request failed with status 500 Internal Server Error: " + long[:maxErrorBody], []http2.ErrCode{http2.ErrCodeCancel}},
		{"503 with trailers", func(p *h2Peer, id uint32) {
			p.status(id, "503", false)
			p.data(id, false, plane.TextOverloaded)
			p.headers(id, true, "x-trailer", "1")
		}, plane.CodeOverloaded, "HTTP request failed with status 503 Service Unavailable: " + plane.TextOverloaded, nil},
		{"refusal cut short by RST_STREAM", func(p *h2Peer, id uint32) {
			p.status(id, "400", false)
			p.data(id, false, "Two Part")
			p.write(p.fr.WriteRSTStream(id, http2.ErrCodeInternal))
		}, plane.CodeBadRequest, "HTTP request failed with status 400 Bad Request: Two Part", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resets := make(chan []http2.ErrCode, 1)
			srv := startH2(t, func(p *h2Peer) {
				p.handshake()
				r := p.request()
				tc.respond(p, r.stream)
				probe := p.request()
				resets <- p.resets(r.stream)
				p.status(probe.stream, "202", true)
				_ = p.untilClosed()
			})
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
			u := srv.url("/v1/dynamo/generate")
			err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), plane.Meta{})
			switch {
			case tc.code == 0:
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			case tc.code == plane.CodeConnect:
				if pe := planeError(t, err); pe.Code != tc.code || !strings.Contains(pe.Text, tc.text) {
					t.Fatalf("got %v %q, want %v with %q", pe.Code, pe.Text, tc.code, tc.text)
				}
			default:
				if pe := planeError(t, err); pe.Code != tc.code || pe.Text != tc.text {
					t.Fatalf("got %v %q, want %v %q", pe.Code, pe.Text, tc.code, tc.text)
				}
			}
			if err := c.Send(context.Background(), u, requestFrame(t, "probe", testBody), plane.Meta{}); err != nil {
				t.Fatalf("probe on the same connection: %v", err)
			}
			if got := recv(t, resets, "the server's report"); fmt.Sprint(got) != fmt.Sprint(tc.resets) {
				t.Fatalf("client reset the stream with %v, want %v", got, tc.resets)
			}
			if d := srv.dials.Load(); d != 1 {
				t.Fatalf("%d connections, want 1", d)
			}
		})
	}
}

// Case 6: servers that do not start an HTTP/2 session.
func TestConnHandshakeFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  func(p *h2Peer)
		timeout time.Duration
		code    plane.Code
		texts   []string // the error text contains one of them
	}{
		// The text depends on whether the reader saw the failure while dial's start() was
		// still writing the preface (then the "no HTTP/2 session" wrapping is missing).
		{"first frame is a PING", func(p *h2Peer) {
			p.readPreface()
			p.write(p.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
			p.expectClosed()
		}, waitLimit, plane.CodeConnect, []string{"no HTTP/2 session", "no HTTP/2 SETTINGS"}},
		{"HTTP/1.1 only", func(p *h2Peer) {
			p.readPreface()
			p.await("the client's SETTINGS", func(ev h2Event) bool { return ev.typ == http2.FrameSettings })
			p.await("the client's WINDOW_UPDATE", func(ev h2Event) bool { return ev.typ == http2.FrameWindowUpdate })
			if _, err := io.WriteString(p.nc, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"); err != nil {
				p.fail("write: %v", err)
			}
			_ = p.nc.(*net.TCPConn).CloseWrite()
			p.expectClosed()
		}, waitLimit, plane.CodeConnect, []string{"no HTTP/2 session", "frame too large"}},
		{"invalid SETTINGS", func(p *h2Peer) {
			p.readPreface()
			p.write(p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}))
			p.expectClosed()
		}, waitLimit, plane.CodeConnect, []string{"FLOW_CONTROL_ERROR"}},
		{"closes at once", func(p *h2Peer) {}, waitLimit, plane.CodeConnect, []string{"dial tcp"}},
		{"silent", func(p *h2Peer) {
			p.readPreface()
			_ = p.untilClosed()
		}, 300 * time.Millisecond, plane.CodeAckTimeout, []string{"no acknowledgement"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startH2(t, tc.script)
			c := newClient(t, ClientOptions{RequestTimeout: tc.timeout})
			err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{})
			pe := planeError(t, err)
			matches := false
			for _, s := range tc.texts {
				matches = matches || strings.Contains(pe.Text, s)
			}
			if pe.Code != tc.code || !plane.Retryable(err) || !matches {
				t.Fatalf("got %v %q (retryable %v), want %v with one of %q", pe.Code, pe.Text, plane.Retryable(err), tc.code, tc.texts)
			}
			if tc.code == plane.CodeAckTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ack timeout %v does not match context.DeadlineExceeded", err)
			}
		})
	}
}

// The caller's deadline expiring while the server stays silent is an ack timeout.
func TestConnSilentServerCallerDeadline(t *testing.T) {
	srv := startH2(t, func(p *h2Peer) {
		p.readPreface()
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := c.Send(ctx, srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{})
	if pe := planeError(t, err); pe.Code != plane.CodeAckTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v %q", pe.Code, pe.Text)
	}
}

// Case 7a: the client answers the server's PING with the same 8 bytes; frames it has no use
// for are ignored.
func TestConnPingAndIgnoredFrames(t *testing.T) {
	pings := make(chan []byte, 1)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake()
		r := p.request()
		p.write(p.fr.WritePing(false, [8]byte{'r', 'e', 'q', 'p', 'l', '#', '0', '1'}))
		ack := p.await("the PING ack", func(ev h2Event) bool { return ev.typ == http2.FramePing })
		if !ack.flags.Has(http2.FlagPingAck) {
			p.fail("the client answered a PING with a PING without ACK")
		}
		pings <- ack.data
		p.write(p.fr.WriteRawFrame(0xfa, 0, r.stream, []byte("an extension frame")))
		p.write(p.fr.WritePriority(r.stream, http2.PriorityParam{Weight: 10}))
		p.write(p.fr.WriteSettingsAck())
		p.write(p.fr.WriteWindowUpdate(99, 1000)) // a stream that was never opened
		p.status(r.stream, "202", true)
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	if err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, pings, "the PING ack"); string(got) != "reqpl#01" {
		t.Fatalf("PING ack carries %q", got)
	}
}

// Case 7b: PUSH_PROMISE, refused by SETTINGS_ENABLE_PUSH=0, ends the connection.
func TestConnPushPromise(t *testing.T) {
	closed := make(chan []http2.Setting, 1)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake()
		r := p.request()
		p.hb.Reset()
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "127.0.0.1"}, {Name: ":path", Value: "/pushed"}} {
			_ = p.enc.WriteField(f)
		}
		p.write(p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: r.stream, PromiseID: 2, BlockFragment: p.hb.Bytes(), EndHeaders: true}))
		p.expectClosed()
		closed <- p.client
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{})
	if pe := planeError(t, err); pe.Code != plane.CodeConnect || !plane.Retryable(err) {
		t.Fatalf("got %v %q", pe.Code, pe.Text)
	}
	settings := recv(t, closed, "the connection to close")
	pushOff := false
	for _, s := range settings {
		pushOff = pushOff || (s.ID == http2.SettingEnablePush && s.Val == 0)
	}
	if !pushOff {
		t.Fatalf("client SETTINGS %v lack ENABLE_PUSH=0", settings)
	}
}

// Case 8: a Send that gives up resets its stream with CANCEL, and the connection carries the
// next Send.
func TestConnAbandonedStream(t *testing.T) {
	for _, name := range []string{"request timeout", "caller deadline", "caller cancel"} {
		t.Run(name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			resets := make(chan http2.ErrCode, 1)
			srv := startH2(t, func(p *h2Peer) {
				p.handshake()
				warm := p.request()
				p.status(warm.stream, "202", true)
				r := p.request()
				arrived <- struct{}{}
				rst := p.await("RST_STREAM", func(ev h2Event) bool { return ev.typ == http2.FrameRSTStream && ev.stream == r.stream })
				resets <- rst.code
				probe := p.request()
				p.status(probe.stream, "202", true)
				_ = p.untilClosed()
			})
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
			u := srv.url("/v1/dynamo/generate")
			frame := requestFrame(t, testID, testBody)
			// The connection is up before the short timeouts run, so that only the wait for
			// the answer can exceed them.
			if err := c.Send(context.Background(), u, frame, plane.Meta{}); err != nil {
				t.Fatal(err)
			}
			var err error
			switch name {
			case "request timeout":
				// Sends are sequential here: nothing else reads opts meanwhile.
				c.opts.RequestTimeout = 300 * time.Millisecond
				err = c.Send(context.Background(), u, frame, plane.Meta{})
				c.opts.RequestTimeout = waitLimit
			case "caller deadline":
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				err = c.Send(ctx, u, frame, plane.Meta{})
				cancel()
			case "caller cancel":
				ctx, cancel := context.WithCancel(context.Background())
				errc := sendAsync(ctx, c, u, frame, plane.Meta{})
				recv(t, arrived, "the request")
				cancel()
				err = recv(t, errc, "Send to return")
			}
			if name == "caller cancel" {
				if !errors.Is(err, context.Canceled) || plane.Retryable(err) {
					t.Fatalf("got %v (retryable %v)", err, plane.Retryable(err))
				}
			} else if pe := planeError(t, err); pe.Code != plane.CodeAckTimeout || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v %q", pe.Code, pe.Text)
			}
			if code := recv(t, resets, "RST_STREAM"); code != http2.ErrCodeCancel {
				t.Fatalf("stream reset with %v, want CANCEL", code)
			}
			if err := c.Send(context.Background(), u, frame, plane.Meta{}); err != nil {
				t.Fatalf("the next Send: %v", err)
			}
			if d := srv.dials.Load(); d != 1 {
				t.Fatalf("%d connections, want 1", d)
			}
		})
	}
}

// Case 9: a server allowing one stream per connection, holding the first request. With one
// connection per host the second Send waits for the first stream to end; by default it
// dials another connection.
func TestConnMaxConcurrentStreams(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxConns int
		dials    int32
	}{
		{"one connection per host", 1, 1},
		{"default", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			releaseOnce := sync.OnceFunc(func() { close(release) })
			arrived := make(chan h2Request, 2)
			srv := startH2(t, func(p *h2Peer) {
				p.handshake(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
				for i := 0; ; i++ {
					r := p.request()
					arrived <- r
					if p.n == 0 && i == 0 {
						<-release
					}
					p.status(r.stream, "202", true)
					if p.n != 0 || i == 1 || tc.maxConns != 1 {
						break
					}
				}
				_ = p.untilClosed()
			})
			t.Cleanup(releaseOnce) // before stop, which waits for the scripts
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit, MaxConnsPerHost: tc.maxConns})
			u := srv.url("/v1/dynamo/generate")
			first := sendAsync(context.Background(), c, u, requestFrame(t, "first", testBody), plane.Meta{})
			recv(t, arrived, "the first request")
			second := sendAsync(context.Background(), c, u, requestFrame(t, "second", testBody), plane.Meta{})
			if tc.maxConns == 1 {
				waitForWaiter(t, c, srv.addr)
			} else if err := recv(t, second, "the second Send"); err != nil {
				t.Fatalf("the second Send on its own connection: %v", err)
			}
			releaseOnce()
			if err := recv(t, first, "the first Send"); err != nil {
				t.Fatalf("the first Send: %v", err)
			}
			if tc.maxConns == 1 {
				if err := recv(t, second, "the second Send"); err != nil {
					t.Fatalf("the second Send after waiting: %v", err)
				}
			}
			if r := recv(t, arrived, "the second request"); r.get("request-id") != "second" {
				t.Fatalf("second request %q", r.get("request-id"))
			}
			if d := srv.dials.Load(); d != tc.dials {
				t.Fatalf("%d connections, want %d", d, tc.dials)
			}
		})
	}
}

// Case 10: Close aborts Sends in flight wherever they are (waiting for their answer, dialing,
// waiting for room), returns once they did, and leaves no goroutine behind.
func TestConnClientClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sends    int
		settings []http2.Setting // nil: never send SETTINGS
		maxConns int
		waiter   bool // the last Send waits for room in the pool
	}{
		{"streams in flight", 3, []http2.Setting{}, 0, false},
		{"dialing", 2, nil, 0, false},
		{"waiting for room", 2, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			arrived := make(chan struct{}, tc.sends)
			srv := startH2(t, func(p *h2Peer) {
				if tc.settings == nil {
					p.readPreface()
					arrived <- struct{}{}
					_ = p.untilClosed()
					return
				}
				p.handshake(tc.settings...)
				for {
					if _, err := p.readEvent(); err != nil {
						return
					}
					if ev := p.log[len(p.log)-1]; ev.typ == http2.FrameHeaders {
						arrived <- struct{}{}
					}
				}
			})
			c := NewClient(ClientOptions{RequestTimeout: waitLimit, MaxConnsPerHost: tc.maxConns})
			u := srv.url("/v1/dynamo/generate")
			frame := requestFrame(t, testID, testBody)
			var errs []<-chan error
			inFlight := tc.sends
			if tc.waiter {
				inFlight--
			}
			for range inFlight {
				errs = append(errs, sendAsync(context.Background(), c, u, frame, plane.Meta{}))
			}
			if tc.settings == nil {
				recv(t, arrived, "the connection") // one dial; the other Sends wait for it
			} else {
				for range inFlight {
					recv(t, arrived, "a request")
				}
			}
			if tc.waiter {
				errs = append(errs, sendAsync(context.Background(), c, u, frame, plane.Meta{}))
				waitForWaiter(t, c, srv.addr)
			}
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			if err := recv(t, closed, "Close"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for i, ch := range errs {
				if err := recv(t, ch, "a Send in flight"); !errors.Is(err, plane.ErrClosed) || plane.Retryable(err) {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			srv.stop()
			goleak.VerifyNone(t, baseline)
		})
	}
}

// An early complete response while the body is still held back by flow control: the client
// must not leave the stream open on the server's side (RFC 9113 §5.1: the server counts it
// against SETTINGS_MAX_CONCURRENT_STREAMS until the client ends or resets it).
func TestConnEarlyResponseEndsStream(t *testing.T) {
	ended := make(chan string, 1)
	srv := startH2(t, func(p *h2Peer) {
		p.handshake(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		fl := newFlow(p, 1000, 16384)
		for win, open := fl.streams[1]; !open || win > 0; win, open = fl.streams[1] {
			fl.recv()
		}
		p.status(1, "413", false)
		p.data(1, true, "too large")
		// A client may also finish the body: give it the window to.
		fl.grant(1, 1<<20)
		fl.grant(0, 1<<20)
		ev := p.await("the client to end stream 1", func(ev h2Event) bool {
			return ev.stream == 1 && (ev.typ == http2.FrameRSTStream || ev.endStream())
		})
		ended <- ev.typ.String()
		_ = p.untilClosed()
	})
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, bigBody(200<<10)), plane.Meta{})
	if pe := planeError(t, err); pe.Code != plane.CodeTooLarge {
		t.Fatalf("got %v %q", pe.Code, pe.Text)
	}
	t.Logf("client ended the stream with %s", recv(t, ended, "the stream's end"))
}

// A frame larger than SETTINGS_MAX_FRAME_SIZE, which the client leaves at its default 16384,
// is a connection error at its header (RFC 9113 §4.2): the client neither waits for nor
// allocates the payload it declares. An HTTP/1.1 answer reads as such a header ("HTTP/1.1 "
// declares 4.7 MB). Each server half-closes after the header, so a client that reads the
// payload fails with "unexpected EOF" instead.
func TestConnFrameSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(p *h2Peer)
	}{
		{"DATA over 16384 bytes", func(p *h2Peer) {
			p.handshake()
			r := p.request()
			hdr := []byte{0x00, 0x40, 0x01, byte(http2.FrameData), 0, 0, 0, 0, byte(r.stream)} // 16385 bytes
			if _, err := p.nc.Write(hdr); err != nil {
				p.fail("write: %v", err)
			}
			_ = p.nc.(*net.TCPConn).CloseWrite()
			p.expectClosed()
		}},
		{"HTTP/1.1 answer", func(p *h2Peer) {
			p.readPreface()
			if _, err := io.WriteString(p.nc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"); err != nil {
				p.fail("write: %v", err)
			}
			_ = p.nc.(*net.TCPConn).CloseWrite()
			_ = p.untilClosed()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startH2(t, tc.script)
			c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
			err := c.Send(context.Background(), srv.url("/v1/dynamo/generate"), requestFrame(t, testID, testBody), plane.Meta{})
			if pe := planeError(t, err); pe.Code != plane.CodeConnect || !strings.Contains(pe.Text, http2.ErrFrameTooLarge.Error()) {
				t.Fatalf("got %v %q, want %v with %q", pe.Code, pe.Text, plane.CodeConnect, http2.ErrFrameTooLarge)
			}
		})
	}
}

// FuzzClientConn feeds the Client arbitrary bytes from a server, after a valid SETTINGS
// frame and once the client's request HEADERS arrived, then the server hangs up: Send returns
// (a *plane.Error or nil), nothing panics, Close returns and every goroutine ends.
func FuzzClientConn(f *testing.F) {
	frame := requestFrame(f, testID, testBody)
	f.Fuzz(func(t *testing.T, script []byte) {
		var wg sync.WaitGroup
		c := NewClient(ClientOptions{RequestTimeout: 200 * time.Millisecond})
		c.dialConn = func(context.Context, string, string) (net.Conn, error) {
			cl, sv := net.Pipe()
			fuzzPeer(sv, script, &wg)
			return cl, nil
		}
		err := c.Send(context.Background(), "http://127.0.0.1:1/v1/dynamo/generate", frame, plane.Meta{})
		if err != nil {
			var pe *plane.Error
			if !errors.As(err, &pe) || pe.Code == plane.CodeUnknown || pe.Code == plane.CodeClosed {
				t.Errorf("Send: %v (%T)", err, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
	})
}

// fuzzPeer plays FuzzClientConn's server on sv: it sends an empty SETTINGS frame, waits for
// the client's first HEADERS (so that frames for stream 1 find it open), writes script and
// hangs up; it reads whatever the client sends meanwhile. Hanging up ends a Send the script
// left unanswered at once (the wait for an answer is the ack-timeout tests' business), which
// keeps the fuzzer fast.
func fuzzPeer(sv net.Conn, script []byte, wg *sync.WaitGroup) {
	headers := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer sv.Close()
		seen := false
		defer func() {
			if !seen {
				close(headers)
			}
		}()
		br := bufio.NewReader(sv)
		if _, err := br.Discard(len(http2.ClientPreface)); err != nil {
			return
		}
		fr := http2.NewFramer(nil, br)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if _, ok := f.(*http2.HeadersFrame); ok && !seen {
				seen = true
				close(headers)
			}
		}
		_, _ = io.Copy(io.Discard, br) // after a frame the Framer refused, until the end
	}()
	go func() {
		defer wg.Done()
		if err := http2.NewFramer(sv, nil).WriteSettings(); err != nil {
			return
		}
		<-headers
		_, _ = sv.Write(script)
		_ = sv.Close()
	}()
}
