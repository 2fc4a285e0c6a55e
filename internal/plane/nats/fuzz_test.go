package nats

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// fuzzMax is the endpoint's frame limit in FuzzHandleMsg, small so that inputs reach it.
const fuzzMax = 4096

// fuzzRefusal is the handler's own refusal in mode 3.
var fuzzRefusal = errors.New("Generate Error: refused by the fuzz handler")

// FuzzHandleMsg feeds arbitrary payloads and trace headers to an endpoint's message handler,
// whose Handler accepts (mode 0) or refuses as overloaded, draining or with its own error. Every
// message must get exactly one reply: the empty ack when, and only when, the frame is a valid
// request and the handler accepted it; otherwise the refusal text with its headers.
func FuzzHandleMsg(f *testing.F) {
	valid, err := plane.EncodeRequest(nil, "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d", codec.CallHomeInfo{
		Address: "10.0.0.5:41235", Subject: "0b7e4c1a-2f3d-4e5f-8a9b-c0d1e2f3a4b5",
		Context: "3f0c9a52-8d1e-4b7a-9c21-5e6f7a8b9c0d", StreamType: codec.StreamTypeResponse,
	}, []byte(`{"text":"hello world"}`), 0)
	if err != nil {
		f.Fatal(err)
	}
	headerOnly, _ := codec.AppendFrame(nil, []byte(`"sentinel"`), nil, 0)
	badControl, _ := codec.AppendFrame(nil, []byte(`{"id":"x"}`), []byte(`{}`), 0)
	badChecksum := bytes.Clone(valid)
	badChecksum[23] ^= 1
	big, _ := codec.AppendFrame(nil, []byte(`{}`), make([]byte, fuzzMax), 0)
	for mode := range uint8(4) {
		f.Add(valid, mode, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	}
	f.Add([]byte{}, uint8(0), "")
	f.Add([]byte("hello"), uint8(0), "")
	f.Add(headerOnly, uint8(0), "")
	f.Add(badControl, uint8(0), "")
	f.Add(badChecksum, uint8(0), "")
	f.Add(big, uint8(0), "")
	f.Add(append(bytes.Clone(valid), 0), uint8(0), "")

	f.Fuzz(func(t *testing.T, payload []byte, mode uint8, traceparent string) {
		var admitted []*plane.Request
		h := plane.HandlerFunc(func(req *plane.Request) error {
			switch mode % 4 {
			case 1:
				return plane.ErrOverloaded
			case 2:
				return plane.ErrDraining
			case 3:
				return fuzzRefusal
			}
			admitted = append(admitted, req)
			return nil
		})
		var replies []*natsgo.Msg
		e := &endpoint{
			ep:      testEndpoint,
			subject: "dynamo_backend.generate-694d98147d54be25",
			h:       h,
			max:     fuzzMax,
			log:     discardLogger,
			respond: func(_, resp *natsgo.Msg) error {
				if resp == nil {
					resp = &natsgo.Msg{} // the ack
				}
				replies = append(replies, resp)
				return nil
			},
		}
		msg := &natsgo.Msg{Subject: e.subject, Reply: "_INBOX.fuzz", Data: slices.Clone(payload), Header: natsgo.Header{}}
		if traceparent != "" {
			msg.Header.Set(plane.HeaderTraceParent, traceparent)
		}
		e.handle(msg)

		if len(replies) != 1 {
			t.Fatalf("%d replies, want 1", len(replies))
		}
		reply := replies[0]
		want, decodeErr := plane.Decode(payload, fuzzMax)
		if len(reply.Data) == 0 {
			// The ack.
			if decodeErr != nil || mode%4 != 0 || len(admitted) != 1 {
				t.Fatalf("acked: decode error %v, mode %d, %d admitted", decodeErr, mode%4, len(admitted))
			}
			if len(reply.Header) != 0 {
				t.Fatalf("ack with headers %v", reply.Header)
			}
			req := admitted[0]
			if !bytes.Equal(req.Body, want.Body) || req.Control != want.Control || req.CallHome != want.CallHome {
				t.Fatalf("admitted %+v, want %+v", req, want)
			}
			if req.Meta.TraceParent != traceparent || req.Plane != plane.NameNATS || req.Endpoint != testEndpoint {
				t.Fatalf("admitted meta %+v plane %q endpoint %v", req.Meta, req.Plane, req.Endpoint)
			}
			if req.Control.ID != req.CallHome.Context || len(req.Body) == 0 {
				t.Fatalf("admitted an invalid request: %+v", req)
			}
			return
		}
		// A refusal.
		if len(admitted) != 0 {
			t.Fatalf("refused after admitting")
		}
		text := string(reply.Data)
		if got := reply.Header.Get(HeaderServiceError); got != headerValue(text) {
			t.Fatalf("%s = %q for text %q", HeaderServiceError, got, text)
		}
		status := reply.Header.Get(HeaderServiceErrorCode)
		var wantText, wantStatus string
		switch {
		case decodeErr != nil:
			code, txt := plane.Refusal(decodeErr)
			wantText, wantStatus = txt, map[plane.Code]string{plane.CodeTooLarge: "413"}[code]
			if wantStatus == "" {
				wantStatus = "400"
			}
		case mode%4 == 1:
			wantText, wantStatus = plane.TextOverloaded, "503"
		case mode%4 == 2:
			wantText, wantStatus = plane.TextDraining, "503"
		case mode%4 == 3:
			wantText, wantStatus = fuzzRefusal.Error(), "400"
		default:
			t.Fatalf("refused a valid request in accept mode: %q", text)
		}
		if text != wantText || status != wantStatus {
			t.Fatalf("refusal %s %q, want %s %q", status, text, wantStatus, wantText)
		}
	})
}
