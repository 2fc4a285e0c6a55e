// Package echo is the echo engine that the reqplane command serves: a stand-in for an inference
// engine that streams one item per word, so that planes, routing and cancellation can be seen
// working without a model.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/codec"
)

// ErrBadRequest is the engine's answer to a body that is not {"text": string, …}; the requester
// sees it as "Generate Error: request body must be a JSON object with a \"text\" field".
var ErrBadRequest = errors.New(`request body must be a JSON object with a "text" field`)

// MaxDelay bounds delay_ms so that a request cannot park a worker goroutine for hours.
const MaxDelay = time.Minute

// Request is the echo engine's request body.
type Request struct {
	Text    *string `json:"text"`
	DelayMS int64   `json:"delay_ms,omitempty"`
}

// Handler streams, for word i of the request's text (split on white space), the Annotated item
// {"data":{"text":word,"index":i}}, waiting delay_ms between items. It stops early when the
// request's context ends.
var Handler reqplane.Handler = reqplane.HandlerFunc(generate)

func generate(ctx context.Context, req *reqplane.Request, out *reqplane.Responder) error {
	var r Request
	if err := json.Unmarshal(req.Body, &r); err != nil || r.Text == nil {
		return ErrBadRequest
	}
	if r.DelayMS < 0 || time.Duration(r.DelayMS)*time.Millisecond > MaxDelay {
		return errors.New("delay_ms must be between 0 and " + strconv.FormatInt(MaxDelay.Milliseconds(), 10))
	}
	delay := time.Duration(r.DelayMS) * time.Millisecond
	var timer *time.Timer
	buf := make([]byte, 0, 64)
	for i, word := range strings.Fields(*r.Text) {
		if i > 0 && delay > 0 {
			if timer == nil {
				timer = time.NewTimer(delay)
				defer timer.Stop()
			} else {
				timer.Reset(delay)
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		buf = AppendItem(buf[:0], word, i)
		if err := out.Send(buf); err != nil {
			return err
		}
	}
	return nil
}

// AppendItem appends {"data":{"text":word,"index":i}} as serde_json writes it.
func AppendItem(dst []byte, word string, i int) []byte {
	dst = append(dst, `{"data":{"text":`...)
	dst = codec.AppendString(dst, word)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, "}}"...)
}
