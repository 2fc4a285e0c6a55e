package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// rawTCPRequest builds an envelope by hand, so malformed ones can be written.
func rawTCPRequest(path, headers string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(path)))
	b = append(b, path...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(headers)))
	b = append(b, headers...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestAppendTCPRequest(t *testing.T) {
	hdrs := map[string]string{"x-request-id": "r1", "traceparent": "00-abc", "request-id": "id\"1<>"}
	tests := []struct {
		name     string
		path     string
		headers  map[string]string
		payload  []byte
		max      int
		wantJSON string
		err      error
		text     string
	}{
		{name: "no headers", path: "1/generate", payload: []byte("p"), wantJSON: `{}`},
		{name: "empty map", path: "1/generate", headers: map[string]string{}, payload: nil, wantJSON: `{}`},
		{name: "sorted keys, serde escaping", path: "1/generate", headers: hdrs, payload: []byte("p"),
			wantJSON: `{"request-id":"id\"1<>","traceparent":"00-abc","x-request-id":"r1"}`},
		{name: "path too short", path: "", err: ErrTCPPathLength, text: "invalid endpoint path length: 0"},
		{name: "path too long", path: strings.Repeat("a", 1025), err: ErrTCPPathLength, text: "invalid endpoint path length: 1025"},
		{name: "path 1024 ok", path: strings.Repeat("a", 1024), wantJSON: `{}`},
		{name: "path not UTF-8", path: "a\xff", err: ErrTCPInvalidPath, text: "Invalid endpoint path"},
		{name: "payload too large", path: "p", payload: make([]byte, 11), max: 10, err: ErrTCPTooLarge, text: "message too large: 11 bytes (max: 10 bytes)"},
		{name: "headers too large", path: "p", headers: map[string]string{"k": strings.Repeat("v", 70000)}, err: &TCPError{Code: TCPCodeHeadersTooLarge},
			text: "headers too large: 70008 bytes (max: 65535 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendTCPRequest([]byte("keep"), tt.path, tt.headers, tt.payload, tt.max)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || err.Error() != tt.text || string(got) != "keep" {
					t.Fatalf("err = %v, dst = %q; want %q", err, got, tt.text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := rawTCPRequest(tt.path, tt.wantJSON, tt.payload)
			if !bytes.Equal(got[4:], want) {
				t.Fatalf("got\n% x\nwant\n% x", got[4:], want)
			}
			req, err := NewTCPRequestReader(bytes.NewReader(got[4:]), tt.max).Next()
			if err != nil {
				t.Fatal(err)
			}
			if req.Path != tt.path || !maps.Equal(req.Headers(), tt.headers) || !bytes.Equal(req.Payload, tt.payload) {
				t.Errorf("round trip = %+v", req)
			}
		})
	}
	// Many headers take the allocating sort path and still come out sorted.
	many := map[string]string{}
	for i := range 40 {
		many[string(rune('z'-i%26))+strings.Repeat("k", i)] = "v"
	}
	b := AppendHeaders(nil, many)
	var keys []string
	for _, kv := range strings.Split(strings.Trim(string(b), "{}"), ",") {
		keys = append(keys, strings.SplitN(kv, ":", 2)[0])
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("keys not sorted: %v", keys)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", nil},
		{"{}", nil},
		{"  { }  ", nil},
		{`{"a":"1","b":"\u00e9"}`, map[string]string{"a": "1", "b": "é"}},
		{"{\n \"traceparent\" : \"00-x\"\n}", map[string]string{"traceparent": "00-x"}},
		{`{"a":1}`, nil},
		{`{"a":"1","b":null}`, nil},
		{`{"a":"1","a":"2"}`, map[string]string{"a": "2"}},
		{`{"k\n\u00e9\ud83d\ude00":"\"\\\/\b\f\r\t"}`, map[string]string{"k\né😀": "\"\\/\b\f\r\t"}},
		{`{"lone":"\ud800x\udc00\ud800\u0041"}`, map[string]string{"lone": "\ufffdx\ufffd\ufffdA"}},
		{"{\"bad\":\"\xff\"}", map[string]string{"bad": "\ufffd"}},
		{"{\"ctl\":\"a\nb\"}", nil},
		{`{"esc":"\x"}`, nil},
		{`{"u":"\u12"}`, nil},
		{`{"a":"1"} x`, nil},
		{`{"a":"1",}`, nil},
		{`{"a" "1"}`, nil},
		{`{a:"1"}`, nil},
		{`[1]`, nil},
		{`not json`, nil},
		{`{"a":"1"`, nil},
	}
	for _, tt := range tests {
		if got := ParseHeaders([]byte(tt.in)); !maps.Equal(got, tt.want) {
			t.Errorf("ParseHeaders(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestFindHeaders checks that FindHeaders and HeaderValue read every key as ParseHeaders maps
// it, on ParseHeaders' own cases and on keys written with escapes.
func TestFindHeaders(t *testing.T) {
	tests := []struct {
		in   string
		keys []string
	}{
		{"", []string{"a"}},
		{"{}", []string{"a"}},
		{`{"a":"1","b":"\u00e9"}`, []string{"b", "a", "c"}},
		{"{\n \"traceparent\" : \"00-x\"\n}", []string{"tracestate", "traceparent"}},
		{`{"a":1}`, []string{"a"}},
		{`{"a":"1","b":null}`, []string{"a"}},
		{`{"a":"1","a":"2"}`, []string{"a"}},
		{`{"k\n\u00e9\ud83d\ude00":"\"\\\/\b\f\r\t"}`, []string{"k\né😀", "k"}},
		{`{"x-request\u002did":"r1","request-id":"r2"}`, []string{"x-request-id", "request-id"}},
		{"{\"b\xffd\":\"v\"}", []string{"b\ufffdd", "bd"}},
		{"{\"bad\":\"\xff\"}", []string{"bad"}},
		{"{\"ctl\":\"a\nb\"}", []string{"ctl"}},
		{`{"a":"1","z":"\x"}`, []string{"a"}},
		{`{"a":"1"} x`, []string{"a"}},
		{`{"a":"1",}`, []string{"a"}},
		{`{"a" "1"}`, []string{"a"}},
		{`[1]`, []string{"a"}},
		{`{"a":"1"`, []string{"a"}},
		{`{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9"}`, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}},
	}
	for _, tt := range tests {
		want := ParseHeaders([]byte(tt.in))
		at := make([]int, len(tt.keys))
		FindHeaders([]byte(tt.in), tt.keys, at)
		for i, k := range tt.keys {
			if got := HeaderValue([]byte(tt.in), at[i]); got != want[k] {
				t.Errorf("FindHeaders(%q)[%q] = %q, want %q", tt.in, k, got, want[k])
			}
			for _, s := range []string{want[k], want[k] + "x", "1"} {
				if got := HeaderValueOr([]byte(tt.in), at[i], s); got != want[k] {
					t.Errorf("HeaderValueOr(%q, %q, %q) = %q, want %q", tt.in, k, s, got, want[k])
				}
			}
		}
	}
}

// TestAppendTCPRequestSorted checks that sorted pairs encode exactly as the map of them.
func TestAppendTCPRequestSorted(t *testing.T) {
	tests := []struct {
		name  string
		pairs []Header
	}{
		{"none", nil},
		{"ids", []Header{{"request-id", "3f0c9a52"}, {"x-request-id", "caller <&> \"id\""}}},
		{"traced", []Header{{"request-id", "a"}, {"traceparent", "00-1-2-01"}, {"tracestate", "k=v"}, {"x-request-id", "é\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := make(map[string]string, len(tt.pairs))
			for _, h := range tt.pairs {
				m[h.Key] = h.Value
			}
			want, err := AppendTCPRequest([]byte("keep"), "1/g", m, []byte("frame"), 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendTCPRequestSorted([]byte("keep"), "1/g", tt.pairs, []byte("frame"), 0)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("got %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestTCPRequestReader(t *testing.T) {
	frame := mustFrame(t, []byte(`{"id":"x"}`), []byte(`{}`))
	good := rawTCPRequest("abc/generate", `{"x-request-id":"r"}`, frame)
	tests := []struct {
		name  string
		input []byte
		max   int
		// expected sequence: a request path, or an error text ("EOF" for io.EOF)
		want  []string
		fatal bool
	}{
		{name: "pipelined", input: bytes.Repeat(good, 3), want: []string{"abc/generate", "abc/generate", "abc/generate", "EOF"}},
		{name: "empty stream", input: nil, want: []string{"EOF"}},
		{name: "path_len 0", input: rawTCPRequest("", "{}", nil), want: []string{"invalid endpoint path length: 0", "invalid endpoint path length: 0"}, fatal: true},
		{name: "path_len 1025", input: append(binary.BigEndian.AppendUint16(nil, 1025), make([]byte, 2000)...), want: []string{"invalid endpoint path length: 1025"}, fatal: true},
		{name: "payload over max", input: append(good, rawTCPRequest("p", "", make([]byte, 2000))...), max: 1000,
			want: []string{"abc/generate", "message too large: 2000 bytes (max: 1000 bytes)"}, fatal: true},
		{name: "invalid UTF-8 path, then go on", input: append(rawTCPRequest("a\xffb", "{}", frame), good...),
			want: []string{"Invalid endpoint path", "abc/generate", "EOF"}},
		{name: "truncated mid-request", input: good[:len(good)-3], want: []string{"unexpected EOF", "unexpected EOF"}, fatal: true},
		{name: "truncated in path_len", input: good[:1], want: []string{"unexpected EOF"}, fatal: true},
		{name: "unparseable headers are empty", input: rawTCPRequest("p", `{"a":`, nil), want: []string{"p", "EOF"}},
	}
	for _, tt := range tests {
		for _, wrap := range []struct {
			name string
			fn   func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"bytewise", iotest.OneByteReader}} {
			t.Run(tt.name+"/"+wrap.name, func(t *testing.T) {
				r := NewTCPRequestReader(wrap.fn(bytes.NewReader(tt.input)), tt.max)
				for i, want := range tt.want {
					req, err := r.Next()
					switch {
					case want == "EOF":
						if err != io.EOF {
							t.Fatalf("step %d: %v, want io.EOF", i, err)
						}
					case err != nil:
						var te *TCPError
						if err.Error() != want || !errors.As(err, &te) {
							t.Fatalf("step %d: err %v, want %q", i, err, want)
						}
						if te.Fatal() != tt.fatal {
							t.Errorf("Fatal() = %v", te.Fatal())
						}
						wantReply := "Read error: " + want
						if !tt.fatal {
							wantReply = want
						}
						if te.Reply() != wantReply {
							t.Errorf("Reply() = %q, want %q", te.Reply(), wantReply)
						}
					case req.Path != want:
						t.Fatalf("step %d: path %q, want %q", i, req.Path, want)
					}
				}
			})
		}
	}
}

func TestTCPRequestReaderChecksBeforeReading(t *testing.T) {
	// A payload_len over the limit is refused as soon as it is read: nothing after it is read.
	head := rawTCPRequest("p", "{}", nil)
	binary.BigEndian.PutUint32(head[len(head)-4:], math.MaxUint32)
	r := NewTCPRequestReader(&failAfter{t: t, data: head}, DefaultMaxMessageSize)
	_, err := r.Next()
	if !errors.Is(err, ErrTCPTooLarge) || err.Error() != "message too large: 4294967295 bytes (max: 33554432 bytes)" {
		t.Fatalf("err = %v", err)
	}
	if cap(r.in.buf) > minBufSize {
		t.Errorf("buffer grew to %d", cap(r.in.buf))
	}
}

func TestTCPRequestPathReuse(t *testing.T) {
	req := rawTCPRequest("abc/generate", "", nil)
	input := bytes.Repeat(req, 200)
	r := NewTCPRequestReader(bytes.NewReader(input), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	// Repeated paths reuse one string, and header-less requests allocate nothing.
	if n := testing.AllocsPerRun(100, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocs per request", n)
	}
}

func TestReadTCPReply(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		max   int
		want  string
		err   string
		isErr error
	}{
		{name: "ack", input: []byte{0, 0, 0, 0}, want: ""},
		{name: "text", input: AppendTCPReply(nil, []byte("Server overloaded: in-flight request limit reached")), want: "Server overloaded: in-flight request limit reached"},
		{name: "clean EOF", input: nil, isErr: io.EOF, err: "EOF"},
		{name: "short length", input: []byte{0, 0}, isErr: io.ErrUnexpectedEOF, err: "unexpected EOF"},
		{name: "short data", input: []byte{0, 0, 0, 5, 'a'}, isErr: io.ErrUnexpectedEOF, err: "unexpected EOF"},
		{name: "over max", input: []byte{0, 0, 1, 0}, max: 255, isErr: ErrTCPTooLarge, err: "message too large: 256 bytes (max: 255 bytes)"},
	}
	for _, tt := range tests {
		for _, buf := range [][]byte{nil, make([]byte, 0, 2), make([]byte, 0, 4096)} {
			got, err := ReadTCPReply(bytes.NewReader(tt.input), tt.max, buf)
			if tt.isErr != nil {
				if !errors.Is(err, tt.isErr) || err.Error() != tt.err {
					t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
				}
				continue
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("%s: got %q, %v", tt.name, got, err)
			}
		}
	}
	// Replies read back to back from one stream, into a reused buffer, without allocating.
	stream := bytes.NewReader(nil)
	msgs := bytes.Repeat(AppendTCPReply(AppendTCPReply(nil, nil), []byte("Unknown endpoint: x")), 101)
	buf := make([]byte, 0, 64)
	stream.Reset(msgs)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ReadTCPReply(stream, 1024, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocs per reply", n)
	}
	// A large reply with no limit grows with what arrives, and is read whole.
	big := AppendTCPReply(nil, bytes.Repeat([]byte("z"), 300_000))
	if got, err := ReadTCPReply(iotest.HalfReader(bytes.NewReader(big)), 0, nil); err != nil || len(got) != 300_000 {
		t.Errorf("big reply: %d, %v", len(got), err)
	}
	// Declared but not sent: fails without allocating the declared size.
	if _, err := ReadTCPReply(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 'a'}), 0, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("declared 4 GiB: %v", err)
	}
}

func TestTCPErrorTexts(t *testing.T) {
	tests := []struct {
		err   *TCPError
		text  string
		fatal bool
	}{
		{&TCPError{Code: TCPCodeIO, Err: io.ErrUnexpectedEOF}, "unexpected EOF", true},
		{&TCPError{Code: TCPCodeIO}, "I/O error", true},
		{&TCPError{Code: 99}, "TCPError(99)", true},
		{&TCPError{Code: TCPCodeInvalidPath}, "Invalid endpoint path", false},
	}
	for _, tt := range tests {
		if tt.err.Error() != tt.text || tt.err.Fatal() != tt.fatal {
			t.Errorf("%#v: %q fatal=%v", tt.err, tt.err.Error(), tt.err.Fatal())
		}
	}
}

// TestTCPLoopback pipelines requests over a real 127.0.0.1 connection: the server acks each
// request in order, refuses an unknown path, and closes after a fatal read error.
func TestTCPLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		r := NewTCPRequestReader(c, 1<<16)
		var out []byte
		for {
			req, err := r.Next()
			if err == io.EOF {
				return
			}
			out = out[:0]
			var te *TCPError
			switch {
			case errors.As(err, &te):
				out = AppendTCPReply(out, []byte(te.Reply()))
			case err != nil:
				t.Error(err)
				return
			case req.Path != "1/generate":
				out = AppendTCPReply(out, []byte("Unknown endpoint: "+req.Path))
			default:
				if _, err := DecodeFrame(req.Payload, 1<<16); err != nil {
					out = AppendTCPReply(out, []byte(err.Error()))
				} else {
					out = AppendTCPReply(out, nil)
				}
			}
			if _, err := c.Write(out); err != nil {
				t.Error(err)
				return
			}
			if te != nil && te.Fatal() {
				return
			}
		}
	})

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	frame := mustFrame(t, []byte(v6Header), []byte(v6Body))
	var batch []byte
	const n = 50
	for i := range n {
		path := "1/generate"
		if i == 10 {
			path = "1/nope"
		}
		batch, err = AppendTCPRequest(batch, path, map[string]string{"request-id": v6ID}, frame, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
	}
	batch = append(batch, rawTCPRequest("p", "", make([]byte, 1<<17))[:16]...) // over the server's limit
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := range n {
		reply, err := ReadTCPReply(c, 1024, buf)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		want := ""
		if i == 10 {
			want = "Unknown endpoint: 1/nope"
		}
		if string(reply) != want {
			t.Fatalf("reply %d = %q, want %q", i, reply, want)
		}
		buf = reply
	}
	reply, err := ReadTCPReply(c, 1024, buf)
	if err != nil || string(reply) != "Read error: message too large: 131072 bytes (max: 65536 bytes)" {
		t.Fatalf("last reply = %q, %v", reply, err)
	}
	if _, err := ReadTCPReply(c, 1024, buf); err != io.EOF {
		t.Fatalf("after fatal error: %v, want io.EOF (server closed)", err)
	}
}
