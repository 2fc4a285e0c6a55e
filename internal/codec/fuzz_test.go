package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// Native fuzz targets, one per decoder. Each checks that nothing panics, that errors are the
// documented types, and that decode(encode(x)) == x wherever the encoding can express x.
// Seed corpora live in testdata/fuzz/<Target>/.

// frameSeeds are the spec vectors and a few edge cases.
func frameSeeds(t testing.TB) [][]byte {
	huge := binary.BigEndian.AppendUint64(nil, 1<<63)
	huge = append(huge, make([]byte, 16)...)
	return [][]byte{
		mustFrame(t, nil, nil),
		mustFrame(t, []byte(`"sentinel"`), nil),
		mustFrame(t, []byte(`"stop"`), nil),
		mustFrame(t, []byte(`{"error":null}`), nil),
		mustFrame(t, []byte(v6Header), []byte(v6Body)),
		mustFrame(t, nil, []byte(`{"complete_final":true}`)),
		huge,
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s, 0)
		f.Add(s, 40)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		fr, n, serr := SplitFrame(b, max)
		dfr, derr := DecodeFrame(b, max)
		switch {
		case serr != nil:
			if !errors.Is(serr, ErrMessageTooLarge) && !errors.Is(serr, ErrChecksumMismatch) {
				t.Fatalf("SplitFrame: unexpected error type %#v", serr)
			}
			if derr == nil || derr.Error() != serr.Error() {
				t.Fatalf("DecodeFrame %v, SplitFrame %v", derr, serr)
			}
		case n == 0:
			if !errors.Is(derr, ErrInvalidMessage) || !strings.HasSuffix(derr.Error(), DetailNoMessage) {
				t.Fatalf("need more, but DecodeFrame: %v", derr)
			}
		case n < len(b):
			if !errors.Is(derr, ErrInvalidMessage) || !strings.HasSuffix(derr.Error(), " trailing bytes") {
				t.Fatalf("trailing bytes, but DecodeFrame: %v", derr)
			}
		default:
			if derr != nil || !bytes.Equal(dfr.Header, fr.Header) || !bytes.Equal(dfr.Data, fr.Data) {
				t.Fatalf("DecodeFrame %v disagrees with SplitFrame", derr)
			}
		}
		if serr == nil && n > 0 {
			if n != PrefixLen+len(fr.Header)+len(fr.Data) {
				t.Fatalf("n = %d for %d+%d", n, len(fr.Header), len(fr.Data))
			}
			// Re-encoding reproduces the input, except that a zero checksum becomes the real one.
			enc, err := AppendFrame(nil, fr.Header, fr.Data, max)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Clone(b[:n])
			binary.BigEndian.PutUint64(want[16:], Checksum(fr.Header, fr.Data))
			if !bytes.Equal(enc, want) {
				t.Fatalf("re-encoding differs")
			}
		}
		// Any split of the input as header and data round-trips.
		k := 0
		if len(b) > 0 {
			k = int(uint(max) % uint(len(b)+1))
		}
		enc, err := AppendFrame(nil, b[:k], b[k:], 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFrame(enc, len(enc))
		if err != nil || !bytes.Equal(got.Header, b[:k]) || !bytes.Equal(got.Data, b[k:]) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzReader(f *testing.F) {
	seeds := frameSeeds(f)
	f.Add(bytes.Join(seeds[:6], nil), 0)
	for _, s := range seeds {
		f.Add(s, 1024)
		f.Add(s[:len(s)/2], 1024)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		// Reference: repeated SplitFrame over the whole input.
		var want []Frame
		rest := b
		var wantErr error
		for {
			fr, n, err := SplitFrame(rest, max)
			if err != nil {
				wantErr = err
				break
			}
			if n == 0 {
				wantErr = io.EOF
				if len(rest) > 0 {
					wantErr = io.ErrUnexpectedEOF
				}
				break
			}
			want = append(want, fr)
			rest = rest[n:]
		}
		var src io.Reader = bytes.NewReader(b)
		switch len(b) % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		r := NewReader(src, max)
		for i, w := range want {
			got, err := r.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !bytes.Equal(got.Header, w.Header) || !bytes.Equal(got.Data, w.Data) {
				t.Fatalf("frame %d differs", i)
			}
		}
		_, err := r.Next()
		switch {
		case wantErr == io.EOF:
			if err != io.EOF {
				t.Fatalf("end: %v, want io.EOF", err)
			}
		case wantErr == io.ErrUnexpectedEOF:
			if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrIO) {
				t.Fatalf("end: %v, want unexpected EOF", err)
			}
		default:
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("end: %v, want %v", err, wantErr)
			}
		}
	})
}

func FuzzParseRequestControl(f *testing.F) {
	f.Add([]byte(v6Header))
	for _, s := range fastPathSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"id":"a","request_type":"many_in","response_type":"single_out","connection_info":{"transport":"tcp_response_mux_v1","info":"{}"},"payload_codec":"msgpack"}`))
	f.Add([]byte(`{"id":"a","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"{\"address\":\"fe80::1:1\",\"subject\":\"s\",\"context\":\"a\",\"stream_type\":\"response\"}"}}`))
	f.Add([]byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := ParseRequestControl(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error chain: %#v", err)
			}
			return
		}
		info, verr := rc.Validate()
		if verr != nil && !errors.Is(verr, ErrInvalidControl) && !errors.Is(verr, ErrUnsupported) {
			t.Fatalf("Validate error kind: %#v", verr)
		}
		if verr == nil || errors.Is(verr, ErrUnsupported) {
			// Callable: what reqplane would send for this id and info parses back to the same.
			back, err := ParseRequestControl(AppendRequestControl(nil, rc.ID, info))
			if err != nil {
				t.Fatal(err)
			}
			info2, err := back.Validate()
			if err != nil || info2 != info || back.ID != rc.ID {
				t.Fatalf("round trip: %+v %v", info2, err)
			}
		}
		if ci, err := rc.CallHome(); err == nil {
			// The inner document round-trips through AppendCallHomeInfo.
			ci.StreamType = streamTypeOrDefault(ci.StreamType)
			rc2 := RequestControl{Info: string(AppendCallHomeInfo(nil, ci))}
			if ci2, err := rc2.CallHome(); err != nil || ci2 != ci {
				t.Fatalf("call-home round trip: %+v %v", ci2, err)
			}
		}
	})
}

func FuzzParseHandshake(f *testing.F) {
	f.Add([]byte(`{"subject":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","stream_type":"response"}`))
	f.Add([]byte(`{"subject":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHandshake(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		h.StreamType = streamTypeOrDefault(h.StreamType)
		back, err := ParseHandshake(AppendHandshake(nil, h))
		if err != nil || back != h {
			t.Fatalf("round trip %+v: %+v %v", h, back, err)
		}
	})
}

func FuzzParsePrologue(f *testing.F) {
	f.Add([]byte(`{"error":null}`))
	f.Add([]byte(`{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`))
	f.Add([]byte(`{"error":"x","typed_error":{"a":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePrologue(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		back, err := ParsePrologue(AppendPrologue(nil, p.Error))
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip %v: %v %v", p.Error, back.Error, err)
		}
	})
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{`"stop"`, `"kill"`, `"sentinel"`, `"\u0073top"`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseControl(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		if back, err := ParseControl(c.Bytes()); err != nil || back != c {
			t.Fatalf("round trip %v: %v %v", c, back, err)
		}
	})
}

func FuzzParseStreamItem(f *testing.F) {
	for _, s := range []string{
		`{"data":{"data":{"text":"hello","index":0}},"complete_final":false}`,
		`{"complete_final":true}`, `{"data":null,"complete_final":false}`,
		`{"data":1,"x":2,"complete_final":false}`, `{"data": 1 ,"complete_final":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := ParseStreamItem(b)
		// The fast path must agree with encoding/json.
		var w wireStreamItem
		jerr := json.Unmarshal(b, &w)
		if (err == nil) != (jerr == nil) {
			t.Fatalf("ParseStreamItem %v, encoding/json %v", err, jerr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		wd := []byte(w.Data)
		if isNull(wd) {
			wd = nil
		}
		if !bytes.Equal(it.Data, wd) || (it.Data == nil) != (wd == nil) || it.CompleteFinal != w.CompleteFinal {
			t.Fatalf("fast path {%q %v} vs encoding/json {%q %v}", it.Data, it.CompleteFinal, wd, w.CompleteFinal)
		}
		var enc []byte
		switch {
		case !it.CompleteFinal:
			enc = AppendStreamItem(nil, it.Data)
		case it.Data == nil:
			enc = AppendStreamEnd(nil)
		default:
			return // a final item with data is legal to read but never written
		}
		back, err := ParseStreamItem(enc)
		if err != nil || !bytes.Equal(back.Data, it.Data) || back.CompleteFinal != it.CompleteFinal {
			t.Fatalf("round trip: %q %v", back.Data, err)
		}
	})
}

func FuzzParseAnnotated(f *testing.F) {
	for _, s := range []string{
		`{"data":{"text":"hello","index":0}}`, `{"event":"error","comment":["msg"]}`,
		`{"data":[1],"id":"i","event":"e","comment":[],"error_code":500}`, `{"data":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnotated(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		back, err := ParseAnnotated(AppendAnnotated(nil, a))
		if err != nil || !reflect.DeepEqual(back, a) {
			t.Fatalf("round trip %+v: %+v %v", a, back, err)
		}
	})
}

func FuzzTCPRequestReader(f *testing.F) {
	frame := mustFrame(f, []byte(v6Header), []byte(v6Body))
	v7, _ := AppendTCPRequest(nil, "694d98147d54be25/generate", nil, frame, 0)
	withHeaders, _ := AppendTCPRequest(nil, "1/g", map[string]string{"request-id": "a", "traceparent": "b"}, []byte("x"), 0)
	f.Add(v7, 0)
	f.Add(append(bytes.Clone(v7), withHeaders...), 1024)
	f.Add(rawTCPRequest("a\xff", "{}", nil), 0)
	f.Add([]byte{0, 0}, 0)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		var src io.Reader = bytes.NewReader(b)
		if len(b)%2 == 1 {
			src = iotest.OneByteReader(src)
		}
		r := NewTCPRequestReader(src, max)
		for range len(b) + 1 {
			req, err := r.Next()
			if err == io.EOF {
				return
			}
			var te *TCPError
			if errors.As(err, &te) {
				if te.Fatal() {
					if _, err2 := r.Next(); err2 != err {
						t.Fatalf("fatal error not sticky: %v then %v", err, err2)
					}
					return
				}
				continue
			}
			if err != nil {
				t.Fatalf("untyped error %#v", err)
			}
			enc, err := AppendTCPRequest(nil, req.Path, req.Headers(), req.Payload, max)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := NewTCPRequestReader(bytes.NewReader(enc), max).Next()
			if err != nil || back.Path != req.Path || !maps.Equal(back.Headers(), req.Headers()) || !bytes.Equal(back.Payload, req.Payload) {
				t.Fatalf("round trip: %+v %v", back, err)
			}
		}
		t.Fatalf("reader did not terminate")
	})
}

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"k\u00e9\ud83d\ude00":"\"\\\/\b\f\n\r\t"}`, `{"a":null}`, ` { "a" : "b" , "c" : "d" } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := ParseHeaders(b)
		keys := []string{"a", "traceparent", "x-request-id"}
		for k := range h {
			keys = append(keys, k)
		}
		at := make([]int, len(keys))
		FindHeaders(b, keys, at)
		for i, k := range keys {
			if v := HeaderValue(b, at[i]); v != h[k] {
				t.Fatalf("FindHeaders %q = %q, ParseHeaders %q", k, v, h[k])
			}
		}
		var j map[string]string
		jerr := json.Unmarshal(b, &j)
		if h != nil {
			// Whatever the hand-written parser accepts, encoding/json reads the same way.
			if jerr != nil || !maps.Equal(h, j) {
				t.Fatalf("ParseHeaders %v, encoding/json %v %v", h, j, jerr)
			}
			if back := ParseHeaders(AppendHeaders(nil, h)); !maps.Equal(back, h) {
				t.Fatalf("round trip %v: %v", h, back)
			}
		} else if jerr == nil && len(j) > 0 && !bytes.Contains(b, []byte("null")) && utf8.Valid(b) {
			t.Fatalf("encoding/json accepts %v, ParseHeaders does not", j)
		}
	})
}

func FuzzReadTCPReply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0}, 0)
	f.Add(AppendTCPReply(nil, []byte("Unknown endpoint: 694d98147d54be25/nope")), 1024)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 0)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		r := bytes.NewReader(b)
		for {
			before := r.Len()
			data, err := ReadTCPReply(r, max, nil)
			if err == io.EOF {
				if before != 0 {
					t.Fatalf("io.EOF with %d bytes left", before)
				}
				return
			}
			if err != nil {
				var te *TCPError
				if !errors.As(err, &te) {
					t.Fatalf("untyped error %#v", err)
				}
				return
			}
			consumed := b[len(b)-before : len(b)-r.Len()]
			if !bytes.Equal(AppendTCPReply(nil, data), consumed) {
				t.Fatalf("re-encoding differs")
			}
		}
	})
}

func FuzzParseTCPAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.5:45123/694d98147d54be25/generate", "tcp://[::1]:1/a", "fe80::1:41235", "localhost:1", "[fe80::1%eth0]:2/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, path, err := ParseTCPAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error kind: %#v", err)
			}
		} else {
			if _, perr := netip.ParseAddrPort(hp); perr != nil || strings.Contains(hp, "/") || path == "" {
				t.Fatalf("accepted %q as %q + %q", s, hp, path)
			}
			hp2, path2, err := ParseTCPAddress("tcp://" + hp + "/" + path)
			if err != nil || hp2 != hp || path2 != path {
				t.Fatalf("round trip: %q %q %v", hp2, path2, err)
			}
		}
		d, err := CallHomeDialAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error kind: %#v", err)
			}
			return
		}
		if _, _, err := net.SplitHostPort(d); err != nil {
			t.Fatalf("CallHomeDialAddress(%q) = %q, not dialable: %v", s, d, err)
		}
		if h, p, err := net.SplitHostPort(s); err == nil && d != net.JoinHostPort(h, p) {
			t.Fatalf("CallHomeDialAddress(%q) = %q, want JoinHostPort's %q", s, d, net.JoinHostPort(h, p))
		}
		if d2, err := CallHomeDialAddress(d); err != nil || d2 != d {
			t.Fatalf("not idempotent: %q -> %q %v", d, d2, err)
		}
	})
}

// FuzzAppendString checks the serde-compatible escaper: valid JSON, decodes to the input (with
// invalid bytes as U+FFFD), equals encoding/json where the two agree by design, and the doubly
// escaped form used for the call-home info equals escaping twice.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "hello", "<>&", "\"\\\n\x00\x1f\x7f", "é世🎉\u2028", "\xff\xc3",
		muxInfoJSON, "x\\\\\\", "\"\xff\"\xc3\\\xe4\xb8", strings.Repeat("a\"b\\c/\n\xff", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := AppendString(nil, s)
		var want strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r)
			i += size
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil || back != want.String() {
			t.Fatalf("AppendString(%q) = %s decodes to %q, %v", s, enc, back, err)
		}
		if p, n, ok := parseString(enc, 0); !ok || n != len(enc) || p != want.String() {
			t.Fatalf("parseString(%s) = %q %d %v", enc, p, n, ok)
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, "\u2028\u2029") {
			if g := goEncode(t, s); !bytes.Equal(enc, g) {
				t.Fatalf("AppendString(%q) = %s, encoding/json %s", s, enc, g)
			}
		}
		double := append([]byte{'"'}, appendEscaped(nil, s, true)...)
		double = append(double, '"')
		if twice := AppendString(nil, string(enc[1:len(enc)-1])); !bytes.Equal(double, twice) {
			t.Fatalf("double escape of %q = %s, want %s", s, double, twice)
		}
	})
}

// FuzzFastPathAgrees checks that whatever the reflection-free fast paths accept, encoding/json
// decodes to the same values, and that what a canonical path accepts, the scan of the same
// parser reads the same way.
func FuzzFastPathAgrees(f *testing.F) {
	f.Add([]byte(v6Header))
	f.Add([]byte(`{"address":"10.0.0.5:41235","subject":"s","context":"c","stream_type":"response","x":[1,{"a":null}]}`))
	f.Add([]byte(`{"ID":"a","id":"b","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"t","info":"i","x":-1.5e3},"payload_codec":"json"}`))
	f.Add([]byte(`{"id":"a","request_type":"x","response_type":"y","connection_info":{"transport":"t","info":"\ud83d\ude00\ud800"},"k":"\u017f"}`))
	f.Add([]byte(`{"address":"127.0.0.1:1","frontend_server_id":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","stream_id":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","context":"c","version":1}`))
	f.Add([]byte(`{"address":"a","frontend_server_id":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","stream_id":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","context":"c","version":4294967296}`))
	f.Add([]byte(`{"subject":"` + v5Subject + `","stream_type":"response"}`))
	f.Add([]byte(` {"stream_type":"x","Subject":"a","subject":"b","y":{"z":[1.5,true]}} `))
	f.Add([]byte(`{"error":"Generate Error: \"text\" \u00e9\ud800","typed_error":{"code":1},"error":null}`))
	f.Add([]byte("{\"error\":null,\"error\":\"x\xff\"}"))
	f.Add([]byte("\t\"sentinel\"\r\n"))
	for _, s := range fastPathSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Each parser with a canonical path: what it accepts, the scan accepts with the same
		// result, and what the scan accepts, encoding/json decodes to the same values.
		canon, cok := parseRequestControlCanonical(b)
		scan, sok := parseRequestControlScan(b)
		if cok && (!sok || scan != canon) {
			t.Fatalf("request control: canonical %+v, scan %+v %v", canon, scan, sok)
		}
		if sok {
			slow, err := parseRequestControlSlow(b)
			if err != nil || slow != scan {
				t.Fatalf("request control: fast %+v, encoding/json %+v %v", scan, slow, err)
			}
		}
		// The call-home parsers read b as bytes to copy from, and as the string src they may
		// return substrings of: both must agree with encoding/json.
		for _, src := range []string{"", string(b)} {
			canon, cok := parseCallHomeCanonical(b, src)
			scan, sok := parseCallHomeScan(b, src)
			if cok && (!sok || scan != canon) {
				t.Fatalf("call-home (src %v): canonical %+v, scan %+v %v", src != "", canon, scan, sok)
			}
			if sok {
				slow, err := parseCallHomeSlow(b)
				if err != nil || slow != scan {
					t.Fatalf("call-home (src %v): fast %+v, encoding/json %+v %v", src != "", scan, slow, err)
				}
			}
			for _, id := range []string{"", "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"} {
				canon, cok := parseMuxCallHomeCanonical(b, src, id)
				scan, sok := parseMuxCallHomeScan(b, src, id)
				if cok && (!sok || scan != canon) {
					t.Fatalf("mux call-home (src %v, id %q): canonical %+v, scan %+v %v", src != "", id, canon, scan, sok)
				}
				if sok {
					slow, err := parseMuxCallHomeSlow(b)
					if err != nil || slow != scan {
						t.Fatalf("mux call-home (src %v, id %q): fast %+v, encoding/json %+v %v", src != "", id, scan, slow, err)
					}
				}
			}
		}
		if fast, ok := parseHandshakeFast(b); ok {
			slow, err := parseHandshakeSlow(b)
			if err != nil || slow != fast {
				t.Fatalf("handshake: fast %+v, encoding/json %+v %v", fast, slow, err)
			}
		}
		if fast, ok := parsePrologueFast(b); ok {
			slow, err := parsePrologueSlow(b)
			if err != nil || !reflect.DeepEqual(slow, fast) {
				t.Fatalf("prologue: fast %v, encoding/json %v %v", fast.Error, slow.Error, err)
			}
		}
		if fast, ok := parseControlFast(b); ok {
			slow, err := parseControlSlow(b)
			if err != nil || slow != fast {
				t.Fatalf("control: fast %v, encoding/json %v %v", fast, slow, err)
			}
		}
	})
}

// fastPathSeeds are request headers and call-home documents for the string decoder's and the
// canonical parsers' paths: canonical layouts, each escape kind inside the doubly encoded info,
// \u escapes and surrogates, invalid UTF-8 inside escaped strings, a value ending in a run of
// backslashes, and strings longer than the parsers' stack buffers (256 and 512 bytes).
func fastPathSeeds() []string {
	long := strings.Repeat(`ab\"cd`, 100) // 600 bytes of literal, 500 decoded
	head := `{"id":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","request_type":"single_in","response_type":"many_out","connection_info":{"transport":`
	return []string{
		muxHeaderJSON,
		muxInfoJSON,
		string(AppendCallHomeInfo(nil, v6Info)),
		head + `"tcp_response_mux_v1","info":"{\"address\":\"[::1]:7\",\"frontend_server_id\":\"9A1B2C3D-4E5F-4A6B-8C7D-0E1F2A3B4C5D\",\"stream_id\":\"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5\",\"context\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"version\":1}"}}`,
		head + `"tcp_server","info":"\"\\\/\b\f\n\r\t\u0041\u00e9\uD83D\uDE00\ud800\udc00x\ud800\u0041"}}`,
		head + "\"tcp_server\",\"info\":\"\\\"\xff\\\"\xc3\\n\xe4\xb8\\u00e9\xef\xbf\xbd\"}}",
		head + `"tcp_server","info":"x\\\\\\"}}`,
		head + `"tcp_server","info":"x\\\\\\\"}}`,
		head + `"tcp_server","info":"` + long + `"}}`,
		`{"id":"` + long + `","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"` + long + `"}}`,
		head + `"tcp_server","info":"i"} }`,
		head + `"tcp_server","info":"i"}}` + " \n",
		`{"id":"a","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"i"},"payload_codec":"json"}`,
		`{"address":"10.0.0.5:41235","frontend_server_id":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d","stream_id":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","context":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","version":01}`,
		`{"address":"\u0031\u0030.0.0.5:1","frontend_server_id":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d","stream_id":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","context":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0\u0064","version":1}`,
		`{"address":"` + long + `","subject":"\ud83d\ude00","context":"\"","stream_type":"response"}`,
		"{\"address\":\"\xff\",\"subject\":\"s\",\"context\":\"\\\\\",\"stream_type\":\"response\"}",
	}
}

// FuzzValidJSON checks ValidJSON against encoding/json.Valid on b, and on b nested depth
// levels deep (level d an object {"k":…} if bit d%64 of kinds is set, else an array), so deep
// and mixed nesting around the 10000-level limit needs no large corpus entries.
func FuzzValidJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, depth uint16, kinds uint64) {
		if got, want := ValidJSON(b), json.Valid(b); got != want {
			t.Fatalf("ValidJSON(%q) = %v, encoding/json %v", b, got, want)
		}
		if depth == 0 {
			return
		}
		// Beyond the limit every depth behaves the same.
		depth = min(depth, maxValidDepth+2)
		in := make([]byte, 0, len(b)+6*int(depth))
		for d := range int(depth) {
			if kinds>>(d%64)&1 != 0 {
				in = append(in, `{"k":`...)
			} else {
				in = append(in, '[')
			}
		}
		in = append(in, b...)
		for d := int(depth) - 1; d >= 0; d-- {
			if kinds>>(d%64)&1 != 0 {
				in = append(in, '}')
			} else {
				in = append(in, ']')
			}
		}
		if got, want := ValidJSON(in), json.Valid(in); got != want {
			t.Fatalf("ValidJSON(%q nested %d deep, kinds %#x) = %v, encoding/json %v", b, depth, kinds, got, want)
		}
	})
}

// TestFastPathsTaken pins which inputs the reflection-free paths decode themselves (what peers
// send) and which they leave to encoding/json; FuzzFastPathAgrees checks the values agree.
func TestFastPathsTaken(t *testing.T) {
	hs := `{"subject":"` + v5Subject + `","stream_type":"response"}`
	tests := []struct {
		name string
		fast func([]byte) bool
		in   string
		want bool
	}{
		{"handshake V5", handshakeFast, hs, true},
		{"handshake spaced, reordered, unknown fields", handshakeFast, " {\"stream_type\" : \"r\",\n\"x\":[1,{\"y\":null}], \"subject\":\"s\\u00e9\"} ", true},
		{"handshake case-folded key", handshakeFast, `{"Subject":"s","stream_type":"response"}`, false},
		{"handshake null", handshakeFast, `{"subject":null,"stream_type":"response"}`, false},
		{"handshake missing field", handshakeFast, `{"subject":"s"}`, false},
		{"handshake not an object", handshakeFast, `null`, false},
		{"prologue null", prologueFast, `{"error":null}`, true},
		{"prologue null, typed_error", prologueFast, `{"error":null,"typed_error":{"code":500}}`, true},
		{"prologue error, typed_error", prologueFast, `{"error":"Generate Error: x","typed_error":null}`, true},
		{"prologue V9", prologueFast, `{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`, true},
		{"prologue no error member", prologueFast, `{}`, true},
		{"prologue case-folded key", prologueFast, `{"Error":"x"}`, false},
		{"prologue number", prologueFast, `{"error":1}`, false},
		{"prologue trailing garbage", prologueFast, `{"error":null}x`, false},
		{"control stop", controlFast, `"stop"`, true},
		{"control spaced sentinel", controlFast, " \"sentinel\"\r\n", true},
		{"control escaped", controlFast, `"\u006bill"`, false},
		{"control unknown", controlFast, `"pause"`, false},
		{"request V6 canonical", requestCanonical, v6Header, true},
		{"request mux canonical", requestCanonical, muxHeaderJSON, true},
		{"request spaced", requestCanonical, strings.Replace(v6Header, `:"single_in"`, `: "single_in"`, 1), false},
		{"request spaced, scanned", requestFast, strings.Replace(v6Header, `:"single_in"`, `: "single_in"`, 1), true},
		{"request payload_codec", requestCanonical, strings.Replace(v6Header, `}}`, `},"payload_codec":"json"}`, 1), false},
		{"request payload_codec, scanned", requestFast, strings.Replace(v6Header, `}}`, `},"payload_codec":"json"}`, 1), true},
		{"request many_in, scanned", requestFast, strings.Replace(v6Header, `single_in`, `many_in`, 1), true},
		{"request unknown transport, scanned", requestFast, strings.Replace(v6Header, `tcp_server`, `nats`, 1), true},
		{"mux info canonical", muxCanonical, muxInfoJSON, true},
		{"mux info escaped context", muxCanonical, strings.Replace(muxInfoJSON, `"context":"3`, `"context":"\u0033`, 1), true},
		{"mux info extra member", muxCanonical, strings.Replace(muxInfoJSON, `}`, `,"x":1}`, 1), false},
		{"mux info extra member, scanned", muxFast, strings.Replace(muxInfoJSON, `}`, `,"x":1}`, 1), true},
		{"call-home V6 canonical", callHomeCanonical, string(AppendCallHomeInfo(nil, v6Info)), true},
		{"call-home reordered", callHomeCanonical, `{"subject":"s","address":"a","context":"c","stream_type":"response"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fast([]byte(tt.in)); got != tt.want {
				t.Errorf("fast path taken = %v, want %v", got, tt.want)
			}
		})
	}
	hsb := []byte(hs)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseHandshake(hsb) }); n > 1 {
		t.Errorf("ParseHandshake: %v allocations, want at most 1 (the subject)", n)
	}
	typed := []byte(`{"error":null,"typed_error":null}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParsePrologue(typed) }); n != 0 {
		t.Errorf("ParsePrologue(null): %v allocations, want 0", n)
	}
}

// TestParseAllocations pins what a worker allocates per request header: one string for the id
// and the info together; the call-home values are the info's substrings.
func TestParseAllocations(t *testing.T) {
	classic, mux := []byte(v6Header), []byte(muxHeaderJSON)
	v6InfoJSON := string(AppendCallHomeInfo(nil, v6Info))
	tests := []struct {
		name string
		fn   func()
		want float64
	}{
		{"ParseRequestControl", func() { _, _ = ParseRequestControl(classic) }, 1},
		{"ParseRequestControl mux", func() { _, _ = ParseRequestControl(mux) }, 1},
		{"ParseRequestControl + Validate", func() {
			rc, _ := ParseRequestControl(classic)
			_, _ = rc.Validate()
		}, 1},
		{"ParseRequestControl + ValidateMux", func() {
			rc, _ := ParseRequestControl(mux)
			_, _ = rc.ValidateMux()
		}, 1},
		{"CallHome", func() { _, _ = RequestControl{Info: v6InfoJSON}.CallHome() }, 0},
		{"MuxCallHome", func() { _, _ = RequestControl{ID: v6ID, Info: muxInfoJSON}.MuxCallHome() }, 0},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.fn); n != tt.want {
			t.Errorf("%s: %v allocations, want %v", tt.name, n, tt.want)
		}
	}
	// The values are right, and independent of the input buffer, which the reader reuses.
	buf := bytes.Clone(mux)
	rc, err := ParseRequestControl(buf)
	if err != nil {
		t.Fatal(err)
	}
	clear(buf)
	info, err := rc.ValidateMux()
	if err != nil || rc.ID != v6ID || rc.Info != muxInfoJSON || info != muxInfo() {
		t.Fatalf("after clearing the input: %+v, %+v, %v", rc, info, err)
	}
}

func requestCanonical(b []byte) bool { _, ok := parseRequestControlCanonical(b); return ok }
func requestFast(b []byte) bool      { _, ok := parseRequestControlFast(b); return ok }
func muxCanonical(b []byte) bool     { _, ok := parseMuxCallHomeCanonical(b, string(b), v6ID); return ok }
func muxFast(b []byte) bool          { _, ok := parseMuxCallHomeFast(b, "", ""); return ok }
func callHomeCanonical(b []byte) bool {
	_, ok := parseCallHomeCanonical(b, "")
	return ok
}
func handshakeFast(b []byte) bool { _, ok := parseHandshakeFast(b); return ok }
func prologueFast(b []byte) bool  { _, ok := parsePrologueFast(b); return ok }
func controlFast(b []byte) bool   { _, ok := parseControlFast(b); return ok }
