package echo

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/reqplane/reqplane"
)

// Bounds of the bench engine, so that one request cannot make a worker allocate or stream without
// limit.
const (
	MaxBenchItems    = 1_000_000
	MaxBenchItemSize = 1 << 20
)

// ErrBadBenchRequest is the bench engine's answer to a body that is not {"items":N,"size":S}
// within its bounds.
var ErrBadBenchRequest = errors.New(`request body must be a JSON object {"items":N,"size":S} with 0 <= N <= 1000000, 0 <= S <= 1048576 and an optional hold_ms up to 60000`)

// BenchRequest is the bench engine's request body. Unknown fields are ignored, so a requester can
// pad the body to the size it wants to measure.
type BenchRequest struct {
	Items int `json:"items"`
	Size  int `json:"size"`
	// HoldMS keeps the stream open that long after its first item, so that a benchmark can hold
	// many streams in flight at once.
	HoldMS int `json:"hold_ms,omitempty"`
}

// MaxBenchHold bounds hold_ms.
const MaxBenchHold = time.Minute

// ParseBenchRequest decodes and checks a bench request body. The bodies a benchmark sends,
// {"items":N,"size":S} with an optional hold_ms and padding members, are read by hand: with
// encoding/json the parse was most of this engine's cost, and the engine is meant to cost next
// to nothing (it serves the gRPC reference and the request planes alike). Anything else goes to
// encoding/json, with which the hand-written reader agrees (FuzzParseBenchRequest).
func ParseBenchRequest(body []byte) (BenchRequest, error) {
	r, ok := parseBenchFast(body)
	if !ok {
		slow := new(BenchRequest) // its own: &r would put r on the heap on the fast path too
		if err := json.Unmarshal(body, slow); err != nil {
			return BenchRequest{}, ErrBadBenchRequest
		}
		r = *slow
	}
	if r.Items < 0 || r.Items > MaxBenchItems || r.Size < 0 || r.Size > MaxBenchItemSize ||
		r.HoldMS < 0 || time.Duration(r.HoldMS)*time.Millisecond > MaxBenchHold {
		return BenchRequest{}, ErrBadBenchRequest
	}
	return r, nil
}

// parseBenchFast reads a compact object (no spaces) whose members are the three integers, in
// plain decimal, and any others with plain ASCII string values; ok is false for anything else,
// for encoding/json to decide. Keys that match a field only case-insensitively (encoding/json
// takes them) are left to encoding/json too; a repeated member keeps its last value, as there.
func parseBenchFast(b []byte) (r BenchRequest, ok bool) {
	if len(b) < 2 || b[0] != '{' {
		return BenchRequest{}, false
	}
	if b[1] == '}' {
		return r, len(b) == 2
	}
	for i := 1; ; {
		key, next, ok := plainString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return BenchRequest{}, false
		}
		i = next + 1
		var dst *int
		switch string(key) {
		case "items":
			dst = &r.Items
		case "size":
			dst = &r.Size
		case "hold_ms":
			dst = &r.HoldMS
		default:
			if foldsTo(key, "items") || foldsTo(key, "size") || foldsTo(key, "hold_ms") {
				return BenchRequest{}, false
			}
			if _, i, ok = plainString(b, i); !ok {
				return BenchRequest{}, false
			}
		}
		if dst != nil {
			if *dst, i, ok = plainInt(b, i); !ok {
				return BenchRequest{}, false
			}
		}
		if i >= len(b) {
			return BenchRequest{}, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return r, i+1 == len(b)
		default:
			return BenchRequest{}, false
		}
	}
}

// foldsTo reports whether the ASCII key equals the lower-case field name f but for case.
func foldsTo(key []byte, f string) bool {
	if len(key) != len(f) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != f[i] {
			return false
		}
	}
	return true
}

// plainString reads the string at b[i] if it is ASCII without escapes and returns its
// contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads an optionally negative decimal integer of at most 18 digits, without leading
// zeros, fraction or exponent, at b[i].
func plainInt(b []byte, i int) (int, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start, v := i, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int(b[i]-'0')
	}
	if n := i - start; n == 0 || n > 18 || n > 1 && b[start] == '0' {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// BenchHandler is the bench engine: for {"items":N,"size":S} it streams N items
// {"data":{"index":I,"pad":"xx…"}}, each padded to S bytes (an item is never shorter than its
// JSON without padding, 28 bytes and the digits of I). It does nothing else, so that a benchmark
// measures the request plane, not the engine.
var BenchHandler reqplane.Handler = reqplane.HandlerFunc(benchGenerate)

func benchGenerate(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
	r, err := ParseBenchRequest(req.Body)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, max(r.Size, 64))
	for i := range r.Items {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		buf = AppendBenchItem(buf[:0], i, r.Size)
		if err := out.Send(buf); err != nil {
			return err
		}
		if i == 0 && r.HoldMS > 0 {
			t := time.NewTimer(time.Duration(r.HoldMS) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return context.Cause(ctx)
			case <-t.C:
			}
		}
	}
	return nil
}

// AppendBenchItem appends the bench engine's item number i, padded to size bytes when size
// allows: {"data":{"index":i,"pad":"xx…"}}.
func AppendBenchItem(dst []byte, i, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"data":{"index":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"pad":"`...)
	// What is left to write after the padding: `"}}`.
	for pad := size - (len(dst) - start) - 3; pad > 0; pad -= len(benchPad) {
		dst = append(dst, benchPad[:min(pad, len(benchPad))]...)
	}
	return append(dst, `"}}`...)
}

// benchPad is the items' padding, appended a slice at a time.
const benchPad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
