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

// TestIdleRunners checks the idle stack: the most recently idle runner takes the next request,
// the reaper lets go those idle for three ticks (and only those), and after stopRunners every
// idle runner is let go and none may idle again.
func TestIdleRunners(t *testing.T) {
	w := &worker{running: map[*runner]struct{}{}, reaper: make(chan struct{}), reaped: make(chan struct{})}
	close(w.reaped) // no reaper goroutine: the test ticks by hand
	let := func(rn *runner) bool {
		select {
		case j := <-rn.jobs:
			if j.s != nil {
				t.Fatal("an idle runner was handed a request")
			}
			return true
		default:
			return false
		}
	}
	a, b, c := w.addRunner(), w.addRunner(), w.addRunner()
	for _, rn := range []*runner{a, b} {
		if !w.goIdle(rn) {
			t.Fatal("goIdle refused before shutdown")
		}
	}
	w.reapTick() // epoch 1
	if !w.goIdle(c) {
		t.Fatal("goIdle refused before shutdown")
	}
	if got := w.takeIdle(); got != c {
		t.Fatal("takeIdle did not return the most recently idle runner")
	}
	w.goIdle(c)
	w.reapTick() // epoch 2
	if let(a) || let(b) || len(w.idle) != 3 {
		t.Fatalf("runners let go after two ticks (%d idle)", len(w.idle))
	}
	w.reapTick() // epoch 3: a and b have been idle for three ticks, c for two
	if !let(a) || !let(b) || let(c) {
		t.Fatal("the third tick did not let go exactly the runners idle since epoch 0")
	}
	if len(w.idle) != 1 || w.idle[0] != c {
		t.Fatalf("idle stack after reaping = %d runners, want c alone", len(w.idle))
	}
	w.stopRunners()
	if !let(c) || len(w.idle) != 0 {
		t.Fatal("stopRunners did not let the idle runner go")
	}
	if w.goIdle(a) {
		t.Fatal("a runner went idle after stopRunners")
	}
	if w.takeIdle() != nil {
		t.Fatal("takeIdle found a runner after stopRunners")
	}
}
