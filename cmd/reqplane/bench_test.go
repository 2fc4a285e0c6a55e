package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reqplane/reqplane/internal/config"
)

// helperMarker separates the test binary's flags from the reqplane command line it runs as a
// child of TestBenchSmoke.
const helperMarker = "--"

// TestBenchHelperProcess is not a test: it is the reqplane command when bench re-executes the
// test binary for its workers and gRPC server. Run normally, it finds no command line and returns.
func TestBenchHelperProcess(t *testing.T) {
	i := slices.Index(os.Args, helperMarker)
	if i < 0 {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[i+1:], env{
		stdin:      os.Stdin,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		loadConfig: config.FromEnv,
		buildInfo:  debug.ReadBuildInfo,
	})
	stop()
	os.Exit(code)
}

// One bounded run of the whole command: cluster, a TCP worker process and the gRPC reference
// process (this test binary, re-executed), every phase, the JSON rows and the chart.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, NATS and two child processes")
	}
	self := selfExec{path: os.Args[0], prefix: []string{"-test.run=^TestBenchHelperProcess$", helperMarker}}
	e, stdout, stderr := testEnv(nil)
	plot := filepath.Join(t.TempDir(), "latency.png")
	cmd := newBenchCmdWith(e, func() (selfExec, error) { return self, nil })
	cmd.SetArgs([]string{"--duration", "200ms", "--warmup", "100ms", "--concurrency", "4", "--planes", "tcp", "--json", "--plot", plot,
		"--inflight", "50", "--inflight-hold", "200ms", "--runs", "2"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	for _, line := range []string{"run 1/2:", "run 2/2:", "the median over 2 runs"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr)
		}
	}
	want := [][2]string{{"grpc", "n/a"}, {"tcp", "classic"}, {"tcp", "mux"}}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %v:\n%s", len(rows), want, stdout)
	}
	for i, r := range rows {
		if r["plane"] != want[i][0] || r["call_home"] != want[i][1] {
			t.Errorf("row %d is %v/%v, want %v", i, r["plane"], r["call_home"], want[i])
		}
		for _, k := range []string{"rtt_p50_us", "rtt_p99_us", "ttfi_p50_us", "stream_total_p50_us", "rps",
			"load_p50_us", "load_p99_us", "cpu_s_per_100k", "rps_vs_grpc", "rtt_p50_vs_grpc"} {
			v, ok := r[k].(float64)
			if !ok || v <= 0 {
				t.Errorf("row %d: %s = %v, want a positive number", i, k, r[k])
			}
		}
		if wantInflight := want[i][1] == "mux"; wantInflight != (r["inflight_completed"] == 50.0) {
			t.Errorf("row %d: inflight_completed = %v (want 50 on mux rows only)", i, r["inflight_completed"])
		}
		if r["errors"] != 0.0 {
			t.Errorf("row %d: %v errors: %v", i, r["errors"], r["first_error"])
		}
	}
	png, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("--plot wrote no PNG: %v", err)
	}
	if !strings.Contains(stderr.String(), "\r") || !strings.Contains(stderr.String(), "load ") {
		t.Errorf("no progress line on stderr:\n%q", stderr)
	}
}

func TestParsePlanes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"http,tcp,nats", []string{"http", "tcp", "nats"}, ""},
		{" tcp , nats", []string{"tcp", "nats"}, ""},
		{"tcp", []string{"tcp"}, ""},
		{"tcp,grpc", nil, `unknown plane "grpc"`},
		{"", nil, `unknown plane ""`},
		{"tcp,tcp", nil, `plane "tcp" listed twice`},
	}
	for _, tc := range tests {
		got, err := parsePlanes(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parsePlanes(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parsePlanes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--planes", "quic"}, `unknown plane "quic"`},
		{[]string{"--concurrency", "0"}, "must be positive"},
		{[]string{"--duration", "-1s"}, "must be positive"},
		{[]string{"--runs", "0"}, "must be positive"},
	}
	for _, tc := range tests {
		e, _, _ := testEnv(nil)
		cmd := newBenchCmdWith(e, func() (selfExec, error) { return selfExec{path: "/nonexistent"}, nil })
		cmd.SetArgs(tc.args)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true // as under the root command
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
