package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane"
)

func newCallCmd(e env) *cobra.Command {
	var (
		data     string
		mode     string
		instance string
		count    int
		wait     time.Duration
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "call NAMESPACE/COMPONENT/ENDPOINT [--data JSON]",
		Short: "Send a request to an endpoint and print the streamed response",
		Long: `Send a request (the --data JSON, or standard input) to an instance of the endpoint and print
each response item as one line of compact JSON as it arrives. --count sends the request that
many times in sequence through one router, so round_robin spreads them. Ctrl-C stops the
request on the worker. The exit status is 0 only if every response ended cleanly.

The request plane is the first plane of DYN_REQUEST_PLANE that the instance offers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := reqplane.ParseEndpointID(args[0])
			if err != nil {
				return err
			}
			m, err := reqplane.ParseRouterMode(mode)
			if err != nil {
				return err
			}
			var opts []reqplane.CallOption
			switch {
			case instance != "":
				iid, err := reqplane.ParseInstanceID(instance)
				if err != nil {
					return err
				}
				opts = append(opts, reqplane.WithInstance(iid))
			case m == reqplane.Direct:
				return errors.New("--router direct needs --instance HEX")
			}
			if count < 1 {
				return errors.New("--count must be at least 1")
			}
			body := []byte(data)
			if !cmd.Flags().Changed("data") {
				if body, err = io.ReadAll(e.stdin); err != nil {
					return fmt.Errorf("reading the request from stdin: %w", err)
				}
			}
			body = bytes.TrimSpace(body)
			if !json.Valid(body) {
				return fmt.Errorf("the request is not valid JSON: %q", truncate(body, 80))
			}
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			rt := reqplane.New(cfg, reqplane.WithLogger(newLogger(e.stderr, cfg.Log)))
			defer rt.Close()
			ctx := cmd.Context()
			client, err := rt.Endpoint(id).Client(ctx, reqplane.WithRouterMode(m))
			if err != nil {
				return err
			}
			if wait > 0 {
				wctx, cancel := context.WithTimeout(ctx, wait)
				err := client.WaitForInstances(wctx)
				cancel()
				if err != nil {
					return err
				}
			}
			var line bytes.Buffer
			for range count {
				start := time.Now()
				s, err := client.Generate(ctx, body, opts...)
				if err != nil {
					return err
				}
				if verbose {
					fmt.Fprintf(e.stderr, "# instance %s via %s\n", s.Instance(), s.Plane())
				}
				n := 0
				for item, err := range s.All() {
					if err != nil {
						return err
					}
					line.Reset()
					if json.Compact(&line, item) != nil {
						line.Write(item)
					}
					line.WriteByte('\n')
					if _, err := e.stdout.Write(line.Bytes()); err != nil {
						return err
					}
					n++
				}
				if verbose {
					fmt.Fprintf(e.stderr, "# %d items in %s\n", n, time.Since(start).Round(time.Microsecond))
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&data, "data", "d", "", "request body (JSON); read from stdin when not given")
	f.StringVar(&mode, "router", "round_robin", "router mode: round_robin, random, direct, least_loaded, power_of_two")
	f.StringVar(&instance, "instance", "", "send to this instance (hex id, as reqplane ls prints it)")
	f.IntVarP(&count, "count", "n", 1, "send the request this many times, in sequence")
	f.DurationVar(&wait, "wait", 0, "wait up to this long for an instance instead of failing at once")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the serving instance, plane and timing to stderr")
	return cmd
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
