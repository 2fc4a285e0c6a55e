package tcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// TestV7Wire checks spec vector V7 byte for byte on a raw connection: the envelope is acked
// with u32 0, and the same frame for an unknown path gets the spec's reply bytes.
func TestV7Wire(t *testing.T) {
	s, rec := testServer(t, Options{})
	c := dialRaw(t, s.Addr().String())
	env := v7(t)
	if len(env) != 402 {
		t.Fatalf("V7 envelope is %d bytes, want 402", len(env))
	}
	if enc, err := codec.AppendTCPRequest(nil, v7Path, nil, v6Frame(t), 0); err != nil || !bytes.Equal(enc, env) {
		t.Fatalf("AppendTCPRequest(V7) = %x, %v; want the spec's bytes", enc, err)
	}
	if _, err := c.Write(env); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := readFull(c, ack); err != nil || hex.EncodeToString(ack) != "00000000" {
		t.Fatalf("ack %x, %v; want 00000000", ack, err)
	}

	if _, err := c.Write(envelope("694d98147d54be25/nope", "{}", v6Frame(t))); err != nil {
		t.Fatal(err)
	}
	want := append(mustHex(t, "00000027"), "Unknown endpoint: 694d98147d54be25/nope"...)
	got := make([]byte, len(want))
	if _, err := readFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unknown-endpoint reply %x, %v; want %x", got, err, want)
	}
	if n := len(rec.requests()); n != 1 {
		t.Fatalf("handler got %d requests, want 1", n)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestServerReplies covers every reply the server gives, and whether the connection survives.
func TestServerReplies(t *testing.T) {
	const max = 4096
	s, _ := testServer(t, Options{MaxMessageSize: max})
	v6 := v6Frame(t)
	gen := RouteKey(endpoint("generate"))

	badSum := append([]byte(nil), v6...)
	badSum[23] ^= 1
	headerOnly, err := codec.AppendFrame(nil, v6[codec.PrefixLen:codec.PrefixLen+321], nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	badControl, err := codec.AppendFrame(nil, []byte(`{"id":1}`), []byte("{}"), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, badControlErr := plane.Decode(badControl, max)
	if badControlErr == nil {
		t.Fatal("bad control header decoded")
	}
	badControlText := badControlErr.(*plane.Error).Text
	if !strings.HasPrefix(badControlText, "Two Part Codec Error: Invalid message: control header: ") {
		t.Fatalf("control header refusal %q", badControlText)
	}
	wrongContext := func() []byte {
		info := codec.CallHomeInfo{Address: "10.0.0.5:41235", Subject: v5Subject, Context: "other", StreamType: "response"}
		f, err := codec.AppendFrame(nil, codec.AppendRequestControl(nil, v6ID, info), []byte(v6Body), 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}()

	for _, tc := range []struct {
		name    string
		write   []byte
		replies []string
		closed  bool // the server replies, then closes
	}{
		{"ack", envelope(gen, "{}", v6), []string{""}, false},
		{"empty headers", envelope(gen, "", v6), []string{""}, false},
		{"unparseable headers", envelope(gen, `{"a":1`, v6), []string{""}, false},
		{"unknown endpoint", envelope("694d98147d54be25/nope", "{}", v6), []string{"Unknown endpoint: 694d98147d54be25/nope"}, false},
		{"unknown instance", envelope("1/generate", "{}", v6), []string{"Unknown endpoint: 1/generate"}, false},
		{"invalid UTF-8 path", envelope("\xff\xfe/generate", "{}", v6), []string{"Invalid endpoint path"}, false},
		{"not a frame", envelope(gen, "{}", []byte("hello")), []string{"Two Part Codec Error: Invalid message: No message decoded"}, false},
		{"empty payload", envelope(gen, "{}", nil), []string{"Two Part Codec Error: Invalid message: No message decoded"}, false},
		{"trailing bytes", envelope(gen, "{}", append(append([]byte(nil), v6...), 'x')), []string{"Two Part Codec Error: Invalid message: 1 trailing bytes"}, false},
		{"checksum mismatch", envelope(gen, "{}", badSum), []string{"Two Part Codec Error: Checksum mismatch"}, false},
		{"header only", envelope(gen, "{}", headerOnly), []string{plane.TextNotHeaderAndData}, false},
		{"bad control header", envelope(gen, "{}", badControl), []string{badControlText}, false},
		{"context differs from id", envelope(gen, "{}", wrongContext), []string{"Two Part Codec Error: Invalid message: control header: Invalid context; TcpClient requires the context to be \"" + v6ID + "\"; however \"other\" was passed"}, false},
		{"overloaded", envelope(RouteKey(endpoint("busy")), "{}", v6), []string{plane.TextOverloaded}, false},
		{"draining", envelope(RouteKey(endpoint("drain")), "{}", v6), []string{plane.TextDraining}, false},
		{"handler error", envelope(RouteKey(endpoint("picky")), "{}", v6), []string{"nope"}, false},
		{"path_len 0", rawEnvelope(nil, "{}", uint32(len(v6)), v6), []string{"Read error: invalid endpoint path length: 0"}, true},
		{"path_len 1025", rawEnvelope(bytes.Repeat([]byte("a"), 1025), "{}", uint32(len(v6)), v6), []string{"Read error: invalid endpoint path length: 1025"}, true},
		{"path_len 1025, nothing after", mustHex(t, "0401"), []string{"Read error: invalid endpoint path length: 1025"}, true},
		// The payload is never sent: the server must answer from the declared length alone.
		{"payload over limit", rawEnvelope([]byte(gen), "{}", max+1, nil), []string{"Read error: message too large: 4097 bytes (max: 4096 bytes)"}, true},
		{"payload u32 max", rawEnvelope([]byte(gen), "{}", 1<<32-1, nil), []string{"Read error: message too large: 4294967295 bytes (max: 4096 bytes)"}, true},
		{"ack then fatal", append(envelope(gen, "{}", v6), 0, 0), []string{"", "Read error: invalid endpoint path length: 0"}, true},
		{"refusal then ack", append(envelope("1/x", "{}", v6), envelope(gen, "{}", v6)...), []string{"Unknown endpoint: 1/x", ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s.Addr().String())
			br := bufio.NewReader(c)
			if _, err := c.Write(tc.write); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.replies {
				if got := readReply(t, br); got != want {
					t.Fatalf("reply %d = %q, want %q", i, got, want)
				}
			}
			if tc.closed {
				expectEOF(t, br)
				return
			}
			// The connection keeps working.
			if _, err := c.Write(envelope(gen, "{}", v6)); err != nil {
				t.Fatal(err)
			}
			if got := readReply(t, br); got != "" {
				t.Fatalf("follow-up reply %q, want ack", got)
			}
		})
	}
}

// TestServerRequest checks what the handler receives: routing, body, control, meta; and that
// the body stays intact when the connection's buffer is reused for the next request.
func TestServerRequest(t *testing.T) {
	s, rec := testServer(t, Options{})
	c := dialRaw(t, s.Addr().String())
	br := bufio.NewReader(c)
	gen := RouteKey(endpoint("generate"))

	for _, tc := range []struct {
		name     string
		headers  string
		id, body string
		want     plane.Meta
	}{
		{"tracing and caller id", `{"request-id":"ID1","traceparent":"00-abc-def-01","tracestate":"k=v","x-request-id":"caller"}`,
			"ID1", `{"text":"one"}`, plane.Meta{RequestID: "caller", TraceParent: "00-abc-def-01", TraceState: "k=v"}},
		{"request-id only", `{"request-id":"ID2"}`, "ID2", `{"text":"two"}`, plane.Meta{RequestID: "ID2"}},
		{"dynamo id", `{"x-dynamo-request-id":"dyn"}`, "ID3", `{"text":"three"}`, plane.Meta{RequestID: "dyn"}},
		{"no headers: control id", `{}`, "ID4", `{"text":"four"}`, plane.Meta{RequestID: "ID4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.requests())
			if _, err := c.Write(envelope(gen, tc.headers, requestFrame(t, tc.id, tc.body))); err != nil {
				t.Fatal(err)
			}
			if got := readReply(t, br); got != "" {
				t.Fatalf("reply %q, want ack", got)
			}
			reqs := rec.requests()
			if len(reqs) != before+1 {
				t.Fatalf("handler has %d requests, want %d", len(reqs), before+1)
			}
			r := reqs[before]
			if r.Plane != plane.NameTCP || r.Endpoint != endpoint("generate") || r.Control.ID != tc.id ||
				r.CallHome.Subject != v5Subject || string(r.Body) != tc.body || r.Meta != tc.want {
				t.Fatalf("request %+v", r)
			}
		})
	}
	// Bodies of earlier requests survive later reads on the same connection.
	for i, want := range []string{`{"text":"one"}`, `{"text":"two"}`, `{"text":"three"}`, `{"text":"four"}`} {
		if got := string(rec.requests()[i].Body); got != want {
			t.Fatalf("request %d body now %q, want %q", i, got, want)
		}
	}
}

// TestServerPipelining writes 100 requests in one burst and expects 100 replies in order.
func TestServerPipelining(t *testing.T) {
	s, rec := testServer(t, Options{})
	c := dialRaw(t, s.Addr().String())
	var burst []byte
	var want []string
	for i := range 100 {
		path := RouteKey(endpoint("generate"))
		w := ""
		if i%3 == 1 {
			path = "1/missing-" + strconv.Itoa(i)
			w = "Unknown endpoint: " + path
		}
		burst = append(burst, envelope(path, "{}", requestFrame(t, "id-"+strconv.Itoa(i), `{"i":`+strconv.Itoa(i)+`}`))...)
		want = append(want, w)
	}
	if _, err := c.Write(burst); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, w := range want {
		if got := readReply(t, br); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	var ids []string
	for _, r := range rec.requests() {
		ids = append(ids, r.Control.ID)
	}
	if len(ids) != 67 || ids[0] != "id-0" || ids[1] != "id-2" || ids[66] != "id-99" {
		t.Fatalf("handler saw %d requests %v", len(ids), ids)
	}
}

// TestServerBatchesReplies feeds a burst through an in-memory connection: replies are flushed
// only when the server runs out of buffered input, so there is at most one write per read.
func TestServerBatchesReplies(t *testing.T) {
	s, _ := testServer(t, Options{})
	var burst []byte
	for range 100 {
		burst = append(burst, envelope(RouteKey(endpoint("generate")), "{}", v6Frame(t))...)
	}
	fc := &fakeConn{in: bytes.NewReader(burst)}
	s.serveConn(fc)
	if want := bytes.Repeat([]byte{0, 0, 0, 0}, 100); !bytes.Equal(fc.out.Bytes(), want) {
		t.Fatalf("replies %x, want 100 acks", fc.out.Bytes())
	}
	if fc.writes > fc.reads || fc.writes >= 10 {
		t.Fatalf("%d writes for %d reads of a 100-request burst", fc.writes, fc.reads)
	}
	t.Logf("100 pipelined requests: %d reads, %d writes", fc.reads, fc.writes)
}

// TestServerDoesNotAllocateDeclaredSize declares a payload just under the limit, sends a little
// of it and hangs up: the server must not allocate what was declared but never received.
func TestServerDoesNotAllocateDeclaredSize(t *testing.T) {
	s, _ := testServer(t, Options{}) // default limit: 32 MiB
	declared := uint32(codec.DefaultMaxMessageSize - 1)
	env := rawEnvelope([]byte(RouteKey(endpoint("generate"))), "{}", declared, bytes.Repeat([]byte{'x'}, 1024))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := dialRaw(t, s.Addr().String())
	if _, err := c.Write(env); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	eventually(t, "the server to drop the connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("serving a truncated %d-byte declaration allocated %d bytes", declared, grew)
	}
}

func TestServerIdleTimeout(t *testing.T) {
	s, _ := testServer(t, Options{IdleTimeout: 50 * time.Millisecond})
	c := dialRaw(t, s.Addr().String())
	expectEOF(t, c)
}

func TestServerAddRemove(t *testing.T) {
	s, _ := testServer(t, Options{})
	port := strconv.Itoa(s.Addr().(*net.TCPAddr).Port)
	ep := plane.Endpoint{Namespace: "ns", Component: "c", Name: "extra", InstanceID: 0xab}
	addr, err := s.Add(context.Background(), ep, newRecorder())
	if err != nil || addr != "127.0.0.1:"+port+"/ab/extra" {
		t.Fatalf("Add = %q, %v", addr, err)
	}
	if _, err := s.Add(context.Background(), ep, newRecorder()); !errors.Is(err, ErrEndpointExists) {
		t.Fatalf("second Add: %v, want ErrEndpointExists", err)
	}
	for _, bad := range []plane.Endpoint{{InstanceID: 1}, {Name: strings.Repeat("n", 1024), InstanceID: 1}, {Name: "\xff", InstanceID: 1}} {
		if _, err := s.Add(context.Background(), bad, newRecorder()); err == nil {
			t.Fatalf("Add(%q) succeeded", bad.Name)
		}
	}
	if _, err := s.Add(context.Background(), endpoint("nil"), nil); err == nil {
		t.Fatal("Add with a nil handler succeeded")
	}
	c := dialRaw(t, s.Addr().String())
	br := bufio.NewReader(c)
	send := func() string {
		if _, err := c.Write(envelope("ab/extra", "{}", v6Frame(t))); err != nil {
			t.Fatal(err)
		}
		return readReply(t, br)
	}
	if got := send(); got != "" {
		t.Fatalf("before Remove: %q", got)
	}
	s.Remove(ep)
	s.Remove(ep) // no-op
	if got := send(); got != "Unknown endpoint: ab/extra" {
		t.Fatalf("after Remove: %q", got)
	}
}

func TestNewServerOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"ipv6", Options{Host: "::1"}, true},
		{"all interfaces with advertise", Options{Host: "0.0.0.0", AdvertiseHost: "10.0.0.5"}, true},
		{"all interfaces without advertise", Options{Host: "0.0.0.0"}, false},
		{"hostname", Options{Host: "localhost"}, false},
		{"advertise hostname", Options{AdvertiseHost: "worker-1"}, false},
		{"advertise unspecified", Options{AdvertiseHost: "::"}, false},
		{"port range", Options{Port: 70000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("NewServer(%+v) = %v", tc.opts, err)
			}
			if s != nil {
				if _, err := s.Add(context.Background(), endpoint("generate"), newRecorder()); !errors.Is(err, ErrNotStarted) {
					t.Fatalf("Add before Start: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestServerIPv6Address(t *testing.T) {
	s, err := NewServer(Options{Host: "::1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	addr, err := s.Add(context.Background(), endpoint("generate"), newRecorder())
	want := "[::1]:" + strconv.Itoa(s.Addr().(*net.TCPAddr).Port) + "/" + v7Path
	if err != nil || addr != want {
		t.Fatalf("Add = %q, %v; want %q", addr, err, want)
	}
	if hp, path, err := codec.ParseTCPAddress(addr); err != nil || hp != s.Addr().String() || path != v7Path {
		t.Fatalf("ParseTCPAddress(%q) = %q, %q, %v", addr, hp, path, err)
	}
}

func TestServerClose(t *testing.T) {
	s, _ := testServer(t, Options{})
	c := dialRaw(t, s.Addr().String())
	br := bufio.NewReader(c)
	if _, err := c.Write(v7(t)); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, br); got != "" {
		t.Fatalf("reply %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, br)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Add(context.Background(), endpoint("late"), newRecorder()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), waitLong); err == nil {
		t.Fatal("listener still accepts after Close")
	}
}

// TestServerObserve checks the outcomes reported for pipelined requests on one connection,
// which share the connection's Outcome: each is reported whole, nothing of the one before.
func TestServerObserve(t *testing.T) {
	var (
		mu  sync.Mutex
		got []plane.Outcome
	)
	s, _ := testServer(t, Options{Observe: func(o *plane.Outcome) {
		mu.Lock()
		got = append(got, *o)
		mu.Unlock()
	}})
	v6 := v6Frame(t)
	gen := RouteKey(endpoint("generate"))
	steps := []struct {
		name  string
		write []byte
		reply string
		ep    plane.Endpoint
		code  plane.Code // CodeUnknown: acked
	}{
		{"ack", envelope(gen, "{}", v6), "", endpoint("generate"), plane.CodeUnknown},
		{"unknown endpoint", envelope("1/x", "{}", v6), "Unknown endpoint: 1/x", plane.Endpoint{}, plane.CodeUnknownEndpoint},
		{"ack after a refusal", envelope(gen, "{}", v6), "", endpoint("generate"), plane.CodeUnknown},
		{"bad frame", envelope(gen, "{}", []byte("hello")), "Two Part Codec Error: Invalid message: No message decoded", endpoint("generate"), plane.CodeBadRequest},
		{"overloaded", envelope(RouteKey(endpoint("busy")), "{}", v6), plane.TextOverloaded, endpoint("busy"), plane.CodeOverloaded},
		{"invalid path", envelope("\xff/generate", "{}", v6), "Invalid endpoint path", plane.Endpoint{}, plane.CodeUnknownEndpoint},
		{"last ack", envelope(gen, "{}", v6), "", endpoint("generate"), plane.CodeUnknown},
	}
	var write []byte
	for _, st := range steps {
		write = append(write, st.write...)
	}
	c := dialRaw(t, s.Addr().String())
	br := bufio.NewReader(c)
	if _, err := c.Write(write); err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		if r := readReply(t, br); r != st.reply {
			t.Fatalf("%s: reply %q, want %q", st.name, r, st.reply)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(steps) {
		t.Fatalf("%d outcomes, want %d", len(got), len(steps))
	}
	for i, st := range steps {
		o := got[i]
		if o.Plane != plane.NameTCP || o.Endpoint != st.ep || o.Code != st.code || o.Acked() != (st.code == plane.CodeUnknown) || o.Start.IsZero() {
			t.Errorf("%s: outcome %+v, want endpoint %v code %v", st.name, o, st.ep, st.code)
		}
	}
}
