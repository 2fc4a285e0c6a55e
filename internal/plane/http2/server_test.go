package http2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// onlyReader hides a reader's length, so net/http sends the body without Content-Length
// (chunked on HTTP/1.1, bare DATA frames on HTTP/2).
type onlyReader struct{ io.Reader }

func TestServerAnswers(t *testing.T) {
	const max = 4096
	s := startServer(t, Options{MaxMessageSize: max})
	gen := &recorder{}
	base := strings.TrimSuffix(addEndpoint(t, s, "generate", gen), "/generate")
	addEndpoint(t, s, "busy", &recorder{refuse: plane.ErrOverloaded})
	addEndpoint(t, s, "drain", &recorder{refuse: plane.ErrDraining})
	addEndpoint(t, s, "picky", &recorder{refuse: errors.New("request refused by handler")})
	addEndpoint(t, s, "wrapped", &recorder{refuse: &plane.Error{Code: plane.CodeOverloaded, Text: plane.TextOverloaded, Err: io.EOF}})

	good := requestFrame(t, testID, testBody)
	badSum := bytes.Clone(good)
	badSum[23] ^= 1
	wrongCtx := codec.AppendRequestControl(nil, testID, codec.CallHomeInfo{Address: "127.0.0.1:1", Subject: "s", Context: "other", StreamType: "response"})
	// A frame whose prefix declares far more than max (and than it carries).
	hugePrefix := bytes.Clone(good[:codec.PrefixLen])
	hugePrefix[8] = 0x01 // body_len += 2^56
	bigBody := requestFrame(t, testID, `{"text":"`+strings.Repeat("x", max)+`"}`)
	// A small valid frame followed by more than max bytes of garbage.
	trailingFlood := append(bytes.Clone(good), bytes.Repeat([]byte{'z'}, max)...)

	for _, tc := range []struct {
		name     string
		method   string
		path     string
		abs      bool // path is absolute, not under the root
		body     []byte
		noLength bool // send without Content-Length
		status   int
		text     string // the whole answer body
		prefix   bool   // text is only a prefix of the answer
	}{
		{name: "accepted", path: "/generate", body: good, status: http.StatusAccepted},
		{name: "accepted without length", path: "/generate", body: good, noLength: true, status: http.StatusAccepted},
		{name: "wrong method", method: http.MethodGet, path: "/generate", status: http.StatusMethodNotAllowed},
		{name: "wrong method on unknown endpoint", method: http.MethodPut, path: "/nope", body: good, status: http.StatusMethodNotAllowed},
		{name: "unknown endpoint", path: "/nope", body: good, status: http.StatusNotFound, text: plane.TextEndpointNotFound},
		{name: "outside root", path: "/other/generate", abs: true, body: good, status: http.StatusNotFound, text: plane.TextEndpointNotFound},
		{name: "root prefix without slash", path: "/v1/dynamogenerate", abs: true, body: good, status: http.StatusNotFound, text: plane.TextEndpointNotFound},
		{name: "root itself", path: "/", body: good, status: http.StatusNotFound, text: plane.TextEndpointNotFound},
		{name: "empty body", path: "/generate", status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: No message decoded"},
		{name: "truncated frame", path: "/generate", body: good[:len(good)-1], status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: No message decoded"},
		{name: "truncated prefix", path: "/generate", body: good[:23], noLength: true, status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: No message decoded"},
		{name: "trailing bytes", path: "/generate", body: append(bytes.Clone(good), 0), status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: 1 trailing bytes"},
		{name: "checksum mismatch", path: "/generate", body: badSum, status: http.StatusBadRequest, text: "Two Part Codec Error: Checksum mismatch"},
		{name: "header only", path: "/generate", body: rawFrame(t, `"x"`, ""), status: http.StatusBadRequest, text: plane.TextNotHeaderAndData},
		{name: "data only", path: "/generate", body: rawFrame(t, "", "{}"), status: http.StatusBadRequest, text: plane.TextNotHeaderAndData},
		{name: "control header not json", path: "/generate", body: rawFrame(t, "nope", "{}"), status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: control header: ", prefix: true},
		{name: "control header wrong context", path: "/generate", body: rawFrame(t, string(wrongCtx), "{}"), status: http.StatusBadRequest, text: "Two Part Codec Error: Invalid message: control header: Invalid context", prefix: true},
		{name: "too large by content-length", path: "/generate", body: bigBody, status: http.StatusRequestEntityTooLarge,
			text: "Two Part Codec Error: Message size " + strconv.Itoa(len(bigBody)) + " exceeds the maximum allowed size of 4096 bytes"},
		{name: "too large by body", path: "/generate", body: bigBody, noLength: true, status: http.StatusRequestEntityTooLarge,
			text: "Two Part Codec Error: Message size " + strconv.Itoa(len(bigBody)) + " exceeds the maximum allowed size of 4096 bytes"},
		{name: "too large by prefix", path: "/generate", body: hugePrefix, noLength: true, status: http.StatusRequestEntityTooLarge,
			text: "Two Part Codec Error: Message size " + strconv.FormatUint(1<<56+uint64(len(good)), 10) + " exceeds the maximum allowed size of 4096 bytes"},
		{name: "too large by trailing flood", path: "/generate", body: trailingFlood, noLength: true, status: http.StatusRequestEntityTooLarge,
			text: "Two Part Codec Error: Message size 4097 exceeds the maximum allowed size of 4096 bytes"},
		{name: "overloaded", path: "/busy", body: good, status: http.StatusServiceUnavailable, text: plane.TextOverloaded},
		{name: "overloaded wrapped", path: "/wrapped", body: good, status: http.StatusServiceUnavailable, text: plane.TextOverloaded},
		{name: "draining", path: "/drain", body: good, status: http.StatusServiceUnavailable, text: plane.TextDraining},
		{name: "handler error", path: "/picky", body: good, status: http.StatusBadRequest, text: "request refused by handler"},
	} {
		for _, h2c := range []bool{false, true} {
			proto := "HTTP/1.1"
			if h2c {
				proto = "h2c"
			}
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				method := tc.method
				if method == "" {
					method = http.MethodPost
				}
				var body io.Reader = bytes.NewReader(tc.body)
				if tc.noLength {
					body = onlyReader{body}
				}
				u := base + tc.path
				if tc.abs {
					u = strings.TrimSuffix(base, s.opts.RootPath) + tc.path
				}
				req, err := http.NewRequest(method, u, body)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := httpClient(t, h2c).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{false: 1, true: 2}[h2c]; resp.ProtoMajor != want {
					t.Fatalf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, want)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tc.status)
				}
				if text := string(got); tc.prefix && !strings.HasPrefix(text, tc.text) || !tc.prefix && text != tc.text {
					t.Fatalf("body %q, want %q", text, tc.text)
				}
				if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
					t.Fatalf("405 with Allow %q", resp.Header.Get("Allow"))
				}
				if tc.status != http.StatusAccepted && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
					t.Fatalf("refusal content type %q", resp.Header.Get("Content-Type"))
				}
			})
		}
	}

	// Every accepted request reached the handler, complete.
	reqs := gen.requests()
	if len(reqs) != 4 {
		t.Fatalf("handler admitted %d requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.Plane != plane.NameHTTP || r.Endpoint != endpoint("generate") || string(r.Body) != testBody ||
			r.Control.ID != testID || r.CallHome != testInfo(testID) || r.Meta.RequestID != testID {
			t.Fatalf("admitted request %+v", r)
		}
	}
}

// A request whose Content-Length alone exceeds the limit is refused before its body is sent.
func TestServerRefusesContentLengthBeforeReading(t *testing.T) {
	s := startServer(t, Options{MaxMessageSize: 1024})
	addEndpoint(t, s, "generate", &recorder{})
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, "POST /v1/dynamo/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 33554433\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want := "Two Part Codec Error: Message size 33554433 exceeds the maximum allowed size of 1024 bytes"
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(got) != want {
		t.Fatalf("got %d %q, want 413 %q", resp.StatusCode, got, want)
	}
}

// Meta travels in headers: trace context and the caller's request id.
func TestServerMeta(t *testing.T) {
	s := startServer(t, Options{})
	gen := &recorder{}
	u := addEndpoint(t, s, "generate", gen)
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		wantID string
	}{
		{"control id when no header", nil, testID},
		{"x-request-id first", map[string]string{"x-request-id": "a", "request-id": "b", "x-dynamo-request-id": "c"}, "a"},
		{"request-id next", map[string]string{"request-id": "b", "x-dynamo-request-id": "c"}, "b"},
		{"x-dynamo-request-id last", map[string]string{"x-dynamo-request-id": "c"}, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(gen.requests())
			req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(requestFrame(t, testID, testBody)))
			req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			req.Header.Set("tracestate", "k=v")
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := httpClient(t, true).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			drainClose(resp.Body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d", resp.StatusCode)
			}
			reqs := gen.requests()
			m := reqs[before].Meta
			if m.RequestID != tc.wantID || m.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || m.TraceState != "k=v" {
				t.Fatalf("meta %+v, want request id %q", m, tc.wantID)
			}
		})
	}
}

func TestServerLifecycle(t *testing.T) {
	ctx := context.Background()
	s := NewServer(Options{Host: "127.0.0.1"})
	if s.Name() != plane.NameHTTP || s.Addr() != nil {
		t.Fatalf("Name %q, Addr %v before Start", s.Name(), s.Addr())
	}
	if _, err := s.Add(ctx, endpoint("generate"), &recorder{}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Add before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	// A second server cannot bind the same port.
	taken := NewServer(Options{Host: "127.0.0.1", Port: s.Addr().(*net.TCPAddr).Port})
	if err := taken.Start(ctx); err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
	_ = taken.Close()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Add(canceled, endpoint("generate"), &recorder{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with canceled ctx: %v", err)
	}
	u := addEndpoint(t, s, "generate", &recorder{})

	// Concurrent Close calls all return once the server is down.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if _, err := s.Add(ctx, endpoint("other"), &recorder{}); !errors.Is(err, plane.ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, plane.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if resp, err := httpClient(t, true).Post(u, "application/octet-stream", bytes.NewReader(requestFrame(t, testID, testBody))); err == nil {
		drainClose(resp.Body)
		t.Fatalf("closed server answered %d", resp.StatusCode)
	}

	// Closing a server that never started is fine.
	if err := NewServer(Options{}).Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServerRoutes(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, Options{})
	port := strconv.Itoa(s.Addr().(*net.TCPAddr).Port)
	first, second := &recorder{}, &recorder{}
	ep := endpoint("generate")
	u := addEndpoint(t, s, "generate", first)
	if want := "http://127.0.0.1:" + port + "/v1/dynamo/generate"; u != want {
		t.Fatalf("URL %q, want %q", u, want)
	}

	// Same namespace and component, new instance id: replaces the route.
	next := ep
	next.InstanceID = 0x1234
	if _, err := s.Add(ctx, next, second); err != nil {
		t.Fatal(err)
	}
	// Another component cannot take the name.
	other := ep
	other.Component = "prefill"
	if _, err := s.Add(ctx, other, &recorder{}); !errors.Is(err, ErrEndpointConflict) {
		t.Fatalf("Add for another component: %v", err)
	}
	for _, bad := range []plane.Endpoint{{Namespace: "ns", Component: "c"}, {Namespace: "ns", Component: "c", Name: "a/b"}} {
		if _, err := s.Add(ctx, bad, &recorder{}); !errors.Is(err, ErrInvalidEndpoint) {
			t.Fatalf("Add(%v): %v", bad, err)
		}
	}
	if _, err := s.Add(ctx, endpoint("nil-handler"), nil); !errors.Is(err, ErrInvalidEndpoint) {
		t.Fatalf("Add with nil handler: %v", err)
	}
	post := func() int {
		t.Helper()
		resp, err := httpClient(t, true).Post(u, "", bytes.NewReader(requestFrame(t, testID, testBody)))
		if err != nil {
			t.Fatal(err)
		}
		drainClose(resp.Body)
		return resp.StatusCode
	}
	if st := post(); st != http.StatusAccepted {
		t.Fatalf("status %d", st)
	}
	if len(first.requests()) != 0 || len(second.requests()) != 1 || second.requests()[0].Endpoint != next {
		t.Fatal("the replacing route did not get the request")
	}
	// A stale Remove (the replaced endpoint) leaves the successor routed.
	s.Remove(ep)
	if st := post(); st != http.StatusAccepted {
		t.Fatalf("after stale Remove: status %d", st)
	}
	s.Remove(next)
	if st := post(); st != http.StatusNotFound {
		t.Fatalf("after Remove: status %d", st)
	}
	s.Remove(next) // removing twice is harmless
	// Once removed, the name is free for any component.
	if _, err := s.Add(ctx, other, &recorder{}); err != nil {
		t.Fatalf("Add after Remove: %v", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        Options
		root      string
		advertise string
	}{
		{"zero", Options{}, "/v1/dynamo", "127.0.0.1"},
		{"slash root", Options{RootPath: "/"}, "", "127.0.0.1"},
		{"root without slashes", Options{RootPath: "v1/rpc/"}, "/v1/rpc", "127.0.0.1"},
		{"specific host advertised", Options{Host: "10.0.0.5"}, "/v1/dynamo", "10.0.0.5"},
		{"unspecified host", Options{Host: "0.0.0.0"}, "/v1/dynamo", "127.0.0.1"},
		{"unspecified v6 host", Options{Host: "::"}, "/v1/dynamo", "127.0.0.1"},
		{"explicit advertise", Options{Host: "0.0.0.0", AdvertiseHost: "fe80::1"}, "/v1/dynamo", "fe80::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.in.withDefaults()
			if o.RootPath != tc.root || o.AdvertiseHost != tc.advertise {
				t.Fatalf("root %q advertise %q, want %q %q", o.RootPath, o.AdvertiseHost, tc.root, tc.advertise)
			}
			if o.MaxMessageSize != codec.DefaultMaxMessageSize || o.ReadHeaderTimeout != DefaultReadHeaderTimeout ||
				o.ReadTimeout != DefaultReadTimeout || o.IdleTimeout != DefaultIdleTimeout || o.Logger == nil {
				t.Fatalf("defaults not applied: %+v", o)
			}
		})
	}
}

// Advertised URLs bracket IPv6 hosts and honour the root path; the server binds loopback.
func TestServerAdvertisedURL(t *testing.T) {
	for _, tc := range []struct {
		name, advertise, root, want string
	}{
		{"ipv6", "::1", "", "http://[::1]:PORT/v1/dynamo/generate"},
		{"ipv6 zone", "fe80::1%eth0", "", "http://[fe80::1%25eth0]:PORT/v1/dynamo/generate"},
		{"root slash", "127.0.0.1", "/", "http://127.0.0.1:PORT/generate"},
		{"dynamo root", "127.0.0.1", "/v1/rpc", "http://127.0.0.1:PORT/v1/rpc/generate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{AdvertiseHost: tc.advertise, RootPath: tc.root})
			u := addEndpoint(t, s, "generate", &recorder{})
			want := strings.Replace(tc.want, "PORT", strconv.Itoa(s.Addr().(*net.TCPAddr).Port), 1)
			if u != want {
				t.Fatalf("URL %q, want %q", u, want)
			}
		})
	}
}

// A connection that sends nothing is dropped after ReadHeaderTimeout; an idle keep-alive
// connection after IdleTimeout.
func TestServerTimeouts(t *testing.T) {
	s := startServer(t, Options{ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	addEndpoint(t, s, "generate", &recorder{})
	awaitClosed := func(t *testing.T, conn net.Conn, r io.Reader) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
		_, err := io.Copy(io.Discard, r)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", waitLimit)
		}
	}
	t.Run("silent", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		awaitClosed(t, conn, conn)
	})
	t.Run("partial headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "POST /v1/dynamo/generate HTTP/1.1\r\nHost: x\r\n")
		br := bufio.NewReader(conn)
		awaitClosed(t, conn, br)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(waitLimit))
		frame := requestFrame(t, testID, testBody)
		_, _ = io.WriteString(conn, "POST /v1/dynamo/generate HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(frame))+"\r\n\r\n")
		_, _ = conn.Write(frame)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		drainClose(resp.Body)
		if resp.StatusCode != http.StatusAccepted || resp.Close {
			t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
		}
		awaitClosed(t, conn, br)
	})
}
