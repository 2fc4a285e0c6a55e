package bench

import (
	"encoding/json"
	"io"
	"slices"
	"time"
)

// ReferencePlane and ReferenceCallHome name the gRPC reference row.
const (
	ReferencePlane    = "grpc"
	ReferenceCallHome = "n/a"
)

// Row is the result of one plane and call-home mode (or the gRPC reference). Times are in
// microseconds; CPU in seconds per 100,000 requests of the load phase.
type Row struct {
	Plane    string `json:"plane"`
	CallHome string `json:"call_home"`
	// Round trip of a 1-item request at concurrency 1.
	RTTP50us float64 `json:"rtt_p50_us"`
	RTTP99us float64 `json:"rtt_p99_us"`
	// A 100-item stream at concurrency 1: time to its first item and to its end.
	TTFIP50us        float64 `json:"ttfi_p50_us"`
	StreamTotalP50us float64 `json:"stream_total_p50_us"`
	// The closed-loop load phase: completed requests per second and their latencies.
	RPS       float64 `json:"rps"`
	LoadP50us float64 `json:"load_p50_us"`
	LoadP99us float64 `json:"load_p99_us"`
	// CPU of the load phase: the bench process (client side), the worker process, and both.
	ClientCPUSPer100k float64 `json:"client_cpu_s_per_100k"`
	WorkerCPUSPer100k float64 `json:"worker_cpu_s_per_100k"`
	CPUSPer100k       float64 `json:"cpu_s_per_100k"`
	// Ratios to the gRPC reference row: throughput (higher is better) and RTT p50 (lower is
	// better). 0 when there is no reference row.
	RPSRatio float64 `json:"rps_vs_grpc"`
	RTTRatio float64 `json:"rtt_p50_vs_grpc"`
	// Requests completed and failed over all phases.
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// FirstError is the text of the first failure, if any.
	FirstError string `json:"first_error,omitempty"`
	// The in-flight phase (--inflight N, multiplexed call-home rows): N streams held open at
	// once, how many completed, and the client's resident memory per open stream.
	Inflight          int     `json:"inflight,omitempty"`
	InflightCompleted int     `json:"inflight_completed,omitempty"`
	RSSBytesPerStream float64 `json:"rss_bytes_per_stream,omitempty"`

	// LoadLatencies are the load phase's latencies, for the chart.
	LoadLatencies []time.Duration `json:"-"`
}

// Name is the row's label: "tcp/classic", or "grpc" for the reference.
func (r *Row) Name() string {
	if r.Plane == ReferencePlane {
		return r.Plane
	}
	return r.Plane + "/" + r.CallHome
}

// SetRatios fills every row's ratios to the reference row, if rows have one.
func SetRatios(rows []Row) {
	var ref *Row
	for i := range rows {
		if rows[i].Plane == ReferencePlane {
			ref = &rows[i]
		}
	}
	if ref == nil {
		return
	}
	for i := range rows {
		rows[i].RPSRatio = Ratio(rows[i].RPS, ref.RPS)
		rows[i].RTTRatio = Ratio(rows[i].RTTP50us, ref.RTTP50us)
	}
}

// WriteJSON writes rows as an indented JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// Median merges the rows of several runs of the same targets into one row per target: every
// measurement and ratio is the median over the runs (each run's ratios are to its own reference
// row, which is what a shared, noisy machine allows to compare), counts are summed, and the load
// latencies of all runs are kept for the chart. Rows appear in the first run's order; a target
// missing from a run counts over the runs that have it.
func Median(runs [][]Row) []Row {
	if len(runs) == 0 {
		return nil
	}
	if len(runs) == 1 {
		return runs[0]
	}
	byName := make(map[string][]*Row)
	for _, rows := range runs {
		for i := range rows {
			byName[rows[i].Name()] = append(byName[rows[i].Name()], &rows[i])
		}
	}
	out := make([]Row, 0, len(runs[0]))
	for _, first := range runs[0] {
		rs := byName[first.Name()]
		m := Row{Plane: first.Plane, CallHome: first.CallHome}
		med := func(field func(*Row) float64) float64 {
			vs := make([]float64, len(rs))
			for i, r := range rs {
				vs[i] = field(r)
			}
			return medianOf(vs)
		}
		m.RTTP50us = med(func(r *Row) float64 { return r.RTTP50us })
		m.RTTP99us = med(func(r *Row) float64 { return r.RTTP99us })
		m.TTFIP50us = med(func(r *Row) float64 { return r.TTFIP50us })
		m.StreamTotalP50us = med(func(r *Row) float64 { return r.StreamTotalP50us })
		m.RPS = med(func(r *Row) float64 { return r.RPS })
		m.LoadP50us = med(func(r *Row) float64 { return r.LoadP50us })
		m.LoadP99us = med(func(r *Row) float64 { return r.LoadP99us })
		m.ClientCPUSPer100k = med(func(r *Row) float64 { return r.ClientCPUSPer100k })
		m.WorkerCPUSPer100k = med(func(r *Row) float64 { return r.WorkerCPUSPer100k })
		m.CPUSPer100k = med(func(r *Row) float64 { return r.CPUSPer100k })
		m.RPSRatio = med(func(r *Row) float64 { return r.RPSRatio })
		m.RTTRatio = med(func(r *Row) float64 { return r.RTTRatio })
		for _, r := range rs {
			m.Requests += r.Requests
			m.Errors += r.Errors
			if m.FirstError == "" {
				m.FirstError = r.FirstError
			}
			m.LoadLatencies = append(m.LoadLatencies, r.LoadLatencies...)
		}
		out = append(out, m)
	}
	return out
}

// medianOf returns the median of vs (the mean of the middle two for an even count); it sorts vs.
func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
