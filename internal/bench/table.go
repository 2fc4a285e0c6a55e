package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes rows as an aligned table, one line per row, with the ratios to the gRPC
// reference in the last columns.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PLANE/CALL-HOME\tRTT p50\tRTT p99\tTTFI p50\tSTREAM p50\tREQ/S\tLOAD p50\tLOAD p99\tCPU s/100k (cli+wrk)\tREQ/S vs gRPC\tRTT vs gRPC\tERRORS\t")
	for i := range rows {
		r := &rows[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%.2f (%.2f+%.2f)\t%s\t%s\t%d\t\n",
			r.Name(), formatMicros(r.RTTP50us), formatMicros(r.RTTP99us), formatMicros(r.TTFIP50us),
			formatMicros(r.StreamTotalP50us), r.RPS, formatMicros(r.LoadP50us), formatMicros(r.LoadP99us),
			r.CPUSPer100k, r.ClientCPUSPer100k, r.WorkerCPUSPer100k,
			formatRatio(r.RPSRatio), formatRatio(r.RTTRatio), r.Errors)
	}
	return tw.Flush()
}

// formatMicros writes a time given in microseconds with a unit that keeps 3 significant digits.
func formatMicros(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

func formatRatio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}
