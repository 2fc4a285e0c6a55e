package planetest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
	"github.com/reqplane/reqplane/internal/plane"
	"github.com/reqplane/reqplane/internal/stream"
)

// Engine modes, selected by the request body's "mode" field (a suite extension of the spec's
// echo engine body {"text":string,"delay_ms"?:int}).
const (
	// modeBlock: send every word, then wait until the requester stops or kills the stream.
	modeBlock = "block"
	// modeAbort: send the first word, then drop the call-home connection without ending it.
	modeAbort = "abort"
)

// badInputText is the error prologue for a body without a string "text" (spec V9).
const badInputText = `Generate Error: request body must be a JSON object with a "text" field`

// outcome is what the worker saw of one request, reported when its handler goroutine ends.
type outcome struct {
	plane    string
	endpoint plane.Endpoint
	id       string
	meta     plane.Meta
	body     string

	stopped, killed bool
	cause           error // context.Cause of the sender's context, if it was cancelled before Finish
	err             error // a dial or send failure
}

// worker is the suite's worker process: a Handler that admits every request and serves it in
// a goroutine it owns; wait ends them all.
type worker struct {
	max int
	log *slog.Logger
	mux *stream.MuxDialer // serves requests that offer the response mux
	wg  sync.WaitGroup

	mu       sync.Mutex
	accepted int
	outcomes map[string]chan outcome // by request id
}

func newWorker(max int) *worker {
	return &worker{
		max:      max,
		log:      slog.New(slog.DiscardHandler),
		mux:      stream.NewMuxDialer(stream.MuxDialOptions{MaxMessageSize: max, Logger: slog.New(slog.DiscardHandler)}),
		outcomes: make(map[string]chan outcome),
	}
}

// Accept admits req and serves it asynchronously, as plane handlers must.
func (w *worker) Accept(req *plane.Request) error {
	w.mu.Lock()
	w.accepted++
	w.mu.Unlock()
	w.wg.Add(1)
	go w.serve(req)
	return nil
}

func (w *worker) acceptedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted
}

// outcome returns the channel on which request id's outcome is reported.
func (w *worker) outcome(id string) chan outcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.outcomes[id]
	if !ok {
		ch = make(chan outcome, 1)
		w.outcomes[id] = ch
	}
	return ch
}

func (w *worker) wait() { w.wg.Wait() }

// serve is the echo engine behind the call-home stream.
func (w *worker) serve(req *plane.Request) {
	defer w.wg.Done()
	o := outcome{
		plane:    req.Plane,
		endpoint: req.Endpoint,
		id:       req.Control.ID,
		meta:     req.Meta,
		body:     string(req.Body),
	}
	defer func() {
		select {
		case w.outcome(o.id) <- o:
		default:
		}
	}()

	s, err := w.respond(req)
	if err != nil {
		o.err = err
		return
	}
	defer s.Close()

	var in struct {
		Text    *string `json:"text"`
		DelayMS int     `json:"delay_ms"`
		Mode    string  `json:"mode"`
	}
	if err := json.Unmarshal(req.Body, &in); err != nil || in.Text == nil {
		text := badInputText
		if err := s.Prologue(&text); err != nil {
			o.err = err
			return
		}
		o.err = s.Finish()
		return
	}
	if err := s.Prologue(nil); err != nil {
		o.err = err
		return
	}
	ctx := s.Context()
	for i, word := range strings.Fields(*in.Text) {
		if ctx.Err() != nil {
			break
		}
		if in.Mode == modeAbort && i == 1 {
			s.Close()
			return
		}
		if err := s.Send(echoItem(word, i)); err != nil {
			o.err = err
			break
		}
		if in.DelayMS > 0 {
			t := time.NewTimer(time.Duration(in.DelayMS) * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if in.Mode == modeBlock {
		<-ctx.Done() // the requester's stop or kill, or its going away
	}
	if ctx.Err() != nil {
		o.cause = context.Cause(ctx)
	}
	o.stopped, o.killed = s.Stopped(), s.Killed()
	if err := s.Finish(); err != nil && o.err == nil {
		o.err = err
	}
}

// respond opens the response stream the request asks for: a classic call-home or a stream on
// the response mux, behind the same interface.
func (w *worker) respond(req *plane.Request) (stream.Responder, error) {
	if req.Control.Transport == codec.TransportTCPResponseMuxV1 {
		info, err := req.Control.ValidateMux()
		if err != nil {
			return nil, err
		}
		return w.mux.Open(context.Background(), info)
	}
	return stream.Dial(context.Background(), req.CallHome, stream.DialOptions{MaxMessageSize: w.max, Logger: w.log})
}

// echoItem is the engine's item for word i: {"data":{"text":word,"index":i}}.
func echoItem(word string, i int) []byte {
	b := append(make([]byte, 0, 48+len(word)), `{"data":{"text":`...)
	b = codec.AppendString(b, word)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `}}`...)
}
