package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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
	newRT := func(planes string) (*reqplane.Runtime, error) {
		cfg, err := reqplane.LoadConfigFrom(testcluster.Lookup(cluster.Env(planes, nil)))
		if err != nil {
			return nil, err
		}
		rt := reqplane.New(cfg, reqplane.WithLogger(log))
		runtimes = append(runtimes, rt)
		return rt, nil
	}

	ep := reqplane.EndpointID{Namespace: "dynamo", Component: "backend", Endpoint: "generate"}
	workerPlanes := []string{"http", "tcp", "nats", "http,tcp,nats"}
	serves := map[reqplane.InstanceID]string{}
	var all reqplane.InstanceID
	for _, p := range workerPlanes {
		w, err := newRT(p)
		if err != nil {
			return err
		}
		if err := w.Endpoint(ep).Start(ctx, echo.Handler); err != nil {
			return fmt.Errorf("starting the %s worker: %w", p, err)
		}
		serves[w.InstanceID()] = p
		all = w.InstanceID()
	}

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

	fmt.Fprintf(out, "\nthe same instance (%s, serving all three planes) through each plane, 50 requests each:\n", all)
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PLANE\tFIRST ITEM p50\tWHOLE STREAM p50")
	for _, p := range []string{"http", "tcp", "nats"} {
		prt, err := newRT(p)
		if err != nil {
			return err
		}
		pc, err := prt.Endpoint(ep).Client(ctx)
		if err != nil {
			return err
		}
		var ttfi, total []time.Duration
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
			ttfi, total = append(ttfi, r.ttfi), append(total, r.total)
		}
		pc.Close()
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p, median(ttfi).Round(time.Microsecond), median(total).Round(time.Microsecond))
	}
	tw.Flush()

	fmt.Fprintln(out, "\na request the engine cannot serve ({\"prompt\":1}):")
	if _, err := timedCall(ctx, client, []byte(`{"prompt":1}`)); err != nil {
		fmt.Fprintf(out, "  error (%s): %v\n", reqplane.CodeOf(err), err)
	} else {
		return fmt.Errorf("the echo engine accepted a body without text")
	}
	fmt.Fprintf(out, "\ndone in %s\n", time.Since(started).Round(time.Millisecond))
	return nil
}

type callResult struct {
	instance    reqplane.InstanceID
	plane       string
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
	r := callResult{instance: s.Instance(), plane: s.Plane()}
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
