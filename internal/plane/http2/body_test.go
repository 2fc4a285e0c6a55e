package http2

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/reqplane/reqplane/internal/codec"
)

// prefixOnly is a reader that yields a frame prefix and fails the test if read further.
type prefixOnly struct {
	t      *testing.T
	prefix []byte
}

func (p *prefixOnly) Read(b []byte) (int, error) {
	if len(p.prefix) == 0 {
		p.t.Error("read past a prefix that declares an oversized frame")
		return 0, io.EOF
	}
	n := copy(b, p.prefix)
	p.prefix = p.prefix[n:]
	return n, nil
}

func TestReadBody(t *testing.T) {
	const max = 1 << 20
	frame := func(n int) []byte { return requestFrame(t, testID, `{"text":"`+strings.Repeat("a", n)+`"}`) }
	small, mid, big := frame(10), frame(100<<10), frame(max-2048)
	oversized := bytes.Clone(small[:codec.PrefixLen])
	oversized[8] = 0x7f // body_len near 2^63
	failing := errors.New("connection reset")
	oversizedText := "Two Part Codec Error: Message size " +
		strconv.FormatUint(0x7f<<56+uint64(len(small)), 10) + " exceeds the maximum allowed size of 1048576 bytes"

	for _, tc := range []struct {
		name string
		r    io.Reader
		cl   int64
		want []byte // nil: an error is expected
		err  string
	}{
		{name: "exact content-length", r: bytes.NewReader(small), cl: int64(len(small)), want: small},
		{name: "no content-length", r: bytes.NewReader(small), cl: -1, want: small},
		{name: "one byte at a time", r: iotest.OneByteReader(bytes.NewReader(mid)), cl: -1, want: mid},
		{name: "content-length, large", r: bytes.NewReader(big), cl: int64(len(big)), want: big},
		{name: "no content-length, large", r: iotest.HalfReader(bytes.NewReader(big)), cl: -1, want: big},
		{name: "empty", r: bytes.NewReader(nil), cl: 0, want: []byte{}},
		{name: "empty without length", r: bytes.NewReader(nil), cl: -1, want: []byte{}},
		{name: "shorter than its prefix says", r: bytes.NewReader(small[:100]), cl: -1, want: small[:100]},
		{name: "longer than its prefix says", r: bytes.NewReader(append(bytes.Clone(small), "xyz"...)), cl: -1, want: append(bytes.Clone(small), "xyz"...)},
		// Zero bytes declare an empty frame; the rest is trailing garbage, read up to max.
		{name: "empty frame and garbage", r: bytes.NewReader(make([]byte, 5000)), cl: -1, want: make([]byte, 5000)},
		{name: "shorter than content-length", r: bytes.NewReader(small[:100]), cl: int64(len(small)),
			err: "Two Part Codec Error: I/O error: unexpected EOF"},
		{name: "read error", r: io.MultiReader(bytes.NewReader(small[:50]), iotest.ErrReader(failing)), cl: -1,
			err: "Two Part Codec Error: I/O error: connection reset"},
		{name: "oversized prefix", r: &prefixOnly{t: t, prefix: oversized}, cl: -1,
			err: oversizedText},
		{name: "oversized prefix with content-length", r: &prefixOnly{t: t, prefix: oversized}, cl: 1000,
			err: oversizedText},
		{name: "over the limit", r: bytes.NewReader(make([]byte, max+10)), cl: -1,
			err: "Two Part Codec Error: Message size 1048577 exceeds the maximum allowed size of 1048576 bytes"},
		{name: "exactly the limit", r: bytes.NewReader(make([]byte, max)), cl: -1, want: make([]byte, max)},
		{name: "huge declaration", r: bytes.NewReader(bytes.Repeat([]byte{0xff}, 100)), cl: -1,
			err: "Two Part Codec Error: Message size 18446744073709551615 exceeds the maximum allowed size of 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(tc.r), max)
			got, err := readBody(r, tc.cl, max)
			if tc.want == nil {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				var ce *codec.Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %T is not a *codec.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
			if cap(got) > 2*len(got)+growSlack || tc.cl >= 0 && cap(got) != len(got) {
				t.Fatalf("buffer of %d bytes holds %d (Content-Length %d)", cap(got), len(got), tc.cl)
			}
		})
	}
}

// What a peer declares (Content-Length or the frame prefix) is not allocated before it arrives.
func TestReadBodyAllocatesWhatArrives(t *testing.T) {
	const max = codec.DefaultMaxMessageSize
	declared := requestFrame(t, testID, testBody)
	// The prefix declares a body just under max; only 200 bytes follow.
	declared[8], declared[9], declared[10], declared[11] = 0, 0, 0, 0
	declared[12], declared[13], declared[14], declared[15] = 0x01, 0xff, 0xf0, 0x00
	for _, tc := range []struct {
		name string
		cl   int64
	}{
		{"content-length declares max", max},
		{"prefix declares max", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocatedBy(func() {
				_, err = readBody(bytes.NewReader(declared[:200]), tc.cl, max)
			})
			if n > 64<<10 {
				t.Fatalf("allocated %d bytes for a 200-byte body", n)
			}
			if tc.cl >= 0 && err == nil {
				t.Fatal("a body shorter than its Content-Length was accepted")
			}
		})
	}
}

func TestNextCap(t *testing.T) {
	for _, tc := range []struct {
		have, expect, max, want int
	}{
		{0, -1, 1 << 20, growSlack},
		{1024, -1, 1 << 20, 2048 + growSlack},
		{1024, 2000, 1 << 20, 2000},                // the expected end is near: exactly that
		{1024, 1 << 20, 1 << 20, 2048 + growSlack}, // far: grow by what arrived
		{2000, 2000, 1 << 20, 2000},                // all expected bytes in: probe
		{3000, 2000, 1 << 20, 3000},                // past the expected end: probe
		{900, -1, 1000, 1000},                      // capped by max
		{1000, -1, 1000, 1000},                     // at max: probe
	} {
		if got := nextCap(tc.have, tc.expect, tc.max); got != tc.want {
			t.Errorf("nextCap(%d, %d, %d) = %d, want %d", tc.have, tc.expect, tc.max, got, tc.want)
		}
	}
}
