package http2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

func TestClientSendAccepted(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	u := addEndpoint(t, s, "generate", gen)
	c := newClient(t, ClientOptions{})
	if c.Name() != plane.NameHTTP {
		t.Fatalf("Name %q", c.Name())
	}
	meta := plane.Meta{RequestID: "caller-1", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "k=v"}
	if err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), meta); err != nil {
		t.Fatal(err)
	}
	reqs := gen.requests()
	if len(reqs) != 1 || string(reqs[0].Body) != testBody || reqs[0].Meta != meta || reqs[0].Control.ID != testID {
		t.Fatalf("admitted %+v", reqs)
	}
}

// The headers on the wire: content type, request-id = the control id, x-request-id = the
// caller's id (else the control id), trace context; all over HTTP/2.
func TestClientHeaders(t *testing.T) {
	type seen struct {
		proto  int
		header http.Header
	}
	got := make(chan seen, 1)
	base := startRaw(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- seen{r.ProtoMajor, r.Header.Clone()}
		w.WriteHeader(http.StatusAccepted)
	})
	c := newClient(t, ClientOptions{})
	escapedID := `id-with-"quote"`
	escapedFrame := func() []byte {
		hdr := codec.AppendRequestControl(nil, escapedID, testInfo(escapedID))
		f, _ := codec.AppendFrame(nil, hdr, []byte(testBody), 0)
		return f
	}()
	for _, tc := range []struct {
		name  string
		frame []byte
		meta  plane.Meta
		want  map[string]string
	}{
		{"bare", requestFrame(t, testID, testBody), plane.Meta{},
			map[string]string{"Content-Type": "application/octet-stream", "Request-Id": testID, "X-Request-Id": testID, "Traceparent": ""}},
		{"caller id and trace", requestFrame(t, testID, testBody), plane.Meta{RequestID: "caller", TraceParent: "tp", TraceState: "ts"},
			map[string]string{"Request-Id": testID, "X-Request-Id": "caller", "Traceparent": "tp", "Tracestate": "ts"}},
		{"escaped id parsed by the codec", escapedFrame, plane.Meta{},
			map[string]string{"Request-Id": escapedID, "X-Request-Id": escapedID}},
		{"invalid header value dropped", requestFrame(t, testID, testBody), plane.Meta{RequestID: "a\r\nb", TraceParent: "tp"},
			map[string]string{"Request-Id": testID, "X-Request-Id": "", "Traceparent": "tp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Send(context.Background(), base+"/v1/dynamo/generate", tc.frame, tc.meta); err != nil {
				t.Fatal(err)
			}
			s := <-got
			if s.proto != 2 {
				t.Fatalf("sent over HTTP/%d, want h2c", s.proto)
			}
			for k, v := range tc.want {
				if s.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, s.header.Get(k), v)
				}
			}
		})
	}
}

func TestClientRefusals(t *testing.T) {
	long := strings.Repeat("x", 5000)
	base := startRaw(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		var status int
		_, _ = fmt.Sscanf(r.URL.Path, "/%d", &status)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, r.URL.Query().Get("body"))
		if r.URL.Query().Has("long") {
			_, _ = io.WriteString(w, long)
		}
	})
	c := newClient(t, ClientOptions{})
	for _, tc := range []struct {
		path  string
		code  plane.Code
		text  string
		retry bool
	}{
		{"/200", 0, "", false},
		{"/202", 0, "", false},
		{"/204", 0, "", false},
		{"/404?body=Endpoint+not+found", plane.CodeUnknownEndpoint, "HTTP request failed with status 404 Not Found: Endpoint not found", true},
		{"/400?body=Two+Part+Codec+Error:+Checksum+mismatch", plane.CodeBadRequest, "HTTP request failed with status 400 Bad Request: Two Part Codec Error: Checksum mismatch", false},
		{"/413?body=too+big", plane.CodeTooLarge, "HTTP request failed with status 413 Request Entity Too Large: too big", false},
		{"/503?body=" + url.QueryEscape(plane.TextOverloaded), plane.CodeOverloaded, "HTTP request failed with status 503 Service Unavailable: " + plane.TextOverloaded, true},
		{"/503?body=" + url.QueryEscape(plane.TextDraining), plane.CodeDraining, "HTTP request failed with status 503 Service Unavailable: " + plane.TextDraining, true},
		{"/503?body=maintenance", plane.CodeRefused, "HTTP request failed with status 503 Service Unavailable: maintenance", false},
		{"/500?body=boom", plane.CodeRefused, "HTTP request failed with status 500 Internal Server Error: boom", false},
		{"/405", plane.CodeRefused, "HTTP request failed with status 405 Method Not Allowed: ", false},
		{"/302?body=moved", plane.CodeRefused, "HTTP request failed with status 302 Found: moved", false},
		{"/599?body=odd", plane.CodeRefused, "HTTP request failed with status 599 <unknown status code>: odd", false},
		{"/500?long", plane.CodeRefused, "HTTP request failed with status 500 Internal Server Error: " + long[:maxErrorBody], false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			err := c.Send(context.Background(), base+tc.path, requestFrame(t, testID, testBody), plane.Meta{})
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			pe := planeError(t, err)
			var status int
			_, _ = fmt.Sscanf(tc.path, "/%d", &status)
			if pe.Plane != plane.NameHTTP || pe.Code != tc.code || pe.Status != status || pe.Text != tc.text || plane.Retryable(err) != tc.retry {
				t.Fatalf("got %+v (retryable %v), want code %v status %d retryable %v text %q",
					pe, plane.Retryable(err), tc.code, status, tc.retry, tc.text)
			}
		})
	}
}

// The refusals of this package's Server come back to its Client as the right codes.
func TestClientAgainstServer(t *testing.T) {
	s := startServer(t, Options{MaxMessageSize: 1024})
	u := addEndpoint(t, s, "generate", &recorder{})
	busy := addEndpoint(t, s, "busy", &recorder{refuse: plane.ErrOverloaded})
	drain := addEndpoint(t, s, "drain", &recorder{refuse: plane.ErrDraining})
	c := newClient(t, ClientOptions{})
	good := requestFrame(t, testID, testBody)
	badSum := append([]byte(nil), good...)
	badSum[20] ^= 0xff
	big := requestFrame(t, testID, `{"text":"`+strings.Repeat("y", 1024)+`"}`)
	for _, tc := range []struct {
		name  string
		url   string
		frame []byte
		code  plane.Code
		text  string
	}{
		{"accepted", u, good, 0, ""},
		{"unknown endpoint", strings.Replace(u, "generate", "nope", 1), good, plane.CodeUnknownEndpoint, "HTTP request failed with status 404 Not Found: Endpoint not found"},
		{"checksum", u, badSum, plane.CodeBadRequest, "HTTP request failed with status 400 Bad Request: Two Part Codec Error: Checksum mismatch"},
		{"overloaded", busy, good, plane.CodeOverloaded, "HTTP request failed with status 503 Service Unavailable: " + plane.TextOverloaded},
		{"draining", drain, good, plane.CodeDraining, "HTTP request failed with status 503 Service Unavailable: " + plane.TextDraining},
		{"too large for the server", u, big, plane.CodeTooLarge, fmt.Sprintf(
			"HTTP request failed with status 413 Request Entity Too Large: Two Part Codec Error: Message size %d exceeds the maximum allowed size of 1024 bytes", len(big))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Send(context.Background(), tc.url, tc.frame, plane.Meta{})
			if tc.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if pe := planeError(t, err); pe.Code != tc.code || pe.Text != tc.text {
				t.Fatalf("got %v %q, want %v %q", pe.Code, pe.Text, tc.code, tc.text)
			}
		})
	}
}

// Frames the Client refuses to send.
func TestClientRefusesFrames(t *testing.T) {
	var hits atomic.Int32
	base := startRaw(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	c := newClient(t, ClientOptions{MaxMessageSize: 512})
	big := requestFrame(t, testID, `{"text":"`+strings.Repeat("z", 512)+`"}`)
	for _, tc := range []struct {
		name  string
		frame []byte
		code  plane.Code
		text  string
	}{
		{"too large", big, plane.CodeTooLarge, fmt.Sprintf("Two Part Codec Error: Message size %d exceeds the maximum allowed size of 512 bytes", len(big))},
		{"empty", nil, plane.CodeBadRequest, "Two Part Codec Error: Invalid message: No message decoded"},
		{"short", requestFrame(t, testID, testBody)[:30], plane.CodeBadRequest, "Two Part Codec Error: " + "Invalid message: " + codec.DetailNotRequest},
		{"data only", rawFrame(t, "", "{}"), plane.CodeBadRequest, "Two Part Codec Error: Invalid message: " + codec.DetailNotRequest},
		{"header not json", rawFrame(t, "nope", "{}"), plane.CodeBadRequest, "Two Part Codec Error: Invalid message: control header: "},
		{"no id", rawFrame(t, `{"request_type":"single_in"}`, "{}"), plane.CodeBadRequest, "Two Part Codec Error: Invalid message: control header: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Send(context.Background(), base+"/v1/dynamo/generate", tc.frame, plane.Meta{})
			pe := planeError(t, err)
			if pe.Code != tc.code || !strings.HasPrefix(pe.Text, tc.text) || plane.Retryable(err) {
				t.Fatalf("got %v %q, want %v %q…", pe.Code, pe.Text, tc.code, tc.text)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d refused frames were sent", n)
	}
}

func TestControlID(t *testing.T) {
	// A full control header in another field order, pretty-printed, with an escaped id.
	other := func(id string) []byte {
		info := codec.AppendString(nil, string(codec.AppendCallHomeInfo(nil, testInfo(id))))
		return rawFrame(t, "{\n  \"request_type\": \"single_in\",\n  \"response_type\": \"many_out\",\n  \"id\": "+
			string(codec.AppendString(nil, id))+",\n  \"connection_info\": {\"transport\": \"tcp_server\", \"info\": "+string(info)+"}\n}", "{}")
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"ours", requestFrame(t, testID, testBody), testID},
		{"unicode", requestFrame(t, "idé€", testBody), "idé€"},
		{"escaped", requestFrame(t, `a"b`, testBody), `a"b`},
		{"other field order", other("abc"), "abc"},
		{"other field order, escaped", other(`a\b`), `a\b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plane.ControlID(tc.frame)
			if err != nil || got != tc.want {
				t.Fatalf("controlID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestClientConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := newClient(t, ClientOptions{})
	err = c.Send(context.Background(), "http://"+addr+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	if pe := planeError(t, err); pe.Code != plane.CodeConnect || !plane.Retryable(err) || !errors.Is(err, plane.ErrConnect) {
		t.Fatalf("got %+v", pe)
	}
}

func TestClientInvalidAddress(t *testing.T) {
	c := newClient(t, ClientOptions{})
	for _, addr := range []string{"://nope", "127.0.0.1:80/x/generate", "https://127.0.0.1:1/v1/dynamo/generate", "http:///v1/dynamo/generate"} {
		t.Run(addr, func(t *testing.T) {
			err := c.Send(context.Background(), addr, requestFrame(t, testID, testBody), plane.Meta{})
			if pe := planeError(t, err); pe.Code != plane.CodeConnect {
				t.Fatalf("got %+v", pe)
			}
		})
	}
}

// hangingServer answers nothing until the test ends; arrived receives each request's path.
func hangingServer(t *testing.T) (base string, arrived <-chan string) {
	release := make(chan struct{})
	ch := make(chan string, 16)
	base = startRaw(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		ch <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before startRaw's cleanup closes the server
	return base, ch
}

func TestClientAckTimeout(t *testing.T) {
	base, _ := hangingServer(t)
	c := newClient(t, ClientOptions{RequestTimeout: 200 * time.Millisecond})
	err := c.Send(context.Background(), base+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	pe := planeError(t, err)
	if pe.Code != plane.CodeAckTimeout || !plane.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %+v", pe)
	}

	// The caller's own, shorter deadline is an ack timeout too.
	long := newClient(t, ClientOptions{RequestTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = long.Send(ctx, base+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	if pe := planeError(t, err); pe.Code != plane.CodeAckTimeout {
		t.Fatalf("caller deadline: got %+v", pe)
	}
}

func TestClientCanceledByCaller(t *testing.T) {
	base, arrived := hangingServer(t)
	c := newClient(t, ClientOptions{RequestTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- c.Send(ctx, base+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	}()
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("request never arrived")
	}
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(waitLimit):
		t.Fatal("Send did not return after cancel")
	}
	if !errors.Is(err, context.Canceled) || plane.Retryable(err) {
		t.Fatalf("got %v (retryable %v)", err, plane.Retryable(err))
	}
	planeError(t, err)
}

func TestClientClose(t *testing.T) {
	base, arrived := hangingServer(t)
	c := NewClient(ClientOptions{RequestTimeout: time.Hour})
	errc := make(chan error, 1)
	go func() {
		errc <- c.Send(context.Background(), base+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	}()
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("request never arrived")
	}
	// Close aborts the Send in flight and waits for it; concurrent Closes all return.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	// Send's deferred bookkeeping ends before its result reaches errc: wait for it, bounded.
	select {
	case err := <-errc:
		if !errors.Is(err, plane.ErrClosed) {
			t.Fatalf("Send in flight at Close: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the Send in flight did not return")
	}
	err := c.Send(context.Background(), base+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
	if !errors.Is(err, plane.ErrClosed) || plane.Retryable(err) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// 1000 concurrent Sends on one Client all succeed, multiplexed over few connections.
func TestClientConcurrentSends(t *testing.T) {
	const n = 1000
	var conns atomic.Int32
	s := NewServer(Options{Host: "127.0.0.1"})
	s.connState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	gen := &recorder{}
	u := addEndpoint(t, s, "generate", gen)
	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	frame := requestFrame(t, testID, testBody)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- c.Send(context.Background(), u, frame, plane.Meta{}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(gen.requests()); got != n {
		t.Fatalf("handler admitted %d, want %d", got, n)
	}
	c.mu.RLock()
	open := len(c.conns)
	c.mu.RUnlock()
	t.Logf("%d concurrent sends: %d connections dialed, %d kept", n, conns.Load(), open)
	// The first Send primes the host; the rest share its connection (stream limit 1000).
	if conns.Load() > 2 {
		t.Fatalf("%d connections dialed for %d concurrent sends", conns.Load(), n)
	}
}

// When every connection is at the server's stream limit, the Client opens another rather than
// queueing: 40 requests held open at once by a server allowing 10 streams need 4 connections.
// (A first, answered request primes the host; requests held before it would hold the priming.)
func TestClientOpensConnectionsBeyondStreamLimit(t *testing.T) {
	const n, streams = 40, 10
	var conns atomic.Int32
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: &p,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: streams},
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/warm" {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			arrived.Done()
			select { // hold every stream until all n are in flight at once
			case <-all:
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}),
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close(); <-served }()

	c := newClient(t, ClientOptions{RequestTimeout: waitLimit})
	frame := requestFrame(t, testID, testBody)
	if err := c.Send(context.Background(), "http://"+ln.Addr().String()+"/warm", frame, plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			errs <- c.Send(context.Background(), "http://"+ln.Addr().String()+"/hold", frame, plane.Meta{})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d requests held at once with %d streams per connection: %d connections dialed", n, streams, conns.Load())
	if conns.Load() < n/streams {
		t.Fatalf("%d connections carried %d concurrent streams with a limit of %d", conns.Load(), n, streams)
	}
}

// The hosts key is the address net/http hands the dialer.
func TestDialAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:8081/v1/dynamo/generate", "127.0.0.1:8081"},
		{"http://[::1]:8081/v1/dynamo/generate", "[::1]:8081"},
		{"http://[fe80::1%25eth0]:8081/x", "[fe80::1%eth0]:8081"},
		{"http://worker/x", "worker:80"},
		{"http://[::1]/x", "[::1]:80"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := dialAddr(u); got != tc.want {
			t.Errorf("dialAddr(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An unreachable worker leaves no pool behind, and a reachable one's pool lives while its
// connection does and is forgotten when it closes.
func TestClientForgetsPools(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := newClient(t, ClientOptions{})
	pooled := func(host string) *pool {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return c.pools[host]
	}
	for range 2 {
		err := c.Send(context.Background(), "http://"+addr+"/v1/dynamo/generate", requestFrame(t, testID, testBody), plane.Meta{})
		if plane.CodeOf(err) != plane.CodeConnect {
			t.Fatalf("Send: %v", err)
		}
		if pooled(addr) != nil {
			t.Fatal("an unreachable worker left a pool")
		}
	}
	s := startServer(t, Options{})
	u := addEndpoint(t, s, "generate", &recorder{})
	if err := c.Send(context.Background(), u, requestFrame(t, testID, testBody), plane.Meta{}); err != nil {
		t.Fatal(err)
	}
	host := s.Addr().String()
	p := pooled(host)
	if p == nil {
		t.Fatal("no pool after a successful Send")
	}
	p.mu.Lock()
	n := len(p.conns)
	p.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections after one Send", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for pooled(host) != nil {
		if time.Now().After(deadline) {
			t.Fatal("pool still there after its connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
