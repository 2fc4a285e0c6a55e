package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane"
	"github.com/reqplane/reqplane/internal/echo"
)

// engines are the handlers "reqplane worker" can serve.
var engines = map[string]reqplane.Handler{"echo": echo.Handler, "bench": echo.BenchHandler}

func newWorkerCmd(e env) *cobra.Command {
	var (
		id         reqplane.EndpointID
		engine     string
		drain      time.Duration
		systemPort int
		cpuprofile string
	)
	cmd := &cobra.Command{
		Use:   "worker --namespace NS --component C --endpoint E [--engine echo]",
		Short: "Serve an endpoint with a built-in engine until SIGINT/SIGTERM",
		Long: `Serve an endpoint on every request plane of DYN_REQUEST_PLANE (a comma list serves several at
once) and register it in etcd under a lease. On SIGINT or SIGTERM the worker deregisters first,
refuses new requests, lets the requests in flight finish (at most --drain-timeout), then exits 0.

With --system-port or DYN_SYSTEM_PORT the worker serves its status on DYN_SYSTEM_HOST: the
health path (200 ready, 503 while starting, draining or without a lease), the live path and
Prometheus /metrics; it logs the address.

The echo engine answers {"text": "...", "delay_ms": N} with one item per word,
{"data":{"text":WORD,"index":I}}, N milliseconds apart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, ok := engines[engine]
			if !ok {
				return fmt.Errorf("unknown engine %q: the built-in engine is echo", engine)
			}
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			switch {
			case systemPort > 65535 || systemPort < -1:
				return fmt.Errorf("--system-port %d: want a port from 0 to 65535, or -1 to keep DYN_SYSTEM_PORT", systemPort)
			case systemPort >= 0:
				cfg.System.Enabled, cfg.System.Port = true, systemPort
			}
			if cpuprofile != "" {
				stop, err := startCPUProfile(cpuprofile)
				if err != nil {
					return err
				}
				defer stop()
			}
			log := newLogger(e.stderr, cfg.Log)
			rt := reqplane.New(cfg, reqplane.WithLogger(log))
			defer rt.Close()
			ctx := cmd.Context()
			// The status server first, so that probes see "notready" while the worker starts;
			// the runtime logs its address ("status server listening").
			if err := rt.StartStatus(ctx); err != nil {
				return err
			}
			if err := rt.Endpoint(id).Serve(ctx, h, drain); err != nil {
				return err
			}
			log.Info("worker stopped", "endpoint", id.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&id.Namespace, "namespace", "dynamo", "namespace of the endpoint")
	f.StringVar(&id.Component, "component", "backend", "component of the endpoint")
	f.StringVar(&id.Endpoint, "endpoint", "generate", "endpoint name")
	f.StringVar(&engine, "engine", "echo", "engine serving the endpoint (echo)")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long requests in flight may run on after SIGTERM")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a pprof CPU profile of this worker, from start to exit, to this file")
	f.IntVar(&systemPort, "system-port", -1, "status server port (health, live, /metrics), overriding DYN_SYSTEM_PORT; 0 = OS-assigned, -1 = keep DYN_SYSTEM_PORT")
	return cmd
}
