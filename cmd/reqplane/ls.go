package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/discovery"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
)

// etcdClientConfig maps the loaded configuration to the etcd client's.
func etcdClientConfig(c config.Etcd) etcd.ClientConfig {
	return etcd.ClientConfig{
		Endpoints: c.Endpoints,
		Username:  c.Username,
		Password:  string(c.Password),
		CAFile:    c.CAFile,
		CertFile:  c.ClientCertFile,
		KeyFile:   c.ClientKeyFile,
	}
}

// newLsCmd returns "reqplane ls". clientConfig says how to reach etcd; it is called only when
// the command runs.
func newLsCmd(clientConfig func() (etcd.ClientConfig, error)) *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ls [NAMESPACE[/COMPONENT[/ENDPOINT]]]",
		Short: "List the endpoint instances registered in etcd",
		Long: `List the endpoint instances registered in etcd under v1/instances/, optionally only those of a
namespace, a component or an endpoint: the instance id (the worker's lease, in hex), the
request-plane addresses it advertises, and the seconds left on its lease. Values that are not
valid records are reported on stderr.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = strings.TrimSuffix(args[0], "/")
			}
			prefix, err := discovery.InstancesPrefix(path)
			if err != nil {
				return err
			}
			cc, err := clientConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			client, err := etcd.NewClient(ctx, cc)
			if err != nil {
				return err
			}
			defer client.Close()
			entries, err := etcd.List(ctx, client, prefix)
			if err != nil {
				return err
			}
			valid := entries[:0:0]
			for _, e := range entries {
				if e.Err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: skipping %s: %v\n", e.Key, e.Err)
					continue
				}
				valid = append(valid, e)
			}
			if asJSON {
				return writeLsJSON(cmd.OutOrStdout(), valid)
			}
			if len(valid) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no instances registered under %s\n", prefix)
			}
			return writeLsTable(cmd.OutOrStdout(), valid)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func ttlText(e etcd.Entry) string {
	switch {
	case e.LeaseID == 0:
		return "-"
	case e.TTL < 0:
		return "expired"
	}
	return fmt.Sprintf("%ds", int64(e.TTL/time.Second))
}

func writeLsTable(w io.Writer, entries []etcd.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE/COMPONENT/ENDPOINT\tINSTANCE\tTRANSPORTS\tTTL")
	for _, e := range entries {
		ts := e.Record.Transports()
		addrs := make([]string, len(ts))
		for i, t := range ts {
			addrs[i] = t.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Record.EndpointID(), discovery.FormatInstanceID(e.Record.InstanceID),
			strings.Join(addrs, ","), ttlText(e))
	}
	return tw.Flush()
}

// lsJSON is one instance in "reqplane ls --json". instance_id is the exact u64 (as in the
// discovery record); instance is its hex form as in keys and subjects.
type lsJSON struct {
	Namespace  string                `json:"namespace"`
	Component  string                `json:"component"`
	Endpoint   string                `json:"endpoint"`
	InstanceID uint64                `json:"instance_id"`
	Instance   string                `json:"instance"`
	Transports []discovery.Transport `json:"transports"`
	TTLSeconds *int64                `json:"ttl_seconds,omitempty"` // absent without a lease; -1 once the lease is gone
	Key        string                `json:"key"`
}

func writeLsJSON(w io.Writer, entries []etcd.Entry) error {
	out := make([]lsJSON, 0, len(entries))
	for _, e := range entries {
		j := lsJSON{
			Namespace:  e.Record.Namespace,
			Component:  e.Record.Component,
			Endpoint:   e.Record.Endpoint,
			InstanceID: e.Record.InstanceID,
			Instance:   discovery.FormatInstanceID(e.Record.InstanceID),
			Transports: e.Record.Transports(),
			Key:        e.Key,
		}
		if e.LeaseID != 0 {
			ttl := int64(e.TTL / time.Second)
			if e.TTL < 0 {
				ttl = -1
			}
			j.TTLSeconds = &ttl
		}
		out = append(out, j)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
