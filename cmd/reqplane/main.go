// Command reqplane runs and inspects reqplane, the request plane of a distributed LLM-inference
// runtime wire-compatible with NVIDIA Dynamo.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/reqplane/reqplane/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		stdin:      os.Stdin,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		loadConfig: config.FromEnv,
		buildInfo:  debug.ReadBuildInfo,
	})
	stop()
	os.Exit(code)
}
