package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane/internal/natsembed"
)

// defaultNATSAddr is where NATS_SERVER's default, nats://127.0.0.1:4222, points.
var defaultNATSAddr = net.JoinHostPort(natsembed.DefaultHost, strconv.Itoa(natsembed.DefaultPort))

// defaultNATSStoreDir is $(os.UserCacheDir)/reqplane/nats, or "" when there is no cache
// directory (then --store-dir is required with JetStream).
func defaultNATSStoreDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "reqplane", "nats")
}

// natsListenAddr resolves the listen address: --addr, with its host or port replaced by --host
// or --port when those were given. Port 0 picks a free port.
func natsListenAddr(addr string, host *string, port *int) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("invalid --addr %q: %w", addr, err)
	}
	if host != nil {
		h = *host
	}
	portNum, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("invalid --addr %q: port %q is not a number", addr, p)
	}
	if port != nil {
		portNum = *port
	}
	if portNum < 0 || portNum > 65535 {
		return "", 0, fmt.Errorf("invalid port %d: want 0 (any free port) to 65535", portNum)
	}
	if h == "" {
		return "", 0, errors.New("a listen host is required (e.g. --host 127.0.0.1)")
	}
	return h, portNum, nil
}

func newNATSCmd() *cobra.Command {
	var (
		addr, host, storeDir string
		port, maxPayload     int
		jetStream, verbose   bool
	)
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Run a NATS server for a one-machine fleet",
		Long: `Run a NATS server in this process, for a fleet on one machine: workers and clients started
without NATS_SERVER use nats://127.0.0.1:4222, which this serves by default. JetStream is on, as
Dynamo's own clients require it; its data persists in --store-dir. The server runs until
interrupted (Ctrl-C or SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hostOverride *string
			var portOverride *int
			if cmd.Flags().Changed("host") {
				hostOverride = &host
			}
			if cmd.Flags().Changed("port") {
				portOverride = &port
			}
			h, p, err := natsListenAddr(addr, hostOverride, portOverride)
			if err != nil {
				return err
			}
			if maxPayload < 0 {
				return fmt.Errorf("invalid --max-payload %d: want 0 (NATS's default, 1 MiB) or more", maxPayload)
			}
			if jetStream {
				if storeDir == "" {
					return errors.New("--store-dir is required: no user cache directory to default to")
				}
				if err := os.MkdirAll(storeDir, 0o750); err != nil {
					return fmt.Errorf("creating the JetStream store directory: %w", err)
				}
			}
			stderr := cmd.ErrOrStderr()
			// The server's own warnings and errors always show; its notices with --verbose.
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			opts := natsembed.Options{
				Host:       h,
				Port:       p,
				JetStream:  jetStream,
				MaxPayload: maxPayload,
				Logger:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
			}
			if jetStream {
				opts.StoreDir = storeDir
			}
			ctx := cmd.Context()
			srv, err := natsembed.Start(ctx, opts)
			if err != nil {
				if strings.Contains(err.Error(), "address already in use") {
					return fmt.Errorf("%w (is a NATS server already running there? point NATS_SERVER at it, or choose another --port)", err)
				}
				return err
			}
			defer srv.Close()
			js := "off"
			if jetStream {
				js = "on, store dir " + storeDir
			}
			url := srv.ClientURL()
			fmt.Fprintf(stderr, "NATS is serving clients at %s (JetStream %s, max payload %d bytes); stop with Ctrl-C\n",
				url, js, srv.MaxPayload())
			if url != "nats://"+defaultNATSAddr {
				fmt.Fprintf(stderr, "point workers and clients at it with NATS_SERVER=%s\n", url)
			}
			<-ctx.Done()
			fmt.Fprintln(stderr, "NATS is stopping")
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", defaultNATSAddr, "host:port to listen on for clients (port 0 picks a free port)")
	f.StringVar(&host, "host", "", "listen host, replacing the host of --addr")
	f.IntVar(&port, "port", 0, "listen port, replacing the port of --addr (0 picks a free port)")
	f.StringVar(&storeDir, "store-dir", defaultNATSStoreDir(), "directory for JetStream's data")
	f.BoolVar(&jetStream, "jetstream", true, "enable JetStream")
	f.IntVar(&maxPayload, "max-payload", 0, "largest message accepted, in bytes (0: NATS's default, 1 MiB)")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the NATS server's notices and debug logs")
	return cmd
}
