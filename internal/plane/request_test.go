package plane

import (
	"errors"
	"strings"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
)

const testID = "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d"

func testInfo() codec.CallHomeInfo {
	return codec.CallHomeInfo{Address: "10.0.0.5:41235", Subject: "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5", Context: testID, StreamType: "response"}
}

func TestEncodeRequestIsSpecV6(t *testing.T) {
	frame, err := EncodeRequest(nil, testID, testInfo(), []byte(`{"text":"hello world"}`), codec.DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) != 367 || codec.Checksum(frame[24:24+321], frame[24+321:]) != 0x1FB8BA1D9A36F51A {
		t.Fatalf("frame of %d bytes does not match spec V6", len(frame))
	}
	req, err := Decode(frame, codec.DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if req.Control.ID != testID || req.CallHome != testInfo() || string(req.Body) != `{"text":"hello world"}` {
		t.Fatalf("decoded %+v", req)
	}
}

func TestDecodeRefusals(t *testing.T) {
	good, _ := EncodeRequest(nil, testID, testInfo(), []byte(`{}`), 0)
	frame := func(header, data string) []byte {
		b, err := codec.AppendFrame(nil, []byte(header), []byte(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	badSum := append([]byte(nil), good...)
	badSum[23] ^= 1
	wrongCtx := codec.AppendRequestControl(nil, testID, codec.CallHomeInfo{Address: "127.0.0.1:1", Subject: "s", Context: "other", StreamType: "response"})
	for _, tc := range []struct {
		name    string
		payload []byte
		max     int
		code    Code
		text    string // prefix of the answer
	}{
		{"empty", nil, 0, CodeBadRequest, "Two Part Codec Error: Invalid message: No message decoded"},
		{"truncated", good[:len(good)-1], 0, CodeBadRequest, "Two Part Codec Error: Invalid message: No message decoded"},
		{"trailing", append(append([]byte(nil), good...), 0), 0, CodeBadRequest, "Two Part Codec Error: Invalid message: 1 trailing bytes"},
		{"checksum", badSum, 0, CodeBadRequest, "Two Part Codec Error: Checksum mismatch"},
		{"too large", good, 100, CodeTooLarge, "Two Part Codec Error: Message size"},
		{"header only", frame(`"x"`, ""), 0, CodeBadRequest, TextNotHeaderAndData},
		{"data only", frame("", "{}"), 0, CodeBadRequest, TextNotHeaderAndData},
		{"header not json", frame("nope", "{}"), 0, CodeBadRequest, "Two Part Codec Error: Invalid message: control header: "},
		{"wrong context", frame(string(wrongCtx), "{}"), 0, CodeBadRequest, "Two Part Codec Error: Invalid message: control header: Invalid context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.payload, tc.max)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tc.code || !strings.HasPrefix(pe.Text, tc.text) {
				t.Fatalf("Decode = %v, want code %v and text %q…", err, tc.code, tc.text)
			}
		})
	}
}

// A request for something the worker does not speak is acknowledged and answered later with an
// error prologue (spec §3), not refused.
func TestDecodeUnsupported(t *testing.T) {
	hdr := `{"id":"` + testID + `","request_type":"single_in","response_type":"many_out","connection_info":{"transport":"tcp_server","info":"{\"address\":\"127.0.0.1:1\",\"subject\":\"s\",\"context\":\"` + testID + `\",\"stream_type\":\"response\"}"},"payload_codec":"msgpack"}`
	payload, err := codec.AppendFrame(nil, []byte(hdr), []byte{0x80}, 0)
	if err != nil {
		t.Fatal(err)
	}
	req, err := Decode(payload, 0)
	if err != nil {
		t.Fatalf("Decode refused an unsupported request: %v", err)
	}
	if !errors.Is(req.Unsupported, codec.ErrUnsupported) || req.CallHome.Address != "127.0.0.1:1" {
		t.Fatalf("request %+v", req)
	}
}

// recycler is a Handler that hands out the request memory it was given.
type recycler struct {
	HandlerFunc
	next *Request
}

func (r *recycler) NewRequest() *Request { return r.next }

// TestDecodeFor checks that a Recycler's request memory is decoded into, and that other
// handlers get a fresh request with the same contents.
func TestDecodeFor(t *testing.T) {
	frame, err := EncodeRequest(nil, testID, testInfo(), []byte(`{"text":"hello"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Decode(frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	mem := &Request{}
	for _, tc := range []struct {
		name string
		h    Handler
		mem  *Request // the request DecodeFor must return; nil: any fresh one
	}{
		{"recycler", &recycler{next: mem}, mem},
		{"plain handler", HandlerFunc(func(*Request) error { return nil }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeFor(tc.h, frame, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mem != nil && got != tc.mem || tc.mem == nil && (got == mem || got == want) {
				t.Fatalf("DecodeFor returned %p; recycled memory is %p", got, mem)
			}
			if got.Control != want.Control || got.CallHome != want.CallHome || string(got.Body) != string(want.Body) {
				t.Fatalf("DecodeFor = %+v, want %+v", got, want)
			}
		})
	}
}
