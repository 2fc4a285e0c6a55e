package stream

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/codec"
)

// pipeSender is a Sender on one end of a net.Pipe, whose Write blocks until the other end reads:
// a socket that is always busy, so what the Sender coalesces is visible read by read.
func pipeSender(t *testing.T) (*Sender, net.Conn) {
	t.Helper()
	worker, requester := net.Pipe()
	t.Cleanup(func() { requester.Close() })
	s := newSender(ctxFor(t), worker, codec.CallHomeInfo{Subject: "sub-1", Context: "id-1"}, testDialOptions())
	t.Cleanup(func() { s.Close() })
	return s, requester
}

// TestSenderCoalesces: items sent while a write is under way leave together in the next one.
func TestSenderCoalesces(t *testing.T) {
	s, c := pipeSender(t)
	const n = 10
	for i := range n {
		if err := s.Send(fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing has been read yet, so the flusher is still in its first Write (the prologue, maybe
	// with some items); everything else waits in the queue and must come in one more Write.
	c.SetReadDeadline(time.Now().Add(waitFor))
	var (
		got   []byte
		reads int
		buf   = make([]byte, 1<<16)
	)
	for len(wholeFrames(t, got)) < 1+n {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(wholeFrames(t, got)), err)
		}
		got = append(got, buf[:m]...)
		reads++
	}
	if reads > 2 {
		t.Errorf("the prologue and %d items took %d writes, want at most 2", n, reads)
	}
	fs := wholeFrames(t, got)
	for i, f := range fs[1:] {
		if want := fmt.Sprintf(`{"data":{"i":%d},"complete_final":false}`, i); string(f.Data) != want {
			t.Errorf("item %d = %s, want %s", i, f.Data, want)
		}
	}
}

// TestSenderBackpressure: with a requester that reads nothing, Send queues at most maxPending
// bytes ahead of the socket and then blocks; once the requester reads, every item arrives, in
// order.
func TestSenderBackpressure(t *testing.T) {
	s, c := pipeSender(t)
	item := []byte(`"` + string(bytes.Repeat([]byte("x"), 32<<10)) + `"`)
	const n = 64 // 2 MiB: far beyond maxPending
	var sent atomic.Int32
	errc := make(chan error, 1)
	go func() {
		for range n {
			if err := s.Send(item); err != nil {
				errc <- err
				return
			}
			sent.Add(1)
		}
		errc <- s.Finish()
	}()
	time.Sleep(50 * time.Millisecond) // let the sender run ahead as far as it may
	// The blocked Write holds what was queued when it began (up to a full queue), the queue
	// holds up to maxPending bytes plus the item that crossed the mark, and one Send waits:
	// nothing more, however long the requester stalls.
	if got, most := int(sent.Load()), 2*(maxPending/len(item)+1)+1; got > most {
		t.Fatalf("%d items accepted with nothing read, want at most %d", got, most)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	var all []byte
	buf := make([]byte, 1<<16)
	for {
		m, err := c.Read(buf)
		all = append(all, buf[:m]...)
		fs := wholeFrames(t, all)
		if len(fs) > 0 && fs[len(fs)-1].Kind() == codec.HeaderOnly && bytes.Equal(fs[len(fs)-1].Header, codec.ControlSentinel.Bytes()) {
			break
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", len(fs), err)
		}
	}
	c.Close() // Finish waits for the requester to close
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	fs := wholeFrames(t, all)
	if len(fs) != 1+n+2 { // prologue, items, complete_final, sentinel
		t.Fatalf("%d frames, want %d", len(fs), 1+n+2)
	}
	for i, f := range fs[1 : 1+n] {
		if want := codec.AppendStreamItem(nil, item); !bytes.Equal(f.Data, want) {
			t.Fatalf("item %d has %d bytes", i, len(f.Data))
		}
	}
}

// wholeFrames decodes the complete frames at the start of b; a partial one at the end waits for
// more bytes.
func wholeFrames(t *testing.T, b []byte) []codec.Frame {
	t.Helper()
	var fs []codec.Frame
	for {
		f, n, err := codec.SplitFrame(b, 0)
		if err != nil {
			t.Fatalf("bad frames: %v", err)
		}
		if n == 0 {
			return fs
		}
		fs = append(fs, f)
		b = b[n:]
	}
}
