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

// ParseBenchRequest decodes and checks a bench request body.
func ParseBenchRequest(body []byte) (BenchRequest, error) {
	var r BenchRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return BenchRequest{}, ErrBadBenchRequest
	}
	if r.Items < 0 || r.Items > MaxBenchItems || r.Size < 0 || r.Size > MaxBenchItemSize ||
		r.HoldMS < 0 || time.Duration(r.HoldMS)*time.Millisecond > MaxBenchHold {
		return BenchRequest{}, ErrBadBenchRequest
	}
	return r, nil
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
	for pad := size - (len(dst) - start) - 3; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}}`...)
}
