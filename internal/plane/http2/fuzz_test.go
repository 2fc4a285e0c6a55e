package http2

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
)

// Content-Length modes of FuzzServeHTTP.
const (
	lengthExact   = iota // Content-Length = len(body)
	lengthUnknown        // no Content-Length (chunked, or HTTP/2 without the header)
	lengthLonger         // Content-Length = len(body)+delta: the body ends early
	lengthShorter        // Content-Length = len(body)-delta: net/http cuts the body there
	lengthModes
)

// FuzzServeHTTP posts arbitrary bodies, with a truthful, missing or lying Content-Length, to
// the Server's handler. It never panics, answers only 202, 400 or 413, allocates in proportion
// to the bytes that arrived (never what Content-Length or the frame prefix declares), and a
// well-formed request is still accepted afterwards.
func FuzzServeHTTP(f *testing.F) {
	const maxSize = codec.DefaultMaxMessageSize
	good := requestFrame(f, testID, testBody)
	badSum := bytes.Clone(good)
	badSum[23] ^= 1
	hugeBody := bytes.Clone(good)
	hugeBody[12] = 0x01 // body_len += 2^24: declared, never sent
	f.Add(good, uint8(lengthExact), uint32(0))
	f.Add(good, uint8(lengthUnknown), uint32(0))
	f.Add(good, uint8(lengthLonger), uint32(30<<20))
	f.Add(good, uint8(lengthShorter), uint32(1))
	f.Add(good[:40], uint8(lengthExact), uint32(0))
	f.Add(badSum, uint8(lengthExact), uint32(0))
	f.Add(hugeBody, uint8(lengthUnknown), uint32(0))
	f.Add(rawFrame(f, `"stop"`, ""), uint8(lengthExact), uint32(0))
	f.Add(append(bytes.Clone(good), 0, 0, 0), uint8(lengthUnknown), uint32(0))

	var accepted atomic.Int64
	rt := &router{root: DefaultRootPath, max: maxSize, log: slog.New(slog.DiscardHandler)}
	if err := rt.add(endpoint("generate"), plane.HandlerFunc(func(*plane.Request) error {
		accepted.Add(1)
		return nil
	})); err != nil {
		f.Fatal(err)
	}
	post := func(body io.Reader, cl int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/dynamo/generate", nil)
		req.Body = io.NopCloser(body)
		req.ContentLength = cl
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		return rec
	}

	f.Fuzz(func(t *testing.T, body []byte, mode uint8, delta uint32) {
		var r io.Reader = bytes.NewReader(body)
		cl := int64(len(body))
		switch mode % lengthModes {
		case lengthUnknown:
			cl = -1
		case lengthLonger:
			cl += int64(delta)
		case lengthShorter:
			cl = max(0, cl-int64(delta))
			r = io.LimitReader(r, cl)
		}
		received := len(body)
		if cl >= 0 {
			received = min(received, int(cl))
		}
		var rec *httptest.ResponseRecorder
		n := allocatedBy(func() { rec = post(r, cl) })
		switch rec.Code {
		case http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d %q", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusAccepted && rec.Body.Len() != 0 {
			t.Fatalf("202 with a body %q", rec.Body.String())
		}
		// Decoding the control header costs a few times its size; the slack covers the
		// recorder and the first buffer. Trusting a declared size would cost megabytes.
		if limit := uint64(8*received + 256<<10); n > limit {
			t.Fatalf("allocated %d bytes for a %d-byte body (Content-Length %d); limit %d", n, received, cl, limit)
		}

		before := accepted.Load()
		if rec := post(bytes.NewReader(good), int64(len(good))); rec.Code != http.StatusAccepted || accepted.Load() != before+1 {
			t.Fatalf("a well-formed request afterwards: %d %q", rec.Code, rec.Body.String())
		}
	})
}
