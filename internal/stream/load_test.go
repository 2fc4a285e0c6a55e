package stream

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackpressure: a consumer that does not read stops the connection's reader once Buffer
// items wait, TCP fills up, and the worker's Send blocks; nothing grows without bound. Reading
// again releases everything in order.
func TestBackpressure(t *testing.T) {
	const (
		buffer = 4
		total  = 400      // 25 MiB: several times what the socket buffers hold
		size   = 64 << 10 // per item
	)
	srv, _ := newTestServer(t, ServerOptions{Buffer: buffer})
	st := srv.Register("req-1")
	defer st.Close()
	s, err := Dial(ctxFor(t), st.Info(), testDialOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st.Acked()

	var sent atomic.Int64
	worker := make(chan error, 1)
	go func() {
		pad := strings.Repeat("x", size)
		for i := range total {
			if err := s.Send([]byte(`["` + strconv.Itoa(i) + `","` + pad + `"]`)); err != nil {
				worker <- err
				return
			}
			sent.Add(1)
		}
		worker <- s.Finish()
	}()

	// Wait until the worker makes no progress any more.
	last, still := int64(-1), 0
	deadline := time.Now().Add(waitFor)
	for still < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never blocked (sent %d of %d)", sent.Load(), total)
		}
		time.Sleep(100 * time.Millisecond)
		if n := sent.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	if last >= total {
		t.Fatalf("the worker sent all %d items to a consumer that reads nothing", total)
	}
	if n := len(st.items); n != buffer {
		t.Fatalf("%d items buffered, want exactly Buffer=%d", n, buffer)
	}
	t.Logf("worker blocked after %d items (%d MiB)", last, last*size>>20)

	for i := range total {
		item, err := st.Recv(ctxFor(t))
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if !strings.HasPrefix(string(item), `["`+strconv.Itoa(i)+`","`) {
			t.Fatalf("item %d out of order: %.20q", i, item)
		}
	}
	if _, err := st.Recv(ctxFor(t)); err != io.EOF {
		t.Fatalf("end = %v", err)
	}
	if err := <-worker; err != nil {
		t.Fatalf("worker: %v", err)
	}
}

// TestConcurrentStreams: 1000 streams on one server complete, each with its own items.
func TestConcurrentStreams(t *testing.T) {
	const n = 1000
	srv, _ := newTestServer(t, ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		st := srv.Register("req-" + strconv.Itoa(i))
		wg.Add(2)
		go func() { // worker
			defer wg.Done()
			s, err := Dial(ctx, st.Info(), testDialOptions())
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for j := range 3 {
				if err := s.Send([]byte(`{"data":{"text":"w` + strconv.Itoa(j) + `","index":` + strconv.Itoa(i) + `}}`)); err != nil {
					errs <- err
					return
				}
			}
			if err := s.Finish(); err != nil {
				errs <- err
			}
		}()
		go func() { // requester
			defer wg.Done()
			defer st.Close()
			st.Acked()
			for j := 0; ; j++ {
				item, err := st.Recv(ctx)
				if err == io.EOF && j == 3 {
					return
				}
				want := `{"data":{"text":"w` + strconv.Itoa(j) + `","index":` + strconv.Itoa(i) + `}}`
				if err != nil || string(item) != want {
					errs <- errors.New("stream " + strconv.Itoa(i) + " item " + strconv.Itoa(j) + ": got " +
						string(item) + " / " + errString(err) + ", want " + want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
