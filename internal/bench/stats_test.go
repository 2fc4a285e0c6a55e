package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	d := make([]time.Duration, len(ms))
	for i, m := range ms {
		d[i] = time.Duration(m) * time.Millisecond
	}
	return d
}

func seq(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(n-i) * time.Millisecond // descending: Percentile must sort
	}
	return d
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample", durations(7), 0.99, 7 * time.Millisecond},
		{"median of odd count", durations(3, 1, 2), 0.5, 2 * time.Millisecond},
		{"median of even count is the lower middle", durations(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p50 of 1..100", seq(100), 0.5, 50 * time.Millisecond},
		{"p99 of 1..100", seq(100), 0.99, 99 * time.Millisecond},
		{"p99 of 1..1000", seq(1000), 0.99, 990 * time.Millisecond},
		{"p100 is the max", seq(10), 1, 10 * time.Millisecond},
		{"p0 is the min", seq(10), 0, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.in...)
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("Percentile modified its input")
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(seq(200))
	if s.N != 200 || s.P50 != 100*time.Millisecond || s.P99 != 198*time.Millisecond {
		t.Errorf("Summarize = %+v", s)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct{ a, b, want float64 }{
		{300, 100, 3},
		{50, 200, 0.25},
		{5, 0, 0},
		{0, 7, 0},
	}
	for _, tc := range tests {
		if got := Ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("Ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSetRatios(t *testing.T) {
	rows := []Row{
		{Plane: "tcp", CallHome: "classic", RPS: 3000, RTTP50us: 80},
		{Plane: ReferencePlane, CallHome: ReferenceCallHome, RPS: 1000, RTTP50us: 100},
		{Plane: "nats", CallHome: "classic", RPS: 500, RTTP50us: 250},
	}
	SetRatios(rows)
	want := [][2]float64{{3, 0.8}, {1, 1}, {0.5, 2.5}}
	for i, w := range want {
		if rows[i].RPSRatio != w[0] || rows[i].RTTRatio != w[1] {
			t.Errorf("%s: ratios %v, %v; want %v", rows[i].Name(), rows[i].RPSRatio, rows[i].RTTRatio, w)
		}
	}
	noRef := []Row{{Plane: "tcp", RPS: 10}}
	SetRatios(noRef)
	if noRef[0].RPSRatio != 0 {
		t.Error("a ratio without a reference row")
	}
}

// The JSON rows carry the keys the issue names, with the reference row marked grpc / n/a.
func TestWriteJSONKeys(t *testing.T) {
	rows := []Row{
		{Plane: ReferencePlane, CallHome: ReferenceCallHome, RPS: 1000, LoadLatencies: seq(3)},
		{Plane: "http", CallHome: "classic", RPS: 500},
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rows); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, buf.String())
	}
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2", len(got))
	}
	for _, k := range []string{"plane", "call_home", "rtt_p50_us", "rtt_p99_us", "ttfi_p50_us", "stream_total_p50_us",
		"rps", "load_p50_us", "load_p99_us", "cpu_s_per_100k", "client_cpu_s_per_100k", "worker_cpu_s_per_100k",
		"rps_vs_grpc", "rtt_p50_vs_grpc", "requests", "errors"} {
		for i, r := range got {
			if _, ok := r[k]; !ok {
				t.Errorf("row %d has no %q", i, k)
			}
		}
	}
	if got[0]["plane"] != "grpc" || got[0]["call_home"] != "n/a" || got[1]["rps"] != 500.0 {
		t.Errorf("rows %v", got)
	}
	if _, ok := got[0]["LoadLatencies"]; ok {
		t.Error("the raw latencies leaked into the JSON")
	}
	buf.Reset()
	if err := WriteJSON(&buf, nil); err != nil || strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no rows: %q, %v", buf.String(), err)
	}
}

func TestWriteTable(t *testing.T) {
	rows := []Row{
		{Plane: ReferencePlane, CallHome: ReferenceCallHome, RPS: 1000, RTTP50us: 100, LoadP99us: 2500, RPSRatio: 1, RTTRatio: 1},
		{Plane: "tcp", CallHome: "classic", RPS: 3000, RTTP50us: 80, RPSRatio: 3, RTTRatio: 0.8, Errors: 2},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want a header and 2 rows:\n%s", len(lines), buf.String())
	}
	for i, want := range [][]string{
		{"PLANE/CALL-HOME", "REQ/S vs gRPC", "RTT vs gRPC"},
		{"grpc", "100µs", "2.50ms", "1000", "1.00x"},
		{"tcp/classic", "80µs", "3000", "3.00x", "0.80x", " 2"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}

func TestFormatMicros(t *testing.T) {
	tests := []struct {
		us   float64
		want string
	}{{12.4, "12µs"}, {999, "999µs"}, {1500, "1.50ms"}, {2.5e6, "2.50s"}}
	for _, tc := range tests {
		if got := formatMicros(tc.us); got != tc.want {
			t.Errorf("formatMicros(%v) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

func TestBody(t *testing.T) {
	tests := []struct {
		items, itemSize, size int
		want                  string
	}{
		{10, 100, 64, `{"items":10,"size":100,"pad":"` + strings.Repeat("x", 32) + `"}`},
		{1, 100, 31, `{"items":1,"size":100,"pad":""}`},
		{1, 100, 30, `{"items":1,"size":100}`},
		{1, 100, 10, `{"items":1,"size":100}`},
	}
	for _, tc := range tests {
		got := string(Body(tc.items, tc.itemSize, tc.size))
		if got != tc.want {
			t.Errorf("Body(%d, %d, %d) = %s, want %s", tc.items, tc.itemSize, tc.size, got, tc.want)
		}
		if json.Valid([]byte(got)) == false {
			t.Errorf("Body %s is not JSON", got)
		}
	}
	if n := len(Body(10, 100, 64)); n != 64 {
		t.Errorf("the default body is %d bytes, want 64", n)
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "1234 (reqplane) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 8 0", 3 * time.Second, false},
		{"command with spaces and parens", "99 (a b) c)) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0", 100 * time.Millisecond, false},
		{"no parenthesis", "1234 reqplane S 1", 0, true},
		{"too few fields", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 1 0 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseProcStat = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	run := func(rps, ratio float64, errs int, lat time.Duration) []Row {
		return []Row{
			{Plane: ReferencePlane, CallHome: ReferenceCallHome, RPS: 100, RPSRatio: 1, Requests: 10},
			{Plane: "tcp", CallHome: "mux", RPS: rps, RPSRatio: ratio, Errors: errs, Requests: 10, LoadLatencies: []time.Duration{lat}},
		}
	}
	tests := []struct {
		name      string
		runs      [][]Row
		wantRPS   float64
		wantRatio float64
		wantErrs  int
		wantReqs  int
	}{
		{"one run is itself", [][]Row{run(150, 1.5, 1, time.Millisecond)}, 150, 1.5, 1, 10},
		{"odd count: the middle", [][]Row{run(300, 3, 0, 1), run(100, 1, 2, 2), run(200, 2, 0, 3)}, 200, 2, 2, 30},
		{"even count: mean of the middle two", [][]Row{run(100, 1, 0, 1), run(400, 4, 0, 2), run(200, 2, 1, 3), run(300, 3, 0, 4)}, 250, 2.5, 1, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := Median(tt.runs)
			if len(rows) != 2 || rows[0].Name() != "grpc" || rows[1].Name() != "tcp/mux" {
				t.Fatalf("rows %+v", rows)
			}
			r := rows[1]
			if r.RPS != tt.wantRPS || r.RPSRatio != tt.wantRatio || r.Errors != tt.wantErrs || r.Requests != tt.wantReqs {
				t.Errorf("rps %v ratio %v errors %d requests %d, want %v %v %d %d", r.RPS, r.RPSRatio, r.Errors, r.Requests, tt.wantRPS, tt.wantRatio, tt.wantErrs, tt.wantReqs)
			}
			if len(r.LoadLatencies) != len(tt.runs) {
				t.Errorf("%d latencies kept, want one per run", len(r.LoadLatencies))
			}
		})
	}
	if Median(nil) != nil {
		t.Error("Median(nil) != nil")
	}
}
