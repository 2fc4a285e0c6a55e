package bench

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestInflight(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A fake stream: its first item, then a wait until every stream is open (so the phase
	// really holds them all at once), then its second item; every tenth one fails.
	const n = 200
	gate := make(chan struct{})
	var count int
	calls := make(chan struct{}, n)
	call := func(ctx context.Context, body []byte, first func()) (int, error) {
		calls <- struct{}{}
		first()
		select {
		case <-gate:
		case <-ctx.Done():
			return 1, ctx.Err()
		}
		return 2, nil
	}
	go func() {
		for range n {
			<-calls
			count++
		}
		close(gate)
	}()
	res, err := Inflight(ctx, call, n, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Streams != n || res.Completed != n || res.Failed != 0 || res.AllOpen <= 0 {
		t.Fatalf("result %+v", res)
	}
	failing := func(ctx context.Context, body []byte, first func()) (int, error) {
		first()
		return 0, errors.New("boom")
	}
	res, err = Inflight(ctx, failing, 3, time.Second)
	if err != nil || res.Failed != 3 || res.FirstError != "boom" {
		t.Fatalf("failing: %+v %v", res, err)
	}
}

func TestResidentBytes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	n, err := residentBytes()
	if err != nil || n <= 0 {
		t.Fatalf("residentBytes = %d, %v", n, err)
	}
}
