package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/echo"
	"github.com/reqplane/reqplane/internal/testcluster"
)

func newDemoCmd(e env) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole fleet in one process and send requests through every plane and router mode",
		Long: `Run an embedded etcd and NATS server, four echo workers (one per request plane and one serving
all three) and clients that send requests through every plane and router mode, then print what
they saw: which instance served each request, over which plane, the streamed items and the time
to first item. Everything listens on 127.0.0.1; nothing needs to be installed or running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return runDemo(ctx, e.stdout, log)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log lifecycle events to stderr")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, log *slog.Logger) (err error) {
	started := time.Now()
	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		return err
	}
	defer cluster.Close()
	fmt.Fprintf(out, "reqplane demo: embedded etcd at %s, NATS at %s\n\n", cluster.Etcd.Endpoints()[0], cluster.NATS.ClientURL())

	var runtimes []*reqplane.Runtime
	defer func() {
		for _, rt := range slices.Backward(runtimes) {
			rt.Close()
		}
	}()
	// One registry for the whole demo process: every runtime's metrics add up in it, and the
	// status server of the worker serving all three planes serves it on /metrics.
	reg := prometheus.NewRegistry()
	newRTEnv := func(planes string, extra map[string]string) (*reqplane.Runtime, error) {
		cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(cluster.Env(planes, extra)))
		if err != nil {
			return nil, err
		}
		rt := reqplane.New(cfg, reqplane.WithLogger(log), reqplane.WithMetricsRegistry(reg))
		runtimes = append(runtimes, rt)
		return rt, nil
	}
	newRT := func(planes string) (*reqplane.Runtime, error) { return newRTEnv(planes, nil) }

	ep := reqplane.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}
	workerPlanes := []string{"http", "tcp", "nats", "http,tcp,nats"}
	serves := map[reqplane.InstanceID]string{}
	var all reqplane.InstanceID
	var statusAddr string
	for _, p := range workerPlanes {
		var extra map[string]string
		if strings.Contains(p, ",") {
			extra = map[string]string{"DYN_SYSTEM_HOST": "127.0.0.1", "DYN_SYSTEM_PORT": "0"}
		}
		w, err := newRTEnv(p, extra)
		if err != nil {
			return err
		}
		if err := w.Endpoint(ep).Start(ctx, echo.Handler); err != nil {
			return fmt.Errorf("starting the %s worker: %w", p, err)
		}
		serves[w.InstanceID()] = p
		all = w.InstanceID()
		if a := w.StatusAddr(); a != "" {
			statusAddr = a
		}
	}
	fmt.Fprintf(out, "status server of the %s worker: http://%s/metrics (health: http://%s/health)\n\n", workerPlanes[len(workerPlanes)-1], statusAddr, statusAddr)

	// The client prefers HTTP/2, then TCP, then NATS: each instance is reached on the first of
	// these it offers.
	crt, err := newRT("http,tcp,nats")
	if err != nil {
		return err
	}
	client, err := crt.Endpoint(ep).Client(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	for len(client.Instances()) < len(workerPlanes) {
		if err := client.WaitForInstances(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "workers serving %s (as a client preferring http, then tcp, then nats, sees them):\n", ep)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INSTANCE\tSERVES\tREACHED ON\tADDRESS")
	for _, in := range client.Instances() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", in.ID, serves[in.ID], in.Plane, in.Address)
	}
	tw.Flush()

	fmt.Fprintln(out, "\nrequests through each router mode ({\"text\":\"the quick brown fox\"}):")
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MODE\tINSTANCE\tPLANE\tFIRST ITEM\tITEMS")
	body := []byte(`{"text":"the quick brown fox"}`)
	for _, mode := range []reqplane.RouterMode{reqplane.RoundRobin, reqplane.Random, reqplane.LeastLoaded, reqplane.PowerOfTwo, reqplane.Direct} {
		mc, err := crt.Endpoint(ep).Client(ctx, reqplane.WithRouterMode(mode))
		if err != nil {
			return err
		}
		for i := range len(workerPlanes) {
			var opts []reqplane.CallOption
			if mode == reqplane.Direct {
				opts = append(opts, reqplane.WithInstance(client.Instances()[i].ID))
			}
			r, err := timedCall(ctx, mc, body, opts...)
			if err != nil {
				mc.Close()
				return fmt.Errorf("%s request: %w", mode, err)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", mode, r.instance, r.plane, r.ttfi.Round(time.Microsecond), strings.Join(r.items, " "))
		}
		mc.Close()
	}
	tw.Flush()

	fmt.Fprintf(out, "\nthe same instance (%s, serving all three planes) through each plane and call-home, 50 requests each:\n", all)
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PLANE\tCALL-HOME\tFIRST ITEM p50\tWHOLE STREAM p50")
	for _, p := range []string{"http", "tcp", "nats"} {
		prt, err := newRT(p)
		if err != nil {
			return err
		}
		for _, mode := range []reqplane.CallHomeMode{reqplane.CallHomeAuto, reqplane.CallHomeClassic} {
			pc, err := prt.Endpoint(ep).Client(ctx, reqplane.WithCallHome(mode))
			if err != nil {
				return err
			}
			var ttfi, total []time.Duration
			var callHome string
			for range 50 {
				r, err := timedCall(ctx, pc, body, reqplane.WithInstance(all))
				if err != nil {
					pc.Close()
					return fmt.Errorf("%s request: %w", p, err)
				}
				if r.plane != p {
					pc.Close()
					return fmt.Errorf("a client preferring %s was routed over %s", p, r.plane)
				}
				ttfi, total, callHome = append(ttfi, r.ttfi), append(total, r.total), r.callHome
			}
			pc.Close()
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p, callHome, median(ttfi).Round(time.Microsecond), median(total).Round(time.Microsecond))
		}
	}
	tw.Flush()

	fmt.Fprintln(out, "\na request the engine cannot serve ({\"prompt\":1}):")
	if _, err := timedCall(ctx, client, []byte(`{"prompt":1}`)); err != nil {
		fmt.Fprintf(out, "  error (%s): %v\n", reqplane.CodeOf(err), err)
	} else {
		return fmt.Errorf("the echo engine accepted a body without text")
	}
	if err := printMetrics(ctx, out, statusAddr); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ndone in %s\n", time.Since(started).Round(time.Millisecond))
	return nil
}

// printMetrics scrapes the status server's /metrics, as Prometheus would, and prints a few
// headline values.
func printMetrics(ctx context.Context, out io.Writer, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scraping the status server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scraping the status server: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("parsing /metrics: %w", err)
	}
	// sum adds the samples of name whose labels include want (a histogram's count and sum).
	sum := func(name string, want map[string]string) (value, hsum float64) {
		f := fams[name]
		if f == nil {
			return 0, 0
		}
	next:
		for _, m := range f.Metric {
			for k, v := range want {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				value += m.Counter.GetValue()
			case m.Gauge != nil:
				value += m.Gauge.GetValue()
			case m.Histogram != nil:
				value += float64(m.Histogram.GetSampleCount())
				hsum += m.Histogram.GetSampleSum()
			}
		}
		return value, hsum
	}
	fmt.Fprintf(out, "\nscraped from http://%s/metrics (all runtimes of this process):\n", addr)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	n, _ := sum("dynamo_component_requests_total", nil)
	fmt.Fprintf(tw, "  dynamo_component_requests_total\t%.0f\n", n)
	n, _ = sum("dynamo_component_errors_total", map[string]string{"error_type": "generate"})
	fmt.Fprintf(tw, "  dynamo_component_errors_total{error_type=\"generate\"}\t%.0f\n", n)
	n, _ = sum("dynamo_component_response_bytes_total", nil)
	fmt.Fprintf(tw, "  dynamo_component_response_bytes_total\t%.0f\n", n)
	for _, pl := range []struct{ plane, status string }{{"http", "202"}, {"tcp", "ack"}, {"nats", "ack"}} {
		n, _ = sum("reqplane_ingress_requests_total", map[string]string{"plane": pl.plane, "status": pl.status})
		fmt.Fprintf(tw, "  reqplane_ingress_requests_total{plane=%q,status=%q}\t%.0f\n", pl.plane, pl.status, n)
	}
	for _, pl := range []string{"http", "tcp", "nats"} {
		n, s := sum("reqplane_client_ack_seconds", map[string]string{"plane": pl})
		if n > 0 {
			fmt.Fprintf(tw, "  reqplane_client_ack_seconds{plane=%q} mean\t%s over %.0f acks\n", pl, time.Duration(s/n*float64(time.Second)).Round(time.Microsecond), n)
		}
	}
	return tw.Flush()
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

type callResult struct {
	instance    reqplane.InstanceID
	plane       string
	callHome    string
	items       []string
	ttfi, total time.Duration
}

// timedCall sends one request and reads its whole stream, timing the first item and the end.
func timedCall(ctx context.Context, c *reqplane.Client, body []byte, opts ...reqplane.CallOption) (callResult, error) {
	start := time.Now()
	s, err := c.Generate(ctx, body, opts...)
	if err != nil {
		return callResult{}, err
	}
	r := callResult{instance: s.Instance(), plane: s.Plane(), callHome: s.CallHome()}
	for item, err := range s.All() {
		if err != nil {
			return r, err
		}
		if r.items == nil {
			r.ttfi = time.Since(start)
		}
		var w struct {
			Data struct{ Text string } `json:"data"`
		}
		if json.Unmarshal(item, &w) == nil && w.Data.Text != "" {
			r.items = append(r.items, w.Data.Text)
		} else {
			r.items = append(r.items, string(item))
		}
	}
	r.total = time.Since(start)
	return r, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
