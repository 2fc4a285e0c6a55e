// Package testcluster is the hermetic harness of reqplane's end-to-end tests and of the demo: an
// embedded etcd and an in-process NATS server on 127.0.0.1, and the environment that points
// reqplane at them with every listener on loopback and an OS-assigned port.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/reqplane/reqplane/internal/discovery/etcdembed"
	"github.com/reqplane/reqplane/internal/natsembed"
)

// Cluster is a running etcd and NATS pair.
type Cluster struct {
	Etcd *etcdembed.Server
	NATS *natsembed.Server
	dir  string
	own  bool // dir was created here and is removed on Close
}

// Options configure Start.
type Options struct {
	// Dir holds etcd's data and NATS's JetStream store. Default: a new temporary directory,
	// removed by Close.
	Dir string
	// NATSMaxPayload is the NATS server's max_payload (default 1 MiB).
	NATSMaxPayload int
}

// Start starts etcd and NATS on 127.0.0.1 with OS-assigned ports.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c := &Cluster{dir: opts.Dir}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "reqplane-cluster-")
		if err != nil {
			return nil, err
		}
		c.dir, c.own = d, true
	}
	var err error
	c.Etcd, err = etcdembed.Start(ctx, etcdembed.Config{
		DataDir:          filepath.Join(c.dir, "etcd"),
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		UnsafeNoFsync:    true,
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("testcluster: etcd: %w", err)
	}
	c.NATS, err = natsembed.Start(ctx, natsembed.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, "nats"),
		MaxPayload: opts.NATSMaxPayload,
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("testcluster: nats: %w", err)
	}
	return c, nil
}

// Env returns the environment of a reqplane process in this cluster serving or preferring
// planes (a DYN_REQUEST_PLANE value), with extra variables laid over it.
func (c *Cluster) Env(planes string, extra map[string]string) map[string]string {
	env := map[string]string{
		"DYN_REQUEST_PLANE":            planes,
		"ETCD_ENDPOINTS":               c.Etcd.Endpoints()[0],
		"ETCD_LEASE_TTL":               "10",
		"NATS_SERVER":                  c.NATS.ClientURL(),
		"DYN_HTTP_RPC_HOST":            "127.0.0.1",
		"DYN_HTTP_RPC_PORT":            "0",
		"DYN_TCP_RPC_HOST":             "127.0.0.1",
		"DYN_TCP_RPC_PORT":             "0",
		"DYN_TCP_RESPONSE_STREAM_HOST": "127.0.0.1",
		"DYN_TCP_RESPONSE_STREAM_PORT": "0",
		"DYN_SYSTEM_HOST":              "127.0.0.1",
	}
	maps.Copy(env, extra)
	return env
}

// Lookup adapts an environment map to the config loader's lookup function.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// Close stops NATS and etcd and removes the temporary directory. It is idempotent.
func (c *Cluster) Close() error {
	var errs []error
	if c.NATS != nil {
		errs = append(errs, c.NATS.Close())
		c.NATS = nil
	}
	if c.Etcd != nil {
		errs = append(errs, c.Etcd.Close())
		c.Etcd = nil
	}
	if c.own && c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
		c.dir = ""
	}
	return errors.Join(errs...)
}
