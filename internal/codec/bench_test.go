package codec

import (
	"bytes"
	"io"
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
