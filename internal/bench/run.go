package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// CallFunc sends one request and reads its whole response stream, calling first (once) when
// the first item arrives. It returns the number of items read.
type CallFunc func(ctx context.Context, body []byte, first func()) (int, error)

// Target is one row to measure: a plane and call-home mode, or the gRPC reference.
type Target struct {
	Plane    string
	CallHome string
	Call     CallFunc
	// Worker is the CPU clock of the process serving the row (nil: not measured).
	Worker CPUClock
}

// Config sets the phases. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Duration of each measured phase, per row.
	Duration time.Duration
	// Warmup is a load phase run per row before anything is measured, to fill connection pools.
	Warmup time.Duration
	// Concurrency of the load phase (requests in flight, closed loop).
	Concurrency int
	// BodySize is the request body's size; ItemSize each response item's.
	BodySize, ItemSize int
	// StreamItems per request of the stream phase; LoadItems of the load (and warm-up) phase.
	StreamItems, LoadItems int
	// RequestTimeout bounds each request, so that a stuck request cannot stall a phase.
	RequestTimeout time.Duration
	// Client is the CPU clock of the requesting side (default SelfCPU).
	Client CPUClock
	// Progress receives a live progress line, rewritten with '\r' (nil: none).
	Progress io.Writer
}

// DefaultConfig returns the phases of a full run.
func DefaultConfig() Config {
	return Config{
		Duration:       5 * time.Second,
		Warmup:         time.Second,
		Concurrency:    64,
		BodySize:       64,
		ItemSize:       100,
		StreamItems:    100,
		LoadItems:      10,
		RequestTimeout: 30 * time.Second,
		Client:         SelfCPU{},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Duration <= 0 {
		c.Duration = d.Duration
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = d.Concurrency
	}
	if c.BodySize <= 0 {
		c.BodySize = d.BodySize
	}
	if c.ItemSize <= 0 {
		c.ItemSize = d.ItemSize
	}
	if c.StreamItems <= 0 {
		c.StreamItems = d.StreamItems
	}
	if c.LoadItems <= 0 {
		c.LoadItems = d.LoadItems
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.Client == nil {
		c.Client = d.Client
	}
	return c
}

// Body returns a bench engine request for items items of itemSize bytes, padded with an ignored
// field to size bytes when size allows.
func Body(items, itemSize, size int) []byte {
	b := []byte(`{"items":`)
	b = strconv.AppendInt(b, int64(items), 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(itemSize), 10)
	const padOpen, padClose = `,"pad":"`, `"}`
	if pad := size - len(b) - len(padOpen) - len(padClose); pad >= 0 {
		b = append(b, padOpen...)
		for range pad {
			b = append(b, 'x')
		}
		return append(b, padClose...)
	}
	return append(b, '}')
}

// ErrNoSuccess is returned when every request of a phase failed.
var ErrNoSuccess = errors.New("bench: no request succeeded")

// phase is one step of the run, applied to every target in turn.
type phase struct {
	name        string
	concurrency int
	items       int
	duration    time.Duration
	cpu         bool // measure CPU time around it
	record      func(r *Row, res *phaseResult)
}

// Run measures every target, phase by phase: warm-up, round trip, stream, load. Phases go
// across all rows before the next one starts, so that slow drifts of a shared machine spread
// over every row instead of favouring the first. It returns the rows in target order, with
// ratios to the gRPC row when there is one; on an error the rows measured so far come with it.
func Run(ctx context.Context, cfg Config, targets []Target) ([]Row, error) {
	cfg = cfg.withDefaults()
	rows := make([]Row, len(targets))
	for i, t := range targets {
		rows[i] = Row{Plane: t.Plane, CallHome: t.CallHome}
	}
	phases := []phase{
		{name: "warmup", concurrency: cfg.Concurrency, items: cfg.LoadItems, duration: cfg.Warmup},
		{name: "rtt", concurrency: 1, items: 1, duration: cfg.Duration, record: func(r *Row, res *phaseResult) {
			s := Summarize(res.latencies)
			r.RTTP50us, r.RTTP99us = micros(s.P50), micros(s.P99)
		}},
		{name: "stream", concurrency: 1, items: cfg.StreamItems, duration: cfg.Duration, record: func(r *Row, res *phaseResult) {
			r.TTFIP50us = micros(Percentile(res.ttfis, 0.5))
			r.StreamTotalP50us = micros(Percentile(res.latencies, 0.5))
		}},
		{name: "load", concurrency: cfg.Concurrency, items: cfg.LoadItems, duration: cfg.Duration, cpu: true, record: func(r *Row, res *phaseResult) {
			s := Summarize(res.latencies)
			r.RPS = float64(s.N) / res.elapsed.Seconds()
			r.LoadP50us, r.LoadP99us = micros(s.P50), micros(s.P99)
			r.LoadLatencies = res.latencies
			per100k := func(d time.Duration) float64 { return d.Seconds() / float64(s.N) * 1e5 }
			r.ClientCPUSPer100k, r.WorkerCPUSPer100k = per100k(res.clientCPU), per100k(res.workerCPU)
			r.CPUSPer100k = r.ClientCPUSPer100k + r.WorkerCPUSPer100k
		}},
	}
	defer clearProgress(cfg.Progress)
	for _, ph := range phases {
		if ph.duration <= 0 {
			continue
		}
		for i, t := range targets {
			label := fmt.Sprintf("%-6s %d/%d %s", ph.name, i+1, len(targets), rows[i].Name())
			res, err := runPhase(ctx, cfg, t, ph, label)
			if err != nil {
				return rows, err
			}
			rows[i].Requests += len(res.latencies)
			rows[i].Errors += res.errors
			if rows[i].FirstError == "" && res.firstErr != nil {
				rows[i].FirstError = res.firstErr.Error()
			}
			if len(res.latencies) == 0 {
				return rows, fmt.Errorf("%w in the %s phase of %s: %v", ErrNoSuccess, ph.name, rows[i].Name(), res.firstErr)
			}
			if ph.record != nil {
				ph.record(&rows[i], res)
			}
		}
	}
	SetRatios(rows)
	return rows, nil
}

// phaseResult is what one phase measured of one target.
type phaseResult struct {
	latencies []time.Duration // of the successful requests
	ttfis     []time.Duration
	errors    int
	firstErr  error
	elapsed   time.Duration
	clientCPU time.Duration
	workerCPU time.Duration
}

// loopResult is one closed-loop goroutine's share of a phase.
type loopResult struct {
	latencies, ttfis []time.Duration
	errors           int
	firstErr         error
}

// runPhase runs ph's closed loop against t for ph.duration: ph.concurrency goroutines, each
// sending its next request as soon as the previous one ends.
func runPhase(ctx context.Context, cfg Config, t Target, ph phase, label string) (*phaseResult, error) {
	body := Body(ph.items, cfg.ItemSize, cfg.BodySize)
	res := &phaseResult{}
	var c0, w0 time.Duration
	if ph.cpu {
		var err error
		if c0, err = cfg.Client.CPUTime(); err != nil {
			return nil, err
		}
		if t.Worker != nil {
			if w0, err = t.Worker.CPUTime(); err != nil {
				return nil, err
			}
		}
	}
	var completed, failed atomic.Int64
	start := time.Now()
	deadline := start.Add(ph.duration)
	stopProgress := startProgress(cfg.Progress, label, start, &completed, &failed)
	loops := make([]loopResult, ph.concurrency)
	var wg sync.WaitGroup
	for i := range loops {
		wg.Go(func() {
			l := &loops[i]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
				var ttfi time.Duration
				begin := time.Now()
				n, err := t.Call(rctx, body, func() { ttfi = time.Since(begin) })
				lat := time.Since(begin)
				cancel()
				if err == nil && n != ph.items {
					err = fmt.Errorf("bench: %d items, want %d", n, ph.items)
				}
				if err != nil {
					failed.Add(1)
					l.errors++
					if l.firstErr == nil {
						l.firstErr = err
					}
					// A failing target fails fast; don't spin on it.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				completed.Add(1)
				l.latencies = append(l.latencies, lat)
				l.ttfis = append(l.ttfis, ttfi)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	for i := range loops {
		l := &loops[i]
		res.latencies = append(res.latencies, l.latencies...)
		res.ttfis = append(res.ttfis, l.ttfis...)
		res.errors += l.errors
		if res.firstErr == nil {
			res.firstErr = l.firstErr
		}
	}
	if ph.cpu {
		c1, err := cfg.Client.CPUTime()
		if err != nil {
			return nil, err
		}
		res.clientCPU = c1 - c0
		if t.Worker != nil {
			w1, err := t.Worker.CPUTime()
			if err != nil {
				return nil, err
			}
			res.workerCPU = w1 - w0
		}
	}
	return res, nil
}

// progressWidth is the width the progress line is padded to, so a shorter line hides a longer one.
const progressWidth = 96

// startProgress rewrites a progress line on w every 200 ms until the returned stop is called;
// stop waits for the writer goroutine.
func startProgress(w io.Writer, label string, start time.Time, completed, failed *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	print := func() {
		el := time.Since(start)
		n := completed.Load()
		line := fmt.Sprintf("%s  %5.1fs  %8d req  %8.0f req/s  %d errors", label, el.Seconds(), n, float64(n)/el.Seconds(), failed.Load())
		// Padding instead of a terminal escape: the line may go to a file or a CI log.
		fmt.Fprintf(w, "\r%-*s", progressWidth, line)
	}
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				print()
				return
			case <-tick.C:
				print()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func clearProgress(w io.Writer) {
	if w != nil {
		fmt.Fprintf(w, "\r%*s\r", progressWidth, "")
	}
}
