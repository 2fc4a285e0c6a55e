package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

var (
	muxStreamID = mustUUID("0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5")
	muxServerID = mustUUID("9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d")
	muxConnID   = mustUUID("c0ffee00-1234-4abc-9def-001122334455")
)

func mustUUID(s string) UUID {
	u, err := ParseUUID(s)
	if err != nil {
		panic(err)
	}
	return u
}

func unhexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUUID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = invalid
	}{
		{"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5", "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"},
		{"0B7E4C1A-2F3D-4E5F-8A9B-C0D1E2F3A4B5", "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
		{"0b7e4c1a2f3d4e5f8a9bc0d1e2f3a4b5", ""},
		{"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b", ""},
		{"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4bg", ""},
		{"0b7e4c1a+2f3d-4e5f-8a9b-c0d1e2f3a4b5", ""},
		{"", ""},
	} {
		u, err := ParseUUID(tc.in)
		switch {
		case tc.want == "" && (err == nil || !errors.Is(err, ErrMalformed)):
			t.Errorf("ParseUUID(%q) = %v, %v; want ErrMalformed", tc.in, u, err)
		case tc.want != "" && (err != nil || u.String() != tc.want):
			t.Errorf("ParseUUID(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
	if !NilUUID.IsNil() || muxStreamID.IsNil() {
		t.Error("IsNil")
	}
}

func TestMuxFrameBytes(t *testing.T) {
	id := "0b7e4c1a2f3d4e5f8a9bc0d1e2f3a4b5"
	for _, tc := range []struct {
		name    string
		kind    MuxKind
		id      UUID
		payload []byte
		want    string
	}{
		{"prologue", MuxPrologue, muxStreamID, []byte(`{"error":null}`), "0000000e 01 00 0000" + id + hex.EncodeToString([]byte(`{"error":null}`))},
		{"data", MuxData, muxStreamID, []byte(`{"data":1}`), "0000000a 02 00 0000" + id + hex.EncodeToString([]byte(`{"data":1}`))},
		{"end", MuxEnd, muxStreamID, nil, "00000000 03 00 0000" + id},
		{"stop", MuxStop, muxStreamID, nil, "00000000 04 00 0000" + id},
		{"kill", MuxKill, muxStreamID, nil, "00000000 05 00 0000" + id},
		{"window update", MuxWindowUpdate, muxStreamID, []byte{0, 1, 0, 0}, "00000004 06 00 0000" + id + "00010000"},
		{"reset", MuxReset, muxStreamID, []byte("x"), "00000001 07 00 0000" + id + "78"},
		{"connection ack", MuxConnectionAck, NilUUID, []byte{0, 0, 0, 0, 0, 1, 0, 0}, "00000008 08 00 0000" + strings.Repeat("00", 16) + "0000000000010000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhexBytes(t, tc.want)
			got, err := AppendMuxFrame([]byte("x"), tc.kind, tc.id, tc.payload, MuxFromAny, 0)
			if err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("AppendMuxFrame = %x, %v; want %x", got, err, want)
			}
			f, err := DecodeMuxFrame(want, MuxFromAny, len(want))
			if err != nil || f.Kind != tc.kind || f.Stream != tc.id || !bytes.Equal(f.Payload, tc.payload) {
				t.Fatalf("DecodeMuxFrame = %+v, %v", f, err)
			}
		})
	}
	if got := AppendMuxWindowUpdate(nil, muxStreamID, 65536); !bytes.Equal(got, unhexBytes(t, "00000004 06 00 0000"+id+"00010000")) {
		t.Errorf("AppendMuxWindowUpdate = %x", got)
	}
	f, _ := DecodeMuxFrame(AppendMuxWindowUpdate(nil, muxStreamID, 65536), MuxFromRequester, 0)
	if f.Credits() != 65536 || f.AckedBytes() != 0 {
		t.Errorf("Credits = %d, AckedBytes = %d", f.Credits(), f.AckedBytes())
	}
	f, _ = DecodeMuxFrame(AppendMuxConnectionAck(nil, 1<<40), MuxFromRequester, 0)
	if f.AckedBytes() != 1<<40 || f.Credits() != 0 {
		t.Errorf("AckedBytes = %d", f.AckedBytes())
	}
}

func TestMuxFrameErrors(t *testing.T) {
	frame := func(plen uint32, kind, flags byte, reserved uint16, id UUID, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, plen)
		b = append(b, kind, flags)
		b = binary.BigEndian.AppendUint16(b, reserved)
		b = append(b, id[:]...)
		return append(b, payload...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		from MuxSide
		max  int
		text string
		is   error
	}{
		{"flags", frame(0, 3, 1, 0, muxStreamID, nil), MuxFromAny, 0, "Mux Codec Error: Invalid message: non-zero flags 1 in mux End frame", ErrInvalidMessage},
		{"reserved", frame(0, 3, 0, 7, muxStreamID, nil), MuxFromAny, 0, "Mux Codec Error: Invalid message: non-zero reserved field 7 in mux End frame", ErrInvalidMessage},
		{"kind 0", frame(0, 0, 0, 0, muxStreamID, nil), MuxFromAny, 0, "Mux Codec Error: Invalid message: unknown mux frame kind 0", ErrInvalidMessage},
		{"kind 9", frame(0, 9, 0, 0, muxStreamID, nil), MuxFromAny, 0, "Mux Codec Error: Invalid message: unknown mux frame kind 9", ErrInvalidMessage},
		{"window update size", frame(3, 6, 0, 0, muxStreamID, []byte{0, 0, 1}), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux WindowUpdate frame with a 3-byte payload (want 4)", ErrInvalidMessage},
		{"ack size", frame(4, 8, 0, 0, NilUUID, []byte{0, 0, 0, 1}), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux ConnectionAck frame with a 4-byte payload (want 8)", ErrInvalidMessage},
		{"ack with id", frame(8, 8, 0, 0, muxStreamID, make([]byte, 8)), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux ConnectionAck frame with a stream id", ErrInvalidMessage},
		{"data nil id", frame(1, 2, 0, 0, NilUUID, []byte("1")), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux Data frame with the nil stream id", ErrInvalidMessage},
		{"stop payload", frame(1, 4, 0, 0, muxStreamID, []byte("x")), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux Stop frame with a 1-byte payload (want 0)", ErrInvalidMessage},
		{"kill payload", frame(2, 5, 0, 0, muxStreamID, []byte("xy")), MuxFromAny, 0, "Mux Codec Error: Invalid message: mux Kill frame with a 2-byte payload (want 0)", ErrInvalidMessage},
		{"data from requester", frame(1, 2, 0, 0, muxStreamID, []byte("1")), MuxFromRequester, 0, "Mux Codec Error: Invalid message: mux Data frame sent by the requester", ErrInvalidMessage},
		{"stop from worker", frame(0, 4, 0, 0, muxStreamID, nil), MuxFromWorker, 0, "Mux Codec Error: Invalid message: mux Stop frame sent by the worker", ErrInvalidMessage},
		{"too large", frame(17, 2, 0, 0, muxStreamID, nil), MuxFromAny, 40, "Mux Codec Error: Message size 41 exceeds the maximum allowed size of 40 bytes", ErrMessageTooLarge},
		{"too large max u32", frame(0xffffffff, 2, 0, 0, muxStreamID, nil), MuxFromAny, 1 << 20, "Mux Codec Error: Message size 4294967319 exceeds the maximum allowed size of 1048576 bytes", ErrMessageTooLarge},
		{"need more", frame(5, 2, 0, 0, muxStreamID, nil), MuxFromAny, 0, "Mux Codec Error: Invalid message: No message decoded", ErrInvalidMessage},
		{"trailing", frame(1, 2, 0, 0, muxStreamID, []byte("12")), MuxFromAny, 0, "Mux Codec Error: Invalid message: 1 trailing bytes", ErrInvalidMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMuxFrame(tc.b, tc.from, tc.max)
			if err == nil || err.Error() != tc.text || !errors.Is(err, tc.is) || !errors.Is(err, ErrMuxFrame) {
				t.Fatalf("DecodeMuxFrame = %v; want %q (%v)", err, tc.text, tc.is)
			}
			// Header errors are found from the 24-byte header alone, before the payload.
			if tc.name != "need more" && tc.name != "trailing" {
				if _, n, err := SplitMuxFrame(tc.b[:MuxHeaderLen], tc.from, tc.max); err == nil || n != 0 {
					t.Fatalf("SplitMuxFrame(header) = %d, %v; want the error at once", n, err)
				}
			}
		})
	}
	// Encoding applies the same rules.
	for _, tc := range []struct {
		kind    MuxKind
		id      UUID
		payload []byte
		from    MuxSide
	}{
		{MuxStop, muxStreamID, []byte("x"), MuxFromRequester},
		{MuxData, NilUUID, []byte("1"), MuxFromWorker},
		{MuxData, muxStreamID, []byte("1"), MuxFromRequester},
		{MuxConnectionAck, muxStreamID, make([]byte, 8), MuxFromRequester},
		{MuxKind(0), muxStreamID, nil, MuxFromAny},
	} {
		if b, err := AppendMuxFrame(nil, tc.kind, tc.id, tc.payload, tc.from, 0); err == nil || len(b) != 0 {
			t.Errorf("AppendMuxFrame(%v, %v, %q, %v) = %x, %v; want an error", tc.kind, tc.id, tc.payload, tc.from, b, err)
		}
	}
	if _, err := AppendMuxFrame(nil, MuxData, muxStreamID, make([]byte, 17), MuxFromWorker, 40); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("AppendMuxFrame over the limit = %v", err)
	}
}

func TestMuxKindDirection(t *testing.T) {
	for k := MuxPrologue; k <= MuxConnectionAck; k++ {
		worker := k == MuxPrologue || k == MuxData || k == MuxEnd || k == MuxReset
		requester := k >= MuxStop
		if k.SentBy(MuxFromWorker) != worker || k.SentBy(MuxFromRequester) != requester || !k.SentBy(MuxFromAny) {
			t.Errorf("%v: SentBy worker %v, requester %v", k, k.SentBy(MuxFromWorker), k.SentBy(MuxFromRequester))
		}
	}
	if MuxKind(9).SentBy(MuxFromAny) || MuxKind(9).String() != "MuxKind(9)" || MuxWindowUpdate.String() != "WindowUpdate" {
		t.Error("unknown kind")
	}
}

func muxStreamBytes(t testing.TB) []byte {
	var b []byte
	for _, f := range []struct {
		kind    MuxKind
		payload string
	}{{MuxPrologue, `{"error":null}`}, {MuxData, `{"data":{"text":"hello","index":0}}`}, {MuxData, `{"data":{"text":"world","index":1}}`}, {MuxEnd, ""}} {
		var err error
		if b, err = AppendMuxFrame(b, f.kind, muxStreamID, []byte(f.payload), MuxFromWorker, 0); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestMuxReader(t *testing.T) {
	all := muxStreamBytes(t)
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(all) }},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(all)) }},
		{"handed over", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mr *MuxReader
			if tc.r == nil {
				mr = NewMuxReader(bytes.NewReader(all[30:]), MuxFromWorker, 0, all[:30])
			} else {
				mr = NewMuxReader(tc.r(), MuxFromWorker, 0, nil)
			}
			var kinds []MuxKind
			for {
				f, err := mr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, f.Kind)
			}
			if want := []MuxKind{MuxPrologue, MuxData, MuxData, MuxEnd}; !slices.Equal(kinds, want) {
				t.Fatalf("kinds %v, want %v", kinds, want)
			}
		})
	}
	// A stream cut inside a frame.
	mr := NewMuxReader(bytes.NewReader(all[:len(all)-30]), MuxFromWorker, 0, nil)
	var err error
	for err == nil {
		_, err = mr.Next()
	}
	if !errors.Is(err, ErrIO) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	// An oversized declaration is refused before its payload is read or allocated.
	huge := AppendMuxHeader(nil, MuxData, muxStreamID, 1<<30)
	r := &countingReader{r: io.MultiReader(bytes.NewReader(huge), strings.NewReader(strings.Repeat("x", 1<<20)))}
	mr = NewMuxReader(r, MuxFromWorker, 1<<20, nil)
	if _, err := mr.Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := mr.Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("the error is not sticky: %v", err)
	}
	if r.n > minBufSize {
		t.Fatalf("read %d bytes of an oversized frame", r.n)
	}
	// A frame from the wrong side.
	mr = NewMuxReader(bytes.NewReader(all), MuxFromRequester, 0, nil)
	if _, err := mr.Next(); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("direction: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

const (
	muxHandshakeJSON = `{"kind":"response_mux","version":1,"frontend_server_id":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d","connection_id":"c0ffee00-1234-4abc-9def-001122334455"}`
	muxInfoJSON      = `{"address":"10.0.0.5:41235","frontend_server_id":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d","stream_id":"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5","context":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","version":1}`
	muxHeaderJSON    = `{"id":"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_response_mux_v1","info":"{\"address\":\"10.0.0.5:41235\",\"frontend_server_id\":\"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d\",\"stream_id\":\"0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5\",\"context\":\"3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d\",\"version\":1}"}}`
)

func muxInfo() MuxCallHomeInfo {
	return MuxCallHomeInfo{Address: "10.0.0.5:41235", FrontendServerID: muxServerID, StreamID: muxStreamID, Context: v6ID, Version: 1}
}

func TestMuxHandshake(t *testing.T) {
	h := MuxHandshake{FrontendServerID: muxServerID, ConnectionID: muxConnID}
	if got := string(AppendMuxHandshake(nil, h)); got != muxHandshakeJSON {
		t.Fatalf("AppendMuxHandshake =\n%s\nwant\n%s", got, muxHandshakeJSON)
	}
	got, err := ParseMuxHandshake([]byte(muxHandshakeJSON))
	if h.Version = 1; err != nil || got != h {
		t.Fatalf("ParseMuxHandshake = %+v, %v", got, err)
	}
	if !IsMuxHandshake([]byte(muxHandshakeJSON)) || IsMuxHandshake([]byte(`{"subject":"`+v5Subject+`","stream_type":"response"}`)) ||
		IsMuxHandshake([]byte(`{"subject":"response_mux","stream_type":"response"}`)) || IsMuxHandshake([]byte(`response_mux`)) {
		t.Fatal("IsMuxHandshake")
	}
	for _, tc := range []struct{ in, text string }{
		{`{"kind":"response_mux","version":1,"frontend_server_id":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"}`, "missing field `connection_id`"},
		{`{"version":1,"frontend_server_id":"a","connection_id":"b"}`, "missing field `kind`"},
		{`{"kind":"other","version":1,"frontend_server_id":"a","connection_id":"b"}`, `unknown kind "other"`},
		{`{"kind":"response_mux","version":2,"frontend_server_id":"a","connection_id":"b"}`, "unsupported response mux version 2"},
		{`{"kind":"response_mux","version":1,"frontend_server_id":"a","connection_id":"b"}`, `frontend_server_id: invalid UUID "a"`},
		{`[]`, "json: cannot unmarshal array into Go value of type codec.wireMuxHandshake"},
	} {
		if _, err := ParseMuxHandshake([]byte(tc.in)); err == nil || err.Error() != tc.text || !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMuxHandshake(%s) = %v; want %q", tc.in, err, tc.text)
		}
	}

	// The ack: a TwoPart frame, 20-byte header [8][0][0 0][nil UUID], data u64 0.
	ack := AppendMuxHandshakeAck(nil)
	f, err := DecodeFrame(ack, 0)
	if err != nil || len(ack) != PrefixLen+28 || !bytes.Equal(ack[:16], unhexBytes(t, "0000000000000014 0000000000000008")) {
		t.Fatalf("ack %x: %v", ack, err)
	}
	if !bytes.Equal(f.Header, append([]byte{8, 0, 0, 0}, make([]byte, 16)...)) || !bytes.Equal(f.Data, make([]byte, 8)) {
		t.Fatalf("ack frame %+v", f)
	}
	if err := CheckMuxHandshakeAck(f); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Frame{
		{Header: f.Header[:19], Data: f.Data},
		{Header: append([]byte{7}, f.Header[1:]...), Data: f.Data},
		{Header: f.Header, Data: []byte{0, 0, 0, 0, 0, 0, 0, 1}},
		{Header: append(append([]byte{8, 0, 0, 0}, make([]byte, 15)...), 1), Data: f.Data},
	} {
		if err := CheckMuxHandshakeAck(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("CheckMuxHandshakeAck(%x, %x) = %v", bad.Header, bad.Data, err)
		}
	}
}

func TestMuxRequestControl(t *testing.T) {
	if got := string(AppendMuxCallHomeInfo(nil, muxInfo())); got != muxInfoJSON {
		t.Fatalf("AppendMuxCallHomeInfo =\n%s\nwant\n%s", got, muxInfoJSON)
	}
	info := muxInfo()
	info.Context, info.Version = "", 0 // defaults: the id and version 1
	if got := string(AppendMuxRequestControl(nil, v6ID, info)); got != muxHeaderJSON {
		t.Fatalf("AppendMuxRequestControl =\n%s\nwant\n%s", got, muxHeaderJSON)
	}
	rc, err := ParseRequestControl([]byte(muxHeaderJSON))
	if err != nil || rc.Transport != TransportTCPResponseMuxV1 || rc.Info != muxInfoJSON {
		t.Fatalf("ParseRequestControl = %+v, %v", rc, err)
	}
	got, err := rc.ValidateMux()
	if err != nil || got != muxInfo() {
		t.Fatalf("ValidateMux = %+v, %v", got, err)
	}
	// Request planes admit it through Validate, with the info projected.
	ch, err := rc.Validate()
	want := CallHomeInfo{Address: "10.0.0.5:41235", Subject: muxStreamID.String(), Context: v6ID, StreamType: StreamTypeResponse}
	if err != nil || ch != want {
		t.Fatalf("Validate = %+v, %v", ch, err)
	}
	// Escaping is serde's, doubled inside the info string.
	odd := muxInfo()
	odd.Address = `1.2.3.4:5"<>&`
	odd.Context = "a\nb"
	h := AppendMuxRequestControl(nil, "a\nb", odd)
	rc, err = ParseRequestControl(h)
	if err != nil {
		t.Fatal(err)
	}
	if mi, err := rc.MuxCallHome(); err != nil || mi != odd {
		t.Fatalf("round trip of %s: %+v, %v", h, mi, err)
	}
}

func TestValidateMux(t *testing.T) {
	base := func() RequestControl {
		rc, err := ParseRequestControl([]byte(muxHeaderJSON))
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	withInfo := func(info string) RequestControl { r := base(); r.Info = info; return r }
	for _, tc := range []struct {
		name string
		rc   RequestControl
		kind error
		text string
	}{
		{"transport", func() RequestControl { r := base(); r.Transport = "tcp_server"; return r }(), ErrInvalidControl,
			"Invalid transport; the response mux requires the transport to be `tcp_response_mux_v1`; however tcp_server was passed"},
		{"info not JSON", withInfo(`{`), ErrInvalidControl, "Failed parse ConnectionInfo: unexpected end of JSON input"},
		{"missing version", withInfo(strings.Replace(muxInfoJSON, `,"version":1`, "", 1)), ErrInvalidControl, "Failed parse ConnectionInfo: missing field `version`"},
		{"bad stream id", withInfo(strings.Replace(muxInfoJSON, "0b7e4c1a-", "zz7e4c1a-", 1)), ErrInvalidControl,
			`Failed parse ConnectionInfo: stream_id: invalid UUID "zz7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5"`},
		{"version", withInfo(strings.Replace(muxInfoJSON, `"version":1`, `"version":2`, 1)), ErrInvalidControl,
			"Invalid version; the response mux requires version 1; however 2 was passed"},
		{"context", withInfo(strings.Replace(muxInfoJSON, `"context":"3f`, `"context":"4f`, 1)), ErrInvalidControl,
			`Invalid context; the response mux requires the context to be "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"; however "4f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d" was passed`},
		{"nil stream id", withInfo(strings.Replace(muxInfoJSON, "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5", NilUUID.String(), 1)), ErrInvalidControl,
			"Invalid stream id; the response mux requires non-nil frontend_server_id and stream_id"},
		{"address", withInfo(strings.Replace(muxInfoJSON, "10.0.0.5:41235", "10.0.0.5", 1)), ErrInvalidControl, ""},
		{"many_in", func() RequestControl { r := base(); r.RequestType = "many_in"; return r }(), ErrUnsupported,
			"Unsupported request type; reqplane serves `single_in` requests; however \"many_in\" was passed"},
		{"msgpack", func() RequestControl { r := base(); r.PayloadCodec = "msgpack"; return r }(), ErrUnsupported,
			"Unsupported payload codec; reqplane serves `json` payloads; however \"msgpack\" was passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := tc.rc.ValidateMux()
			var ce *ControlError
			if !errors.Is(err, tc.kind) || !errors.Is(err, ErrInvalidMessage) || !errors.As(err, &ce) {
				t.Fatalf("ValidateMux = %v; want %v", err, tc.kind)
			}
			if tc.text != "" && ce.Detail != tc.text {
				t.Fatalf("detail %q\nwant   %q", ce.Detail, tc.text)
			}
			if (tc.kind == ErrUnsupported) != (info == muxInfo()) {
				t.Fatalf("info %+v", info)
			}
			if tc.name == "transport" {
				return
			}
			// Validate refuses the same way (the planes' pre-ack check).
			if _, verr := tc.rc.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate = %v, ValidateMux = %v", verr, err)
			}
		})
	}
}
