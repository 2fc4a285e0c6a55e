package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// InflightResult is what Inflight measured.
type InflightResult struct {
	Streams   int
	Completed int
	Failed    int
	// AllOpen is how long it took until every stream had its first item (0 if some never did).
	AllOpen time.Duration
	// RSSPerStream is the growth of this process's resident memory while every stream was open,
	// divided by the number of streams.
	RSSPerStream float64
	FirstError   string
}

// Inflight opens n streams at once through call, each held open by the worker for hold after its
// first item, waits until all of them are open, samples this process's resident memory, then
// waits for them all to end. The whole phase is bounded by ctx.
func Inflight(ctx context.Context, call CallFunc, n int, hold time.Duration) (InflightResult, error) {
	res := InflightResult{Streams: n}
	body := []byte(`{"items":2,"size":100,"hold_ms":` + strconv.FormatInt(hold.Milliseconds(), 10) + `}`)
	runtime.GC()
	debug.FreeOSMemory()
	before, err := residentBytes()
	if err != nil {
		return res, err
	}
	var (
		opened, done atomic.Int64
		allOpen      = make(chan struct{})
		wg           sync.WaitGroup
		mu           sync.Mutex
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			first := func() {
				if opened.Add(1) == int64(n) {
					close(allOpen)
				}
			}
			items, err := call(ctx, body, first)
			done.Add(1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Failed++
				if res.FirstError == "" {
					res.FirstError = err.Error()
				}
			case items != 2:
				res.Failed++
				if res.FirstError == "" {
					res.FirstError = fmt.Sprintf("%d items, want 2", items)
				}
			default:
				res.Completed++
			}
		})
	}
	select {
	case <-allOpen:
		res.AllOpen = time.Since(start)
		if after, err := residentBytes(); err == nil && after > before {
			res.RSSPerStream = float64(after-before) / float64(n)
		}
	case <-ctx.Done():
	}
	wg.Wait()
	return res, ctx.Err()
}

// residentBytes reads VmRSS from /proc/self/status.
func residentBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("bench: reading resident memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("bench: VmRSS %q: %w", rest, err)
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS in /proc/self/status")
}
