package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 1) of ds by the nearest-rank method: the
// smallest sample that at least p of the samples do not exceed. It returns 0 for no samples. ds
// is not modified.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Ratio returns a/b, or 0 when b is 0 (no reference to compare with).
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// micros converts d to microseconds, the unit of the JSON rows.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Summary holds what the rows report of a set of latencies.
type Summary struct {
	N        int
	P50, P99 time.Duration
}

// Summarize computes the summary of ds.
func Summarize(ds []time.Duration) Summary {
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{N: len(s), P50: percentileSorted(s, 0.50), P99: percentileSorted(s, 0.99)}
}
