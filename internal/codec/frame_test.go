package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/xxh3"
)

func TestChecksumMatchesConcatenation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 5000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	// Sizes around xxh3's internal thresholds (16, 128, 240, stripe 64, block 1024, hasher buffer
	// 1088) and split points at both ends.
	sizes := []int{0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1023, 1024, 1025, 1087, 1088, 1089, 2048, 2112, 4096, 5000}
	for _, n := range sizes {
		want := xxh3.Hash(buf[:n])
		for _, split := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			if split < 0 || split > n {
				continue
			}
			if got := Checksum(buf[:split], buf[split:n]); got != want {
				t.Errorf("Checksum(len %d split %d) = %#x, want %#x", n, split, got, want)
			}
		}
	}
}

func TestFrameKind(t *testing.T) {
	tests := []struct {
		f    Frame
		kind Kind
		name string
	}{
		{Frame{}, Empty, "Empty"},
		{Frame{Header: []byte{}, Data: []byte{}}, Empty, "Empty"},
		{Frame{Header: []byte("h")}, HeaderOnly, "HeaderOnly"},
		{Frame{Data: []byte("d")}, DataOnly, "DataOnly"},
		{Frame{Header: []byte("h"), Data: []byte("d")}, HeaderAndData, "HeaderAndData"},
	}
	for _, tt := range tests {
		if got := tt.f.Kind(); got != tt.kind || got.String() != tt.name {
			t.Errorf("Kind(%q,%q) = %v", tt.f.Header, tt.f.Data, got)
		}
		err := RequireHeaderAndData(tt.f)
		if (err == nil) != (tt.kind == HeaderAndData) {
			t.Errorf("RequireHeaderAndData(%v) = %v", tt.kind, err)
		}
		if err != nil && err.Error() != "Two Part Codec Error: Invalid message: Unexpected message from work queue; unable extract a TwoPartMessage with a header and data" {
			t.Errorf("RequireHeaderAndData text = %q", err)
		}
	}
	if s := Kind(9).String(); s != "Kind(9)" {
		t.Errorf("Kind(9) = %q", s)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		header, data []byte
	}{
		{"empty", nil, nil},
		{"header only", []byte(`"stop"`), nil},
		{"data only", nil, []byte(`{"complete_final":true}`)},
		{"both", []byte(`{"id":"x"}`), []byte(`{"text":"hi"}`)},
		{"binary", []byte{0, 1, 2, 255}, bytes.Repeat([]byte{0xAB}, 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Appending keeps what dst held.
			b, err := AppendFrame([]byte("keep"), tt.header, tt.data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:4]) != "keep" {
				t.Fatalf("dst prefix clobbered")
			}
			f, err := DecodeFrame(b[4:], len(b)-4)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Header, tt.header) || !bytes.Equal(f.Data, tt.data) {
				t.Fatalf("round trip = %q %q", f.Header, f.Data)
			}
			// Decoded slices are capped so appending to one cannot overwrite the other.
			if cap(f.Header) != len(f.Header) || cap(f.Data) != len(f.Data) {
				t.Errorf("slices not capped: cap %d/%d", cap(f.Header), cap(f.Data))
			}
			// SplitFrame over two concatenated frames returns the first and its length.
			two := append(bytes.Clone(b[4:]), b[4:]...)
			f2, n, err := SplitFrame(two, 0)
			if err != nil || n != len(b)-4 || !bytes.Equal(f2.Data, tt.data) {
				t.Errorf("SplitFrame = %d, %v", n, err)
			}
		})
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := mustFrame(t, []byte("head"), []byte("body"))
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xFF
	tests := []struct {
		name  string
		input []byte
		max   int
		code  ErrorCode
		text  string
	}{
		{"nil", nil, 0, CodeInvalidMessage, "Two Part Codec Error: Invalid message: No message decoded"},
		{"short body", good[:len(good)-1], 0, CodeInvalidMessage, "Two Part Codec Error: Invalid message: No message decoded"},
		{"trailing", append(bytes.Clone(good), 1, 2, 3), 0, CodeInvalidMessage, "Two Part Codec Error: Invalid message: 3 trailing bytes"},
		{"two frames", append(bytes.Clone(good), good...), 0, CodeInvalidMessage, "Two Part Codec Error: Invalid message: 32 trailing bytes"},
		{"corrupt", corrupt, 0, CodeChecksumMismatch, "Two Part Codec Error: Checksum mismatch"},
		{"too large", good, len(good) - 1, CodeMessageTooLarge, "Two Part Codec Error: Message size 32 exceeds the maximum allowed size of 31 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFrame(tt.input, tt.max)
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != tt.code || err.Error() != tt.text {
				t.Fatalf("err = %v, want %v %q", err, tt.code, tt.text)
			}
		})
	}
}

func TestFrameSizeWithoutLimit(t *testing.T) {
	// With no limit the only bound is what an int can address; a 2^63 header is refused at once.
	p := binary.BigEndian.AppendUint64(nil, 1<<63)
	p = binary.BigEndian.AppendUint64(p, 0)
	p = binary.BigEndian.AppendUint64(p, 0)
	_, _, err := SplitFrame(p, 0)
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != CodeMessageTooLarge || ce.Size != 1<<63+PrefixLen || ce.Max != math.MaxInt64 {
		t.Fatalf("err = %#v", err)
	}
	// A large but addressable declaration is merely "need more".
	p2 := binary.BigEndian.AppendUint64(nil, 1<<40)
	p2 = append(p2, make([]byte, 16)...)
	if _, n, err := SplitFrame(p2, -1); n != 0 || err != nil {
		t.Fatalf("SplitFrame = %d, %v", n, err)
	}
}

func TestErrorTexts(t *testing.T) {
	tests := []struct {
		err  error
		text string
	}{
		{ErrMessageTooLarge, "Two Part Codec Error: Message size exceeds the maximum allowed size"},
		{ErrChecksumMismatch, "Two Part Codec Error: Checksum mismatch"},
		{ErrInvalidMessage, "Two Part Codec Error: Invalid message"},
		{ErrIO, "Two Part Codec Error: I/O error"},
		{&Error{Code: CodeIO, Err: errors.New("broken pipe")}, "Two Part Codec Error: I/O error: broken pipe"},
		{&Error{Code: CodeIO, Detail: "x"}, "Two Part Codec Error: I/O error: x"},
		{&Error{Code: 77, Detail: "odd"}, "Two Part Codec Error: odd"},
	}
	for _, tt := range tests {
		if tt.err.Error() != tt.text {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, tt.err.Error(), tt.text)
		}
	}
	codes := map[ErrorCode]string{CodeMessageTooLarge: "MessageTooLarge", CodeChecksumMismatch: "ChecksumMismatch",
		CodeInvalidMessage: "InvalidMessage", CodeIO: "IO", 0: "ErrorCode(0)"}
	for c, s := range codes {
		if c.String() != s {
			t.Errorf("%d.String() = %q", c, c.String())
		}
	}
	// Is matches by code only.
	if errors.Is(ErrChecksumMismatch, ErrMessageTooLarge) || !errors.Is(tooLarge(5, 4), ErrMessageTooLarge) {
		t.Errorf("Is by code broken")
	}
}

// The hot prefix path must not allocate.
func TestFramePathAllocs(t *testing.T) {
	header := []byte(v6Header)
	data := []byte(v6Body)
	big := bytes.Repeat([]byte("x"), 4000)
	buf := make([]byte, 0, 8192)
	frame := mustFrame(t, header, data)
	bigFrame := mustFrame(t, header, big)
	tests := []struct {
		name string
		fn   func()
	}{
		{"AppendFrame", func() { buf, _ = AppendFrame(buf[:0], header, data, DefaultMaxMessageSize) }},
		{"AppendFrame big", func() { buf, _ = AppendFrame(buf[:0], header, big, DefaultMaxMessageSize) }},
		{"Checksum", func() { _ = Checksum(header, data) }},
		{"Checksum big", func() { _ = Checksum(header, big) }},
		{"SplitFrame", func() { _, _, _ = SplitFrame(frame, DefaultMaxMessageSize) }},
		{"DecodeFrame", func() { _, _ = DecodeFrame(bigFrame, DefaultMaxMessageSize) }},
		{"SplitFrame need more", func() { _, _, _ = SplitFrame(frame[:30], DefaultMaxMessageSize) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tt.name, n)
		}
	}
}
