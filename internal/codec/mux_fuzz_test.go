package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// Fuzz targets of the response mux decoders; seed corpora in testdata/fuzz/<Target>/.

func muxFrameSeeds(t testing.TB) [][]byte {
	all := muxStreamBytes(t)
	return [][]byte{
		all[:38], // the prologue
		AppendMuxWindowUpdate(nil, muxStreamID, 65536),
		AppendMuxConnectionAck(nil, 1<<20),
		AppendMuxHeader(nil, MuxStop, muxStreamID, 0),
		AppendMuxHeader(nil, MuxData, muxStreamID, 1<<30),
		append(AppendMuxHeader(nil, MuxReset, muxStreamID, 3), "bye"...),
	}
}

func FuzzDecodeMuxFrame(f *testing.F) {
	for _, s := range muxFrameSeeds(f) {
		f.Add(s, 0, 0)
		f.Add(s, 1, 40)
		f.Add(s, 2, 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, from, max int) {
		side := MuxSide(uint(from) % 3)
		fr, n, serr := SplitMuxFrame(b, side, max)
		dfr, derr := DecodeMuxFrame(b, side, max)
		switch {
		case serr != nil:
			var me *MuxError
			if !errors.As(serr, &me) || (me.Code != CodeMessageTooLarge && me.Code != CodeInvalidMessage) {
				t.Fatalf("SplitMuxFrame: unexpected error %#v", serr)
			}
			if derr == nil || derr.Error() != serr.Error() {
				t.Fatalf("DecodeMuxFrame %v, SplitMuxFrame %v", derr, serr)
			}
			return
		case n == 0:
			if !errors.Is(derr, ErrInvalidMessage) {
				t.Fatalf("need more, but DecodeMuxFrame: %v", derr)
			}
			return
		case n < len(b):
			if !errors.Is(derr, ErrInvalidMessage) {
				t.Fatalf("trailing bytes, but DecodeMuxFrame: %v", derr)
			}
		case derr != nil || dfr.Kind != fr.Kind || !bytes.Equal(dfr.Payload, fr.Payload):
			t.Fatalf("DecodeMuxFrame %+v, %v; SplitMuxFrame %+v", dfr, derr, fr)
		}
		// What decodes re-encodes to the same bytes.
		re, err := AppendMuxFrame(nil, fr.Kind, fr.Stream, fr.Payload, side, max)
		if err != nil || !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding %+v: %x, %v; want %x", fr, re, err, b[:n])
		}
	})
}

func FuzzMuxReader(f *testing.F) {
	f.Add(muxStreamBytes(f), 0)
	f.Add(muxStreamBytes(f)[:70], 64)
	for _, s := range muxFrameSeeds(f) {
		f.Add(s, 1<<10)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		read := func(r io.Reader) ([]MuxFrame, error) {
			mr := NewMuxReader(r, MuxFromAny, max, nil)
			var fs []MuxFrame
			for {
				fr, err := mr.Next()
				if err != nil {
					return fs, err
				}
				fr.Payload = bytes.Clone(fr.Payload)
				fs = append(fs, fr)
			}
		}
		whole, werr := read(bytes.NewReader(b))
		bytewise, berr := read(iotest.OneByteReader(bytes.NewReader(b)))
		if (werr == nil) != (berr == nil) || (werr != nil && werr.Error() != berr.Error()) || len(whole) != len(bytewise) {
			t.Fatalf("whole: %d frames, %v; byte by byte: %d frames, %v", len(whole), werr, len(bytewise), berr)
		}
		for i := range whole {
			if whole[i].Kind != bytewise[i].Kind || whole[i].Stream != bytewise[i].Stream || !bytes.Equal(whole[i].Payload, bytewise[i].Payload) {
				t.Fatalf("frame %d differs", i)
			}
		}
		if werr != io.EOF && !errors.Is(werr, ErrMuxFrame) {
			t.Fatalf("error type %#v", werr)
		}
	})
}

func FuzzParseMuxHandshake(f *testing.F) {
	f.Add([]byte(muxHandshakeJSON))
	f.Add([]byte(`{"kind":"response_mux","version":1}`))
	f.Add([]byte(`{"subject":"s","stream_type":"response"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMuxHandshake(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error type %#v", err)
			}
			return
		}
		if !IsMuxHandshake(b) {
			t.Fatalf("ParseMuxHandshake accepts %q, IsMuxHandshake does not", b)
		}
		again, err := ParseMuxHandshake(AppendMuxHandshake(nil, h))
		if err != nil || again != h {
			t.Fatalf("round trip of %+v: %+v, %v", h, again, err)
		}
	})
}

func FuzzParseMuxCallHome(f *testing.F) {
	f.Add(muxInfoJSON)
	f.Add(`{"address":"[::1]:1","frontend_server_id":"00000000-0000-0000-0000-000000000000","stream_id":"x","context":"","version":7}`)
	for _, s := range fastPathSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := RequestControl{Transport: TransportTCPResponseMuxV1, Info: s}.MuxCallHome()
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error type %#v", err)
			}
			return
		}
		if !utf8.ValidString(info.Address) || !utf8.ValidString(info.Context) {
			return // written as U+FFFD per invalid byte, as serde would: not a round trip
		}
		if info.Version == 0 {
			info.Version = MuxVersion // written as the default
		}
		h := AppendMuxRequestControl(nil, info.Context, info)
		rc, err := ParseRequestControl(h)
		if err != nil {
			t.Fatalf("ParseRequestControl(%s): %v", h, err)
		}
		again, err := rc.MuxCallHome()
		if err != nil || again != info {
			t.Fatalf("round trip of %+v: %+v, %v", info, again, err)
		}
	})
}
