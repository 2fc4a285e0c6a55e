package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/bench"
	"github.com/reqplane/reqplane/internal/testcluster"
)

// benchPlanes are the request planes "reqplane bench" can measure, in table order.
var benchPlanes = []string{"http", "tcp", "nats"}

// callHomeMode is one way for workers to call home. Every plane is measured in every mode; a
// mode is its name, the client options that select it and the variables its workers and clients
// need, so the multiplexed call-home will be one more entry in callHomeModes.
type callHomeMode struct {
	name   string
	client []reqplane.ClientOption
	env    map[string]string
}

func callHomeModes() []callHomeMode {
	return []callHomeMode{
		// a new TCP connection from the worker per request, as Dynamo's classic runtime
		{name: "classic", client: []reqplane.ClientOption{reqplane.WithCallHome(reqplane.CallHomeClassic)}},
		// persistent call-home connections shared by all streams (response mux v1)
		{name: "mux", client: []reqplane.ClientOption{reqplane.WithCallHome(reqplane.CallHomeAuto)}},
	}
}

// selfExec is how bench starts its child processes: path, then prefix, then the subcommand's
// arguments. The command re-executes its own binary; a test re-executes its test binary.
type selfExec struct {
	path   string
	prefix []string
}

func (x selfExec) args(a ...string) []string { return append(slices.Clone(x.prefix), a...) }

func newBenchCmd(e env) *cobra.Command {
	return newBenchCmdWith(e, func() (selfExec, error) {
		p, err := os.Executable()
		return selfExec{path: p}, err
	})
}

// benchOptions are the flags of "reqplane bench".
type benchOptions struct {
	duration, warmup time.Duration
	concurrency      int
	planes           string
	quick            bool
	json             bool
	plot             string
	cpuprofile       string
	inflight         int
	inflightHold     time.Duration
	runs             int
}

func newBenchCmdWith(e env, self func() (selfExec, error)) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--runs N] [--planes http,tcp,nats] [--json] [--plot FILE.png]",
		Short: "Measure every request plane against a gRPC-Go reference, on 127.0.0.1",
		Long: `Start an embedded etcd and NATS server (in this process), one worker process per request
plane and call-home mode ("reqplane worker --engine bench", this binary re-executed) and a gRPC-Go
server-streaming echo process as the reference, then measure each, phase by phase:

  rtt     1-item requests, concurrency 1: p50 and p99 round trip
  stream  100-item streams, concurrency 1: p50 time to first item and to the end
  load    10-item requests, closed loop at --concurrency: requests/s, p50 and p99 latency,
          and CPU seconds per 100k requests of this process (client side, including the embedded
          etcd and NATS broker) and of the worker process (from /proc)

Request bodies are 64 bytes and items about 100 bytes on every row. A progress line is rewritten
on stderr; the table (or --json rows) goes to stdout. Everything listens on 127.0.0.1; every
child process is stopped and waited for at the end, on error and on SIGINT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.quick {
				if !cmd.Flags().Changed("duration") {
					o.duration = time.Second
				}
				if !cmd.Flags().Changed("warmup") {
					o.warmup = 300 * time.Millisecond
				}
			}
			x, err := self()
			if err != nil {
				return fmt.Errorf("bench: finding the reqplane binary to start workers: %w", err)
			}
			return runBench(cmd.Context(), e, x, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured phase, per row")
	f.DurationVar(&o.warmup, "warmup", time.Second, "load run per row before measuring, to fill connection pools (0: none)")
	f.IntVar(&o.concurrency, "concurrency", 64, "requests in flight during the load phase")
	f.StringVar(&o.planes, "planes", strings.Join(benchPlanes, ","), "request planes to measure (comma list of http, tcp, nats)")
	f.BoolVar(&o.quick, "quick", false, "a short run (1s phases, 300ms warm-up) that ends within a minute")
	f.BoolVar(&o.json, "json", false, "print the rows as a JSON array instead of the table")
	f.StringVar(&o.plot, "plot", "", "write a PNG chart of the load-phase latency distributions to this file")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a pprof CPU profile of this (client) process over the measured phases to FILE, and of each worker process over its life to FILE.PLANE-MODE")
	f.IntVar(&o.inflight, "inflight", 0, "after the phases, hold this many streams open at once on every mux row and report the client's memory per stream (0: skip)")
	f.DurationVar(&o.inflightHold, "inflight-hold", 5*time.Second, "how long each worker holds an in-flight stream open after its first item")
	f.IntVar(&o.runs, "runs", 1, "measure everything this many times and report the median of each figure (each run's ratios are to its own gRPC row)")
	cmd.AddCommand(newBenchGRPCServerCmd(e))
	return cmd
}

// newBenchGRPCServerCmd is the hidden child process serving the gRPC reference: it prints its
// address on stdout and serves until SIGTERM or until its stdin (a pipe from bench) closes.
func newBenchGRPCServerCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:    "grpc-server",
		Short:  "Serve the gRPC-Go reference of reqplane bench on 127.0.0.1 (started by bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// The parent holds our stdin open while it lives; EOF means it is gone. The reader
			// may outlive serving by the moment it takes the process to exit.
			go func() {
				_, _ = io.Copy(io.Discard, e.stdin)
				cancel()
			}()
			if _, err := fmt.Fprintln(e.stdout, lis.Addr().String()); err != nil {
				lis.Close()
				return err
			}
			return bench.ServeGRPC(ctx, lis)
		},
	}
}

// parsePlanes checks a --planes list.
func parsePlanes(s string) ([]string, error) {
	var planes []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(benchPlanes, p) {
			return nil, fmt.Errorf("bench: unknown plane %q in --planes: want a comma list of http, tcp, nats", p)
		}
		if slices.Contains(planes, p) {
			return nil, fmt.Errorf("bench: plane %q listed twice in --planes", p)
		}
		planes = append(planes, p)
	}
	return planes, nil
}

// Bounds of the set-up, generous for a loaded 2-core machine running -race binaries.
const (
	benchStartTimeout = 60 * time.Second
	benchStopGrace    = 10 * time.Second
	benchDrain        = "5s"
)

func runBench(ctx context.Context, e env, x selfExec, o benchOptions) (err error) {
	planes, err := parsePlanes(o.planes)
	if err != nil {
		return err
	}
	if o.duration <= 0 || o.concurrency <= 0 || o.warmup < 0 || o.runs <= 0 {
		return errors.New("bench: --duration, --concurrency and --runs must be positive, --warmup not negative")
	}
	modes := callHomeModes()
	rowCount := 1 + len(planes)*len(modes)
	// Every phase of every row is bounded by its duration plus the requests in flight at its end
	// (each bounded by its own timeout); the whole run by this.
	budget := benchStartTimeout + time.Duration(o.runs*rowCount)*(o.warmup+3*o.duration+30*time.Second)
	if o.inflight > 0 {
		budget += time.Duration(len(planes)) * (o.inflightHold + inflightSlack)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		return err
	}
	defer cluster.Close()

	// Children are stopped (and waited for) before the cluster they registered in closes.
	var (
		procs []*bench.Process
		mu    sync.Mutex
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range slices.Backward(procs) {
			if serr := p.Stop(benchStopGrace); serr != nil {
				err = errors.Join(err, fmt.Errorf("bench: stopping %s: %w", p.Name(), serr))
			}
		}
	}()
	start := func(spec bench.ProcessSpec) (*bench.Process, error) {
		p, err := bench.StartProcess(spec)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		return p, nil
	}

	var closers []io.Closer
	defer func() {
		for _, c := range slices.Backward(closers) {
			c.Close()
		}
	}()

	fmt.Fprintf(e.stderr, "reqplane bench: etcd %s and NATS %s in this process; starting the gRPC reference and %d worker processes\n",
		cluster.Etcd.Endpoints()[0], cluster.NATS.ClientURL(), len(planes)*len(modes))

	// The gRPC reference.
	addrLine := newFirstLine()
	gp, err := start(bench.ProcessSpec{Name: "gRPC reference server", Path: x.path, Args: x.args("bench", "grpc-server"), Env: map[string]string{}, Stdout: addrLine})
	if err != nil {
		return err
	}
	addr, err := addrLine.wait(ctx, gp, benchStartTimeout)
	if err != nil {
		return err
	}
	gc, err := bench.NewGRPCClient(addr)
	if err != nil {
		return err
	}
	closers = append(closers, gc)
	targets := []bench.Target{{Plane: bench.ReferencePlane, CallHome: bench.ReferenceCallHome, Call: gc.Call, Worker: gp}}

	// One worker process per plane and call-home mode, each on its own endpoint, so each row
	// measures one worker and nothing else.
	for _, mode := range modes {
		for _, plane := range planes {
			ep := reqplane.EndpointID{Namespace: "bench", Component: plane + "-" + mode.name, Endpoint: "generate"}
			wenv := cluster.Env(plane, mode.env)
			wenv["DYN_LOG"] = "warn"
			args := []string{"worker", "--engine", "bench", "--namespace", ep.Namespace, "--component", ep.Component,
				"--endpoint", ep.Endpoint, "--drain-timeout", benchDrain}
			if o.cpuprofile != "" {
				args = append(args, "--cpuprofile", o.cpuprofile+"."+plane+"-"+mode.name)
			}
			wp, err := start(bench.ProcessSpec{
				Name: plane + " worker (" + mode.name + ")",
				Path: x.path,
				Args: x.args(args...),
				Env:  wenv,
			})
			if err != nil {
				return err
			}
			cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(cluster.Env(plane, mode.env)))
			if err != nil {
				return err
			}
			rt := reqplane.New(cfg, reqplane.WithLogger(log))
			closers = append(closers, rt)
			client, err := rt.Endpoint(ep).Client(ctx, mode.client...)
			if err != nil {
				return err
			}
			closers = append(closers, client)
			if err := waitForWorker(ctx, client, wp); err != nil {
				return err
			}
			targets = append(targets, bench.Target{Plane: plane, CallHome: mode.name, Call: reqplaneCall(client), Worker: wp})
		}
	}

	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(e.stderr, "reqplane bench: %d rows, %s per phase (warm-up %s), load concurrency %d, %d run(s)\n",
		len(targets), o.duration, o.warmup, o.concurrency, o.runs)
	var runs [][]bench.Row
	for i := range o.runs {
		rows, err := bench.Run(ctx, bench.Config{
			Duration:    o.duration,
			Warmup:      o.warmup,
			Concurrency: o.concurrency,
			Progress:    e.stderr,
		}, targets)
		if err != nil {
			return err
		}
		if o.runs > 1 {
			fmt.Fprintf(e.stderr, "\rrun %d/%d:%s\n", i+1, o.runs, ratiosLine(rows))
		}
		runs = append(runs, rows)
	}
	// With several runs every figure is the median over them: on a shared machine one run's
	// ratios can be ±30 % off.
	rows := bench.Median(runs)
	if o.runs > 1 {
		fmt.Fprintf(e.stderr, "every figure below is the median over %d runs\n", o.runs)
	}
	if o.inflight > 0 {
		if err := runInflight(ctx, e, o, targets, rows); err != nil {
			return err
		}
	}

	if o.plot != "" {
		if err := writePlot(o.plot, rows, o.concurrency); err != nil {
			return err
		}
	}
	if o.json {
		return bench.WriteJSON(e.stdout, rows)
	}
	if err := bench.WriteTable(e.stdout, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nCPU: client = this process (with the embedded etcd and NATS broker), worker = the serving process; per 100k requests of the load phase.\n")
	for _, r := range rows {
		if r.Inflight > 0 {
			fmt.Fprintf(e.stdout, "%s: %d streams in flight at once, %d completed; client memory %.1f KiB per open stream\n",
				r.Name(), r.Inflight, r.InflightCompleted, r.RSSBytesPerStream/1024)
		}
	}
	for _, r := range rows {
		if r.Errors > 0 {
			fmt.Fprintf(e.stdout, "%s: %d failed requests, the first: %s\n", r.Name(), r.Errors, r.FirstError)
		}
	}
	return nil
}

// inflightSlack bounds, beyond the hold, how long opening and closing the in-flight streams of one
// row may take.
const inflightSlack = 90 * time.Second

// runInflight holds o.inflight streams open at once on every multiplexed row (a classic row would
// need a connection, two file descriptors, per stream) and records what it cost the client.
func runInflight(ctx context.Context, e env, o benchOptions, targets []bench.Target, rows []bench.Row) error {
	for i, t := range targets {
		if t.CallHome != "mux" {
			continue
		}
		fmt.Fprintf(e.stderr, "\rinflight %s: %d streams ...", rows[i].Name(), o.inflight)
		rctx, cancel := context.WithTimeout(ctx, o.inflightHold+inflightSlack)
		res, err := bench.Inflight(rctx, t.Call, o.inflight, o.inflightHold)
		cancel()
		if err != nil {
			return fmt.Errorf("bench: %d streams in flight on %s: %w (%d completed, first error: %s)", o.inflight, rows[i].Name(), err, res.Completed, res.FirstError)
		}
		rows[i].Inflight, rows[i].InflightCompleted, rows[i].RSSBytesPerStream = res.Streams, res.Completed, res.RSSPerStream
		rows[i].Errors += res.Failed
		if rows[i].FirstError == "" {
			rows[i].FirstError = res.FirstError
		}
		fmt.Fprintf(e.stderr, " %d completed in %s\n", res.Completed, res.AllOpen.Round(time.Millisecond))
	}
	return nil
}

// reqplaneCall sends one request through client and reads its stream.
func reqplaneCall(client *reqplane.Client) bench.CallFunc {
	return func(ctx context.Context, body []byte, first func()) (int, error) {
		s, err := client.Generate(ctx, body)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		n := 0
		for {
			_, err := s.Recv()
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			if n == 0 {
				first()
			}
			n++
		}
	}
}

// waitForWorker waits until the client sees the worker's instance, failing early if the worker
// process exits.
func waitForWorker(ctx context.Context, client *reqplane.Client, p *bench.Process) error {
	ctx, cancel := context.WithTimeout(ctx, benchStartTimeout)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	err := client.WaitForInstances(ctx)
	cancel()
	select {
	case <-p.Done():
		return p.Err()
	default:
	}
	if err != nil {
		return fmt.Errorf("bench: %s did not register within %s: %w; its stderr:\n%s", p.Name(), benchStartTimeout, err, p.StderrTail())
	}
	return nil
}

func writePlot(path string, rows []bench.Row, concurrency int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = bench.WritePlot(w, bench.SeriesOf(rows), bench.PlotOptions{
		Title: fmt.Sprintf("reqplane bench: load-phase latency CDF (concurrency %d, 10 items/request)", concurrency),
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// firstLine is a writer that keeps the first line written to it (a child's announced address)
// and discards the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	done chan string
	sent bool
}

func newFirstLine() *firstLine { return &firstLine{done: make(chan string, 1)} }

func (l *firstLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	if i := strings.IndexByte(string(l.buf), '\n'); i >= 0 {
		l.sent = true
		l.done <- strings.TrimSpace(string(l.buf[:i]))
	} else if len(l.buf) > 4096 {
		l.sent = true
		l.done <- "" // not an address: wait reports it
	}
	return len(p), nil
}

// wait returns the first line, an error if p exits or timeout passes first.
func (l *firstLine) wait(ctx context.Context, p *bench.Process, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-l.done:
		if _, err := netipAddrPort(line); err != nil {
			return "", fmt.Errorf("bench: %s announced %q, not an address: %w", p.Name(), line, err)
		}
		return line, nil
	case <-p.Done():
		return "", p.Err()
	case <-t.C:
		return "", fmt.Errorf("bench: %s did not announce its address within %s; its stderr:\n%s", p.Name(), timeout, p.StderrTail())
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// netipAddrPort checks that s is a loopback IP:port, the only kind of address bench dials.
func netipAddrPort(s string) (string, error) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q is not a loopback IP", host)
	}
	return s, nil
}

// startCPUProfile starts a pprof CPU profile written to path; stop ends and closes it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// ratiosLine is one run's throughput ratios, for the progress output of a multi-run bench.
func ratiosLine(rows []bench.Row) string {
	var b strings.Builder
	for _, r := range rows {
		if r.Plane == bench.ReferencePlane {
			continue
		}
		fmt.Fprintf(&b, " %s %.2fx", r.Name(), r.RPSRatio)
	}
	return b.String()
}
