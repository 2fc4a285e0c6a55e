package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// Spec §11 worked vectors, byte-exact in both directions.

const (
	v5Subject = "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"
	v6ID      = "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"
	v6Header  = `{"id":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"{\"address\":\"10.0.0.5:41235\",\"subject\":\"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5\",\"context\":\"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d\",\"stream_type\":\"response\"}"}}`
	v6Body    = `{"text":"hello world"}`
	v9Text    = `Generate Error: request body must be a JSON object with a "text" field`
)

var v6Info = CallHomeInfo{Address: "10.0.0.5:41235", Subject: v5Subject, Context: v6ID, StreamType: StreamTypeResponse}

// unhex parses space-separated hex as printed in the spec.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustFrame(t testing.TB, header, data []byte) []byte {
	t.Helper()
	b, err := AppendFrame(nil, []byte(header), []byte(data), 0)
	if err != nil {
		t.Fatalf("AppendFrame: %v", err)
	}
	return b
}

func TestSpecFrameVectors(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		data     string
		prefix   string // the 24-byte prefix from the spec
		size     int
		checksum uint64
		kind     Kind
	}{
		{"V1 empty", "", "", "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  2d 06 80 05 38 d3 94 c2", 24, 0x2D06800538D394C2, Empty},
		{"V2 sentinel", `"sentinel"`, "", "00 00 00 00 00 00 00 0a  00 00 00 00 00 00 00 00  39 93 29 6f 71 e7 48 89", 34, 0x3993296F71E74889, HeaderOnly},
		{"V3 stop", `"stop"`, "", "00 00 00 00 00 00 00 06  00 00 00 00 00 00 00 00  73 19 77 e5 b1 d5 da ae", 30, 0x731977e5b1d5daae, HeaderOnly},
		{"V3 kill", `"kill"`, "", "00 00 00 00 00 00 00 06  00 00 00 00 00 00 00 00  6d 97 08 1d 9a 24 ad 23", 30, 0x6d97081d9a24ad23, HeaderOnly},
		{"V4 prologue", `{"error":null}`, "", "00 00 00 00 00 00 00 0e  00 00 00 00 00 00 00 00  f0 e6 14 89 b5 02 a5 2a", 38, 0xf0e61489b502a52a, HeaderOnly},
		{"V5 handshake", `{"subject":"` + v5Subject + `","stream_type":"response"}`, "", "00 00 00 00 00 00 00 4b  00 00 00 00 00 00 00 00  7b 05 55 5e c3 90 e7 66", 99, 0x7b05555ec390e766, HeaderOnly},
		{"V6 request", v6Header, v6Body, "00 00 00 00 00 00 01 41  00 00 00 00 00 00 00 16  1f b8 ba 1d 9a 36 f5 1a", 367, 0x1FB8BA1D9A36F51A, HeaderAndData},
		{"V8 hello", "", `{"data":{"data":{"text":"hello","index":0}},"complete_final":false}`, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 43  bf 12 46 b1 71 b6 9d fb", 91, 0xBF1246B171B69DFB, DataOnly},
		{"V8 world", "", `{"data":{"data":{"text":"world","index":1}},"complete_final":false}`, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 43  ea a2 b9 01 4e 04 40 3f", 91, 0xEAA2B9014E04403F, DataOnly},
		{"V8 end", "", `{"complete_final":true}`, "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 17  e2 43 ab b5 e2 7e 64 ef", 47, 0xE243ABB5E27E64EF, DataOnly},
		{"V9 error prologue", `{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`, "", "", 24 + 84, 0x4B703A6E085D8825, HeaderOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, 0, tt.size)
			want = binary.BigEndian.AppendUint64(want, uint64(len(tt.header)))
			want = binary.BigEndian.AppendUint64(want, uint64(len(tt.data)))
			want = binary.BigEndian.AppendUint64(want, tt.checksum)
			want = append(want, tt.header...)
			want = append(want, tt.data...)
			if tt.prefix != "" && !bytes.Equal(want[:PrefixLen], unhex(t, tt.prefix)) {
				t.Fatalf("test table inconsistent with spec prefix")
			}
			if len(want) != tt.size {
				t.Fatalf("frame size = %d, spec says %d", len(want), tt.size)
			}
			if got := Checksum([]byte(tt.header), []byte(tt.data)); got != tt.checksum {
				t.Errorf("Checksum = %#x, want %#x", got, tt.checksum)
			}
			got := mustFrame(t, []byte(tt.header), []byte(tt.data))
			if !bytes.Equal(got, want) {
				t.Errorf("AppendFrame =\n% x\nwant\n% x", got, want)
			}
			f, err := DecodeFrame(want, DefaultMaxMessageSize)
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			if string(f.Header) != tt.header || string(f.Data) != tt.data || f.Kind() != tt.kind {
				t.Errorf("DecodeFrame = %q %q %v", f.Header, f.Data, f.Kind())
			}
			// A zero checksum (Dynamo release builds) is accepted unverified.
			zero := bytes.Clone(want)
			clear(zero[16:24])
			if _, err := DecodeFrame(zero, 0); err != nil {
				t.Errorf("checksum 0: %v", err)
			}
		})
	}
}

func TestSpecV2ChecksumMismatch(t *testing.T) {
	v2 := unhex(t, "00 00 00 00 00 00 00 0a  00 00 00 00 00 00 00 00  39 93 29 6f 71 e7 48 89  22 73 65 6e 74 69 6e 65 6c 22")
	bad := bytes.Clone(v2)
	copy(bad[16:24], unhex(t, "00 00 00 00 00 00 00 01"))
	_, err := DecodeFrame(bad, 0)
	if err == nil || err.Error() != "Two Part Codec Error: Checksum mismatch" {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("errors.Is(ErrChecksumMismatch) = false")
	}
	if _, _, err := SplitFrame(bad, 0); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("SplitFrame err = %v", err)
	}
	if _, err := NewReader(bytes.NewReader(bad), 0).Next(); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("Reader err = %v", err)
	}
}

func TestSpecControlObjects(t *testing.T) {
	errText := v9Text
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"V2 sentinel", ControlSentinel.Bytes(), `"sentinel"`},
		{"V3 stop", ControlStop.Bytes(), `"stop"`},
		{"V3 kill", ControlKill.Bytes(), `"kill"`},
		{"V4 prologue", AppendPrologue(nil, nil), `{"error":null}`},
		{"V5 handshake", AppendHandshake(nil, Handshake{Subject: v5Subject, StreamType: StreamTypeResponse}), `{"subject":"` + v5Subject + `","stream_type":"response"}`},
		{"V6 request header", AppendRequestControl(nil, v6ID, v6Info), v6Header},
		{"V8 item", AppendStreamItem(nil, AppendAnnotated(nil, Annotated{Data: []byte(`{"text":"hello","index":0}`)})), `{"data":{"data":{"text":"hello","index":0}},"complete_final":false}`},
		{"V8 end", AppendStreamEnd(nil), `{"complete_final":true}`},
		{"V9 error prologue", AppendPrologue(nil, &errText), `{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
	if n := len(v6Header); n != 321 {
		t.Errorf("V6 header is %d bytes, spec says 321", n)
	}
	if n := len(`{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`); n != 84 {
		t.Errorf("V9 header is %d bytes, spec says 84", n)
	}
}

func TestSpecV6Decode(t *testing.T) {
	frame := mustFrame(t, []byte(v6Header), []byte(v6Body))
	f, err := DecodeFrame(frame, DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := RequireHeaderAndData(f); err != nil {
		t.Fatal(err)
	}
	rc, err := ParseRequestControl(f.Header)
	if err != nil {
		t.Fatal(err)
	}
	want := RequestControl{ID: v6ID, RequestType: RequestTypeSingleIn, ResponseType: ResponseTypeManyOut, Transport: TransportTCPServer,
		Info: `{"address":"10.0.0.5:41235","subject":"` + v5Subject + `","context":"` + v6ID + `","stream_type":"response"}`}
	if rc != want {
		t.Fatalf("ParseRequestControl =\n%+v\nwant\n%+v", rc, want)
	}
	info, err := rc.Validate()
	if err != nil || info != v6Info {
		t.Fatalf("Validate = %+v, %v", info, err)
	}
	if string(f.Data) != v6Body {
		t.Errorf("body = %q", f.Data)
	}
}

func TestSpecV7TCPEnvelope(t *testing.T) {
	frame := mustFrame(t, []byte(v6Header), []byte(v6Body))
	const path = "694d98147d54be25/generate"
	env, err := AppendTCPRequest(nil, path, nil, frame, DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	start := unhex(t, "00 19 36 39 34 64 39 38 31 34 37 64 35 34 62 65 32 35 2f 67 65 6e 65 72 61 74 65  00 02 7b 7d  00 00 01 6f")
	if len(env) != 402 || !bytes.HasPrefix(env, start) || !bytes.Equal(env[len(start):], frame) {
		t.Fatalf("envelope (%d B) =\n% x", len(env), env)
	}
	req, err := NewTCPRequestReader(bytes.NewReader(env), DefaultMaxMessageSize).Next()
	if err != nil {
		t.Fatal(err)
	}
	if req.Path != path || len(req.Headers()) != 0 || !bytes.Equal(req.Payload, frame) {
		t.Fatalf("decoded %+v", req)
	}

	ack := AppendTCPReply(nil, nil)
	if !bytes.Equal(ack, unhex(t, "00 00 00 00")) {
		t.Errorf("ack = % x", ack)
	}
	unknown := AppendTCPReply(nil, []byte("Unknown endpoint: 694d98147d54be25/nope"))
	if !bytes.Equal(unknown[:4], unhex(t, "00 00 00 27")) || string(unknown[4:]) != "Unknown endpoint: 694d98147d54be25/nope" {
		t.Errorf("unknown endpoint reply = % x", unknown)
	}
	for _, reply := range [][]byte{ack, unknown} {
		got, err := ReadTCPReply(bytes.NewReader(reply), DefaultMaxMessageSize, nil)
		if err != nil || !bytes.Equal(got, reply[4:]) {
			t.Errorf("ReadTCPReply(% x) = %q, %v", reply, got, err)
		}
	}
}

func TestSpecV8EchoStream(t *testing.T) {
	// The whole reply to V6 as one byte stream: V5, V4, two items, the end, V2.
	var stream []byte
	stream = append(stream, mustFrame(t, AppendHandshake(nil, Handshake{Subject: v5Subject}), nil)...)
	stream = append(stream, mustFrame(t, AppendPrologue(nil, nil), nil)...)
	for _, d := range []string{`{"text":"hello","index":0}`, `{"text":"world","index":1}`} {
		stream = append(stream, mustFrame(t, nil, AppendStreamItem(nil, AppendAnnotated(nil, Annotated{Data: []byte(d)})))...)
	}
	stream = append(stream, mustFrame(t, nil, AppendStreamEnd(nil))...)
	stream = append(stream, mustFrame(t, ControlSentinel.Bytes(), nil)...)
	if want := 99 + 38 + 91 + 91 + 47 + 34; len(stream) != want {
		t.Fatalf("stream is %d bytes, want %d", len(stream), want)
	}

	r := NewReader(bytes.NewReader(stream), DefaultMaxMessageSize)
	f, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h, err := ParseHandshake(f.Header); err != nil || h.Subject != v5Subject || h.StreamType != StreamTypeResponse {
		t.Fatalf("handshake %+v %v", h, err)
	}
	f, _ = r.Next()
	if p, err := ParsePrologue(f.Header); err != nil || p.Error != nil {
		t.Fatalf("prologue %+v %v", p, err)
	}
	var printed []string
	for {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind() == HeaderOnly {
			if c, err := ParseControl(f.Header); err != nil || c != ControlSentinel {
				t.Fatalf("control %v %v", c, err)
			}
			break
		}
		it, err := ParseStreamItem(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if it.CompleteFinal {
			continue
		}
		a, err := ParseAnnotated(it.Data)
		if err != nil {
			t.Fatal(err)
		}
		printed = append(printed, string(it.Data))
		_ = a
	}
	want := []string{`{"data":{"text":"hello","index":0}}`, `{"data":{"text":"world","index":1}}`}
	if strings.Join(printed, "\n") != strings.Join(want, "\n") {
		t.Errorf("printed %q", printed)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after sentinel: %v, want io.EOF", err)
	}
}

func TestSpecV10Limits(t *testing.T) {
	frameOf := func(total int) []byte {
		return mustFrame(t, bytes.Repeat([]byte("h"), (total-PrefixLen)/2), bytes.Repeat([]byte("d"), total-PrefixLen-(total-PrefixLen)/2))
	}
	prefix := func(h, b uint64) []byte {
		p := binary.BigEndian.AppendUint64(nil, h)
		p = binary.BigEndian.AppendUint64(p, b)
		return binary.BigEndian.AppendUint64(p, 0)
	}
	const msg1025 = "Two Part Codec Error: Message size 1025 exceeds the maximum allowed size of 1024 bytes"
	tests := []struct {
		name    string
		input   []byte
		max     int
		wantErr string // "" = decodes
	}{
		{"1024 B at max 1024", frameOf(1024), 1024, ""},
		{"1025 B at max 1024", frameOf(1025), 1024, msg1025},
		{"bare prefix H=8 B=12 at max 40", prefix(8, 12), 40, "Two Part Codec Error: Message size 44 exceeds the maximum allowed size of 40 bytes"},
		{"H=2^64-1 overflows", prefix(math.MaxUint64, 0), 40, "Two Part Codec Error: Message size 18446744073709551615 exceeds the maximum allowed size of 40 bytes"},
		{"H+B overflow", prefix(math.MaxUint64/2+1, math.MaxUint64/2+1), 40, "Two Part Codec Error: Message size 18446744073709551615 exceeds the maximum allowed size of 40 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("%s: unexpected error %v", what, err)
				case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
					t.Errorf("%s: err = %v, want %q", what, err, tt.wantErr)
				case tt.wantErr != "" && !errors.Is(err, ErrMessageTooLarge):
					t.Errorf("%s: not ErrMessageTooLarge", what)
				}
			}
			_, err := DecodeFrame(tt.input, tt.max)
			check("DecodeFrame", err)
			_, _, err = SplitFrame(tt.input, tt.max)
			check("SplitFrame", err)
			_, err = NewReader(bytes.NewReader(tt.input), tt.max).Next()
			check("Reader", err)
			if len(tt.input) > PrefixLen {
				f, _ := DecodeFrame(tt.input, 0)
				_, err = AppendFrame(nil, f.Header, f.Data, tt.max)
				check("AppendFrame", err)
				err = NewWriter(io.Discard, tt.max).WriteFrame(f.Header, f.Data)
				check("Writer", err)
			}
		})
	}

	// The first 0, 1, 23 or 24 bytes of a longer frame: need more on a stream, no message in a
	// complete container.
	long := frameOf(100)
	for _, n := range []int{0, 1, 23, 24} {
		f, used, err := SplitFrame(long[:n], 1024)
		if used != 0 || err != nil || f.Header != nil || f.Data != nil {
			t.Errorf("SplitFrame(%d bytes) = %d, %v; want need more", n, used, err)
		}
		_, err = DecodeFrame(long[:n], 1024)
		if err == nil || err.Error() != "Two Part Codec Error: Invalid message: No message decoded" {
			t.Errorf("DecodeFrame(%d bytes) err = %v", n, err)
		}
		// A stream that stops there ends cleanly only at 0 bytes.
		_, err = NewReader(bytes.NewReader(long[:n]), 1024).Next()
		if n == 0 && err != io.EOF {
			t.Errorf("Reader(0 bytes) err = %v, want io.EOF", err)
		}
		if n > 0 && (!errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrIO) ||
			err.Error() != "Two Part Codec Error: I/O error: unexpected EOF") {
			t.Errorf("Reader(%d bytes) err = %v, want wrapped io.ErrUnexpectedEOF", n, err)
		}
		// On a live stream the Reader waits for the rest and then delivers the frame.
		sr := &scriptedReader{steps: []readStep{{data: long[:n]}, {data: long[n:]}}}
		if n == 0 {
			sr.steps = sr.steps[1:]
		}
		got, err := NewReader(sr, 1024).Next()
		if err != nil || len(got.Header)+len(got.Data) != 100-PrefixLen || len(sr.steps) != 0 {
			t.Errorf("Reader after %d bytes: %v", n, err)
		}
	}

	// TCP path_len 0.
	env := []byte{0, 0, 0, 2, '{', '}', 0, 0, 0, 0}
	_, err := NewTCPRequestReader(bytes.NewReader(env), 1024).Next()
	var te *TCPError
	if !errors.As(err, &te) || err.Error() != "invalid endpoint path length: 0" || !te.Fatal() ||
		te.Reply() != "Read error: invalid endpoint path length: 0" {
		t.Errorf("path_len 0: %v", err)
	}
}
