package tcp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

func newTestClient(t testing.TB, opts ClientOptions) *Client {
	t.Helper()
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = waitLong
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = waitLong
	}
	c := NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxLong(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	t.Cleanup(cancel)
	return ctx
}

// TestClientReplies maps every worker answer onto the plane's codes.
func TestClientReplies(t *testing.T) {
	const serverMax = 4096
	s, rec := testServer(t, Options{MaxMessageSize: serverMax})
	c := newTestClient(t, ClientOptions{MaxMessageSize: 8192})
	v6 := v6Frame(t)
	big := requestFrame(t, v6ID, `{"text":"`+strings.Repeat("x", 5000)+`"}`)
	huge := requestFrame(t, v6ID, `{"text":"`+strings.Repeat("x", 9000)+`"}`)

	for _, tc := range []struct {
		name      string
		address   string
		frame     []byte
		code      plane.Code // CodeUnknown: success
		text      string
		retryable bool
		accepted  bool // the handler saw it
	}{
		{"ack", address(s, "generate"), v6, plane.CodeUnknown, "", false, true},
		{"tcp scheme", "tcp://" + address(s, "generate"), v6, plane.CodeUnknown, "", false, true},
		{"unknown endpoint", s.Addr().String() + "/694d98147d54be25/nope", v6, plane.CodeUnknownEndpoint, "Unknown endpoint: 694d98147d54be25/nope", true, false},
		{"overloaded", address(s, "busy"), v6, plane.CodeOverloaded, plane.TextOverloaded, true, false},
		{"draining", address(s, "drain"), v6, plane.CodeDraining, plane.TextDraining, true, false},
		{"handler error", address(s, "picky"), v6, plane.CodeBadRequest, "nope", false, false},
		{"bad frame", address(s, "generate"), []byte("junk"), plane.CodeBadRequest, "Two Part Codec Error: Invalid message: No message decoded", false, false},
		{"over the server's limit", address(s, "generate"), big, plane.CodeTooLarge,
			"Read error: message too large: " + strconv.Itoa(len(big)) + " bytes (max: 4096 bytes)", false, false},
		{"over the client's limit", address(s, "generate"), huge, plane.CodeTooLarge,
			"Two Part Codec Error: Message size " + strconv.Itoa(len(huge)) + " exceeds the maximum allowed size of 8192 bytes", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.requests())
			err := c.Send(ctxLong(t), tc.address, tc.frame, plane.Meta{})
			if tc.code == plane.CodeUnknown {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			} else {
				var pe *plane.Error
				if !errors.As(err, &pe) || pe.Code != tc.code || pe.Text != tc.text || pe.Plane != plane.NameTCP {
					t.Fatalf("Send = %#v, want code %v text %q", err, tc.code, tc.text)
				}
				if plane.Retryable(err) != tc.retryable {
					t.Fatalf("Retryable(%v) = %v", err, !tc.retryable)
				}
			}
			if got := len(rec.requests()) - before; got != map[bool]int{true: 1}[tc.accepted] {
				t.Fatalf("handler got %d requests", got)
			}
		})
	}
}

// TestClientHeaders checks the envelope headers a worker sees.
func TestClientHeaders(t *testing.T) {
	s, rec := testServer(t, Options{})
	c := newTestClient(t, ClientOptions{})
	for _, tc := range []struct {
		name string
		meta plane.Meta
		want plane.Meta
	}{
		{"bare", plane.Meta{}, plane.Meta{RequestID: v6ID}},
		{"caller id and trace", plane.Meta{RequestID: "caller", TraceParent: "00-t-s-01", TraceState: "a=b"},
			plane.Meta{RequestID: "caller", TraceParent: "00-t-s-01", TraceState: "a=b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.requests())
			if err := c.Send(ctxLong(t), address(s, "generate"), v6Frame(t), tc.meta); err != nil {
				t.Fatal(err)
			}
			if got := rec.requests()[before].Meta; got != tc.want {
				t.Fatalf("meta %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestControlID(t *testing.T) {
	pretty, err := codec.AppendFrame(nil, []byte(`{ "request_type": "single_in", "id" : "pretty-id" }`), []byte("{}"), 0)
	if err != nil {
		t.Fatal(err)
	}
	escaped, err := codec.AppendFrame(nil, []byte(`{"id":"a\"b","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"{}"}}`), []byte("{}"), 0)
	if err != nil {
		t.Fatal(err)
	}
	v6 := v6Frame(t)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"reqplane layout", v6, v6ID},
		{"escaped id", escaped, `a"b`},
		{"other layout, not a full control header", pretty, ""},
		{"short", v6[:10], ""},
		{"header length beyond frame", v6[:100], ""},
		{"not json", []byte(strings.Repeat("\x00", 24) + "x"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := controlID(tc.frame, plane.Meta{}); got != tc.want {
				t.Fatalf("controlID = %q, want %q", got, tc.want)
			}
			// A sender that knows the id passes it: the frame is not read.
			if got := controlID(tc.frame, plane.Meta{ID: "known"}); got != "known" {
				t.Fatalf("controlID with Meta.ID = %q, want %q", got, "known")
			}
		})
	}
}

// TestClientConcurrent sends 1000 requests at once through pools of various sizes.
func TestClientConcurrent(t *testing.T) {
	for _, pool := range []int{1, 8, 0} {
		t.Run("pool "+strconv.Itoa(pool), func(t *testing.T) {
			s, rec := testServer(t, Options{})
			c := newTestClient(t, ClientOptions{PoolSize: pool})
			const n = 1000
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					id := "req-" + strconv.Itoa(i)
					errs <- c.Send(ctxLong(t), address(s, "generate"), requestFrame(t, id, `{"i":1}`), plane.Meta{})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			if got := len(rec.requests()); got != n {
				t.Fatalf("handler got %d requests, want %d", got, n)
			}
			limit := pool
			if limit == 0 {
				limit = DefaultPoolSize
			}
			c.mu.Lock()
			conns := len(c.conns)
			c.mu.Unlock()
			if conns < 1 || conns > limit {
				t.Fatalf("%d pooled connections, want 1..%d", conns, limit)
			}
			t.Logf("%d connections for %d concurrent sends", conns, n)
		})
	}
}

// TestClientBurstOneConnection: a burst of sends to a new address, fewer than busyThreshold,
// shares the one connection the first of them dials instead of each dialing its own.
func TestClientBurstOneConnection(t *testing.T) {
	s, _ := testServer(t, Options{})
	c := newTestClient(t, ClientOptions{})
	const n = 64
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- c.Send(ctxLong(t), address(s, "generate"), requestFrame(t, "burst-"+strconv.Itoa(i), `{"i":1}`), plane.Meta{})
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if got := c.OpenConns(); got != 1 {
		t.Fatalf("%d connections after a burst of %d sends, want 1", got, n)
	}
}

func TestClientConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String() + "/" + v7Path
	_ = ln.Close()
	c := newTestClient(t, ClientOptions{})
	err = c.Send(ctxLong(t), addr, v6Frame(t), plane.Meta{})
	if plane.CodeOf(err) != plane.CodeConnect || !plane.Retryable(err) {
		t.Fatalf("Send to a closed port: %v", err)
	}
}

func TestClientInvalidAddress(t *testing.T) {
	c := newTestClient(t, ClientOptions{})
	for _, addr := range []string{"", "127.0.0.1:1", "localhost:80/1/generate", "127.0.0.1:0/1/x", "127.0.0.1:80/"} {
		err := c.Send(ctxLong(t), addr, v6Frame(t), plane.Meta{})
		if plane.CodeOf(err) != plane.CodeConnect || !errors.Is(err, codec.ErrInvalidAddress) {
			t.Fatalf("Send(%q) = %v", addr, err)
		}
	}
}

// silentServer accepts connections, reads requests and never replies; received counts them.
func silentServer(t testing.TB, received *atomic.Int64) *fakeServer {
	return startFake(t, func(_ int, c net.Conn) {
		rr := codec.NewTCPRequestReader(c, 0)
		for {
			if _, err := rr.Next(); err != nil {
				return
			}
			received.Add(1)
		}
	})
}

// TestClientAckTimeout: a worker that does not answer gives CodeAckTimeout; the stuck
// connection is retired and closed, and the next request gets a fresh connection.
func TestClientAckTimeout(t *testing.T) {
	var answer atomic.Bool
	var conns atomic.Int64
	f := startFake(t, func(_ int, c net.Conn) {
		conns.Add(1)
		defer conns.Add(-1)
		rr := codec.NewTCPRequestReader(c, 0)
		for {
			if _, err := rr.Next(); err != nil {
				return
			}
			if answer.Load() {
				if _, err := c.Write(codec.AppendTCPReply(nil, nil)); err != nil {
					return
				}
			}
		}
	})
	c := newTestClient(t, ClientOptions{RequestTimeout: 100 * time.Millisecond})
	for range 2 {
		err := c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{})
		if plane.CodeOf(err) != plane.CodeAckTimeout || !plane.Retryable(err) {
			t.Fatalf("Send to a silent worker: %v", err)
		}
	}
	eventually(t, "stuck connections to be closed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.conns) == 0 && conns.Load() == 0
	})
	answer.Store(true)
	if err := c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}); err != nil {
		t.Fatalf("Send after the worker recovered: %v", err)
	}
}

func TestClientContextDeadline(t *testing.T) {
	var received atomic.Int64
	f := silentServer(t, &received)
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Send(ctx, f.address(), v6Frame(t), plane.Meta{})
	if plane.CodeOf(err) != plane.CodeAckTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past the deadline: %v", err)
	}
}

// TestClientServerKilled: the worker dies with requests in flight; all of them fail with
// CodeConnect (retryable: none was acknowledged).
func TestClientServerKilled(t *testing.T) {
	const n = 10
	var received atomic.Int64
	f := startFake(t, func(_ int, c net.Conn) {
		rr := codec.NewTCPRequestReader(c, 0)
		for received.Load() < n {
			if _, err := rr.Next(); err != nil {
				return
			}
			received.Add(1)
		}
		// return closes the connection mid-flight
	})
	c := newTestClient(t, ClientOptions{PoolSize: 1})
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}) }()
	}
	for range n {
		if err := <-errs; plane.CodeOf(err) != plane.CodeConnect || !plane.Retryable(err) {
			t.Fatalf("Send to a dying worker: %v", err)
		}
	}
}

// TestClientClose fails in-flight requests with CodeClosed, refuses later ones and stops every
// goroutine the Client started.
func TestClientClose(t *testing.T) {
	const n = 5
	before := goleak.IgnoreCurrent()
	var received atomic.Int64
	f := silentServer(t, &received)
	c := NewClient(ClientOptions{PoolSize: 1, RequestTimeout: waitLong})
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}) }()
	}
	eventually(t, "the requests to arrive", func() bool { return received.Load() == n })
	c.mu.Lock()
	checking := c.checking
	c.mu.Unlock()
	if !checking {
		t.Fatal("no acknowledgement checker with requests in flight")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, plane.ErrClosed) {
			t.Fatalf("in-flight Send: %v", err)
		}
	}
	if err := c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}); !errors.Is(err, plane.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The reader goroutines and the acknowledgement checker are gone (the fake server's too,
	// once it is closed).
	f.close()
	goleak.VerifyNone(t, before)
}

// TestClientPoolForgetsDeadAddresses: connections to a worker that went away leave no pool behind.
func TestClientPoolForgetsDeadAddresses(t *testing.T) {
	s, _ := testServer(t, Options{})
	c := newTestClient(t, ClientOptions{})
	if err := c.Send(ctxLong(t), address(s, "generate"), v6Frame(t), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool to be forgotten", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pools) == 0 && len(c.conns) == 0
	})
	if err := c.Send(ctxLong(t), address(s, "generate"), v6Frame(t), plane.Meta{}); plane.CodeOf(err) != plane.CodeConnect {
		t.Fatalf("Send to a closed worker: %v", err)
	}
}

func TestReplyError(t *testing.T) {
	for _, tc := range []struct {
		reply string
		code  plane.Code
	}{
		{"Unknown endpoint: 1/x", plane.CodeUnknownEndpoint},
		{plane.TextOverloaded, plane.CodeOverloaded},
		{plane.TextDraining, plane.CodeDraining},
		{"Read error: message too large: 5 bytes (max: 4 bytes)", plane.CodeTooLarge},
		{"Read error: invalid endpoint path length: 0", plane.CodeBadRequest},
		{"Invalid endpoint path", plane.CodeBadRequest},
		{"Two Part Codec Error: Checksum mismatch", plane.CodeBadRequest},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			e := replyError([]byte(tc.reply))
			if e.Code != tc.code || e.Text != tc.reply || !bytes.Contains([]byte(e.Error()), []byte(tc.reply)) {
				t.Fatalf("replyError = %#v", e)
			}
		})
	}
}

func TestAckTick(t *testing.T) {
	for _, tc := range []struct {
		timeout, want time.Duration
	}{
		{time.Millisecond, ackTickMin},
		{200 * time.Millisecond, 25 * time.Millisecond},
		{DefaultRequestTimeout, DefaultRequestTimeout / 8},
		{time.Minute, ackTickMax},
	} {
		if got := ackTick(tc.timeout); got != tc.want {
			t.Errorf("ackTick(%v) = %v, want %v", tc.timeout, got, tc.want)
		}
	}
}

// shortTimeout is the acknowledgement timeout of the tests that let the checker fire.
const shortTimeout = 200 * time.Millisecond

// sendAll starts n Sends at once and returns their results, failing the test if one is still
// waiting after waitLong (a hung request).
func sendAll(ctx context.Context, t *testing.T, c *Client, address string, frame []byte, n int) []error {
	t.Helper()
	results := make(chan error, n)
	for range n {
		go func() { results <- c.Send(ctx, address, frame, plane.Meta{}) }()
	}
	errs := make([]error, 0, n)
	timeout := time.After(waitLong)
	for range n {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-timeout:
			t.Fatalf("%d of %d Sends still waiting after %v", n-len(errs), n, waitLong)
		}
	}
	return errs
}

// TestClientStuckPeer: requests to a worker that never answers, or never even reads, all end
// with a retryable failure instead of hanging, and the stuck connections are closed.
func TestClientStuckPeer(t *testing.T) {
	silent := func(_ <-chan struct{}, c net.Conn) {
		rr := codec.NewTCPRequestReader(c, 0)
		for {
			if _, err := rr.Next(); err != nil {
				return
			}
		}
	}
	deaf := func(stop <-chan struct{}, _ net.Conn) { <-stop }
	// Big enough that the requests cannot all sit in the socket buffers: some write blocks.
	big := requestFrame(t, v6ID, `{"text":"`+strings.Repeat("x", 1<<20)+`"}`)
	for _, tc := range []struct {
		name  string
		serve func(stop <-chan struct{}, c net.Conn)
		pool  int
		n     int
		frame []byte
		ctx   func(t *testing.T) context.Context
		codes []plane.Code // any of
	}{
		// context.Background has no Done channel: only the checker can end the wait.
		{"never answered, no ctx deadline", silent, 0, 1, nil, func(*testing.T) context.Context { return context.Background() },
			[]plane.Code{plane.CodeAckTimeout}},
		{"pipelined, never answered", silent, 1, 16, nil, func(t *testing.T) context.Context { return ctxLong(t) },
			[]plane.Code{plane.CodeAckTimeout}},
		{"pipelined, many connections", silent, 4, 32, nil, func(t *testing.T) context.Context { return ctxLong(t) },
			[]plane.Code{plane.CodeAckTimeout}},
		// Written requests time out; those behind a write the peer never takes fail when the
		// write deadline cuts it.
		{"never read", deaf, 1, 16, big, func(t *testing.T) context.Context { return ctxLong(t) },
			[]plane.Code{plane.CodeAckTimeout, plane.CodeConnect}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			f := startFake(t, func(_ int, c net.Conn) { tc.serve(stop, c) })
			t.Cleanup(func() { close(stop) }) // before the fake server's cleanup waits for it
			c := newTestClient(t, ClientOptions{RequestTimeout: shortTimeout, PoolSize: tc.pool})
			frame := tc.frame
			if frame == nil {
				frame = v6Frame(t)
			}
			for _, err := range sendAll(tc.ctx(t), t, c, f.address(), frame, tc.n) {
				if !slices.Contains(tc.codes, plane.CodeOf(err)) || !plane.Retryable(err) {
					t.Fatalf("Send to a stuck worker: %v, want a retryable one of %v", err, tc.codes)
				}
			}
			eventually(t, "stuck connections to be closed", func() bool { return c.OpenConns() == 0 })
		})
	}
}

// TestClientAckTimeoutNewConnection: after an acknowledgement timeout the next request goes on a
// new connection, and the late reply meant for the timed-out one reaches nobody. The checker,
// idle once no connection is left, starts again with the next one.
func TestClientAckTimeoutNewConnection(t *testing.T) {
	var perConn [2]atomic.Int64
	release := make(chan struct{})
	f := startFake(t, func(i int, c net.Conn) {
		rr := codec.NewTCPRequestReader(c, 0)
		for {
			if _, err := rr.Next(); err != nil {
				return
			}
			perConn[min(i, 1)].Add(1)
			var reply []byte
			if i == 0 {
				<-release
				reply = []byte("Unknown endpoint: late reply")
			}
			if _, err := c.Write(codec.AppendTCPReply(nil, reply)); err != nil {
				return
			}
		}
	})
	defer close(release)
	c := newTestClient(t, ClientOptions{RequestTimeout: shortTimeout})
	err := c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{})
	var pe *plane.Error
	if !errors.As(err, &pe) || pe.Code != plane.CodeAckTimeout || !plane.Retryable(err) ||
		pe.Err == nil || pe.Err.Error() != "no acknowledgement from "+f.ln.Addr().String()+" within 200ms" {
		t.Fatalf("Send to a worker that answers late: %#v", err)
	}
	eventually(t, "the checker to stop with the last connection", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.conns) == 0 && !c.checking
	})
	release <- struct{}{} // the late reply, on a connection the client closed
	if err := c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}); err != nil {
		t.Fatalf("Send on a new connection: %v", err)
	}
	if a, b := perConn[0].Load(), perConn[1].Load(); a != 1 || b != 1 {
		t.Fatalf("requests per connection: %d, %d; want 1, 1", a, b)
	}
}

// TestClientExpireKeepsSlots drives the checker's step by hand: an overdue request fails with
// CodeAckTimeout and retires its connection, while the request behind it keeps waiting there
// and gets its own reply, not the late one meant for the failed request. A request waiting on a
// new connection meanwhile (which would have the failed request's waiter, were that recycled
// while still queued) gets its own reply too.
func TestClientExpireKeepsSlots(t *testing.T) {
	got, gotLater := make(chan struct{}, 2), make(chan struct{}, 1)
	release, releaseLater := make(chan struct{}), make(chan struct{})
	// Unblock the fake server's handlers however the test ends.
	answerFirst := sync.OnceFunc(func() { close(release) })
	answerLater := sync.OnceFunc(func() { close(releaseLater) })
	defer answerFirst()
	defer answerLater()
	f := startFake(t, func(i int, c net.Conn) {
		rr := codec.NewTCPRequestReader(c, 0)
		if i > 0 {
			for {
				if _, err := rr.Next(); err != nil {
					return
				}
				select {
				case gotLater <- struct{}{}:
				default:
				}
				<-releaseLater
				if _, err := c.Write(codec.AppendTCPReply(nil, nil)); err != nil {
					return
				}
			}
		}
		for range 2 {
			if _, err := rr.Next(); err != nil {
				return
			}
			got <- struct{}{}
		}
		<-release
		reply := codec.AppendTCPReply(nil, []byte("Unknown endpoint: late reply"))
		reply = codec.AppendTCPReply(reply, nil)
		if _, err := c.Write(reply); err != nil {
			return
		}
		_, _ = rr.Next() // until the client goes away
	})
	// The checker's own deadline is far away: only the explicit expire below fails anything.
	c := newTestClient(t, ClientOptions{RequestTimeout: waitLong})
	received := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(waitLong):
			t.Fatalf("%s not received", what)
		}
	}
	send := func() <-chan error {
		res := make(chan error, 1)
		go func() { res <- c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}) }()
		return res
	}
	first := send()
	received("first request", got)
	second := send()
	received("second request", got)

	c.mu.Lock()
	var cn *conn
	for x := range c.conns {
		cn = x
	}
	c.mu.Unlock()
	cn.mu.Lock()
	q := cn.q[cn.qhead:]
	if len(q) != 2 || !q[1].deadline.After(q[0].deadline) {
		cn.mu.Unlock()
		t.Fatalf("queue of %d; want 2 with increasing deadlines", len(q))
	}
	due := q[0].deadline
	cn.mu.Unlock()
	cn.expire(due)

	if err := <-first; plane.CodeOf(err) != plane.CodeAckTimeout || !plane.Retryable(err) {
		t.Fatalf("overdue Send: %v", err)
	}
	if !cn.unusable.Load() {
		t.Fatal("connection not retired after an acknowledgement timeout")
	}
	third := send() // on a new connection: the retired one takes no new request
	received("request on a new connection", gotLater)
	answerFirst()
	if err := <-second; err != nil {
		t.Fatalf("second Send got %v, want its own ack", err)
	}
	answerLater()
	if err := <-third; err != nil {
		t.Fatalf("Send on the new connection got %v, want its own ack", err)
	}
	eventually(t, "the retired connection to close", func() bool { return c.OpenConns() == 1 })
}

// doneCtx is a context whose end the test decides, with the error it chooses.
type doneCtx struct {
	context.Context
	done chan struct{}
	err  error
}

func (c *doneCtx) Done() <-chan struct{} { return c.done }

func (c *doneCtx) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// TestClientContextEnds: a caller's context ending abandons the request at once, keeping its
// slot, so the reply meant for it is dropped and the next request gets its own.
func TestClientContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		code      plane.Code
		retryable bool
	}{
		{"cancelled", context.Canceled, plane.CodeUnknown, false},
		{"deadline", context.DeadlineExceeded, plane.CodeAckTimeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan struct{}, 2)
			reply := make(chan struct{})
			f := startFake(t, func(_ int, c net.Conn) {
				rr := codec.NewTCPRequestReader(c, 0)
				for range 2 {
					if _, err := rr.Next(); err != nil {
						return
					}
					got <- struct{}{}
				}
				<-reply
				// Answer both in order: a refusal for the first, an ack for the second.
				out := codec.AppendTCPReply(nil, []byte("Unknown endpoint: first"))
				out = codec.AppendTCPReply(out, nil)
				if _, err := c.Write(out); err != nil {
					return
				}
				_, _ = rr.Next() // until the client goes away
			})
			c := newTestClient(t, ClientOptions{PoolSize: 1})
			ctx := &doneCtx{Context: context.Background(), done: make(chan struct{}), err: tc.err}
			first := make(chan error, 1)
			go func() { first <- c.Send(ctx, f.address(), v6Frame(t), plane.Meta{}) }()
			select {
			case <-got:
			case <-time.After(waitLong):
				t.Fatal("first request not received")
			}
			close(ctx.done)
			select {
			case err := <-first:
				if plane.CodeOf(err) != tc.code || !errors.Is(err, tc.err) || plane.Retryable(err) != tc.retryable {
					t.Fatalf("abandoned Send: %v", err)
				}
			case <-time.After(waitLong):
				t.Fatal("Send still waiting after its context ended")
			}
			second := make(chan error, 1)
			go func() { second <- c.Send(ctxLong(t), f.address(), v6Frame(t), plane.Meta{}) }()
			select {
			case <-got:
			case <-time.After(waitLong):
				t.Fatal("second request not received")
			}
			close(reply)
			if err := <-second; err != nil {
				t.Fatalf("second Send got %v, want its own ack", err)
			}
		})
	}
}
