package reqplane

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
)

// Typed adapts a function over typed requests and responses to a Handler. The request body is
// decoded as JSON into Req (a body that does not decode is a generate error, reported to the
// caller as "Generate Error: …"); every Resp passed to send is encoded as JSON, without HTML
// escaping, as one response item.
func Typed[Req, Resp any](fn func(ctx context.Context, req Req, send func(Resp) error) error) Handler {
	return HandlerFunc(func(ctx context.Context, r *Request, out *Responder) error {
		var req Req
		if err := json.Unmarshal(r.Body, &req); err != nil {
			return fmt.Errorf("request body does not decode as %T: %w", req, err)
		}
		return fn(ctx, req, func(resp Resp) error { return out.SendJSON(resp) })
	})
}

// Call sends req, encoded as JSON, through the client and yields the response items decoded as
// Resp:
//
//	for item, err := range reqplane.Call[Prompt, Token](ctx, client, prompt) { … }
//
// A failure, of the call or of decoding an item, is yielded once as the last pair. Breaking out
// of the loop gives the stream up (the worker is told to stop at once).
func Call[Req, Resp any](ctx context.Context, c *Client, req Req, opts ...CallOption) iter.Seq2[Resp, error] {
	return func(yield func(Resp, error) bool) {
		var zero Resp
		body, err := marshalJSON(req)
		if err != nil {
			yield(zero, fmt.Errorf("reqplane: encoding the request: %w", err))
			return
		}
		s, err := c.Generate(ctx, body, opts...)
		if err != nil {
			yield(zero, err)
			return
		}
		for item, err := range s.All() {
			if err != nil {
				yield(zero, err)
				return
			}
			var resp Resp
			if err := json.Unmarshal(item, &resp); err != nil {
				yield(zero, fmt.Errorf("reqplane: response item does not decode as %T: %w", resp, err))
				return
			}
			if !yield(resp, nil) {
				return
			}
		}
	}
}
