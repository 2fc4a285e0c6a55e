package reqplane

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/reqplane/reqplane/internal/stream"
)

// TestCancelInflight checks the drain deadline's reach: the handler a runner runs is cancelled
// and its stream closed, an idle runner is skipped, and a handler registered later finds reqCtx
// ended, which process checks right after registering.
func TestCancelInflight(t *testing.T) {
	w := &worker{running: map[*runner]struct{}{}}
	w.reqCtx, w.cancelReqs = context.WithCancel(context.Background())
	tests := []struct {
		name  string
		after bool // registered after cancelInflight
		idle  bool // no handler running
	}{
		{name: "running"},
		{name: "idle", idle: true},
		{name: "started after the deadline", after: true},
	}
	type slot struct {
		rn     *runner
		ctx    context.Context
		closed *atomic.Bool
	}
	register := func(idle bool) slot {
		rn := w.addRunner()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		closed := new(atomic.Bool)
		if !idle {
			rn.running(&fakeResponder{cancel: cancel, close: func() error { closed.Store(true); return nil }})
		}
		return slot{rn, ctx, closed}
	}
	slots := make([]slot, len(tests))
	for i, tt := range tests {
		if !tt.after {
			slots[i] = register(tt.idle)
		}
	}
	w.cancelInflight()
	for i, tt := range tests {
		if tt.after {
			slots[i] = register(tt.idle)
		}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ended := slots[i].ctx.Err() != nil
			switch {
			case tt.after:
				if ended || w.reqCtx.Err() == nil {
					t.Errorf("handler ended %v, reqCtx %v: want it running with reqCtx ended", ended, w.reqCtx.Err())
				}
			case tt.idle:
				if ended {
					t.Error("the context of an idle runner was cancelled")
				}
			default:
				if !ended {
					t.Error("the running handler's context did not end")
				}
				if !slots[i].closed.Load() {
					t.Error("the running handler's stream was not closed")
				}
			}
			w.removeRunner(slots[i].rn)
		})
	}
	if len(w.running) != 0 {
		t.Errorf("%d runners left registered", len(w.running))
	}
}

// fakeResponder is a stream.Responder whose Cancel and Close call its functions; the rest of
// the interface is unused here (nil).
type fakeResponder struct {
	stream.Responder
	cancel func()
	close  func() error
}

func (f *fakeResponder) Cancel()      { f.cancel() }
func (f *fakeResponder) Close() error { return f.close() }
