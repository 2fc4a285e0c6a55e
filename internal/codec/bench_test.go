package codec

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
)

// Benchmarks for the hot paths; run with -benchmem.

var benchItem = []byte(`{"data":{"text":"hello","index":0}}`)

func BenchmarkAppendFrame(b *testing.B) {
	sizes := []struct {
		name         string
		header, data []byte
	}{
		{"control", []byte(`"stop"`), nil},
		{"request", []byte(v6Header), []byte(v6Body)},
		{"item", nil, AppendStreamItem(nil, benchItem)},
		{"64KiB", []byte(v6Header), bytes.Repeat([]byte("x"), 64<<10)},
	}
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, 0, PrefixLen+len(s.header)+len(s.data))
			b.SetBytes(int64(cap(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = AppendFrame(buf[:0], s.header, s.data, DefaultMaxMessageSize)
			}
		})
	}
}

func BenchmarkChecksum(b *testing.B) {
	header, data := []byte(v6Header), []byte(v6Body)
	b.SetBytes(int64(len(header) + len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Checksum(header, data)
	}
}

func BenchmarkSplitFrame(b *testing.B) {
	frames := map[string][]byte{
		"request": mustFrame(b, []byte(v6Header), []byte(v6Body)),
		"item":    mustFrame(b, nil, AppendStreamItem(nil, benchItem)),
	}
	for name, f := range frames {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := SplitFrame(f, DefaultMaxMessageSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopReader replays data forever, so Reader.Next never hits EOF.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func BenchmarkReaderNext(b *testing.B) {
	item := mustFrame(b, nil, AppendStreamItem(nil, benchItem))
	b.SetBytes(int64(len(item)))
	b.ReportAllocs()
	r := NewReader(&loopReader{data: item}, DefaultMaxMessageSize)
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriterWriteFrame(b *testing.B) {
	data := AppendStreamItem(nil, benchItem)
	w := NewWriter(io.Discard, DefaultMaxMessageSize)
	b.SetBytes(int64(PrefixLen + len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteFrame(nil, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestControl(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequestControl(buf[:0], v6ID, v6Info)
	}
}

func BenchmarkParseRequestControl(b *testing.B) {
	header := []byte(v6Header)
	b.SetBytes(int64(len(header)))
	b.ReportAllocs()
	for b.Loop() {
		rc, err := ParseRequestControl(header)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rc.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMuxRequestControl is what a worker does with every response mux request's
// header: parse it and validate its mux info.
func BenchmarkParseMuxRequestControl(b *testing.B) {
	header := AppendMuxRequestControl(nil, v6ID, muxInfo())
	b.SetBytes(int64(len(header)))
	b.ReportAllocs()
	for b.Loop() {
		rc, err := ParseRequestControl(header)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rc.ValidateMux(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseString is the JSON string decoder alone: a plain value, and the call-home info
// as the request header carries it (a JSON document in a string, full of \" escapes).
func BenchmarkParseString(b *testing.B) {
	inputs := []struct {
		name string
		lit  []byte
	}{
		{"plain", AppendString(nil, v6ID)},
		{"escaped-info", AppendString(nil, string(AppendMuxCallHomeInfo(nil, muxInfo())))},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.lit)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := parseString(in.lit, 0); !ok {
					b.Fatal("not a string")
				}
			}
		})
	}
}

func BenchmarkAppendStreamItem(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendStreamItem(buf[:0], benchItem)
	}
}

func BenchmarkParseStreamItem(b *testing.B) {
	item := AppendStreamItem(nil, benchItem)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStreamItem(item); err != nil {
			b.Fatal(err)
		}
	}
}

// benchJSONValues are the item payloads the requester validates: a typical ~100-byte item, a
// 4 KiB one that is mostly one string, and a 4 KiB one made of many short members and numbers.
func benchJSONValues() []struct {
	name string
	v    []byte
} {
	mixed := []byte(`{"data":{"token_ids":[`)
	for i := 0; len(mixed) < 2<<10; i++ {
		if i > 0 {
			mixed = append(mixed, ',')
		}
		mixed = strconv.AppendInt(mixed, int64(i*7919%50257), 10)
	}
	mixed = append(mixed, `],"choices":[`...)
	for i := 0; len(mixed) < 4<<10-40; i++ {
		if i > 0 {
			mixed = append(mixed, ',')
		}
		mixed = append(mixed, `{"index":`...)
		mixed = strconv.AppendInt(mixed, int64(i), 10)
		mixed = append(mixed, `,"text":"tok\u00e9n","logprob":-1.25e-3,"final":false,"stop":null}`...)
	}
	mixed = append(mixed, "]}}"...)
	return []struct {
		name string
		v    []byte
	}{
		{"small", []byte(`{"data":{"index":7,"pad":"` + strings.Repeat("x", 64) + `"}}`)},
		{"4KiB", []byte(`{"data":{"index":7,"pad":"` + strings.Repeat("x", 4<<10-36) + `"}}`)},
		{"4KiB-mixed", mixed},
	}
}

func BenchmarkValidJSON(b *testing.B) {
	for _, tc := range benchJSONValues() {
		if !json.Valid(tc.v) || !ValidJSON(tc.v) {
			b.Fatalf("%s: benchmark input is not valid JSON", tc.name)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.v)))
			b.ReportAllocs()
			for b.Loop() {
				if !ValidJSON(tc.v) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(tc.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(tc.v)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(tc.v) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkParseStreamItemSize(b *testing.B) {
	for _, tc := range benchJSONValues() {
		item := AppendStreamItem(nil, tc.v)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseStreamItem(item); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchParse runs parse over each named input, reporting allocations.
func benchParse(b *testing.B, cases []struct{ name, in string }, parse func([]byte) error) {
	for _, tc := range cases {
		in := []byte(tc.in)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseHandshake(b *testing.B) {
	benchParse(b, []struct{ name, in string }{
		{"reqplane", `{"subject":"` + v5Subject + `","stream_type":"response"}`},
		{"unknown field", `{"subject":"` + v5Subject + `","stream_type":"response","x":[1,{"y":null}]}`},
	}, func(in []byte) error { _, err := ParseHandshake(in); return err })
}

func BenchmarkParsePrologue(b *testing.B) {
	benchParse(b, []struct{ name, in string }{
		{"null", `{"error":null}`},
		{"null typed_error", `{"error":null,"typed_error":null}`},
		{"error", `{"error":"Generate Error: request body must be a JSON object with a \"text\" field"}`},
		{"error typed_error", `{"error":"Generate Error: boom","typed_error":{"code":500,"message":"boom"}}`},
	}, func(in []byte) error { _, err := ParsePrologue(in); return err })
}

func BenchmarkParseControl(b *testing.B) {
	benchParse(b, []struct{ name, in string }{
		{"stop", `"stop"`},
		{"sentinel", ` "sentinel"` + "\n"},
	}, func(in []byte) error { _, err := ParseControl(in); return err })
}

func BenchmarkTCPRequest(b *testing.B) {
	frame := mustFrame(b, []byte(v6Header), []byte(v6Body))
	headers := map[string]string{"x-request-id": v6ID, "request-id": v6ID, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	const path = "694d98147d54be25/generate"
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendTCPRequest(buf[:0], path, headers, frame, DefaultMaxMessageSize)
		}
	})
	b.Run("decode", func(b *testing.B) {
		env, _ := AppendTCPRequest(nil, path, headers, frame, DefaultMaxMessageSize)
		r := NewTCPRequestReader(&loopReader{data: env}, DefaultMaxMessageSize)
		b.SetBytes(int64(len(env)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode no headers", func(b *testing.B) {
		env, _ := AppendTCPRequest(nil, path, nil, frame, DefaultMaxMessageSize)
		r := NewTCPRequestReader(&loopReader{data: env}, DefaultMaxMessageSize)
		b.SetBytes(int64(len(env)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
