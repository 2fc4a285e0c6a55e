package stream

import (
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// muxWriter is the one writer of a response mux connection. Callers append whole frames to a
// queue and never touch the socket; the writer goroutine takes everything queued and writes it
// with one Write, so frames queued while the socket is busy go out together ("coalescing while
// the socket is busy": no timer, no added latency when the connection is idle). The queue is
// bounded by flow control, not here: data frames need credit, control frames are tiny.
type muxWriter struct {
	conn    net.Conn
	timeout time.Duration // bounds one Write; a peer that reads nothing that long is gone

	mu      sync.Mutex
	pending []byte // queued frames
	spare   []byte // the buffer last written, reused as the next queue
	queued  uint64 // bytes ever queued
	flushed uint64 // bytes ever written
	err     error  // the write failure, or net.ErrClosed after stop
	flushCh chan struct{}
	stopped bool
	flush   bool // stop: write what is queued first

	wake   chan struct{} // cap 1: something was queued
	done   chan struct{} // closed by stop
	exited chan struct{} // closed when run returns
}

func newMuxWriter(conn net.Conn, timeout time.Duration) *muxWriter {
	return &muxWriter{
		conn:    conn,
		timeout: timeout,
		flushCh: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
}

// putFrame queues one frame (header and payload checked by the caller) and returns the queue
// position after it, for waitFlushed.
func (w *muxWriter) putFrame(kind codec.MuxKind, id codec.UUID, payload []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := len(w.pending)
	w.pending = codec.AppendMuxHeader(w.pending, kind, id, len(payload))
	w.pending = append(w.pending, payload...)
	return w.queuedLocked(n), nil
}

// put queues the frames that appendFn appends.
func (w *muxWriter) put(appendFn func([]byte) []byte) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := len(w.pending)
	w.pending = appendFn(w.pending)
	return w.queuedLocked(n), nil
}

func (w *muxWriter) queuedLocked(before int) uint64 {
	w.queued += uint64(len(w.pending) - before)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return w.queued
}

// waitFlushed waits until the queue up to pos has been written, or the writer failed or stopped.
func (w *muxWriter) waitFlushed(pos uint64) error {
	for {
		w.mu.Lock()
		if w.flushed >= pos {
			w.mu.Unlock()
			return nil
		}
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
		ch := w.flushCh
		w.mu.Unlock()
		select {
		case <-ch:
		case <-w.exited:
			w.mu.Lock()
			ok, err := w.flushed >= pos, w.err
			w.mu.Unlock()
			if ok {
				return nil
			}
			if err == nil {
				err = net.ErrClosed
			}
			return err
		}
	}
}

// run writes until stop or a write failure; onFail is called with the failure (the owner closes
// the connection, so its reader ends too).
func (w *muxWriter) run(onFail func(error)) {
	defer close(w.exited)
	for {
		select {
		case <-w.wake:
		case <-w.done:
			w.mu.Lock()
			flush := w.flush
			w.mu.Unlock()
			if flush {
				w.writeQueued() // best effort: the connection closes next
			}
			return
		}
		w.gather()
		if err := w.writeQueued(); err != nil {
			onFail(err)
			return
		}
	}
}

// writeQueued writes everything queued with one Write.
func (w *muxWriter) writeQueued() error {
	w.mu.Lock()
	buf := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	if len(buf) == 0 {
		w.mu.Lock()
		w.spare = buf
		w.mu.Unlock()
		return nil
	}
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(buf)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushed += uint64(len(buf))
	if cap(buf) <= maxRetainBuffer {
		w.spare = buf[:0]
	}
	if err != nil && w.err == nil {
		w.err = err
	}
	close(w.flushCh)
	w.flushCh = make(chan struct{})
	return err
}

// stop ends the writer (after writing what is queued when flush is set) and waits for it.
// Later puts fail with net.ErrClosed. It is idempotent.
func (w *muxWriter) stop(flush bool) {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		w.flush = flush
		close(w.done)
	}
	w.mu.Unlock()
	<-w.exited
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.mu.Unlock()
}

// gather lets runnable goroutines (handlers producing items) queue more frames before the
// write, for as long as the queue keeps growing (a few rounds at most), so that one write
// carries the responses of many streams. With nothing else runnable, Gosched returns at once:
// an idle connection adds no latency.
func (w *muxWriter) gather() {
	for range 4 {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		grew := len(w.pending) > n
		w.mu.Unlock()
		if !grew {
			return
		}
	}
}
