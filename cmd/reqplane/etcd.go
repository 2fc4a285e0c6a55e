package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane/internal/discovery/etcdembed"
)

// defaultEtcdDataDir is $(os.UserCacheDir)/reqplane/etcd, or "" when there is no cache
// directory (then --data-dir is required).
func defaultEtcdDataDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "reqplane", "etcd")
}

func newEtcdCmd() *cobra.Command {
	cfg := etcdembed.Config{Name: etcdembed.DefaultName, LogLevel: etcdembed.DefaultLogLevel}
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run a single-member etcd for a one-machine fleet",
		Long: `Run a single-member etcd server in this process, for a fleet on one machine: workers and
clients started without ETCD_ENDPOINTS use http://127.0.0.1:2379, which this serves by default.
Flags carry etcd's own names. Data persists in --data-dir across restarts. The server runs until
interrupted (Ctrl-C or SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return errors.New("--data-dir is required: no user cache directory to default to")
			}
			stderr := cmd.ErrOrStderr()
			cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
			ctx := cmd.Context()
			srv, err := etcdembed.Start(ctx, cfg)
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("%w (is an etcd already running there? \"reqplane ls\" asks it)", err)
			}
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(stderr, "etcd is serving clients at %s (data dir %s); stop with Ctrl-C\n",
				strings.Join(srv.Endpoints(), ","), cfg.DataDir)
			select {
			case <-ctx.Done():
				fmt.Fprintln(stderr, "etcd is stopping")
				return srv.Close()
			case err, ok := <-srv.Err():
				if !ok || err == nil {
					return errors.New("etcd stopped")
				}
				return fmt.Errorf("etcd failed: %w", err)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", cfg.Name, "member name")
	f.StringVar(&cfg.DataDir, "data-dir", defaultEtcdDataDir(), "directory for the member's data")
	f.StringSliceVar(&cfg.ListenClientURLs, "listen-client-urls", []string{etcdembed.DefaultClientURL},
		"URLs to listen on for clients (port 0 picks a free port)")
	f.StringSliceVar(&cfg.AdvertiseClientURLs, "advertise-client-urls", nil,
		"client URLs to advertise (default: the listen client URLs)")
	f.StringSliceVar(&cfg.ListenPeerURLs, "listen-peer-urls", []string{etcdembed.DefaultPeerURL},
		"URLs to listen on for peers")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "lowest etcd log level shown: debug, info, warn or error")
	return cmd
}
