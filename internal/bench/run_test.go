package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a CPU clock that advances by step at each reading.
type fakeClock struct {
	t    atomic.Int64
	step time.Duration
}

func (c *fakeClock) CPUTime() (time.Duration, error) {
	return time.Duration(c.t.Add(int64(c.step))), nil
}

// echoCall answers with the number of items the body asks for, as the bench engine does.
func echoCall(delay time.Duration) CallFunc {
	return func(ctx context.Context, body []byte, first func()) (int, error) {
		var items int
		switch {
		case strings.HasPrefix(string(body), `{"items":100,`):
			items = 100
		case strings.HasPrefix(string(body), `{"items":10,`):
			items = 10
		case strings.HasPrefix(string(body), `{"items":1,`):
			items = 1
		default:
			return 0, errors.New("unexpected body " + string(body))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		first()
		return items, nil
	}
}

func TestRun(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name       string
		targets    []Target
		wantErr    error
		wantErrors bool // some requests of a row failed
	}{
		{"reference and a plane", []Target{
			{Plane: ReferencePlane, CallHome: ReferenceCallHome, Call: echoCall(100 * time.Microsecond), Worker: &fakeClock{step: time.Millisecond}},
			{Plane: "tcp", CallHome: "classic", Call: echoCall(200 * time.Microsecond), Worker: &fakeClock{step: time.Millisecond}},
		}, nil, false},
		{"a target that always fails", []Target{
			{Plane: "tcp", CallHome: "classic", Call: func(context.Context, []byte, func()) (int, error) { return 0, errBoom }},
		}, ErrNoSuccess, true},
		{"a target that returns too few items", []Target{
			{Plane: "nats", CallHome: "classic", Call: func(context.Context, []byte, func()) (int, error) { return 0, nil }},
		}, ErrNoSuccess, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var progress strings.Builder
			cfg := Config{Duration: 50 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4,
				Client: &fakeClock{step: 2 * time.Millisecond}, Progress: &syncWriter{b: &progress}}
			rows, err := Run(context.Background(), cfg, tc.targets)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if len(rows) != len(tc.targets) {
				t.Fatalf("%d rows for %d targets", len(rows), len(tc.targets))
			}
			if tc.wantErrors {
				if rows[0].Errors == 0 || rows[0].FirstError == "" {
					t.Errorf("row %+v records no failure", rows[0])
				}
				return
			}
			for _, r := range rows {
				if r.RPS <= 0 || r.RTTP50us <= 0 || r.RTTP99us < r.RTTP50us || r.TTFIP50us <= 0 ||
					r.StreamTotalP50us < r.TTFIP50us || r.LoadP50us <= 0 || r.LoadP99us < r.LoadP50us || len(r.LoadLatencies) == 0 {
					t.Errorf("row %s: %+v", r.Name(), r)
				}
				if r.Errors != 0 {
					t.Errorf("row %s: %d errors (%s)", r.Name(), r.Errors, r.FirstError)
				}
				// Two readings of each fake clock around the load phase: one step each.
				n := float64(len(r.LoadLatencies))
				if want := 0.002 / n * 1e5; !near(r.ClientCPUSPer100k, want) {
					t.Errorf("row %s: client CPU %v, want %v", r.Name(), r.ClientCPUSPer100k, want)
				}
				if want := 0.001 / n * 1e5; !near(r.WorkerCPUSPer100k, want) || !near(r.CPUSPer100k, r.ClientCPUSPer100k+r.WorkerCPUSPer100k) {
					t.Errorf("row %s: worker CPU %v, want %v", r.Name(), r.WorkerCPUSPer100k, want)
				}
			}
			if rows[0].RPSRatio != 1 || rows[1].RPSRatio <= 0 || rows[1].RTTRatio <= 0 {
				t.Errorf("ratios not set: %+v", rows)
			}
			for _, ph := range []string{"warmup", "rtt", "stream", "load"} {
				if !strings.Contains(progress.String(), ph+" ") {
					t.Errorf("progress shows no %s phase", ph)
				}
			}
			if !strings.HasSuffix(progress.String(), "\r") {
				t.Error("the progress line is not cleared at the end")
			}
		})
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{Duration: time.Second, Concurrency: 2}, []Target{{Plane: "tcp", CallHome: "classic", Call: echoCall(0)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func near(a, b float64) bool { return a-b < 1e-9*max(1, b) && b-a < 1e-9*max(1, b) }

// syncWriter lets the progress goroutine and the test share a builder.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
