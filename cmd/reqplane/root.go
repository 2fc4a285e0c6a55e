package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane/internal/config"
	"github.com/reqplane/reqplane/internal/discovery/etcd"
)

// env is everything the commands take from the process. main fills it from the real process and
// tests from fakes, so no command touches os.Stdout, os.Args or the environment itself.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// loadConfig loads the configuration: config.FromEnv in production.
	loadConfig func() (*config.Config, error)
	// buildInfo describes the running binary: debug.ReadBuildInfo in production.
	buildInfo func() (*debug.BuildInfo, bool)
}

// subcommands lists the constructors of reqplane's subcommands, in help order. A new subcommand is
// a newXxxCmd(env) *cobra.Command function in its own file and one line here.
func subcommands() []func(env) *cobra.Command {
	return []func(env) *cobra.Command{
		newDemoCmd,
		newBenchCmd,
		newWorkerCmd,
		newCallCmd,
		func(env) *cobra.Command { return newEtcdCmd() },
		func(env) *cobra.Command { return newNATSCmd() },
		newLsCmdFromEnv,
		newConfigCmd,
		newVersionCmd,
	}
}

func newRootCmd(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "reqplane",
		Short: "reqplane is the request plane of a distributed LLM-inference runtime",
		Long: `reqplane is the request plane of a distributed LLM-inference runtime, wire-compatible with
NVIDIA Dynamo: workers register in etcd, requesters send TwoPart frames over HTTP/2, TCP or NATS,
and workers call home over TCP to stream the responses back.

Configuration comes from environment variables (DYN_REQUEST_PLANE, ETCD_ENDPOINTS, ...);
"reqplane config" shows the effective values and where each one came from.`,
		// Errors are printed once, by run, as "reqplane: <error>"; usage is for --help, not for
		// every failure.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	for _, newCmd := range subcommands() {
		root.AddCommand(newCmd(e))
	}
	return root
}

// run executes the command line args (without the program name) and returns the exit code. Each
// line of an error goes to stderr prefixed "reqplane: ", so joined errors stay greppable.
func run(ctx context.Context, args []string, e env) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root := newRootCmd(e)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(e.stderr, "reqplane: %s\n", line)
		}
		return 1
	}
	return 0
}

// newLsCmdFromEnv gives "reqplane ls" the etcd settings of the environment.
func newLsCmdFromEnv(e env) *cobra.Command {
	return newLsCmd(func() (etcd.ClientConfig, error) {
		c, err := e.loadConfig()
		if err != nil {
			return etcd.ClientConfig{}, err
		}
		return etcdClientConfig(c.Etcd), nil
	})
}
